"""Tests for pfode.stats.correlation against independent truth.

- point estimates: numpy's ``corrcoef`` (Pearson) and ``corrcoef`` of rank-transformed data
  (Spearman, ranks computed here with argsort, no ties);
- intervals: coverage of the known population value for bivariate normal data
  (Pearson: rho; Spearman: (6/pi) arcsin(rho/2)), over independent seeded repetitions;
- degenerate and invalid input.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from pfode import stats as S


def _bivariate_normal(rng, n, rho):
    cov = np.array([[1.0, rho], [rho, 1.0]])
    xy = rng.multivariate_normal([0.0, 0.0], cov, size=n)
    return xy[:, 0], xy[:, 1]


def _ranks(a):
    r = np.empty(len(a))
    r[np.argsort(a)] = np.arange(len(a))
    return r


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_estimates_match_numpy(seed):
    rng = np.random.default_rng(seed)
    x, y = _bivariate_normal(rng, 60, 0.4)
    y = np.exp(y)                                    # monotone distortion: Pearson != Spearman
    p = S.correlation(x, y, "pearson", n_resamples=200)
    s = S.correlation(x, y, "spearman", n_resamples=200)
    np.testing.assert_allclose(p.estimate, np.corrcoef(x, y)[0, 1], rtol=1e-12)
    np.testing.assert_allclose(s.estimate, np.corrcoef(_ranks(x), _ranks(y))[0, 1], rtol=1e-12)
    for r in (p, s):
        # threshold: exact properties of the interval (it contains the estimate and lies in [-1,
        #   1])
        assert r.low <= r.estimate <= r.high
        assert -1.0 <= r.low and r.high <= 1.0
        assert 0.0 <= r.p_value <= 1.0


def test_spearman_invariant_under_monotone_maps():
    rng = np.random.default_rng(3)
    x, y = _bivariate_normal(rng, 40, 0.5)
    a = S.correlation(x, y, "spearman", n_resamples=300, seed=5)
    b = S.correlation(np.exp(x), y ** 3, "spearman", n_resamples=300, seed=5)
    np.testing.assert_allclose(a, b, rtol=1e-12)


def test_seeded_and_reproducible():
    rng = np.random.default_rng(4)
    x, y = _bivariate_normal(rng, 30, 0.3)
    a = S.correlation(x, y, seed=7, n_resamples=500)
    b = S.correlation(x, y, seed=7, n_resamples=500)
    c = S.correlation(x, y, seed=8, n_resamples=500)
    assert a == b
    assert (a.low, a.high) != (c.low, c.high)


@pytest.mark.parametrize("method", ["pearson", "spearman"])
def test_ci_coverage_bivariate_normal(method):
    # 100 independent data sets with known correlation; a 95% interval should cover the
    # population value in about 95 of them. Bootstrap intervals undercover slightly for
    # n = 40, and the binomial standard error of the count is about 2.2, so accept >= 85.
    # A 50% interval must cover far less often: checks that the 95% interval is not
    # trivially wide.
    rho, n, reps = 0.6, 40, 100
    truth = rho if method == "pearson" else 6.0 / math.pi * math.asin(rho / 2.0)
    rng = np.random.default_rng(12345)
    cover95 = cover50 = 0
    for k in range(reps):
        x, y = _bivariate_normal(rng, n, rho)
        r95 = S.correlation(x, y, method, n_resamples=1000, level=0.95, seed=k)
        r50 = S.correlation(x, y, method, n_resamples=1000, level=0.50, seed=k)
        cover95 += r95.low <= truth <= r95.high
        cover50 += r50.low <= truth <= r50.high
        # threshold: nested levels give nested bootstrap intervals from the same resamples (exact)
        assert r50.high - r50.low < r95.high - r95.low
    assert cover95 >= 85, f"95% interval covered the truth in only {cover95}/{reps} data sets"
    assert 30 <= cover50 <= 70, f"50% interval covered the truth in {cover50}/{reps} data sets"


def test_percentile_interval_also_covers():
    rng = np.random.default_rng(99)
    x, y = _bivariate_normal(rng, 200, 0.5)
    r = S.correlation(x, y, ci="percentile", n_resamples=1000)
    # threshold: statistics: the 95% interval covers the true correlation (one seeded draw of 200
    #   points); its width below 0.4 (the normal-theory width is about 0.2)
    assert r.low < 0.5 < r.high
    assert r.high - r.low < 0.4


def test_zero_correlation_ci_contains_zero_and_large_p():
    rng = np.random.default_rng(21)
    x, y = rng.normal(size=500), rng.normal(size=500)
    r = S.correlation(x, y, n_resamples=1000)
    assert r.low < 0.0 < r.high
    assert r.p_value > 0.01


@pytest.mark.parametrize("n", [3, 10, 50])
def test_perfectly_monotone_spearman_is_one(n):
    x = np.linspace(-1.0, 2.0, n)
    y = np.exp(3.0 * x)                              # strictly increasing, far from linear
    s = S.correlation(x, y, "spearman", n_resamples=500)
    assert s.estimate == pytest.approx(1.0, abs=1e-14)
    assert s.low == pytest.approx(1.0, abs=1e-12) and s.high == pytest.approx(1.0, abs=1e-12)
    d = S.correlation(x, -y, "spearman", n_resamples=500)
    assert d.estimate == pytest.approx(-1.0, abs=1e-14)
    p = S.correlation(x, y, "pearson", n_resamples=500)
    # threshold: exact: the data are not linearly related, so Pearson is below 1
    assert p.estimate < 1.0


def test_errors():
    x = np.arange(5.0)
    with pytest.raises(ValueError, match="same shape"):
        S.correlation(x, np.arange(6.0))
    with pytest.raises(ValueError, match="NaN"):
        S.correlation(np.array([0.0, 1.0, np.nan, 3.0]), np.arange(4.0))
    with pytest.raises(ValueError, match="NaN"):
        S.correlation(np.arange(4.0), np.array([0.0, 1.0, np.nan, 3.0]))
    with pytest.raises(ValueError, match="inf"):
        S.correlation(np.array([0.0, 1.0, np.inf, 3.0]), np.arange(4.0))
    with pytest.raises(ValueError, match="at least 3"):
        S.correlation([0.0, 1.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="one-dimensional"):
        S.correlation(np.zeros((3, 2)), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="constant"):
        S.correlation(np.ones(5), x)
    with pytest.raises(ValueError, match="method"):
        S.correlation(x, x ** 2, "kendall")
    with pytest.raises(ValueError, match="ci"):
        S.correlation(x, x ** 2, ci="bca")
    with pytest.raises(ValueError, match="level"):
        S.correlation(x, x ** 2, level=1.5)
    with pytest.raises(ValueError, match="n_resamples"):
        S.correlation(x, x ** 2, n_resamples=0)


# ---- bootstrap of any statistic, clustered resampling, paired differences -----------------
def test_bootstrap_mean_matches_normal_theory():
    """The bootstrap interval of a mean of N(0, 1) draws against the normal-theory interval
    mean ± 1.96 s/√n (a second method)."""
    x = np.random.default_rng(3).normal(size=400)
    iv = S.bootstrap(np.mean, x, n_resamples=2000)
    half = 1.959964 * x.std(ddof=1) / np.sqrt(x.size)
    # threshold: error model: with B = 2000 resamples the 2.5% and 97.5% bootstrap quantiles
    # have Monte Carlo sd sqrt(p(1-p)/B)/phi(z_p) = 0.060 bootstrap sds, i.e. 3% of the half-width
    # per end; 15% allows 5 such sds, and the bootstrap sd itself differs from s/sqrt(n) by
    # O(1/n) = 0.25%.
    assert (iv.high - iv.low) / 2 == pytest.approx(half, rel=0.15)
    assert iv.estimate == pytest.approx(x.mean(), abs=1e-15)
    # threshold: exact: the percentile interval is centred near the estimate
    assert iv.low < iv.estimate < iv.high
    assert f"{iv:.2f}".startswith(f"{x.mean():.2f} [")


def test_cluster_bootstrap_equals_bootstrap_of_cluster_means():
    """With equal cluster sizes, the mean of resampled clusters is the mean of their means,
    and the resamples draw the same cluster numbers from the same seed: the cluster bootstrap
    of the observations and the plain bootstrap of the cluster means agree to round-off."""
    rng = np.random.default_rng(4)
    means = rng.normal(size=10)
    data = np.repeat(means, 50) + 0.01 * rng.normal(size=500)
    labels = np.repeat(np.arange(10), 50)
    a = S.bootstrap(np.mean, data, clusters=labels, ci="percentile")
    b = S.bootstrap(np.mean, data.reshape(10, 50).mean(axis=1), ci="percentile")
    # threshold: round-off of a mean of 500 float64 values against a mean of 10 means
    np.testing.assert_allclose([a.estimate, a.low, a.high], [b.estimate, b.low, b.high],
                               rtol=0, atol=1e-13)
    naive = S.bootstrap(np.mean, data)
    # threshold: error model: the naive width scales like sd(all)/sqrt(500), the clustered
    # width like sd(cluster means)/sqrt(10); with between-cluster sd 1 and within 0.01 their
    # ratio is about sqrt(50) = 7.1, far above 3
    assert (a.high - a.low) > 3 * (naive.high - naive.low)


def test_cluster_correlation_of_duplicated_pairs():
    """Each of 20 pairs repeated 5 times as one cluster: resampling clusters is resampling
    the 20 distinct pairs, so estimate and interval equal those of the 20 pairs."""
    u = np.random.default_rng(5).normal(size=(20, 2))
    u[:, 1] += u[:, 0]
    x, y, labels = np.repeat(u[:, 0], 5), np.repeat(u[:, 1], 5), np.repeat(np.arange(20), 5)
    c = S.correlation(x, y, clusters=labels, ci="percentile")
    d = S.correlation(u[:, 0], u[:, 1], ci="percentile")
    # threshold: round-off of Pearson's r on repeated values
    np.testing.assert_allclose([c.estimate, c.low, c.high], [d.estimate, d.low, d.high],
                               rtol=0, atol=1e-12)
    assert f"{c:+.2f}" == f"{c.estimate:+.2f} [{c.low:+.2f}, {c.high:+.2f}]"


def test_paired_difference():
    rng = np.random.default_rng(6)
    b = rng.normal(size=300)
    shift = S.paired_difference(b + 0.5, b)
    # threshold: exact: a constant difference has a degenerate bootstrap distribution
    assert shift.estimate == shift.low == shift.high == pytest.approx(0.5, abs=1e-15)
    a = b + 0.2 + 0.1 * rng.normal(size=300)
    iv = S.paired_difference(a, b)
    half = 1.959964 * np.std(a - b, ddof=1) / np.sqrt(300)
    # threshold: error model as in test_bootstrap_mean_matches_normal_theory (15%)
    assert (iv.high - iv.low) / 2 == pytest.approx(half, rel=0.15)
    # threshold: exact: pairing removes the shared N(0, 1) part, so the paired interval is
    # narrower than the spread of either sample mean (sd 1/sqrt(300) against 0.1/sqrt(300))
    assert (iv.high - iv.low) < 0.5 * 2 * 1.96 / np.sqrt(300)


def test_bootstrap_errors():
    x = np.arange(6.0)
    with pytest.raises(TypeError, match="statistic"):
        S.bootstrap("mean", x)
    with pytest.raises(ValueError, match="at least one sample"):
        S.bootstrap(np.mean)
    with pytest.raises(ValueError, match=r"samples\[1\]"):
        S.bootstrap(lambda a, b: np.mean(a - b), x, np.arange(5.0))
    with pytest.raises(ValueError, match="NaN"):
        S.bootstrap(np.mean, np.array([0.0, np.nan, 1.0]))
    with pytest.raises(ValueError, match="clusters"):
        S.bootstrap(np.mean, x, clusters=[0, 1])
    with pytest.raises(ValueError, match="2 independent units"):
        S.bootstrap(np.mean, x, clusters=np.zeros(6))
    with pytest.raises(ValueError, match="paired"):
        S.paired_difference(x, np.arange(5.0))
    with pytest.raises(ValueError, match="clusters"):
        S.correlation(x, x ** 2, clusters=[0, 1, 2])
