"""Exactly invertible samplers: EDICT, BDIA, BELM/O-BELM, and fixed-point inversion of Euler.

All schemes are written for the flow-matching velocity of the book (MATH.md §1)::

    x_t = (1 - t) x0 + t eps,   dx/dt = v(x, t) = E[eps - x0 | x_t = x],

on a decreasing generation grid ``1 = t_N > t_{N-1} > ... > t_0 = 0`` (uniform by default).

**DDIM is Euler in t.** With ``x0_hat = x - t v`` and ``eps_hat = x + (1 - t) v`` (the two
predictions a velocity carries), the DDIM update ``x_s = (1 - s) x0_hat + s eps_hat`` equals
``x_s = x_t + (s - t) v(x_t, t)``. The DDIM step of a VP model, ``x_s = a x_t + b eps(x_t)``,
therefore translates to ``a = 1`` and ``b eps(·) -> (s - t) v(·, t)``. This makes the
translations of EDICT and BDIA exact (they are built from DDIM steps). BELM is a linear
multistep formula on an ODE in which DDIM is Euler; its translation applies the same formula
to ``dx/dt = v`` (see :func:`_lmm_coefficients`).

**One signature.** ``generate(field, z, *, scheme, steps, ts, aux, callback, return_aux, info,
**scheme_params)`` maps noise to data and ``invert(field, x, ...)`` data to noise. The coupled
schemes carry a second state, ``aux``:

- ``"edict"``: the second sequence ``y`` of the pair ``(x, y)``; by default both start at the
  input (``y = z`` in generation, ``y = x`` in inversion). The output is the first state
  ``x``; the second is returned with ``return_aux=True``.
- ``"bdia"``, ``"belm"``: the state at the second grid time. By default it comes from one
  Euler (DDIM) step, as in the BDIA and BELM codes: in generation ``x_{t_{N-1}}`` from ``z``,
  in inversion ``x_{t_1}`` from ``x`` (one "naive DDIM inversion" step). With
  ``return_aux=True`` the state at the last-but-one grid time comes back.
- ``"fixed_point"``: no second state. Generation is Euler (DDIM); inversion solves each
  Euler step backward exactly by fixed-point iteration.

For the first three, ``invert(generate(z, aux=w))`` returns ``(z, w)`` and
``generate(invert(x, aux=w))`` returns ``(x, w)`` *exactly* in exact arithmetic, provided the
state pair is passed along (``return_aux=True`` on one side, ``aux=`` on the other);
:func:`reconstruct` does this. Only round-off separates the round trip from the identity.
For ``"fixed_point"`` the inverse holds to the iteration's tolerance.

**What exactness does not give.** The generation map of every scheme is still a consistent
discretisation of the exact ``G``; its Jacobian tends to ``J_G`` as the steps shrink. A
perturbation of the noise is amplified by ``G`` whatever the inversion did. The book's
chapter "Does exact inversion cure it?" measures both.
"""
from __future__ import annotations

import math
import warnings
from typing import Callable, Optional

import torch

from ._checks import (as_batch, as_float, check_callable, check_choice, check_int, check_output,
                      check_positive, check_steps)

Field = Callable[[torch.Tensor, object], torch.Tensor]
Callback = Callable[[int, float, torch.Tensor], None]

SCHEMES = ("edict", "bdia", "belm", "fixed_point")
DEFAULTS = {
    "edict": {"p": 0.93},
    "bdia": {"gamma": 1.0},
    "belm": {},
    "fixed_point": {"tol": None, "max_iter": 50, "on_fail": "warn"},
}
# Global order of the generation map (on a uniform grid). BDIA is second order only for
# gamma = 1 (where on a uniform grid it coincides with O-BELM, the leapfrog rule); for
# gamma < 1 its two-step formula misses the second-order condition by (1 - gamma) h^2 / 2.
ORDER = {"edict": 1, "bdia": 1, "belm": 2, "fixed_point": 1}
# Velocity evaluations per step of generation (inversion: the same, except fixed_point,
# which needs one per iteration).
NFE_PER_STEP = {"edict": 2, "bdia": 1, "belm": 1, "fixed_point": 1}
DEFAULT_STEPS = 100
STALL = 20   # fixed-point iterations without a new smallest update before a row is stopped


