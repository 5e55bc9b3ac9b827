"""Exactly invertible samplers: EDICT, BDIA, BELM/O-BELM, and fixed-point inversion of Euler.

All schemes are written for the flow-matching velocity of the book [book: eq-ch2-interpolant]::

    x_t = (1 - t) x0 + t eps,   dx/dt = v(x, t) = E[eps - x0 | x_t = x],

on a decreasing generation grid ``1 = t_N > t_{N-1} > ... > t_0 = 0`` (uniform by default).

**DDIM is Euler in t** [book: prop-ch10-ddim]. With ``x0_hat = x - t v`` and ``eps_hat = x + (1 - t) v`` (the two
predictions a velocity carries), the DDIM update ``x_s = (1 - s) x0_hat + s eps_hat`` equals
``x_s = x_t + (s - t) v(x_t, t)``. The DDIM step of a VP model, ``x_s = a x_t + b eps(x_t)``,
therefore translates to ``a = 1`` and ``b eps(·) -> (s - t) v(·, t)``. This makes the
translations of EDICT and BDIA exact (they are built from DDIM steps). BELM is a linear
multistep formula on an ODE in which DDIM is Euler; its translation applies the same formula
to ``dx/dt = v`` (see :func:`_lmm_coefficients`).

**One signature.** These schemes are methods of the solvers of :mod:`pfode.solvers`:
``pfode.generate(field, z, method="edict", steps=50)``, ``pfode.invert(...)``,
``pfode.reconstruct(...)`` and ``pfode.integrate(field, x, ts, method=...)`` serve them with the
signature of every other method; a decreasing grid runs the scheme's generation, an increasing
one its exact inverse. Their parameters are keyword options (``p``, ``gamma``, ``tol``,
``max_iter``, ``on_fail``). This module holds the steps and the two runners
(:func:`generation`, :func:`inversion`). The coupled schemes carry a second state, ``aux``:

- ``"edict"``: the second sequence ``y`` of the pair ``(x, y)``; by default both start at the
  input (``y = z`` in generation, ``y = x`` in inversion). The output is the first state ``x``.
- ``"bdia"``, ``"belm"``: the state at the second grid time. By default it comes from one
  Euler (DDIM) step, as in the BDIA and BELM codes: in generation ``x_{t_{N-1}}`` from ``z``,
  in inversion ``x_{t_1}`` from ``x`` (one "naive DDIM inversion" step). At the end the
  state at the last-but-one grid time is the second state.
- ``"fixed-point"``: no second state. Generation is Euler (DDIM); inversion solves each
  Euler step backward exactly by fixed-point iteration.

The solvers return the second state at the end in ``info["aux"]`` and take it at the start as
``aux=``. For the first three, ``invert(generate(z, aux=w))`` returns ``(z, w)`` and
``generate(invert(x, aux=w))`` returns ``(x, w)`` *exactly* in exact arithmetic [book: thm-ch10-exact], provided the
state pair is passed along; :func:`pfode.reconstruct` does this. Only round-off separates the
round trip from the identity. For ``"fixed-point"`` the inverse holds to the iteration's
tolerance.

**What exactness does not give.** The generation map of every scheme is still a consistent
discretisation of the exact ``G``; its Jacobian tends to ``J_G`` as the steps shrink. A
perturbation of the noise is amplified by ``G`` whatever the inversion did. The book's
chapter [book: ch-exact-inversion] measures both [book: eq-ch10-perturbation].
"""
from __future__ import annotations

import math
import warnings
from typing import Callable, Optional

import torch
from tqdm import tqdm

from ._checks import as_float, check_choice, check_int, check_positive

Callback = Callable[[int, float, torch.Tensor], None]

SCHEMES = ("edict", "bdia", "belm", "fixed-point")
DEFAULTS = {
    "edict": {"p": 0.93},
    "bdia": {"gamma": 1.0},
    "belm": {},
    "fixed-point": {"tol": None, "max_iter": 50, "on_fail": "warn"},
}
# Global order of the generation map (on a uniform grid). BDIA is second order only for
# gamma = 1 (where on a uniform grid it coincides with O-BELM, the leapfrog rule); for
# gamma < 1 its two-step formula misses the second-order condition by (1 - gamma) h^2 / 2.
ORDER = {"edict": 1, "bdia": 1, "belm": 2, "fixed-point": 1}
# Velocity evaluations per step of generation (inversion: the same, except fixed-point,
# which needs one per iteration).
NFE_PER_STEP = {"edict": 2, "bdia": 1, "belm": 1, "fixed-point": 1}
STALL = 20   # fixed-point iterations without a new smallest update before a row is stopped


