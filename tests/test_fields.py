"""The exact mixture field against closed forms and independent computations."""
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import multivariate_normal

import pfode

F64 = torch.float64


def three_gaussians(std=0.2):
    return pfode.GaussianMixture([[-2.0, -1.0], [2.0, -1.0], [0.0, 2.0]], std)


def random_mixture(K, n, seed=0, dtype=F64):
    g = torch.Generator().manual_seed(seed)
    means = torch.randn(K, n, generator=g, dtype=dtype)
    stds = 0.1 + torch.rand(K, generator=g, dtype=dtype)
    w = torch.rand(K, generator=g, dtype=dtype) + 0.1
    return pfode.GaussianMixture(means, stds, w / w.sum())


def brute_force_velocity(means, stds, weights, x, t):
    """E[eps - x0 | x_t = x] per component from Gaussian conditioning, in numpy.

    For one component (x0 ~ N(mu, s^2 I), eps ~ N(0, I)): x_t ~ N((1-t) mu, S I) with
    S = (1-t)^2 s^2 + t^2, Cov(x0, x_t) = (1-t) s^2 I, Cov(eps, x_t) = t I, so
    E[x0|x] = mu + (1-t) s^2 / S (x - (1-t) mu) and E[eps|x] = t / S (x - (1-t) mu).
    """
    out = np.zeros_like(x)
    for i, xi in enumerate(x):
        logr, cond = [], []
        for mu, s, w in zip(means, stds, weights):
            S = (1 - t) ** 2 * s ** 2 + t ** 2
            logr.append(math.log(w) + multivariate_normal(mean=(1 - t) * mu, cov=S).logpdf(xi))
            e_x0 = mu + (1 - t) * s ** 2 / S * (xi - (1 - t) * mu)
            e_eps = t / S * (xi - (1 - t) * mu)
            cond.append(e_eps - e_x0)
        logr = np.array(logr)
        r = np.exp(logr - logr.max())
        r /= r.sum()
        out[i] = (r[:, None] * np.array(cond)).sum(0)
    return out


@pytest.mark.parametrize("t", [0.0, 0.05, 0.3, 0.7, 1.0])
def test_velocity_matches_gaussian_conditioning(t):
    f = random_mixture(4, 3, seed=1)
    x = torch.randn(6, 3, generator=torch.Generator().manual_seed(2), dtype=F64)
    ref = brute_force_velocity(f.means.numpy(), f.stds.numpy(), f.weights.numpy(), x.numpy(), t)
    np.testing.assert_allclose(f.velocity(x, t).numpy(), ref, rtol=1e-10, atol=1e-10)


def test_endpoints():
    f = random_mixture(5, 4, seed=3)
    x = torch.randn(7, 4, generator=torch.Generator().manual_seed(4), dtype=F64)
    torch.testing.assert_close(f(x, 0.0), -x)                                  # E[eps|x0] = 0
    torch.testing.assert_close(f(x, 1.0), x - f.weights @ f.means)            # E[x0|x1] = mean


def test_log_prob_matches_scipy():
    f = random_mixture(3, 2, seed=5)
    x = torch.randn(10, 2, generator=torch.Generator().manual_seed(6), dtype=F64)
    for t in (0.0, 0.4, 1.0):
        dens = sum(w * multivariate_normal((1 - t) * m, ((1 - t) ** 2 * s ** 2 + t ** 2)).pdf(x.numpy())
                   for m, s, w in zip(f.means.numpy(), f.stds.numpy(), f.weights.numpy()))
        np.testing.assert_allclose(f.log_prob(x, t).numpy(), np.log(dens), rtol=1e-12)


def test_score_and_divergence_against_autograd():
    f = random_mixture(6, 5, seed=7)
    x = torch.randn(4, 5, generator=torch.Generator().manual_seed(8), dtype=F64)
    for t in (0.0, 0.2, 0.9):
        grad = torch.func.vmap(torch.func.grad(lambda y, t=t: f.log_prob(y[None], t)[0]))(x)
        torch.testing.assert_close(f.score(x, t), grad)
        J = torch.func.vmap(torch.func.jacrev(lambda y, t=t: f.velocity(y[None], t)[0]))(x)
        torch.testing.assert_close(f.divergence(x, t), J.diagonal(dim1=1, dim2=2).sum(1))


