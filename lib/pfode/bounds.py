"""Closed-form bounds of the instability paper, as pure vectorised numpy/scipy functions.

Every function works in float64, broadcasts over array arguments where that makes sense,
validates its inputs (``ValueError`` naming the offending argument) and returns a numpy
scalar for scalar input. Numbering follows the paper; each item names the book's statement:

- Theorem 3.1 [book: thm-ch4-31]: Euler inversion error and reconstruction error bounds
  (:func:`theorem31_bound`).
- Lemma D.2 [book: lem-ch6-d2]: the lower bound ``beta`` on the geometric-average
  instability coefficient (:func:`log_beta`, :func:`beta`).
- Theorem 4.1 [book: thm-ch6-41]: ``P(lambda_bar >= beta) >= 1 - delta1 - delta2``
  (:func:`probability_lower_bound`, Monte Carlo :func:`delta1_mc`, :func:`delta2_mc`, and
  the best radius on a sample :func:`theorem41_best_bound`).
- Theorem 4.3 [book: thm-ch8-43]: volume (Steiner) bound on ``delta1`` and chi-square tail
  bounds on ``delta2`` (:func:`log_steiner_volume`, :func:`delta1_steiner_bound`,
  :func:`chi2_tail`, :func:`chi2_tail_chernoff`, :func:`chi2_tail_laurent_massart`).

Densities and volumes in image dimension (n in the tens of thousands) under- or overflow
float64, so everything that can be is computed in log space.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from scipy import special, stats

from .constants import LOG_2PI

__all__ = [
    "Theorem31Bound",
    "Estimate",
    "theorem31_bound",
    "log_ball_volume",
    "log_steiner_volume",
    "log_steiner_volume_expansion",
    "log_cube_volume",
    "chi2_tail",
    "log_chi2_tail",
    "chi2_tail_chernoff",
    "chi2_tail_laurent_massart",
    "log_beta",
    "beta",
    "probability_lower_bound",
    "bernoulli_ci",
    "delta1_mc",
    "delta2_mc",
    "Theorem41BestBound",
    "theorem41_best_bound",
    "gaussian_neighbor_radius",
    "delta1_steiner_bound",
]



# --------------------------------------------------------------------------- helpers


def _arr(
    name: str,
    x,
    *,
    lower: float | None = None,
    strict: bool = False,
    upper: float | None = None,
    allow_posinf: bool = False,
    allow_neginf: bool = False,
    integer: bool = False,
) -> np.ndarray:
    """Convert ``x`` to a float64 array and validate it; errors name ``name``."""
    raw = np.asarray(x) if not isinstance(x, np.ndarray) else x
    if raw.dtype.kind in "USOb" or raw.dtype.kind == "c":
        kind = {"U": "text", "S": "text", "O": "objects", "b": "booleans", "c": "complex numbers"}[raw.dtype.kind]
        if raw.dtype.kind != "O" or any(isinstance(v, (str, bytes, bool, complex)) for v in raw.ravel().tolist()):
            raise TypeError(f"{name} must be a real number or array of real numbers, got {kind} ({x!r:.60})")
    try:
        a = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numeric, got {x!r}") from exc
    if np.isnan(a).any():
        raise ValueError(f"{name} must not be NaN")
    if not allow_posinf and np.isposinf(a).any():
        raise ValueError(f"{name} must be finite")
    if not allow_neginf and np.isneginf(a).any():
        raise ValueError(f"{name} must be finite")
    if integer:
        fin = a[np.isfinite(a)]
        if (fin != np.round(fin)).any():
            raise ValueError(f"{name} must be an integer")
    if lower is not None:
        bad = (a <= lower) if strict else (a < lower)
        if bad.any():
            op = ">" if strict else ">="
            raise ValueError(f"{name} must be {op} {lower}")
    if upper is not None and (a > upper).any():
        raise ValueError(f"{name} must be <= {upper}")
    return a


def _out(a):
    """Return a numpy scalar for 0-d results, the array otherwise."""
    a = np.asarray(a, dtype=np.float64)
    return a[()] if a.ndim == 0 else a


def _scalar_int(name: str, x, *, lower: int = 1) -> int:
    a = _arr(name, x, lower=lower, integer=True)
    if a.ndim != 0:
        raise ValueError(f"{name} must be a scalar integer")
    return int(a)


def _level(level) -> float:
    a = _arr("level", level)
    if a.ndim != 0 or not (0.0 < float(a) < 1.0):
        raise ValueError("level must be a scalar in (0, 1)")
    return float(a)


# --------------------------------------------------------------------------- Theorem 3.1


class Theorem31Bound(NamedTuple):
    """Result of :func:`theorem31_bound` (each field broadcast to the input shape)."""

    inversion: np.ndarray | np.float64
    """Bound on the Euler inversion error ``||z_hat - z||``: ``(h M / 2L)(e^L - 1)``."""
    amplification: np.ndarray | np.float64
    """Gronwall bound ``e^L`` on the Lipschitz constant of the exact generation map G."""
    reconstruction: np.ndarray | np.float64
    """Bound on the reconstruction error ``E``: ``e^L (h M / 2L)(e^L - 1)``."""


def theorem31_bound(h, L, M) -> Theorem31Bound:
    """Theorem 3.1 [book: thm-ch4-31] (reconstructed): Euler inversion and reconstruction bounds.

    Let ``v`` be L-Lipschitz in x on the time interval [0, 1] and let the exact solution
    satisfy ``||x''(t)|| <= M``. Euler with step ``h`` then has global error (the inversion
    error ``z_hat - z = F_hat(x) - F(x)``)

        ||z_hat - z|| <= (h M / (2 L)) (e^L - 1),

    Gronwall gives ``||G(a) - G(b)|| <= e^L ||a - b||`` (``amplification``), and with exact
    generation ``E(x) = ||G(z_hat) - G(z)||``, so

        E <= e^L (h M / (2 L)) (e^L - 1).

    The factor ``(e^L - 1)/L`` is evaluated as ``expm1(L)/L`` with its limit 1 at ``L = 0``,
    so ``L = 0`` gives ``inversion = h M / 2`` without a division by zero. All arguments
    broadcast; ``h >= 0``, ``L >= 0``, ``M >= 0`` must be finite. Large ``L`` overflows to
    ``inf`` (a vacuous bound), never to NaN, unless ``h M = 0``.
    """
    h = _arr("h", h, lower=0.0)
    L = _arr("L", L, lower=0.0)
    M = _arr("M", M, lower=0.0)
    h, L, M = np.broadcast_arrays(h, L, M)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        safe_L = np.where(L > 0.0, L, 1.0)
        ratio = np.where(L > 0.0, np.expm1(L) / safe_L, 1.0)
        hM = h * M
        inversion = np.where(hM == 0.0, 0.0, 0.5 * hM * ratio)
        amplification = np.exp(L)
        reconstruction = np.where(inversion == 0.0, 0.0, amplification * inversion)
    return Theorem31Bound(_out(inversion), _out(amplification), _out(reconstruction))


# --------------------------------------------------------------------------- volumes


def log_ball_volume(k):
    """Log volume of the unit ball in R^k (the ``omega_k`` of [book: eq-ch8-steiner]).

        log omega_k = (k/2) log(pi) - lgamma(k/2 + 1),   omega_k = pi^{k/2} / Gamma(k/2 + 1).

    ``k >= 0`` (real values allowed; omega_0 = 1). Broadcasts over ``k``.
    """
    k = _arr("k", k, lower=0.0)
    return _out(0.5 * k * math.log(math.pi) - special.gammaln(0.5 * k + 1.0))


def log_steiner_volume(n, ell, rho):
    """Steiner formula [book: eq-ch8-steiner]: log volume of a cube of side ell grown by rho.

        vol(C_ell + rho B) = sum_{k=0}^{n} C(n, k) ell^{n-k} omega_k rho^k,

    where ``omega_k`` is the volume of the unit k-ball (:func:`log_ball_volume`). The sum is
    taken in log space with ``scipy.special.gammaln`` and ``logsumexp``, so it stays finite
    for n in the tens of thousands. ``n`` is a scalar integer ``>= 1``; ``ell > 0`` and
    ``rho >= 0`` are finite and broadcast against each other. ``rho = 0`` gives
    ``n log ell``.
    """
    n = _scalar_int("n", n, lower=1)
    ell = _arr("ell", ell, lower=0.0, strict=True)
    rho = _arr("rho", rho, lower=0.0)
    ell, rho = np.broadcast_arrays(ell, rho)
    k = np.arange(n + 1, dtype=np.float64)
    log_binom = special.gammaln(n + 1.0) - special.gammaln(k + 1.0) - special.gammaln(n - k + 1.0)
    base = log_binom + (0.5 * k * math.log(math.pi) - special.gammaln(0.5 * k + 1.0))
    log_ell = np.log(ell)[..., None]
    with np.errstate(divide="ignore"):
        log_rho = np.log(rho)[..., None]
    # k * log(rho) with the convention 0 * log(0) = 0 (only the k = 0 term survives rho = 0)
    with np.errstate(invalid="ignore"):
        k_log_rho = np.where(k == 0.0, 0.0, k * log_rho)
    terms = base + (n - k) * log_ell + k_log_rho
    return _out(special.logsumexp(terms, axis=-1))


def log_cube_volume(n, side=2.0):
    """Log volume of the cube of side ``side`` in R^n: ``n log(side)``.

    The support ``[-1, 1]^n`` of the data (Assumption 4.1, [book: asm-ch7-cube]) has
    ``side = 2``, volume ``2^n``; Theorem 4.3 [book: thm-ch8-43] compares the Steiner volume
    with it. ``n >= 1``, ``side > 0``; broadcasts.
    """
    n = _arr("n", n, lower=1.0)
    side = _arr("side", side, lower=0.0, strict=True)
    return _out(n * np.log(side))


# --------------------------------------------------------------------------- chi-square tails


def _chi2_args(n, r):
    n = _arr("n", n, lower=1.0)
    r = _arr("r", r, lower=0.0)
    return np.broadcast_arrays(n, r)


def chi2_tail(n, r):
    """Theorem 4.3 (delta2, exact): ``P(chi2_n > r) = Q(n/2, r/2)`` [book: eq-ch8-chi2].

    ``Q`` is the regularised upper incomplete gamma function ``scipy.special.gammaincc``.
    For standard Gaussian z in R^n, ``||z||^2 ~ chi2_n``. ``n >= 1`` (degrees of freedom,
    real allowed), ``r >= 0`` finite; broadcasts.
    """
    n, r = _chi2_args(n, r)
    return _out(special.gammaincc(0.5 * n, 0.5 * r))


def _log_gammaincc_cf(a: np.ndarray, x: np.ndarray, max_iter: int = 100_000) -> np.ndarray:
    """log Q(a, x) by Legendre's continued fraction (modified Lentz), for x > a + 1.

    ``Gamma(a, x) / Gamma(a) = exp(-x + a log x - lgamma(a)) / (x + 1 - a - 1(1-a)/(x + 3 - a
    - 2(2-a)/(x + 5 - a - ...)))``. Vectorised over the (flat) arrays a, x.
    """
    tiny = 1e-300
    b = x + 1.0 - a
    c = np.full_like(x, 1.0 / tiny)
    d = 1.0 / b
    h = d.copy()
    active = np.ones(x.shape, dtype=bool)
    for i in range(1, max_iter + 1):
        an = -i * (i - a)
        b = b + 2.0
        d = an * d + b
        d = np.where(np.abs(d) < tiny, tiny, d)
        c = b + an / c
        c = np.where(np.abs(c) < tiny, tiny, c)
        d = 1.0 / d
        delta = d * c
        h = np.where(active, h * delta, h)
        active &= np.abs(delta - 1.0) > 1e-15
        if not active.any():
            break
    return -x + a * np.log(x) - special.gammaln(a) + np.log(h)


def log_chi2_tail(n, r):
    """Theorem 4.3 (delta2, exact, log): ``log P(chi2_n > r) = log Q(n/2, r/2)``.

    Computed with ``scipy.stats.chi2.logsf``; where that underflows to ``-inf`` (tails below
    about 1e-308), ``log Q`` is evaluated directly by Legendre's continued fraction for the
    upper incomplete gamma function, so the result stays finite far in the tail where
    :func:`chi2_tail` is 0. Same arguments as :func:`chi2_tail`.
    """
    n, r = _chi2_args(n, r)
    out = np.array(stats.chi2.logsf(r, n), dtype=np.float64)
    bad = np.isneginf(out)
    if bad.any():
        a = 0.5 * n[bad]
        x = 0.5 * r[bad]
        # logsf underflows only when x is far beyond a (x > a + 1 holds there).
        out[bad] = _log_gammaincc_cf(a, x)
    return _out(out)


def chi2_tail_chernoff(n, r):
    """Theorem 4.3 (delta2, Chernoff): ``P(chi2_n >= (1+s) n) <= exp(-(n/2)(s - ln(1+s)))``.

    With ``s = r/n - 1 > 0`` [book: eq-ch8-chernoff]; the bound is 1 (trivial) for
    ``r <= n``. Broadcasts; ``n >= 1``, ``r >= 0`` finite.
    """
    n, r = _chi2_args(n, r)
    s = r / n - 1.0
    s_pos = np.maximum(s, 0.0)
    expo = -0.5 * n * (s_pos - np.log1p(s_pos))
    return _out(np.where(s > 0.0, np.exp(expo), 1.0))


def chi2_tail_laurent_massart(n, r):
    """Theorem 4.3 (delta2, Laurent–Massart): ``P(chi2_n >= n + 2 sqrt(n x) + 2x) <= e^{-x}``.

    Given r, x solves ``r = n + 2 sqrt(n x) + 2 x``: with ``y = sqrt(x)``,
    ``2 y^2 + 2 sqrt(n) y + n - r = 0``, so

        y = (-sqrt(n) + sqrt(2r - n)) / 2 = (r - n) / (sqrt(2r - n) + sqrt(n)),

    (the second form avoids cancellation) and the bound is ``exp(-y^2)``. It is 1 for
    ``r <= n``. Broadcasts; ``n >= 1``, ``r >= 0`` finite.
    """
    n, r = _chi2_args(n, r)
    above = r > n
    d = np.where(above, r - n, 0.0)
    y = d / (np.sqrt(n + 2.0 * d) + np.sqrt(n))
    return _out(np.where(above, np.exp(-(y * y)), 1.0))


# --------------------------------------------------------------------------- Lemma D.2


def log_beta(n, r, log_gamma):
    """Lemma D.2 (log form): ``log beta = -1/2 log(2 pi) - r/(2n) - log_gamma / n``.

    If ``||z||^2 <= r`` and ``p_G(G(z)) <= gamma`` then
    ``lambda_bar_G(z) = (phi_n(z) / p_G(G(z)))^{1/n} >= beta`` with

        beta = (2 pi)^{-1/2} e^{-r/(2n)} gamma^{-1/n}             [book: eq-ch6-beta]

    Takes ``log_gamma = log(gamma)`` because densities in image dimension under/overflow.
    ``n >= 1``, ``r > 0`` finite, ``log_gamma`` finite real; all broadcast.
    """
    n = _arr("n", n, lower=1.0)
    r = _arr("r", r, lower=0.0, strict=True)
    log_gamma = _arr("log_gamma", log_gamma)
    return _out(-0.5 * LOG_2PI - r / (2.0 * n) - log_gamma / n)


def beta(n, r, log_gamma):
    """Lemma D.2: ``beta = (2 pi)^{-1/2} e^{-r/(2n)} gamma^{-1/n}`` (= ``exp(log_beta)``).

    See :func:`log_beta` for the statement and the argument conventions.
    """
    return _out(np.exp(log_beta(n, r, log_gamma)))


# --------------------------------------------------------------------------- Theorem 4.1


def probability_lower_bound(delta1, delta2):
    """Theorem 4.1: ``P(lambda_bar_G(F(x)) >= beta) >= max(0, 1 - delta1 - delta2)``.

    ``delta1 = P_q(p_G(x) > gamma)``, ``delta2 = P_q(||F(x)||^2 > r)`` [book: eq-ch6-41], both
    in [0, 1]; broadcasts.
    """
    d1 = _arr("delta1", delta1, lower=0.0, upper=1.0)
    d2 = _arr("delta2", delta2, lower=0.0, upper=1.0)
    return _out(np.maximum(0.0, 1.0 - d1 - d2))


class Estimate(NamedTuple):
    """A Monte Carlo proportion with a confidence interval."""

    estimate: np.ndarray | np.float64
    lower: np.ndarray | np.float64
    upper: np.ndarray | np.float64


def bernoulli_ci(successes, trials, level=0.95) -> Estimate:
    """Exact (Clopper–Pearson) confidence interval for a binomial proportion.

    Used for Monte Carlo estimates of ``delta1`` and ``delta2`` in Theorem 4.1. With k
    successes in N trials and ``alpha = 1 - level``,

        lower = Beta^{-1}(alpha/2; k, N - k + 1)      (0 when k = 0),
        upper = Beta^{-1}(1 - alpha/2; k + 1, N - k)  (1 when k = N),

    equivalently ``P(Bin(N, lower) >= k) = alpha/2`` and ``P(Bin(N, upper) <= k) = alpha/2``.
    Coverage is at least ``level`` for every true p. Returns ``Estimate(k/N, lower, upper)``.
    ``successes`` and ``trials`` are integers with ``0 <= successes <= trials``,
    ``trials >= 1``; they broadcast. ``level`` is a scalar in (0, 1).
    """
    k = _arr("successes", successes, lower=0.0, integer=True)
    N = _arr("trials", trials, lower=1.0, integer=True)
    lvl = _level(level)
    k, N = np.broadcast_arrays(k, N)
    if (k > N).any():
        raise ValueError("successes must be <= trials")
    alpha = 1.0 - lvl
    with np.errstate(invalid="ignore", divide="ignore"):
        lo = np.where(k > 0, stats.beta.ppf(alpha / 2.0, np.maximum(k, 1.0), N - k + 1.0), 0.0)
        hi = np.where(k < N, stats.beta.ppf(1.0 - alpha / 2.0, k + 1.0, np.maximum(N - k, 1.0)), 1.0)
    return Estimate(_out(k / N), _out(lo), _out(hi))


def delta1_mc(log_pG, log_gamma, level=0.95) -> Estimate:
    """Theorem 4.1, Monte Carlo ``delta1 = P_q(p_G(x) > gamma)`` with a Clopper–Pearson CI.

    ``log_pG``: 1-D array (non-empty) of ``log p_G(x_i)`` for samples ``x_i ~ q`` (may be
    ``-inf``, not NaN); ``log_gamma`` a finite scalar. Counts ``log_pG > log_gamma``
    (strict) and returns :func:`bernoulli_ci` of that count.
    """
    lp = _arr("log_pG", log_pG, allow_posinf=True, allow_neginf=True).ravel()
    if lp.size == 0:
        raise ValueError("log_pG must be non-empty")
    lg = _arr("log_gamma", log_gamma)
    if lg.ndim != 0:
        raise ValueError("log_gamma must be a scalar")
    return bernoulli_ci(int(np.count_nonzero(lp > lg)), lp.size, level)


def delta2_mc(sq_norms, r, level=0.95) -> Estimate:
    """Theorem 4.1, Monte Carlo ``delta2 = P_q(||F(x)||^2 > r)`` with a Clopper–Pearson CI.

    ``sq_norms``: 1-D array (non-empty) of ``||F(x_i)||^2 >= 0`` (``+inf`` allowed for a
    diverged solve, NaN not); ``r > 0`` a finite scalar. Counts ``sq_norms > r`` (strict).
    """
    sq = _arr("sq_norms", sq_norms, lower=0.0, allow_posinf=True).ravel()
    if sq.size == 0:
        raise ValueError("sq_norms must be non-empty")
    rr = _arr("r", r, lower=0.0, strict=True)
    if rr.ndim != 0:
        raise ValueError("r must be a scalar")
    return bernoulli_ci(int(np.count_nonzero(sq > rr)), sq.size, level)


class Theorem41BestBound(NamedTuple):
    """Result of :func:`theorem41_best_bound`: the best bound and where it is attained."""

    bound: float
    """``max(0, 1 - delta1 - delta2)`` at the best radius."""
    r: float
    """The radius attaining it (the first among the candidates)."""
    log_gamma: float
    """``log gamma(r)``, the density threshold that ``beta`` and ``r`` fix."""
    delta1: float
    """``#{log p_G(x_i) > log_gamma} / N`` at that radius."""
    delta2: float
    """``#{z2_i > r} / N`` at that radius."""


