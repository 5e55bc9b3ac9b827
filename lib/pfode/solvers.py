"""Probability-flow ODE solvers with one signature.

Every solver integrates ``dx/dt = v(x, t)`` over a monotone time grid ``ts`` and has the
signature ``integrate(field, x, ts, *, method, rtol, atol, callback)``:

- ``"euler"``, ``"heun"``, ``"rk4"``: fixed steps on the grid ``ts`` (Butcher tableaus
  below). In this convention Euler is DDIM, and Euler generation is diffusers'
  ``FlowMatchEulerDiscreteScheduler``. Euler *inversion* evaluates v at the start of
  each step, the "naive DDIM inversion" of the literature.
- ``"dopri5"``: adaptive Dormand–Prince 5(4) from ``torchdiffeq``; ``ts`` are output times.
- ``"scipy-rk45"``: ``scipy.integrate.solve_ivp(method="RK45")`` point by point, as the
  instability paper did (its Appendix E.1). The reference, and the speed baseline.

``generate`` maps noise to data (t: 1 → 0), ``invert`` data to noise (t: 0 → 1), and
``reconstruct`` composes them (the paper's Eq. 4 and Algorithm 1).
"""
from __future__ import annotations

import math
from typing import Callable, Optional

import numpy as np
import torch
from tqdm import tqdm  # text bars: no ipywidgets needed in notebooks

from ._checks import (FLOAT_DTYPES, as_batch, as_float, check_callable, check_choice, check_output,
                      check_positive, check_steps, checked_field)

Field = Callable[[torch.Tensor, object], torch.Tensor]
Callback = Callable[[int, float, torch.Tensor], None]

# Butcher tableaus (a, b, c): explicit Runge–Kutta methods as data.
TABLEAUS = {
    "euler": ([], [1.0], [0.0]),
    "heun": ([[1.0]], [0.5, 0.5], [0.0, 1.0]),  # explicit trapezoid (Heun 1900; EDM Alg. 1)
    "rk4": ([[0.5], [0.0, 0.5], [0.0, 0.0, 1.0]], [1 / 6, 1 / 3, 1 / 3, 1 / 6], [0.0, 0.5, 0.5, 1.0]),
}
ADAPTIVE = ("dopri5", "scipy-rk45")
METHODS = tuple(TABLEAUS) + ADAPTIVE
ORDER = {"euler": 1, "heun": 2, "rk4": 4, "dopri5": 5, "scipy-rk45": 5}
DEFAULT_STEPS = 100


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
    field = checked_field(field)
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


