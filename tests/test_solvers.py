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
    return np.array([brentq(lambda x, zi=zi: cdf(x) - norm.cdf(zi), -50, 50, xtol=1e-14) for zi in z])


def test_one_dimensional_flow_is_monotone_transport():
    f = pfode.GaussianMixture([[-1.5], [0.5], [2.0]], [0.3, 0.2, 0.4], [0.3, 0.5, 0.2])
    z = torch.linspace(-2.5, 2.5, 11, dtype=F64)[:, None]
    x = pfode.generate(f, z, method="dopri5", rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(x[:, 0].numpy(), quantile_map(f, z[:, 0].numpy()), atol=1e-7)


# ---- closed form 3: the linear field v = a(t) x, step by step ------------------------------
def test_heun_last_step_euler_is_a_product_of_step_factors():
    """For v(x, t) = a(t) x every explicit RK step multiplies x by a known factor: Heun's
    1 + h(a0 + a1)/2 + h^2 a0 a1 / 2 with a0 = a(t), a1 = a(t + h); Euler's 1 + h a0. With
    last_step="euler" the product ends with an Euler factor; the default ends with Heun's."""
    a = lambda t: 1.0 + 2.0 * t
    f = lambda x, t: a(float(t)) * x
    ts = torch.tensor([1.0, 0.7, 0.45, 0.2, 0.0], dtype=F64)
    z = torch.tensor([[1.0, -0.5]], dtype=F64)

    def factor(t0, t1, scheme):
        h, a0, a1 = t1 - t0, a(t0), a(t1)
        return 1 + h * a0 if scheme == "euler" else 1 + h * (a0 + a1) / 2 + h * h * a0 * a1 / 2

    grid = ts.tolist()
    for last in ("heun", "euler"):
        want = np.prod([factor(grid[i], grid[i + 1], last if i == len(grid) - 2 else "heun")
                        for i in range(len(grid) - 1)])
        kw = {} if last == "heun" else {"last_step": "euler"}
        got = pfode.generate(f, z, method="heun", ts=ts, **kw)
        # threshold: four steps of float64 arithmetic: a few ulps
        np.testing.assert_allclose(got.numpy(), want * z.numpy(), rtol=1e-14)
        # the tangent map of the same discrete map is the same factor
        _, jw = pfode.FlowMap(f, 1.0, 0.0, method="heun", ts=ts, **kw).jvp(z, torch.ones_like(z))
        np.testing.assert_allclose(jw.numpy(), want * np.ones((1, 2)), rtol=1e-14)
    with pytest.raises(ValueError, match="last_step"):
        pfode.generate(f, z, method="heun", ts=ts, last_step="rk4")
    with pytest.raises(ValueError, match="last_step"):
        pfode.generate(f, z, method="euler", ts=ts, last_step="euler")


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
    with pytest.raises(ValueError, match="ts must run from t = 1 to t = 0"):
        pfode.generate(f, z, ts=[0.0, 1.0])
    with pytest.raises(ValueError, match="ts must be strictly monotone"):
        pfode.generate(f, z, method="euler", ts=[1.0, 0.5, 0.7, 0.0])
    with pytest.raises(ValueError, match=r"ts must lie in \[0, 1\]"):
        pfode.integrate(f, z, [1.2, 0.0])
    with pytest.raises(ValueError, match="x contains NaN"):
        pfode.invert(f, torch.full((1, 2), float("nan"), dtype=F64))


# ---- one registry behind one signature -------------------------------------------------------
EXACT_METHODS = ("edict", "bdia", "belm", "fixed-point")
ADAPTIVE = pfode.solvers.ADAPTIVE


def three_gaussians(dtype=F64):
    return pfode.GaussianMixture([[-2.0, -1.0], [2.0, -1.0], [0.0, 2.0]], 0.3, dtype=dtype)


def grid_kw(method, steps):
    return {} if method in ADAPTIVE else {"steps": steps}


@pytest.mark.parametrize("method", EXACT_METHODS)
def test_reconstruct_is_exact_for_the_invertible_schemes(method):
    """The front end that serves euler and dopri5 passes the state pair along, so the round
    trip of an exactly invertible scheme is the identity up to round-off."""
    f = three_gaussians()
    x = f.sample(32, generator=gen(40))
    x_rec, z_hat = pfode.reconstruct(f, x, method=method, steps=50)
    # threshold: 2 x 50 steps, each adding a few ulps of states of size <= 4 (about 4e-16),
    #   amplified at most by the inverse's parasitic factor (p^-2 per step for EDICT:
    #   0.93^-100 = 1.4e3): about 1e-12; 1e-10 leaves a margin of 100. The fixed point stops
    #   at its tolerance 1e-12 (relative) per step, times 100 steps: 1e-10.
    assert (x_rec - x).abs().max() <= 1e-10
    naive, _ = pfode.reconstruct(f, x, method="euler", steps=50)
    assert (naive - x).abs().max() > 1e-4            # naive Euler inversion is not exact


def counted(f, calls):
    def field(x, t):
        calls.append(x.shape[0])
        return f(x, t)
    return field


@pytest.mark.parametrize("method", pfode.METHODS)
def test_every_method_reports_its_evaluations(method):
    """info["nfe"] equals an independent count of the rows the field evaluated, per point; a
    fixed-step scheme spends exactly stages x steps."""
    f = three_gaussians()
    z = torch.randn(5, 2, generator=gen(41), dtype=F64)
    calls, info = [], {}
    pfode.generate(counted(f, calls), z, method=method, info=info, **grid_kw(method, 9))
    assert info["method"] == method
    assert info["nfe"] == pytest.approx(sum(calls) / 5, rel=1e-15)
    stages = {"euler": 1, "heun": 2, "rk4": 4}
    if method in stages:
        assert info["nfe"] == stages[method] * 9
    if method.startswith("scipy"):
        assert info["nfev"].shape == (5,) and info["nfev"].sum() == sum(calls)


@pytest.mark.parametrize("method", ["rk4", "dopri5", "scipy-rk45", "edict"])
def test_max_nfe_stops_the_solve(method):
    f = three_gaussians()
    z = torch.randn(3, 2, generator=gen(42), dtype=F64)
    info = {}
    pfode.generate(f, z, method=method, info=info, **grid_kw(method, 20))
    cap = int(info["nfe"] // 2)
    with pytest.raises(pfode.BudgetExceeded) as exc:
        pfode.generate(f, z, method=method, max_nfe=cap, **grid_kw(method, 20))
    assert exc.value.nfe <= cap and 0.0 <= exc.value.t <= 1.0
    # a budget the solve fits in changes nothing
    full = pfode.generate(f, z, method="rk4", steps=20)
    torch.testing.assert_close(pfode.generate(f, z, method="rk4", steps=20, max_nfe=80), full,
                               rtol=0, atol=0)


def test_scipy_bdf_agrees_with_dopri5_and_a_pool_changes_nothing():
    f = three_gaussians()
    x = f.sample(6, generator=gen(43))
    ref = pfode.invert(f, x, method="dopri5", rtol=1e-11, atol=1e-12)
    info = {}
    z = pfode.invert(f, x, method="scipy-bdf", rtol=1e-9, atol=1e-10, info=info)
    # threshold: BDF's global error at local tolerance 1e-9 on a flow whose Lipschitz constant
    #   stays below ~30 on [0, 1] (the inversion of s = 0.3 components); 1e-6 is 30 x 30 x rtol
    torch.testing.assert_close(z, ref, rtol=1e-6, atol=1e-6)
    assert info["nlu"].shape == (6,) and (info["nlu"] > 0).all()
    z2 = pfode.invert(f, x, method="scipy-bdf", rtol=1e-9, atol=1e-10, workers=2)
    torch.testing.assert_close(z2, z, rtol=0, atol=0)


def test_flow_map_takes_an_explicit_grid():
    f = three_gaussians()
    z = torch.randn(4, 2, generator=gen(44), dtype=F64)
    s = torch.linspace(1, 0, 21, dtype=F64)
    ts = 3 * s / (1 + 2 * s)
    M = pfode.FlowMap(f, 1.0, 0.0, method="heun", ts=ts)
    assert M.steps == 20
    torch.testing.assert_close(M(z), pfode.generate(f, z, method="heun", ts=ts), rtol=0, atol=0)
    with pytest.raises(ValueError, match="ts must run from t = 1 to t = 0"):
        pfode.FlowMap(f, 1.0, 0.0, method="heun", ts=ts.flip(0))


@pytest.mark.parametrize("method", ["euler", "edict", "bdia", "belm"])
def test_flow_map_tangent_is_the_derivative_of_the_discrete_map(method):
    """J_M u against a central difference of the same discrete map: error O(eps^2) from the
    third derivative, plus round-off of order ulp / eps."""
    f = three_gaussians()
    z = torch.randn(6, 2, generator=gen(45), dtype=F64)
    u = torch.randn(6, 2, generator=gen(46), dtype=F64)
    M = pfode.generation_map(f, method=method, steps=30)
    x, Ju = M.jvp(z, u)
    torch.testing.assert_close(x, M(z), rtol=0, atol=1e-13)
    eps = 1e-5
    fd = (M(z + eps * u) - M(z - eps * u)) / (2 * eps)
    # threshold: central-difference error eps^2 |D^3 M| (below 1e2 on this model) plus
    #   round-off 1e-16 |M| / eps = 1e-11; 1e-6 relative to |J u| is a margin of 100
    scale = Ju.norm(dim=1, keepdim=True)
    assert ((Ju - fd).norm(dim=1, keepdim=True) / scale).max() <= 1e-6


def test_unknown_options_and_states_are_named():
    f = three_gaussians()
    z = torch.zeros(3, 2, dtype=F64)
    with pytest.raises(ValueError, match="unknown option.*gamma.*'edict'"):
        pfode.generate(f, z, method="edict", steps=4, gamma=0.5)
    with pytest.raises(ValueError, match="unknown option.*p for method 'rk4'"):
        pfode.generate(f, z, method="rk4", steps=4, p=0.5)
    with pytest.raises(ValueError, match="aux must be None for method 'euler'"):
        pfode.generate(f, z, method="euler", steps=4, aux=z)
    with pytest.raises(TypeError, match="workers"):
        pfode.generate(f, z, method="scipy-bdf", workers=1.5)
    with pytest.raises(TypeError, match="max_nfe"):
        pfode.generate(f, z, method="rk4", steps=4, max_nfe="10")


def test_reconstruct_hands_over_the_pair_only_where_it_belongs():
    """The inversion's second state starts the generation only when it is the state the
    generation needs: the same scheme and, for the two-step rules, the same second grid time."""
    f = three_gaussians()
    x = f.sample(16, generator=gen(47))
    for method in ("bdia", "belm"):
        mixed, _ = pfode.reconstruct(f, x, method=method, inversion={"steps": 50}, generation={"steps": 100})
        z = pfode.invert(f, x, method=method, steps=50)
        apart = pfode.generate(f, z, method=method, steps=100)     # default start, no pair
        torch.testing.assert_close(mixed, apart, rtol=0, atol=0)
    # an aux given to both is the inversion's start; the round trip stays exact
    x_rec, _ = pfode.reconstruct(f, x, method="edict", steps=20, aux=x + 0.01)
    assert (x_rec - x).abs().max() <= 1e-10      # threshold: as in the exact round trip above
    # a half's own grid replaces the common one
    ts = torch.linspace(0, 1, 21, dtype=F64)
    a, _ = pfode.reconstruct(f, x, method="rk4", steps=10, inversion={"ts": ts})
    b = pfode.generate(f, pfode.invert(f, x, method="rk4", ts=ts), method="rk4", steps=10)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    with pytest.raises(ValueError, match="ts must run from t = 1 to t = 0"):
        pfode.reconstruct(f, x, method="rk4", ts=ts)               # the common ts is the generation's


def test_a_reused_info_dict_holds_the_last_call_and_a_failed_call_reports():
    f = three_gaussians()
    x = f.sample(4, generator=gen(48))
    info = {}
    pfode.generate(f, x, method="edict", steps=10, info=info)
    pfode.generate(f, x, method="rk4", steps=10, info=info)
    assert info["nfe"] == 40 and info["method"] == "rk4" and "aux" not in info
    info = {}
    with pytest.raises(RuntimeError, match="did not converge"):
        pfode.invert(f, x, method="fixed-point", steps=2, on_fail="raise", info=info)
    assert "converged" in info and not bool(info["converged"].all()) and info["nfe"] > 0


def test_flow_map_callback_sees_the_state_not_the_tangent():
    f = three_gaussians()
    z = torch.randn(3, 2, generator=gen(49), dtype=F64)
    u = torch.randn(3, 2, generator=gen(50), dtype=F64)
    for method, kw in (("rk4", {"steps": 5}), ("dopri5", {})):
        shapes = []
        M = pfode.generation_map(f, method=method, callback=lambda i, t, y, shapes=shapes: shapes.append(tuple(y.shape)), **kw)
        M.jvp(z, u)
        assert set(shapes) == {(3, 2)}


def test_scipy_solves_nest():
    """A field that itself runs a scipy solve (work kept per call, not in a shared global)."""
    f = three_gaussians()

    def nested(y, t):
        pfode.integrate(f, y[:1].detach(), [0.5, 0.4], method="scipy-rk45")
        return f(y, t)

    x = f.sample(2, generator=gen(51))
    torch.testing.assert_close(pfode.invert(nested, x, method="scipy-rk45"),
                               pfode.invert(lambda y, t: f(y, t), x, method="scipy-rk45"), rtol=0, atol=0)
