"""Exactly invertible samplers, served by pfode.generate/invert/reconstruct: round trips to
round-off, orders, closed forms, validation."""
import numpy as np
import pytest
import torch

import pfode
from pfode import exact_inversion as ei

F64, F32 = torch.float64, torch.float32
# Parameters for which the inverse's parasitic mode (factor p^-2 per step for EDICT, 1/gamma
# for BDIA; see test_parasitic_mode_of_the_inverse) stays far below 1/round-off over 50 steps.
EXACT = [("edict", {}), ("edict", {"p": 0.97}), ("bdia", {}), ("bdia", {"gamma": 0.9}), ("belm", {})]
IDS = ["edict", "edict-p0.97", "bdia", "bdia-g0.9", "belm"]


def with_aux(solve, *args, **kwargs):
    """``solve(*args, **kwargs)`` and the second state it leaves in ``info["aux"]``."""
    info = {}
    out = solve(*args, info=info, **kwargs)
    return out, info.get("aux")


def gen(seed):
    return torch.Generator().manual_seed(seed)


def three_gaussians(dtype=F64):
    return pfode.GaussianMixture([[-2.0, -1.0], [2.0, -1.0], [0.0, 2.0]], 0.2, dtype=dtype)


def smooth_mixture():
    return pfode.GaussianMixture([[-1.0, 0.0], [1.0, 0.5]], 0.6)


# ---- exact invertibility ---------------------------------------------------------------------
@pytest.mark.parametrize("steps", [1, 2, 7, 50])
@pytest.mark.parametrize("scheme,params", EXACT, ids=IDS)
def test_invert_after_generate_is_identity(scheme, params, steps):
    f = three_gaussians()
    z = torch.randn(64, 2, generator=gen(0), dtype=F64)
    x, x_aux = with_aux(pfode.generate, f, z, method=scheme, steps=steps, **params)
    z_back, z_aux = with_aux(pfode.invert, f, x, method=scheme, steps=steps, aux=x_aux, **params)
    assert (z_back - z).abs().max() <= 1e-10
    # the second state comes back too: EDICT starts both sequences at z; BDIA/BELM's second
    # state is the Euler step from z
    expected_aux = z if scheme == "edict" else z + (-1.0 / steps) * f(z, 1.0)
    assert (z_aux - expected_aux).abs().max() <= 1e-10


@pytest.mark.parametrize("steps", [1, 2, 7, 50])
@pytest.mark.parametrize("scheme,params", EXACT, ids=IDS)
def test_generate_after_invert_is_identity(scheme, params, steps):
    f = three_gaussians()
    x = f.sample(64, generator=gen(1))
    x_rec, z_hat = pfode.reconstruct(f, x, method=scheme, steps=steps, **params)
    assert (x_rec - x).abs().max() <= 1e-10
    assert torch.isfinite(z_hat).all()


@pytest.mark.parametrize("scheme,params", EXACT, ids=IDS)
def test_round_trip_on_a_nonuniform_grid(scheme, params):
    f = three_gaussians()
    s = torch.linspace(1, 0, 31, dtype=F64)
    ts = 3 * s / (1 + 2 * s)                         # a shifted schedule (SD3 shift 3), 1 -> 0
    x = f.sample(32, generator=gen(2))
    z_hat, aux = with_aux(pfode.invert, f, x, method=scheme, ts=ts.flip(0), **params)
    x_rec = pfode.generate(f, z_hat, method=scheme, ts=ts, aux=aux, **params)
    assert (x_rec - x).abs().max() <= 1e-10
    x_rec2, z2 = pfode.reconstruct(f, x, method=scheme, ts=ts, **params)
    torch.testing.assert_close(z2, z_hat, rtol=0, atol=0)
    torch.testing.assert_close(x_rec2, x_rec, rtol=0, atol=0)


@pytest.mark.parametrize("scheme", ["edict", "bdia", "belm"])
def test_float32_round_trip(scheme):
    f = three_gaussians(F32)
    x = three_gaussians().sample(64, generator=gen(3)).float()
    x_rec, z_hat = pfode.reconstruct(f, x, method=scheme, steps=50)
    assert x_rec.dtype == F32 and z_hat.dtype == F32
    assert (x_rec - x).abs().max() <= 1e-4