# ---- validation ---------------------------------------------------------------------------
def _check_scheme(scheme) -> str:
    return check_choice(scheme, "scheme", SCHEMES)


def _check_call(field, callback, info) -> None:
    check_callable(field, "field")
    check_callable(callback, "callback", optional=True)
    if info is not None and not isinstance(info, dict):
        raise TypeError(f"info must be a dict (filled with the evaluation counts) or None, got "
                        f"{type(info).__name__}")


def _scheme_params(scheme: str, params: dict) -> dict:
    unknown = set(params) - set(DEFAULTS[scheme])
    if unknown:
        allowed = ", ".join(DEFAULTS[scheme]) or "none"
        raise ValueError(f"unknown parameter(s) {', '.join(sorted(unknown))} for scheme "
                         f"{scheme!r} (allowed: {allowed})")
    out = {**DEFAULTS[scheme], **params}
    if scheme == "edict":
        p = as_float(out["p"], "p")
        if not math.isfinite(p) or not 0 < p <= 1:
            raise ValueError(f"p (the EDICT mixing weight) must lie in (0, 1], got {out['p']!r}")
        out["p"] = p
    elif scheme == "bdia":
        g = as_float(out["gamma"], "gamma")
        if not math.isfinite(g) or not 0 < g <= 1:
            raise ValueError(f"gamma (the BDIA weight) must lie in (0, 1] (gamma = 0 is DDIM, "
                             f"which is not exactly invertible), got {out['gamma']!r}")
        out["gamma"] = g
    elif scheme == "fixed_point":
        check_positive(out["tol"], "tol")
        check_int(out["max_iter"], "max_iter")
        check_choice(out["on_fail"], "on_fail", ("warn", "raise", "ignore"))
    return out


def _generation_grid(steps, ts, *, direction: str) -> list[float]:
    """The decreasing generation grid [1, ..., 0] as floats.

    ``ts`` runs in the direction of the call: 1 → 0 for ``generate``, 0 → 1 for ``invert``.
    """
    if ts is not None:
        from .solvers import _check_grid
        if steps is not None:
            raise ValueError("give steps or ts, not both")
        ts = _check_grid(ts)
        start, end = (1.0, 0.0) if direction == "generate" else (0.0, 1.0)
        if ts.numel() < 2 or float(ts[0]) != start or float(ts[-1]) != end:
            raise ValueError(f"ts must run from t = {start} to t = {end}")
        d = ts[1:] - ts[:-1]
        if not (bool((d > 0).all()) or bool((d < 0).all())):
            raise ValueError("ts must be strictly monotone")
        grid = ts.tolist()
        return grid if direction == "generate" else grid[::-1]
    check_steps(steps)
    steps = DEFAULT_STEPS if steps is None else steps
    return torch.linspace(1.0, 0.0, steps + 1, dtype=torch.float64).tolist()


def _prepare(field, x, name, aux, scheme):
    x = as_batch(x, name, n=getattr(field, "n", None))
    if aux is not None:
        if scheme == "fixed_point":
            raise ValueError("aux must be None for scheme 'fixed_point' (it has one state)")
        aux = as_batch(aux, "aux", n=x.shape[1])
        if aux.shape != x.shape:
            raise ValueError(f"aux must have the shape of {name}, {tuple(x.shape)}, got {tuple(aux.shape)}")
        aux = aux.to(x)
    return x, aux


_GROWTH = {
    "edict": "EDICT's inverse multiplies the difference of its two states by p^-2 per step",
    "bdia": "BDIA's inverse has the parasitic root -1/gamma per step",
    "belm": "the leapfrog rule has a weakly unstable parasitic mode",
    "fixed_point": "the fixed-point iteration diverged",
}


def _check_finite(scheme, direction, t, *states):
    """Stop with a clear message as soon as a state overflows (instead of NaN downstream): a
    state that is not finite, or whose squared norm is not (the field could not evaluate it)."""
    for s in states:
        if s is not None and not (bool(torch.isfinite(s).all())
                                  and bool(torch.isfinite((s * s).sum(1)).all())):
            raise FloatingPointError(
                f"{scheme} {direction} overflowed at t = {t:.4g} ({_GROWTH[scheme]}); the "
                f"state is no longer finite in {s.dtype}")


