"""Correlation estimates with bootstrap confidence intervals.

The instability paper's Figure 4 rests on one statistical claim: the reconstruction error
``E(x)`` is positively correlated with the instability coefficient of the generation map
(the book tests it in [book: ch-amplification] and [book: ch-real-models]).
:func:`correlation` turns a scatter of paired measurements into a point estimate, a
confidence interval and a p-value, so that the claim can be asserted (the interval must
exclude 0) rather than read off a plot.

- Point estimate and p-value: ``scipy.stats.pearsonr`` (linear correlation) or
  ``scipy.stats.spearmanr`` (rank correlation, invariant under monotone transforms such as
  ``log``), both two-sided.
- Interval: the paired nonparametric bootstrap, ``scipy.stats.bootstrap`` with
  ``paired=True`` (pairs ``(x_i, y_i)`` are resampled together), BCa by default (Efron 1987)
  or the percentile interval, seeded through ``np.random.default_rng(seed)``.
"""
from __future__ import annotations

import warnings
from typing import NamedTuple

import numpy as np
from scipy import stats

__all__ = ["Correlation", "correlation"]

_METHODS = ("pearson", "spearman")
_CI_METHODS = ("BCa", "percentile")


class Correlation(NamedTuple):
    """Result of :func:`correlation`."""

    estimate: float
    """Sample correlation coefficient (Pearson's r or Spearman's rho)."""
    low: float
    """Lower end of the bootstrap confidence interval."""
    high: float
    """Upper end of the bootstrap confidence interval."""
    p_value: float
    """Two-sided p-value of scipy's test of zero correlation."""


def _pearson_along_last(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson's r along the last axis (vectorised over leading axes); NaN if constant."""
    xc = x - x.mean(axis=-1, keepdims=True)
    yc = y - y.mean(axis=-1, keepdims=True)
    num = (xc * yc).sum(axis=-1)
    den = np.sqrt((xc * xc).sum(axis=-1) * (yc * yc).sum(axis=-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = num / den
    r = np.where(den > 0, r, np.nan)
    return np.clip(r, -1.0, 1.0)


def _statistic(method: str):
    if method == "pearson":
        def pearson(x, y, axis=-1):
            return _pearson_along_last(np.moveaxis(x, axis, -1), np.moveaxis(y, axis, -1))
        return pearson

    def spearman(x, y, axis=-1):
        rx = stats.rankdata(np.moveaxis(x, axis, -1), axis=-1)   # average ranks for ties
        ry = stats.rankdata(np.moveaxis(y, axis, -1), axis=-1)
        return _pearson_along_last(rx, ry)
    return spearman


def _as_sample(name: str, a) -> np.ndarray:
    try:
        a = np.asarray(a, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numeric, got {a!r}") from exc
    if a.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {a.shape}")
    if np.isnan(a).any():
        raise ValueError(f"{name} contains NaN")
    if not np.isfinite(a).all():
        raise ValueError(f"{name} contains inf")
    return a


def correlation(x, y, method: str = "pearson", *, n_resamples: int = 2000, level: float = 0.95,
                seed: int = 0, ci: str = "BCa") -> Correlation:
    """Correlation of paired samples with a paired bootstrap confidence interval.

    Parameters
    ----------
    x, y : array_like, shape (N,)
        Paired observations, ``N >= 3``, finite.
    method : ``"pearson"`` or ``"spearman"``
        Linear (Pearson) or rank (Spearman) correlation.
    n_resamples : int
        Number of bootstrap resamples.
    level : float in (0, 1)
        Confidence level of the interval.
    seed : int
        Seed of the ``np.random.default_rng`` that draws the resamples.
    ci : ``"BCa"`` or ``"percentile"``
        Bootstrap interval type.

    Returns
    -------
    Correlation
        ``(estimate, low, high, p_value)``. When every resample gives the same value (for
        instance perfectly monotone data under Spearman) the interval collapses to that value.
        Resamples that are constant in x or y (correlation undefined) are dropped from a
        percentile interval, which is used instead of BCa when BCa is undefined.
    """
    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}, got {method!r}")
    if ci not in _CI_METHODS:
        raise ValueError(f"ci must be one of {_CI_METHODS}, got {ci!r}")
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, (int, np.integer)) or n_resamples < 1:
        raise ValueError(f"n_resamples must be a positive integer, got {n_resamples!r}")
    if not (isinstance(level, (float, int, np.floating)) and 0.0 < float(level) < 1.0):
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    x = _as_sample("x", x)
    y = _as_sample("y", y)
    if x.shape != y.shape:
        raise ValueError(f"x and y must have the same shape, got {x.shape} and {y.shape}")
    if x.size < 3:
        raise ValueError(f"need at least 3 paired points, got {x.size}")
    for name, a in (("x", x), ("y", y)):
        if np.all(a == a[0]):
            raise ValueError(f"{name} is constant: the correlation is undefined")

    if method == "pearson":
        res = stats.pearsonr(x, y)
    else:
        res = stats.spearmanr(x, y)
    estimate, p_value = float(res.statistic), float(res.pvalue)

    rng = np.random.default_rng(seed)
    with warnings.catch_warnings():
        # Degenerate bootstrap distributions (all resamples equal) and NaN resamples make
        # scipy warn and return NaN; both cases are handled below.
        warnings.simplefilter("ignore")
        boot = stats.bootstrap((x, y), _statistic(method), paired=True, vectorized=True,
                               n_resamples=int(n_resamples), confidence_level=float(level),
                               method=ci, rng=rng)
    low, high = float(boot.confidence_interval.low), float(boot.confidence_interval.high)
    if not (np.isfinite(low) and np.isfinite(high)):
        dist = np.asarray(boot.bootstrap_distribution, dtype=np.float64)
        dist = dist[np.isfinite(dist)]
        if dist.size == 0 or np.all(dist == dist[0]):
            low = high = estimate if dist.size == 0 else float(dist[0])
        else:
            alpha = (1.0 - float(level)) / 2.0
            low, high = (float(q) for q in np.quantile(dist, [alpha, 1.0 - alpha]))
    return Correlation(estimate, low, high, p_value)
