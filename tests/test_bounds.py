"""Tests for pfode.bounds against independent truth (geometry, scipy, simulation, algebra)."""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from pfode import bounds as B

# --------------------------------------------------------------------------- Theorem 3.1


@pytest.mark.parametrize("L", [0.5, 1.0, 2.0, 3.0])
@pytest.mark.parametrize("N", [1, 4, 16, 64, 256])
def test_theorem31_bounds_euler_on_linear_ode(L, N):
    # dx/dt = L x on [0, 1], x(0) = 1: Lipschitz constant exactly L, x'' = L^2 x,
    # so M = L^2 max|x| = L^2 e^L. Euler: x_N = (1 + hL)^N.
    h = 1.0 / N
    x = 1.0
    for _ in range(N):
        x = x + h * L * x
    err = abs(x - math.exp(L))
    M = L**2 * math.exp(L)
    bound = B.theorem31_bound(h, L, M)
    # threshold: Theorem 3.1 is an upper bound that must hold (Euler on x' = L x, exact solution
    #   e^L)
    assert err <= bound.inversion
    assert bound.amplification == pytest.approx(math.exp(L))
    assert bound.reconstruction == pytest.approx(math.exp(L) * bound.inversion)
    # Textbook closed form of the same bound: h L e^L (e^L - 1) / 2
    assert bound.inversion == pytest.approx(h * L * math.exp(L) * (math.exp(L) - 1) / 2)


@pytest.mark.parametrize("L", [0.5, 2.0])
def test_theorem31_bound_shrinks_like_h_and_error_does_too(L):
    M = L**2 * math.exp(L)
    Ns = np.array([16, 32, 64, 128, 256, 512])
    hs = 1.0 / Ns
    inv = B.theorem31_bound(hs, L, M).inversion
    np.testing.assert_allclose(inv / hs, inv[0] / hs[0], rtol=1e-12)  # exactly linear in h
    errs = np.array([abs((1 + L / n) ** n - math.exp(L)) for n in Ns])
    ratios = errs[:-1] / errs[1:]
    assert np.all((ratios > 1.8) & (ratios < 2.2))  # first-order method
    # threshold: Theorem 3.1 must hold at every step count
    assert np.all(errs <= inv)


def test_theorem31_amplification_is_attained_by_linear_flow():
    # Flow map of dx/dt = L x over [0, 1] is a -> e^L a: Lipschitz constant exactly e^L.
    L = 1.3
    a, b = 0.7, -0.2
    ratio = abs(math.exp(L) * a - math.exp(L) * b) / abs(a - b)
    assert ratio == pytest.approx(B.theorem31_bound(0.1, L, 1.0).amplification)


def test_theorem31_L_zero_limit_and_broadcast():
    r0 = B.theorem31_bound(0.1, 0.0, 3.0)
    assert r0.inversion == pytest.approx(0.15)
    assert r0.amplification == 1.0
    assert r0.reconstruction == pytest.approx(0.15)
    tiny = B.theorem31_bound(0.1, 1e-12, 3.0)
    assert tiny.inversion == pytest.approx(0.15, rel=1e-9)
    out = B.theorem31_bound(np.array([0.1, 0.2])[:, None], np.array([0.0, 1.0, 2.0]), 1.0)
    assert out.inversion.shape == (2, 3)
    assert np.all(np.isfinite(out.inversion))
    big = B.theorem31_bound(0.1, 1000.0, 1.0)
    assert np.isinf(big.inversion) and not np.isnan(big.reconstruction)
    assert B.theorem31_bound(0.0, 1000.0, 1.0).inversion == 0.0


# --------------------------------------------------------------------------- volumes


def test_ball_volume_known_values_and_recurrence():
    assert B.log_ball_volume(0) == pytest.approx(0.0)
    assert np.exp(B.log_ball_volume(1)) == pytest.approx(2.0)
    assert np.exp(B.log_ball_volume(2)) == pytest.approx(math.pi)
    assert np.exp(B.log_ball_volume(3)) == pytest.approx(4 * math.pi / 3)
    k = np.arange(2, 400)
    lhs = B.log_ball_volume(k)
    rhs = np.log(2 * math.pi / k) + B.log_ball_volume(k - 2)
    np.testing.assert_allclose(lhs, rhs, rtol=1e-12, atol=1e-10)


