"""Restoration SDEs with exact scores: SGM, IR-SDE, coefficient-decoupled OU, bridge, D³GM.

Conventions of this module ([book: ch-measure-preserving]; they differ from the PF-ODE chapters on purpose):
time ``t ∈ [0, T]`` runs from data (``t = 0``) to the terminal law (``t = T``); ``mu`` is the
low-quality measurement, living in the same space as ``x``. Every forward process here is
linear, so that conditionally on the clean ``x0``

    x_t | x0 ~ N(a_t x0 + b_t mu, v_t I)                        [book: eq-ch11-affine]

and a Gaussian-mixture law of ``x0`` is carried to a Gaussian mixture at every ``t``. That
gives the exact score ``∇ log p_t`` of every family, so the samplers below isolate the
dynamics from any network error.

- Schedules: :class:`ThetaSchedule` (``linear``, ``quadratic``, ``log``, ``cosine``), with the
  integral ``θ̄_t = ∫_0^t θ`` in closed form.
- Processes (each with ``drift(x, t, mu)``, ``diffusion(t)``, ``marginal(x0, t, mu)``):
  :class:`VP` (SGM), :class:`IRSDE`, :class:`DecoupledOU`, :class:`Bridge` (I²SB-style),
  :class:`D3GM` ([book: eq-ch11-d3gm]).
- Laws: :class:`Mixture` (full covariances, means and weights may depend on the batch row),
  :func:`posterior` (mixture prior, linear measurement), :func:`marginal_mixture`.
- Samplers: :func:`euler_maruyama` (reverse SDE, [book: eq-ch11-reverse]), :func:`forward_em`
  (forward SDE), :func:`pf_ode_field` / :func:`pf_ode` (probability-flow ODE through
  :func:`pfode.integrate`), :func:`tdd_lower_bound` ([book: prop-ch11-tdd]).

Randomness: every Euler–Maruyama path ``i`` draws its noise from its own generator seeded
``seed + i`` (:func:`path_noise`), so sample ``i`` does not depend on the batch size.
"""
from __future__ import annotations

import math
from functools import lru_cache
from typing import Callable, NamedTuple, Optional

import numpy as np
import torch
from tqdm import tqdm

from ._checks import (as_batch, as_float, as_real, check_callable, check_choice, check_generator,
                      check_int, check_norms, check_output, check_positive, check_steps)
from .constants import LOG_2PI
from .grid import time_grid

KINDS = ("linear", "quadratic", "log", "cosine")
_COS_S = 0.008                                   # IR-SDE / improved-DDPM cosine offset
_COS_C = math.pi / (2 * (1 + _COS_S))
_LOG_A = math.e - 1.0


def _scalar_time(t, T: float, name: str = "t") -> float:
    t = as_float(t, name)
    if not math.isfinite(t) or t < 0 or t > T * (1 + 1e-12):
        raise ValueError(f"{name} must lie in [0, T] = [0, {T:g}], got {t}")
    return t


# ----------------------------------------------------------------------------------------
# θ schedules
# ----------------------------------------------------------------------------------------
def _shape(kind: str, s: float) -> tuple[float, float]:
    """(φ(s), Φ(s) = ∫_0^s φ) of the unit-interval schedule shape ([book: eq-ch11-schedules])."""
    if kind == "linear":
        return s, s * s / 2
    if kind == "quadratic":
        return s * s, s ** 3 / 3
    if kind == "log":
        u = 1 + _LOG_A * s
        return math.log(u), (u * math.log(u) - _LOG_A * s) / _LOG_A
    # cosine: φ(s) = 1 - f(s)/f(0), f(s) = cos²(c (s + s0)), the IR-SDE θ schedule
    f0 = math.cos(_COS_C * _COS_S) ** 2
    phi = 1 - math.cos(_COS_C * (s + _COS_S)) ** 2 / f0
    integral = s - (s / 2 + (math.sin(2 * _COS_C * (s + _COS_S)) - math.sin(2 * _COS_C * _COS_S))
                    / (4 * _COS_C)) / f0
    return phi, integral


class ThetaSchedule:
    r"""Mean-reversion speed ``θ_t = θ_min + scale · φ(t/T)`` on ``[0, T]`` ([book: eq-ch11-schedules]).

    Shapes ``φ`` on ``[0, 1]``: ``linear`` ``s``; ``quadratic`` ``s²``; ``log``
    ``log(1 + (e-1)s)``; ``cosine`` ``1 - cos²(c(s+s0))/cos²(c s0)`` (IR-SDE's schedule,
    ``s0 = 0.008``, ``c = π/(2(1+s0))``). The integral ``θ̄_t = θ_min t + scale·T·Φ(t/T)`` is
    in closed form for each shape. :meth:`terminal` picks ``scale`` so that
    ``exp(-θ̄_T) = target`` (IR-SDE's choice, ``target = 0.01``).
    """

    def __init__(self, kind: str = "cosine", scale: float = 1.0, T: float = 1.0, theta_min: float = 0.0):
        check_choice(kind, "kind", KINDS)
        check_positive(scale, "scale")
        check_positive(T, "T")
        check_positive(theta_min, "theta_min", allow_zero=True)
        self.kind, self.scale, self.T, self.theta_min = kind, float(scale), float(T), float(theta_min)

    @classmethod
    def terminal(cls, kind: str = "cosine", target: float = 0.01, T: float = 1.0,
                 theta_min: float = 0.0) -> "ThetaSchedule":
        """The schedule of shape ``kind`` with ``exp(-θ̄_T) = target``."""
        check_choice(kind, "kind", KINDS)
        if not (0 < as_float(target, "target") < 1):
            raise ValueError(f"target must lie in (0, 1), got {target}")
        check_positive(T, "T")
        check_positive(theta_min, "theta_min", allow_zero=True)
        rest = -math.log(target) - theta_min * T
        if rest <= 0:
            raise ValueError("theta_min alone already reaches the target; lower theta_min")
        return cls(kind, rest / (T * _shape(kind, 1.0)[1]), T, theta_min)

    def __repr__(self):
        return f"ThetaSchedule({self.kind!r}, scale={self.scale:.4g}, T={self.T:g}, theta_min={self.theta_min:g})"

    def theta(self, t) -> float:
        """θ_t."""
        t = _scalar_time(t, self.T)
        return self.theta_min + self.scale * _shape(self.kind, t / self.T)[0]

    def theta_bar(self, t) -> float:
        """θ̄_t = ∫_0^t θ_s ds, closed form."""
        t = _scalar_time(t, self.T)
        return self.theta_min * t + self.scale * self.T * _shape(self.kind, t / self.T)[1]


