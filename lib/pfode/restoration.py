"""Learned restoration: procedural phantoms, real degradations, one conditional network per family.

The benchmark of [book: ch-score-error]'s learned counterpart. Everything is generated, nothing
downloaded:

- **Data.** :func:`ellipse_phantoms` (Shepp–Logan-style heads of random ellipses, the training
  distribution), :func:`polygon_phantoms` (random rectangles and triangles: a second shape family,
  out of domain), :func:`shepp_logan` (``skimage.data.shepp_logan_phantom`` reduced), and
  :func:`photo_patches` (grey-scale patches of the photographs of :mod:`pfode.data`). Images are
  ``(N, 1, s, s)`` float tensors in ``[0, 1]``.
- **Degradations** (:func:`degrade`, with a seeded generator): Cartesian k-space undersampling
  (:func:`cartesian_mask`: a fully sampled low-frequency centre plus random phase-encoding lines,
  as the masks of fastMRI) with complex noise and the zero-filled reconstruction; 4×
  super-resolution by block means with nearest-neighbour upsampling; additive rain streaks,
  clipped to ``[0, 1]`` (sparse, positive, not Gaussian, and nonlinear through the clip).
  Each returns ``mu``, the degraded image in image space, the start of every restoration family.
- **Model.** :func:`score_network`: one small ``diffusers.UNet2DModel`` (inputs ``x_t`` and
  ``mu``; the same architecture for every family), preconditioned as in EDM
  (:func:`preconditioning`, :func:`denoise`) to estimate ``E[x0 | x_t, mu]`` under the family's
  own marginal ``x_t = a_t x0 + b_t mu + √v_t ξ`` ([book: eq-ch11-affine]); :func:`denoising_loss`
  is each family's denoising score-matching objective and :func:`learned_score` turns the
  denoiser into ``score(x, t, mu) = -(x - a_t D - b_t mu)/v_t`` for :func:`pfode.sde.euler_maruyama`.
"""
from __future__ import annotations

import math
from typing import Callable, Optional

import numpy as np
import torch

from ._checks import as_float, check_choice, check_generator, check_int, check_positive, require
from .sde import LinearSDE

KINDS = ("kspace", "sr", "rain")
"""The degradations of :func:`degrade`."""


def _gen(seed) -> np.random.Generator:
    return np.random.default_rng(check_int(seed, "seed", lower=0))


def _grid(size: int):
    c = (np.arange(size) + 0.5) / size * 2 - 1                       # pixel centres in [-1, 1]
    return np.meshgrid(c, c, indexing="ij")


def _ellipse(Y, X, cy, cx, ay, ax, phi):
    cs, sn = math.cos(phi), math.sin(phi)
    u = ((X - cx) * cs + (Y - cy) * sn) / ax
    w = (-(X - cx) * sn + (Y - cy) * cs) / ay
    return (u * u + w * w) <= 1.0


def ellipse_phantoms(num: int, size: int = 32, *, seed: int = 0) -> torch.Tensor:
    """``num`` random Shepp–Logan-style phantoms, ``(num, 1, size, size)`` in ``[0, 1]``.

    A bright skull (an ellipse of intensity 1 with semi-axes 0.70–0.90 and 0.55–0.75, tilted by
    up to ±0.3 rad), a darker brain inside it (intensity 0.2–0.4, 0.85–0.92 of the skull), and
    3–6 inner ellipses of random centre, semi-axes 0.05–0.3, orientation and signed intensity
    ±0.1–0.4 added to the brain; clipped to ``[0, 1]``. Deterministic in ``(num, size, seed)``.
    """
    num, size = check_int(num, "num"), check_int(size, "size", lower=8)
    g = _gen(seed)
    Y, X = _grid(size)
    out = np.zeros((num, size, size))
    for i in range(num):
        ay, ax = g.uniform(0.70, 0.90), g.uniform(0.55, 0.75)
        phi = g.uniform(-0.3, 0.3)
        img = 1.0 * _ellipse(Y, X, 0, 0, ay, ax, phi)
        s = g.uniform(0.85, 0.92)
        brain = _ellipse(Y, X, 0, 0, s * ay, s * ax, phi)
        img[brain] = g.uniform(0.2, 0.4)
        for _ in range(g.integers(3, 7)):
            r = g.uniform(0, 0.5)
            th = g.uniform(0, 2 * math.pi)
            e = _ellipse(Y, X, r * math.sin(th) * ay, r * math.cos(th) * ax, g.uniform(0.05, 0.3),
                         g.uniform(0.05, 0.3), g.uniform(0, math.pi)) & brain
            img[e] += g.choice([-1, 1]) * g.uniform(0.1, 0.4)
        out[i] = np.clip(img, 0, 1)
    return torch.tensor(out[:, None], dtype=torch.float32)