def test_continuity_equation():
    """d/dt log p_t(x_t) along the flow equals -div v (the continuity equation)."""
    f = three_gaussians(0.5)
    x = torch.randn(5, 2, generator=torch.Generator().manual_seed(9), dtype=F64)
    t, h = 0.4, 1e-5
    dlogp_dt = (f.log_prob(x, t + h) - f.log_prob(x, t - h)) / (2 * h)
    lhs = dlogp_dt + (f.score(x, t) * f(x, t)).sum(1)                         # material derivative
    torch.testing.assert_close(lhs, -f.divergence(x, t), rtol=1e-6, atol=1e-6)


def test_per_sample_times_equal_scalar_times():
    f = random_mixture(3, 4, seed=10)
    x = torch.randn(5, 4, generator=torch.Generator().manual_seed(11), dtype=F64)
    ts = torch.tensor([0.0, 0.1, 0.5, 0.9, 1.0], dtype=F64)
    batched = f(x, ts)
    looped = torch.cat([f(x[i:i + 1], float(ts[i])) for i in range(5)])
    torch.testing.assert_close(batched, looped)


def test_batched_equals_looped_float32():
    f = random_mixture(8, 6, seed=12)
    x = torch.randn(9, 6, generator=torch.Generator().manual_seed(13), dtype=torch.float32)
    v = f(x, 0.3)
    assert v.dtype == torch.float32
    torch.testing.assert_close(v, torch.cat([f(x[i:i + 1], 0.3) for i in range(9)]))
    torch.testing.assert_close(v.double(), f(x.double(), 0.3), rtol=1e-4, atol=1e-4)


def test_sample_moments_and_determinism():
    f = three_gaussians(0.3)
    a = f.sample(200_000, generator=torch.Generator().manual_seed(0))
    b = f.sample(200_000, generator=torch.Generator().manual_seed(0))
    assert torch.equal(a, b)
    mean = f.weights @ f.means
    cov = (f.weights[:, None, None] * (torch.einsum("ki,kj->kij", f.means, f.means)
                                        + 0.09 * torch.eye(2, dtype=F64))).sum(0) - torch.outer(mean, mean)
    se = (cov.diagonal() / 200_000).sqrt()
    # threshold: statistics: 5 standard errors of the mean of 2e5 exact samples
    assert ((a.mean(0) - mean).abs() < 5 * se).all()
    torch.testing.assert_close(torch.cov(a.T), cov, rtol=0.02, atol=0.02)


@settings(max_examples=25, deadline=None)
@given(std=st.floats(1e-3, 2.0), t=st.sampled_from([0.0, 1e-9, 0.5, 1 - 1e-9, 1.0]),
       n=st.sampled_from([1, 3, 100, 10_000]), seed=st.integers(0, 10_000))
def test_field_finite_everywhere(std, t, n, seed):
    g = torch.Generator().manual_seed(seed)
    f = pfode.GaussianMixture(torch.randn(3, n, generator=g, dtype=F64), std)
    x = 3 * torch.randn(4, n, generator=g, dtype=F64)
    for out in (f(x, t), f.log_prob(x, t), f.divergence(x, t), f.score(x, t)):
        assert torch.isfinite(out).all()


def test_validation_errors():
    with pytest.raises(ValueError, match="stds"):
        pfode.GaussianMixture([[0.0, 0.0]], 0.0)
    with pytest.raises(ValueError, match="stds"):
        pfode.GaussianMixture([[0.0, 0.0]], -1.0)
    with pytest.raises(ValueError, match="weights"):
        pfode.GaussianMixture([[0.0], [1.0]], 1.0, [0.5, 0.6])
    with pytest.raises(ValueError, match="weights"):
        pfode.GaussianMixture([[0.0], [1.0]], 1.0, [1.5, -0.5])
    with pytest.raises(ValueError, match="means"):
        pfode.GaussianMixture([0.0, 1.0], 1.0)
    with pytest.raises(ValueError, match="means"):
        pfode.GaussianMixture([[float("nan"), 1.0]], 1.0)
    f = three_gaussians()
    with pytest.raises(ValueError, match="x"):
        f(torch.zeros(3, 5, dtype=F64), 0.5)
    with pytest.raises(ValueError, match="x"):
        f(torch.zeros(3, dtype=F64), 0.5)
    with pytest.raises(ValueError, match="NaN"):
        f(torch.full((1, 2), float("nan"), dtype=F64), 0.5)
    with pytest.raises(TypeError, match="x"):
        f(np.zeros((1, 2)), 0.5)
    for bad_t in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match="t"):
            f(torch.zeros(1, 2, dtype=F64), bad_t)
    with pytest.raises(ValueError, match="t"):
        f(torch.zeros(2, 2, dtype=F64), torch.tensor([0.1, 0.2, 0.3]))
    with pytest.raises(ValueError, match="num"):
        f.sample(0)