@pytest.mark.parametrize("scheme,param,factor", [
    ("edict", {"p": 0.8}, lambda N: 0.8 ** (-2 * N)),
    ("bdia", {"gamma": 0.5}, lambda N: 0.5 ** (-(N - 1))),
])
def test_parasitic_mode_of_the_inverse(scheme, param, factor):
    """With v = 0 the schemes are linear maps on the state pair. EDICT's mixing has
    eigenvalues 1 (x = y) and p^2 (the difference x - y); BDIA's two-step recurrence has roots
    1 and -gamma. Their exact inverses multiply the difference mode by p^-2 (per step) and
    -1/gamma (per two-step step): generation damps it, inversion amplifies it."""
    zero = lambda x, t: torch.zeros_like(x)
    x = torch.randn(4, 3, generator=gen(20), dtype=F64)
    d = 1e-3 * torch.randn(4, 3, generator=gen(21), dtype=F64)
    N = 12
    z, aux = with_aux(pfode.invert, zero, x, method=scheme, steps=N, aux=x + d, **param)
    growth = (z - aux).norm(dim=1) / d.norm(dim=1)
    torch.testing.assert_close(growth, torch.full((4,), factor(N), dtype=F64), rtol=1e-9, atol=0)
    # and the generation map damps it by the reciprocal factor
    x2, aux2 = with_aux(pfode.generate, zero, z, method=scheme, steps=N, aux=aux, **param)
    torch.testing.assert_close(x2, x, rtol=0, atol=1e-12)
    torch.testing.assert_close(aux2, x + d, rtol=0, atol=1e-12)


def test_overflow_is_reported():
    zero = lambda x, t: torch.zeros_like(x)
    x = torch.randn(4, 3, generator=gen(22), dtype=F32)
    with pytest.raises(FloatingPointError, match="edict inversion overflowed"):
        pfode.invert(zero, x, method="edict", p=0.5, steps=100, aux=x + 1e-3)


def test_bdia_gamma_one_is_obelm_on_a_uniform_grid_only():
    """Both reduce to the leapfrog rule x_c = x_a + 2 δ v(x_b) when the steps are equal."""
    f = three_gaussians()
    z = torch.randn(16, 2, generator=gen(4), dtype=F64)
    a = pfode.generate(f, z, method="bdia", steps=20, gamma=1.0)
    b = pfode.generate(f, z, method="belm", steps=20)
    torch.testing.assert_close(a, b, rtol=0, atol=1e-13)
    ts = torch.linspace(1, 0, 21, dtype=F64) ** 2
    a = pfode.generate(f, z, method="bdia", ts=ts, gamma=1.0)
    b = pfode.generate(f, z, method="belm", ts=ts)
    assert (a - b).abs().max() > 1e-4


def test_edict_step_is_the_paper_update_and_its_inverse():
    """EDICT Eq. (14) written out with a = 1, b eps(.) = h v(., t), and Eq. (15) undoes it."""
    f = three_gaussians()
    x = torch.randn(8, 2, generator=gen(5), dtype=F64)
    y = x + 0.1 * torch.randn(8, 2, generator=gen(6), dtype=F64)
    t, h, p = 0.6, -0.05, 0.93
    xi = x + h * f(y, t)
    yi = y + h * f(xi, t)
    x1 = p * xi + (1 - p) * yi
    y1 = p * yi + (1 - p) * x1
    out = ei._edict_step(f, x, y, t, h, p)
    torch.testing.assert_close(out[0], x1, rtol=0, atol=0)
    torch.testing.assert_close(out[1], y1, rtol=0, atol=0)
    back = ei._edict_unstep(f, x1, y1, t, h, p)
    torch.testing.assert_close(back[0], x, rtol=0, atol=1e-14)
    torch.testing.assert_close(back[1], y, rtol=0, atol=1e-14)


def test_ddim_is_euler_in_t():
    """DDIM in the flow-matching convention: (1-s) x0_hat + s eps_hat = x + (s - t) v."""
    f = three_gaussians()
    x = torch.randn(8, 2, generator=gen(7), dtype=F64)
    t, s = 0.7, 0.45
    v = f(x, t)
    x0_hat, eps_hat = x - t * v, x + (1 - t) * v
    ddim = (1 - s) * x0_hat + s * eps_hat
    euler = pfode.integrate(f, x, [t, s], method="euler")
    torch.testing.assert_close(ddim, euler, rtol=0, atol=1e-14)
    # fixed-point generation is exactly Euler
    z = torch.randn(8, 2, generator=gen(8), dtype=F64)
    torch.testing.assert_close(pfode.generate(f, z, method="fixed-point", steps=13),
                               pfode.generate(f, z, method="euler", steps=13), rtol=0, atol=0)


