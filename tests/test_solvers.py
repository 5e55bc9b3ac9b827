"""Solvers against closed-form flows, a second implementation, and their orders."""
import numpy as np
import pytest
import torch
from scipy.optimize import brentq
from scipy.stats import norm

import pfode

F64, F32 = torch.float64, torch.float32
FIXED = ("euler", "heun", "rk4")


def gen(seed):
    return torch.Generator().manual_seed(seed)


# ---- closed form 1: a single Gaussian, G(z) = mu + s z ------------------------------------
@pytest.mark.parametrize("dtype", [F64, F32])
@pytest.mark.parametrize("method", ["rk4", "dopri5", "scipy-rk45"])
def test_single_gaussian_flow_is_affine(method, dtype):
    mu = torch.tensor([[1.0, -2.0, 0.5]], dtype=F64)
    s = 0.3
    f = pfode.GaussianMixture(mu, s)
    z = torch.randn(6, 3, generator=gen(0), dtype=dtype)
    kw = {"steps": 200} if method == "rk4" else {}
    x = pfode.generate(f, z, method=method, **kw)
    tol = 1e-7 if dtype == F64 else 1e-4
    # threshold: the global error of an adaptive RK at local tolerance rtol on this affine flow is
    #   about rtol times its Lipschitz constant (1/s = 3.3 for the inverse); tol = 10 rtol of the
    #   dtype's default (1e-8 / 1e-5) covers that and rk4's round-off
    torch.testing.assert_close(x, (mu + s * z.double()).to(dtype), rtol=tol, atol=tol)
    # reverse time: inversion is the inverse affine map
    torch.testing.assert_close(pfode.invert(f, x, method=method, **kw), z, rtol=tol, atol=tol)
    assert x.dtype == dtype


# ---- closed form 2: one dimension, G = Q o Phi ----------------------------------------------
def quantile_map(f, z):
    """Q_{p0}(Phi(z)) for a 1-D mixture, by root finding on the exact CDF."""
    m, s, w = f.means[:, 0].numpy(), f.stds.numpy(), f.weights.numpy()
    cdf = lambda x: float((w * norm.cdf((x - m) / s)).sum())
    return np.array([brentq(lambda x: cdf(x) - norm.cdf(zi), -50, 50, xtol=1e-14) for zi in z])