class _Counter:
    """The field, counting velocity evaluations (rows evaluated / batch size) and stopping
    with a FloatingPointError as soon as a state or a velocity is not finite."""

    def __init__(self, field, B, scheme, direction):
        self.field, self.B, self.rows = field, B, 0
        self.scheme, self.direction = scheme, direction

    def __call__(self, x, t):
        _check_finite(self.scheme, self.direction, t, x)
        self.rows += x.shape[0]
        return check_output(self.field(x, t), x, "field", t)   # NaN at a finite state: the field's


# ---- EDICT ----------------------------------------------------------------------------------
def _edict_step(v, x, y, t, h, p):
    """One EDICT denoising step from time t to t + h (h < 0), Wallace, Gokul & Naik (CVPR 2023).

    DDIM form: x_int = a x + b eps(y); y_int = a y + b eps(x_int);
    x' = p x_int + (1-p) y_int; y' = p y_int + (1-p) x'. Here a = 1, b eps(·) = h v(·, t).
    """
    x_int = x + h * v(y, t)
    y_int = y + h * v(x_int, t)
    x_new = p * x_int + (1 - p) * y_int
    y_new = p * y_int + (1 - p) * x_new
    return x_new, y_new


def _edict_unstep(v, x_new, y_new, t, h, p):
    """Exact inverse of :func:`_edict_step` (EDICT's noising step)."""
    y_int = (y_new - (1 - p) * x_new) / p
    x_int = (x_new - (1 - p) * y_int) / p
    y = y_int - h * v(x_int, t)
    x = x_int - h * v(y, t)
    return x, y


# ---- two-step BELM family (BDIA is a member) ------------------------------------------------
def _lmm_coefficients(scheme, ta, tb, tc, params):
    """``(c_a, c_b, c_v)`` with ``x_c = c_a x_a + c_b x_b + c_v v(x_b, t_b)``.

    Three consecutive generation times ``t_a > t_b > t_c`` (a: older, noisier state).

    BDIA (Zhang, Lewis & Kleijn, ECCV 2024, Eq. for BDIA-DDIM)::

        z_{i-1} = z_{i+1} - (1-γ)(z_{i+1} - z_i) - γ Δ(t_i→t_{i+1} | z_i) + Δ(t_i→t_{i-1} | z_i)

    with Δ(t_i→s | z_i) the DDIM step from z_i to time s minus z_i, ``= (s - t_i) v(z_i, t_i)``
    here. So ``c_a = γ``, ``c_b = 1 - γ``, ``c_v = (t_c - t_b) - γ (t_a - t_b)``. γ = 0 would be
    DDIM; γ = 1 the symmetric rule ``x_c = x_a + (t_c - t_a) v_b``. (One version of the
    authors' README writes the same rule with γ and 1 - γ exchanged; this follows the paper
    and the BELM code, where γ multiplies the backward DDIM step.)

    O-BELM (Wang et al., NeurIPS 2024, the proposition on the LTE of BELM): on the DDIM ODE ``dx̄/dσ̄ = ε(x, σ̄)``,
    ``x̄ = x/α``, ``σ̄ = σ/α``, with steps ``h_i = σ̄_i - σ̄_{i-1} > 0``::

        x̄_{i-1} = (h_i²/h_{i+1}²) x̄_{i+1} + ((h_{i+1}² - h_i²)/h_{i+1}²) x̄_i
                  - (h_i (h_i + h_{i+1}) / h_{i+1}) ε(x_i, i),

    the two-step explicit formula with the smallest local truncation error, O(h³). In the
    flow-matching convention ``x̄ = x/(1-t)``, ``σ̄ = t/(1-t)`` and ``dx̄/dσ̄ = x + (1-t) v``;
    σ̄ is infinite at t = 1, where generation starts, so the same formula is applied to
    ``dx/dt = v`` (the other ODE in which DDIM is Euler), with signed steps
    ``δ1 = t_b - t_a``, ``δ2 = t_c - t_b``: ``c_a = (δ2/δ1)²``, ``c_b = 1 - (δ2/δ1)²``,
    ``c_v = δ2 (δ1 + δ2) / δ1``. On a uniform grid this is the leapfrog (explicit midpoint)
    rule ``x_c = x_a + 2 δ v_b``, equal to BDIA with γ = 1.
    """
    if scheme == "bdia":
        g = params["gamma"]
        return g, 1.0 - g, (tc - tb) - g * (ta - tb)
    d1, d2 = tb - ta, tc - tb
    r2 = (d2 / d1) ** 2
    return r2, 1.0 - r2, d2 * (d1 + d2) / d1