def polygon_phantoms(num: int, size: int = 32, *, seed: int = 0) -> torch.Tensor:
    """An out-of-domain shape family: 3–6 random axis-free rectangles and triangles of intensity
    0.2–1 on a dark background (0–0.1), overlapping by maximum, ``(num, 1, size, size)``."""
    num, size = check_int(num, "num"), check_int(size, "size", lower=8)
    g = _gen(seed)
    Y, X = _grid(size)
    out = np.zeros((num, size, size))
    for i in range(num):
        img = np.full((size, size), g.uniform(0, 0.1))
        for _ in range(g.integers(3, 7)):
            cy, cx, th = g.uniform(-0.6, 0.6), g.uniform(-0.6, 0.6), g.uniform(0, math.pi)
            cs, sn = math.cos(th), math.sin(th)
            u, w = (X - cx) * cs + (Y - cy) * sn, -(X - cx) * sn + (Y - cy) * cs
            hy, hx = g.uniform(0.1, 0.4), g.uniform(0.1, 0.4)
            if g.random() < 0.5:
                shape = (np.abs(u) <= hx) & (np.abs(w) <= hy)                  # rectangle
            else:
                shape = (w >= -hy) & (np.abs(u) <= hx * (hy - w) / (2 * hy))   # triangle
            img = np.where(shape, np.maximum(img, g.uniform(0.2, 1.0)), img)
        out[i] = img
    return torch.tensor(out[:, None], dtype=torch.float32)


def shepp_logan(size: int = 32) -> torch.Tensor:
    """``skimage.data.shepp_logan_phantom()`` reduced to ``size × size`` with anti-aliasing and
    scaled to ``[0, 1]``, ``(1, 1, size, size)``."""
    size = check_int(size, "size", lower=8)
    phantom = require("skimage.data", "shepp_logan").shepp_logan_phantom()
    img = require("skimage.transform", "shepp_logan").resize(phantom, (size, size), anti_aliasing=True)
    return torch.tensor(img / img.max(), dtype=torch.float32)[None, None]


def photo_patches(names, num: int, size: int = 32, *, crop: int = 64, seed: int = 0) -> torch.Tensor:
    """Grey-scale patches of the photographs ``names`` (:func:`pfode.data.patches`: ``crop``
    squares averaged down to ``size``), the channel mean scaled to ``[0, 1]``."""
    from . import data
    rgb = data.patches(names, num, size, crop=crop, seed=seed)                # (num, 3 s^2) in [-1, 1]
    grey = (rgb.reshape(num, size, size, 3).mean(-1) + 1) / 2
    return torch.tensor(grey[:, None], dtype=torch.float32)


