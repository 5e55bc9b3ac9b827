"""Real diffusion models from ``diffusers`` as pfode velocity fields.

A flow-matching model of ``diffusers`` (``SD3Transformer2DModel`` of Stable Diffusion 3 / 3.5,
or a ``UNet2DModel`` trained with the same objective) predicts, at noise level ``sigma``,

    model_output = eps - x0,      x_sigma = (1 - sigma) x0 + sigma eps,

which is the book's velocity ``v(x, t) = E[eps - x0 | x_t = x]`` with ``t = sigma``. The check
is ``FlowMatchEulerDiscreteScheduler.step``: ``prev = x + (sigma_next - sigma) * model_output``
is one Euler step of ``dx/dt = v`` from ``t = sigma`` to ``t = sigma_next``. The model takes
``timestep = 1000 * sigma``. So

    v(x, t) = model(x, timestep = 1000 t).

:class:`DiffusersField` wraps a model as ``v(x, t)`` on flattened batches ``(B, n)`` (the
model's sample shape ``(C, H, W)`` is stored), with the conditioning computed once (the
book uses the null / empty prompt, as the instability paper's Appendix E.2 does), and with a
forward-mode derivative ``velocity_jvp`` so that :meth:`pfode.FlowMap.jvp` and
:func:`pfode.directional_instability` work through attention (PyTorch's flash / efficient
attention kernels have no forward-mode rule; the math kernel is used).

:func:`load_pipeline` reads a full pipeline folder in the SD3 / SD3.5 layout
(``model_index.json``, ``transformer/``, ``vae/``, ``scheduler/``, text encoders) from a local
path and returns a :class:`PipelineField`: the field in latent space, the VAE encode/decode
maps (inversion runs on latents, errors are measured in pixels) and the scheduler's time
grid. The empty-prompt embeddings are read from ``null_conditioning.pt`` in the folder when
present (a folder without text encoders, e.g. the test pipeline), otherwise computed once with
the pipeline's text encoders and ``encode_prompt("")``.

``diffusers`` is imported inside the functions only, so ``import pfode`` stays fast.
"""
from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Optional, Sequence

import torch

__all__ = [
    "DiffusersField",
    "PipelineField",
    "NULL_CONDITIONING_FILE",
    "shift_sigma",
    "schedule_ts",
    "null_conditioning",
    "load_transformer",
    "load_pipeline",
    "save_null_conditioning",
    "math_attention",
    "schedule_map",
]

NULL_CONDITIONING_FILE = "null_conditioning.pt"
"""File in a pipeline folder holding the empty-prompt embeddings (``dict`` of tensors)."""


def math_attention():
    """Context manager selecting PyTorch's math attention kernel (forward-mode AD works)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel
    return sdpa_kernel(SDPBackend.MATH)


def shift_sigma(sigma, shift: float = 1.0):
    """The time shift of SD3: ``sigma' = shift sigma / (1 + (shift - 1) sigma)`` (identity at 1)."""
    return shift * sigma / (1 + (shift - 1) * sigma)


