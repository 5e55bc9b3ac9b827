"""Exact velocity fields.

Conventions (the book's Eq. (interp), fixed for the whole package)::

    x_t = (1 - t) x0 + t eps,   t = 0 data,  t = 1 noise,  eps ~ N(0, I_n)
    v(x, t) = E[eps - x0 | x_t = x]                       (PF-ODE, paper Eq. 1)

A *field* is any callable ``v(x, t)`` taking ``x`` of shape ``(B, n)`` and ``t`` a float,
a 0-d tensor, or a ``(B,)`` tensor, and returning ``(B, n)``. :class:`GaussianMixture`
is the exact field of a Gaussian mixture, the ground truth the book checks every
numerical claim against.
"""
from __future__ import annotations

import math

import torch

from ._checks import FLOAT_DTYPES, as_batch, as_real, check_generator, check_int, check_norms, check_time

LOG_2PI = math.log(2 * math.pi)
_SHORT = 64  # rows up to this length: reductions as matrix-vector products (faster on CPU)


def _rowsum(y: torch.Tensor) -> torch.Tensor:
    """``y.sum(1, keepdim=True)``; for short rows a matrix-vector product, which is several
    times faster than torch's reduction along a short last axis."""
    if y.shape[1] <= _SHORT:
        return y @ torch.ones(y.shape[1], 1, dtype=y.dtype, device=y.device)
    return y.sum(1, keepdim=True)


def _softmax_rows(logits: torch.Tensor) -> torch.Tensor:
    """Softmax over dim 1; for short rows along dim 0 of the transpose (same values, faster)."""
    if logits.shape[1] <= _SHORT:
        return torch.softmax(logits.T, dim=0).T
    return torch.softmax(logits, dim=1)