# ----------------------------------------------------------------------------------------
# Gaussian mixtures with full covariances and row-dependent means / weights
# ----------------------------------------------------------------------------------------
class Mixture:
    r"""``p(x) = Σ_k w_k N(x; m_k, C_k)`` with exact log-density, score and sampling.

    ``means`` is ``(K, n)`` or ``(B, K, n)`` (one mixture per batch row, as for a posterior
    given measurement ``y_i``); ``covs`` is a float (``s² I``), ``(K,)`` (``s_k² I``) or
    ``(K, n, n)``; ``log_weights`` is ``(K,)`` or ``(B, K)`` (normalised here). The score is
    ``∇log p = -Σ_k r_k C_k^{-1}(x - m_k)`` with responsibilities ``r_k`` (log-sum-exp).
    """

    def __init__(self, means, covs, log_weights=None, *, dtype=torch.float64):
        if dtype not in (torch.float32, torch.float64):
            raise TypeError(f"dtype must be torch.float32 or torch.float64, got {dtype!r}")
        means = as_real(means, "means", dtype)
        if means.dim() not in (2, 3):
            raise ValueError(f"means must have shape (K, n) or (B, K, n), got {tuple(means.shape)}")
        if not bool(torch.isfinite(means).all()):
            raise ValueError("means contains NaN or inf")
        K, n = means.shape[-2:]
        if K == 0 or n == 0:
            raise ValueError(f"means is empty (shape {tuple(means.shape)})")
        covs = as_real(covs, "covs", dtype)
        if not bool(torch.isfinite(covs).all()):
            raise ValueError("covs contains NaN or inf")
        eye = torch.eye(n, dtype=dtype)
        if covs.dim() == 0:
            covs = covs * eye.expand(K, n, n)
        elif covs.dim() == 1:
            if covs.shape != (K,):
                raise ValueError(f"covs must be a scalar, ({K},) or ({K}, {n}, {n}), got {tuple(covs.shape)}")
            covs = covs[:, None, None] * eye
        if covs.shape != (K, n, n):
            raise ValueError(f"covs must be a scalar, ({K},) or ({K}, {n}, {n}), got {tuple(covs.shape)}")
        # one covariance for all components (a mixture of Gaussian neighbours and its posteriors
        # and marginals): factor it once, Mahalanobis distances by GEMMs instead of K solves
        shared = bool(torch.equal(covs, covs[:1].expand_as(covs)))
        try:
            chol = torch.linalg.cholesky(covs[:1] if shared else covs)          # (K|1, n, n)
        except RuntimeError as e:  # pragma: no cover - message depends on torch
            raise ValueError("covs must be symmetric positive definite") from e
        if log_weights is None:
            log_weights = torch.full((K,), -math.log(K), dtype=dtype)
        log_weights = as_real(log_weights, "log_weights", dtype)
        if log_weights.dim() not in (1, 2) or log_weights.shape[-1] != K:
            raise ValueError(f"log_weights must have shape ({K},) or (B, {K}), got {tuple(log_weights.shape)}")
        if bool(torch.isnan(log_weights).any()) or bool(torch.isposinf(log_weights).any()):
            raise ValueError("log_weights contains NaN or +inf (-inf is a zero weight)")
        if bool(torch.isneginf(log_weights).all(-1).any()):
            raise ValueError("log_weights are all -inf in some row: every weight is zero")
        self.means, self.covs, self.chol = means, covs, chol
        self.log_weights = log_weights - torch.logsumexp(log_weights, -1, keepdim=True)
        self._prec = torch.cholesky_inverse(chol)                                # (K|1, n, n)
        self._logdet = 2 * torch.log(torch.diagonal(chol, dim1=-2, dim2=-1)).sum(-1)  # (K|1,)
        if shared:
            chol, self._prec = chol.expand(K, n, n), self._prec.expand(K, n, n)
            self._logdet = self._logdet.expand(K)
        self.chol = chol
        self._shared = shared

    @classmethod
    def from_gaussian_mixture(cls, gm) -> "Mixture":
        """The law ``p0`` of a :class:`pfode.GaussianMixture` (isotropic components)."""
        return cls(gm.means, gm.stds ** 2, torch.log(gm.weights))

    @property
    def n(self) -> int:
        return self.means.shape[-1]

    @property
    def K(self) -> int:
        return self.means.shape[-2]

    def __repr__(self):
        return f"Mixture(K={self.K}, n={self.n}, batched={self.means.dim() == 3})"

    def _check_x(self, x):
        x = as_batch(x, "x", n=self.n)
        check_norms((x * x).sum(1), x, what="; the mixture's density is not defined there")
        for name, a, d in (("means", self.means, 3), ("log_weights", self.log_weights, 2)):
            if a.dim() == d and a.shape[0] != x.shape[0]:
                raise ValueError(f"x has {x.shape[0]} rows but the mixture's {name} has {a.shape[0]}")
        return x

    def _shared_terms(self, x):
        """(Q x (B, n), Q m_k (.., K, n), logits (B, K)) when all covariances are equal."""
        Q = self._prec[0]
        Qx = x @ Q                                                               # (B, n)
        Qm = self.means @ Q                                                      # (K|B,K, n)
        if self.means.dim() == 2:
            cross = Qx @ self.means.T                                            # (B, K) GEMM
        else:
            cross = torch.einsum("bn,bkn->bk", Qx, self.means)
        maha = ((x * Qx).sum(1, keepdim=True) - 2 * cross + (self.means * Qm).sum(-1)).clamp_min(0)
        logits = self.log_weights - 0.5 * (maha + self._logdet + self.n * LOG_2PI)
        return Qx, Qm, logits

    def _logits(self, x):
        if self._shared:
            return None, self._shared_terms(x)[2]
        diff = x[:, None, :] - self.means                                        # (B, K, n)
        sol = torch.linalg.solve_triangular(self.chol[:, None], diff.transpose(0, 1)[..., None],
                                            upper=False)[..., 0].transpose(0, 1)  # (B, K, n)
        maha = (sol * sol).sum(-1)                                               # (B, K)
        logits = self.log_weights - 0.5 * (maha + self._logdet + self.n * LOG_2PI)
        return diff, logits

    def affine(self, a: float, shift=None, v: float = 0.0) -> "Mixture":
        """The law of ``a X + shift + √v ξ`` (``shift`` ``(n,)`` or ``(B, n)``): component ``k``
        becomes ``N(a m_k + shift, a² C_k + v I)`` ([book: eq-ch11-mixture-marginal])."""
        means = a * self.means
        if shift is not None:
            shift = torch.as_tensor(shift, dtype=means.dtype)
            means = means + (shift[:, None, :] if shift.dim() == 2 else shift)
        covs = a * a * self.covs + v * torch.eye(self.n, dtype=means.dtype)
        return Mixture(means, covs, self.log_weights)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """Exact ``log p(x)``, shape (B,)."""
        x = self._check_x(x)
        return torch.logsumexp(self._logits(x)[1], dim=1)

    def score(self, x: torch.Tensor) -> torch.Tensor:
        """Exact ``∇_x log p(x)``, shape (B, n)."""
        x = self._check_x(x)
        if self._shared:
            Qx, Qm, logits = self._shared_terms(x)
            r = torch.softmax(logits, dim=1)                                     # (B, K)
            rQm = r @ Qm if Qm.dim() == 2 else (r[..., None] * Qm).sum(1)        # (B, n)
            return rQm - Qx
        diff, logits = self._logits(x)
        r = torch.softmax(logits, dim=1)                                         # (B, K)
        pd = torch.einsum("kij,bkj->bki", self._prec, diff)                      # (B, K, n)
        return -(r[..., None] * pd).sum(1)

    def mean(self) -> torch.Tensor:
        """The mixture mean, ``(n,)`` or ``(B, n)``."""
        w = self.log_weights.exp()
        return (w[..., None] * self.means).sum(-2)

    def sample(self, num: int, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """``num`` samples (one per row when the mixture is batched), shape (num, n)."""
        check_int(num, "num")
        check_generator(generator)
        w = self.log_weights.exp()
        if w.dim() == 2:
            if w.shape[0] != num:
                raise ValueError(f"num must equal the batch size {w.shape[0]} of a batched mixture")
            comp = torch.multinomial(w, 1, generator=generator)[:, 0]
        else:
            comp = torch.multinomial(w, num, replacement=True, generator=generator)
        eps = torch.randn(num, self.n, generator=generator, dtype=self.means.dtype)
        m = self.means[torch.arange(num), comp] if self.means.dim() == 3 else self.means[comp]
        return m + (self.chol[comp] @ eps[..., None])[..., 0]


def posterior(prior: Mixture, A, noise_std: float, y: torch.Tensor) -> Mixture:
    r"""Posterior of ``x0 ~ prior`` given ``y = A x0 + noise_std · ε`` ([book: eq-ch11-posterior]).

    Component ``k`` is conditioned as a Gaussian: ``S_k = A C_k Aᵀ + σ² I``,
    ``G_k = C_k Aᵀ S_k^{-1}``, mean ``m_k + G_k (y - A m_k)``, covariance ``C_k - G_k A C_k``,
    weight ``∝ w_k N(y; A m_k, S_k)``. ``A`` is a dense ``(m, n)`` matrix, ``y`` is ``(B, m)``;
    the result is a batched :class:`Mixture` (one posterior per row of ``y``).
    """
    if prior.means.dim() != 2 or prior.log_weights.dim() != 1:
        raise ValueError("prior must be an unbatched Mixture")
    if not isinstance(prior, Mixture):
        raise TypeError(f"prior must be a Mixture, got {type(prior).__name__}")
    A = as_real(A, "A", prior.means.dtype)
    if A.dim() != 2 or A.shape[1] != prior.n or A.shape[0] == 0:
        raise ValueError(f"A must have shape (m, {prior.n}), got {tuple(A.shape)}")
    if not bool(torch.isfinite(A).all()):
        raise ValueError("A contains NaN or inf")
    check_positive(noise_std, "noise_std")
    y = as_batch(y, "y", n=A.shape[0]).to(prior.means.dtype)
    m = A.shape[0]
    S = A @ prior.covs @ A.T + noise_std ** 2 * torch.eye(m, dtype=A.dtype)     # (K, m, m)
    G = prior.covs @ A.T @ torch.linalg.inv(S)                                   # (K, n, m)
    resid = y[:, None, :] - prior.means @ A.T                                    # (B, K, m)
    means = prior.means + torch.einsum("knm,bkm->bkn", G, resid)                # (B, K, n)
    covs = prior.covs - G @ A @ prior.covs
    covs = 0.5 * (covs + covs.transpose(-1, -2))
    like = Mixture(prior.means @ A.T, S, prior.log_weights)
    _, logits = like._logits(y)                                                  # (B, K)
    return Mixture(means, covs, logits)


# ----------------------------------------------------------------------------------------
# Forward processes
# ----------------------------------------------------------------------------------------
class LinearSDE:
    """Base: ``dx = f(x, t, mu) dt + g(t) dW`` with ``x_t | x0 ~ N(a_t x0 + b_t mu, v_t I)``."""

    name = "linear"

    def __init__(self, schedule: ThetaSchedule):
        if not isinstance(schedule, ThetaSchedule):
            raise ValueError(f"schedule must be a ThetaSchedule, got {type(schedule).__name__}")
        self.schedule = schedule
        self.T = schedule.T

    def coefficients(self, t) -> tuple[float, float, float]:
        """(a_t, b_t, v_t) of the conditional marginal ([book: eq-ch11-affine])."""
        raise NotImplementedError

    def drift_coefficients(self, t) -> tuple[float, float]:
        """(k_t, l_t) of the affine drift ``f(x, t, mu) = -k_t x + l_t mu``."""
        raise NotImplementedError

    def drift(self, x: torch.Tensor, t, mu) -> torch.Tensor:
        """``f(x, t, mu) = -k_t x + l_t mu`` (:meth:`drift_coefficients`)."""
        x = as_batch(x, "x")
        k, ell = self.drift_coefficients(t)
        return -k * x + ell * _mu(mu, x) if ell != 0 else -k * x

    def t_start(self, eps: float = 0.01) -> float:
        """Where the reverse process starts: ``T`` (the bridge, singular at ``T``, starts at ``T - eps``)."""
        return self.T

    def diffusion(self, t) -> float:
        raise NotImplementedError

    def marginal(self, x0: torch.Tensor, t, mu) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean (B, n), variance 0-d tensor) of ``x_t | x0``."""
        x0 = as_batch(x0, "x0")
        a, b, v = self.coefficients(t)
        return a * x0 + b * _mu(mu, x0), torch.tensor(v, dtype=x0.dtype)

    def terminal(self, mu, num: int, generator=None, t=None) -> torch.Tensor:
        """Samples of the x0-free part ``N(b_t mu, v_t I)`` of the law at ``t`` (default ``T``):
        the start of the reverse process (the attractor when ``a_T ≈ 0``)."""
        check_int(num, "num")
        check_generator(generator)
        t = self.T if t is None else t
        _, b, v = self.coefficients(t)
        mu = as_real(mu, "mu", torch.float64)
        mu = mu.expand(num, -1) if mu.dim() == 1 else as_batch(mu, "mu")
        return b * mu + math.sqrt(v) * torch.randn(mu.shape, generator=generator, dtype=mu.dtype)

    def __repr__(self):
        return f"{type(self).__name__}({self.schedule})"


def _mu(mu, x: torch.Tensor, xname: str = "x") -> torch.Tensor:
    """The measurement ``mu`` ((n,) or (1|B, n), real, finite) in x's dtype, broadcast to x."""
    mu = as_real(mu, "mu", x.dtype).to(x.device)
    if not bool(torch.isfinite(mu).all()):
        raise ValueError("mu contains NaN or inf")
    if mu.dim() == 1:
        if mu.shape[0] != x.shape[1]:
            raise ValueError(f"mu must have {xname}'s dimension, {x.shape[1]} entries, got shape "
                             f"{tuple(mu.shape)} ({xname} has shape {tuple(x.shape)})")
        return mu.expand_as(x)
    if mu.shape[-1] != x.shape[1] or mu.dim() != 2 or mu.shape[0] not in (1, x.shape[0]):
        raise ValueError(f"mu must have shape ({x.shape[1]},) or ({x.shape[0]}, {x.shape[1]}) like "
                         f"{xname}, got {tuple(mu.shape)}")
    return mu.expand_as(x)