def test_closed_form_jvp_matches_autodiff():
    f = random_mixture(7, 5, seed=14)
    g = torch.Generator().manual_seed(15)
    x = torch.randn(6, 5, generator=g, dtype=F64)
    w = torch.randn(6, 5, generator=g, dtype=F64)
    for t in (0.0, 0.3, 1.0, torch.rand(6, generator=g, dtype=F64)):
        v, jw = f.velocity_jvp(x, t, w)
        v_ad, jw_ad = torch.func.jvp(lambda y, t=t: f.velocity(y, t), (x,), (w,))
        torch.testing.assert_close(v, v_ad)
        torch.testing.assert_close(jw, jw_ad)


def test_float32_log_prob_and_divergence_near_t0_are_computed_stably():
    """Near t = 0 the expanded squared distance divided by s² amplifies float32 round-off by
    1/s²; log_prob and divergence are computed in float64 whatever the input dtype, so the
    float32 call agrees with the float64 one to float32 precision of the result."""
    g = torch.Generator().manual_seed(0)
    n, K, s = 10_000, 8, 1e-3
    means = torch.randn(K, n, generator=g, dtype=torch.float64)
    gm = pfode.GaussianMixture(means, s)
    x = means[:3] + s * torch.randn(3, n, generator=g, dtype=torch.float64)
    x32 = x.float()                                       # the float32 input, exactly
    for t in (0.0, 1e-4):
        lp64 = gm.log_prob(x32.double(), t)
        lp32 = gm.log_prob(x32, t)
        assert lp32.dtype == torch.float32
        # float32 result of a float64 computation: relative error <= eps32 (one rounding)
        torch.testing.assert_close(lp32.double(), lp64, rtol=2 * torch.finfo(torch.float32).eps, atol=0)
        d64 = gm.divergence(x32.double(), t)
        torch.testing.assert_close(gm.divergence(x32, t).double(), d64,
                                   rtol=2 * torch.finfo(torch.float32).eps, atol=0)


def test_default_tolerances_take_any_float_dtype():
    assert pfode.default_tolerances(torch.float64) == pfode.default_tolerances(np.float64) == (1e-8, 1e-10)
    assert pfode.default_tolerances(float) == (1e-8, 1e-10)
    assert pfode.default_tolerances(torch.float32) == pfode.default_tolerances(np.float32) == (1e-5, 1e-7)
    for bad in (torch.float16, np.int64, None, "half"):
        with pytest.raises(TypeError, match="dtype"):
            pfode.default_tolerances(bad)


def common_std_mixture(K=6, n=5, s=0.3, seed=20):
    g = torch.Generator().manual_seed(seed)
    w = torch.rand(K, generator=g, dtype=F64) + 0.1
    return pfode.GaussianMixture(torch.randn(K, n, generator=g, dtype=F64), s, w / w.sum())


@pytest.mark.parametrize("mixture", [random_mixture(6, 5, seed=16), common_std_mixture()],
                         ids=["per-component std", "common std"])