@pytest.mark.parametrize("ell", [0.1, 1.0, 2.5])
@pytest.mark.parametrize("rho", [0.0, 0.05, 1.0, 3.0])
def test_steiner_low_dimensions_closed_forms(ell, rho):
    assert np.exp(B.log_steiner_volume(1, ell, rho)) == pytest.approx(ell + 2 * rho)
    v2 = ell**2 + 4 * ell * rho + math.pi * rho**2
    assert np.exp(B.log_steiner_volume(2, ell, rho)) == pytest.approx(v2, rel=1e-12)
    v3 = ell**3 + 6 * ell**2 * rho + 3 * math.pi * ell * rho**2 + 4 / 3 * math.pi * rho**3
    assert np.exp(B.log_steiner_volume(3, ell, rho)) == pytest.approx(v3, rel=1e-12)


def test_steiner_2d_monte_carlo_area():
    # Independent geometric truth: area of {x : dist(x, [0,l]^2) <= rho} by sampling.
    rng = np.random.default_rng(0)
    ell, rho = 1.0, 0.5
    lo, hi = -rho, ell + rho
    pts = rng.uniform(lo, hi, size=(400_000, 2))
    d = np.linalg.norm(pts - np.clip(pts, 0.0, ell), axis=1)
    p = np.mean(d <= rho)
    box = (hi - lo) ** 2
    se = box * math.sqrt(p * (1 - p) / len(pts))
    assert abs(box * p - np.exp(B.log_steiner_volume(2, ell, rho))) < 4 * se


def test_steiner_high_dimension_finite_and_increasing():
    n = 20_000
    rhos = np.array([0.0, 1e-3, 0.1, 1.0, 5.0, 20.0])
    lv = B.log_steiner_volume(n, 1.0, rhos)
    assert lv.shape == rhos.shape
    assert np.all(np.isfinite(lv))
    assert np.all(np.diff(lv) > 0)
    assert lv[0] == pytest.approx(0.0, abs=1e-9)  # rho = 0 -> n log ell = 0
    assert B.log_steiner_volume(n, 2.0, 0.0) == pytest.approx(n * math.log(2.0))
    # The cube [-1,1]^n has log volume n log 2
    assert B.log_cube_volume(n) == pytest.approx(n * math.log(2.0))
    assert B.log_cube_volume(3, side=0.5) == pytest.approx(3 * math.log(0.5))


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 300),
    ell=st.floats(0.01, 10.0),
    rho=st.floats(0.0, 10.0),
    extra=st.floats(0.001, 5.0),
    t=st.floats(0.1, 10.0),
)
def test_steiner_properties(n, ell, rho, extra, t):
    lv = B.log_steiner_volume(n, ell, rho)
    # contains the cube and the ball of radius rho
    assert lv >= n * math.log(ell) - 1e-9
    if rho > 0:
        # threshold: the Steiner body contains the ball: an exact inequality, 1e-9 for round-off of
        #   log-gamma sums
        assert lv >= B.log_ball_volume(n) + n * math.log(rho) - 1e-9
    # monotone in rho
    assert B.log_steiner_volume(n, ell, rho + extra) > lv
    # homogeneity of degree n: vol(tC + t rho B) = t^n vol(C + rho B)
    assert B.log_steiner_volume(n, t * ell, t * rho) == pytest.approx(
        lv + n * math.log(t), rel=1e-10, abs=1e-8
    )


# --------------------------------------------------------------------------- chi-square tails