class D3GM(LinearSDE):
    r"""D³GM ([book: eq-ch11-d3gm]): ``dx = θ_t (mu - x) dt + τ σ_t dW`` with ``σ_t² = 2 λ² θ_t``.

    ``x_t | x0 ~ N(mu + (x0 - mu) e^{-θ̄_t}, τ² λ² (1 - e^{-2θ̄_t}) I)``; attractor
    ``N(mu, τ² λ² I)``. ``τ ≥ 1`` is the stiffness; ``τ = 1`` is :class:`IRSDE`.
    """

    name = "D3GM"

    def __init__(self, schedule: ThetaSchedule, lam: float = 1.0, tau: float = 1.0):
        super().__init__(schedule)
        check_positive(lam, "lam")
        if not math.isfinite(as_float(tau, "tau")) or float(tau) < 1:
            raise ValueError(f"tau must be finite and >= 1, got {tau}")
        self.lam, self.tau = float(lam), float(tau)

    def coefficients(self, t):
        e = math.exp(-self.schedule.theta_bar(t))
        return e, 1 - e, (self.tau * self.lam) ** 2 * (1 - e * e)

    def drift_coefficients(self, t):
        th = self.schedule.theta(t)
        return th, th

    def diffusion(self, t):
        return self.tau * self.lam * math.sqrt(2 * self.schedule.theta(t))

    @property
    def attractor_var(self) -> float:
        return (self.tau * self.lam) ** 2


