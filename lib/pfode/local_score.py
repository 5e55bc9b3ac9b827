"""The local score machine: a closed-form field that composes training patches.

Kamb & Ganguli (*An analytic theory of creativity in convolutional diffusion models*, ICML
2025) replace the posterior over whole training images, which makes the optimal denoiser
memorise, by a posterior over training *patches* at each pixel. Their location-specific
machine (LS) is the optimal denoiser under two constraints that trained convolutional and
patch-token networks share: locality (pixel ``i`` of the output sees only the ``P x P``
window ``Ω_i`` around ``i``) and, here, no equivariance (position is known, as with the absolute
position embedding of an MMDiT). In the book's flow-matching convention
([book: eq-ls-velocity], derivation on the page [book: ch-memorisation])::

    x_t = (1 - t) x0 + t eps,   Sigma(t) = (1 - t)^2 s^2 + t^2,   a(t) = (t - (1 - t) s^2) / Sigma
    r_k(i) = softmax_k( -||x_{Ω_i} - (1 - t) y^k_{Ω_i}||^2 / (2 Sigma) )      (N training images y^k)
    v_i(x, t) = a x_i - (t / Sigma) sum_k r_k(i) y^k_i

with each training patch a Gaussian ``N(y^k_Ω, s^2 I)`` (``s -> 0`` is the machine of the paper).
Windows are truncated at the border (zero padding of both ``x`` and ``y``). For
``P >= 2 max(H, W) - 1`` every window is the whole image and the field is exactly
:class:`pfode.GaussianMixture` on the training images with std ``s`` (the memorisation limit).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ._checks import FLOAT_DTYPES, _under_vmap, as_batch, as_float, as_real, check_int, check_norms, check_time

__all__ = ["LocalScoreMachine"]

_BLOCK = 1 << 24        # entries of one (L, rows, N) block of logits: 128 MiB in float64


class LocalScoreMachine:
    r"""The location-specific local score machine (LS) as a PF-ODE field ([book: eq-ls-velocity]).

    For the ``L = H W`` pixel positions ``l``, the unfolded windows ``X_l`` (``D = C P²``
    numbers, zero outside the image) of the query and ``Y_{lk}`` of training image ``k``, and
    the centre values ``c_{lk} = y^k_{:, l}`` (C channels),

    .. math::
        r_{lk} = \operatorname{softmax}_k\Big(-\frac{\|X_l - (1-t) Y_{lk}\|^2}{2\Sigma(t)}\Big),\qquad
        v_{:, l}(x, t) = a(t)\, x_{:, l} - \frac{t}{\Sigma(t)} \sum_k r_{lk}\, c_{lk}.

    One evaluation is two batched GEMMs over the positions, ``(L, B, D) x (L, D, N)`` for the
    cross terms of the distances and ``(L, B, N) x (L, N, C)`` for the posterior means, so its
    floor is ``2 L B N (D + C)`` flops ([book: benchmarks]).

    Parameters
    ----------
    images : (N, C, H, W) tensor or array, or (N, n) with ``shape``
        The training images; the field lives on their flattened ``C H W`` layout.
    patch : odd int >= 1
        The window side P.
    std : float > 0
        The std s of each patch component (the ``s`` of :class:`pfode.GaussianMixture`).
    shape : (C, H, W), needed when ``images`` are flat.
    dtype : dtype of the stored training set (float64 by default).
    """

    def __init__(self, images, patch: int, std: float, *, shape=None, dtype=torch.float64):
        if dtype not in FLOAT_DTYPES:
            raise TypeError(f"dtype must be torch.float32 or torch.float64, got {dtype!r}")
        y = as_real(images, "images", dtype)
        if shape is not None:
            shape = tuple(int(s) for s in shape)
            if len(shape) != 3 or min(shape) < 1:
                raise ValueError(f"shape must be (C, H, W) with positive sides, got {shape}")
            if y.dim() != 2 or y.shape[1] != math.prod(shape) or y.shape[0] == 0:
                raise ValueError(f"images must have shape (N, {math.prod(shape)}) for shape {shape}, "
                                 f"got {tuple(y.shape)}")
            y = y.reshape(-1, *shape)
        if y.dim() != 4 or y.numel() == 0:
            raise ValueError(f"images must have shape (N, C, H, W) (or (N, n) with shape=), got "
                             f"{tuple(y.shape)}")
        as_batch(y.reshape(y.shape[0], -1), "images")                        # finite, non-empty
        patch = check_int(patch, "patch")
        if patch % 2 == 0:
            raise ValueError(f"patch must be odd (a window centred on its pixel), got {patch}")
        std = as_float(std, "std")
        if not (math.isfinite(std) and std > 0):
            raise ValueError(f"std must be finite and > 0, got {std}")
        N, C, H, W = y.shape
        self.shape, self.patch, self.std = (C, H, W), patch, std
        self.N, self.n, self.L = N, C * H * W, H * W
        Y = F.unfold(y, patch, padding=patch // 2)                            # (N, D, L)
        self._Yt = Y.permute(2, 1, 0).contiguous()                            # (L, D, N)
        self._Y2 = (Y * Y).sum(1).T.contiguous()[:, None, :]                  # (L, 1, N)
        self._Yc = y.reshape(N, C, H * W).permute(2, 0, 1).contiguous()      # (L, N, C)
        self._cache: dict = {}

    def __repr__(self) -> str:
        return (f"LocalScoreMachine(N={self.N}, shape={self.shape}, patch={self.patch}, "
                f"std={self.std})")

    def flops(self, batch: int = 1) -> int:
        """Floating-point operations of the two GEMMs of one evaluation at ``batch`` rows."""
        D = self._Yt.shape[1]
        return 2 * self.L * batch * self.N * (D + self.shape[0])

    # -- parameters in the query's dtype, cached --------------------------------------------
    def _params(self, like: torch.Tensor):
        key = (like.dtype, like.device)
        if key not in self._cache:
            self._cache[key] = tuple(p.to(like) for p in (self._Yt, self._Y2, self._Yc))
        return self._cache[key]

    def _time(self, t, x: torch.Tensor) -> torch.Tensor:
        """t as a (1,) or (B,) tensor in x's dtype."""
        check_time(t)
        t = torch.as_tensor(t, dtype=x.dtype, device=x.device)
        if t.numel() == 1 and t.dim() <= 1 and not (t.dim() == 1 and x.shape[0] != 1):
            return t.reshape(1)
        if t.shape != (x.shape[0],):
            raise ValueError(f"t must be a scalar or have shape ({x.shape[0]},), got {tuple(t.shape)}")
        return t

    def _unfold(self, x: torch.Tensor) -> torch.Tensor:
        """(B, n) -> windows (L, B, D)."""
        X = F.unfold(x.reshape(-1, *self.shape), self.patch, padding=self.patch // 2)
        return X.permute(2, 0, 1)

    def _rows(self) -> int:
        return max(1, _BLOCK // (self.L * self.N))

    def _posterior(self, x, t):
        """Responsibilities r (L, B, N) of one block of rows, with a(t), (1-t)/Sigma as
        (1, 1|B, 1) and t/Sigma as (1|B, 1); t of shape (1,) or (rows,) ([book: eq-ls-resp])."""
        Yt, Y2, _ = self._params(x)
        c = 1 - t
        sigma = c * c * self.std ** 2 + t * t                                 # (1|B,)
        a = (t - c * self.std ** 2) / sigma
        X = self._unfold(x)                                                   # (L, B, D)
        # logits up to a k-independent term: -(||X||^2 - 2 c X.Y + c^2 ||Y||^2) / (2 Sigma)
        cs = (c / sigma)[None, :, None]                                       # (1, 1|B, 1)
        if t.numel() == 1:                                                    # one fused GEMM
            logits = torch.baddbmm(Y2.expand(-1, x.shape[0], -1), X, Yt,
                                   beta=-0.5 * float(c * c / sigma), alpha=float(c / sigma))
        else:
            logits = cs * torch.bmm(X, Yt) - (0.5 * c[None, :, None] * cs) * Y2   # (L, B, N)
        return torch.softmax(logits, dim=2), a[:, None], cs, (t / sigma)[:, None]

    def _block(self, x, t, w=None):
        """v (and J_v w) for one block of rows; t of shape (1,) or (rows,)."""
        Yt, _, Yc = self._params(x)
        r, a, cs, ts = self._posterior(x, t)
        B = x.shape[0]

        def place(m):                                                         # (L, B, C) -> (B, n)
            return m.permute(1, 2, 0).reshape(B, self.n)

        if w is None:
            return a * x - ts * place(torch.bmm(r, Yc)), None
        gw = cs * torch.bmm(self._unfold(w), Yt)                              # (L, B, N): g_k . w
        dr = r * (gw - (r * gw).sum(2, keepdim=True))                         # d r / dx . w
        both = torch.bmm(torch.cat([r, dr], 1), Yc)                           # (L, 2B, C) GEMM
        return a * x - ts * place(both[:, :B]), a * w - ts * place(both[:, B:])

    def _vjp_block(self, x, t, u):
        """``∇_x v(x, t)ᵀ u`` for one block of rows ([book: eq-ls-jacobian], transposed)."""
        Yt, _, Yc = self._params(x)
        r, a, cs, ts = self._posterior(x, t)
        B, C = x.shape[0], self.shape[0]
        ul = u.reshape(B, C, self.L).permute(2, 0, 1)                          # (L, B, C)
        uc = torch.bmm(ul, Yc.transpose(1, 2))                                # (L, B, N): u_l . c_lk
        beta = r * (uc - (r * uc).sum(2, keepdim=True))
        gW = cs * torch.bmm(beta, Yt.transpose(1, 2))                         # (L, B, D)
        H, W = self.shape[1:]
        folded = F.fold(gW.permute(1, 2, 0), (H, W), self.patch, padding=self.patch // 2)
        return a * u - ts * folded.reshape(B, self.n)

    def velocity_vjp(self, x: torch.Tensor, t, u: torch.Tensor) -> torch.Tensor:
        """``∇_x v(x, t)ᵀ u`` in closed form, shape (B, n): the transpose of
        :meth:`velocity_jvp` (the field is not a gradient, so the two differ). Reverse-mode
        autograd through :meth:`velocity` uses it, recomputing the posteriors instead of storing
        them, so a backward pass through a solve keeps one ``(B, n)`` state per step."""
        x = as_batch(x, "x", n=self.n)
        if not isinstance(u, torch.Tensor):
            raise TypeError(f"u must be a torch.Tensor of shape (B, {self.n}), got {type(u).__name__}")
        u = as_batch(u, "u", n=self.n)
        if u.shape != x.shape:
            raise ValueError(f"u must have the shape of x, {tuple(x.shape)}, got {tuple(u.shape)}")
        t = self._time(t, x)
        rows = self._rows()
        return torch.cat([self._vjp_block(x[i:i + rows], t if t.numel() == 1 else t[i:i + rows],
                                          u[i:i + rows]) for i in range(0, x.shape[0], rows)])

    def _apply(self, x, t, w=None):
        x = as_batch(x, "x", n=self.n)
        if w is not None:
            w = as_batch(w, "w", n=self.n)
            if w.shape != x.shape:
                raise ValueError(f"w must have the shape of x, {tuple(x.shape)}, got {tuple(w.shape)}")
        check_norms((x * x).sum(1), x, what="; the patch posteriors are not defined there")
        t = self._time(t, x)
        rows = self._rows()
        outs = []
        for i in range(0, x.shape[0], rows):
            ti = t if t.numel() == 1 else t[i:i + rows]
            outs.append(self._block(x[i:i + rows], ti, None if w is None else w[i:i + rows]))
        v = torch.cat([o[0] for o in outs]) if len(outs) > 1 else outs[0][0]
        if w is None:
            return v
        return v, (torch.cat([o[1] for o in outs]) if len(outs) > 1 else outs[0][1])

    def velocity(self, x: torch.Tensor, t) -> torch.Tensor:
        """The field v(x, t), shape (B, n) ([book: eq-ls-velocity]); t a scalar or (B,).

        Differentiable in x by reverse mode (closed-form :meth:`velocity_vjp`) and forward mode
        (closed-form :meth:`velocity_jvp`, so ``torch.func.jvp`` works); not in t.
        """
        if isinstance(x, torch.Tensor) and (x.requires_grad or _under_vmap(x)):
            as_batch(x, "x", n=self.n)
            tt = self._time(t, x).detach()
            return _Velocity.apply(x, tt[0] if tt.numel() == 1 else tt, self)
        return self._apply(x, t)

    __call__ = velocity

    def velocity_jvp(self, x: torch.Tensor, t, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        r"""``(v(x, t), ∇_x v(x, t) w)`` in closed form ([book: eq-ls-jacobian]), shapes (B, n).

        With ``g_{lk} = ((1-t)/Sigma) W_l · Y_{lk}`` (the k-dependent part of the derivative
        of the logits along the windows ``W_l`` of ``w``),
        ``∇v w = a w - (t/Sigma) sum_k r_{lk} (g_{lk} - sum_j r_{lj} g_{lj}) c_{lk}``: one more
        GEMM than the velocity, no automatic differentiation.
        """
        if not isinstance(w, torch.Tensor):
            raise TypeError(f"w must be a torch.Tensor of shape (B, {self.n}), got {type(w).__name__}")
        return self._apply(x, t, w)


class _Velocity(torch.autograd.Function):
    """The machine's velocity with its closed-form derivatives (no stored posteriors)."""

    @staticmethod
    def forward(x, t, machine):
        return machine._apply(x, t)

    @staticmethod
    def setup_context(ctx, inputs, output):
        x, t, machine = inputs
        ctx.machine, ctx.t = machine, t
        ctx.save_for_backward(x)
        ctx.save_for_forward(x)
        ctx.x = x

    @staticmethod
    def backward(ctx, grad):
        x, = ctx.saved_tensors
        return ctx.machine.velocity_vjp(x, ctx.t, grad), None, None

    @staticmethod
    def jvp(ctx, x_dot, t_dot, machine_dot):
        return ctx.machine.velocity_jvp(ctx.x, ctx.t, x_dot)[1]