def test_closed_form_jacobian_matches_autograd_and_finite_differences(mixture):
    f = mixture
    g = torch.Generator().manual_seed(17)
    x = 1.5 * torch.randn(4, 5, generator=g, dtype=F64)
    for t in (0.0, 0.02, 0.3, 0.8, 1.0):
        J = f.velocity_jacobian(x, t)
        assert J.shape == (4, 5, 5) and J.dtype == F64
        torch.testing.assert_close(J, pfode.field_jacobian(f, x, t), rtol=1e-10, atol=1e-10)
        # central differences, h = 1e-5: truncation h^2 |v'''| and round-off eps |v| / h, both
        # below 1e-7 here
        h = 1e-5
        e = torch.eye(5, dtype=F64)
        fd = torch.stack([(f(x + h * e[j], t) - f(x - h * e[j], t)) / (2 * h) for j in range(5)], dim=2)
        torch.testing.assert_close(J, fd, rtol=1e-6, atol=1e-7)
    # per-row times equal one time per row
    ts = torch.tensor([0.0, 0.1, 0.6, 1.0], dtype=F64)
    looped = torch.cat([f.velocity_jacobian(x[i:i + 1], float(ts[i])) for i in range(4)])
    torch.testing.assert_close(f.velocity_jacobian(x, ts), looped, rtol=1e-12, atol=1e-12)
    # endpoints: v(x, 0) = -x and v(x, 1) = x - mean, so J = -I and J = I
    eye = torch.eye(5, dtype=F64).expand(4, 5, 5)
    torch.testing.assert_close(f.velocity_jacobian(x, 0.0), -eye, rtol=0, atol=1e-12)
    torch.testing.assert_close(f.velocity_jacobian(x, 1.0), eye, rtol=0, atol=1e-12)
    J32 = f.velocity_jacobian(x.float(), 0.3)
    assert J32.dtype == torch.float32
    torch.testing.assert_close(J32.double(), f.velocity_jacobian(x.float().double(), 0.3))


def test_common_std_jacobian_is_a_minus_posterior_covariance():
    """grad v = a I - (t c / Sigma^2) Cov_r(mu): symmetric, and a I for one component."""
    s, t = 0.2, 0.4
    c, sig = 1 - t, (1 - t) ** 2 * s ** 2 + t ** 2
    a = (t - c * s * s) / sig
    f = common_std_mixture(K=4, n=3, s=s)
    x = torch.randn(3, 3, generator=torch.Generator().manual_seed(18), dtype=F64)
    J = f.velocity_jacobian(x, t)
    _, _, _, _, _, _, _, _, logits = f._terms(x, t)
    r = torch.softmax(logits, dim=1)
    mbar = r @ f.means
    cov = torch.einsum("bk,ki,kj->bij", r, f.means, f.means) - torch.einsum("bi,bj->bij", mbar, mbar)
    torch.testing.assert_close(J, a * torch.eye(3, dtype=F64) - (t * c / sig ** 2) * cov)
    torch.testing.assert_close(J, J.transpose(1, 2), rtol=0, atol=1e-15)
    one = pfode.GaussianMixture([[1.0, -2.0, 0.5]], s)
    torch.testing.assert_close(one.velocity_jacobian(x, t), a * torch.eye(3, dtype=F64).expand(3, 3, 3))


def low_rank_mixture(K=5, D=3, n=9, s=0.15, seed=21):
    g = torch.Generator().manual_seed(seed)
    means = torch.randn(K, D, generator=g, dtype=F64) @ torch.randn(D, n, generator=g, dtype=F64)
    return pfode.GaussianMixture(means, s)


def test_span_reduction_basis_and_split():
    f = low_rank_mixture()
    span = f.span_reduction()
    assert span.dim == 3 and span.n == 9 and span.std == 0.15 and span.field.n == 3
    Q = span.basis
    torch.testing.assert_close(Q.T @ Q, torch.eye(3, dtype=F64), rtol=0, atol=1e-14)
    torch.testing.assert_close(f.means @ Q @ Q.T, f.means, rtol=0, atol=1e-12)  # means lie in V
    torch.testing.assert_close(span.field.means, f.means @ Q)
    assert torch.equal(span.field.weights, f.weights)
    x = torch.randn(6, 9, generator=torch.Generator().manual_seed(22), dtype=F64)
    x_par, x_perp = span.split(x)
    torch.testing.assert_close(x_perp @ Q, torch.zeros(6, 3, dtype=F64), rtol=0, atol=1e-14)
    torch.testing.assert_close(span.join(x_par, x_perp), x, rtol=0, atol=1e-14)
    # full rank when K >= n, rank 1 for one component
    assert pfode.GaussianMixture(torch.randn(12, 4, dtype=F64), 0.1).span_reduction().dim == 4
    assert pfode.GaussianMixture([[1.0, 2.0]], 0.1).span_reduction().dim == 1
    with pytest.raises(ValueError, match="common std"):
        random_mixture(3, 4).span_reduction()
    with pytest.raises(ValueError, match="span"):
        pfode.GaussianMixture(torch.zeros(2, 3), 0.1).span_reduction()