class IRSDE(D3GM):
    """IR-SDE: the mean-reverting OU with ``σ_t²/(2θ_t) = λ²`` and τ = 1 (attractor ``N(mu, λ² I)``)."""

    name = "IR-SDE"

    def __init__(self, schedule: ThetaSchedule, lam: float = 1.0):
        super().__init__(schedule, lam=lam, tau=1.0)


class VP(LinearSDE):
    r"""SGM / VP-SDE: ``dx = -θ_t x dt + √(2θ_t) dW`` (β_t = 2θ_t); ``x_t | x0 ~
    N(x0 e^{-θ̄_t}, (1 - e^{-2θ̄_t}) I)``; prior ``N(0, I)``, ignores ``mu``."""

    name = "SGM"

    def coefficients(self, t):
        e = math.exp(-self.schedule.theta_bar(t))
        return e, 0.0, 1 - e * e

    def drift_coefficients(self, t):
        return self.schedule.theta(t), 0.0

    def diffusion(self, t):
        return math.sqrt(2 * self.schedule.theta(t))


class DecoupledOU(LinearSDE):
    r"""Coefficient-decoupled OU: ``dx = θ_t (mu - x) dt + σ_t dW``, ``σ_t² = 2 λ² θ'_t`` where
    ``θ'`` is a *second* schedule, so ``σ_t²/2θ_t`` varies in time ([book: eq-ch11-decoupled]).

    Mean ``mu + (x0 - mu) e^{-θ̄_t}`` (closed form); variance
    ``v_t = ∫_0^t e^{-2(θ̄_t - θ̄_s)} σ_s² ds``, a 1-D integral computed with
    ``scipy.integrate.quad`` to 1e-12 and cached. No stationary law in general.
    """

    name = "Coef.-decoupled"

    def __init__(self, schedule: ThetaSchedule, sigma_schedule: ThetaSchedule, lam: float = 1.0):
        super().__init__(schedule)
        if not isinstance(sigma_schedule, ThetaSchedule) or sigma_schedule.T != schedule.T:
            raise ValueError("sigma_schedule must be a ThetaSchedule on the same [0, T]")
        check_positive(lam, "lam")
        self.sigma_schedule, self.lam = sigma_schedule, float(lam)
        self._var = lru_cache(maxsize=4096)(self._variance)

    def _variance(self, t: float) -> float:
        from scipy.integrate import quad
        tb = self.schedule.theta_bar(t)
        f = lambda s: math.exp(-2 * (tb - self.schedule.theta_bar(s))) * self.diffusion(s) ** 2
        return quad(f, 0.0, t, epsabs=1e-13, epsrel=1e-12, limit=200)[0] if t > 0 else 0.0

    def coefficients(self, t):
        t = _scalar_time(t, self.T)
        e = math.exp(-self.schedule.theta_bar(t))
        return e, 1 - e, self._var(t)

    def drift_coefficients(self, t):
        th = self.schedule.theta(t)
        return th, th

    def diffusion(self, t):
        return self.lam * math.sqrt(2 * self.sigma_schedule.theta(t))

    def frozen_stationary_var(self, t) -> float:
        """``σ_t² / (2θ_t)``: the variance the OU would keep if its coefficients froze at t."""
        return self.diffusion(t) ** 2 / (2 * self.schedule.theta(t))


class Bridge(LinearSDE):
    r"""I²SB-style Brownian bridge from ``x0`` (t = 0) to the point mass ``mu`` (t = T):
    ``dx = (mu - x)/(T - t) dt + g dW``, ``x_t | x0 ~ N((1 - t/T) x0 + (t/T) mu,
    g² t (T - t)/T · I)`` ([book: eq-ch11-bridge]). Singular at ``t = T``: run it on ``[0, T - ε]``.
    The schedule only fixes ``T``."""

    name = "Bridge (I2SB)"

    def __init__(self, schedule: ThetaSchedule, g: float = 1.0):
        super().__init__(schedule)
        check_positive(g, "g")
        self.g = float(g)

    def coefficients(self, t):
        t = _scalar_time(t, self.T)
        s = t / self.T
        return 1 - s, s, self.g ** 2 * t * (self.T - t) / self.T

    def drift_coefficients(self, t):
        t = _scalar_time(t, self.T)
        if t >= self.T:
            raise ValueError("t must be < T for the bridge drift (singular at T)")
        return 1 / (self.T - t), 1 / (self.T - t)

    def diffusion(self, t):
        return self.g

    def t_start(self, eps: float = 0.01) -> float:
        check_positive(eps, "eps")
        if eps >= self.T:
            raise ValueError(f"eps must be < T = {self.T:g}, got {eps}")
        return self.T - eps


# ----------------------------------------------------------------------------------------
# Exact scores and samplers
# ----------------------------------------------------------------------------------------
def marginal_mixture(process: LinearSDE, x0_law: Mixture, t, mu) -> Mixture:
    """The exact law of ``x_t`` when ``x0 ~ x0_law`` ([book: eq-ch11-mixture-marginal])."""
    a, b, v = process.coefficients(t)
    mu = torch.as_tensor(mu, dtype=x0_law.means.dtype)
    return x0_law.affine(a, b * mu if b != 0 else None, v)