def theorem41_best_bound(z2, log_pG, n, beta, r_candidates=None) -> Theorem41BestBound:
    """Theorem 4.1 [book: thm-ch6-41] on a sample, at the best radius ``r`` for a fixed ``beta``.

    For a radius ``r > 0``, Lemma D.2 [book: eq-ch6-beta] solved for the density threshold
    gives the ``gamma`` at which ``beta`` is certified,

        log gamma(r) = -n log(beta) - (n/2) log(2 pi) - r/2,

    and on a sample ``z2_i = ||F(x_i)||^2``, ``log p_G(x_i)`` (``x_i ~ q``, ``i < N``) the
    Monte Carlo bound of [book: eq-ch6-41] is

        b(r) = max(0, 1 - delta1(r) - delta2(r)),
        delta1(r) = #{log p_G(x_i) > log gamma(r)} / N,   delta2(r) = #{z2_i > r} / N,

    that is ``probability_lower_bound(delta1_mc(log_pG, log gamma(r)).estimate,
    delta2_mc(z2, r).estimate)``. Returns the largest ``b(r)`` over ``r_candidates`` and the
    first candidate attaining it (ties go to the earlier one in the order given).

    The default candidates, the sample values ``z2_i > 0`` in increasing order, give the
    maximum over all ``r > 0``: ``delta2`` is constant on each ``[z2_(j), z2_(j+1))`` while
    ``delta1`` does not decrease as ``r`` grows (``gamma`` falls), so ``b`` is largest at the
    left end, and below the smallest ``z2_i`` ``delta2 = 1`` and ``b = 0``. The radius is
    chosen after seeing the sample, so ``bound`` is optimistic as an estimate of the bound
    at a radius fixed in advance. On the sample itself the inequality holds at every ``r``
    (the union bound holds for the empirical distribution), so ``bound`` never exceeds the
    fraction of the sample with ``log lambda_bar >= log beta``.

    ``z2``: 1-D, non-empty, ``>= 0`` (``+inf`` allowed for a diverged solve); ``log_pG``:
    the same length (``±inf`` allowed); ``n >= 1`` an integer; ``beta > 0`` a finite scalar;
    ``r_candidates``: 1-D, non-empty, finite and ``> 0``. Counting is by sorting, so the
    cost is ``O((N + M) log N)`` for ``M`` candidates.
    """
    z2 = _arr("z2", z2, lower=0.0, allow_posinf=True)
    lp = _arr("log_pG", log_pG, allow_posinf=True, allow_neginf=True)
    if z2.ndim != 1 or z2.size == 0:
        raise ValueError(f"z2 must be a non-empty 1-D array, got shape {z2.shape}")
    if lp.shape != z2.shape:
        raise ValueError(f"log_pG must have the shape of z2 {z2.shape}, got {lp.shape}")
    n = _scalar_int("n", n, lower=1)
    b = _arr("beta", beta, lower=0.0, strict=True)
    if b.ndim != 0:
        raise ValueError("beta must be a scalar")
    if r_candidates is None:
        rs = np.sort(z2[(z2 > 0.0) & np.isfinite(z2)])
        if rs.size == 0:
            raise ValueError("z2 has no finite value > 0 to try as r; pass r_candidates")
    else:
        rs = _arr("r_candidates", r_candidates, lower=0.0, strict=True)
        if rs.ndim != 1 or rs.size == 0:
            raise ValueError(f"r_candidates must be a non-empty 1-D array, got shape {rs.shape}")
    N = z2.size
    lg = -n * math.log(float(b)) - 0.5 * n * LOG_2PI - 0.5 * rs                # (M,)
    d1 = (N - np.searchsorted(np.sort(lp), lg, side="right")) / N               # #(lp > lg) / N
    d2 = (N - np.searchsorted(np.sort(z2), rs, side="right")) / N               # #(z2 > r) / N
    bound = np.maximum(0.0, 1.0 - d1 - d2)
    i = int(np.argmax(bound))
    return Theorem41BestBound(float(bound[i]), float(rs[i]), float(lg[i]), float(d1[i]), float(d2[i]))