# ---- the parasitic modes ------------------------------------------------------------------
# the parasitic mode of each inverse [book: prop-ch10-parasitic]
_GROWTH = {
    "edict": "EDICT's inverse multiplies the difference of its two states by p^-2 per step",
    "bdia": "BDIA's inverse has the parasitic root -1/gamma per step",
    "belm": "the leapfrog rule has a weakly unstable parasitic mode",
    "fixed-point": "the fixed-point iteration diverged",
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


def _guarded(v, scheme, direction):
    """``v`` stopping with a FloatingPointError, naming the scheme's parasitic mode, as soon
    as the state it is asked to evaluate is not finite."""
    def g(x, t):
        _check_finite(scheme, direction, t, x)
        return v(x, t)
    return g


# ---- EDICT ----------------------------------------------------------------------------------
def _edict_step(v, x, y, t, h, p):
    """One EDICT denoising step from time t to t + h (h < 0), Wallace, Gokul & Naik (CVPR 2023)
    [book: eq-ch10-edict].

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

    BDIA (Zhang, Lewis & Kleijn, ECCV 2024, Eq. for BDIA-DDIM) [book: eq-ch10-bdia]::

        z_{i-1} = z_{i+1} - (1-γ)(z_{i+1} - z_i) - γ Δ(t_i→t_{i+1} | z_i) + Δ(t_i→t_{i-1} | z_i)

    with Δ(t_i→s | z_i) the DDIM step from z_i to time s minus z_i, ``= (s - t_i) v(z_i, t_i)``
    here. So ``c_a = γ``, ``c_b = 1 - γ``, ``c_v = (t_c - t_b) - γ (t_a - t_b)``. γ = 0 would be
    DDIM; γ = 1 the symmetric rule ``x_c = x_a + (t_c - t_a) v_b``. (One version of the
    authors' README writes the same rule with γ and 1 - γ exchanged; this follows the paper
    and the BELM code, where γ multiplies the backward DDIM step.)

    O-BELM (Wang et al., NeurIPS 2024, the proposition on the LTE of BELM) [book: eq-ch10-belm]: on the DDIM ODE ``dx̄/dσ̄ = ε(x, σ̄)``,
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
    """Solve ``y + h v(y, t_new) = x`` for y (the Euler generation step y -> x with step h < 0)
    [book: eq-ch10-fixed-point].

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


# ---- options and the two runners ---------------------------------------------------------------
def check_options(scheme: str, params: dict) -> dict:
    """The scheme's options: ``params`` checked (names and ranges) over the defaults."""
    check_choice(scheme, "method", SCHEMES)
    unknown = set(params) - set(DEFAULTS[scheme])
    if unknown:
        allowed = ", ".join(DEFAULTS[scheme]) or "none"
        raise ValueError(f"unknown option(s) {', '.join(sorted(unknown))} for method "
                         f"{scheme!r} (its options: {allowed})")
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
    elif scheme == "fixed-point":
        check_positive(out["tol"], "tol")
        check_int(out["max_iter"], "max_iter")
        check_choice(out["on_fail"], "on_fail", ("warn", "raise", "ignore"))
    return out


def generation(v, z: torch.Tensor, grid: list, scheme: str, params: dict, *,
               aux: Optional[torch.Tensor] = None, callback: Optional[Callback] = None,
               progress: bool = False):
    """Run the scheme's generation on the decreasing ``grid`` (t_N = 1 > ... > t_0 = 0) from
    ``z`` (and the second state ``aux``); return ``(x, aux_out)`` (``aux_out`` None for
    ``"fixed-point"``). ``params`` come from :func:`check_options`."""
    v = _guarded(v, scheme, "generation")
    N = len(grid) - 1
    bar = tqdm(total=N, desc=scheme, disable=not progress, leave=False)
    if callback is not None:
        callback(0, grid[0], z)
    if scheme in ("edict", "fixed-point"):
        x, y = z, (None if scheme == "fixed-point" else z.clone() if aux is None else aux)
        for i in range(N):
            h = grid[i + 1] - grid[i]
            if y is None:
                x = x + h * v(x, grid[i])
            else:
                x, y = _edict_step(v, x, y, grid[i], h, params["p"])
            _check_finite(scheme, "generation", grid[i + 1], x, y)
            bar.update()
            if callback is not None:
                callback(i + 1, grid[i + 1], x)
        bar.close()
        return x, y
    # two-step schemes: states at grid positions 0, 1, ...
    prev = z
    cur = z + (grid[1] - grid[0]) * v(z, grid[0]) if aux is None else aux
    bar.update()
    if callback is not None:
        callback(1, grid[1], cur)
    for k in range(1, N):
        ca, cb, cv = _lmm_coefficients(scheme, grid[k - 1], grid[k], grid[k + 1], params)
        prev, cur = cur, ca * prev + cb * cur + cv * v(cur, grid[k])
        _check_finite(scheme, "generation", grid[k + 1], cur)
        bar.update()
        if callback is not None:
            callback(k + 1, grid[k + 1], cur)
    bar.close()
    return cur, prev


def inversion(v, x: torch.Tensor, grid: list, scheme: str, params: dict, *,
              aux: Optional[torch.Tensor] = None, callback: Optional[Callback] = None,
              progress: bool = False, info: Optional[dict] = None):
    """The exact inverse of :func:`generation` on the same decreasing ``grid``: data ``x`` at
    t = 0 (and the second state ``aux`` there) to noise at t = 1; returns ``(z, aux_out)``.
    Callback times run from 0 to 1.

    For ``"fixed-point"`` each Euler step is inverted by fixed-point iteration with ``tol``
    (default 1e-12 in float64, 1e-6 in float32, relative to ``1 + ‖y‖_∞``) and ``max_iter``;
    rows that do not converge are reported by a RuntimeWarning (``on_fail="warn"``), an
    exception (``"raise"``) or not at all (``"ignore"``), and in ``info`` (``converged`` (B,)
    bool, ``max_update`` (B,), ``max_iter_used``). A FloatingPointError stops an inversion
    whose state overflows: the exact inverses of the coupled schemes amplify a parasitic mode
    (EDICT: the difference of the two states, by ``p^-2`` per step; BDIA: an alternating mode,
    by ``1/gamma`` per step).
    """
    v = _guarded(v, scheme, "inversion")
    N = len(grid) - 1
    B = x.shape[0]
    bar = tqdm(total=N, desc=f"{scheme} inversion", disable=not progress, leave=False)
    cb = callback
    if cb is not None:
        cb(0, grid[N], x)
    if scheme == "edict":
        xs, ys = x, (x.clone() if aux is None else aux)
        for j, i in enumerate(range(N - 1, -1, -1)):
            xs, ys = _edict_unstep(v, xs, ys, grid[i], grid[i + 1] - grid[i], params["p"])
            _check_finite(scheme, "inversion", grid[i], xs, ys)
            bar.update()
            if cb is not None:
                cb(j + 1, grid[i], xs)
        bar.close()
        return xs, ys
    if scheme == "fixed-point":
        tol = params["tol"]
        if tol is None:
            tol = 1e-12 if x.dtype == torch.float64 else 1e-6
        stats = {"iters": 0, "converged": torch.ones(B, dtype=torch.bool, device=x.device),
                 "update": torch.zeros(B, dtype=x.dtype, device=x.device)}
        xs = x
        for j, i in enumerate(range(N - 1, -1, -1)):
            xs = _fixed_point_unstep(v, xs, grid[i], grid[i + 1] - grid[i], tol,
                                     params["max_iter"], stats)
            bar.update()
            if cb is not None:
                cb(j + 1, grid[i], xs)
        bar.close()
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
            warnings.warn(msg, RuntimeWarning, stacklevel=4)
        return xs, None
    # positions in the generation grid: N (data, t = 0), N - 1, ..., 0 (noise)
    cur = x                                                               # position N
    prev = x + (grid[N - 1] - grid[N]) * v(x, grid[N]) if aux is None else aux    # N - 1
    bar.update()
    if cb is not None:
        cb(1, grid[N - 1], prev)
    # recover position k - 1 from positions k (prev) and k + 1 (cur)
    for j, k in enumerate(range(N - 1, 0, -1)):
        ca, cb_, cv = _lmm_coefficients(scheme, grid[k - 1], grid[k], grid[k + 1], params)
        older = (cur - cb_ * prev - cv * v(prev, grid[k])) / ca
        _check_finite(scheme, "inversion", grid[k - 1], older)
        cur, prev = prev, older
        bar.update()
        if cb is not None:
            cb(j + 2, grid[k - 1], prev)
    bar.close()
    return prev, cur