def exact_score(process: LinearSDE, x0_law: Mixture) -> Callable:
    """``score(x, t, mu) = ∇_x log p_t(x)`` of the process started from ``x0_law``."""
    def score(x, t, mu):
        return marginal_mixture(process, x0_law, t, mu).score(x)
    return score


def path_noise(num: int, steps: int, n: int, seed: int, dtype=torch.float64) -> torch.Tensor:
    """Standard normal increments ``(num, steps, n)``; row ``i`` from a generator seeded
    ``seed + i``, so path ``i`` does not depend on ``num``."""
    check_int(num, "num")
    check_int(steps, "steps")
    check_int(n, "n")
    check_int(seed, "seed", lower=0)
    out = torch.empty(num, steps, n, dtype=dtype)
    for i in range(num):
        g = torch.Generator().manual_seed(int(seed) + i)
        out[i] = torch.randn(steps, n, generator=g, dtype=dtype)
    return out


def _path_source(x, steps, seed, noise, generator):
    """The Brownian increments of a sampler: ``noise`` (``(B, steps, n)`` standard normals)
    when given, else drawn step by step from ``generator`` when given, else
    :func:`path_noise` with ``seed``. Returns ``draw(i)``, the standard normals of step i."""
    check_generator(generator)
    if noise is not None and generator is not None:
        raise ValueError("give noise or generator, not both")
    if noise is None and generator is None:
        noise = path_noise(x.shape[0], steps, x.shape[1], seed, x.dtype)
    if noise is not None:
        if not isinstance(noise, torch.Tensor) or noise.shape != (x.shape[0], steps, x.shape[1]):
            got = tuple(noise.shape) if isinstance(noise, torch.Tensor) else type(noise).__name__
            raise ValueError(f"noise must have shape {(x.shape[0], steps, x.shape[1])}, got {got}")
        return lambda i: noise[:, i]
    return lambda i: torch.randn(x.shape, generator=generator, dtype=x.dtype)


def _em_path(x, ts, step, draw, callback, progress, desc):
    """The Euler–Maruyama recursion ``x_{i+1} = step(x_i, t_i, t_{i+1}, ξ_i)`` on the grid ``ts``,
    with ``callback(i, t_i, x_i)`` at every grid time, the start included."""
    if callback is not None:
        callback(0, ts[0], x)
    for i in tqdm(range(len(ts) - 1), desc=desc, disable=not progress, leave=False):
        x = step(x, ts[i], ts[i + 1], draw(i))
        if callback is not None:
            callback(i + 1, ts[i + 1], x)
    return x


def euler_maruyama(process: LinearSDE, score: Callable, x: torch.Tensor, mu, *, steps: int = 500,
                   t_start: Optional[float] = None, t_end: float = 0.0, seed: int = 0,
                   noise: Optional[torch.Tensor] = None, generator: Optional[torch.Generator] = None,
                   callback=None, progress: bool = False, info: Optional[dict] = None) -> torch.Tensor:
    r"""Euler–Maruyama for the reverse SDE [book: eq-ch11-reverse], from ``t_start`` (default T)
    down to ``t_end``:

        x ← x - [f(x, t) - g(t)² score(x, t, mu)] h + g(t) √h ξ,   h = (t_start - t_end)/steps.

    The samplers share one signature: ``(process, [score,] x, mu, *, steps, t_start, t_end,
    seed, noise, generator, callback, progress, info)``. The increments ξ are ``noise``
    (``(B, steps, n)``) when given — passing the same noise replays the same Brownian path (used
    for sensitivity estimates) — else drawn step by step from ``generator``, else
    :func:`path_noise` with ``seed``. ``callback(i, t, x)`` is called at every grid time, the
    start included; ``info["nfe"]`` receives the score evaluations per point.
    """
    x = as_batch(x, "x")
    check_int(steps, "steps")
    check_callable(score, "score")
    check_callable(callback, "callback", optional=True)
    t_start = process.T if t_start is None else as_float(t_start, "t_start")
    t_end = as_float(t_end, "t_end")
    if not (0 <= t_end < t_start <= process.T):
        raise ValueError(f"need 0 <= t_end < t_start <= T, got t_end={t_end}, t_start={t_start}")
    def step(x, t, s, xi):
        g, h = process.diffusion(t), t - s
        sc = check_output(score(x, t, mu), x, "score", t)
        return x - (process.drift(x, t, mu) - g * g * sc) * h + g * math.sqrt(h) * xi

    draw = _path_source(x, steps, seed, noise, generator)
    out = _em_path(x, time_grid(t_start, t_end, steps=steps).tolist(), step, draw, callback, progress,
                   "reverse SDE")
    if info is not None:
        info["nfe"] = float(steps)
    return out


def forward_em(process: LinearSDE, x0: torch.Tensor, mu, *, steps: int = 1000,
               t_start: float = 0.0, t_end: Optional[float] = None, seed: int = 0,
               noise: Optional[torch.Tensor] = None, generator: Optional[torch.Generator] = None,
               callback=None, progress: bool = False, info: Optional[dict] = None) -> torch.Tensor:
    """Euler–Maruyama for the forward SDE ``dx = f dt + g dW`` from ``t_start`` (default 0) to
    ``t_end`` (default T), with the signature of :func:`euler_maruyama` (no score). With
    ``generator`` the increments are drawn step by step from that one generator (low memory for
    large batches; then path ``i`` depends on the batch size)."""
    x = as_batch(x0, "x0")
    check_int(steps, "steps")
    check_callable(callback, "callback", optional=True)
    t_start = as_float(t_start, "t_start")
    t_end = process.T if t_end is None else as_float(t_end, "t_end")
    _mu(mu, x, "x0")                                      # mu against x0, named as such
    if not 0 <= t_start < t_end <= process.T:
        raise ValueError(f"need 0 <= t_start < t_end <= T, got t_start={t_start}, t_end={t_end}")
    def step(x, t, s, xi):
        return x + process.drift(x, t, mu) * (s - t) + process.diffusion(t) * math.sqrt(s - t) * xi

    draw = _path_source(x, steps, seed, noise, generator)
    out = _em_path(x, time_grid(t_start, t_end, steps=steps).tolist(), step, draw, callback, progress,
                   "forward SDE")
    if info is not None:
        info["nfe"] = 0.0
    return out


def pf_ode_field(process: LinearSDE, score: Callable, mu) -> Callable:
    r"""The probability-flow ODE ``dx/dt = f - ½ g² score`` as a pfode field in normalised time
    ``s = t/T ∈ [0, 1]`` (chain rule: ``dx/ds = T (f - ½ g² score)``), usable with
    :func:`pfode.integrate`, :func:`pfode.directional_instability` (via rk4 + autograd) etc."""
    T = process.T

    def field(x, s):
        t = float(s) * T
        g = process.diffusion(t)
        return T * (process.drift(x, t, mu) - 0.5 * g * g * score(x, t, mu))
    return field