# --------------------------------------------------------------------------- Theorem 4.3


def gaussian_neighbor_radius(n, s, log_gamma):
    """Theorem 4.3 (helper): radius rho outside of which a Gaussian-neighbor mixture is <= gamma.

    For ``p_G = sum_i w_i (f_i * N(0, s^2 I))`` with ``f_i`` supported on ``Omega_i``
    (Assumption 4.3, [book: asm-ch7-neighbors]), each term is at most
    ``(2 pi s^2)^{-n/2} exp(-dist(x, Omega_i)^2 / (2 s^2))`` [book: eq-ch7-tail], so
    ``p_G(x) > gamma`` forces ``dist(x, U Omega_i) < rho`` with

        rho^2 = 2 s^2 (-log_gamma - (n/2) log(2 pi s^2)),         [book: eq-ch7-rho]

    and ``rho = 0`` when the right side is negative (then ``{p_G > gamma}`` is empty). The
    bound is attained by a single point mass (``p_G = N(mu, s^2 I)``). ``n >= 1``, ``s > 0``
    finite, ``log_gamma`` finite; broadcasts.
    """
    n = _arr("n", n, lower=1.0)
    s = _arr("s", s, lower=0.0, strict=True)
    log_gamma = _arr("log_gamma", log_gamma)
    rho2 = 2.0 * s * s * (-log_gamma - 0.5 * n * (LOG_2PI + 2.0 * np.log(s)))
    return _out(np.sqrt(np.maximum(rho2, 0.0)))