def test_chi2_tail_matches_scipy():
    n = np.array([1, 2, 5, 50, 1000, 20000])[:, None]
    r = np.array([0.0, 0.5, 3.0, 9.0, 60.0, 1100.0, 21000.0])
    np.testing.assert_allclose(B.chi2_tail(n, r), stats.chi2.sf(r, n), rtol=1e-10, atol=1e-300)
    lt = B.log_chi2_tail(n, r)
    ref = stats.chi2.logsf(r, n)
    fin = np.isfinite(ref)
    np.testing.assert_allclose(lt[fin], ref[fin], rtol=1e-10)
    assert np.all(np.isfinite(lt))  # beyond scipy's range: see the mpmath test
    assert B.chi2_tail(5, 0.0) == 1.0


def test_log_chi2_tail_deep_tail_against_mpmath():
    # Where chi2_tail underflows to 0 the log tail must stay finite and exact.
    import mpmath  # installed with sympy, a dependency of the notebooks extra
    mpmath.mp.dps = 40
    for n, r in [(10, 5000.0), (1, 3000.0), (784, 5000.0), (3072, 20000.0), (20000, 40000.0)]:
        assert B.chi2_tail(n, r) == 0.0
        truth = float(mpmath.log(mpmath.gammainc(n / 2, r / 2, mpmath.inf, regularized=True)))
        assert B.log_chi2_tail(n, r) == pytest.approx(truth, rel=1e-12)
    mixed = B.log_chi2_tail(np.array([10, 10]), np.array([20.0, 5000.0]))
    assert np.all(np.isfinite(mixed))


def test_chi2_tail_monte_carlo():
    rng = np.random.default_rng(12345)
    n_samples, n, r = 200_000, 5, 9.0
    sq = np.sum(rng.standard_normal((n_samples, n)) ** 2, axis=1)
    p_hat = np.mean(sq > r)
    p = B.chi2_tail(n, r)
    se = math.sqrt(p * (1 - p) / n_samples)
    # threshold: statistics: a Monte Carlo frequency within 4 binomial standard errors
    assert abs(p_hat - p) < 4 * se


def test_chi2_upper_bounds_hold_on_grid():
    n = np.array([1, 2, 3, 5, 10, 50, 200, 1000, 10000])[:, None]
    factors = np.array([0.0, 0.5, 1.0, 1.01, 1.1, 1.5, 2.0, 3.0, 5.0, 10.0])
    r = n * factors
    exact = B.chi2_tail(n, r)
    ch = B.chi2_tail_chernoff(n, r)
    lm = B.chi2_tail_laurent_massart(n, r)
    for bnd in (ch, lm):
        assert bnd.shape == exact.shape
        assert np.all(bnd <= 1.0) and np.all(bnd >= 0.0)
        assert np.all(bnd >= exact * (1 - 1e-12))
    # trivial for r <= n
    assert np.all(ch[:, :3] == 1.0) and np.all(lm[:, :3] == 1.0)


def test_chernoff_and_laurent_massart_formulas():
    n, s = 10.0, 0.7
    assert B.chi2_tail_chernoff(n, (1 + s) * n) == pytest.approx(
        math.exp(-(n / 2) * (s - math.log(1 + s)))
    )
    # Laurent–Massart: pick x, build r = n + 2 sqrt(n x) + 2x, expect e^{-x}
    for n, x in [(1, 0.3), (10, 2.0), (784, 50.0), (20000, 1e-6)]:
        r = n + 2 * math.sqrt(n * x) + 2 * x
        assert B.chi2_tail_laurent_massart(n, r) == pytest.approx(math.exp(-x), rel=1e-9)


# --------------------------------------------------------------------------- Lemma D.2


def test_log_beta_matches_direct_formula():
    for n, r, gamma in [(1, 1.0, 0.3), (2, 4.0, 2.0), (5, 7.5, 1e-3), (10, 12.0, 50.0)]:
        direct = (2 * math.pi) ** -0.5 * math.exp(-r / (2 * n)) * gamma ** (-1 / n)
        assert B.beta(n, r, math.log(gamma)) == pytest.approx(direct, rel=1e-12)
        assert B.log_beta(n, r, math.log(gamma)) == pytest.approx(math.log(direct), rel=1e-12)
    # image dimension: gamma = e^{-50000} underflows, log form does not
    lb = B.log_beta(3 * 64 * 64, 3 * 64 * 64 * 1.1, -50000.0)
    assert np.isfinite(lb)


