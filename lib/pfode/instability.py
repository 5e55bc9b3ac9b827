"""Instability estimators for a map ``M`` (usually the generation map ``G``).

Definitions ([book: ch-instability]; numbers are the paper's):

- intrinsic instability coefficient (Def. 2.2, [book: def-ch3-intrinsic]):
  ``λ_M(z; u) = ‖J_M(z) u‖ / ‖u‖``;
- instability coefficient under a finite perturbation (Prop. 2.1, [book: def-ch3-kappa],
  [book: prop-ch3-instability-effect]): ``κ_M(z, Δ) = ‖M(z + Δ) − M(z)‖ / ‖Δ‖``;
- geometric average (Def. 4.1, [book: def-ch3-geometric]): ``λ̄_M(z) = |det J_M(z)|^{1/n}``,
  which for the flow map comes from Liouville's formula (Lemma D.1, [book: lem-ch5-d1])
  ``log|det J_G(z)| = ∫_1^0 div v(x_t, t) dt = log φ_n(z) − log p_G(G(z))``, and on the
  data side ``log|det J_F(x)| = ∫_0^1 div v(x_t, t) dt = −log|det J_G(F(x))|``
  ([book: eq-ch5-data-side]).

Two kinds of first argument:

- estimators of λ, κ, Jacobians and spectra take a map ``map_fn``, a callable taking
  ``(B, n)`` to ``(B, n)`` row by row (e.g. ``pfode.generation_map(field, method="rk4",
  steps=200)``);
- integrals along the flow (:func:`log_det_jacobian`, :func:`path_constants`) and field
  quantities (:func:`divergence`, :func:`field_jacobian`) take the field ``v(x, t)``. The
  integrals run either way: ``direction="generate"`` (t: 1 → 0) or ``"invert"`` (t: 0 → 1).
"""
from __future__ import annotations

import math
from typing import Callable, NamedTuple, Optional

import numpy as np
import torch

from ._checks import (as_batch, check_callable, check_choice, check_generator, check_int,
                      check_norms, check_output, check_steps, check_time)
from .grid import time_grid
from .solvers import Field, default_steps, integrate

MapFn = Callable[[torch.Tensor], torch.Tensor]


def _directions(u, z: torch.Tensor, name: str = "u") -> torch.Tensor:
    """Broadcast a direction (n,) or (B, n) to z's shape; reject zero directions."""
    if isinstance(u, torch.Tensor):
        if not torch.is_floating_point(u) and u.dtype not in (torch.int32, torch.int64):
            raise TypeError(f"{name} must be a real tensor, got dtype {u.dtype}")
        if u.dtype in (torch.float16, torch.bfloat16):
            raise TypeError(f"{name} must be float32 or float64, got {u.dtype}")
        u = u.to(z.dtype)
    else:
        try:
            u = torch.as_tensor(np.asarray(u, dtype=np.float64), dtype=z.dtype, device=z.device)
        except (TypeError, ValueError):
            raise TypeError(f"{name} must be an array of real numbers of shape (n,) or (B, n), "
                            f"got {type(u).__name__}") from None
    if u.dim() == 1:
        if u.shape[0] != z.shape[1]:
            raise ValueError(f"{name} must have shape ({z.shape[1]},) or ({z.shape[0]}, {z.shape[1]}), "
                             f"got {tuple(u.shape)}")
        u = u.expand_as(z)
    u = as_batch(u, name, n=z.shape[1])
    if u.shape[0] != z.shape[0]:
        raise ValueError(f"{name} must have shape (n,) or ({z.shape[0]}, {z.shape[1]}), got {tuple(u.shape)}")
    if bool((u.norm(dim=1) == 0).any()):
        raise ValueError(f"{name} must be non-zero in every row")
    return u


def forward_jvp(fn, x, u, name: str):
    """``torch.func.jvp(fn, (x,), (u,))``, with a TypeError naming ``fn`` when it cannot be
    differentiated forward (it leaves torch: numpy, Python floats, in-place storage access)."""
    try:
        return torch.func.jvp(fn, (x,), (u,))
    except RuntimeError as exc:
        raise TypeError(f"{name} cannot be differentiated by forward-mode AD (torch.func.jvp): "
                        f"{exc}. It must compute its output from its input with torch operations") from None