# ---- fixed-point inversion of an Euler step ---------------------------------------------------
def _fixed_point_unstep(v, x, t_new, h, tol, max_iter, stats):
    """Solve ``y + h v(y, t_new) = x`` for y (the Euler generation step y -> x with step h < 0).

    Picard iteration ``y <- x - h v(y, t_new)`` from ``y = x`` (whose first iterate is the naive
    DDIM inversion evaluated at ``t_new``), row by row until
    ``‖y_{k+1} - y_k‖_∞ <= tol (1 + ‖y_{k+1}‖_∞)``, ``max_iter`` iterations, or stagnation: a
    row whose update has not shrunk below its best value for ``STALL`` iterations is stopped
    (it does not contract, so more iterations cannot converge; any ``max_iter`` ends). It is the
    iteration of ReNoise (Garibi et al. 2024), AIDI (Pan et al. 2023) and the DPM-solver
    inversion of Hong et al. (2024) without their acceleration. It converges when
    ``|h| Lip(v(·, t_new)) < 1``; rows that do not are frozen at their last finite iterate
    and reported.
    """
    y = x.clone()
    huge = torch.finfo(x.dtype).max ** 0.25          # beyond this ‖y‖² overflows in the field
    active = torch.ones(x.shape[0], dtype=torch.bool, device=x.device)
    update = torch.full((x.shape[0],), float("inf"), dtype=x.dtype, device=x.device)
    best = update.clone()                                 # smallest update seen, per row
    since = torch.zeros(x.shape[0], dtype=torch.long, device=x.device)
    for k in range(max_iter):
        idx = active.nonzero().flatten()
        if idx.numel() == 0:
            break
        y_new = x[idx] - h * v(y[idx], t_new)
        ok = torch.isfinite(y_new).all(1) & (y_new.abs().amax(1) < huge)   # diverging rows stop
        du = (y_new - y[idx]).abs().amax(1)
        y[idx[ok]] = y_new[ok]
        update[idx] = torch.where(ok, du, torch.full_like(du, float("inf")))
        done = ok & (du <= tol * (1 + y_new.abs().amax(1)))
        better = du < best[idx]                            # progress: a new smallest update
        best[idx] = torch.where(better, du, best[idx])
        since[idx] = torch.where(better, torch.zeros_like(since[idx]), since[idx] + 1)
        stuck = ~ok | (since[idx] >= STALL)
        active[idx[done | stuck]] = False
        stats["iters"] = max(stats["iters"], k + 1)
    converged = update <= tol * (1 + y.abs().amax(1))
    stats["converged"] &= converged
    stats["update"] = torch.maximum(stats["update"], torch.where(torch.isfinite(update), update,
                                                                 torch.full_like(update, float("inf"))))
    return y


# ---- public API ------------------------------------------------------------------------------
def generate(field: Field, z: torch.Tensor, *, scheme: str, steps: Optional[int] = None, ts=None,
             aux: Optional[torch.Tensor] = None, callback: Optional[Callback] = None,
             return_aux: bool = False, info: Optional[dict] = None, **scheme_params):
    """Generation (noise ``z`` at t = 1 → data at t = 0) with an exactly invertible scheme.

    Parameters
    ----------
    field : callable ``v(x, t)`` on (B, n)
    z : (B, n) noise
    scheme : ``"edict"`` (param ``p`` in (0, 1], default 0.93), ``"bdia"`` (``gamma`` in (0, 1],
        default 1), ``"belm"`` (O-BELM, no parameter), ``"fixed_point"`` (Euler; its
        parameters ``tol``, ``max_iter``, ``on_fail`` matter only for :func:`invert`)
    steps : number of uniform steps (default 100), or ``ts``: a decreasing grid from 1 to 0
    aux : the second state at the start (see the module docstring); None for the default
    callback : ``callback(i, t_i, x_i)`` at every grid time, the start included (first state)
    return_aux : also return the second state at the end (the pair needed by :func:`invert`)
    info : a dict to fill with ``nfe`` (velocity evaluations per point)

    Returns ``x`` (B, n), or ``(x, aux_out)`` with ``return_aux=True`` (``aux_out`` is None
    for ``"fixed_point"``).
    """
    scheme = _check_scheme(scheme)
    params = _scheme_params(scheme, scheme_params)
    _check_call(field, callback, info)
    z, aux = _prepare(field, z, "z", aux, scheme)
    grid = _generation_grid(steps, ts, direction="generate")
    v = _Counter(field, z.shape[0], scheme, "generation")
    x, aux_out = _run_generation(v, z, aux, grid, scheme, params, callback)
    if info is not None:
        info["nfe"] = v.rows / z.shape[0]
    return (x, aux_out) if return_aux else x


