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
- Clustered data: when observations share a source (tiles of one photograph, patches of one
  image, the draws of one seed) they are not independent, and resampling them one by one
  makes intervals too narrow. ``clusters=`` labels each observation with its independent
  unit; the bootstrap then resamples whole units with replacement (the cluster bootstrap,
  Davison & Hinkley 1997, section 3.8), keeping every unit's observations together.
- :func:`bootstrap` is the same machinery for any statistic of one or more paired samples
  (a median, a 95th percentile, a ratio of medians), and :func:`paired_difference` compares
  two methods run on the same inputs through the differences of their paired results.
"""
from __future__ import annotations

import warnings
from typing import NamedTuple

import numpy as np
from scipy import stats

__all__ = ["Correlation", "Interval", "bootstrap", "correlation", "paired_difference"]

_METHODS = ("pearson", "spearman")
_CI_METHODS = ("BCa", "percentile")


def _format_interval(iv, spec: str) -> str:
    spec = spec or ".3g"
    return f"{iv.estimate:{spec}} [{iv.low:{spec}}, {iv.high:{spec}}]"


class Correlation(NamedTuple):
    """Result of :func:`correlation`; formats as ``"est [low, high]"`` (``f"{c:+.2f}"``)."""

    estimate: float
    """Sample correlation coefficient (Pearson's r or Spearman's rho)."""
    low: float
    """Lower end of the bootstrap confidence interval."""
    high: float
    """Upper end of the bootstrap confidence interval."""
    p_value: float
    """Two-sided p-value of scipy's test of zero correlation."""

    def __format__(self, spec: str) -> str:
        return _format_interval(self, spec)


class Interval(NamedTuple):
    """Result of :func:`bootstrap` and :func:`paired_difference`."""

    estimate: float
    """The statistic on the observed sample."""
    low: float
    """Lower end of the bootstrap confidence interval."""
    high: float
    """Upper end of the bootstrap confidence interval."""

    def __format__(self, spec: str) -> str:
        return _format_interval(self, spec)


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


def _check_boot_options(n_resamples, level, ci) -> None:
    if ci not in _CI_METHODS:
        raise ValueError(f"ci must be one of {_CI_METHODS}, got {ci!r}")
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, (int, np.integer)) or n_resamples < 1:
        raise ValueError(f"n_resamples must be a positive integer, got {n_resamples!r}")
    if not (isinstance(level, (float, int, np.floating)) and 0.0 < float(level) < 1.0):
        raise ValueError(f"level must be in (0, 1), got {level!r}")


def _cluster_index(clusters, n: int) -> list[np.ndarray] | None:
    """Member indices of each cluster (in order of first appearance), or None."""
    if clusters is None:
        return None
    labels = np.asarray(clusters)
    if labels.shape != (n,):
        raise ValueError(f"clusters must label each of the {n} observations, got shape {labels.shape}")
    _, first, inverse = np.unique(labels, return_index=True, return_inverse=True)
    order = np.argsort(first)
    members = [np.flatnonzero(inverse == k) for k in order]
    if len(members) < 2:
        raise ValueError("clusters: need at least 2 independent units to bootstrap, got 1")
    return members


def _interval(boot, estimate: float, level: float) -> tuple[float, float]:
    """The interval of a scipy bootstrap result; a percentile interval over the finite
    resamples where BCa is undefined, and a point where every resample is equal."""
    low, high = float(boot.confidence_interval.low), float(boot.confidence_interval.high)
    if np.isfinite(low) and np.isfinite(high):
        return low, high
    dist = np.asarray(boot.bootstrap_distribution, dtype=np.float64)
    dist = dist[np.isfinite(dist)]
    if dist.size == 0:
        return estimate, estimate
    if np.all(dist == dist[0]):
        return float(dist[0]), float(dist[0])
    alpha = (1.0 - float(level)) / 2.0
    low, high = (float(q) for q in np.quantile(dist, [alpha, 1.0 - alpha]))
    return low, high


