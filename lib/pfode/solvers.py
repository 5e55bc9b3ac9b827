"""Probability-flow ODE solvers: one registry of schemes behind one signature.

Every scheme integrates ``dx/dt = v(x, t)`` [book: eq-ch2-velocity] over a strictly monotone
grid ``ts`` in [0, 1] (:mod:`pfode.grid`), through

    ``integrate(field, x, ts, *, method, rtol, atol, callback, progress, info, aux, max_nfe,
    **options)``

and the three front ends built on it: ``generate`` (noise to data, t: 1 → 0), ``invert``
(data to noise, t: 0 → 1) and ``reconstruct`` (their composition, the paper's Eq. 4 and
Algorithm 1 [book: eq-ch1-reconstruction]), each taking ``steps`` or ``ts``. The methods
(:data:`SCHEMES`):

- ``"euler"``, ``"heun"``, ``"rk4"``: explicit Runge–Kutta on the grid (Butcher tableaus in
  :data:`TABLEAUS`). In this convention Euler is DDIM, and Euler generation is diffusers'
  ``FlowMatchEulerDiscreteScheduler``; Euler *inversion* is the "naive DDIM inversion".
  Heun's option ``last_step="euler"`` takes an Euler step on the last interval of the grid, as
  diffusers' ``FlowMatchHeunDiscreteScheduler`` does (its second stage would divide by the
  noise level 0 there); the default ``"heun"`` is the trapezoid on every interval (EDM, Alg. 1,
  takes the same Euler last step only because its grid ends at σ = 0).
- ``"dopri5"``: adaptive Dormand–Prince 5(4) from ``torchdiffeq``; ``ts`` are output times.
- ``"scipy-rk45"``, ``"scipy-bdf"``: ``scipy.integrate.solve_ivp`` point by point in float64
  (RK45 as in the instability paper's Appendix E.1; BDF for stiff fields, with the field's
  closed-form ``velocity_jacobian`` when it has one). Option ``workers``: a process pool.
- ``"edict"``, ``"bdia"``, ``"belm"``, ``"fixed-point"``: the exactly invertible samplers of
  :mod:`pfode.exact_inversion`; a decreasing grid runs their generation, an increasing grid
  its exact inverse. Options ``p`` (EDICT), ``gamma`` (BDIA), ``tol``, ``max_iter``,
  ``on_fail`` (fixed point). Their second state enters as ``aux=`` and leaves in
  ``info["aux"]``.

Every call counts its velocity evaluations: pass ``info={}`` and read ``info["nfe"]``
(evaluations per point). ``max_nfe`` stops a solve that would spend more, with
:class:`BudgetExceeded`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field as dc_field
from typing import Callable, Optional

import numpy as np
import torch
from tqdm import tqdm  # text bars: no ipywidgets needed in notebooks

from . import exact_inversion
from ._checks import (FLOAT_DTYPES, as_batch, as_float, check_callable, check_choice, check_int,
                      check_output, check_positive, checked_field)
from .grid import check_grid, time_grid

Field = Callable[[torch.Tensor, object], torch.Tensor]
Callback = Callable[[int, float, torch.Tensor], None]

# Butcher tableaus (a, b, c): explicit Runge–Kutta methods as data.
TABLEAUS = {
    "euler": ([], [1.0], [0.0]),
    "heun": ([[1.0]], [0.5, 0.5], [0.0, 1.0]),  # explicit trapezoid (Heun 1900; EDM Alg. 1)
    "rk4": ([[0.5], [0.0, 0.5], [0.0, 0.0, 1.0]], [1 / 6, 1 / 3, 1 / 3, 1 / 6], [0.0, 0.5, 0.5, 1.0]),
}


@dataclass(frozen=True)
class Scheme:
    """A registered method: its family (``"runge-kutta"``, ``"adaptive"``, ``"exact"``), its
    global order, its keyword options with their defaults, and one line on what it is."""

    name: str
    kind: str
    order: int
    options: dict = dc_field(default_factory=dict)
    summary: str = ""

    @property
    def coupled(self) -> bool:
        """True when the scheme carries a second state (``aux``)."""
        return self.name in ("edict", "bdia", "belm")


SCHEMES = {
    "euler": Scheme("euler", "runge-kutta", 1, summary="Euler; DDIM in this convention"),
    "heun": Scheme("heun", "runge-kutta", 2, {"last_step": "heun"},
                   "explicit trapezoid (EDM's Heun); last_step=\"euler\" is diffusers' "
                   "FlowMatchHeunDiscreteScheduler"),
    "rk4": Scheme("rk4", "runge-kutta", 4, summary="classical Runge–Kutta"),
    "dopri5": Scheme("dopri5", "adaptive", 5, summary="Dormand–Prince 5(4), torchdiffeq"),
    "scipy-rk45": Scheme("scipy-rk45", "adaptive", 5, {"workers": 1},
                         "scipy solve_ivp RK45, point by point"),
    "scipy-bdf": Scheme("scipy-bdf", "adaptive", 5, {"workers": 1},
                        "scipy solve_ivp BDF (stiff; orders 1–5), point by point"),
    **{name: Scheme(name, "exact", exact_inversion.ORDER[name], exact_inversion.DEFAULTS[name],
                    summary) for name, summary in (
        ("edict", "EDICT, exactly invertible coupled pair"),
        ("bdia", "BDIA, exactly invertible two-step rule"),
        ("belm", "O-BELM, exactly invertible two-step rule of order 2"),
        ("fixed-point", "Euler; inversion by fixed-point iteration"))},
}
METHODS = tuple(SCHEMES)
ADAPTIVE = tuple(k for k, s in SCHEMES.items() if s.kind == "adaptive")
ORDER = {k: s.order for k, s in SCHEMES.items()}
DEFAULT_STEPS = 100
COMMON = ("rtol", "atol", "callback", "progress", "info", "aux", "max_nfe")
INFO_KEYS = ("method", "nfe", "nfev", "njev", "nlu", "aux", "converged", "max_update", "max_iter_used")
"""The keys :func:`integrate` writes into ``info`` (a reused dict loses those of the last call)."""


class BudgetExceeded(RuntimeError):
    """A solve stopped because it would have spent more than ``max_nfe`` velocity evaluations
    per point; ``nfe`` is what it had spent, ``t`` the time it had reached."""

    def __init__(self, nfe: float, t: float, max_nfe: int):
        super().__init__(f"the solve needed more than max_nfe = {max_nfe} evaluations of the "
                         f"field per point; it stopped at t = {t:.4g}")
        self.nfe, self.t, self.max_nfe = nfe, t, max_nfe

    def __reduce__(self):                     # picklable across a process pool
        return BudgetExceeded, (self.nfe, self.t, self.max_nfe)


def default_steps(method: str) -> int:
    """Steps of the default uniform grid: 100 for a fixed-step scheme; 1 (output at the end
    only) for an adaptive one."""
    return 1 if check_choice(method, "method", METHODS) in ADAPTIVE else DEFAULT_STEPS


def default_tolerances(dtype) -> tuple[float, float]:
    """(rtol, atol) used by the adaptive methods when none are given, for a float32 or
    float64 dtype (torch or numpy dtypes, or the Python ``float``, which is float64)."""
    if dtype in FLOAT_DTYPES:
        return (1e-8, 1e-10) if dtype == torch.float64 else (1e-5, 1e-7)
    if dtype is None:
        raise TypeError("dtype must be a float32 or float64 dtype, got None")
    try:
        np_dtype = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"dtype must be a float32 or float64 dtype, got {dtype!r}") from None
    if np_dtype == np.float64:
        return 1e-8, 1e-10
    if np_dtype == np.float32:
        return 1e-5, 1e-7
    raise TypeError(f"dtype must be a float32 or float64 dtype, got {dtype!r}")


def rk_step(field: Field, x: torch.Tensor, t: float, h: float, method: str) -> torch.Tensor:
    """One explicit Runge–Kutta step ``x(t) -> x(t + h)`` (h may be negative) of a fixed-step
    method (``"euler"``, ``"heun"``, ``"rk4"``; the Butcher tableaus above)."""
    check_choice(method, "method (a fixed-step method)", TABLEAUS)
    t, h = as_float(t, "t"), as_float(h, "h")
    if not (math.isfinite(t) and math.isfinite(h)):
        raise ValueError(f"t and h must be finite, got t = {t}, h = {h}")
    check_callable(field, "field")
    x = as_batch(x, "x", n=getattr(field, "n", None))
    return _rk_step(checked_field(field), x, t, h, method)


def _rk_step(field, x, t, h, method):
    a, b, c = TABLEAUS[method]
    ks = []
    for i, ci in enumerate(c):
        xi = x
        for aij, kj in zip(a[i - 1] if i else [], ks):
            if aij:
                xi = xi + (h * aij) * kj
        ks.append(field(xi, t + ci * h))
    out = x
    for bi, ki in zip(b, ks):
        out = out + (h * bi) * ki
    return out


class _Counted:
    """The checked field, counting the rows it evaluates (NFE = rows / batch) and refusing an
    evaluation beyond ``max_nfe`` per point."""

    def __init__(self, field, batch: int, max_nfe: Optional[int]):
        self.field, self.batch, self.max_nfe, self.rows = checked_field(field), batch, max_nfe, 0

    def tick(self, rows: int, t) -> None:
        """Count ``rows`` evaluations at time ``t``, refusing those beyond the budget."""
        self.rows += rows
        if self.max_nfe is not None and self.rows > self.max_nfe * self.batch:
            raise BudgetExceeded((self.rows - rows) / self.batch, float(t), self.max_nfe)

    def __call__(self, x, t):
        self.tick(x.shape[0], t)
        return self.field(x, t)

    @property
    def nfe(self) -> float:
        return self.rows / self.batch


def _check_options(method: str, options: dict) -> dict:
    scheme = SCHEMES[method]
    unknown = sorted(set(options) - set(scheme.options))
    if unknown:
        allowed = ", ".join(scheme.options) or "none"
        raise ValueError(f"unknown option(s) {', '.join(unknown)} for method {method!r} (its "
                         f"options: {allowed}; common to all: {', '.join(COMMON)})")
    if scheme.kind == "exact":
        return exact_inversion.check_options(method, options)
    out = {**scheme.options, **options}
    if "workers" in out:
        check_int(out["workers"], "workers")
    if "last_step" in out:
        check_choice(out["last_step"], "last_step", ("heun", "euler"))
    return out


def integrate(field: Field, x: torch.Tensor, ts, *, method: str = "dopri5",
              rtol: Optional[float] = None, atol: Optional[float] = None,
              callback: Optional[Callback] = None, progress: bool = False,
              info: Optional[dict] = None, aux: Optional[torch.Tensor] = None,
              max_nfe: Optional[int] = None, **options) -> torch.Tensor:
    """Solve ``dx/dt = field(x, t)`` from ``ts[0]`` to ``ts[-1]``; return x at ``ts[-1]``.

    Parameters
    ----------
    field : callable ``v(x, t)`` on (B, n) batches
    x : (B, n) state at ``ts[0]``
    ts : strictly monotone times in [0, 1]: the step grid of a fixed-step or exact scheme,
        the output grid of an adaptive one
    method : a name of :data:`SCHEMES`
    rtol, atol : tolerances of the adaptive methods (default :func:`default_tolerances`);
        fixed-step schemes ignore them
    callback : ``callback(i, t_i, x_i)`` at every time of ``ts``, the start included, so a
        caller can keep the trajectory (``traj = []; callback=lambda i, t, x: traj.append(x)``)
    progress : a text progress bar over steps (or points, for the scipy methods)
    info : a dict filled with ``nfe`` (velocity evaluations per point) and ``method``; the
        scipy methods add per-point ``nfev`` (and ``njev``, ``nlu`` for BDF), the coupled
        exact schemes the second state ``aux`` at the end, the fixed-point inversion
        ``converged``, ``max_update``, ``max_iter_used``
    aux : the second state of a coupled exact scheme at ``ts[0]`` (default: from ``x``)
    max_nfe : stop with :class:`BudgetExceeded` before spending more evaluations per point
    options : the method's own options (``SCHEMES[method].options``)
    """
    method = check_choice(method, "method", METHODS)
    scheme = SCHEMES[method]
    check_callable(field, "field")
    check_callable(callback, "callback", optional=True)
    if info is not None and not isinstance(info, dict):
        raise TypeError(f"info must be a dict (filled with the evaluation counts) or None, got "
                        f"{type(info).__name__}")
    x = as_batch(x, "x", n=getattr(field, "n", None))
    ts = check_grid(ts)
    check_positive(rtol, "rtol")
    check_positive(atol, "atol")
    if max_nfe is not None:
        check_int(max_nfe, "max_nfe")
    opts = _check_options(method, options)
    if aux is not None:
        if not scheme.coupled:
            raise ValueError(f"aux must be None for method {method!r} (it has one state)")
        aux = as_batch(aux, "aux", n=x.shape[1])
        if aux.shape != x.shape:
            raise ValueError(f"aux must have the shape of x, {tuple(x.shape)}, got {tuple(aux.shape)}")
        aux = aux.to(x)
    out_info = {"method": method}
    v = _Counted(field, x.shape[0], max_nfe)
    try:
        if scheme.kind == "runge-kutta":
            return _runge_kutta(v, x, ts.tolist(), method, callback, progress, opts.get("last_step"))
        if scheme.kind == "exact":
            return _exact(v, x, ts, method, opts, aux, callback, progress, out_info)
        d_rtol, d_atol = default_tolerances(x.dtype)
        rtol = d_rtol if rtol is None else rtol
        atol = d_atol if atol is None else atol
        if method == "dopri5":
            return _dopri5(v, x, ts, rtol, atol, callback)
        return _scipy(field, x, ts, method, rtol, atol, callback, progress, max_nfe,
                      opts["workers"], out_info)
    finally:       # also when the solve raises: the counts and statistics so far
        if info is not None:
            out_info.setdefault("nfe", v.nfe)
            for k in INFO_KEYS:
                info.pop(k, None)
            info.update(out_info)


def _runge_kutta(v, x, grid, method, callback, progress, last_step=None):
    if callback is not None:
        callback(0, grid[0], x)
    last = len(grid) - 2
    for i in tqdm(range(len(grid) - 1), desc=method, disable=not progress, leave=False):
        scheme = "euler" if (i == last and last_step == "euler") else method
        x = _rk_step(v, x, grid[i], grid[i + 1] - grid[i], scheme)
        if callback is not None:
            callback(i + 1, grid[i + 1], x)
    return x


def _exact(v, x, ts, method, opts, aux, callback, progress, out_info):
    grid = ts.tolist()
    if grid[0] > grid[-1]:
        out, aux_out = exact_inversion.generation(v, x, grid, method, opts, aux=aux,
                                                  callback=callback, progress=progress)
    else:
        out, aux_out = exact_inversion.inversion(v, x, grid[::-1], method, opts, aux=aux,
                                                 callback=callback, progress=progress,
                                                 info=out_info)
    if aux_out is not None:
        out_info["aux"] = aux_out
    return out


def _dopri5(v, x, ts, rtol, atol, callback):
    from torchdiffeq import odeint
    grid = ts.to(x.dtype)
    try:
        out = odeint(lambda t, y: v(y, t), x, grid, rtol=rtol, atol=atol, method="dopri5",
                     options={"step_t": grid})               # no overshoot; (T, B, n)
    except AssertionError as exc:                            # torchdiffeq's step-size underflow
        raise FloatingPointError(f"dopri5 could not continue ({exc}): the field is singular "
                                 f"or too stiff there for rtol = {rtol:g}") from None
    if callback is not None:
        for i, (t, xi) in enumerate(zip(ts.tolist(), out)):
            callback(i, t, xi)
    return out[-1]


# ---- scipy, point by point --------------------------------------------------------------------
_WORK: dict = {}     # what the worker processes of a pool read (inherited by fork)


def _solve_point(b: int, w: Optional[dict] = None):
    """Solve the ODE for row ``b`` of ``w["x"]`` with scipy (``w``: the call's work, by default
    ``_WORK``, which is how a forked pool worker receives it); returns (trajectory (T, n),
    nfev, njev, nlu)."""
    from scipy.integrate import solve_ivp
    w = _WORK if w is None else w
    v = _Counted(w["field"], 1, w["max_nfe"])
    if w["numpy"] is not None:                  # a field's single-row numpy path
        def rhs(t, y):
            v.tick(1, t)
            out = w["numpy"](y, float(t))
            if not np.isfinite(out).all():               # the message of check_output
                check_output(torch.from_numpy(out)[None], torch.from_numpy(y)[None], "field", t)
            return out
    else:
        def rhs(t, y):
            return v(torch.from_numpy(y)[None], float(t))[0].detach().numpy()

    jac = None
    if w["jacobian"] is not None:
        def jac(t, y):
            return w["jacobian"](torch.from_numpy(y)[None], float(t))[0].detach().numpy()
    t_eval = w["t_eval"]
    extra = {} if jac is None else {"jac": jac}
    sol = solve_ivp(rhs, (t_eval[0], t_eval[-1]), w["x"][b], method=w["scipy_method"],
                    t_eval=t_eval, rtol=w["rtol"], atol=w["atol"], **extra)
    if not sol.success:
        raise RuntimeError(f"scipy {w['scipy_method']} failed at point {b}: {sol.message}")
    return sol.y.T, v.nfe, sol.njev, sol.nlu


def _scipy(field, x, ts, method, rtol, atol, callback, progress, max_nfe, workers, out_info):
    """Point-by-point ``solve_ivp`` in float64 (RK45 as in the paper's Appendix E.1; BDF with
    the field's ``velocity_jacobian`` when it has one). A field with a single-row numpy method
    ``velocity_np(y, t)`` is evaluated through it (the torch call's fixed cost dominates a
    one-row evaluation). BLAS runs single-threaded: the systems
    are small, and threads fighting over shared cores made the same solves far slower."""
    from threadpoolctl import threadpool_limits
    scipy_method = {"scipy-rk45": "RK45", "scipy-bdf": "BDF"}[method]
    jacobian = getattr(field, "velocity_jacobian", None) if method == "scipy-bdf" else None
    work = dict(field=field, numpy=getattr(field, "velocity_np", None),
                x=x.detach().to(torch.float64).cpu().numpy(), t_eval=ts.numpy(),
                scipy_method=scipy_method, rtol=rtol, atol=atol, max_nfe=max_nfe, jacobian=jacobian)
    B = x.shape[0]
    with threadpool_limits(1):
        if workers > 1 and B > 1:
            import multiprocessing as mp
            saved = dict(_WORK)                   # a solve nested in a field keeps its own
            _WORK.clear()
            _WORK.update(work)
            try:
                with mp.get_context("fork").Pool(workers) as pool:
                    it = pool.imap(_solve_point, range(B), chunksize=max(1, B // (4 * workers)))
                    res = list(tqdm(it, total=B, desc=method, disable=not progress, leave=False))
            finally:
                _WORK.clear()
                _WORK.update(saved)
        else:
            res = [_solve_point(b, work) for b in tqdm(range(B), desc=method, disable=not progress,
                                                       leave=False)]
    traj = torch.from_numpy(np.stack([r[0] for r in res], axis=1)).to(x)      # (T, B, n)
    nfev = np.array([r[1] for r in res])
    out_info.update(nfe=float(nfev.mean()), nfev=nfev)
    if method == "scipy-bdf":
        out_info.update(njev=np.array([r[2] for r in res]), nlu=np.array([r[3] for r in res]))
    if callback is not None:
        for i, t in enumerate(ts.tolist()):
            callback(i, t, traj[i])
    return traj[-1]


# ---- the front ends ---------------------------------------------------------------------------
def generate(field: Field, z: torch.Tensor, *, method: str = "dopri5", steps: Optional[int] = None,
             ts=None, **solver) -> torch.Tensor:
    """Generation map ``G``: noise ``z`` (t = 1) to data (t = 0), shape (B, n) [book: def-ch2-maps].

    ``steps`` uniform steps (default :func:`default_steps`), or an explicit decreasing grid
    ``ts`` from 1 to 0 (e.g. a shifted diffusers schedule); ``solver``: the options of
    :func:`integrate`.
    """
    method = check_choice(method, "method", METHODS)
    z = as_batch(z, "z", n=getattr(field, "n", None))
    grid = time_grid(1.0, 0.0, steps=steps, ts=ts, default_steps=default_steps(method))
    return integrate(field, z, grid, method=method, **solver)


def invert(field: Field, x: torch.Tensor, *, method: str = "dopri5", steps: Optional[int] = None,
           ts=None, **solver) -> torch.Tensor:
    """Inversion ``F = G^{-1}``: data ``x`` (t = 0) to noise (t = 1), shape (B, n); ``ts``
    increasing from 0 to 1. For an exact scheme this is the exact inverse of its generation."""
    method = check_choice(method, "method", METHODS)
    x = as_batch(x, "x", n=getattr(field, "n", None))
    grid = time_grid(0.0, 1.0, steps=steps, ts=ts, default_steps=default_steps(method))
    return integrate(field, x, grid, method=method, **solver)


def reconstruct(field: Field, x: torch.Tensor, *, inversion: Optional[dict] = None,
                generation: Optional[dict] = None, info: Optional[dict] = None,
                **common) -> tuple[torch.Tensor, torch.Tensor]:
    """Diffusion reconstruction (paper Eq. 4, Algorithm 1) [book: alg-reconstruction]:
    ``x_rec = Ĝ(F̂(x))``.

    ``common`` solver options apply to both halves (a ``ts`` is the generation grid; the
    inversion runs it reversed); ``inversion`` and ``generation`` dicts override them per half.
    A coupled exact scheme passes its second state from the inversion to the generation, so
    the round trip is the identity up to round-off. ``info`` receives ``inversion`` and
    ``generation`` (the two halves' info) and ``nfe`` (their sum). Returns ``(x_rec, z_hat)``
    with ``z_hat = F̂(x)``.
    """
    for name, d in (("inversion", inversion), ("generation", generation)):
        if d is not None and not isinstance(d, dict):
            raise TypeError(f"{name} must be a dict of solver options, got {type(d).__name__}")
    if info is not None and not isinstance(info, dict):
        raise TypeError(f"info must be a dict or None, got {type(info).__name__}")
    own_inv, own_gen = inversion or {}, generation or {}
    inv, gen = {**common, **own_inv}, {**common, **own_gen}
    for half, own in ((inv, own_inv), (gen, own_gen)):
        if "steps" in own or "ts" in own:           # a half's own grid replaces the common one
            for k in ("steps", "ts"):
                if k not in own:
                    half.pop(k, None)
    if common.get("ts") is not None and "ts" in inv and "ts" not in own_inv:
        inv["ts"] = time_grid(1.0, 0.0, ts=common["ts"]).flip(0)   # the generation grid, reversed
    if "aux" not in own_gen:
        gen.pop("aux", None)          # an aux in common is the inversion's start, not the generation's
    info_inv, info_gen = {}, {}
    z_hat = invert(field, x, info=info_inv, **inv)
    if "aux" in info_inv and "aux" not in gen and _same_pair(inv, gen):
        gen["aux"] = info_inv["aux"]
    x_rec = generate(field, z_hat, info=info_gen, **gen)
    if info is not None:
        info.update(inversion=info_inv, generation=info_gen, nfe=info_inv["nfe"] + info_gen["nfe"])
    return x_rec, z_hat


def _same_pair(inv: dict, gen: dict) -> bool:
    """Whether the state pair at the end of the inversion ``inv`` is the pair the generation
    ``gen`` starts from: the same coupled scheme, and for the two-step ones the same second
    grid time (EDICT's second state sits at t = 1 on any grid)."""
    method = inv.get("method", "dopri5")
    if gen.get("method", "dopri5") != method:
        return False
    if method == "edict":
        return True
    g_inv = time_grid(0.0, 1.0, steps=inv.get("steps"), ts=inv.get("ts"), default_steps=default_steps(method))
    g_gen = time_grid(1.0, 0.0, steps=gen.get("steps"), ts=gen.get("ts"), default_steps=default_steps(method))
    return bool(abs(float(g_inv[-2]) - float(g_gen[1])) <= 1e-15)


class FlowMap:
    """The flow map of ``field`` from ``t0`` to ``t1`` with fixed solver options.

    ``M(z)`` solves the PF-ODE on the grid ``M.ts`` (``steps`` uniform steps or an explicit
    ``ts``, running from ``t0`` to ``t1``); ``M.jvp(z, u)`` returns ``(M(z), J_M(z) u)``:

    - Runge–Kutta: the variational equation ``d/dt [x, w] = [v(x, t), ∇_x v(x, t) w]`` with the
      same steps, exactly the derivative of the discrete map (``∇_x v · w`` from the field's
      closed-form ``velocity_jvp`` when it has one, else one forward-mode JVP of the field);
    - adaptive methods: the projected form of :meth:`log_jvp`, so the step control sees the
      tangent's direction and log-length;
    - exact schemes: forward-mode differentiation through the scheme, exactly the derivative
      of the discrete map. For a coupled scheme with an explicit ``aux`` the same tangent is
      added to both states.
    """

    def __init__(self, field: Field, t0: float, t1: float, *, method: str = "dopri5",
                 steps: Optional[int] = None, ts=None, **solver):
        check_callable(field, "field")
        method = check_choice(method, "method", METHODS)
        unknown = sorted(set(solver) - {"rtol", "atol", "callback", "progress", "max_nfe"}
                         - set(SCHEMES[method].options))
        if unknown:
            raise ValueError(f"unknown solver option(s) {', '.join(unknown)} for method "
                             f"{method!r}; the options are rtol, atol, callback, progress, "
                             f"max_nfe{''.join(', ' + k for k in SCHEMES[method].options)}")
        check_positive(solver.get("rtol"), "rtol")
        check_positive(solver.get("atol"), "atol")
        _check_options(method, {k: solver[k] for k in SCHEMES[method].options if k in solver})
        self.ts = time_grid(float(t0), float(t1), steps=steps, ts=ts,
                            default_steps=default_steps(method))
        self.field, self.method, self.solver = field, method, dict(solver)
        self.t0, self.t1 = float(self.ts[0]), float(self.ts[-1])

    def _augmented_options(self, n: int) -> dict:
        """The solver options for an augmented state ``[x, ...]``: the callback sees ``x``."""
        opts = dict(self.solver)
        cb = opts.get("callback")
        if cb is not None:
            opts["callback"] = lambda i, t, y: cb(i, t, y[:, :n])
        return opts

    @property
    def steps(self) -> int:
        return self.ts.numel() - 1

    def __call__(self, z: torch.Tensor, aux: Optional[torch.Tensor] = None, *,
                 info: Optional[dict] = None) -> torch.Tensor:
        z = as_batch(z, "z", n=getattr(self.field, "n", None))
        return integrate(self.field, z, self.ts, method=self.method, aux=aux, info=info,
                         **self.solver)

    def _field_jvp(self, x, t, w):
        closed_form = getattr(self.field, "velocity_jvp", None)
        if closed_form is not None:
            return closed_form(x, t, w)
        from .instability import forward_jvp
        v, jw = forward_jvp(lambda y: self.field(y, t), x, w, "field")
        return check_output(v, x, "field", t), jw

    def jvp(self, z: torch.Tensor, u: torch.Tensor,
            aux: Optional[torch.Tensor] = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(M(z), J_M(z) u)`` (see the class docstring for how each family computes it)."""
        z = as_batch(z, "z", n=getattr(self.field, "n", None))
        u = as_batch(u, "u", n=z.shape[1])
        kind = SCHEMES[self.method].kind
        if kind == "exact":
            from .instability import forward_jvp
            opts = {k: v for k, v in self.solver.items() if k != "callback"}

            def scheme_map(y):
                a = None if aux is None else aux + (y - z)
                return integrate(self.field, y, self.ts, method=self.method, aux=a, **opts)
            return forward_jvp(scheme_map, z, u, "field")
        if kind == "adaptive":
            x, d, log_gain = self.log_jvp(z, u)
            return x, torch.exp(log_gain)[:, None] * u.norm(dim=1, keepdim=True) * d
        n = z.shape[1]

        def tangent(y, t):
            v, jw = self._field_jvp(y[:, :n], t, y[:, n:])
            return torch.cat([v, jw], 1)

        y = integrate(tangent, torch.cat([z, u], 1), self.ts, method=self.method,
                      **self._augmented_options(n))
        return y[:, :n], y[:, n:]

    def log_jvp(self, z: torch.Tensor, u: torch.Tensor):
        r"""``(M(z), d, log(‖J_M(z) u‖ / ‖u‖))`` with ``d`` the unit vector along ``J_M(z) u``.

        Writing the tangent as ``w = e^ℓ d`` with ``‖d‖ = 1`` turns ``ẇ = A w``
        (``A = ∇_x v(x(t), t)``) into the projected equation [book: eq-projected-tangent]

        .. math:: \dot d = A d - (d^\top A d)\, d, \qquad \dot\ell = d^\top A d,

        whose components all stay of order one, so that an adaptive solver controls the
        error of the direction and of the log-length, not of a number of size 1e20.
        """
        z = as_batch(z, "z", n=getattr(self.field, "n", None))
        u = as_batch(u, "u", n=z.shape[1])
        if bool((u.norm(dim=1) == 0).any()):
            raise ValueError("u must be non-zero in every row")
        n = z.shape[1]

        def projected(y, t):
            x, d = y[:, :n], y[:, n:2 * n]
            v, ad = self._field_jvp(x, t, d)
            rate = (d * ad).sum(1, keepdim=True) / (d * d).sum(1, keepdim=True)  # dᵀAd, (B, 1)
            return torch.cat([v, ad - rate * d, rate], 1)

        y0 = torch.cat([z, u / u.norm(dim=1, keepdim=True), torch.zeros_like(z[:, :1])], 1)
        if SCHEMES[self.method].kind == "exact":
            x, w = self.jvp(z, u)
            wn = w.norm(dim=1)
            return x, w / wn[:, None], torch.log(wn / u.norm(dim=1))
        y = integrate(projected, y0, self.ts, method=self.method, **self._augmented_options(n))
        d = y[:, n:2 * n]
        return y[:, :n], d / d.norm(dim=1, keepdim=True), y[:, 2 * n]

    def __repr__(self) -> str:
        return (f"FlowMap({self.field!r}, t: {self.t0:g} -> {self.t1:g}, {self.method}, "
                f"{self.steps} steps, {self.solver})")


def generation_map(field: Field, **solver) -> FlowMap:
    """The generation map ``G`` (t: 1 → 0) as a :class:`FlowMap` with a tangent map."""
    return FlowMap(field, 1.0, 0.0, **solver)


def inversion_map(field: Field, **solver) -> FlowMap:
    """The inversion ``F = G^{-1}`` (t: 0 → 1) as a :class:`FlowMap`."""
    return FlowMap(field, 0.0, 1.0, **solver)