def pf_ode(process: LinearSDE, score: Callable, x: torch.Tensor, mu, *, t_start: Optional[float] = None,
           t_end: float = 0.0, method: str = "rk4", steps: int = 200, **kw) -> torch.Tensor:
    """Integrate the PF-ODE from ``t_start`` (default T) to ``t_end`` with :func:`pfode.integrate`."""
    from .solvers import integrate
    t_start = process.T if t_start is None else float(t_start)
    if not (0 <= t_end < t_start <= process.T):
        raise ValueError(f"need 0 <= t_end < t_start <= T, got t_end={t_end}, t_start={t_start}")
    check_steps(steps)
    ts = torch.linspace(t_start / process.T, t_end / process.T, steps + 1, dtype=torch.float64)
    return integrate(pf_ode_field(process, score, mu), x, ts, method=method, **kw)


def _tdd_args(c_norm2, v, d, delta):
    if not (0 < as_float(delta, "delta") < 1):
        raise ValueError(f"delta must lie in (0, 1), got {delta}")
    check_int(d, "d")
    c2 = as_real(c_norm2, "c_norm2", torch.float64)
    v = as_real(v, "v", torch.float64)
    for name, a in (("c_norm2", c2), ("v", v)):
        if not bool(torch.isfinite(a).all()) or bool((a < 0).any()):
            raise ValueError(f"{name} must be finite and >= 0")
    return c2, v, math.log(1 / float(delta))


def tdd_upper_bound(c_norm2, v, d: int, delta: float):
    r"""Upper ``(1-δ)``-bound on ``‖c + √v ξ‖²`` ([book: prop-ch11-tdd], upper half):

        ‖c‖² + v d + 2 √(v (v d + 2 ‖c‖²) log(1/δ)) + 2 v log(1/δ),

    the upper tail of a non-central χ² (Birgé 2001); for ``c = 0`` it is Laurent–Massart's
    ``v (d + 2√(d log 1/δ) + 2 log 1/δ)``, the noise term of the original statement.
    """
    c2, v, L = _tdd_args(c_norm2, v, d, delta)
    return c2 + v * d + 2 * torch.sqrt(v * (v * d + 2 * c2) * L) + 2 * v * L


def tdd_lower_bound(c_norm2, v, d: int, delta: float):
    r"""Lower ``(1-δ)``-bound on ``‖c + √v ξ‖²``, ``ξ ~ N(0, I_d)`` ([book: prop-ch11-tdd]):

        ‖c‖² + v d - 2 √(v (v d + 2 ‖c‖²) log(1/δ)),

    the lower tail of a non-central χ² (Birgé 2001, Laurent–Massart 2000). With
    ``c = (1 - e^{-θ̄_T})(x0 - mu)`` and ``v = τ²λ²(1 - e^{-2θ̄_T})`` it bounds the temporal
    distribution discrepancy ``‖x0 - x_T‖²`` of the OU from below.
    """
    c2, v, L = _tdd_args(c_norm2, v, d, delta)
    return c2 + v * d - 2 * torch.sqrt(v * (v * d + 2 * c2) * L)


def shared_cov_score(process: LinearSDE, x0_law: Mixture) -> Callable:
    r""":func:`exact_score` for a mixture whose components share one covariance ``C`` (a mixture
    of Gaussian neighbours and its posteriors), in ``O(B K n)`` per call instead of one
    ``(K, n, n)`` marginal per call.

    With ``C = U diag(c) Uᵀ`` factored once, the marginal at ``t`` has components
    ``N(a_t m_k + b_t mu, U diag(a_t² c + v_t) Uᵀ)``, so in the rotated coordinates
    ``Uᵀ(x - b_t mu)`` every Mahalanobis distance and the score are diagonal:
    ``∇log p_t(x) = -U D_t^{-1} Σ_k r_k (Uᵀ(x - b_t mu) - a_t Uᵀ m_k)``, ``D_t = diag(a_t² c + v_t)``,
    responsibilities ``r_k ∝ w_k exp(-½‖D_t^{-1/2}(·)‖²)`` (the log-determinant is common to all k).
    """
    if not x0_law._shared:
        raise ValueError("x0_law must have one covariance shared by all components")
    c, U = torch.linalg.eigh(x0_law.covs[0])
    means_r = x0_law.means @ U                                                   # (K|B,K, n)
    msq = means_r * means_r
    lw = x0_law.log_weights
    batched = means_r.dim() == 3

    def score(x, t, mu):
        x = as_batch(x, "x", n=x0_law.n)
        a, b, v = process.coefficients(t)
        d = a * a * c + v                                                        # (n,)
        xr = (x - b * _mu(mu, x) if b != 0 else x) @ U                          # (B, n)
        xd = xr / d
        # ‖D^{-1/2}(xr - a m_k)‖² = xrᵀD⁻¹xr - 2a xrᵀD⁻¹m_k + a² m_kᵀD⁻¹m_k, by matrix products
        cross = torch.bmm(means_r, xd[..., None])[..., 0] if batched else xd @ means_r.T
        maha = ((xr * xd).sum(1, keepdim=True) - 2 * a * cross + a * a * (msq @ (1 / d))).clamp_min(0)
        r = torch.softmax(lw - 0.5 * maha, dim=-1)                               # (B, K)
        rm = torch.bmm(r[:, None, :], means_r)[:, 0] if batched else r @ means_r  # (B, n)
        return -((xr - a * rm) / d) @ U.T
    return score


def families(schedule: Optional[ThetaSchedule] = None, *, lam: float = 0.1, tau: float = 1.5,
             g_bridge: float = 0.3, sigma_schedule: Optional[ThetaSchedule] = None) -> dict:
    """The five families of [book: ch-measure-preserving] on one θ schedule, by name: SGM, IR-SDE,
    the coefficient-decoupled OU (noise from ``sigma_schedule``), the bridge and D³GM.

    Defaults: the cosine schedule with ``exp(-θ̄_T) = 0.01`` and, for the decoupled OU, the quadratic
    one with the same terminal value (the parameters of the restoration chapters).
    """
    schedule = ThetaSchedule.terminal("cosine", target=0.01) if schedule is None else schedule
    if sigma_schedule is None:
        sigma_schedule = ThetaSchedule.terminal("quadratic", target=0.01, T=schedule.T)
    return {"SGM": VP(schedule), "IR-SDE": IRSDE(schedule, lam=lam),
            "Coef.-decoupled": DecoupledOU(schedule, sigma_schedule, lam=lam),
            "Bridge (I2SB)": Bridge(schedule, g=g_bridge), "D3GM": D3GM(schedule, lam=lam, tau=tau)}


# ----------------------------------------------------------------------------------------
# Gaussian laws of the reverse process under an affine score error ([book: ch-score-error])
# ----------------------------------------------------------------------------------------
def _no_scale(t) -> float:
    return 0.0