def test_lemma_d2_lower_bound_on_random_points():
    rng = np.random.default_rng(7)
    for n in [1, 2, 5, 30]:
        r = float(n + 3 * math.sqrt(n))
        log_gamma = float(rng.normal(0, 3))
        # z with ||z||^2 <= r, density values p <= gamma
        z = rng.standard_normal((500, n))
        z = z[np.sum(z**2, axis=1) <= r]
        log_p = log_gamma - rng.exponential(2.0, size=len(z))
        log_phi = -0.5 * n * math.log(2 * math.pi) - 0.5 * np.sum(z**2, axis=1)
        log_lam = (log_phi - log_p) / n
        # threshold: Lemma D.2 is an exact lower bound; 1e-12 for round-off
        assert np.all(log_lam >= B.log_beta(n, r, log_gamma) - 1e-12)
    # equality when ||z||^2 = r and p = gamma
    n, r, lg = 4, 6.0, -1.5
    z = np.full(n, math.sqrt(r / n))
    log_phi = -0.5 * n * math.log(2 * math.pi) - 0.5 * r
    assert (log_phi - lg) / n == pytest.approx(B.log_beta(n, r, lg))
    assert z @ z == pytest.approx(r)


# --------------------------------------------------------------------------- Theorem 4.1


def test_probability_lower_bound_clipping():
    assert B.probability_lower_bound(0.1, 0.2) == pytest.approx(0.7)
    assert B.probability_lower_bound(0.6, 0.7) == 0.0
    assert B.probability_lower_bound(0.0, 0.0) == 1.0
    out = B.probability_lower_bound(np.array([0.0, 0.5, 1.0]), 0.25)
    np.testing.assert_allclose(out, [0.75, 0.25, 0.0])


def test_bernoulli_ci_definition_and_edges():
    N, alpha = 50, 0.05
    for k in [1, 7, 25, 49]:
        est, lo, hi = B.bernoulli_ci(k, N)
        assert est == pytest.approx(k / N)
        # threshold: a Clopper-Pearson interval contains its estimate for 0 < k < N (exact)
        assert lo < est < hi
        # Clopper–Pearson defining equations, checked with the binomial distribution
        assert stats.binom.sf(k - 1, N, lo) == pytest.approx(alpha / 2, rel=1e-8)
        assert stats.binom.cdf(k, N, hi) == pytest.approx(alpha / 2, rel=1e-8)
    est, lo, hi = B.bernoulli_ci(0, N)
    assert (est, lo) == (0.0, 0.0) and hi == pytest.approx(1 - (alpha / 2) ** (1 / N))
    est, lo, hi = B.bernoulli_ci(N, N)
    assert (est, hi) == (1.0, 1.0) and lo == pytest.approx((alpha / 2) ** (1 / N))
    # wider at higher level; vectorised
    assert B.bernoulli_ci(10, 40, 0.99).lower < B.bernoulli_ci(10, 40, 0.9).lower
    v = B.bernoulli_ci(np.array([0, 5, 10]), 10)
    assert v.lower.shape == (3,)


def test_bernoulli_ci_coverage_simulated_and_exact():
    rng = np.random.default_rng(2024)
    p, N, n_exp = 0.3, 200, 400
    k = rng.binomial(N, p, size=n_exp)
    _, lo, hi = B.bernoulli_ci(k, N)
    cover = np.mean((lo <= p) & (p <= hi))
    # threshold: statistics: the coverage of nominal 95% intervals over n_exp experiments, within
    #   about 4 binomial standard errors; exact coverage is checked below
    assert 0.92 <= cover <= 0.98
    # exact coverage >= level for several p (Clopper–Pearson is conservative)
    ks = np.arange(N + 1)
    _, lo, hi = B.bernoulli_ci(ks, N)
    for p in [0.01, 0.1, 0.3, 0.5, 0.77]:
        inside = (lo <= p) & (p <= hi)
        # threshold: Clopper-Pearson intervals are conservative: exact coverage >= the level (a
        #   theorem), 1e-12 for round-off
        assert stats.binom.pmf(ks, N, p)[inside].sum() >= 0.95 - 1e-12