# ---- fixed-point inversion --------------------------------------------------------------------
def test_fixed_point_inverts_an_euler_step_in_closed_form():
    """Single Gaussian: v(y, t) = a(t) (y - (1-t) mu) - mu is affine, so the Euler step
    y + h v(y, t) = x has the closed-form solution y = (x + h (a (1-t) + 1) mu) / (1 + h a)."""
    mu, s = torch.tensor([[0.5, -1.0]], dtype=F64), 0.4
    f = pfode.GaussianMixture(mu, s)
    x = torch.randn(10, 2, generator=gen(9), dtype=F64)
    t_new, h = 0.5, -0.5                       # one step of a 2-step grid: t = 0.5 -> 0
    a = (t_new - (1 - t_new) * s**2) / ((1 - t_new) ** 2 * s**2 + t_new**2)
    y_exact = (x + h * (a * (1 - t_new) + 1) * mu) / (1 + h * a)
    assert abs(h * a) < 1                      # the iteration contracts
    for tol in (1e-6, 1e-12):
        # the first inversion step of the grid [0, 0.5, 1] solves exactly this equation
        first = []
        info = {}
        pfode.invert(f, x, method="fixed-point", ts=[0.0, 0.5, 1.0], tol=tol, info=info, max_iter=200,
                  callback=lambda i, t, y, first=first: first.append(y) if i == 1 else None)
        assert bool(info["converged"].all())
        err = (first[0] - y_exact).abs().max().item()
        # contraction factor q = |h a|: the error after the stopping test is <= q/(1-q) * tol(1+|y|)
        q = abs(h * a)
        # threshold: the a-posteriori bound of a contraction with factor q, which must hold
        assert err <= q / (1 - q) * tol * (1 + first[0].abs().max().item()) + 1e-15, (tol, err)


def test_fixed_point_reconstruction_to_its_tolerance():
    f = three_gaussians()
    x = f.sample(32, generator=gen(10))
    for tol in (1e-6, 1e-12):
        info = {}
        z_hat = pfode.invert(f, x, method="fixed-point", steps=100, tol=tol, info=info)
        assert bool(info["converged"].all()) and info["max_iter_used"] <= 50
        x_rec = pfode.generate(f, z_hat, method="fixed-point", steps=100)
        err = (x_rec - x).abs().max().item()
        # each step is solved to ~tol; the errors pass through at most 100 Euler steps of G,
        # whose amplification on this model is well below 1e3
        assert err <= 1e3 * tol * (1 + x.abs().max().item()), (tol, err)
    # much better than naive Euler inversion
    x_naive, _ = pfode.reconstruct(f, x, method="euler", steps=100)
    assert (x_naive - x).abs().max() > 1e3 * err


def test_fixed_point_reports_non_convergence():
    f = three_gaussians()
    x = f.sample(16, generator=gen(11))
    info = {}
    with pytest.warns(RuntimeWarning, match="did not converge"):
        pfode.invert(f, x, method="fixed-point", steps=2, info=info)
    assert not bool(info["converged"].all())
    with pytest.raises(RuntimeError, match="did not converge"):
        pfode.invert(f, x, method="fixed-point", steps=2, on_fail="raise")
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pfode.invert(f, x, method="fixed-point", steps=2, on_fail="ignore")


# ---- orders (global error of the generation map against a tight dopri5 reference) -------------
@pytest.mark.parametrize("scheme,params,order", [
    ("edict", {}, 1),                  # a coupled DDIM: first order (as DDIM)
    ("bdia", {"gamma": 0.5}, 1),       # second-order condition off by (1 - gamma) h^2 / 2
    ("bdia", {"gamma": 1.0}, 2),       # symmetric: leapfrog on a uniform grid
    ("belm", {}, 2),                   # O-BELM: LTE O(h^3) (Wang et al. 2024, Prop. 4)
    ("fixed-point", {}, 1),            # Euler
])
def test_order_of_generation(scheme, params, order):
    f = smooth_mixture()
    z = torch.randn(16, 2, generator=gen(12), dtype=F64)
    ref = pfode.generate(f, z, method="dopri5", rtol=1e-12, atol=1e-14)
    steps = [16, 32, 64, 128]
    errs = [(pfode.generate(f, z, method=scheme, steps=N, **params) - ref).norm(dim=1).max().item()
            for N in steps]
    slope = -np.polyfit(np.log(steps), np.log(errs), 1)[0]
    assert abs(slope - order) < 0.25, (scheme, errs, slope)


def test_order_of_belm_on_a_nonuniform_grid():
    f = smooth_mixture()
    z = torch.randn(16, 2, generator=gen(13), dtype=F64)
    ref = pfode.generate(f, z, method="dopri5", rtol=1e-12, atol=1e-14)
    steps = [16, 32, 64, 128]
    errs = []
    for N in steps:
        s = torch.linspace(1, 0, N + 1, dtype=F64)
        ts = 3 * s / (1 + 2 * s)
        errs.append((pfode.generate(f, z, method="belm", ts=ts) - ref).norm(dim=1).max().item())
    slope = -np.polyfit(np.log(steps), np.log(errs), 1)[0]
    assert abs(slope - 2) < 0.25, (errs, slope)