def _run_generation(v, z, aux, grid, scheme, params, callback):
    N = len(grid) - 1
    if callback is not None:
        callback(0, grid[0], z)
    if scheme == "edict":
        x, y = z, (z.clone() if aux is None else aux)
        for i in range(N):
            x, y = _edict_step(v, x, y, grid[i], grid[i + 1] - grid[i], params["p"])
            _check_finite(scheme, "generation", grid[i + 1], x, y)
            if callback is not None:
                callback(i + 1, grid[i + 1], x)
        return x, y
    if scheme == "fixed_point":
        x = z
        for i in range(N):
            x = x + (grid[i + 1] - grid[i]) * v(x, grid[i])
            _check_finite(scheme, "generation", grid[i + 1], x)
            if callback is not None:
                callback(i + 1, grid[i + 1], x)
        return x, None
    # two-step schemes: states at grid positions 0, 1, ...
    prev = z
    cur = z + (grid[1] - grid[0]) * v(z, grid[0]) if aux is None else aux
    if callback is not None:
        callback(1, grid[1], cur)
    for k in range(1, N):
        ca, cb, cv = _lmm_coefficients(scheme, grid[k - 1], grid[k], grid[k + 1], params)
        prev, cur = cur, ca * prev + cb * cur + cv * v(cur, grid[k])
        _check_finite(scheme, "generation", grid[k + 1], cur)
        if callback is not None:
            callback(k + 1, grid[k + 1], cur)
    return cur, prev