def test_delta_mc_estimates():
    log_pG = np.concatenate([np.full(30, 1.0), np.full(60, -1.0), np.full(10, 0.0), [-np.inf]])
    est = B.delta1_mc(log_pG, 0.0)  # ties (0.0) do not count: strict inequality
    assert est == B.bernoulli_ci(30, 101)
    sq = np.array([1.0, 2.0, 3.0, 4.0, np.inf])
    est2 = B.delta2_mc(sq, 3.0, level=0.9)
    assert est2 == B.bernoulli_ci(2, 5, 0.9)
    # statistical: chi-square norms of Gaussian samples estimate the exact tail
    rng = np.random.default_rng(3)
    n, r = 20, 28.0
    sq = np.sum(rng.standard_normal((20_000, n)) ** 2, axis=1)
    e, lo, hi = B.delta2_mc(sq, r, level=0.999)
    # threshold: statistics: the exact tail lies in the 99.9% interval of the Monte Carlo estimate
    assert lo <= B.chi2_tail(n, r) <= hi


def _theorem41_sample(seed=5, N=80, n=4):
    """A sample (z2, log p_G) with ties, a diverged solve (+inf) and p_G = 0 (-inf)."""
    rng = np.random.default_rng(seed)
    z2 = np.round(rng.chisquare(n, N), 1)                 # rounding makes ties
    lp = np.round(rng.uniform(-20.0, 0.0, N), 1)
    z2[0], lp[1] = np.inf, -np.inf
    return z2, lp, n


def _bound_at(z2, lp, n, beta, r):
    """Theorem 4.1 on the sample at one radius, from the single-r functions."""
    lg = n * (-0.5 * math.log(2 * math.pi) - r / (2 * n) - math.log(beta))
    assert B.log_beta(n, r, lg) == pytest.approx(math.log(beta), abs=1e-12)
    return float(B.probability_lower_bound(B.delta1_mc(lp, lg).estimate, B.delta2_mc(z2, r).estimate))


@pytest.mark.parametrize("beta", [0.5, 1.0, 2.0])
def test_theorem41_best_bound_against_brute_force_over_r(beta):
    z2, lp, n = _theorem41_sample()
    best = B.theorem41_best_bound(z2, lp, n, beta)
    finite = z2[np.isfinite(z2) & (z2 > 0)]
    grid = np.unique(np.concatenate([np.geomspace(1e-3, 1e3, 1500), finite, np.nextafter(finite, 0)]))
    brute = np.array([_bound_at(z2, lp, n, beta, r) for r in grid])
    # threshold: the same counts in the same float operations, so equal up to the last bit
    assert best.bound == pytest.approx(brute.max(), abs=1e-15)        # the max over all r
    assert np.all(best.bound >= brute - 1e-15)                        # never below any single r
    assert _bound_at(z2, lp, n, beta, best.r) == pytest.approx(best.bound, abs=1e-15)
    assert best.r == np.min(grid[brute == brute.max()])               # ties: the smallest r
    assert B.log_beta(n, best.r, best.log_gamma) == pytest.approx(math.log(beta), abs=1e-12)
    assert best.delta1 == B.delta1_mc(lp, best.log_gamma).estimate
    assert best.delta2 == B.delta2_mc(z2, best.r).estimate
    # Lemma D.2 plus the union bound on the empirical distribution: the bound holds on the
    # sample itself, at the best r too
    log_lam = (-0.5 * z2 - 0.5 * n * math.log(2 * math.pi) - lp) / n
    # threshold: exact counting; 1e-12 for round-off in log lambda_bar
    assert best.bound <= np.mean(log_lam >= math.log(beta) - 1e-12) + 1e-12
    if beta == 1.0:
        assert best.bound > 0.3                                       # the sample is not trivial