def test_order_of_fixed_point_inversion():
    f = smooth_mixture()
    x = torch.randn(16, 2, generator=gen(14), dtype=F64)
    ref = pfode.invert(f, x, method="dopri5", rtol=1e-12, atol=1e-14)
    steps = [16, 32, 64, 128]
    errs = [(pfode.invert(f, x, method="fixed-point", steps=N) - ref).norm(dim=1).max().item()
            for N in steps]
    slope = -np.polyfit(np.log(steps), np.log(errs), 1)[0]
    assert abs(slope - 1) < 0.25, (errs, slope)


# ---- batched equals looped, callback, evaluation counts -----------------------------------------
@pytest.mark.parametrize("scheme,params", EXACT[::2] + [("fixed-point", {})],
                         ids=["edict", "bdia", "belm", "fixed-point"])
def test_batched_equals_looped(scheme, params):
    f = three_gaussians()
    x = f.sample(6, generator=gen(15))
    zb, ab = with_aux(pfode.invert, f, x, method=scheme, steps=60, **params)
    xb = pfode.generate(f, zb, method=scheme, steps=60, aux=ab, **params)
    for i in range(6):
        zi, ai = with_aux(pfode.invert, f, x[i:i + 1], method=scheme, steps=60, **params)
        torch.testing.assert_close(zi, zb[i:i + 1], rtol=1e-12, atol=1e-12)
        xi = pfode.generate(f, zi, method=scheme, steps=60, aux=ai, **params)
        torch.testing.assert_close(xi, xb[i:i + 1], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("scheme", ei.SCHEMES)
def test_callback_sees_every_grid_time(scheme):
    f = three_gaussians()
    z = torch.randn(4, 2, generator=gen(16), dtype=F64)
    times = []
    x = pfode.generate(f, z, method=scheme, steps=7, callback=lambda i, t, xi: times.append((i, t, xi)))
    assert [i for i, _, _ in times] == list(range(8))
    np.testing.assert_allclose([t for _, t, _ in times], np.linspace(1, 0, 8), atol=1e-15)
    torch.testing.assert_close(times[0][2], z)
    torch.testing.assert_close(times[-1][2], x)
    times = []
    pfode.invert(f, x, method=scheme, steps=7, callback=lambda i, t, xi: times.append(t))
    np.testing.assert_allclose(times, np.linspace(0, 1, 8), atol=1e-15)


@pytest.mark.parametrize("scheme", ei.SCHEMES)
def test_velocity_evaluations_are_counted(scheme):
    f = three_gaussians()
    calls = []

    def counted(x, t):
        calls.append(x.shape[0])
        return f(x, t)

    z = torch.randn(5, 2, generator=gen(17), dtype=F64)
    info = {}
    pfode.generate(counted, z, method=scheme, steps=9, info=info)
    assert info["nfe"] == sum(calls) / 5 == ei.NFE_PER_STEP[scheme] * 9


# ---- validation ---------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs,match", [
    ({"method": "ddim"}, "method"),
    ({"method": "edict", "p": 0.0}, "p "),
    ({"method": "edict", "p": 1.5}, "p "),
    ({"method": "edict", "p": float("nan")}, "p "),
    ({"method": "bdia", "gamma": 0.0}, "gamma"),
    ({"method": "bdia", "gamma": 1.01}, "gamma"),
    ({"method": "edict", "gamma": 0.5}, "gamma"),
    ({"method": "belm", "p": 0.5}, "p"),
    ({"method": "belm", "steps": 0}, "steps"),
    ({"method": "belm", "steps": 2.5}, "steps"),
    ({"method": "belm", "ts": [1.0, 0.5]}, "ts"),
    ({"method": "fixed-point", "tol": 0.0}, "tol"),
    ({"method": "fixed-point", "max_iter": 0}, "max_iter"),
    ({"method": "fixed-point", "on_fail": "explode"}, "on_fail"),
])
def test_validation(kwargs, match):
    f = three_gaussians()
    z = torch.zeros(3, 2, dtype=F64)
    with pytest.raises((ValueError, TypeError), match=match):
        pfode.generate(f, z, **kwargs)
    with pytest.raises((ValueError, TypeError), match=match):
        pfode.invert(f, z, **{**kwargs, **({"ts": [0.0, 0.5]} if "ts" in kwargs else {})})


def test_validation_of_states():
    f = three_gaussians()
    z = torch.zeros(3, 2, dtype=F64)
    with pytest.raises(ValueError, match="aux"):
        pfode.generate(f, z, method="fixed-point", aux=z)
    with pytest.raises(ValueError, match="aux"):
        pfode.generate(f, z, method="edict", aux=torch.zeros(2, 2, dtype=F64))
    with pytest.raises(ValueError, match="z"):
        pfode.generate(f, torch.zeros(3, 3, dtype=F64), method="belm")
    with pytest.raises(ValueError, match="NaN"):
        pfode.invert(f, torch.full((3, 2), float("nan"), dtype=F64), method="belm")
    with pytest.raises(TypeError):
        pfode.generate(f, np.zeros((3, 2)), method="belm")