class ScoreError(NamedTuple):
    r"""An error of the score, ``ŝ(x, t) = (1 + scale(t)) s*(x, t) + shift(t) + field(x, t)``
    ([book: eq-se-error]).

    ``shift(t)`` returns an ``(n,)`` or ``(B, n)`` tensor (a bias, the same for every ``x``),
    ``scale(t)`` a float (a score of the wrong magnitude: ``scale > 0`` over-sharpens);
    ``field(x, t)`` (optional, ``(B, n)``) is a non-affine part, e.g. :func:`smooth_field`. The
    laws :func:`gaussian_em_law` and :func:`gaussian_reverse_law` are exact for the affine part
    only and refuse a ``field``. Calling the error on a score returns the perturbed score, for any
    sampler of this module.
    """

    shift: Optional[Callable] = None
    scale: Callable = _no_scale
    field: Optional[Callable] = None

    def __call__(self, score: Callable) -> Callable:
        check_callable(score, "score")

        def perturbed(x, t, mu):
            out = score(x, t, mu)
            eta = float(self.scale(t))
            out = (1 + eta) * out if eta != 0 else out
            if self.shift is not None:
                out = out + torch.as_tensor(self.shift(t), dtype=out.dtype)
            if self.field is not None:
                out = out + self.field(x, t)
            return out
        return perturbed


def smooth_field(basis, size: float, *, bandwidth: float = 1.0, seed: int = 0) -> Callable:
    r"""A fixed random smooth vector field with ``‖e(x)‖ ≤ size`` everywhere ([book: eq-se-fields]):

        e(x) = size · R sin(W x + φ) / √q,

    ``R = basis`` (``(n, q)``, orthonormal columns: the images the field points along), random
    Fourier features ``W ~ N(0, I/bandwidth²)`` (``(q, n)``) and phases ``φ ~ U[0, 2π)``, drawn from
    a generator seeded ``seed``. ``‖R s‖ = ‖s‖ ≤ √q`` gives the bound; the field is not affine in
    ``x`` and does not depend on ``t``. Returns ``field(x, t)`` for :class:`ScoreError`.
    """
    R = as_real(basis, "basis", torch.float64)
    if R.dim() != 2 or R.shape[1] == 0 or R.shape[1] > R.shape[0]:
        raise ValueError(f"basis must have shape (n, q) with 1 <= q <= n, got {tuple(R.shape)}")
    if not bool(torch.allclose(R.T @ R, torch.eye(R.shape[1], dtype=R.dtype), atol=1e-8)):
        raise ValueError("basis must have orthonormal columns (e.g. torch.linalg.qr(M).Q)")
    size = as_float(size, "size")
    check_positive(size, "size", allow_zero=True)
    check_positive(as_float(bandwidth, "bandwidth"), "bandwidth")
    n, q = R.shape
    g = torch.Generator().manual_seed(int(check_int(seed, "seed", lower=0)))
    W = torch.randn(q, n, generator=g, dtype=torch.float64) / float(bandwidth)
    phi = 2 * math.pi * torch.rand(q, generator=g, dtype=torch.float64)

    def field(x, t):
        x = as_batch(x, "x", n=n)
        return float(size) / math.sqrt(q) * torch.sin(x.to(torch.float64) @ W.T + phi) @ R.T
    return field


class GaussianLaw(NamedTuple):
    """A Gaussian law per batch row: ``mean`` (B, n), one covariance ``cov`` (n, n) for all rows."""

    mean: torch.Tensor
    cov: torch.Tensor

    def distribution(self) -> torch.distributions.MultivariateNormal:
        return torch.distributions.MultivariateNormal(self.mean, covariance_matrix=self.cov)


def _gaussian_frame(process, mean, cov, mu, error, t_start, t_end, start):
    """Checks, and the reverse recursion in the eigenbasis ``U`` of ``cov``.

    Returns ``(ts, c, U, m_start, P_start, coef)`` where ``coef(t) = (A, r, g²)`` gives the
    linear reverse-time coefficient ``A = k - g²(1+η)/V`` ((n,)), the affine part
    ``r = -l μ̃ + g²((1+η)M/V + ũ)`` ((B, n)), and ``g²``, all in rotated coordinates
    ([book: eq-se-recursion])."""
    if not isinstance(process, LinearSDE):
        raise ValueError(f"process must be a LinearSDE, got {type(process).__name__}")
    mean = as_batch(mean, "mean", dtype=torch.float64)
    n = mean.shape[1]
    cov = as_real(cov, "cov", torch.float64)
    if cov.shape != (n, n):
        raise ValueError(f"cov must have shape ({n}, {n}) like mean's rows, got {tuple(cov.shape)}")
    if not bool(torch.isfinite(cov).all()) or not bool(torch.allclose(cov, cov.T, rtol=1e-10, atol=1e-12)):
        raise ValueError("cov must be finite and symmetric")
    c, U = torch.linalg.eigh(cov)
    if not bool((c > 0).all()):
        raise ValueError(f"cov must be positive definite (smallest eigenvalue {float(c[0]):.3g})")
    mu_r = _mu(mu, mean, "mean") @ U
    m_r = mean @ U
    if error is not None and not isinstance(error, ScoreError):
        raise ValueError(f"error must be a ScoreError or None, got {type(error).__name__}")
    if error is not None and error.field is not None:
        raise ValueError("error has a non-affine field: its law has no closed form (simulate it with "
                         "euler_maruyama and error(score))")
    t_start = process.T if t_start is None else as_float(t_start, "t_start")
    t_end = as_float(t_end, "t_end")
    if not (0 <= t_end < t_start <= process.T):
        raise ValueError(f"need 0 <= t_end < t_start <= T, got t_end={t_end}, t_start={t_start}")
    check_choice(start, "start", ("terminal", "marginal"))
    a, b, v = process.coefficients(t_start)
    if start == "terminal":                  # the samplers' start: the x0-free part N(b mu, v I)
        m0, P0 = b * mu_r, torch.full((n,), v, dtype=torch.float64)
    else:                                    # the exact marginal p_{t_start}
        m0, P0 = a * m_r + b * mu_r, a * a * c + v

    def coef(t):
        a, b, v = process.coefficients(t)
        k, ell = process.drift_coefficients(t)
        g2 = process.diffusion(t) ** 2
        V, M = a * a * c + v, a * m_r + b * mu_r
        eta = 0.0 if error is None else float(error.scale(t))
        r = -ell * mu_r + g2 * (1 + eta) * M / V
        if error is not None and error.shift is not None:
            u = torch.as_tensor(error.shift(t), dtype=torch.float64)
            if u.shape[-1] != n:
                raise ValueError(f"error.shift(t) must have {n} entries per row, got shape {tuple(u.shape)}")
            r = r + g2 * (u @ U)
        return k - g2 * (1 + eta) / V, r, g2
    return t_start, t_end, c, U, m0.expand_as(m_r).clone(), P0, coef