def test_theorem41_best_bound_given_candidates_and_ties():
    z2, lp, n = _theorem41_sample()
    cands = np.array([0.1, 50.0, 5.0, 7.3, 3.0])
    best = B.theorem41_best_bound(z2, lp, n, 1.0, r_candidates=cands)
    vals = np.array([_bound_at(z2, lp, n, 1.0, r) for r in cands])
    assert best.bound == vals.max() and best.r == cands[np.argmax(vals)]
    # bound 0 at every candidate: the first one is reported
    zero = B.theorem41_best_bound(np.full(5, 100.0), np.zeros(5), 3, 1.0, r_candidates=[2.0, 1.0])
    assert zero.bound == 0.0 and zero.r == 2.0 and zero.delta2 == 1.0


# --------------------------------------------------------------------------- Theorem 4.3


def test_gaussian_neighbor_radius_single_gaussian():
    # p_G = N(0, s^2 I): the density equals gamma exactly at distance rho.
    for n, s in [(1, 0.5), (3, 0.2), (100, 0.05)]:
        log_gamma = -0.5 * n * math.log(2 * math.pi * s * s) - 2.0  # below the peak
        rho = B.gaussian_neighbor_radius(n, s, log_gamma)
        log_p_at_rho = -0.5 * n * math.log(2 * math.pi * s * s) - rho**2 / (2 * s * s)
        assert log_p_at_rho == pytest.approx(log_gamma)
    # gamma above the peak density: the set {p_G > gamma} is empty
    assert B.gaussian_neighbor_radius(2, 1.0, 10.0) == 0.0