def invert(field: Field, x: torch.Tensor, *, scheme: str, steps: Optional[int] = None, ts=None,
           aux: Optional[torch.Tensor] = None, callback: Optional[Callback] = None,
           return_aux: bool = False, info: Optional[dict] = None, **scheme_params):
    """Inversion (data ``x`` at t = 0 → noise at t = 1), the exact inverse of :func:`generate`.

    Same arguments as :func:`generate`; ``ts`` (if given) is increasing from 0 to 1. ``aux``
    is the second state at t = 0: for EDICT the second sequence (default ``x``), for BDIA and
    BELM the state at the second grid time (default: one naive Euler inversion step from
    ``x``). For ``"fixed_point"`` each Euler step is inverted by fixed-point iteration with
    ``tol`` (default 1e-12 in float64, 1e-6 in float32, relative to ``1 + ‖y‖_∞``) and
    ``max_iter`` (default 50); rows that do not converge are reported by a RuntimeWarning
    (``on_fail="warn"``), an exception (``"raise"``) or not at all (``"ignore"``), and in
    ``info`` (``converged`` (B,) bool, ``max_update`` (B,), ``max_iter_used``).

    Returns ``z`` (B, n), or ``(z, aux_out)`` with ``return_aux=True``; callback times run
    from 0 to 1. Raises ``FloatingPointError`` when a state overflows: the exact inverses of
    the coupled schemes amplify a parasitic mode (EDICT: the difference of the two states,
    by ``p^-2`` per step; BDIA: an alternating mode, by ``1/gamma`` per step), so a long
    inversion with ``p`` or ``gamma`` well below 1 can overflow even in float64.
    """
    scheme = _check_scheme(scheme)
    params = _scheme_params(scheme, scheme_params)
    _check_call(field, callback, info)
    x, aux = _prepare(field, x, "x", aux, scheme)
    grid = _generation_grid(steps, ts, direction="invert")      # decreasing, 1 -> 0
    N = len(grid) - 1
    B = x.shape[0]
    v = _Counter(field, B, scheme, "inversion")
    cb = callback
    if cb is not None:
        cb(0, grid[N], x)

    if scheme == "edict":
        xs, ys = x, (x.clone() if aux is None else aux)
        for j, i in enumerate(range(N - 1, -1, -1)):
            xs, ys = _edict_unstep(v, xs, ys, grid[i], grid[i + 1] - grid[i], params["p"])
            _check_finite(scheme, "inversion", grid[i], xs, ys)
            if cb is not None:
                cb(j + 1, grid[i], xs)
        z, aux_out = xs, ys
    elif scheme == "fixed_point":
        tol = params["tol"]
        if tol is None:
            tol = 1e-12 if x.dtype == torch.float64 else 1e-6
        stats = {"iters": 0, "converged": torch.ones(B, dtype=torch.bool),
                 "update": torch.zeros(B, dtype=x.dtype)}
        xs = x
        for j, i in enumerate(range(N - 1, -1, -1)):
            xs = _fixed_point_unstep(v, xs, grid[i], grid[i + 1] - grid[i], tol,
                                     params["max_iter"], stats)
            if cb is not None:
                cb(j + 1, grid[i], xs)
        z, aux_out = xs, None
        if info is not None:
            info.update(converged=stats["converged"], max_update=stats["update"],
                        max_iter_used=stats["iters"])
        bad = int((~stats["converged"]).sum())
        if bad and params["on_fail"] != "ignore":
            worst = float(stats["update"].max())
            msg = (f"fixed-point inversion did not converge for {bad} of {B} points: the last "
                   f"update reached {worst:.3g} > tol {tol:.1e} (relative) within max_iter = "
                   f"{params['max_iter']} at some step; the step is too large for the "
                   f"contraction |h| Lip(v) < 1 there (use more steps)")
            if params["on_fail"] == "raise":
                raise RuntimeError(msg)
            warnings.warn(msg, RuntimeWarning, stacklevel=2)
    else:
        # positions in the generation grid: N (data, t = 0), N - 1, ..., 0 (noise)
        cur = x                                                           # position N
        prev = x + (grid[N - 1] - grid[N]) * v(x, grid[N]) if aux is None else aux  # N - 1
        if cb is not None:
            cb(1, grid[N - 1], prev)
        # recover position k - 1 from positions k (prev) and k + 1 (cur)
        for j, k in enumerate(range(N - 1, 0, -1)):
            ca, cb_, cv = _lmm_coefficients(scheme, grid[k - 1], grid[k], grid[k + 1], params)
            older = (cur - cb_ * prev - cv * v(prev, grid[k])) / ca
            _check_finite(scheme, "inversion", grid[k - 1], older)
            cur, prev = prev, older
            if cb is not None:
                cb(j + 2, grid[k - 1], prev)
        z, aux_out = prev, cur
    if info is not None:
        info["nfe"] = v.rows / B
    return (z, aux_out) if return_aux else z


def reconstruct(field: Field, x: torch.Tensor, *, scheme: str, steps: Optional[int] = None,
                ts=None, return_aux: bool = False, **scheme_params):
    """``x_rec = Ĝ(F̂(x))`` with the state pair passed from inversion to generation.

    Returns ``(x_rec, z_hat)`` — ``z_hat`` the first state of the inverted noise — or
    ``(x_rec, z_hat, aux_hat)`` with ``return_aux=True``. ``ts`` is the generation grid
    (decreasing from 1 to 0); the inversion uses it reversed.
    """
    ts_inv = None
    if ts is not None:
        from .solvers import _check_grid
        ts_inv = _check_grid(ts).flip(0)
    z_hat, aux_hat = invert(field, x, scheme=scheme, steps=steps, ts=ts_inv, return_aux=True,
                            **scheme_params)
    x_rec = generate(field, z_hat, scheme=scheme, steps=steps, ts=ts, aux=aux_hat, **scheme_params)
    return (x_rec, z_hat, aux_hat) if return_aux else (x_rec, z_hat)


def generation_map(field: Field, *, scheme: str, steps: Optional[int] = None, ts=None,
                   **scheme_params) -> Callable:
    """``Ĝ(z, aux=None)`` with fixed options: the scheme's generation map as a callable.

    For a perturbation study of a coupled scheme call ``M(z + δ, aux + δ)``: the same δ
    added to both states (the convention of the book's chapter).
    """
    _check_scheme(scheme)
    _scheme_params(scheme, scheme_params)

    def M(z, aux=None):
        return generate(field, z, scheme=scheme, steps=steps, ts=ts, aux=aux, **scheme_params)

    M.scheme, M.steps = scheme, steps
    return M