def delta1_steiner_bound(n, m, ell, rho, q_max_log):
    """Theorem 4.3 (Steiner volume argument): upper bound on ``delta1 = P_q(p_G > gamma)``.

    Assumption: ``{x : p_G(x) > gamma}`` lies inside the union of the m neighborhoods each
    grown by radius rho, each neighborhood inside a cube of side ell (Assumption 4.4,
    [book: asm-ch7-sparsity]; e.g. rho from :func:`gaussian_neighbor_radius`), and q has a density bounded by
    ``q_max = exp(q_max_log)``. Then

        delta1 <= q_max * m * vol(C_ell + rho B),                 [book: eq-ch8-delta1]
        log delta1 <= q_max_log + log m + log_steiner_volume(n, ell, rho),

    and the function returns ``min(1, exp(...))``. For q uniform on ``[-1, 1]^n``,
    ``q_max_log = -n log 2`` (so the bound is m times the volume ratio to the cube ``2^n``).
    ``n >= 1``, ``m >= 1`` integers (scalar n; m broadcasts), ``ell > 0``, ``rho >= 0``,
    ``q_max_log`` finite; broadcasts over ``m, ell, rho, q_max_log``.
    """
    m = _arr("m", m, lower=1.0, integer=True)
    q_max_log = _arr("q_max_log", q_max_log)
    log_vol = np.asarray(log_steiner_volume(n, ell, rho))
    log_bound = q_max_log + np.log(m) + log_vol
    return _out(np.exp(np.minimum(log_bound, 0.0)))