def schedule_ts(scheduler, steps: int, **set_timesteps_kwargs) -> torch.Tensor:
    """Decreasing time grid ``t_0 = 1 > ... > t_N = 0`` of a flow-matching scheduler, float64.

    ``scheduler.set_timesteps(steps)`` followed by ``scheduler.sigmas`` (the shift, if any, is
    already applied; the last sigma is 0). Pass it to ``pfode.generate(field, z,
    method="euler", ts=ts)``; the reversed grid ``ts.flip(0)`` is the inversion grid. Extra
    keyword arguments go to ``set_timesteps`` (e.g. ``mu`` for dynamic shifting).
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    scheduler.set_timesteps(steps, **set_timesteps_kwargs)
    ts = scheduler.sigmas.detach().to("cpu", torch.float64).clone()
    if abs(float(ts[0]) - 1.0) > 1e-6 or float(ts[-1]) != 0.0:
        raise ValueError(f"scheduler sigmas run from {float(ts[0])} to {float(ts[-1])}, "
                         "not from 1 to 0: not a flow-matching schedule with sigma_max = 1")
    ts[0] = 1.0
    return ts


def schedule_map(field, ts, method: str = "euler"):
    """The discrete flow map on an explicit grid ``ts`` (e.g. :func:`schedule_ts`), with ``.jvp``.

    A :class:`pfode.FlowMap` whose step grid is ``ts`` instead of a uniform one: ``M(z)`` runs
    ``method`` over ``ts`` and ``M.jvp(z, u)`` is the exact derivative of that discrete map
    (tangent equation on the same grid). Decreasing ``ts``: generation; increasing: inversion.
    """
    from .solvers import FlowMap, _check_grid

    ts = _check_grid(ts, None)

    class _GridMap(FlowMap):
        def _ts(self):
            return ts

    return _GridMap(field, float(ts[0]), float(ts[-1]), method=method)


def null_conditioning(model, batch: int = 1, dtype=None) -> dict:
    """All-zero conditioning for an ``SD3Transformer2DModel`` trained unconditionally.

    ``encoder_hidden_states`` of shape ``(batch, 1, joint_attention_dim)`` and
    ``pooled_projections`` of shape ``(batch, pooled_projection_dim)``; ``{}`` for a UNet.
    """
    cfg = model.config
    if not hasattr(cfg, "joint_attention_dim"):
        return {}
    dtype = dtype or next(model.parameters()).dtype
    return {"encoder_hidden_states": torch.zeros(batch, 1, cfg.joint_attention_dim, dtype=dtype),
            "pooled_projections": torch.zeros(batch, cfg.pooled_projection_dim, dtype=dtype)}


class DiffusersField:
    """``v(x, t) = model(x, timestep=1000 t)`` on flattened batches ``(B, n)``.

    Parameters
    ----------
    model:
        ``SD3Transformer2DModel`` (called with ``hidden_states``, ``encoder_hidden_states``,
        ``pooled_projections``, ``timestep``) or ``UNet2DModel`` (called as
        ``model(sample, timestep)``), predicting ``eps - x0``.
    sample_shape:
        ``(C, H, W)`` of one sample (latent or pixel); default from the model config.
    conditioning:
        Keyword arguments of the transformer with batch size 1 (expanded to the batch), e.g.
        the null-prompt ``encoder_hidden_states`` and ``pooled_projections``. Default: zeros
        (:func:`null_conditioning`).
    chunk:
        Evaluate the model on at most ``chunk`` samples at a time (memory); None = all.

    The input may be float64 (the solvers' default): it is cast to the model's dtype and the
    output cast back. ``t`` is a float or a tensor of shape ``()`` / ``(B,)``.
    """

    def __init__(self, model, sample_shape: Optional[Sequence[int]] = None,
                 conditioning: Optional[dict] = None, chunk: Optional[int] = None):
        self.model = model.eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        cfg = model.config
        self.is_unet = not hasattr(cfg, "joint_attention_dim")
        if sample_shape is None:
            size = cfg.sample_size
            size = (size, size) if isinstance(size, int) else tuple(size)
            sample_shape = (cfg.in_channels, *size)
        self.sample_shape = tuple(int(s) for s in sample_shape)
        self.n = 1
        for s in self.sample_shape:
            self.n *= s
        self.dtype = next(model.parameters()).dtype
        self.device = next(model.parameters()).device
        if conditioning is None:
            conditioning = null_conditioning(model, 1, self.dtype)
        self.conditioning = {k: v.to(self.device, self.dtype) for k, v in conditioning.items()}
        self.chunk = chunk

    def _model(self, x: torch.Tensor, timestep: torch.Tensor) -> torch.Tensor:
        B = x.shape[0]
        if self.is_unet:
            return self.model(x, timestep, return_dict=False)[0]
        cond = {k: v.expand(B, *v.shape[1:]) for k, v in self.conditioning.items()}
        return self.model(hidden_states=x, timestep=timestep, return_dict=False, **cond)[0]

    def __call__(self, x: torch.Tensor, t) -> torch.Tensor:
        if x.ndim != 2 or x.shape[1] != self.n:
            raise ValueError(f"x must have shape (B, {self.n}), got {tuple(x.shape)}")
        B = x.shape[0]
        t = torch.as_tensor(t, dtype=torch.float64)
        timestep = (1000.0 * t).expand(B).to(self.device, torch.float32)
        xs = x.to(self.device, self.dtype).reshape(B, *self.sample_shape)
        chunk = self.chunk or B
        with math_attention():
            outs = [self._model(xs[i:i + chunk], timestep[i:i + chunk]) for i in range(0, B, chunk)]
        out = torch.cat(outs, 0) if len(outs) > 1 else outs[0]
        return out.reshape(B, self.n).to(x.device, x.dtype)

    velocity = __call__

    def velocity_jvp(self, x: torch.Tensor, t, w: torch.Tensor):
        """``(v(x, t), J_v(x, t) w)`` by forward-mode AD (math attention kernel)."""
        with math_attention():
            return torch.func.jvp(lambda y: self(y, t), (x,), (w,))

    def to_images(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, n)`` -> ``(B, C, H, W)``."""
        return x.reshape(x.shape[0], *self.sample_shape)

    def flatten(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W)`` -> ``(B, n)``."""
        return images.reshape(images.shape[0], -1)

    def __repr__(self) -> str:
        return (f"DiffusersField({type(self.model).__name__}, sample_shape={self.sample_shape}, "
                f"{self.dtype})")


def _check_local(path) -> Path:
    """A local folder, or a clear error at once (no network: HF_HUB_OFFLINE=1)."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    p = Path(os.fspath(path)).expanduser()
    if not p.is_dir():
        hint = ""
        if "/" in str(path) and not str(path).startswith((".", "/", "~")):
            hint = (" It looks like a Hugging Face hub id; nothing is downloaded here. Download "
                    "the pipeline elsewhere (e.g. `huggingface-cli download "
                    f"{path} --local-dir DIR`) and pass DIR.")
        raise FileNotFoundError(f"pipeline folder {str(path)!r} does not exist.{hint}")
    return p


def load_transformer(path, dtype=torch.float32):
    """``SD3Transformer2DModel`` (or ``UNet2DModel``) saved with ``save_pretrained`` at ``path``."""
    p = _check_local(path)
    cfg = json.loads((p / "config.json").read_text()) if (p / "config.json").exists() else {}
    import diffusers
    cls = getattr(diffusers, cfg.get("_class_name", "SD3Transformer2DModel"))
    return cls.from_pretrained(str(p), torch_dtype=dtype, low_cpu_mem_usage=False).eval()


def save_null_conditioning(path, encoder_hidden_states: torch.Tensor,
                           pooled_projections: torch.Tensor) -> Path:
    """Store the empty-prompt embeddings in a pipeline folder (read by :func:`load_pipeline`)."""
    out = Path(path) / NULL_CONDITIONING_FILE
    torch.save({"encoder_hidden_states": encoder_hidden_states.detach().cpu(),
                "pooled_projections": pooled_projections.detach().cpu()}, out)
    return out


class PipelineField:
    """A latent-space field of a full pipeline, with its VAE and scheduler.

    Attributes: ``field`` (:class:`DiffusersField` on latents), ``vae``, ``scheduler``,
    ``latent_shape`` ``(C, h, w)``. Methods: :meth:`encode` pixels -> flattened latents,
    :meth:`decode` back, :meth:`ts` the scheduler's generation grid.
    """

    def __init__(self, transformer, vae, scheduler, conditioning: dict, image_size: int,
                 chunk: Optional[int] = None):
        self.vae, self.scheduler = vae.eval(), scheduler
        for p in self.vae.parameters():
            p.requires_grad_(False)
        f = 2 ** (len(vae.config.block_out_channels) - 1)
        if image_size % f:
            raise ValueError(f"image_size {image_size} is not a multiple of the VAE factor {f}")
        self.image_size = image_size
        self.latent_shape = (vae.config.latent_channels, image_size // f, image_size // f)
        self.field = DiffusersField(transformer, self.latent_shape, conditioning, chunk=chunk)
        self.scaling_factor = float(vae.config.scaling_factor)
        self.shift_factor = float(getattr(vae.config, "shift_factor", None) or 0.0)

    @torch.no_grad()
    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Images ``(B, 3, H, W)`` in ``[-1, 1]`` -> latents ``(B, n)`` (posterior mean, scaled)."""
        dt = next(self.vae.parameters()).dtype
        lat = self.vae.encode(images.to(dt)).latent_dist.mean
        lat = (lat - self.shift_factor) * self.scaling_factor
        return lat.reshape(lat.shape[0], -1).to(images.dtype)

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Latents ``(B, n)`` -> images ``(B, 3, H, W)`` (unclipped)."""
        dt = next(self.vae.parameters()).dtype
        lat = latents.to(dt).reshape(latents.shape[0], *self.latent_shape)
        lat = lat / self.scaling_factor + self.shift_factor
        return self.vae.decode(lat, return_dict=False)[0].to(latents.dtype)

    def ts(self, steps: int) -> torch.Tensor:
        """The scheduler's decreasing grid from 1 to 0 (shift applied), see :func:`schedule_ts`."""
        return schedule_ts(self.scheduler, steps)

    def __repr__(self) -> str:
        return f"PipelineField({self.field!r}, latent_shape={self.latent_shape})"


def load_pipeline(path, *, dtype=torch.float32, image_size: Optional[int] = None,
                  device="cpu", chunk: Optional[int] = None) -> PipelineField:
    """Load an SD3 / SD3.5 pipeline folder from a local ``path`` (no download).

    Reads ``transformer/``, ``vae/`` and ``scheduler/`` with ``from_pretrained``. The null
    (empty-prompt) conditioning comes from ``path/null_conditioning.pt`` when present;
    otherwise the whole pipeline is loaded once (``StableDiffusion3Pipeline.from_pretrained``,
    text encoders included), ``encode_prompt("")`` is computed, the embeddings are cached in
    that file when the folder is writable, and the text encoders are freed.

    ``image_size`` defaults to ``transformer.config.sample_size * vae factor``.
    """
    p = _check_local(path)
    index = p / "model_index.json"
    if not index.exists():
        raise FileNotFoundError(f"{str(p)!r} has no model_index.json: not a pipeline folder")
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, SD3Transformer2DModel

    cls = json.loads(index.read_text()).get("_class_name", "")
    if "Flux" in cls:
        raise NotImplementedError(
            f"{cls}: the FLUX layout (packed 2x2 latents, image/text position ids, guidance "
            "embedding) is not wrapped; SD3 / SD3.5 folders are")
    transformer = SD3Transformer2DModel.from_pretrained(str(p), subfolder="transformer", low_cpu_mem_usage=False,
                                                        torch_dtype=dtype).to(device)
    vae = AutoencoderKL.from_pretrained(str(p), subfolder="vae", torch_dtype=dtype,
                                        low_cpu_mem_usage=False).to(device)
    scheduler = FlowMatchEulerDiscreteScheduler.from_pretrained(str(p), subfolder="scheduler")
    cache = p / NULL_CONDITIONING_FILE
    if cache.exists():
        cond = torch.load(cache, map_location="cpu", weights_only=True)
    else:
        from diffusers import StableDiffusion3Pipeline
        pipe = StableDiffusion3Pipeline.from_pretrained(str(p), transformer=transformer, vae=vae,
                                                        scheduler=scheduler, torch_dtype=dtype)
        pipe.to(device)
        with torch.no_grad():
            emb, _, pooled, _ = pipe.encode_prompt(prompt="", prompt_2="", prompt_3="",
                                                   do_classifier_free_guidance=False,
                                                   device=device)
        cond = {"encoder_hidden_states": emb, "pooled_projections": pooled}
        del pipe
        if os.access(p, os.W_OK):
            save_null_conditioning(p, emb, pooled)
    f = 2 ** (len(vae.config.block_out_channels) - 1)
    size = image_size or transformer.config.sample_size * f
    return PipelineField(transformer, vae, scheduler, cond, size, chunk=chunk)