def test_delta1_steiner_bound():
    n, ell, rho = 2, 0.5, 0.1
    vol = ell**2 + 4 * ell * rho + math.pi * rho**2
    got = B.delta1_steiner_bound(n, 3, ell, rho, -n * math.log(2))
    assert got == pytest.approx(3 * vol / 4)
    # clipped at 1
    assert B.delta1_steiner_bound(2, 10, 2.0, 1.0, 0.0) == 1.0
    # Theorem 4.3 behaviour: fixed m, ell < 2, small rho -> bound -> 0 with n
    ns = [10, 100, 1000, 10000]
    vals = [B.delta1_steiner_bound(k, 5, 1.0, 0.01, -k * math.log(2)) for k in ns]
    assert all(a > b for a, b in zip(vals, vals[1:]))
    assert vals[-1] < 1e-100
    # Monte Carlo sanity in n = 2: q uniform on [-1,1]^2, set = 1 square grown by rho
    rng = np.random.default_rng(11)
    x = rng.uniform(-1, 1, size=(200_000, 2))
    c = np.clip(x, -0.25, 0.25)
    frac = np.mean(np.linalg.norm(x - c, axis=1) <= rho)
    # threshold: the Steiner bound must hold; 0.005 is about 4 binomial standard errors of frac
    #   over 2e5 points
    assert frac <= B.delta1_steiner_bound(2, 1, 0.5, rho, -2 * math.log(2)) + 0.005


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "fn, args, match",
    [
        (B.theorem31_bound, (-0.1, 1.0, 1.0), "h"),
        (B.theorem31_bound, (0.1, -1.0, 1.0), "L"),
        (B.theorem31_bound, (0.1, 1.0, np.nan), "M"),
        (B.theorem31_bound, (0.1, np.inf, 1.0), "L"),
        (B.log_ball_volume, (-1,), "k"),
        (B.log_steiner_volume, (0, 1.0, 1.0), "n"),
        (B.log_steiner_volume, (2.5, 1.0, 1.0), "n"),
        (B.log_steiner_volume, ([2, 3], 1.0, 1.0), "n"),
        (B.log_steiner_volume, (2, 0.0, 1.0), "ell"),
        (B.log_steiner_volume, (2, 1.0, -0.1), "rho"),
        (B.log_steiner_volume, (2, 1.0, np.inf), "rho"),
        (B.log_cube_volume, (0,), "n"),
        (B.log_cube_volume, (3, -2.0), "side"),
        (B.chi2_tail, (0, 1.0), "n"),
        (B.chi2_tail, (3, -1.0), "r"),
        (B.log_chi2_tail, (3, np.nan), "r"),
        (B.chi2_tail_chernoff, (0.5, 1.0), "n"),
        (B.chi2_tail_chernoff, (3, -1.0), "r"),
        (B.chi2_tail_laurent_massart, (3, np.inf), "r"),
        (B.chi2_tail_laurent_massart, (-3, 1.0), "n"),
        (B.log_beta, (0, 1.0, 0.0), "n"),
        (B.log_beta, (3, 0.0, 0.0), "r"),
        (B.log_beta, (3, 1.0, np.inf), "log_gamma"),
        (B.beta, (3, -1.0, 0.0), "r"),
        (B.probability_lower_bound, (1.5, 0.0), "delta1"),
        (B.probability_lower_bound, (0.5, -0.1), "delta2"),
        (B.bernoulli_ci, (5, 0), "trials"),
        (B.bernoulli_ci, (-1, 10), "successes"),
        (B.bernoulli_ci, (11, 10), "successes"),
        (B.bernoulli_ci, (2.5, 10), "successes"),
        (B.bernoulli_ci, (5, 10, 1.0), "level"),
        (B.bernoulli_ci, (5, 10, 0.0), "level"),
        (B.delta1_mc, ([], 0.0), "log_pG"),
        (B.delta1_mc, ([np.nan, 1.0], 0.0), "log_pG"),
        (B.delta1_mc, ([1.0], np.inf), "log_gamma"),
        (B.delta1_mc, ([1.0], 0.0, 2.0), "level"),
        (B.delta2_mc, ([-1.0, 2.0], 1.0), "sq_norms"),
        (B.delta2_mc, ([], 1.0), "sq_norms"),
        (B.delta2_mc, ([1.0], 0.0), "r"),
        (B.theorem41_best_bound, ([-1.0], [0.0], 2, 1.0), "z2"),
        (B.theorem41_best_bound, ([], [], 2, 1.0), "z2"),
        (B.theorem41_best_bound, ([1.0], [0.0, 1.0], 2, 1.0), "log_pG"),
        (B.theorem41_best_bound, ([1.0], [np.nan], 2, 1.0), "log_pG"),
        (B.theorem41_best_bound, ([1.0], [0.0], 0, 1.0), "n"),
        (B.theorem41_best_bound, ([1.0], [0.0], 2, 0.0), "beta"),
        (B.theorem41_best_bound, ([1.0], [0.0], 2, 1.0, [0.0]), "r_candidates"),
        (B.theorem41_best_bound, ([0.0, np.inf], [0.0, 0.0], 2, 1.0), "r_candidates"),
        (B.gaussian_neighbor_radius, (2, 0.0, 0.0), "s"),
        (B.gaussian_neighbor_radius, (0, 1.0, 0.0), "n"),
        (B.delta1_steiner_bound, (2, 0, 1.0, 0.1, 0.0), "m"),
        (B.delta1_steiner_bound, (2, 1.5, 1.0, 0.1, 0.0), "m"),
        (B.delta1_steiner_bound, (0, 1, 1.0, 0.1, 0.0), "n"),
        (B.delta1_steiner_bound, (2, 1, -1.0, 0.1, 0.0), "ell"),
        (B.delta1_steiner_bound, (2, 1, 1.0, -0.1, 0.0), "rho"),
        (B.delta1_steiner_bound, (2, 1, 1.0, 0.1, np.nan), "q_max_log"),
    ],
)
def test_value_errors_name_the_argument(fn, args, match):
    with pytest.raises(ValueError, match=rf"\b{match}\b"):
        fn(*args)


# --------------------------------------------------------------------------- Steiner expansion

_STEINER_NS = np.unique(np.round(np.logspace(2, 6, 9)).astype(int))


@functools.lru_cache(maxsize=None)
def _steiner_exact_and_terms(ell, rho):
    exact = np.array([B.log_steiner_volume(int(n), ell, rho) for n in _STEINER_NS])
    terms = B.log_steiner_volume_expansion(_STEINER_NS, ell, rho)
    return exact, terms