def jvp(map_fn: MapFn, z: torch.Tensor, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(M(z), J_M(z) u)``, row by row.

    Uses ``map_fn.jvp`` when the map has one (a :class:`~pfode.solvers.FlowMap` solves its
    tangent equation), else forward-mode automatic differentiation (``torch.func.jvp``).
    """
    check_callable(map_fn, "map_fn")
    z = as_batch(z, "z")
    u = as_batch(u, "u", n=z.shape[1])
    if u.shape != z.shape:
        raise ValueError(f"u must have the shape of z, {tuple(z.shape)}, got {tuple(u.shape)}")
    if hasattr(map_fn, "jvp"):
        out, Ju = map_fn.jvp(z, u)
    else:
        out, Ju = forward_jvp(map_fn, z, u, "map_fn")
    check_output(out, z, "map_fn")
    return out, check_output(Ju, z, "the JVP of map_fn")


def _unit(u: torch.Tensor) -> torch.Tensor:
    """Rows of u scaled to unit length without overflow (the largest entry first)."""
    u = u / u.abs().amax(1, keepdim=True)
    return u / u.norm(dim=1, keepdim=True)


def _norm_ratio(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """‖a_i‖ / ‖b_i‖ row by row, without overflow or underflow of the squares."""
    ma, mb = a.abs().amax(1), b.abs().amax(1)
    safe_a = torch.where(ma > 0, ma, torch.ones_like(ma))
    return (ma / mb) * (a / safe_a[:, None]).norm(dim=1) / (b / mb[:, None]).norm(dim=1)


def directional_instability(map_fn: MapFn, z: torch.Tensor, u) -> torch.Tensor:
    """λ_M(z; u) = ‖J_M(z) u‖ / ‖u‖ (Def. 2.2), exact up to the solver, via one JVP. Shape (B,).

    The JVP is taken along the unit vector u/‖u‖ (J is linear), so the size of u does not matter
    ([book: eq-ch3-lambda]).
    """
    z = as_batch(z, "z")
    u = _unit(_directions(u, z))
    _, Ju = jvp(map_fn, z, u)
    return Ju.norm(dim=1)


def instability_coefficient(map_fn: MapFn, z: torch.Tensor, delta) -> torch.Tensor:
    """κ_M(z, Δ) = ‖M(z + Δ) − M(z)‖ / ‖Δ‖ (Prop. 2.1). Shape (B,).

    The coefficient of [book: eq-ch3-kappa]. ``z`` and ``z + Δ`` are solved in one batch, so
    an adaptive solver takes the same steps for both and the difference is not polluted by two
    different step sequences.
    """
    z = as_batch(z, "z")
    delta = _directions(delta, z, "delta")
    check_callable(map_fn, "map_fn")
    zz = torch.cat([z, z + delta])
    if not bool(torch.isfinite(zz).all()):
        raise ValueError("z + delta overflows: delta is too large")
    out = check_output(map_fn(zz), zz, "map_fn")
    B = z.shape[0]
    return _norm_ratio(out[B:] - out[:B], delta)


def _axis(g, name: str) -> torch.Tensor:
    """A non-empty, finite 1-D grid axis as float64."""
    if not isinstance(g, torch.Tensor):
        try:
            g = torch.from_numpy(np.asarray(g, dtype=np.float64).copy())
        except (TypeError, ValueError):
            raise TypeError(f"{name} must be a 1-D sequence of numbers, got {g!r:.60}") from None
    if g.dim() != 1 or g.numel() < 1:
        raise ValueError(f"{name} must be a non-empty 1-D grid, got shape {tuple(g.shape)}")
    if not bool(torch.isfinite(g).all()):
        raise ValueError(f"{name} contains NaN or inf")
    return g.to(torch.float64)


def grid_points(xs, ys) -> torch.Tensor:
    """The points of the grid ``xs × ys`` as (len(ys)·len(xs), 2), float64, x varying fastest."""
    xs, ys = _axis(xs, "xs"), _axis(ys, "ys")
    Y, X = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([X.reshape(-1), Y.reshape(-1)], dim=1)


def instability_fd(map_fn: MapFn, xs, ys, *, axis: str = "x",
                   values: Optional[torch.Tensor] = None) -> torch.Tensor:
    """The paper's finite-difference estimate on a uniform 2-D grid (Appendix E.1).

    Solve ``M`` at every grid point (once, in one batch), then
    ``λ_{ij} ≈ ‖M(z_{i,j+1}) − M(z_{ij})‖ / h`` along x (or along y for ``axis="y"``).
    Returns shape ``(len(ys), len(xs) − 1)`` for x, ``(len(ys) − 1, len(xs))`` for y. Each
    value approximates λ_M(·; e_axis) at the midpoint of its two grid points to O(h²)
    ([book: eq-ch3-midpoint]).
    ``values`` (shape (len(ys), len(xs), n)) skips the solve when M is known on the grid.
    """
    check_choice(axis, "axis", ("x", "y"))
    xs, ys = _axis(xs, "xs"), _axis(ys, "ys")
    name, g = ("xs", xs) if axis == "x" else ("ys", ys)           # the differenced axis
    if g.numel() < 2:
        raise ValueError(f"{name} must hold at least two points to difference along axis {axis!r}")
    d = g[1:] - g[:-1]
    if not bool((d > 0).all()) or float((d.max() - d.min()).abs()) > 1e-9 * float(d.abs().max()):
        raise ValueError(f"{name} must be increasing and uniformly spaced")
    if values is None:
        check_callable(map_fn, "map_fn")
        pts = grid_points(xs, ys)
        values = check_output(map_fn(pts), pts, "map_fn").reshape(len(ys), len(xs), -1)
    else:
        if not isinstance(values, torch.Tensor) or values.dim() != 3 or values.shape[:2] != (len(ys), len(xs)):
            raise ValueError(f"values must be a tensor of shape ({len(ys)}, {len(xs)}, n), got "
                             f"{tuple(values.shape) if isinstance(values, torch.Tensor) else type(values).__name__}")
        as_batch(values.reshape(-1, values.shape[-1]), "values")
    if axis == "x":
        h = float(xs[1] - xs[0])
        return (values[:, 1:] - values[:, :-1]).norm(dim=-1) / h
    h = float(ys[1] - ys[0])
    return (values[1:] - values[:-1]).norm(dim=-1) / h


def jacobian(map_fn: MapFn, z: torch.Tensor) -> torch.Tensor:
    """Full Jacobians J_M(z_b), shape (B, n, n), from n JVPs per point in one batch."""
    z = as_batch(z, "z")
    B, n = z.shape
    zz = z.repeat_interleave(n, dim=0)                                        # (B·n, n)
    ee = torch.eye(n, dtype=z.dtype, device=z.device).repeat(B, 1)            # (B·n, n)
    _, cols = jvp(map_fn, zz, ee)                                             # (B·n, n)
    return cols.reshape(B, n, n).transpose(1, 2)                              # J[:, i, j]


def field_jacobian(field: Field, x: torch.Tensor, t) -> torch.Tensor:
    """∇_x v(x, t), shape (B, n, n), from n JVPs per point in one batch (t a scalar)."""
    x = as_batch(x, "x", n=getattr(field, "n", None))
    check_time(t)
    check_callable(field, "field")
    B, n = x.shape
    xx = x.repeat_interleave(n, dim=0)                                        # (B·n, n)
    ee = torch.eye(n, dtype=x.dtype, device=x.device).repeat(B, 1)            # (B·n, n)
    v, cols = forward_jvp(lambda y: field(y, t), xx, ee, "field")
    check_output(v, xx, "field", t)
    return check_output(cols, xx, "the JVP of field", t).reshape(B, n, n).transpose(1, 2)


def jacobian_singular_values(map_fn: MapFn, z: torch.Tensor, k: Optional[int] = None) -> torch.Tensor:
    """Singular values of J_M(z), descending, shape (B, n) or (B, k).

    ``k=None``: the full spectrum from the full Jacobian (small n). ``k`` given: the top k
    by implicitly restarted Lanczos (``scipy.sparse.linalg.svds``, ARPACK) on the operator
    ``u ↦ J u`` (a JVP) and ``w ↦ Jᵀ w`` (a VJP), one point at a time (large n).
    """
    z = as_batch(z, "z")
    if k is None:
        return torch.linalg.svdvals(jacobian(map_fn, z))
    n = z.shape[1]
    if n < 2:
        raise ValueError(f"k must be None in dimension n = {n} (Lanczos needs k < n)")
    check_int(k, "k", lower=1, upper=n - 1)
    from scipy.sparse.linalg import LinearOperator, svds

    out = []
    for b in range(z.shape[0]):
        zb = z[b:b + 1].detach().requires_grad_(True)
        with torch.enable_grad():
            out_b = map_fn(zb)                       # one graph, reused by every VJP below

        def mv(u, zb=zb):
            u = torch.as_tensor(np.ascontiguousarray(u).reshape(1, n), dtype=z.dtype)
            return jvp(map_fn, zb.detach(), u)[1].detach().reshape(-1).numpy()

        def rmv(w, zb=zb, out_b=out_b):
            w = torch.as_tensor(np.ascontiguousarray(w).reshape(1, n), dtype=z.dtype)
            g, = torch.autograd.grad(out_b, zb, w, retain_graph=True)
            return g.detach().reshape(-1).numpy()

        op = LinearOperator((n, n), matvec=mv, rmatvec=rmv, dtype=np.float64)
        s = svds(op, k=k, return_singular_vectors=False, random_state=np.random.default_rng(0))
        out.append(torch.as_tensor(np.sort(s)[::-1].copy(), dtype=z.dtype))
    return torch.stack(out)


class TopSingular(NamedTuple):
    """The largest singular value of J_M(z) per row, from :func:`top_singular_value`."""

    value: torch.Tensor
    """(B,) the estimate of σ_max (a lower bound: a Ritz value of the Krylov space)."""
    vector: torch.Tensor
    """(B, n) its right singular vector, unit length: the direction ``J_M`` stretches most."""
    change: torch.Tensor
    """(B,) relative change of the estimate over the last iteration (its convergence)."""


def top_singular_value(map_fn: MapFn, z: torch.Tensor, *, iters: int = 20,
                       generator: Optional[torch.Generator] = None) -> TopSingular:
    """σ_max(J_M(z)) for every row at once, by Golub–Kahan–Lanczos bidiagonalisation.

    Every iteration is one batched JVP (``u ↦ J u``, the map's tangent equation) and one
    batched VJP (``w ↦ Jᵀ w``, reverse mode through one stored graph of ``M`` on the whole
    batch), with full reorthogonalisation; the Ritz values of the ``iters x iters`` bidiagonal
    matrix of each row approximate the top of its spectrum from below and converge fastest at
    the top (Golub & Van Loan, *Matrix Computations*, §10.4). After ``iters >= n`` iterations
    the value is exact. Start vectors are Gaussian, drawn from ``generator``. Cost: ``iters``
    JVPs and VJPs of the batch, where :func:`jacobian_singular_values` with ``k`` runs ARPACK
    one row at a time.
    """
    z = as_batch(z, "z")
    check_callable(map_fn, "map_fn")
    B, n = z.shape
    iters = min(check_int(iters, "iters"), n)
    check_generator(generator)
    zz = z.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        out = check_output(map_fn(zz), zz, "map_fn")
    if not out.requires_grad:
        raise TypeError("map_fn must be differentiable by reverse-mode autograd (its output "
                        "does not depend on its input through torch operations)")

    def J(v):
        return jvp(map_fn, z.detach(), v)[1].detach()

    def JT(u):
        g, = torch.autograd.grad(out, zz, u, retain_graph=True)
        return g.detach()

    def unit(a):
        nrm = a.norm(dim=1, keepdim=True)
        return a / torch.where(nrm > 0, nrm, torch.ones_like(nrm)), nrm[:, 0]

    v, _ = unit(torch.randn(B, n, generator=generator, dtype=torch.float64).to(z))
    V, U, alphas, betas = [v], [], [], []
    u, a = unit(J(v))
    U.append(u)
    alphas.append(a)
    prev = None
    for j in range(iters):
        w = JT(U[-1]) - alphas[-1][:, None] * V[-1]
        Vs = torch.stack(V, 1)                                                # (B, j+1, n)
        w = w - (Vs.transpose(1, 2) @ (Vs @ w[..., None]))[..., 0]            # reorthogonalise
        v, b = unit(w)
        # the current bidiagonal (k columns): its top singular value is the estimate
        k = len(alphas)
        Bk = torch.zeros(B, k, k, dtype=z.dtype, device=z.device)
        Bk[:, range(k), range(k)] = torch.stack(alphas, 1)
        if k > 1:
            Bk[:, range(k - 1), range(1, k)] = torch.stack(betas, 1)
        s_now = torch.linalg.svdvals(Bk)[:, 0]
        change = (s_now - prev).abs() / s_now if prev is not None else torch.full_like(s_now, float("inf"))
        prev = s_now
        if j == iters - 1 or len(V) == n:
            break
        # breakdown (an invariant subspace, the estimate is exact): freeze the row with zeros,
        # which add only zero singular values to its bidiagonal
        dead = b <= 1e-10 * s_now
        v, b = torch.where(dead[:, None], torch.zeros_like(v), v), torch.where(dead, torch.zeros_like(b), b)
        betas.append(b)
        V.append(v)
        p = J(v) - b[:, None] * U[-1]
        Us = torch.stack(U, 1)
        p = p - (Us.transpose(1, 2) @ (Us @ p[..., None]))[..., 0]
        u, a = unit(p)
        dead = a <= 1e-10 * s_now
        u, a = torch.where(dead[:, None], torch.zeros_like(u), u), torch.where(dead, torch.zeros_like(a), a)
        U.append(u)
        alphas.append(a)
    _, _, Vh = torch.linalg.svd(Bk)
    right = (Vh[:, 0, :, None] * torch.stack(V[:k], 1)).sum(1)               # (B, n)
    right, _ = unit(right)
    return TopSingular(s_now, right, change)


def divergence(field: Field, x: torch.Tensor, t, *, trace: str = "exact",
               probes: Optional[torch.Tensor] = None) -> torch.Tensor:
    """div v(x, t) = tr ∇_x v, shape (B,).

    ``trace="exact"``: the field's closed form if it has one (``field.divergence``), else
    n JVPs. ``trace="hutchinson"``: ``εᵀ (∇v) ε`` averaged over ``probes`` (shape
    (P, B, n), e.g. Rademacher or Gaussian), an unbiased estimate (Hutchinson 1989).
    """
    check_choice(trace, "trace", ("exact", "hutchinson"))
    x = as_batch(x, "x", n=getattr(field, "n", None))
    check_time(t)
    if trace == "exact":
        if hasattr(field, "divergence"):
            return field.divergence(x, t)
        return torch.diagonal(field_jacobian(field, x, t), dim1=1, dim2=2).sum(1)
    if trace == "hutchinson":
        if probes is None:
            raise ValueError("trace='hutchinson' needs probes of shape (P, B, n)")
        if not isinstance(probes, torch.Tensor) or probes.dim() != 3 or probes.shape[1:] != x.shape:
            raise ValueError(f"probes must be a tensor of shape (P, {x.shape[0]}, {x.shape[1]}), got "
                             f"{tuple(probes.shape) if isinstance(probes, torch.Tensor) else type(probes).__name__}")
        as_batch(probes.reshape(-1, x.shape[1]), "probes")
        P, B, n = probes.shape
        xs = x.repeat(P, 1)                                                   # (P·B, n)
        Je = jvp(lambda y: field(y, t), xs, probes.reshape(P * B, n))[1]      # one batched JVP
        return (Je * probes.reshape(P * B, n)).sum(1).reshape(P, B).mean(0)
    raise ValueError(f"trace must be 'exact' or 'hutchinson', got {trace!r}")


def log_det_jacobian(field: Field, z: torch.Tensor, *, direction: str = "generate",
                     method: str = "dopri5", steps: Optional[int] = None, ts=None,
                     rtol: Optional[float] = None, atol: Optional[float] = None,
                     trace: str = "exact", probes: Optional[torch.Tensor] = None,
                     num_probes: Optional[int] = None,
                     generator: Optional[torch.Generator] = None,
                     max_nfe: Optional[int] = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(M(z), log|det J_M(z)|)`` for the flow map ``M = G`` or ``M = F``, by Liouville's
    formula [book: eq-ch5-liouville], in one solve.

    Integrates the augmented system ``d/dt [x, ℓ] = [v(x, t), div v(x, t)]`` from ``x = z``,
    ``ℓ = 0`` along the path of ``direction``; both entries of the result are its end point:

    - ``"generate"`` (t: 1 → 0, ``z`` noise): ``(G(z), log|det J_G(z)|)`` with
      ``ℓ(0) = ∫_1^0 div v dt`` (Lemma D.1, [book: eq-ch5-d1]);
    - ``"invert"`` (t: 0 → 1, ``z`` data x): ``(F(x), log|det J_F(x)|)`` with
      ``ℓ(1) = ∫_0^1 div v dt``. Since ``J_G(F(x)) = J_F(x)^{-1}``, the generation map's
      ``log|det J_G(F(x))|`` is its negative [book: eq-ch5-data-side], computed here along the
      inversion path, which is well conditioned where G stretches.

    The trace is :func:`divergence`: ``trace="exact"``, or ``"hutchinson"``, the estimate
    ``εᵀ (∇v) ε`` averaged over probes held fixed along the path (as in FFJORD): either
    ``probes`` of shape (P, B, n), or ``num_probes`` (default 1) Rademacher probes drawn once
    from ``generator``. With one probe per row, ``z.repeat(R, 1)`` gives R independent
    estimates per point. ``max_nfe`` stops an adaptive solve that would spend more
    evaluations (:class:`~pfode.BudgetExceeded`). The grid is ``steps`` uniform steps, or an
    explicit ``ts`` from the start to the end time of ``direction`` (e.g. one refined where the
    field is stiff). Shapes: (B, n) and (B,).
    """
    check_choice(direction, "direction", ("generate", "invert"))
    z = as_batch(z, "z", n=getattr(field, "n", None))
    check_callable(field, "field")
    check_choice(trace, "trace", ("exact", "hutchinson"))
    check_steps(steps)
    B, n = z.shape
    if trace == "hutchinson" and (method in ("scipy-rk45", "scipy-bdf")
                                  or (method == "fixed-point" and direction == "invert")):
        raise ValueError(f"trace='hutchinson' needs a solver that evaluates the whole batch at "
                         f"each stage (its probes are per row); method {method!r} evaluates "
                         f"rows on their own: use rk4, dopri5 or an exactly invertible scheme")
    if trace == "exact":
        given = [k for k, v in (("probes", probes), ("num_probes", num_probes), ("generator", generator))
                 if v is not None]
        if given:
            raise ValueError(f"{', '.join(given)} only apply to trace='hutchinson' (trace is 'exact')")
    elif probes is not None:
        if num_probes is not None or generator is not None:
            raise ValueError("give probes, or num_probes and generator to draw them, not both")
        if not isinstance(probes, torch.Tensor):
            raise TypeError(f"probes must be a torch.Tensor of shape (P, {B}, {n}), got {type(probes).__name__}")
        if probes.dim() != 3 or tuple(probes.shape[1:]) != (B, n):
            raise ValueError(f"probes must have shape (P, {B}, {n}) (P probes for each row of z), "
                             f"got {tuple(probes.shape)}")
        probes = as_batch(probes.reshape(-1, n), "probes").reshape(-1, B, n).to(z)
    else:
        num_probes = check_int(1 if num_probes is None else num_probes, "num_probes")
        check_generator(generator)
        bits = torch.randint(0, 2, (num_probes, B, n), generator=generator)
        probes = (2 * bits - 1).to(z)                                          # (P, B, n)

    def augmented(y, t):
        x = y[:, :n]
        return torch.cat([field(x, t), divergence(field, x, t, trace=trace, probes=probes)[:, None]], 1)

    t0, t1 = (1.0, 0.0) if direction == "generate" else (0.0, 1.0)
    y0 = torch.cat([z, torch.zeros(B, 1, dtype=z.dtype, device=z.device)], 1)  # (B, n + 1)
    y1 = integrate(augmented, y0, time_grid(t0, t1, steps=steps, ts=ts, default_steps=default_steps(method)),
                   method=method, rtol=rtol, atol=atol, max_nfe=max_nfe)
    return y1[:, :n], y1[:, n]


def log_std_normal(z: torch.Tensor) -> torch.Tensor:
    """log φ_n(z), shape (B,): the standard normal log-density in dimension n."""
    z = as_batch(z, "z")
    sq = check_norms((z * z).sum(1), z, "z")
    return -0.5 * sq - 0.5 * z.shape[1] * math.log(2 * math.pi)


def log_det_from_density(field, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """log|det J_G(z)| = log φ_n(z) − log p_G(x) with x = G(z) (Lemma D.1, right-hand side).

    The density side of [book: eq-ch5-d1].

    Needs a field with an exact ``log_prob`` (e.g. :class:`GaussianMixture`).
    """
    if not callable(getattr(field, "log_prob", None)):
        raise TypeError(f"field must have an exact log_prob (e.g. pfode.GaussianMixture), got "
                        f"{type(field).__name__}")
    z = as_batch(z, "z", n=getattr(field, "n", None))
    x = as_batch(x, "x", n=z.shape[1])
    if x.shape != z.shape:
        raise ValueError(f"x must have the shape of z, {tuple(z.shape)}, got {tuple(x.shape)}")
    return log_std_normal(z) - field.log_prob(x, 0.0)


def geometric_instability(log_det: torch.Tensor, n: int) -> torch.Tensor:
    """λ̄ = |det J|^{1/n} = exp(log|det J| / n) (Def. 4.1), for a tensor of log-determinants.

    The geometric average of [book: eq-ch3-lbar].
    """
    n = check_int(n, "n")
    if not isinstance(log_det, torch.Tensor):
        try:
            log_det = torch.as_tensor(np.asarray(log_det, dtype=np.float64))
        except (TypeError, ValueError):
            raise TypeError(f"log_det must be a tensor of real numbers, got {type(log_det).__name__}") from None
    if not torch.is_floating_point(log_det):
        log_det = log_det.double()
    if bool(torch.isnan(log_det).any()):
        raise ValueError("log_det contains NaN")
    return torch.exp(log_det / n)


def path_constants(field: Field, x: torch.Tensor, *, steps: int = 100,
                   direction: str = "invert") -> tuple[torch.Tensor, torch.Tensor]:
    """Per-point Lipschitz and curvature constants (L, M) along an Euler path (Theorem 3.1).

    Along the numerical path from ``x`` (t = 0 → 1 for ``"invert"``, 1 → 0 for
    ``"generate"``) take ``L = max_t σ_max(∇_x v(x_t, t))`` (full Jacobian; small n) and
    ``M = max_t ‖d²x/dt²‖`` with ``d²x/dt² = ∂_t v + (∇_x v) v``, a JVP of ``(x, t) ↦ v``
    along ``(v, 1)``. These are the local constants on the path, not global suprema: the
    book evaluates [book: thm-ch4-31] with them, per point.
    """
    x = as_batch(x, "x", n=getattr(field, "n", None))
    check_choice(direction, "direction", ("invert", "generate"))
    check_int(steps, "steps")
    t0, t1 = (0.0, 1.0) if direction == "invert" else (1.0, 0.0)
    B, n = x.shape
    L = torch.zeros(B, dtype=x.dtype)
    M = torch.zeros(B, dtype=x.dtype)

    def record(i, t, xt):
        tt = torch.full((B,), t, dtype=x.dtype)
        v, acc = torch.func.jvp(lambda y, s: field(y, s), (xt, tt), (field(xt, t), torch.ones_like(tt)))
        J = field_jacobian(field, xt, t)                                      # (B, n, n)
        L.copy_(torch.maximum(L, torch.linalg.matrix_norm(J, ord=2)))
        M.copy_(torch.maximum(M, acc.norm(dim=1)))

    integrate(field, x, time_grid(t0, t1, steps=steps), method="euler", callback=record)
    return L, M