def gaussian_em_law(process: LinearSDE, mean, cov, mu, *, error: Optional[ScoreError] = None,
                    steps: int = 500, t_start: Optional[float] = None, t_end: float = 0.0,
                    start: str = "terminal") -> GaussianLaw:
    r"""The exact law of the Euler–Maruyama output of :func:`euler_maruyama` for a Gaussian
    ``x0 ~ N(mean_i, cov)`` (one mean per row: a posterior per measurement) with the score
    ``error(s*)`` ([book: eq-se-recursion]).

    With an affine score the step ``x ← x + h(A x + r) + g√h ξ`` is affine, so in the eigenbasis
    of ``cov`` the mean and the variance follow ``m ← (1 + hA) m + h r``,
    ``P ← (1 + hA)² P + g² h`` exactly: no Monte Carlo. ``start="terminal"`` starts, like the
    samplers, from the x0-free law ``N(b μ, v I)`` at ``t_start``; ``"marginal"`` from the exact
    marginal ``p_{t_start}``.
    """
    check_int(steps, "steps")
    t_start, t_end, c, U, m, P, coef = _gaussian_frame(process, mean, cov, mu, error, t_start, t_end, start)
    ts = time_grid(t_start, t_end, steps=steps).tolist()
    for t, s in zip(ts[:-1], ts[1:]):
        A, r, g2 = coef(t)
        h = t - s
        m = (1 + h * A) * m + h * r
        P = (1 + h * A) ** 2 * P + g2 * h
    return GaussianLaw(m @ U.T, (U * P) @ U.T)


def gaussian_reverse_law(process: LinearSDE, mean, cov, mu, *, error: Optional[ScoreError] = None,
                         t_start: Optional[float] = None, t_end: float = 0.0, start: str = "terminal",
                         rtol: float = 1e-10) -> GaussianLaw:
    r"""The law of the *continuous* reverse SDE [book: eq-ch11-reverse] at ``t_end`` for a
    Gaussian ``x0`` and the score ``error(s*)``: the moment equations ([book: eq-se-moments])

        dm/dt = -(A m + r),    dP/dt = -2 A P - g²,

    integrated from ``t_start`` down to ``t_end`` with ``scipy.integrate.solve_ivp`` (Radau,
    stiff near ``t = 0``), in the eigenbasis of ``cov``. The limit of :func:`gaussian_em_law`
    as ``steps → ∞``.
    """
    from scipy.integrate import solve_ivp
    from scipy.sparse import diags
    check_positive(rtol, "rtol")
    t_start, t_end, c, U, m, P, coef = _gaussian_frame(process, mean, cov, mu, error, t_start, t_end, start)
    B, n = m.shape

    def rhs(t, y):
        A, r, g2 = coef(min(max(t, t_end), t_start))
        A, r = A.numpy(), r.numpy()
        mm, PP = y[:B * n].reshape(B, n), y[B * n:]
        return np.concatenate([-(A * mm + r).ravel(), -2 * A * PP - g2])

    def jac(t, y):                         # the system is linear and diagonal in this basis
        A = coef(min(max(t, t_end), t_start))[0].numpy()
        return diags(np.concatenate([np.tile(-A, B), -2 * A]))

    y0 = np.concatenate([m.numpy().ravel(), P.numpy()])
    sol = solve_ivp(rhs, (t_start, t_end), y0, method="Radau", jac=jac, rtol=rtol, atol=rtol * 1e-2)
    if not sol.success:  # pragma: no cover - solver failure is reported, not hidden
        raise RuntimeError(f"moment equations did not integrate: {sol.message}")
    y = torch.as_tensor(sol.y[:, -1], dtype=torch.float64)
    m, P = y[:B * n].reshape(B, n), y[B * n:]
    return GaussianLaw(m @ U.T, (U * P) @ U.T)


def gaussian_w2(p: GaussianLaw, q: GaussianLaw) -> torch.Tensor:
    r"""The 2-Wasserstein distance between Gaussians, row by row (Bures):
    ``W₂² = ‖m_p - m_q‖² + tr(P + Q - 2 (Q^{1/2} P Q^{1/2})^{1/2})``, shape (B,)."""
    def sqrtm(S):
        w, V = torch.linalg.eigh(0.5 * (S + S.T))
        return (V * w.clamp_min(0).sqrt()) @ V.T
    rq = sqrtm(q.cov)
    bures = torch.trace(p.cov + q.cov - 2 * sqrtm(rq @ p.cov @ rq)).clamp_min(0)
    d2 = ((p.mean - q.mean) ** 2).sum(-1)
    return torch.sqrt(d2 + bures)


def error_gain(process: LinearSDE, c, *, t_start: Optional[float] = None, t_end: float = 0.0,
               weight: Optional[Callable] = None) -> np.ndarray:
    r"""The gain ``Γ(c) = ∫_{t_end}^{t_start} Φ(t_end, t) g_t² w(t) dt`` of a score error in an
    eigen-direction of posterior variance ``c`` ([book: eq-se-gain]), with the propagator of the
    exact-score reverse SDE in closed form,

        Φ(s, t) = (V_s a_t) / (V_t a_s),   V_t = a_t² c + v_t        ([book: prop-se-propagator]).

    A score error ``e`` with ``‖e(x, t)‖ ≤ w(t)`` moves every path's end by at most
    ``Γ(c_max)`` ([book: prop-se-pathwise]); a constant error ``u`` along that direction moves the
    mean by exactly ``Γ(c) u``. ``c`` is a float or an array; ``weight`` defaults to 1 (a bounded
    error), ``lambda t: 1/sqrt(v_t)`` is a noise-prediction error of unit size. Quadrature
    (``scipy.integrate.quad``) per value of ``c``.
    """
    from scipy.integrate import quad
    if not isinstance(process, LinearSDE):
        raise ValueError(f"process must be a LinearSDE, got {type(process).__name__}")
    check_callable(weight, "weight", optional=True)
    t_start = process.t_start() if t_start is None else as_float(t_start, "t_start")
    t_end = as_float(t_end, "t_end")
    if not (0 <= t_end < t_start <= process.T):
        raise ValueError(f"need 0 <= t_end < t_start <= T, got t_end={t_end}, t_start={t_start}")
    cs = np.atleast_1d(as_real(c, "c", torch.float64).numpy())
    if cs.size == 0 or not np.all(np.isfinite(cs)) or np.any(cs <= 0):
        raise ValueError("c must be finite and > 0 (posterior variances)")
    w = (lambda t: 1.0) if weight is None else weight
    a_s, _, v_s = process.coefficients(t_end)

    def gain(ci):
        Vs = a_s * a_s * ci + v_s

        def f(t):
            a, _, v = process.coefficients(t)
            return Vs * a / ((a * a * ci + v) * a_s) * process.diffusion(t) ** 2 * float(w(t))
        return quad(f, t_end, t_start, limit=400, epsabs=0.0, epsrel=1e-10)[0]
    out = np.array([gain(ci) for ci in cs])
    return out if np.ndim(c) else float(out[0])
