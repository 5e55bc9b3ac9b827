"""pfode.sde against closed forms: schedules, OU marginals, scores, posteriors, samplers."""
import math

import numpy as np
import pytest
import torch
from scipy.integrate import quad

from pfode import sde

DT = torch.float64


def _prior():
    return sde.Mixture([[-1.0, 0.0], [1.0, 1.0], [0.0, -1.5]], [0.09, 0.04, 0.16],
                       torch.log(torch.tensor([0.5, 0.3, 0.2], dtype=DT)))


@pytest.mark.parametrize("kind", sde.KINDS)
def test_theta_bar_matches_quadrature(kind):
    s = sde.ThetaSchedule(kind, scale=2.5, T=3.0, theta_min=0.2)
    for t in (0.0, 0.4, 1.7, 3.0):
        np.testing.assert_allclose(s.theta_bar(t), quad(s.theta, 0, t, epsabs=1e-13)[0], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kind", sde.KINDS)
def test_terminal_schedule_hits_target(kind):
    s = sde.ThetaSchedule.terminal(kind, target=0.01, T=2.0)
    np.testing.assert_allclose(math.exp(-s.theta_bar(2.0)), 0.01, rtol=1e-12)


def _processes():
    cos = sde.ThetaSchedule.terminal("cosine")
    return [sde.VP(cos), sde.IRSDE(cos, lam=0.7), sde.D3GM(cos, lam=0.7, tau=1.5),
            sde.DecoupledOU(cos, sde.ThetaSchedule.terminal("linear"), lam=0.7), sde.Bridge(cos, g=0.8)]


@pytest.mark.parametrize("proc", _processes(), ids=lambda p: p.name)
def test_marginal_matches_euler_maruyama(proc):
    """Forward EM from a point x0 (fine steps) vs the closed-form N(a x0 + b mu, v I)."""
    N, t = 4000, 0.6
    x0 = torch.tensor([[1.0, -0.5]], dtype=DT).expand(N, 2)
    mu = torch.tensor([0.3, 0.8], dtype=DT)
    xt = sde.forward_em(proc, x0, mu, steps=600, t_end=t, seed=1)
    mean, var = proc.marginal(x0[:1], t, mu)
    se_mean = math.sqrt(float(var) / N)
    # threshold: statistics: 4 standard errors of the Monte Carlo moments plus the Euler-Maruyama
    #   bias of the given step count
    assert (xt.mean(0) - mean[0]).abs().max() < 4 * se_mean + 2e-3
    se_var = float(var) * math.sqrt(2 / (N - 1))
    # threshold: statistics: 4 standard errors of the Monte Carlo variance plus the Euler-Maruyama
    #   bias
    assert (xt.var(0) - var).abs().max() < 4 * se_var + 3e-3 * float(var)


def test_d3gm_stationary_law():
    """As t → ∞ (θ̄ large) x_t → N(mu, τ²λ²); from x0 ~ N(mu, τ²λ²) the law never changes."""
    s = sde.ThetaSchedule("linear", scale=40.0)
    p = sde.D3GM(s, lam=0.6, tau=2.0)
    a, b, v = p.coefficients(1.0)
    # threshold: closed form: a = e^(-theta_bar) = e^(-20) ~ 2e-9, and v = tau^2 lam^2 (1 - a^2) to
    #   round-off
    assert a < 1e-8 and abs(b - 1) < 1e-8 and abs(v - (2.0 * 0.6) ** 2) < 1e-12
    N = 4000
    mu = torch.tensor([1.0, -2.0], dtype=DT)
    x0 = mu + 1.2 * torch.randn(N, 2, generator=torch.Generator().manual_seed(3), dtype=DT)
    x = sde.forward_em(p, x0, mu, steps=800, seed=5)
    # threshold: statistics: 4 standard errors of the Monte Carlo moments (plus the Euler-Maruyama
    #   bias for the variance)
    assert (x.mean(0) - mu).abs().max() < 4 * 1.2 / math.sqrt(N)
    assert (x.var(0) - 1.44).abs().max() < 4 * 1.44 * math.sqrt(2 / N) + 0.02


def test_gaussian_score():
    m = torch.tensor([[0.5, -1.0, 2.0]], dtype=DT)
    g = sde.Mixture(m, 0.3)
    x = torch.randn(7, 3, generator=torch.Generator().manual_seed(0), dtype=DT)
    np.testing.assert_allclose(g.score(x).numpy(), (-(x - m) / 0.3).numpy(), rtol=1e-12, atol=1e-12)


def test_mixture_score_is_gradient_of_log_prob():
    C = torch.tensor([[[0.5, 0.2], [0.2, 0.3]], [[0.1, 0.0], [0.0, 0.4]]], dtype=DT)
    mix = sde.Mixture(torch.randn(5, 2, 2, generator=torch.Generator().manual_seed(1), dtype=DT), C,
                      torch.randn(5, 2, generator=torch.Generator().manual_seed(2), dtype=DT))
    x = torch.randn(5, 2, generator=torch.Generator().manual_seed(4), dtype=DT).requires_grad_(True)
    grad, = torch.autograd.grad(mix.log_prob(x).sum(), x)
    np.testing.assert_allclose(mix.score(x.detach()).numpy(), grad.numpy(), rtol=1e-10, atol=1e-12)
    # batched rows equal one-row mixtures
    one = sde.Mixture(mix.means[2], C, mix.log_weights[2])
    np.testing.assert_allclose(one.score(x[2:3].detach()).numpy(), mix.score(x.detach())[2:3].numpy(), rtol=1e-12)


@pytest.mark.parametrize("batched", [False, True])
def test_shared_covariance_path_matches_general(batched):
    """Equal covariances take the GEMM path; it must agree with autograd and the per-k path."""
    g = torch.Generator().manual_seed(11)
    L = torch.tensor([[0.5, 0.0, 0.0], [0.2, 0.4, 0.0], [-0.1, 0.1, 0.3]], dtype=DT)
    C = (L @ L.T).expand(4, 3, 3).clone()
    means = torch.randn(*((6,) if batched else ()), 4, 3, generator=g, dtype=DT)
    mix = sde.Mixture(means, C, torch.randn(4, generator=g, dtype=DT))
    assert mix._shared
    gen_mix = sde.Mixture(means, C, mix.log_weights)
    gen_mix._shared = False
    x = torch.randn(6, 3, generator=g, dtype=DT).requires_grad_(True)
    grad, = torch.autograd.grad(mix.log_prob(x).sum(), x)
    np.testing.assert_allclose(mix.score(x.detach()).numpy(), grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(mix.score(x.detach()).numpy(), gen_mix.score(x.detach()).numpy(), rtol=1e-10)
    np.testing.assert_allclose(mix.log_prob(x.detach()).numpy(), gen_mix.log_prob(x.detach()).numpy(), rtol=1e-12)


def test_mixture_log_prob_normalised():
    mix = _prior()
    xs = torch.linspace(-4, 4, 401, dtype=DT)
    X, Y = torch.meshgrid(xs, xs, indexing="ij")
    pts = torch.stack([X.flatten(), Y.flatten()], 1)
    total = mix.log_prob(pts).exp().sum() * (xs[1] - xs[0]) ** 2
    np.testing.assert_allclose(float(total), 1.0, atol=1e-6)


def test_posterior_of_gaussian_prior_is_textbook():
    """One component: posterior N(m + C Aᵀ S⁻¹(y - A m), C - C Aᵀ S⁻¹ A C), via the information form."""
    m = torch.tensor([0.5, -1.0, 0.2], dtype=DT)
    Lc = torch.tensor([[1.0, 0, 0], [0.3, 0.8, 0], [-0.2, 0.1, 0.5]], dtype=DT)
    C = Lc @ Lc.T
    A = torch.tensor([[1.0, 0.5, 0.0], [0.0, 1.0, -1.0]], dtype=DT)
    s = 0.3
    y = torch.tensor([[0.7, -0.4]], dtype=DT)
    post = sde.posterior(sde.Mixture(m[None], C[None]), A, s, y)
    P = torch.linalg.inv(torch.linalg.inv(C) + A.T @ A / s ** 2)               # information form
    mean = P @ (torch.linalg.solve(C, m) + A.T @ y[0] / s ** 2)
    np.testing.assert_allclose(post.covs[0].numpy(), P.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(post.means[0, 0].numpy(), mean.numpy(), rtol=1e-10, atol=1e-12)


def test_mixture_posterior_weights_by_bayes():
    prior = _prior()
    A = torch.tensor([[1.0, 0.0], [0.0, 0.5]], dtype=DT)
    y = torch.tensor([[0.2, 0.1], [-1.0, 0.4]], dtype=DT)
    post = sde.posterior(prior, A, 0.4, y)
    # p(x0 | y) ∝ p(x0) N(y; A x0, s² I): compare log-densities up to the row constant
    x = torch.randn(2, 2, generator=torch.Generator().manual_seed(9), dtype=DT)
    lik = -0.5 * ((y - x @ A.T) ** 2).sum(1) / 0.16
    un = prior.log_prob(x) + lik
    x2 = x + 0.3
    un2 = prior.log_prob(x2) + (-0.5 * ((y - x2 @ A.T) ** 2).sum(1) / 0.16)
    np.testing.assert_allclose((post.log_prob(x) - post.log_prob(x2)).numpy(), (un - un2).numpy(), rtol=1e-9)


def test_pf_ode_maps_gaussian_marginals():
    """A Gaussian x0 ~ N(m, s²): PF-ODE from exact p_T samples gives mean m and variance s²."""
    p = sde.D3GM(sde.ThetaSchedule.terminal("cosine"), lam=0.5, tau=1.3)
    m, s2 = torch.tensor([1.0, -0.5], dtype=DT), 0.04
    law = sde.Mixture(m[None], s2)
    mu = torch.tensor([0.2, 0.3], dtype=DT)
    xT = sde.marginal_mixture(p, law, p.T, mu).sample(4000, torch.Generator().manual_seed(0))
    out = sde.pf_ode(p, sde.exact_score(p, law), xT, mu, steps=100, method="rk4")
    N = 4000
    # threshold: statistics: 4 standard errors of the moments of N exact samples pushed through the
    #   (affine) ODE map
    assert (out.mean(0) - m).abs().max() < 4 * math.sqrt(s2 / N)
    assert (out.var(0) - s2).abs().max() < 4 * s2 * math.sqrt(2 / N)
    # the ODE map of a Gaussian is affine: x0 = m + sqrt(s2 / v_T) (x_T - mean_T)
    a, b, v = p.coefficients(p.T)
    exact = m + math.sqrt(s2 / (a * a * s2 + v)) * (xT - (a * m + b * mu))
    np.testing.assert_allclose(out.numpy(), exact.numpy(), atol=1e-6)


def test_reverse_sde_samples_posterior_moments():
    p = sde.D3GM(sde.ThetaSchedule.terminal("cosine"), lam=0.5, tau=1.5)
    m, s2 = torch.tensor([1.0, -0.5], dtype=DT), 0.09
    law = sde.Mixture(m[None], s2)
    mu = torch.tensor([0.2, 0.3], dtype=DT)
    xT = sde.marginal_mixture(p, law, p.T, mu).sample(2000, torch.Generator().manual_seed(0))
    out = sde.euler_maruyama(p, sde.exact_score(p, law), xT, mu, steps=400, seed=7)
    # threshold: statistics: 4 standard errors plus the Euler-Maruyama bias at 400 steps
    assert (out.mean(0) - m).abs().max() < 4 * math.sqrt(s2 / 2000) + 5e-3
    assert (out.var(0) - s2).abs().max() < 4 * s2 * math.sqrt(2 / 2000) + 5e-3


def _em_affine_moments(proc, score, x_mean, x_cov, mu, steps, t_start):
    """A second method for the Euler-Maruyama output law: the sampler is affine in its start and in
    its increments, out = c + M x_T + Σ_i N_i ξ_i, so unit perturbations of one batch give c, M and
    every N_i; mean = c + M E x_T, cov = M Cov(x_T) Mᵀ + Σ_i N_i N_iᵀ. One measurement row."""
    n = x_mean.shape[0]
    rows = 1 + n + steps * n
    x = x_mean.expand(rows, n).clone()
    x[1:n + 1] += torch.eye(n, dtype=DT)
    noise = torch.zeros(rows, steps, n, dtype=DT)
    for i in range(steps):
        noise[1 + n + i * n:1 + n + (i + 1) * n, i] = torch.eye(n, dtype=DT)
    out = sde.euler_maruyama(proc, score, x, mu.expand(rows, n), steps=steps, t_start=t_start, noise=noise)
    c = out[0]
    M = (out[1:n + 1] - c).T
    N = out[1 + n:] - c
    return c, M @ x_cov @ M.T + N.T @ N


def _em_gaussian_moments(proc, m, s2, mu, steps, t_start):
    """Exact mean and variance of the Euler-Maruyama output for x0 ~ N(m, s2) in one dimension,
    started from the exact p_T, by the perturbation method of :func:`_em_affine_moments`."""
    law = sde.Mixture(torch.tensor([[m]], dtype=DT), s2)
    a, b, v = proc.coefficients(t_start)
    mean, cov = _em_affine_moments(proc, sde.exact_score(proc, law), torch.tensor([a * m + b * mu], dtype=DT),
                                   torch.tensor([[a * a * s2 + v]], dtype=DT), torch.tensor([mu], dtype=DT),
                                   steps, t_start)
    return float(mean[0]), float(cov[0, 0])


@pytest.mark.parametrize("proc", [p for p in _processes() if p.name in ("SGM", "D3GM", "Bridge (I2SB)")],
                         ids=lambda p: p.name)
def test_reverse_em_gaussian_moments_converge_at_order_one(proc):
    """Gaussian prior: the reverse SDE with the exact score returns N(m, s2); Euler-Maruyama's
    mean and variance errors (computed exactly, see above) halve when the steps double."""
    m, s2, mu = 1.0, 0.09, 0.2
    t0 = proc.T - 0.01 if isinstance(proc, sde.Bridge) else proc.T
    errs = [_em_gaussian_moments(proc, m, s2, mu, k, t0) for k in (50, 100, 200)]
    var_err = [v - s2 for _, v in errs]
    # threshold: weak order one of Euler-Maruyama: successive variance errors in the ratio 2
    #   (observed order log2 within 0.2 of 1, the O(h^2) remainder at 50-200 steps)
    for e1, e2 in zip(var_err, var_err[1:]):
        assert abs(math.log2(e1 / e2) - 1) < 0.2, var_err
    # threshold: the constant of the O(h) error: at 200 steps the variance is within 2 % of s2
    assert abs(var_err[-1]) < 0.02 * s2, var_err
    mean_err = [abs(c - m) for c, _ in errs]
    if mean_err[0] > 1e-12:                   # the bridge's mean is exact (its drift keeps it affine in t)
        # threshold: weak order one for the mean as well
        assert all(abs(math.log2(e1 / e2) - 1) < 0.2 for e1, e2 in zip(mean_err, mean_err[1:])), mean_err


def test_path_noise_independent_of_batch():
    a = sde.path_noise(5, 3, 2, seed=10)
    b = sde.path_noise(2, 3, 2, seed=10)
    assert torch.equal(a[:2], b)


def test_tdd_bound_is_below_exact_quantile():
    from scipy.stats import ncx2
    for c2, v, d, delta in [(4.0, 0.3, 2, 0.05), (0.1, 1.0, 10, 0.01), (25.0, 2.0, 64, 0.1)]:
        lb = float(sde.tdd_lower_bound(c2, v, d, delta))
        # threshold: the TDD bounds must lie below / above the exact non-central chi-square
        #   quantiles (the proposition)
        assert lb <= v * ncx2.ppf(delta, d, c2 / v)
        ub = float(sde.tdd_upper_bound(c2, v, d, delta))
        # threshold: the upper TDD bound must lie above the exact quantile (the proposition)
        assert ub >= v * ncx2.ppf(1 - delta, d, c2 / v)


@pytest.mark.parametrize("call, arg", [
    (lambda: sde.ThetaSchedule("square"), "kind"),
    (lambda: sde.ThetaSchedule("linear", scale=-1.0), "scale"),
    (lambda: sde.ThetaSchedule.terminal("linear", target=1.5), "target"),
    (lambda: sde.ThetaSchedule("linear").theta(2.0), "t"),
    (lambda: sde.D3GM(sde.ThetaSchedule(), tau=0.5), "tau"),
    (lambda: sde.D3GM(sde.ThetaSchedule(), lam=0.0), "lam"),
    (lambda: sde.Bridge(sde.ThetaSchedule()).drift(torch.zeros(1, 2), 1.0, torch.zeros(2)), "t"),
    (lambda: sde.Mixture(torch.zeros(3), 1.0), "means"),
    (lambda: sde.Mixture(torch.zeros(2, 3), torch.ones(3)), "covs"),
    (lambda: sde.posterior(_prior(), torch.eye(3), 0.1, torch.zeros(1, 3)), "A"),
    (lambda: sde.posterior(_prior(), torch.eye(2), 0.0, torch.zeros(1, 2)), "noise_std"),
    (lambda: sde.tdd_lower_bound(1.0, 1.0, 2, 0.0), "delta"),
    (lambda: sde.D3GM(sde.ThetaSchedule()).drift(torch.zeros(2, 2), 0.5, torch.zeros(3)), "mu"),
])
def test_validation_names_argument(call, arg):
    with pytest.raises(ValueError, match=rf"\b{arg}\b"):
        call()


@pytest.mark.parametrize("proc", _processes(), ids=lambda p: p.name)
@pytest.mark.parametrize("batched", [False, True])
def test_shared_cov_score_matches_exact_score(proc, batched):
    """The eigen-rotated score of a shared-covariance mixture equals the exact marginal score."""
    g = torch.Generator().manual_seed(21)
    L = torch.tensor([[0.5, 0.0, 0.0], [0.2, 0.4, 0.0], [-0.1, 0.1, 0.3]], dtype=DT)
    means = torch.randn(*((5,) if batched else ()), 4, 3, generator=g, dtype=DT)
    law = sde.Mixture(means, (L @ L.T).expand(4, 3, 3).clone(), torch.randn(4, generator=g, dtype=DT))
    x = torch.randn(5, 3, generator=g, dtype=DT)
    mu = torch.randn(5, 3, generator=g, dtype=DT)
    fast, ref = sde.shared_cov_score(proc, law), sde.exact_score(proc, law)
    for t in (0.0, 0.3, 0.9):
        np.testing.assert_allclose(fast(x, t, mu).numpy(), ref(x, t, mu).numpy(), rtol=1e-9, atol=1e-10)


def test_shared_cov_score_gaussian_closed_form():
    """One component N(m, s²I) under D3GM: score -(x - a m - b mu)/(a² s² + v)."""
    p = sde.D3GM(sde.ThetaSchedule.terminal("linear"), lam=0.4, tau=1.5)
    m, mu = torch.tensor([[0.5, -1.0]], dtype=DT), torch.tensor([0.2, 0.7], dtype=DT)
    x = torch.randn(6, 2, generator=torch.Generator().manual_seed(2), dtype=DT)
    a, b, v = p.coefficients(0.5)
    np.testing.assert_allclose(sde.shared_cov_score(p, sde.Mixture(m, 0.09))(x, 0.5, mu).numpy(),
                               (-(x - a * m - b * mu) / (a * a * 0.09 + v)).numpy(), rtol=1e-12)
    with pytest.raises(ValueError, match="x0_law"):
        sde.shared_cov_score(p, sde.Mixture(m.expand(2, 2), torch.tensor([0.1, 0.2], dtype=DT)))


# ---------------------------------------------------------------------------------------------
# Gaussian laws under an affine score error
# ---------------------------------------------------------------------------------------------
def _gauss(n=3, B=2, seed=4):
    g = torch.Generator().manual_seed(seed)
    L = torch.randn(n, n, generator=g, dtype=DT) * 0.2 + 0.3 * torch.eye(n, dtype=DT)
    return (torch.randn(B, n, generator=g, dtype=DT), L @ L.T,
            torch.randn(B, n, generator=g, dtype=DT) * 0.5)


def _errors(n):
    rho = torch.linspace(-1.0, 1.0, n, dtype=DT)
    return {"none": None,
            "shift": sde.ScoreError(lambda t: 0.7 * rho),
            "shift(t)+scale(t)": sde.ScoreError(lambda t: (1 - t) ** 2 * rho, lambda t: 0.3 * (1 - t))}


@pytest.mark.parametrize("proc", _processes(), ids=lambda p: p.name)
def test_gaussian_reverse_law_returns_the_law_it_started_from(proc):
    """Time reversal (Anderson 1982): with the exact score, started from the exact marginal p_T,
    the reverse SDE ends in the law of x0. The moment equations must return (mean, cov)."""
    m, C, mu = _gauss()
    law = sde.gaussian_reverse_law(proc, m, C, mu, t_start=proc.t_start(), start="marginal")
    # threshold: the ODE solver's tolerance (rtol 1e-10) on quantities of size ~1
    np.testing.assert_allclose(law.mean.numpy(), m.numpy(), atol=1e-7)
    np.testing.assert_allclose(law.cov.numpy(), C.numpy(), atol=1e-7)


@pytest.mark.parametrize("proc", _processes(), ids=lambda p: p.name)
@pytest.mark.parametrize("err", ["none", "shift", "shift(t)+scale(t)"])
def test_gaussian_em_law_equals_the_sampler(proc, err):
    """The recursion in the eigenbasis against the sampler itself (perturbation method above),
    with the exact score of the general Mixture code and the perturbed score."""
    m, C, mu = _gauss()
    error = _errors(3)[err]
    t0, steps = proc.t_start(), 40
    law = sde.gaussian_em_law(proc, m, C, mu, error=error, steps=steps, t_start=t0)
    for i in range(2):
        score = sde.exact_score(proc, sde.Mixture(m[i:i + 1], C[None]))
        score = score if error is None else error(score)
        _, b, v = proc.coefficients(t0)
        mean, cov = _em_affine_moments(proc, score, b * mu[i], v * torch.eye(3, dtype=DT), mu[i:i + 1], steps, t0)
        # threshold: two exact computations of the same affine recursion: round-off only
        np.testing.assert_allclose(law.mean[i].numpy(), mean.numpy(), atol=1e-10)
        np.testing.assert_allclose(law.cov.numpy(), cov.numpy(), atol=1e-10)


@pytest.mark.parametrize("proc", [p for p in _processes() if p.name in ("SGM", "D3GM", "Bridge (I2SB)")],
                         ids=lambda p: p.name)
def test_gaussian_em_law_converges_to_the_moment_equations(proc):
    """Weak order one: the distance of the Euler-Maruyama law to the continuous one halves when
    the steps double, with a shift and a scale error."""
    m, C, mu = _gauss()
    error = _errors(3)["shift(t)+scale(t)"]
    t0 = proc.t_start()
    ref = sde.gaussian_reverse_law(proc, m, C, mu, error=error, t_start=t0)
    errs = []
    for k in (100, 200, 400):
        law = sde.gaussian_em_law(proc, m, C, mu, error=error, steps=k, t_start=t0)
        errs.append(float((law.mean - ref.mean).abs().max() + (law.cov - ref.cov).abs().max()))
    # threshold: order one: observed order log2(e_k / e_2k) within 0.2 of 1 (the O(h²) remainder)
    for e1, e2 in zip(errs, errs[1:]):
        assert abs(math.log2(e1 / e2) - 1) < 0.2, errs


@pytest.mark.parametrize("proc", _processes(), ids=lambda p: p.name)
def test_constant_score_error_bias_is_the_gain_integral(proc):
    """[book: eq-se-gain]: a constant shift u of the score moves the final mean by
    Γ u with Γ = ∫_0^{T} Φ(t) g_t² dt, Φ(t) = exp(-∫_0^t (g²/V - k)), computed here by nested
    quadrature in one dimension."""
    c, m, mu, u = 0.05, 0.4, 0.1, 0.3
    t0 = proc.t_start()

    def rate(r):
        a, _, v = proc.coefficients(r)
        return proc.diffusion(r) ** 2 / (a * a * c + v) - proc.drift_coefficients(r)[0]

    def integrand(t):
        return math.exp(-quad(rate, 0, t, limit=200)[0]) * proc.diffusion(t) ** 2

    gain = quad(integrand, 0, t0, limit=200, epsrel=1e-9)[0]
    args = (proc, torch.tensor([[m]], dtype=DT), torch.tensor([[c]], dtype=DT), torch.tensor([mu], dtype=DT))
    shifted = sde.gaussian_reverse_law(*args, error=sde.ScoreError(lambda t: torch.tensor([u], dtype=DT)), t_start=t0)
    clean = sde.gaussian_reverse_law(*args, t_start=t0)
    # threshold: quadrature and ODE tolerances (1e-9 relative) on a bias of size ~0.1-1
    np.testing.assert_allclose(float(shifted.mean - clean.mean), gain * u, rtol=1e-6)
    # the closed-form propagator Φ(t) = c a_t / V_t of the library against the nested quadrature
    # threshold: two quadratures of the same integral, relative tolerance 1e-9 each
    np.testing.assert_allclose(sde.error_gain(proc, c, t_start=t0), gain, rtol=1e-7)
    np.testing.assert_allclose(float(shifted.cov), float(clean.cov), rtol=1e-9)


def test_gaussian_w2_closed_forms():
    from scipy.linalg import sqrtm
    m1, C1, _ = _gauss(4, 3, 1)
    m2, C2, _ = _gauss(4, 3, 2)
    p, q = sde.GaussianLaw(m1, C1), sde.GaussianLaw(m2, C2)
    r = sqrtm(C2.numpy())
    ref = ((m1 - m2) ** 2).sum(1).numpy() + np.trace(C1.numpy() + C2.numpy() - 2 * sqrtm(r @ C1.numpy() @ r).real)
    # threshold: two matrix square roots (eigh, Schur) agree to round-off
    np.testing.assert_allclose(sde.gaussian_w2(p, q).numpy() ** 2, ref, rtol=1e-9)
    one = sde.gaussian_w2(sde.GaussianLaw(torch.zeros(1, 1, dtype=DT), torch.tensor([[0.25]], dtype=DT)),
                          sde.GaussianLaw(torch.ones(1, 1, dtype=DT), torch.tensor([[0.09]], dtype=DT)))
    np.testing.assert_allclose(float(one), math.sqrt(1 + (0.5 - 0.3) ** 2), rtol=1e-12)
    # threshold: a law is at distance 0 from itself, up to the square root of round-off in the trace
    assert float(sde.gaussian_w2(p, p).max()) < 1e-6


@pytest.mark.parametrize("call, arg", [
    (lambda: sde.gaussian_em_law(_processes()[0], torch.zeros(1, 2), torch.eye(3), torch.zeros(2)), "cov"),
    (lambda: sde.gaussian_em_law(_processes()[0], torch.zeros(1, 2), -torch.eye(2), torch.zeros(2)), "cov"),
    (lambda: sde.gaussian_em_law(_processes()[0], torch.zeros(1, 2), torch.eye(2), torch.zeros(3)), "mu"),
    (lambda: sde.gaussian_em_law(_processes()[0], torch.zeros(1, 2), torch.eye(2), torch.zeros(2), error=1.0), "error"),
    (lambda: sde.gaussian_em_law(_processes()[0], torch.zeros(1, 2), torch.eye(2), torch.zeros(2), start="x"), "start"),
    (lambda: sde.gaussian_em_law("VP", torch.zeros(1, 2), torch.eye(2), torch.zeros(2)), "process"),
    (lambda: sde.gaussian_reverse_law(_processes()[0], torch.zeros(1, 2), torch.eye(2), torch.zeros(2), t_end=2.0), "t_end"),
    (lambda: sde.Bridge(sde.ThetaSchedule()).t_start(2.0), "eps"),
    (lambda: sde.smooth_field(torch.ones(3, 2), 1.0), "basis"),
    (lambda: sde.smooth_field(torch.eye(3)[:, :2], -1.0), "size"),
    (lambda: sde.gaussian_em_law(_processes()[0], torch.zeros(1, 2), torch.eye(2), torch.zeros(2),
                                 error=sde.ScoreError(field=lambda x, t: x)), "field"),
    (lambda: sde.error_gain(_processes()[0], 0.0), "c"),
])
def test_gaussian_law_validation_names_argument(call, arg):
    with pytest.raises(ValueError, match=rf"\b{arg}\b"):
        call()


def test_smooth_field_is_bounded_and_not_affine():
    basis = torch.linalg.qr(torch.randn(6, 3, generator=torch.Generator().manual_seed(0), dtype=DT)).Q
    f = sde.smooth_field(basis, 0.8, bandwidth=0.5, seed=3)
    x = 4 * torch.randn(2000, 6, generator=torch.Generator().manual_seed(1), dtype=DT)
    e = f(x, 0.3)
    # threshold: the bound ‖R s‖ = ‖s‖ ≤ √q of the construction, up to round-off
    assert float(e.norm(dim=1).max()) <= 0.8 * (1 + 1e-12)
    mid = f((x[:1] + x[1:2]) / 2, 0.0)
    # threshold: not affine: the midpoint rule fails by far more than round-off
    assert float((mid - (e[:1] + e[1:2]) / 2).norm()) > 1e-3
    assert torch.equal(sde.smooth_field(basis, 0.8, bandwidth=0.5, seed=3)(x, 0.0), e)


@pytest.mark.parametrize("proc", [p for p in _processes() if p.name in ("SGM", "D3GM", "Bridge (I2SB)")],
                         ids=lambda p: p.name)
def test_pathwise_bound_for_a_non_affine_error(proc):
    """[book: prop-se-pathwise], discrete form: on the same start and the same Brownian path, a
    score error with ‖e‖ ≤ C moves the Euler-Maruyama end by at most C Γ_h(c_max), the discrete
    gain (the mean displacement of a unit constant error along the top eigenvector); a constant
    error along that eigenvector attains it."""
    m, C, mu = _gauss()
    steps, t0, size = 60, proc.t_start(), 0.5
    c, U = torch.linalg.eigh(C)
    top = U[:, -1]
    zero = torch.zeros(1, 3, dtype=DT)
    unit = sde.gaussian_em_law(proc, zero, C, zero, error=sde.ScoreError(lambda t: top), steps=steps, t_start=t0)
    base = sde.gaussian_em_law(proc, zero, C, zero, steps=steps, t_start=t0)
    gain_h = float((unit.mean - base.mean) @ top)
    basis = torch.linalg.qr(torch.randn(3, 2, generator=torch.Generator().manual_seed(5), dtype=DT)).Q
    err = sde.ScoreError(field=sde.smooth_field(basis, size, bandwidth=0.3, seed=2))
    score = sde.exact_score(proc, sde.Mixture(m[:1], C[None]))
    xT = proc.terminal(mu[0], 200, torch.Generator().manual_seed(0), t=t0)
    kw = dict(steps=steps, t_start=t0, seed=11)
    d = sde.euler_maruyama(proc, err(score), xT, mu[0], **kw) - sde.euler_maruyama(proc, score, xT, mu[0], **kw)
    # threshold: the inequality of the proposition, exact up to round-off (relative 1e-9)
    assert float(d.norm(dim=1).max()) <= size * gain_h * (1 + 1e-9)
    # threshold: the field is not aligned with the top eigenvector on every step: strictly inside
    assert float(d.norm(dim=1).max()) < size * gain_h
    const = sde.ScoreError(lambda t: size * top)
    d1 = sde.euler_maruyama(proc, const(score), xT, mu[0], **kw) - sde.euler_maruyama(proc, score, xT, mu[0], **kw)
    # threshold: equality for the worst constant error, round-off only
    np.testing.assert_allclose(d1.norm(dim=1).numpy(), size * gain_h, rtol=1e-9)
    # the continuous gain is the limit of the discrete one (order h)
    # threshold: at 60 steps the first-order discretisation error is below 10 % for these schedules
    assert abs(gain_h / sde.error_gain(proc, float(c[-1]), t_start=t0) - 1) < 0.1