def _resample(samples: tuple, statistic, members, n_resamples, level, ci, seed, vectorized):
    """scipy.stats.bootstrap over observations, or over whole clusters (``members``)."""
    rng = np.random.default_rng(seed)
    with warnings.catch_warnings():
        # Degenerate bootstrap distributions (all resamples equal) and NaN resamples make
        # scipy warn and return NaN; :func:`_interval` handles both.
        warnings.simplefilter("ignore")
        if members is None:
            return stats.bootstrap(samples, statistic, paired=True, vectorized=vectorized,
                                   n_resamples=int(n_resamples), confidence_level=float(level),
                                   method=ci, rng=rng)

        def on_units(units, axis=-1):        # a resample of unit numbers -> the statistic
            idx = np.concatenate([members[int(u)] for u in units])
            return statistic(*(a[idx] for a in samples))

        return stats.bootstrap((np.arange(len(members)),), on_units, vectorized=False,
                               n_resamples=int(n_resamples), confidence_level=float(level),
                               method=ci, rng=rng)


def bootstrap(statistic, *samples, clusters=None, n_resamples: int = 2000, level: float = 0.95,
              seed: int = 0, ci: str = "BCa") -> Interval:
    """A statistic of paired samples with a bootstrap confidence interval.

    Parameters
    ----------
    statistic : callable
        ``statistic(*samples) -> float``, for instance ``np.median`` or
        ``lambda e: np.quantile(e, 0.95)``. It is called on resampled copies of ``samples``.
    *samples : array_like, shape (N,)
        One or more samples of equal length, finite; observation ``i`` of each is resampled
        together (paired).
    clusters : array_like, shape (N,), optional
        The independent unit of each observation (source image, seed). Whole units are
        resampled, so the interval reflects their number rather than N. At least 2 units.
    n_resamples, level, seed, ci
        As in :func:`correlation`.

    Returns
    -------
    Interval
        ``(estimate, low, high)``; formats as ``"est [low, high]"`` (``f"{iv:.2f}"``).
    """
    _check_boot_options(n_resamples, level, ci)
    if not callable(statistic):
        raise TypeError(f"statistic must be callable, got {type(statistic).__name__}")
    if not samples:
        raise ValueError("bootstrap needs at least one sample")
    arrays = tuple(_as_sample(f"samples[{i}]", a) for i, a in enumerate(samples))
    n = arrays[0].size
    for i, a in enumerate(arrays[1:], 1):
        if a.shape != arrays[0].shape:
            raise ValueError(f"samples[{i}] has shape {a.shape}, samples[0] has {arrays[0].shape}")
    if n < 2:
        raise ValueError(f"need at least 2 observations, got {n}")
    members = _cluster_index(clusters, n)
    estimate = float(statistic(*arrays))

    def scalar(*a, axis=-1):                 # scipy passes axis for vectorized=False too
        return statistic(*a)

    boot = _resample(arrays, scalar, members, n_resamples, level, ci, seed, vectorized=False)
    low, high = _interval(boot, estimate, level)
    return Interval(estimate, low, high)


def paired_difference(a, b, *, statistic=np.mean, clusters=None, n_resamples: int = 2000,
                      level: float = 0.95, seed: int = 0, ci: str = "BCa") -> Interval:
    """``statistic(a - b)`` with a bootstrap interval, for two methods run on the same inputs
    (same images, same noises): pairing removes the variation the methods share, so the
    interval is that of the difference itself, not of two overlapping marginal intervals.
    ``clusters`` as in :func:`bootstrap`."""
    a = _as_sample("a", a)
    b = _as_sample("b", b)
    if a.shape != b.shape:
        raise ValueError(f"a and b must be paired (same shape), got {a.shape} and {b.shape}")
    return bootstrap(statistic, a - b, clusters=clusters, n_resamples=n_resamples, level=level,
                     seed=seed, ci=ci)


def correlation(x, y, method: str = "pearson", *, n_resamples: int = 2000, level: float = 0.95,
                seed: int = 0, ci: str = "BCa", clusters=None) -> Correlation:
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
    clusters : array_like, shape (N,), optional
        The independent unit of each pair (source image, seed): whole units are resampled
        (see :func:`bootstrap`). The p-value is scipy's, which assumes independent pairs;
        with clusters, judge by the interval.

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
    _check_boot_options(n_resamples, level, ci)
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

    members = _cluster_index(clusters, x.size)
    boot = _resample((x, y), _statistic(method), members, n_resamples, level, ci, seed,
                     vectorized=members is None)
    low, high = _interval(boot, estimate, level)
    return Correlation(estimate, low, high, p_value)