class GaussianMixture:
    r"""Exact PF-ODE field of ``p0 = sum_k w_k N(mu_k, s_k^2 I)`` (book Eq. eq-gmm-velocity).

    Component ``k`` at time ``t`` is ``N((1-t) mu_k, Sigma_k(t) I)`` with
    ``Sigma_k(t) = (1-t)^2 s_k^2 + t^2``. With responsibilities
    ``r_k(x, t) ∝ w_k N(x; (1-t) mu_k, Sigma_k(t) I)`` (log-sum-exp),

    .. math::
        v(x,t) = \sum_k r_k \Big[\frac{t-(1-t)s_k^2}{\Sigma_k(t)}\,(x-(1-t)\mu_k) - \mu_k\Big].

    One evaluation is two GEMMs, ``(B, n) x (n, K)`` for the squared distances and
    ``(B, K) x (K, n)`` for the weighted means, so ``K`` in the thousands and ``n`` in the
    tens of thousands are fine. With real images as ``means`` and a small common ``s`` this
    is the "mixture of Gaussian neighbors" of Assumption 4.3.

    Parameters
    ----------
    means : (K, n) tensor or array
    stds : float or (K,) — the component standard deviations s_k > 0
    weights : (K,) summing to one, or None for uniform weights
    dtype : torch dtype of the stored parameters (float64 by default)
    """

    def __init__(self, means, stds, weights=None, *, dtype=torch.float64):
        if dtype not in FLOAT_DTYPES:
            raise TypeError(f"dtype must be torch.float32 or torch.float64, got {dtype!r}")
        means = as_real(means, "means", dtype)
        if means.dim() == 1:
            raise ValueError(f"means must have shape (K, n); got shape {tuple(means.shape)} "
                             "(for one component in dimension n use means[None])")
        means = as_batch(means, "means")
        K, n = means.shape
        stds = as_real(stds, "stds", dtype)
        if stds.dim() == 0:
            stds = stds.expand(K).clone()
        if stds.shape != (K,):
            raise ValueError(f"stds must be a scalar or have shape ({K},), got {tuple(stds.shape)}")
        if not bool(torch.isfinite(stds).all()) or bool((stds <= 0).any()):
            raise ValueError("stds must be finite and > 0 (a zero std makes v singular at t = 0)")
        if weights is None:
            weights = torch.full((K,), 1.0 / K, dtype=dtype)
        weights = as_real(weights, "weights", dtype)
        if weights.shape != (K,):
            raise ValueError(f"weights must have shape ({K},), got {tuple(weights.shape)}")
        if not bool(torch.isfinite(weights).all()) or bool((weights < 0).any()):
            raise ValueError("weights must be finite and >= 0")
        if abs(float(weights.sum()) - 1.0) > 1e-6:
            raise ValueError(f"weights must sum to one, got {float(weights.sum()):.8g}")
        self.means, self.stds, self.weights = means, stds, weights
        self._cache: dict = {}

    @property
    def n(self) -> int:
        return self.means.shape[1]

    @property
    def K(self) -> int:
        return self.means.shape[0]

    def __repr__(self) -> str:
        return f"GaussianMixture(K={self.K}, n={self.n}, dtype={self.means.dtype})"

    # -- parameters in the dtype/device of the query, cached ----------------------------
    def _params(self, like: torch.Tensor):
        key = (like.dtype, like.device)
        if key not in self._cache:
            mu = self.means.to(like)
            self._cache[key] = (mu, (mu * mu).sum(1),                       # (K, n), (K,)
                                (self.stds.to(like)) ** 2,                    # (K,)
                                torch.log(self.weights.to(like)))            # (K,) (-inf ok)
        return self._cache[key]

    def _time(self, t, x: torch.Tensor) -> torch.Tensor:
        """t as a (1, 1) or (B, 1) tensor in x's dtype."""
        check_time(t)
        t = torch.as_tensor(t, dtype=x.dtype, device=x.device)
        if t.numel() == 1 and t.dim() <= 1 and not (t.dim() == 1 and x.shape[0] != 1):
            return t.reshape(1, 1)
        if t.shape != (x.shape[0],):
            raise ValueError(f"t must be a scalar or have shape ({x.shape[0]},), got {tuple(t.shape)}")
        return t[:, None]

    def _terms(self, x, t):
        """Shared quantities: logits (B,K), Sigma (.,K), <x,mu_k> (B,K), |x-m_k|^2 (B,K)."""
        mu, mu2, s2, logw = self._params(x)
        t = self._time(t, x)                                                  # (B|1, 1)
        c = 1 - t                                                             # (B|1, 1)
        sigma = c * c * s2 + t * t                                            # (B|1, K)
        xmu = x @ mu.T                                                        # (B, K) GEMM
        sq = _rowsum(x * x)                                                   # (B, 1)
        check_norms(sq, x, what="; the mixture's densities are not defined there")
        d2 = (sq - 2 * c * xmu + c * c * mu2).clamp_min(0)                    # (B, K)
        logits = logw - 0.5 * self.n * torch.log(sigma) - 0.5 * d2 / sigma  # (B, K)
        return mu, mu2, s2, t, c, sigma, xmu, d2, logits

    # -- the public API -------------------------------------------------------------------
    def velocity(self, x: torch.Tensor, t) -> torch.Tensor:
        """The exact PF-ODE velocity v(x, t), shape (B, n) (book Eq. eq-gmm-velocity).

        The hot path of every solver: the squared distances are one fused GEMM
        (``addmm``) when t is a scalar, and the output another, so one call costs little
        more than its two GEMMs (see the benchmarks appendix).
        """
        x = as_batch(x, "x", n=self.n)
        mu, mu2, s2, logw = self._params(x)
        t = self._time(t, x)                                                  # (B|1, 1)
        c = 1 - t
        sigma = c * c * s2 + t * t                                            # (B|1, K)
        sq = _rowsum(x * x)                                                   # (B, 1)
        check_norms(sq, x, what="; the mixture's densities are not defined there")
        base = sq + (c * c) * mu2                                             # (B, K)
        if c.shape[0] == 1:                                                   # scalar t
            d2 = torch.addmm(base, x, mu.T, alpha=-2.0 * float(c))            # GEMM
        else:
            d2 = base - 2 * c * (x @ mu.T)                                    # GEMM
        logits = d2.clamp_min_(0).mul_(-0.5 / sigma).add_(logw - 0.5 * self.n * torch.log(sigma))
        r = _softmax_rows(logits)                                             # (B, K)
        a = (t - c * s2) / sigma                                              # (B|1, K)
        coef_x = _rowsum(r * a)                                               # (B, 1)
        return torch.addmm(coef_x * x, r * (a * c + 1), mu, alpha=-1.0)      # (B, n) GEMM

    __call__ = velocity

    def log_prob(self, x: torch.Tensor, t=0.0) -> torch.Tensor:
        """Exact log p_t(x), shape (B,): log-sum-exp over the components.

        Computed in float64 whatever x's dtype: near t = 0 the squared distances divided by
        ``Sigma_k(t) ≈ s_k²`` amplify the round-off of their expanded form by ``1/s²``
        (float32 was off by 2e3 nats at n = 1e4, s = 1e-3); the result has x's dtype.
        """
        x = as_batch(x, "x", n=self.n)
        *_, logits = self._terms(x.double(), t)
        return (torch.logsumexp(logits, dim=1) - 0.5 * self.n * LOG_2PI).to(x.dtype)

    def score(self, x: torch.Tensor, t) -> torch.Tensor:
        """Exact score ∇_x log p_t(x), shape (B, n)."""
        x = as_batch(x, "x", n=self.n)
        mu, _, _, t, c, sigma, _, _, logits = self._terms(x, t)
        r = torch.softmax(logits, dim=1)
        return -(r / sigma).sum(1, keepdim=True) * x + c * ((r / sigma) @ mu)

    def divergence(self, x: torch.Tensor, t) -> torch.Tensor:
        r"""Exact ``div v = tr ∇_x v``, shape (B,), in closed form (book Eq. eq-gmm-divergence).

        With ``u_k = a_k (x - m_k) - mu_k``, ``g_k = -(x - m_k)/Sigma_k`` and
        ``gbar = sum_k r_k g_k``: ``tr ∇v = n sum_k r_k a_k + sum_k r_k u_k·g_k - v·gbar``.
        Computed in float64 whatever x's dtype (see :meth:`log_prob`; float32 was 23 % off
        near t = 0); the result has x's dtype.
        """
        x_in = as_batch(x, "x", n=self.n)
        x = x_in.double()
        mu, mu2, s2, t, c, sigma, xmu, d2, logits = self._terms(x, t)
        r = torch.softmax(logits, dim=1)
        a = (t - c * s2) / sigma
        # u_k . g_k = -(a_k d2_k - mu_k.(x - m_k)) / Sigma_k
        ug = -(a * d2 - (xmu - c * mu2)) / sigma                              # (B, K)
        both = torch.cat([r * (a * c + 1), r / sigma], dim=0) @ mu            # (2B, n) GEMM
        B = x.shape[0]
        v = (r * a).sum(1, keepdim=True) * x - both[:B]
        gbar = -(r / sigma).sum(1, keepdim=True) * x + c * both[B:]
        return (self.n * (r * a).sum(1) + (r * ug).sum(1) - (v * gbar).sum(1)).to(x_in.dtype)

    def velocity_jvp(self, x: torch.Tensor, t, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        r"""``(v(x, t), ∇_x v(x, t) w)`` in closed form (book Eq. eq-gmm-jacobian), shapes (B, n).

        ``∇v w = (sum_k r_k a_k) w + sum_k r_k beta_k u_k`` with
        ``beta_k = (g_k - gbar)·w`` — the derivative of the responsibilities — and ``u_k``,
        ``g_k`` as in :meth:`divergence`. Three GEMMs; no automatic differentiation.
        """
        x = as_batch(x, "x", n=self.n)
        w = as_batch(w, "w", n=self.n)
        mu, _, s2, t, c, sigma, _, _, logits = self._terms(x, t)
        r = torch.softmax(logits, dim=1)
        a = (t - c * s2) / sigma
        gw = -((x * w).sum(1, keepdim=True) - c * (w @ mu.T)) / sigma        # g_k·w, (B, K)
        beta = gw - (r * gw).sum(1, keepdim=True)                             # (B, K)
        B = x.shape[0]
        both = torch.cat([r * (a * c + 1), r * beta * (a * c + 1)], dim=0) @ mu  # (2B, n)
        ra = (r * a).sum(1, keepdim=True)
        v = ra * x - both[:B]
        jw = ra * w + (r * beta * a).sum(1, keepdim=True) * x - both[B:]
        return v, jw

    def sample(self, num: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``num`` exact samples of p0, shape (num, n), drawn through ``generator``."""
        check_int(num, "num")
        check_generator(generator)
        comp = torch.multinomial(self.weights, num, replacement=True, generator=generator)
        eps = torch.randn(num, self.n, generator=generator, dtype=self.means.dtype)
        return self.means[comp] + self.stds[comp, None] * eps