def log_steiner_volume_expansion(n, ell, rho):
    """Terms of the large-``n`` expansion of :func:`log_steiner_volume` at fixed ``ell, rho``.

    With ``a = 2 pi rho^2 / ell^2`` [book: lem-ch8-growth], part (a),

        log vol(C_ell + rho B) = n log ell + (3/2) a^{1/3} n^{2/3} - (1/2) a^{2/3} n^{1/3}
                                 - (1/3) log n + C(a) + D(a) n^{-1/3} + O(n^{-2/3}),
        C(a) = a/6 - (1/6) log a + (1/2) log(2 / (3 pi)),
        D(a) = a^{1/3}/2 - 5 a^{4/3}/108.

    It is Laplace's method on the Steiner sum: the largest terms have
    ``k ~ a^{1/3} n^{2/3}``, where ``-k^2/(2n)`` in ``log C(n, k)`` gives the ``n^{1/3}``
    term and the Gaussian width ``sqrt(2k/3)`` of the peak gives ``-(1/3) log n``. Returns the
    six terms in that order, stacked on a last axis of length 6 (``np.cumsum(..., axis=-1)``
    gives the partial sums). The expansion is asymptotic in ``(a / n)^{1/3}`` and
    ``1 / (a^{1/3} n^{2/3})``, so it needs ``a^{1/3} n^{2/3} >> 1`` and ``a << n``.
    ``n >= 1`` (broadcasts), ``ell > 0``, ``rho > 0``.
    """
    n = _arr("n", n, lower=1.0)
    ell = _arr("ell", ell, lower=0.0, strict=True)
    rho = _arr("rho", rho, lower=0.0, strict=True)
    n, ell, rho = np.broadcast_arrays(n, ell, rho)
    a = 2.0 * math.pi * rho**2 / ell**2
    a3 = np.cbrt(a)
    n3 = np.cbrt(n)
    terms = np.stack([
        n * np.log(ell),
        1.5 * a3 * n3**2,
        -0.5 * a3**2 * n3,
        -np.log(n) / 3.0,
        a / 6.0 - np.log(a) / 6.0 + 0.5 * math.log(2.0 / (3.0 * math.pi)),
        (0.5 * a3 - 5.0 * a3**4 / 108.0) / n3,
    ], axis=-1)
    return _out(terms)