def _as_times(ts, name: str = "ts") -> torch.Tensor:
    """A 1-D float64 tensor of times from a sequence, array or tensor."""
    if isinstance(ts, torch.Tensor):
        if ts.is_complex() or ts.dtype == torch.bool:
            raise TypeError(f"{name} must hold real times, got dtype {ts.dtype}")
        return ts.detach().to("cpu", torch.float64).flatten()
    try:
        arr = np.asarray(ts, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a sequence of times in [0, 1], got {ts!r}") from None
    return torch.from_numpy(arr.copy()).flatten()


def _check_grid(ts, like: torch.Tensor = None) -> torch.Tensor:
    ts = _as_times(ts)
    if ts.numel() < 2:
        raise ValueError("ts must hold at least two times")
    if not bool(torch.isfinite(ts).all()) or bool((ts < 0).any()) or bool((ts > 1).any()):
        raise ValueError("ts must lie in [0, 1] (t = 0 data, t = 1 noise)")
    d = ts[1:] - ts[:-1]
    if not (bool((d > 0).all()) or bool((d < 0).all())):
        raise ValueError("ts must be strictly monotone")
    return ts


def integrate(field: Field, x: torch.Tensor, ts, *, method: str = "dopri5",
              rtol: Optional[float] = None, atol: Optional[float] = None,
              callback: Optional[Callback] = None, progress: bool = False) -> torch.Tensor:
    """Solve ``dx/dt = field(x, t)`` from ``ts[0]`` to ``ts[-1]``; return x at ``ts[-1]``.

    ``callback(i, t_i, x_i)`` is called at every time of ``ts``, the start included, so a
    caller can keep the trajectory (``traj = []; callback=lambda i, t, x: traj.append(x)``).
    For fixed-step methods ``ts`` is the step grid; for adaptive ones it is the output grid.
    """
    check_choice(method, "method", METHODS)
    check_callable(field, "field")
    check_callable(callback, "callback", optional=True)
    x = as_batch(x, "x")
    ts = _check_grid(ts, x)
    check_positive(rtol, "rtol")
    check_positive(atol, "atol")
    field = checked_field(field)
    if method in TABLEAUS:
        if callback is not None:
            callback(0, float(ts[0]), x)
        grid = ts.tolist()
        steps = range(len(grid) - 1)
        for i in tqdm(steps, desc=method, disable=not progress, leave=False):
            x = rk_step(field, x, grid[i], grid[i + 1] - grid[i], method)
            if callback is not None:
                callback(i + 1, grid[i + 1], x)
        return x
    d_rtol, d_atol = default_tolerances(x.dtype)
    rtol = d_rtol if rtol is None else rtol
    atol = d_atol if atol is None else atol
    if method == "dopri5":
        from torchdiffeq import odeint
        try:
            out = odeint(lambda t, y: field(y, t), x, ts.to(x.dtype), rtol=rtol, atol=atol,
                         method="dopri5", options={"step_t": ts.to(x.dtype)})  # no overshoot; (T, B, n)
        except AssertionError as exc:                  # torchdiffeq's step-size underflow
            raise FloatingPointError(f"dopri5 could not continue ({exc}): the field is singular "
                                     f"or too stiff there for rtol = {rtol:g}") from None
        if callback is not None:
            for i, (t, xi) in enumerate(zip(ts.tolist(), out)):
                callback(i, t, xi)
        return out[-1]
    return _scipy_rk45(field, x, ts, rtol, atol, callback, progress)


def _scipy_rk45(field, x, ts, rtol, atol, callback, progress):
    """Point-by-point RK45 with scipy, in float64, as in the paper's Appendix E.1."""
    from scipy.integrate import solve_ivp

    def rhs(t, y):
        yt = torch.from_numpy(y)[None]
        return field(yt, float(t))[0].detach().numpy()       # checked: NaN stops at once

    t_eval = ts.numpy()
    traj = np.empty((len(t_eval), x.shape[0], x.shape[1]))
    x64 = x.detach().to(torch.float64).cpu().numpy()
    for b in tqdm(range(x.shape[0]), desc="scipy RK45", disable=not progress, leave=False):
        sol = solve_ivp(rhs, (t_eval[0], t_eval[-1]), x64[b], method="RK45", t_eval=t_eval,
                        rtol=rtol, atol=atol)
        if not sol.success:
            raise RuntimeError(f"scipy RK45 failed at point {b}: {sol.message}")
        traj[:, b] = sol.y.T
    out = torch.from_numpy(traj).to(x)
    if callback is not None:
        for i, t in enumerate(t_eval.tolist()):
            callback(i, t, out[i])
    return out[-1]


def _grid(t0: float, t1: float, method: str, steps, ts) -> torch.Tensor:
    if ts is not None:
        if steps is not None:
            raise ValueError("give steps or ts, not both")
        ts = _as_times(ts)
        if ts.numel() < 2 or float(ts[0]) != t0 or float(ts[-1]) != t1:
            raise ValueError(f"ts must run from t = {t0} to t = {t1}")
        return ts
    check_steps(steps)
    if steps is None:
        steps = DEFAULT_STEPS if method in TABLEAUS else 1
    return torch.linspace(t0, t1, steps + 1, dtype=torch.float64)


def generate(field: Field, z: torch.Tensor, *, method: str = "dopri5", steps: Optional[int] = None,
             ts=None, rtol: Optional[float] = None, atol: Optional[float] = None,
             callback: Optional[Callback] = None, progress: bool = False) -> torch.Tensor:
    """Generation map ``G``: noise ``z`` (t = 1) to data (t = 0), shape (B, n).

    ``steps`` uniform steps (fixed-step methods, default 100) or output times (adaptive);
    or an explicit decreasing grid ``ts`` from 1 to 0 (e.g. a shifted diffusers schedule).
    """
    check_choice(method, "method", METHODS)
    z = as_batch(z, "z", n=getattr(field, "n", None))
    return integrate(field, z, _grid(1.0, 0.0, method, steps, ts), method=method, rtol=rtol,
                     atol=atol, callback=callback, progress=progress)


def invert(field: Field, x: torch.Tensor, *, method: str = "dopri5", steps: Optional[int] = None,
           ts=None, rtol: Optional[float] = None, atol: Optional[float] = None,
           callback: Optional[Callback] = None, progress: bool = False) -> torch.Tensor:
    """Inversion ``F = G^{-1}``: data ``x`` (t = 0) to noise (t = 1), shape (B, n)."""
    check_choice(method, "method", METHODS)
    x = as_batch(x, "x", n=getattr(field, "n", None))
    return integrate(field, x, _grid(0.0, 1.0, method, steps, ts), method=method, rtol=rtol,
                     atol=atol, callback=callback, progress=progress)


def reconstruct(field: Field, x: torch.Tensor, *, inversion: Optional[dict] = None,
                generation: Optional[dict] = None, **common) -> tuple[torch.Tensor, torch.Tensor]:
    """Diffusion reconstruction (paper Eq. 4, Algorithm 1): ``x_rec = Ĝ(F̂(x))``.

    ``common`` solver options apply to both halves; ``inversion`` and ``generation`` dicts
    override them per half. Returns ``(x_rec, z_hat)`` with ``z_hat = F̂(x)``.
    """
    for name, d in (("inversion", inversion), ("generation", generation)):
        if d is not None and not isinstance(d, dict):
            raise TypeError(f"{name} must be a dict of solver options, got {type(d).__name__}")
    z_hat = invert(field, x, **{**common, **(inversion or {})})
    x_rec = generate(field, z_hat, **{**common, **(generation or {})})
    return x_rec, z_hat


class FlowMap:
    """The flow map of ``field`` from ``t0`` to ``t1`` with fixed solver options.

    ``M(z)`` solves the PF-ODE; ``M.jvp(z, u)`` returns ``(M(z), J_M(z) u)`` by solving the
    variational equation ``d/dt [x, w] = [v(x, t), ∇_x v(x, t) w]`` with the same solver
    (``∇_x v · w`` from the field's closed-form ``velocity_jvp`` when it has one, else one
    forward-mode JVP of the field). For a Runge–Kutta method this is exactly the derivative
    of the discrete map; adaptive methods solve it in projected form (:meth:`log_jvp`), so
    the step control sees the tangent's direction and log-length too.
    """

    OPTIONS = ("method", "steps", "rtol", "atol", "callback", "progress")

    def __init__(self, field: Field, t0: float, t1: float, **solver):
        if "ts" in solver and solver["ts"] is not None:
            raise ValueError("FlowMap takes steps, not ts")
        unknown = sorted(set(solver) - set(self.OPTIONS))
        if unknown:
            raise ValueError(f"unknown solver option(s) {', '.join(unknown)}; the options are "
                             f"{', '.join(self.OPTIONS)}")
        check_callable(field, "field")
        check_choice(solver.get("method", "dopri5"), "method", METHODS)
        check_steps(solver.get("steps"))
        check_positive(solver.get("rtol"), "rtol")
        check_positive(solver.get("atol"), "atol")
        self.field, self.t0, self.t1, self.solver = field, t0, t1, dict(solver)

    def _ts(self):
        return _grid(self.t0, self.t1, self.solver.get("method", "dopri5"),
                     self.solver.get("steps"), None)

    def _options(self):
        return {k: v for k, v in self.solver.items() if k != "steps"}

    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        z = as_batch(z, "z", n=getattr(self.field, "n", None))
        return integrate(self.field, z, self._ts(), **self._options())

    def _field_jvp(self, x, t, w):
        closed_form = getattr(self.field, "velocity_jvp", None)
        if closed_form is not None:
            return closed_form(x, t, w)
        from .instability import _forward_jvp
        v, jw = _forward_jvp(lambda y: self.field(y, t), x, w, "field")
        return check_output(v, x, "field", t), jw

    def jvp(self, z: torch.Tensor, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(M(z), J_M(z) u)``.

        Fixed-step methods solve the linear tangent equation with the same Runge–Kutta
        steps, which is exactly the derivative of the discrete map. Adaptive methods solve
        the projected form of :meth:`log_jvp`, which stays well scaled where ‖J u‖ grows
        by many orders of magnitude (a linear tangent then stalls the step control).
        """
        z = as_batch(z, "z", n=getattr(self.field, "n", None))
        u = as_batch(u, "u", n=z.shape[1])
        if self.solver.get("method", "dopri5") not in TABLEAUS:
            x, d, log_gain = self.log_jvp(z, u)
            return x, torch.exp(log_gain)[:, None] * u.norm(dim=1, keepdim=True) * d
        n = z.shape[1]

        def tangent(y, t):
            v, jw = self._field_jvp(y[:, :n], t, y[:, n:])
            return torch.cat([v, jw], 1)

        y = integrate(tangent, torch.cat([z, u], 1), self._ts(), **self._options())
        return y[:, :n], y[:, n:]

    def log_jvp(self, z: torch.Tensor, u: torch.Tensor):
        r"""``(M(z), d, log(‖J_M(z) u‖ / ‖u‖))`` with ``d`` the unit vector along ``J_M(z) u``.

        Writing the tangent as ``w = e^ℓ d`` with ``‖d‖ = 1`` turns ``ẇ = A w``
        (``A = ∇_x v(x(t), t)``) into the projected equation (book Eq. eq-projected-tangent)

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
        y = integrate(projected, y0, self._ts(), **self._options())
        d = y[:, n:2 * n]
        return y[:, :n], d / d.norm(dim=1, keepdim=True), y[:, 2 * n]

    def __repr__(self) -> str:
        return f"FlowMap({self.field!r}, t: {self.t0} -> {self.t1}, {self.solver})"


def generation_map(field: Field, **solver) -> FlowMap:
    """The generation map ``G`` (t: 1 → 0) as a :class:`FlowMap` with a tangent equation."""
    return FlowMap(field, 1.0, 0.0, **solver)


def inversion_map(field: Field, **solver) -> FlowMap:
    """The inversion ``F = G^{-1}`` (t: 0 → 1) as a :class:`FlowMap`."""
    return FlowMap(field, 0.0, 1.0, **solver)