@pytest.mark.parametrize(("ell", "rho"), [(1.0, 0.5), (1.9, 0.5), (1.0, 2.0)])
def test_steiner_expansion_remainder_is_log_n_and_n13_coefficient_fits(ell, rho):
    exact, T = _steiner_exact_and_terms(ell, rho)
    ns = _STEINER_NS.astype(float)
    a = 2 * math.pi * rho**2 / ell**2
    C, D = T[0, 4], T[0, 5] * ns[0] ** (1 / 3)
    # After n log ell and the n^(2/3) term alone the remainder is not O(log n): it is
    # -(1/2) a^(2/3) n^(1/3) + O(log n), so remainder / log n keeps growing.
    r2 = exact - T[:, :2].sum(axis=1)
    # threshold: -(1/2) a^(2/3) n^(1/3) / log n grows by a factor of about 7 from n = 1e2 to
    #   1e6; 2 leaves room for the log and constant terms
    assert abs(r2[-1] / math.log(ns[-1])) > 2 * abs(r2[0] / math.log(ns[0]))
    # With the n^(1/3) term the remainder is -(1/3) log n + C(a) + D(a) n^(-1/3) + O(n^(-2/3)).
    r3 = exact - T[:, :3].sum(axis=1)
    # threshold: the expansion's next terms, with a factor 2 on the n^(-1/3) term for the
    #   O(n^(-2/3)) one
    assert np.all(np.abs(r3) <= np.log(ns) / 3 + abs(C) + 2 * abs(D) * ns ** (-1 / 3))
    # Least-squares fit r2 ~ c1 n^(1/3) + c2 log n + c3: the omitted D n^(-1/3) + O(n^(-2/3))
    # moves each coefficient by at most ||row of pinv||_1 * max|omitted|.
    A = np.column_stack([ns ** (1 / 3), np.log(ns), np.ones_like(ns)])
    pinv = np.linalg.pinv(A)
    c = pinv @ r2
    omitted = 1.5 * abs(D) * ns[0] ** (-1 / 3)
    # threshold: the propagated size of the omitted terms, 1.5 |D| n^(-1/3) at the smallest n
    #   (the n^(-2/3) term is below half the n^(-1/3) one from n = 100 on for these (ell, rho))
    assert abs(c[0] - (-0.5 * a ** (2 / 3))) <= np.abs(pinv[0]).sum() * omitted
    assert abs(c[1] - (-1 / 3)) <= np.abs(pinv[1]).sum() * omitted


@pytest.mark.parametrize(("ell", "rho"), [(1.0, 0.5), (1.9, 0.5), (1.0, 2.0)])
def test_steiner_expansion_full_remainder_orders(ell, rho):
    exact, T = _steiner_exact_and_terms(ell, rho)
    ns = _STEINER_NS.astype(float)
    S = np.cumsum(T, axis=1)
    D = T[:, 5] * ns ** (1 / 3)
    r5 = exact - S[:, 4]
    # threshold: after the constant the remainder is D n^(-1/3) + O(n^(-2/3)); factor 1.5 for
    #   the O(n^(-2/3)) term at n = 100
    assert np.all(np.abs(r5) <= 1.5 * np.abs(D) * ns ** (-1 / 3))
    r6 = np.abs(exact - S[:, 5])
    i4 = int(np.searchsorted(_STEINER_NS, 10_000))
    # threshold: O(n^(-2/3)) predicts a fall by 100^(2/3) = 21.5 from n = 1e4 to 1e6; 10 for
    #   the higher-order terms and float64 round-off (~1e-9 on log V at n = 1e6)
    assert r6[-1] < r6[i4] / 10


def test_steiner_expansion_shape_and_limits():
    T = B.log_steiner_volume_expansion([10.0, 100.0], 1.5, [[0.1], [0.2]])
    assert T.shape == (2, 2, 6)
    assert T[0, 1, 0] == pytest.approx(100 * math.log(1.5))
    with pytest.raises(ValueError, match=r"\brho\b"):
        B.log_steiner_volume_expansion(10, 1.0, 0.0)
    with pytest.raises(ValueError, match=r"\bn\b"):
        B.log_steiner_volume_expansion(0, 1.0, 0.1)