@pytest.mark.parametrize("t", [0.0, 0.1, 0.5, 1.0])
def test_span_reduction_log_prob_velocity_and_jacobian_equal_the_full_space(t):
    f = low_rank_mixture()
    span = f.span_reduction()
    x = f.sample(5, generator=torch.Generator().manual_seed(23)) + torch.randn(
        5, 9, generator=torch.Generator().manual_seed(24), dtype=F64)
    torch.testing.assert_close(span.log_prob(x, t), f.log_prob(x, t), rtol=1e-12, atol=1e-10)
    torch.testing.assert_close(span.velocity(x, t), f.velocity(x, t), rtol=1e-12, atol=1e-12)
    # grad v is block diagonal in (V, V^perp): Q^T J Q = J_V(x_par) and J = a I on V^perp
    Q, (x_par, x_perp) = span.basis, span.split(x)
    J = f.velocity_jacobian(x, t)
    torch.testing.assert_close(Q.T @ J @ Q, span.field.velocity_jacobian(x_par, t), rtol=1e-10, atol=1e-10)
    c, s2 = 1 - t, span.std ** 2
    a = (t - c * s2) / (c * c * s2 + t * t)
    torch.testing.assert_close(J @ x_perp[..., None], a * x_perp[..., None], rtol=1e-10, atol=1e-10)


def test_span_reduction_inversion_equals_the_full_space_solve():
    """F(x) = Q F_V(x_par) + x_perp / s: a solve in D = 3 dimensions and the exact orthogonal
    part, against dopri5 in all n = 9; G likewise with s z_perp."""
    f = low_rank_mixture()
    span = f.span_reduction()
    x = f.sample(4, generator=torch.Generator().manual_seed(25)) + 0.3 * torch.randn(
        4, 9, generator=torch.Generator().manual_seed(26), dtype=F64)
    opts = dict(method="dopri5", rtol=1e-10, atol=1e-12)
    z_full = pfode.invert(f, x, **opts)
    x_par, x_perp = span.split(x)
    z_span = span.join(pfode.invert(span.field, x_par, **opts), span.perp_flow(x_perp))
    # threshold: two solves at rtol 1e-10 of a field with |grad v| of order 1/s^2
    torch.testing.assert_close(z_span, z_full, rtol=1e-7, atol=1e-7)
    assert torch.equal(span.perp_flow(x_perp), x_perp / span.std)
    z = torch.randn(4, 9, generator=torch.Generator().manual_seed(27), dtype=F64)
    z_par, z_perp = span.split(z)
    torch.testing.assert_close(span.join(pfode.generate(span.field, z_par, **opts),
                                         span.perp_flow(z_perp, 1.0, 0.0)),
                               pfode.generate(f, z, **opts), rtol=1e-7, atol=1e-7)


@pytest.mark.parametrize("stds", [0.3, [0.2, 0.5, 0.35]])
def test_single_row_numpy_velocity_is_the_torch_velocity(stds):
    """velocity_np (the scipy solvers' single-row path) against velocity: the same formula
    evaluated in another order, so they agree to a few ulps of the larger terms."""
    f = pfode.GaussianMixture([[-2.0, -1.0], [2.0, -1.0], [0.0, 2.0]], stds, weights=[0.2, 0.3, 0.5])
    x = 3 * torch.randn(20, 2, generator=torch.Generator().manual_seed(30), dtype=F64)
    for t in (0.0, 1e-3, 0.4, 0.999, 1.0):
        v = f.velocity(x, t).numpy()
        v_np = np.stack([f.velocity_np(xi, t) for xi in x.numpy()])
        # threshold: |v| <= 30 here; 1e-12 absolute is ~40 ulps of it
        np.testing.assert_allclose(v_np, v, rtol=0, atol=1e-12)


def test_scipy_solvers_give_the_same_answer_with_and_without_the_numpy_path():
    f = pfode.GaussianMixture([[-2.0, -1.0], [2.0, -1.0], [0.0, 2.0]], 0.3)
    x = f.sample(4, generator=torch.Generator().manual_seed(31))
    for method in ("scipy-rk45", "scipy-bdf"):
        fast = pfode.invert(f, x, method=method)
        slow = pfode.invert(lambda y, t: f(y, t), x, method=method)      # no velocity_np
        # threshold: the two differ by round-off in the field (1e-15), which the adaptive step
        #   control can turn into a different step sequence: bounded by the solve's own error,
        #   rtol 1e-8 x the flow's Lipschitz constant (< 30)
        torch.testing.assert_close(fast, slow, rtol=0, atol=3e-7)
