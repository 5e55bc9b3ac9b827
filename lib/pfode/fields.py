"""Exact velocity fields.

Conventions (fixed for the whole package; [book: eq-ch2-interpolant], [book: eq-ch2-velocity])::

    x_t = (1 - t) x0 + t eps,   t = 0 data,  t = 1 noise,  eps ~ N(0, I_n)
    v(x, t) = E[eps - x0 | x_t = x]                       (PF-ODE, paper Eq. 1)

A *field* is any callable ``v(x, t)`` taking ``x`` of shape ``(B, n)`` and ``t`` a float,
a 0-d tensor, or a ``(B,)`` tensor, and returning ``(B, n)``. :class:`GaussianMixture`
is the exact field of a Gaussian mixture, the ground truth the book checks every
numerical claim against.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from ._checks import FLOAT_DTYPES, as_batch, as_real, check_generator, check_int, check_norms, check_time
from .constants import LOG_2PI

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
    r"""Exact PF-ODE field of ``p0 = sum_k w_k N(mu_k, s_k^2 I)`` ([book: eq-gmm-velocity]).

    Component ``k`` at time ``t`` is ``N((1-t) mu_k, Sigma_k(t) I)`` with
    ``Sigma_k(t) = (1-t)^2 s_k^2 + t^2``. With responsibilities
    ``r_k(x, t) ∝ w_k N(x; (1-t) mu_k, Sigma_k(t) I)`` (log-sum-exp),

    .. math::
        v(x,t) = \sum_k r_k \Big[\frac{t-(1-t)s_k^2}{\Sigma_k(t)}\,(x-(1-t)\mu_k) - \mu_k\Big].

    One evaluation is two GEMMs, ``(B, n) x (n, K)`` for the squared distances and
    ``(B, K) x (K, n)`` for the weighted means, so ``K`` in the thousands and ``n`` in the
    tens of thousands are fine. With real images as ``means`` and a small common ``s`` this
    is the "mixture of Gaussian neighbors" of Assumption 4.3 ([book: asm-ch7-neighbors]).

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
        """The exact PF-ODE velocity v(x, t), shape (B, n) ([book: eq-gmm-velocity]).

        The hot path of every solver: the squared distances are one fused GEMM
        (``addmm``) when t is a scalar, and the output another, so one call costs little
        more than its two GEMMs (see the benchmarks appendix, [book: benchmarks]).
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

    def velocity_np(self, y: np.ndarray, t: float) -> np.ndarray:
        """The velocity at one point, as numpy float64: ``y`` (n,), ``t`` a float; (n,).

        The same formula as :meth:`velocity` [book: eq-gmm-velocity], for the point-by-point
        scipy solvers (``method="scipy-rk45"``, ``"scipy-bdf"``), which call the field once per
        stage on a single row: there the fixed cost of some twenty small torch operations
        (about 0.2 ms a call) would dominate, and numpy's is a third of it. No checks: the
        solver checks ``y`` once and the output at every call.
        """
        mu, mu2, s2, logw = self._np_params()
        with np.errstate(all="ignore"):       # an overflow shows as inf, which the solver reports
            return self._velocity_np(y, t, mu, mu2, s2, logw)

    def _velocity_np(self, y, t, mu, mu2, s2, logw):
        c = 1.0 - t
        sigma = c * c * s2 + t * t                                            # (K,)
        d2 = np.maximum(y @ y - 2.0 * c * (mu @ y) + c * c * mu2, 0.0)        # (K,)
        logits = logw - 0.5 * self.n * np.log(sigma) - 0.5 * d2 / sigma
        r = np.exp(logits - logits.max())
        r /= r.sum()
        a = (t - c * s2) / sigma
        return (r @ a) * y - (r * (a * c + 1.0)) @ mu

    def _np_params(self):
        if "numpy" not in self._cache:
            mu = self.means.double().numpy()
            with np.errstate(divide="ignore"):                # a zero weight: log 0 = -inf
                logw = np.log(self.weights.double().numpy())
            self._cache["numpy"] = (mu, (mu * mu).sum(1), self.stds.double().numpy() ** 2, logw)
        return self._cache["numpy"]

    def log_prob(self, x: torch.Tensor, t=0.0) -> torch.Tensor:
        """Exact log p_t(x), shape (B,): log-sum-exp over the components ([book: eq-gmm-logp]).

        Computed in float64 whatever x's dtype: near t = 0 the squared distances divided by
        ``Sigma_k(t) ≈ s_k²`` amplify the round-off of their expanded form by ``1/s²``
        (float32 was off by 2e3 nats at n = 1e4, s = 1e-3); the result has x's dtype.
        """
        x = as_batch(x, "x", n=self.n)
        *_, logits = self._terms(x.double(), t)
        return (torch.logsumexp(logits, dim=1) - 0.5 * self.n * LOG_2PI).to(x.dtype)

    def score(self, x: torch.Tensor, t) -> torch.Tensor:
        """Exact score ∇_x log p_t(x), shape (B, n) ([book: eq-gmm-logp])."""
        x = as_batch(x, "x", n=self.n)
        mu, _, _, t, c, sigma, _, _, logits = self._terms(x, t)
        r = torch.softmax(logits, dim=1)
        return -(r / sigma).sum(1, keepdim=True) * x + c * ((r / sigma) @ mu)

    def divergence(self, x: torch.Tensor, t) -> torch.Tensor:
        r"""Exact ``div v = tr ∇_x v``, shape (B,), in closed form ([book: eq-gmm-divergence]).

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
        r"""``(v(x, t), ∇_x v(x, t) w)`` in closed form ([book: eq-gmm-jacobian]), shapes (B, n).

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

    def velocity_jacobian(self, x: torch.Tensor, t) -> torch.Tensor:
        r"""The Jacobian ``∇_x v(x, t)`` in closed form, shape (B, n, n) ([book: eq-gmm-jacobian]).

        With ``m_k = (1-t) mu_k``, ``a_k = (t - (1-t) s_k²)/Sigma_k``,
        ``u_k = a_k (x - m_k) - mu_k`` (so ``v = sum_k r_k u_k``) and
        ``g_k = -(x - m_k)/Sigma_k`` (so ``∇_x r_k = r_k (g_k - gbar)``, ``gbar = sum_k r_k g_k``),
        differentiating ``v`` gives eq-gmm-jacobian, and since ``sum_k r_k (g_k - gbar) = 0``
        its second term is a posterior cross-covariance:

        .. math::
            \nabla_x v = \Big(\sum_k r_k a_k\Big) I_n + \sum_k r_k\,(u_k - v)(g_k - \bar g)^\top
                       = \bar a\, I_n + \mathrm{Cov}_r(u, g).

        For a common std s every component has the same ``Sigma`` and ``a``, and
        ``a (1-t) + 1 = t/Sigma``, so ``u_k - v = -(t/Sigma)(mu_k - mubar)`` and
        ``g_k - gbar = ((1-t)/Sigma)(mu_k - mubar)`` with ``mubar = sum_k r_k mu_k``:

        .. math::
            \nabla_x v = a\, I_n - \frac{t\,(1-t)}{\Sigma^2}\,\mathrm{Cov}_r(\mu),

        symmetric, with the posterior covariance of the means (the form of the stiffness
        remark of [book: ch-dimension-sweep]); this case is computed from the centred means.
        Components whose responsibility is below 1e-17 in every row are left out: each would
        change ``J`` by less than 1e-17 times ``(t(1-t)/Sigma²) max_k ||mu_k - mubar||²``
        (common std), a twentieth of the float64 round-off on that scale. Computed in float64
        whatever x's dtype (see :meth:`log_prob`); the result has x's dtype. Memory
        ``B (n² + 2 K' n)`` numbers for the ``K'`` components kept.
        """
        x_in = as_batch(x, "x", n=self.n)
        x = x_in.double()
        mu, _, s2, t, c, sigma, _, _, logits = self._terms(x, t)
        r = torch.softmax(logits, dim=1)                                      # (B, K)
        keep = (r > 1e-17).any(0)
        r, mu, s2, sigma = r[:, keep], mu[keep], s2[keep], sigma[:, keep]
        a = (t - c * s2) / sigma                                              # (B|1, K)
        if bool((self.stds == self.stds[0]).all()):
            dev = mu - (r @ mu)[:, None]                                      # (B, K, n)
            cov = (r[..., None] * dev).transpose(1, 2) @ dev                  # (B, n, n)
            jac = cov.mul_((-t * c / sigma[:, :1] ** 2)[..., None])
            diag = a[:, :1]                                                   # (B|1, 1)
        else:
            xm = x[:, None] - c[..., None] * mu                               # (B, K, n)
            u, g = a[..., None] * xm - mu, -xm / sigma[..., None]
            du = u - (r[..., None] * u).sum(1, keepdim=True)
            dg = g - (r[..., None] * g).sum(1, keepdim=True)
            jac = (r[..., None] * du).transpose(1, 2) @ dg                    # (B, n, n)
            diag = (r * a).sum(1, keepdim=True)                               # (B, 1)
        jac.diagonal(dim1=1, dim2=2).add_(diag)
        return jac.to(x_in.dtype)

    def span_reduction(self, rtol: float | None = None) -> SpanReduction:
        """This mixture (common std only) split over the span of its means: a
        :class:`SpanReduction` ([book: prop-ch9-span]); ``rtol`` sets the numerical rank."""
        return SpanReduction(self, rtol)

    def sample(self, num: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``num`` exact samples of p0, shape (num, n), drawn through ``generator``."""
        check_int(num, "num")
        check_generator(generator)
        comp = torch.multinomial(self.weights, num, replacement=True, generator=generator)
        eps = torch.randn(num, self.n, generator=generator, dtype=self.means.dtype)
        return self.means[comp] + self.stds[comp, None] * eps


class SpanReduction:
    r"""A common-std mixture split over the span of its means and the orthogonal complement.

    For ``p0 = sum_k w_k N(mu_k, s² I_n)`` let ``Q`` (n, D) be an orthonormal basis of
    ``V = span{mu_k}`` (:attr:`basis`), ``x_par = Qᵀ x`` the span coordinates and
    ``x_perp = x - Q x_par`` the orthogonal part (:meth:`split`). All components share
    ``Sigma(t) = (1-t)² s² + t²``, and ``||x - (1-t) mu_k||² = ||x_par - (1-t) Y_k||² +
    ||x_perp||²`` with ``Y_k = Qᵀ mu_k``, so the factor in ``x_perp`` is common to every
    component and (Proposition [book: prop-ch9-span])

    .. math::
        \log p_t(x) = \log p_{V,t}(x_\parallel) + \log \mathcal N\big(x_\perp; 0, \Sigma(t) I_{n-D}\big),
        \qquad
        v(x, t) = Q\, v_V(x_\parallel, t) + a(t)\, x_\perp,

    where ``p_V = sum_k w_k N(Y_k, s² I_D)`` is the mixture in V (:attr:`field`, a
    ``D``-dimensional :class:`GaussianMixture`) and ``a = (t - (1-t) s²)/Sigma = Sigma'/(2 Sigma)``.
    The orthogonal part therefore flows exactly, ``x_perp(t1) = sqrt(Sigma(t1)/Sigma(t0))
    x_perp(t0)`` (:meth:`perp_flow`), and the inversion splits as
    ``F(x) = Q F_V(x_par) + x_perp / s`` ([book: eq-ch9-split]): one solve in D dimensions.

    Built by :meth:`GaussianMixture.span_reduction`. ``D`` is the numerical rank of the
    means: singular values above ``rtol`` times the largest (default ``max(K, n)`` float64
    epsilons, numpy's ``matrix_rank`` rule).
    """

    def __init__(self, mixture: GaussianMixture, rtol: float | None = None):
        if not isinstance(mixture, GaussianMixture):
            raise TypeError(f"mixture must be a GaussianMixture, got {type(mixture).__name__}")
        stds = mixture.stds
        if not bool((stds == stds[0]).all()):
            raise ValueError("the span reduction needs a common std: with per-component stds "
                             "the responsibilities depend on the orthogonal part too")
        means = mixture.means.double()
        if rtol is None:
            rtol = max(means.shape) * torch.finfo(torch.float64).eps
        if not (isinstance(rtol, (int, float)) and math.isfinite(rtol) and rtol > 0):
            raise ValueError(f"rtol must be a finite number > 0, got {rtol!r}")
        _, sv, vh = torch.linalg.svd(means, full_matrices=False)
        D = int((sv > sv.max() * rtol).sum())
        if D == 0:
            raise ValueError("the means are all zero: their span is {0}")
        self.basis = vh[:D].T.contiguous()                                    # (n, D), float64
        self.std = float(stds[0])
        self.n = mixture.n
        self.field = GaussianMixture(means @ self.basis, self.std, mixture.weights,
                                     dtype=mixture.means.dtype)

    @property
    def dim(self) -> int:
        """D, the dimension of the span of the means."""
        return self.basis.shape[1]

    def __repr__(self) -> str:
        return f"SpanReduction(n={self.n}, D={self.dim}, std={self.std})"

    def split(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x_par, x_perp)``: span coordinates ``Qᵀ x``, shape (B, D), and the orthogonal
        part ``x - Q Qᵀ x``, shape (B, n), in x's dtype."""
        x = as_batch(x, "x", n=self.n)
        q = self.basis.to(x)
        x_par = x @ q
        return x_par, x - x_par @ q.T

    def join(self, y_par: torch.Tensor, y_perp: torch.Tensor) -> torch.Tensor:
        """``Q y_par + y_perp``, shape (B, n): the inverse of :meth:`split`."""
        y_par = as_batch(y_par, "y_par", n=self.dim)
        y_perp = as_batch(y_perp, "y_perp", n=self.n)
        return y_par @ self.basis.to(y_par).T + y_perp

    def _sigma_a(self, t, x: torch.Tensor):
        t = self.field._time(t, x)                                            # (B|1, 1)
        c, s2 = 1 - t, self.std * self.std
        sigma = c * c * s2 + t * t
        return sigma, (t - c * s2) / sigma

    def log_prob(self, x: torch.Tensor, t=0.0) -> torch.Tensor:
        """``log p_V,t(x_par) + log N(x_perp; 0, Sigma(t) I_{n-D})``, shape (B,): equal to the
        full mixture's :meth:`GaussianMixture.log_prob` ([book: eq-ch9-split]). Float64 inside."""
        x_in = as_batch(x, "x", n=self.n)
        x_par, x_perp = self.split(x_in.double())
        sigma, _ = self._sigma_a(t, x_par)
        perp = (-0.5 * (self.n - self.dim) * torch.log(2 * math.pi * sigma)
                - 0.5 * (x_perp * x_perp).sum(1, keepdim=True) / sigma)       # (B|1, 1)
        return (self.field.log_prob(x_par, t) + perp[:, 0]).to(x_in.dtype)

    def velocity(self, x: torch.Tensor, t) -> torch.Tensor:
        """``Q v_V(x_par, t) + a(t) x_perp``, shape (B, n): the full mixture's velocity."""
        x_par, x_perp = self.split(x)
        _, a = self._sigma_a(t, x_par)
        return self.join(self.field.velocity(x_par, t), a * x_perp)

    def perp_flow(self, y: torch.Tensor, t0: float = 0.0, t1: float = 1.0) -> torch.Tensor:
        """The exact flow of the orthogonal part from t0 to t1: ``y sqrt(Sigma(t1)/Sigma(t0))``.

        The defaults give the inversion's ``x_perp / s``; ``(t0, t1) = (1, 0)`` the
        generation's ``s z_perp``. ``y`` of shape (B, n), orthogonal to the span.
        """
        y = as_batch(y, "y", n=self.n)
        for name, t in (("t0", t0), ("t1", t1)):
            if isinstance(t, torch.Tensor) and t.numel() != 1:
                raise ValueError(f"{name} must be a scalar")
            check_time(t, name)
        sig0, sig1 = ((1 - float(t)) ** 2 * self.std * self.std + float(t) ** 2 for t in (t0, t1))
        return y * math.sqrt(sig1) / math.sqrt(sig0)