# ---- degradations ------------------------------------------------------------------------------
def cartesian_mask(size: int, acceleration: int, *, center: Optional[int] = None,
                   generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """A Cartesian undersampling mask of ``size`` phase-encoding lines (bool, ``(size,)``): the
    ``center`` lowest frequencies (default ``size // (2 acceleration)``, at least 1) and random
    other lines, ``size // acceleration`` in all (fastMRI's random mask, in FFT order)."""
    size = check_int(size, "size", lower=2)
    acceleration = check_int(acceleration, "acceleration", lower=1, upper=size)
    check_generator(generator)
    keep = size // acceleration
    center = max(1, keep // 2) if center is None else check_int(center, "center", upper=keep)
    freqs = np.fft.fftfreq(size) * size
    order = np.argsort(np.abs(freqs), kind="stable")                           # lowest |k| first
    mask = torch.zeros(size, dtype=torch.bool)
    mask[torch.as_tensor(order[:center])] = True
    rest = torch.as_tensor(order[center:])
    pick = torch.randperm(len(rest), generator=generator)[:keep - center]
    mask[rest[pick]] = True
    return mask


def _rain_layer(shape, generator, density: float):
    """Streaks three rows down per column right: Poisson(density · H W / 64) per image, each from a
    uniform start, of length H/8 to H/3 pixels and intensity 0.3–0.7, summed (vectorised)."""
    N, _, H, W = shape
    counts = torch.poisson(torch.full((N,), density * H * W / 64.0), generator=generator).long()
    K = int(counts.sum())
    img = torch.repeat_interleave(torch.arange(N), counts)
    r0 = torch.randint(0, H, (K,), generator=generator)
    c0 = torch.randint(0, W, (K,), generator=generator)
    length = torch.randint(H // 8, H // 3 + 1, (K,), generator=generator)
    a = 0.3 + 0.4 * torch.rand(K, generator=generator)
    j = torch.arange(H // 3 + 1)
    rows, cols = r0[:, None] + j, c0[:, None] + j // 3
    ok = (j < length[:, None]) & (rows < H) & (cols < W)
    flat = (img[:, None] * H * W + rows * W + cols)[ok]
    out = torch.zeros(N * H * W)
    out.index_add_(0, flat, a[:, None].expand_as(ok)[ok])
    return out.reshape(shape)


def degrade(x: torch.Tensor, kind: str, *, generator: torch.Generator, acceleration: int = 4,
            factor: int = 4, sigma: float = 0.01, density: float = 1.0) -> torch.Tensor:
    """The degraded image ``mu`` of clean images ``x`` ``(N, 1, s, s)`` in ``[0, 1]``.

    - ``"kspace"``: orthonormal 2-D FFT, one :func:`cartesian_mask` per image over the rows
      (phase encoding), complex noise of std ``sigma``, zero-filled inverse (real part);
    - ``"sr"``: ``factor × factor`` block means plus noise, nearest-neighbour upsampling;
    - ``"rain"``: streaks three rows down per column right, Poisson(``density · s²/64``) per
      image, intensity 0.3–0.7 each, added, plus noise, clipped to ``[0, 1]``.
    """
    check_choice(kind, "kind", KINDS)
    check_generator(generator)
    if generator is None:
        raise ValueError("generator is required (every degradation is seeded)")
    if not isinstance(x, torch.Tensor) or x.dim() != 4 or x.shape[1] != 1 or x.shape[2] != x.shape[3]:
        raise ValueError(f"x must be a tensor of shape (N, 1, s, s), got "
                         f"{tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__}")
    check_positive(sigma, "sigma", allow_zero=True)
    N, _, s, _ = x.shape
    noise = torch.randn(x.shape, generator=generator, dtype=x.dtype)
    if kind == "kspace":
        k = torch.fft.fft2(x, norm="ortho")
        masks = torch.stack([cartesian_mask(s, acceleration, generator=generator) for _ in range(N)])
        k = k + sigma * torch.complex(noise, torch.randn(x.shape, generator=generator, dtype=x.dtype))
        k = k * masks[:, None, :, None]
        return torch.fft.ifft2(k, norm="ortho").real
    if kind == "sr":
        factor = check_int(factor, "factor", lower=2)
        if s % factor:
            raise ValueError(f"factor = {factor} must divide the image side {s}")
        low = torch.nn.functional.avg_pool2d(x, factor)
        low = low + sigma * noise[:, :, :s // factor, :s // factor]
        return low.repeat_interleave(factor, 2).repeat_interleave(factor, 3)
    check_positive(density, "density")
    return (x + _rain_layer(x.shape, generator, density) + sigma * noise).clamp(0, 1)


# ---- the network, its objective and its score --------------------------------------------------
def score_network(size: int = 32, channels=(16, 32, 32)):
    """The conditional network ``F`` of the preconditioned denoiser (:func:`denoise`), the same for
    every family: a ``diffusers.UNet2DModel`` with inputs ``(c_in (y - mu), mu)`` (two channels), ``len(channels)`` resolution levels without
    attention, one output channel, and the time ``t/T`` embedded as diffusers' timestep
    ``1000 t/T``."""
    UNet2DModel = require("diffusers", "score_network").UNet2DModel
    size = check_int(size, "size", lower=8)
    channels = tuple(check_int(c, "channels") for c in channels)
    if size % 2 ** (len(channels) - 1):
        raise ValueError(f"size {size} must be divisible by 2^{len(channels) - 1} for {len(channels)} levels")
    return UNet2DModel(sample_size=size, in_channels=2, out_channels=1, block_out_channels=channels,
                       layers_per_block=1, down_block_types=("DownBlock2D",) * len(channels),
                       up_block_types=("UpBlock2D",) * len(channels), norm_num_groups=8)


def train_times(process: LinearSDE, num: int, generator: torch.Generator, t_min: float = 1e-3) -> torch.Tensor:
    """Training times uniform on ``[t_min T, t_start]`` (the bridge stops ``eps`` before ``T``)."""
    t_hi = process.t_start()
    return t_min * process.T + (t_hi - t_min * process.T) * torch.rand(num, generator=generator, dtype=torch.float64)


SIGMA_DATA = 0.25
"""The scale of ``x0 - mu`` assumed by the preconditioning (pixel values in ``[0, 1]``)."""


def preconditioning(process: LinearSDE, t, sigma_data: float = SIGMA_DATA) -> dict:
    r"""EDM's preconditioning (Karras et al. 2022) for an affine marginal.

    With ``y = (x_t - b_t mu)/a_t = x0 + σ_t ξ``, ``σ_t = √v_t / a_t``, the denoiser is
    ``D = mu + c_skip (y - mu) + c_out F(c_in (y - mu), mu, t)`` with
    ``c_skip = σ_d²/(σ² + σ_d²)``, ``c_out = σ σ_d/√(σ² + σ_d²)``, ``c_in = 1/√(σ² + σ_d²)``:
    the network's input and target have unit scale at every ``t``. Returns tensors
    ``a, b, v, sigma, c_skip, c_out, c_in`` shaped ``(N, 1, 1, 1)`` for ``t`` of shape ``(N,)``.
    """
    t = torch.as_tensor(t, dtype=torch.float64).reshape(-1)
    abv = torch.tensor([process.coefficients(float(ti)) for ti in t], dtype=torch.float64)
    a, b, v = abv[:, 0], abv[:, 1], abv[:, 2]
    sig = v.sqrt() / a
    sd2 = sigma_data ** 2
    out = dict(a=a, b=b, v=v, sigma=sig, c_skip=sd2 / (sig ** 2 + sd2),
               c_out=sig * sigma_data / (sig ** 2 + sd2).sqrt(), c_in=1 / (sig ** 2 + sd2).sqrt())
    return {k: val.reshape(-1, 1, 1, 1) for k, val in out.items()}


def denoise(net, process: LinearSDE, xt: torch.Tensor, mu: torch.Tensor, t: torch.Tensor,
            sigma_data: float = SIGMA_DATA) -> torch.Tensor:
    """The preconditioned denoiser ``D(x_t, mu, t) ≈ E[x0 | x_t, mu]`` of :func:`preconditioning`,
    images ``(N, 1, s, s)``, in the network's dtype."""
    c = preconditioning(process, t, sigma_data)
    dtype = next(net.parameters()).dtype
    c = {k: v.to(dtype=dtype, device=xt.device) for k, v in c.items()}
    y_mu = (xt - c["b"] * mu) / c["a"] - mu
    F = net(torch.cat([c["c_in"] * y_mu, mu], 1).to(dtype), (1000 * torch.as_tensor(t) / process.T).to(dtype)).sample
    return mu + c["c_skip"] * y_mu + c["c_out"] * F


def denoising_loss(net, process: LinearSDE, x0: torch.Tensor, mu: torch.Tensor,
                   generator: torch.Generator, sigma_data: float = SIGMA_DATA) -> torch.Tensor:
    r"""The family's denoising score-matching loss in EDM's weighting: ``t`` from
    :func:`train_times`, ``x_t = a_t x0 + b_t mu + √v_t ξ`` (the family's own marginal), and
    ``E[‖D(x_t) - x0‖² / c_out²]``, the mean squared error of a unit-scale network target.
    The score is ``-(x_t - a_t D - b_t mu)/v_t`` (:func:`learned_score`)."""
    t = train_times(process, x0.shape[0], generator)
    c = preconditioning(process, t, sigma_data)
    xi = torch.randn(x0.shape, generator=generator, dtype=x0.dtype)
    xt = c["a"].to(x0.dtype) * x0 + c["b"].to(x0.dtype) * mu + c["v"].sqrt().to(x0.dtype) * xi
    D = denoise(net, process, xt, mu, t, sigma_data)
    return (((D - x0) / c["c_out"].to(D.dtype)) ** 2).mean()


def learned_score(net, process: LinearSDE, size: int, sigma_data: float = SIGMA_DATA) -> Callable:
    """``score(x, t, mu) = -(x - a_t D - b_t mu)/v_t`` on flattened images ``(B, size²)`` (float64
    in and out, the network in its own dtype, no gradients), for :func:`pfode.sde.euler_maruyama`."""
    def score(x, t, mu):
        t = as_float(t, "t")
        a, b, v = process.coefficients(t)
        B = x.shape[0]
        img = x.reshape(B, 1, size, size).float()
        m = mu.expand(B, -1).reshape(B, 1, size, size).float()
        with torch.no_grad():
            D = denoise(net, process, img, m, torch.full((B,), t, dtype=torch.float64), sigma_data)
        return -(x - a * D.reshape(B, -1).double() - b * mu.expand(B, -1)) / v
    return score


# ---- tasks: training data, training degradations, test conditions -----------------------------
TASKS = {
    "kspace": "Cartesian k-space undersampling x4 and x8 of ellipse phantoms",
    "sr": "4x super-resolution of ellipse phantoms",
    "rain": "rain streaks on grey-scale photograph patches",
}
"""The learned-restoration tasks, by name."""

_TEST_SEED = 10_000          # the test phantoms: a draw disjoint from the training draws


def training_images(task: str, num: int, size: int = 32, *, seed: int = 0) -> torch.Tensor:
    """The fixed training set of ``task``: ellipse phantoms (``"kspace"``, ``"sr"``) or patches of
    the training photographs :data:`pfode.data.TRAIN_IMAGES` (``"rain"``)."""
    from . import data
    check_choice(task, "task", TASKS)
    if task == "rain":
        return photo_patches(data.TRAIN_IMAGES, num, size, crop=2 * size, seed=seed)
    return ellipse_phantoms(num, size, seed=seed)


def degrade_task(x: torch.Tensor, task: str, *, generator: torch.Generator, sigma: float = 0.01) -> torch.Tensor:
    """The training degradation of ``task``; for ``"kspace"`` the acceleration of the batch is 4
    or 8 with equal probability (one model serves both, as fastMRI models do)."""
    check_choice(task, "task", TASKS)
    if task == "kspace":
        acc = 4 if float(torch.rand(1, generator=generator)) < 0.5 else 8
        return degrade(x, "kspace", generator=generator, acceleration=acc, sigma=sigma)
    return degrade(x, task, generator=generator, sigma=sigma)


def test_conditions(task: str, num: int, size: int = 32) -> dict:
    """The evaluation conditions of ``task``: ``name -> (clean images, degradation keywords)``.

    In domain: held-out ellipse phantoms (or patches of the held-out photographs
    :data:`pfode.data.TEST_IMAGES`). Shifts: the Shepp–Logan phantom repeated ``num`` times (the
    independent unit is then the measurement noise), :func:`polygon_phantoms` (another shape
    family), and for rain three times the streak density.
    """
    from . import data
    check_choice(task, "task", TASKS)
    num = check_int(num, "num")
    if task == "rain":
        x = photo_patches(data.TEST_IMAGES, num, size, crop=2 * size, seed=_TEST_SEED)
        return {"in-domain": (x, {}), "heavy rain": (x, {"density": 3.0}),
                "polygons": (polygon_phantoms(num, size, seed=_TEST_SEED), {})}
    shifts = {"in-domain": ellipse_phantoms(num, size, seed=_TEST_SEED),
              "Shepp-Logan": shepp_logan(size).expand(num, -1, -1, -1).clone(),
              "polygons": polygon_phantoms(num, size, seed=_TEST_SEED)}
    if task == "sr":
        return {name: (x, {}) for name, x in shifts.items()}
    return {f"x{acc} {name}": (x, {"acceleration": acc}) for acc in (4, 8) for name, x in shifts.items()}


def measurements(task: str, num: int, size: int = 32, *, sigma: float = 0.01, seed: int = 0) -> dict:
    """Every test condition of ``task`` measured: ``name -> (clean x, degraded mu)``, condition
    ``i`` degraded with a generator seeded ``seed + i``, so every family and every seed restores
    the same measurements (paired comparisons)."""
    seed = check_int(seed, "seed", lower=0)
    out = {}
    for i, (name, (x, kw)) in enumerate(test_conditions(task, num, size).items()):
        out[name] = (x, degrade(x, task, generator=torch.Generator().manual_seed(seed + i), sigma=sigma, **kw))
    return out


def baselines(task: str, mu: torch.Tensor) -> dict:
    """The classical estimates from ``mu``: zero-filling (k-space: ``mu`` itself), bicubic
    interpolation of the block means (super-resolution, ``skimage.transform.resize``, order 3),
    the rainy image and its 3×3 median filter (``scipy.ndimage.median_filter``)."""
    check_choice(task, "task", TASKS)
    if task == "kspace":
        return {"zero-filled": mu}
    if task == "sr":
        resize = require("skimage.transform", "the bicubic baseline").resize
        low = torch.nn.functional.avg_pool2d(mu, 4).numpy()
        s = mu.shape[-1]
        up = np.stack([resize(im[0], (s, s), order=3, mode="edge", anti_aliasing=False) for im in low])
        return {"nearest": mu, "bicubic": torch.tensor(up[:, None], dtype=mu.dtype).clamp(0, 1)}
    from scipy.ndimage import median_filter
    med = np.stack([median_filter(im[0], size=3) for im in mu.numpy()])
    return {"rainy input": mu, "median 3x3": torch.tensor(med[:, None], dtype=mu.dtype)}


def psnr_ssim(x: torch.Tensor, ref: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Per-image PSNR and SSIM (``skimage.metrics``, data range 1, window 7) of ``x`` clipped to
    ``[0, 1]`` against ``ref``, both ``(N, 1, s, s)``."""
    metrics = require("skimage.metrics", "psnr_ssim")
    peak_signal_noise_ratio, structural_similarity = metrics.peak_signal_noise_ratio, metrics.structural_similarity
    x = np.clip(x.detach().cpu().numpy(), 0, 1)
    ref = ref.detach().cpu().numpy()
    p = np.array([peak_signal_noise_ratio(r[0], e[0], data_range=1.0) for r, e in zip(ref, x)])
    s = np.array([structural_similarity(r[0], e[0], data_range=1.0, win_size=7) for r, e in zip(ref, x)])
    return p, s