def test_one_dimensional_flow_is_monotone_transport():
    f = pfode.GaussianMixture([[-1.5], [0.5], [2.0]], [0.3, 0.2, 0.4], [0.3, 0.5, 0.2])
    z = torch.linspace(-2.5, 2.5, 11, dtype=F64)[:, None]
    x = pfode.generate(f, z, method="dopri5", rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(x[:, 0].numpy(), quantile_map(f, z[:, 0].numpy()), atol=1e-7)


# ---- orders of convergence ------------------------------------------------------------------
@pytest.mark.parametrize("method,order", [("euler", 1), ("heun", 2), ("rk4", 4)])
@pytest.mark.parametrize("direction", ["generate", "invert"])
def test_order_of_convergence(method, order, direction):
    f = pfode.GaussianMixture([[-1.0, 0.0], [1.0, 0.5]], 0.6)
    x0 = torch.randn(16, 2, generator=gen(1), dtype=F64)
    solve = getattr(pfode, direction)
    ref = solve(f, x0, method="dopri5", rtol=1e-12, atol=1e-14)
    steps = [16, 32, 64, 128]
    errs = [(solve(f, x0, method=method, steps=N) - ref).norm(dim=1).max().item() for N in steps]
    slope = -np.polyfit(np.log(steps), np.log(errs), 1)[0]
    # threshold: a fitted order over N = 16..128 carries the next-order term O(h); a stated margin
    #   of 0.25
    assert abs(slope - order) < 0.25, (method, errs, slope)


def test_euler_matches_torchdiffeq():
    """Our fixed-step Euler equals torchdiffeq's Euler on the same grid (second implementation)."""
    from torchdiffeq import odeint
    f = pfode.GaussianMixture([[-2.0, -1.0], [2.0, -1.0], [0.0, 2.0]], 0.2)
    z = torch.randn(10, 2, generator=gen(2), dtype=F64)
    ts = torch.linspace(1, 0, 51, dtype=F64)
    ref = odeint(lambda t, y: f(y, t), z, ts, method="euler")[-1]
    torch.testing.assert_close(pfode.generate(f, z, method="euler", steps=50), ref, rtol=1e-13, atol=1e-13)


def test_rk4_agrees_with_torchdiffeq_rk4_to_its_order():
    """torchdiffeq's rk4 is the 3/8 rule: a different 4th-order method, agreeing to O(h^4)."""
    from torchdiffeq import odeint
    f = pfode.GaussianMixture([[-1.0, 0.0], [1.0, 0.5]], 0.6)
    z = torch.randn(8, 2, generator=gen(3), dtype=F64)
    diffs = []
    for N in (20, 40):
        ts = torch.linspace(1, 0, N + 1, dtype=F64)
        ref = odeint(lambda t, y: f(y, t), z, ts, method="rk4")[-1]
        diffs.append((pfode.generate(f, z, method="rk4", steps=N) - ref).abs().max().item())
    assert diffs[1] < diffs[0] / 8      # both are O(h^4): their difference shrinks at least that fast


# ---- batched equals looped -------------------------------------------------------------------
@pytest.mark.parametrize("method", ["euler", "heun", "rk4", "scipy-rk45", "dopri5"])
def test_batched_equals_looped(method):
    f = pfode.GaussianMixture([[-2.0, -1.0], [2.0, -1.0], [0.0, 2.0]], 0.3)
    z = torch.randn(5, 2, generator=gen(4), dtype=F64)
    kw = {"steps": 30} if method in FIXED else {}
    batched = pfode.generate(f, z, method=method, **kw)
    looped = torch.cat([pfode.generate(f, z[i:i + 1], method=method, **kw) for i in range(5)])
    # fixed steps and point-by-point scipy are exact; dopri5 shares its steps over the batch
    tol = 1e-6 if method == "dopri5" else 1e-12
    torch.testing.assert_close(batched, looped, rtol=tol, atol=tol)


# ---- bijection and reconstruction ----------------------------------------------------------
def test_round_trip_is_identity_at_tight_tolerance():
    f = pfode.GaussianMixture([[-2.0, -1.0], [2.0, -1.0], [0.0, 2.0]], 0.2)
    x = f.sample(64, generator=gen(5))
    x_rec, z_hat = pfode.reconstruct(f, x, method="dopri5", rtol=1e-11, atol=1e-12)
    assert (x_rec - x).norm(dim=1).max() < 1e-7
    torch.testing.assert_close(z_hat, pfode.invert(f, x, method="dopri5", rtol=1e-11, atol=1e-12))


def test_round_trip_error_falls_with_tolerance():
    f = pfode.GaussianMixture([[-2.0, -1.0], [2.0, -1.0], [0.0, 2.0]], 0.2)
    z = torch.randn(32, 2, generator=gen(6), dtype=F64)
    errs = []
    for rtol in (1e-4, 1e-6, 1e-8, 1e-10):
        x = pfode.generate(f, z, rtol=rtol, atol=rtol / 100)
        errs.append((pfode.invert(f, x, rtol=rtol, atol=rtol / 100) - z).norm(dim=1).max().item())
    assert all(b < a for a, b in zip(errs, errs[1:])), errs


def test_reconstruct_per_half_options():
    f = pfode.GaussianMixture([[0.0, 1.0]], 0.5)
    x = torch.randn(4, 2, generator=gen(7), dtype=F64)
    x_rec, z_hat = pfode.reconstruct(f, x, method="euler", steps=10, generation={"method": "rk4", "steps": 50})
    torch.testing.assert_close(z_hat, pfode.invert(f, x, method="euler", steps=10))
    torch.testing.assert_close(x_rec, pfode.generate(f, z_hat, method="rk4", steps=50))


def test_callback_records_the_trajectory():
    f = pfode.GaussianMixture([[0.0, 1.0]], 0.5)
    z = torch.randn(3, 2, generator=gen(8), dtype=F64)
    traj = []
    x = pfode.generate(f, z, method="heun", steps=7, callback=lambda i, t, xi: traj.append((i, t, xi)))
    assert [i for i, _, _ in traj] == list(range(8))
    assert traj[0][1] == 1.0 and traj[-1][1] == 0.0
    assert torch.equal(traj[0][2], z) and torch.equal(traj[-1][2], x)
    out = []
    pfode.generate(f, z, method="dopri5", steps=4, callback=lambda i, t, xi: out.append(t))
    np.testing.assert_allclose(out, [1.0, 0.75, 0.5, 0.25, 0.0])


def test_custom_grid_equals_uniform_steps():
    f = pfode.GaussianMixture([[0.0, 1.0]], 0.5)
    z = torch.randn(3, 2, generator=gen(9), dtype=F64)
    torch.testing.assert_close(pfode.generate(f, z, method="euler", ts=torch.linspace(1, 0, 11)),
                               pfode.generate(f, z, method="euler", steps=10))


def test_any_callable_is_a_field():
    """dx/dt = -x from t=1 to 0 gives x(0) = e^{1} x(1): a field needs no class."""
    z = torch.randn(4, 3, generator=gen(10), dtype=F64)
    x = pfode.generate(lambda x, t: -x, z, method="dopri5", rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(x, np.e * z)


# ---- validation -----------------------------------------------------------------------------
def test_validation_errors():
    f = pfode.GaussianMixture([[0.0, 1.0]], 0.5)
    z = torch.zeros(2, 2, dtype=F64)
    with pytest.raises(ValueError, match="unknown method 'rk45'"):
        pfode.generate(f, z, method="rk45")
    with pytest.raises(ValueError, match="steps"):
        pfode.generate(f, z, method="euler", steps=0)
    with pytest.raises(TypeError, match="steps must be an integer"):
        pfode.generate(f, z, method="euler", steps=2.5)
    with pytest.raises(ValueError, match="rtol"):
        pfode.generate(f, z, rtol=-1e-3)
    with pytest.raises(ValueError, match="atol"):
        pfode.generate(f, z, atol=float("nan"))
    with pytest.raises(ValueError, match="z must have 2 columns"):
        pfode.generate(f, torch.zeros(2, 3, dtype=F64))
    with pytest.raises(ValueError, match="z contains NaN"):
        pfode.generate(f, torch.full((1, 2), float("inf"), dtype=F64))
    with pytest.raises(ValueError, match="ts must run from t = 1.0 to t = 0.0"):
        pfode.generate(f, z, ts=[0.0, 1.0])
    with pytest.raises(ValueError, match="ts must be strictly monotone"):
        pfode.generate(f, z, method="euler", ts=[1.0, 0.5, 0.7, 0.0])
    with pytest.raises(ValueError, match=r"ts must lie in \[0, 1\]"):
        pfode.integrate(f, z, [1.2, 0.0])
    with pytest.raises(ValueError, match="x contains NaN"):
        pfode.invert(f, torch.full((1, 2), float("nan"), dtype=F64))
