"""Real diffusion models from ``diffusers`` as pfode velocity fields.

A flow-matching model of ``diffusers`` (``SD3Transformer2DModel`` of Stable Diffusion 3 / 3.5,
or a ``UNet2DModel`` trained with the same objective) predicts, at noise level ``sigma``,

    model_output = eps - x0,      x_sigma = (1 - sigma) x0 + sigma eps,

which is the book's velocity ``v(x, t) = E[eps - x0 | x_t = x]`` with ``t = sigma``
([book: eq-ch2-velocity]; the argument is [book: prop-diffusers-velocity]). The check
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

FLUX (``FluxTransformer2DModel``, FLUX.1-dev / -schnell) is the same flow-matching model with
``t = sigma``, but it works on *packed* latents: a latent ``(C, H, W)`` is cut into 2x2 patches,
giving a sequence ``((H/2)(W/2), 4C)`` (``FluxPipeline._pack_latents``), with position ids
``img_ids`` (row, column of each patch) and ``txt_ids`` (zeros) for the rotary embedding, and,
for guidance-distilled models (FLUX.1-dev), a ``guidance`` scale embedded like the time. The
pipeline calls the transformer with ``timestep = sigma`` (it passes ``t / 1000`` where its
``t = 1000 sigma``; the transformer multiplies by 1000 itself). :class:`FluxField` packs,
calls and unpacks, so its ``v(x, t)`` lives on the flattened *unpacked* latent ``(B, C H W)``
like every other field. :func:`load_pipeline` recognises a ``FluxPipeline`` folder.

``diffusers`` is imported inside the functions only, so ``import pfode`` stays fast.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Optional, Sequence

import torch

__all__ = [
    "DiffusersField",
    "FluxField",
    "PipelineField",
    "NULL_CONDITIONING_FILE",
    "shift_sigma",
    "schedule_ts",
    "null_conditioning",
    "load_transformer",
    "load_pipeline",
    "save_null_conditioning",
    "math_attention",
    "attention_for",
    "schedule_map",
    "pack_latents",
    "unpack_latents",
    "latent_image_ids",
    "flux_mu",
]

NULL_CONDITIONING_FILE = "null_conditioning.pt"
"""File in a pipeline folder holding the empty-prompt embeddings (``dict`` of tensors)."""



def require_diffusers():
    """The ``diffusers`` module, or an ImportError saying how to install it: it is an optional
    dependency of pfode (``pip install 'pfode[diffusers]'``; ``make venv`` installs it)."""
    from ._checks import require
    return require("diffusers", "this part of pfode.diffusers_field")

def math_attention():
    """Context manager selecting PyTorch's math attention kernel (forward-mode AD works)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel
    return sdpa_kernel(SDPBackend.MATH)


def carries_tangent(x: torch.Tensor) -> bool:
    """Whether ``x`` carries a forward-mode tangent: a ``torch.func`` transform's wrapped
    tensor (jvp, vmap, grad) or a dual tensor of ``torch.autograd.forward_ad``."""
    from ._checks import _under_vmap
    if _under_vmap(x):
        return True
    from torch.autograd import forward_ad
    return forward_ad.unpack_dual(x).tangent is not None


def attention_for(x: torch.Tensor):
    """The attention kernels for a model call on ``x``: the math kernel when ``x`` carries a
    forward-mode tangent (the fused flash / memory-efficient kernels have no forward-mode
    rule), PyTorch's default choice otherwise (the cost of the math kernel against the default
    is measured in ``benchmarks/bench_attention.py``)."""
    import contextlib
    return math_attention() if carries_tangent(x) else contextlib.nullcontext()


def shift_sigma(sigma, shift: float = 1.0):
    """The time shift of SD3: ``sigma' = shift sigma / (1 + (shift - 1) sigma)`` (identity at 1).

    The shift of [book: eq-sd3-shift].
    """
    return shift * sigma / (1 + (shift - 1) * sigma)


def schedule_ts(scheduler, steps: int, **set_timesteps_kwargs) -> torch.Tensor:
    """Decreasing time grid ``t_0 = 1 > ... > t_N = 0`` of a flow-matching scheduler, float64.

    ``scheduler.set_timesteps(steps)`` followed by ``scheduler.sigmas`` (the shift, if any, is
    already applied; the last sigma is 0). Pass it to ``pfode.generate(field, z,
    method="euler", ts=ts)``; the reversed grid ``ts.flip(0)`` is the inversion grid. Extra
    keyword arguments go to ``set_timesteps`` (e.g. ``mu`` for dynamic shifting).
    """
    from ._checks import check_int
    check_int(steps, "steps")
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
    from .grid import check_grid
    from .solvers import FlowMap

    ts = check_grid(ts)
    return FlowMap(field, float(ts[0]), float(ts[-1]), method=method, ts=ts)


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
        the prompt's ``encoder_hidden_states`` and ``pooled_projections``. Default: zeros
        (:func:`null_conditioning`).
    chunk:
        Evaluate the model on at most ``chunk`` samples at a time (memory); None = all.
    guidance_scale, negative_conditioning:
        Classifier-free guidance as ``StableDiffusion3Pipeline`` applies it,
        ``v = v_neg + w (v_cond - v_neg)`` with ``w = guidance_scale`` and ``v_neg`` the field
        under ``negative_conditioning`` (the pipeline's default negative prompt is the empty
        one). Still a velocity field, so inversion and its derivatives apply to it unchanged.
        None (or 1) is no guidance. Unlike the pipeline, a scale below 1 is applied too.

    The input may be float64 (the solvers' default): it is cast to the model's dtype and the
    output cast back. ``t`` is a float or a tensor of shape ``()`` / ``(B,)``. The attention
    kernel is PyTorch's default, and the math kernel under forward-mode AD
    (:func:`attention_for`).
    """

    def __init__(self, model, sample_shape: Optional[Sequence[int]] = None,
                 conditioning: Optional[dict] = None, chunk: Optional[int] = None,
                 guidance_scale: Optional[float] = None,
                 negative_conditioning: Optional[dict] = None):
        from ._checks import check_int
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
        self.conditioning = self._to_model(conditioning)
        if chunk is not None:
            check_int(chunk, "chunk")
        self.chunk = chunk
        self.cfg_scale = self._guidance(guidance_scale, negative_conditioning)
        self.negative_conditioning = (None if self.cfg_scale is None else
                                      self._to_model(negative_conditioning))

    def _to_model(self, conditioning: dict) -> dict:
        return {k: v.to(self.device, self.dtype) for k, v in conditioning.items()}

    def _guidance(self, guidance_scale, negative_conditioning) -> Optional[float]:
        """The classifier-free guidance scale in use (None: none), checked."""
        if guidance_scale is None:
            if negative_conditioning is not None:
                raise ValueError("negative_conditioning needs a guidance_scale")
            return None
        from ._checks import as_float
        w = as_float(guidance_scale, "guidance_scale")
        if not math.isfinite(w):
            raise ValueError(f"guidance_scale must be finite, got {w}")
        if self.is_unet:
            raise ValueError("guidance_scale needs a text-conditioned transformer, not a UNet2DModel")
        if negative_conditioning is None:
            raise ValueError("guidance_scale needs negative_conditioning (e.g. the empty "
                             "prompt's embeddings)")
        if w == 1.0:
            return None
        shapes = {k: tuple(v.shape) for k, v in self.conditioning.items()}
        neg = {k: tuple(v.shape) for k, v in negative_conditioning.items()}
        if shapes != neg:
            raise ValueError(f"negative_conditioning must have the shapes of conditioning, "
                             f"{shapes}; got {neg}")
        return w

    timestep_scale = 1000.0
    """The model's ``timestep`` is ``timestep_scale * t``."""

    def _model(self, x: torch.Tensor, timestep: torch.Tensor, cond: dict) -> torch.Tensor:
        B = x.shape[0]
        if self.is_unet:
            return self.model(x, timestep, return_dict=False)[0]
        cond = {k: v.expand(B, *v.shape[1:]) for k, v in cond.items()}
        return self.model(hidden_states=x, timestep=timestep, return_dict=False, **cond)[0]

    def _guided(self, x: torch.Tensor, timestep: torch.Tensor) -> torch.Tensor:
        if self.cfg_scale is None:
            return self._model(x, timestep, self.conditioning)
        B = x.shape[0]
        both = {k: torch.cat([self.negative_conditioning[k].expand(B, *v.shape[1:]),
                              v.expand(B, *v.shape[1:])]) for k, v in self.conditioning.items()}
        v_neg, v_cond = self._model(torch.cat([x, x]), torch.cat([timestep, timestep]), both).chunk(2)
        return v_neg + self.cfg_scale * (v_cond - v_neg)

    def __call__(self, x: torch.Tensor, t) -> torch.Tensor:
        if x.ndim != 2 or x.shape[1] != self.n:
            raise ValueError(f"x must have shape (B, {self.n}), got {tuple(x.shape)}")
        B = x.shape[0]
        t = torch.as_tensor(t, dtype=torch.float64)
        timestep = (self.timestep_scale * t).expand(B).to(self.device, torch.float32)
        xs = x.to(self.device, self.dtype).reshape(B, *self.sample_shape)
        chunk = self.chunk or B
        with attention_for(x):
            outs = [self._guided(xs[i:i + chunk], timestep[i:i + chunk]) for i in range(0, B, chunk)]
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
        cfg = "" if self.cfg_scale is None else f", guidance_scale={self.cfg_scale}"
        return (f"DiffusersField({type(self.model).__name__}, sample_shape={self.sample_shape}, "
                f"{self.dtype}{cfg})")


def pack_latents(latents: torch.Tensor) -> torch.Tensor:
    """FLUX packing ``(B, C, H, W)`` -> ``(B, (H/2)(W/2), 4C)`` (as ``FluxPipeline._pack_latents``)."""
    B, C, H, W = latents.shape
    lat = latents.reshape(B, C, H // 2, 2, W // 2, 2).permute(0, 2, 4, 1, 3, 5)
    return lat.reshape(B, (H // 2) * (W // 2), 4 * C)


def unpack_latents(packed: torch.Tensor, C: int, H: int, W: int) -> torch.Tensor:
    """Inverse of :func:`pack_latents`: ``(B, (H/2)(W/2), 4C)`` -> ``(B, C, H, W)``."""
    B = packed.shape[0]
    lat = packed.reshape(B, H // 2, W // 2, C, 2, 2).permute(0, 3, 1, 4, 2, 5)
    return lat.reshape(B, C, H, W)


def latent_image_ids(h: int, w: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """FLUX position ids ``(h w, 3)`` of an ``h x w`` grid of packed patches: ``(0, row, col)``."""
    ids = torch.zeros(h, w, 3)
    ids[..., 1] = torch.arange(h)[:, None]
    ids[..., 2] = torch.arange(w)[None, :]
    return ids.reshape(h * w, 3).to(device=device, dtype=dtype)


def flux_mu(scheduler, image_seq_len: int) -> float:
    """FLUX's resolution-dependent shift ``mu``: linear in the packed sequence length.

    ``mu = base_shift + (max_shift - base_shift) (L - base_seq_len) / (max_seq_len - base_seq_len)``
    with the constants of the scheduler config (defaults 0.5, 1.15, 256, 4096), as
    ``FluxPipeline`` computes it; the scheduler then uses ``sigma' = e^mu / (e^mu + 1/sigma - 1)``.
    """
    c = scheduler.config
    base_len, max_len = c.get("base_image_seq_len", 256), c.get("max_image_seq_len", 4096)
    base, top = c.get("base_shift", 0.5), c.get("max_shift", 1.15)
    return base + (top - base) * (image_seq_len - base_len) / (max_len - base_len)


class FluxField(DiffusersField):
    """``v(x, t)`` of a ``FluxTransformer2DModel`` on flattened unpacked latents ``(B, C H W)``.

    ``x`` is reshaped to ``(B, C, H, W)``, packed (:func:`pack_latents`), and the transformer is
    called with ``timestep = t``, ``img_ids`` / ``txt_ids``, the null-prompt
    ``encoder_hidden_states`` / ``pooled_projections`` and, for a guidance-distilled model
    (``guidance_embeds=True``, FLUX.1-dev), ``guidance = guidance_scale``; the output is
    unpacked and flattened.

    Parameters
    ----------
    model:
        ``FluxTransformer2DModel`` with ``in_channels = 4 C``.
    sample_shape:
        ``(C, H, W)`` of the unpacked latent; ``H`` and ``W`` even.
    conditioning:
        ``encoder_hidden_states`` ``(1, L, joint_attention_dim)``, ``pooled_projections``
        ``(1, pooled_projection_dim)`` and optionally ``txt_ids`` ``(L, 3)`` (default zeros, as
        ``FluxPipeline.encode_prompt``). Default: zeros with ``L = 1``.
    guidance_scale:
        Required for a model with guidance embeddings (``FluxPipeline``'s default is 3.5);
        must be None for a model without them (FLUX.1-schnell).
    """

    timestep_scale = 1.0

    def __init__(self, model, sample_shape: Sequence[int], conditioning: Optional[dict] = None,
                 guidance_scale: Optional[float] = None, chunk: Optional[int] = None):
        cfg = model.config
        if not hasattr(cfg, "guidance_embeds") or not hasattr(cfg, "axes_dims_rope"):
            raise TypeError(f"{type(model).__name__} is not a FluxTransformer2DModel")
        shape = tuple(int(s) for s in sample_shape)
        if len(shape) != 3 or shape[1] % 2 or shape[2] % 2:
            raise ValueError(f"sample_shape must be (C, H, W) with H, W even (2x2 packing), got {shape}")
        C = shape[0]
        out_ch = cfg.out_channels or cfg.in_channels
        if cfg.in_channels != 4 * C or out_ch != 4 * C:
            raise ValueError(f"a FLUX transformer with in_channels={cfg.in_channels}, out_channels="
                             f"{out_ch} takes packed latents of {C} channels only if both are 4*{C}")
        if cfg.guidance_embeds and guidance_scale is None:
            raise ValueError("the transformer is guidance-distilled (guidance_embeds=True): pass "
                             "guidance_scale (FluxPipeline's default is 3.5)")
        if not cfg.guidance_embeds and guidance_scale is not None:
            raise ValueError("the transformer has no guidance embedding (guidance_embeds=False): "
                             "guidance_scale must be None")
        dtype = next(model.parameters()).dtype
        if conditioning is None:
            conditioning = null_conditioning(model, 1, dtype)
        conditioning = dict(conditioning)
        txt_ids = conditioning.pop("txt_ids", None)
        missing = {"encoder_hidden_states", "pooled_projections"} - set(conditioning)
        if missing:
            raise ValueError(f"conditioning lacks {sorted(missing)}")
        super().__init__(model, shape, conditioning, chunk=chunk)
        L = self.conditioning["encoder_hidden_states"].shape[1]
        if txt_ids is None:
            txt_ids = torch.zeros(L, 3)
        txt_ids = txt_ids.reshape(-1, 3)
        if txt_ids.shape[0] != L:
            raise ValueError(f"txt_ids has {txt_ids.shape[0]} rows, the prompt embedding {L} tokens")
        self.txt_ids = txt_ids.to(self.device, self.dtype)
        self.img_ids = latent_image_ids(shape[1] // 2, shape[2] // 2, self.device, self.dtype)
        self.guidance_scale = None if guidance_scale is None else float(guidance_scale)

    @property
    def seq_len(self) -> int:
        """Length ``(H/2)(W/2)`` of the packed image sequence (for :func:`flux_mu`)."""
        return self.img_ids.shape[0]

    def _model(self, x: torch.Tensor, timestep: torch.Tensor, cond: dict) -> torch.Tensor:
        B = x.shape[0]
        C, H, W = self.sample_shape
        cond = {k: v.expand(B, *v.shape[1:]) for k, v in cond.items()}
        guidance = None
        if self.guidance_scale is not None:
            guidance = torch.full((B,), self.guidance_scale, device=self.device, dtype=torch.float32)
        out = self.model(hidden_states=pack_latents(x), timestep=timestep, guidance=guidance,
                         txt_ids=self.txt_ids, img_ids=self.img_ids, return_dict=False, **cond)[0]
        return unpack_latents(out, C, H, W)

    def __repr__(self) -> str:
        return (f"FluxField({type(self.model).__name__}, sample_shape={self.sample_shape}, "
                f"guidance_scale={self.guidance_scale}, {self.dtype})")


def _check_local(path) -> Path:
    """A local folder, or a clear error at once. Nothing is downloaded: every load below
    passes ``local_files_only=True`` (the process's ``HF_HUB_OFFLINE`` is left as it is)."""
    if isinstance(path, bool) or not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a folder path (str or os.PathLike), got {type(path).__name__}")
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
    cfg = _read_json(p / "config.json") if (p / "config.json").exists() else {}
    diffusers = require_diffusers()
    name = cfg.get("_class_name", "SD3Transformer2DModel")
    cls = getattr(diffusers, name, None)
    if cls is None:
        raise ValueError(f"{p / 'config.json'} names the class {name!r}, which diffusers "
                         f"{diffusers.__version__} does not have")
    _check_weights(p)
    return _in_dtype(cls.from_pretrained(str(p), dtype=dtype, low_cpu_mem_usage=False,
                                         local_files_only=True), dtype, p).eval()


def _read_json(path: Path) -> dict:
    """A JSON file of a model folder, or a ValueError naming the file."""
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not valid JSON ({exc}); the folder is damaged or not a "
                         f"diffusers folder") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path} must hold a JSON object, got {type(data).__name__}")
    return data


def _check_weights(folder: Path) -> None:
    """A model folder must hold a config and weights (``*.safetensors`` or ``*.bin``)."""
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(f"{folder} has no config.json: not a diffusers model folder")
    if not any(folder.glob("*.safetensors")) and not any(folder.glob("*.bin")):
        raise FileNotFoundError(f"{folder} has a config.json but no weights (*.safetensors or "
                                f"*.bin): the weights are missing")


def _subfolders(p: Path, names) -> None:
    """Each component folder of a pipeline must exist and hold a model, or a clear error."""
    for name in names:
        sub = p / name
        if not sub.is_dir():
            raise FileNotFoundError(f"pipeline folder {str(p)!r} has no {name}/ subfolder "
                                    f"(expected {', '.join(n + '/' for n in names)})")
        if name == "scheduler":
            if not any(sub.glob("*.json")):
                raise FileNotFoundError(f"{sub} holds no scheduler config (*.json)")
        else:
            _check_weights(sub)


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
    :meth:`decode` back (both ``chunk`` images at a time), :meth:`ts` the scheduler's
    generation grid.
    """

    def __init__(self, transformer, vae, scheduler, conditioning: dict, image_size: int,
                 chunk: Optional[int] = None, guidance_scale: Optional[float] = None,
                 negative_conditioning: Optional[dict] = None):
        self.vae, self.scheduler = vae.eval(), scheduler
        for p in self.vae.parameters():
            p.requires_grad_(False)
        f = 2 ** (len(vae.config.block_out_channels) - 1)
        if image_size % f:
            raise ValueError(f"image_size {image_size} is not a multiple of the VAE factor {f}")
        self.image_size = image_size
        self.latent_shape = (vae.config.latent_channels, image_size // f, image_size // f)
        self.is_flux = hasattr(transformer.config, "guidance_embeds")
        if self.is_flux:
            if image_size % (2 * f):
                raise ValueError(f"image_size {image_size} is not a multiple of 2 x VAE factor "
                                 f"{2 * f} (FLUX packs 2x2 latent patches)")
            self.field = FluxField(transformer, self.latent_shape, conditioning,
                                   guidance_scale=guidance_scale, chunk=chunk)
        else:
            self.field = DiffusersField(transformer, self.latent_shape, conditioning, chunk=chunk,
                                        guidance_scale=guidance_scale,
                                        negative_conditioning=negative_conditioning)
        self.chunk = chunk
        self.scaling_factor = float(vae.config.scaling_factor)
        self.shift_factor = float(getattr(vae.config, "shift_factor", None) or 0.0)

    def _chunks(self, x: torch.Tensor):
        step = self.chunk or x.shape[0]
        return (x[i:i + step] for i in range(0, x.shape[0], step))

    @torch.no_grad()
    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Images ``(B, 3, H, W)`` in ``[-1, 1]`` -> latents ``(B, n)`` (posterior mean, scaled)."""
        dt = next(self.vae.parameters()).dtype
        dev = next(self.vae.parameters()).device
        lat = torch.cat([self.vae.encode(im.to(dev, dt)).latent_dist.mean for im in self._chunks(images)])
        lat = (lat - self.shift_factor) * self.scaling_factor
        return lat.reshape(lat.shape[0], -1).to(images.device, images.dtype)

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Latents ``(B, n)`` -> images ``(B, 3, H, W)`` (unclipped)."""
        dt = next(self.vae.parameters()).dtype
        dev = next(self.vae.parameters()).device
        lat = latents.reshape(latents.shape[0], *self.latent_shape)
        out = [self.vae.decode(z.to(dev, dt) / self.scaling_factor + self.shift_factor,
                               return_dict=False)[0] for z in self._chunks(lat)]
        return torch.cat(out).to(latents.device, latents.dtype)

    @property
    def image_seq_len(self) -> int:
        """The transformer's image sequence length: ``(h/p)(w/p)`` for SD3's patch size ``p``,
        the packed length for FLUX (what the pipelines pass to the dynamic shift)."""
        if self.is_flux:
            return self.field.seq_len
        p = self.field.model.config.patch_size
        return (self.latent_shape[1] // p) * (self.latent_shape[2] // p)

    def ts(self, steps: int) -> torch.Tensor:
        """The scheduler's decreasing grid from 1 to 0 (shift applied), see :func:`schedule_ts`.

        FLUX: as ``FluxPipeline``, the sigmas ``linspace(1, 1/steps, steps)``. With
        ``use_dynamic_shifting`` (FLUX, and SD3-layout schedulers that set it) the shift
        ``mu = flux_mu(scheduler, image_seq_len)``, as both pipelines compute it.
        """
        from ._checks import check_int
        check_int(steps, "steps")
        kw = {}
        if self.is_flux:
            import numpy as np
            kw["sigmas"] = np.linspace(1.0, 1.0 / steps, steps)
        if self.scheduler.config.get("use_dynamic_shifting", False):
            kw["mu"] = flux_mu(self.scheduler, self.image_seq_len)
        return schedule_ts(self.scheduler, steps, **kw)

    def __repr__(self) -> str:
        return f"PipelineField({self.field!r}, latent_shape={self.latent_shape})"


def load_pipeline(path, *, dtype=torch.float32, image_size: Optional[int] = None,
                  device="cpu", chunk: Optional[int] = None,
                  guidance_scale: Optional[float] = None, prompt: str = "",
                  negative_prompt: str = "",
                  max_sequence_length: Optional[int] = None) -> PipelineField:
    """Load an SD3 / SD3.5 or FLUX pipeline folder from a local ``path`` (no download).

    Reads ``transformer/``, ``vae/`` and ``scheduler/`` with ``from_pretrained``, in ``dtype``
    (every component; checked). The conditioning is the embedding of ``prompt`` (default the
    empty prompt, as the instability paper uses). The empty prompt's embeddings come from
    ``path/null_conditioning.pt`` when present; any other prompt, or a folder without the
    cache, needs the pipeline's text encoders (``pip install 'pfode[diffusers]'`` brings
    ``transformers``): the pipeline is loaded once with them, ``encode_prompt`` is computed,
    the empty prompt's embeddings are cached in that file when the folder is writable, and the
    encoders are freed. What is missing is said before anything large is loaded.

    ``guidance_scale`` means what it means to the folder's pipeline: for SD3 / SD3.5
    classifier-free guidance against ``negative_prompt`` (default the empty prompt; None or 1:
    none), for FLUX.1-dev the distilled guidance embedding (default 3.5, as ``FluxPipeline``).
    ``max_sequence_length``: the T5 prompt length (the pipeline's default, 256 for SD3 and 512
    for FLUX). ``chunk``: at most that many images per transformer and VAE call.

    ``image_size`` defaults to ``transformer.config.sample_size * vae factor`` (FLUX:
    ``128 * vae factor``, ``FluxPipeline``'s 1024). Other FLUX pipelines (Fill, Kontext, ...)
    are not wrapped.
    """
    p = _check_local(path)
    index_file = p / "model_index.json"
    if not index_file.exists():
        raise FileNotFoundError(f"{str(p)!r} has no model_index.json: not a pipeline folder")
    index = _read_json(index_file)
    cls = index.get("_class_name", "")
    if "Flux" in cls and cls != "FluxPipeline":
        raise NotImplementedError(
            f"{cls}: only the text-to-image FluxPipeline layout is wrapped (no image "
            "conditioning channels or reference tokens)")
    flux = cls == "FluxPipeline"
    for name, value in (("prompt", prompt), ("negative_prompt", negative_prompt)):
        if not isinstance(value, str):
            raise TypeError(f"{name} must be a str, got {type(value).__name__}")
    if max_sequence_length is not None:
        from ._checks import check_int
        check_int(max_sequence_length, "max_sequence_length")
    if dtype not in (torch.float32, torch.float64, torch.float16, torch.bfloat16):
        raise TypeError(f"dtype must be a torch floating dtype, got {dtype!r}")
    cfg = (not flux) and guidance_scale is not None and guidance_scale != 1
    if flux and negative_prompt:
        raise ValueError("negative_prompt applies to SD3 folders; FLUX.1 has no negative prompt "
                         "(its guidance_scale is a distilled embedding)")
    prompts = [prompt] + ([negative_prompt] if cfg and negative_prompt != prompt else [])
    cache = p / NULL_CONDITIONING_FILE
    encode = [q for q in prompts if q or not cache.exists()]
    if encode:                                   # before anything large is loaded
        _check_text_encoders(p, index, "the prompt " + repr(encode[0]) if encode[0] else
                             f"the empty prompt (there is no {NULL_CONDITIONING_FILE})")
    _subfolders(p, ("transformer", "vae", "scheduler"))
    require_diffusers()
    import diffusers
    transformer_cls = diffusers.FluxTransformer2DModel if flux else diffusers.SD3Transformer2DModel
    transformer, vae, scheduler = _load_parts(p, transformer_cls, dtype, device)
    if flux and transformer.config.guidance_embeds and guidance_scale is None:
        guidance_scale = 3.5
    emb = {}
    if "" in prompts and "" not in encode:
        emb[""] = torch.load(cache, map_location="cpu", weights_only=True)
    if encode:
        if "" not in encode and len(prompts) > 1:   # one sequence length for both: encode both
            encode = prompts
        emb.update(_encode_prompts(p, flux, encode, transformer, vae, scheduler, dtype, device,
                                   max_sequence_length))
        if "" in encode and os.access(p, os.W_OK) and not cache.exists():
            save_null_conditioning(p, emb[""]["encoder_hidden_states"], emb[""]["pooled_projections"])
    f = 2 ** (len(vae.config.block_out_channels) - 1)
    default = transformer.config.sample_size if not flux else (getattr(transformer.config, "sample_size", None) or 128)
    size = image_size or default * f
    return PipelineField(transformer, vae, scheduler, emb[prompt], size, chunk=chunk,
                         guidance_scale=guidance_scale if flux or cfg else None,
                         negative_conditioning=emb[negative_prompt] if cfg else None)


def _check_text_encoders(p: Path, index: dict, purpose: str) -> None:
    """The text encoders and tokenizers the folder's ``model_index.json`` lists, present and
    loadable (``transformers`` installed), or a clear error naming what is missing."""
    encoders = [k for k, v in index.items() if k.startswith("text_encoder")
                and isinstance(v, list) and v and v[0] is not None]
    if not encoders:
        raise FileNotFoundError(
            f"{purpose} needs the pipeline's text encoders, and {p / 'model_index.json'} lists "
            f"none. Use the full pipeline folder, or store the empty prompt's embeddings in "
            f"{p / NULL_CONDITIONING_FILE} with pfode.diffusers_field.save_null_conditioning")
    from ._checks import require
    require("transformers", f"{purpose} (the text encoders of {p.name})")
    for enc in encoders:
        _check_weights(p / enc) if (p / enc).is_dir() else _missing(p, enc, purpose)
        tok = "tokenizer" + enc[len("text_encoder"):]
        if tok in index and not (p / tok).is_dir():
            _missing(p, tok, purpose)


def _missing(p: Path, name: str, purpose: str):
    raise FileNotFoundError(f"{p / 'model_index.json'} lists {name}, but {p / name} does not "
                            f"exist ({purpose} needs it)")


def _encode_prompts(p: Path, flux: bool, prompts, transformer, vae, scheduler, dtype, device,
                    max_sequence_length) -> dict:
    """``{prompt: conditioning}`` from the folder's own pipeline and text encoders."""
    import diffusers
    pipe_cls = diffusers.FluxPipeline if flux else diffusers.StableDiffusion3Pipeline
    pipe = pipe_cls.from_pretrained(str(p), transformer=transformer, vae=vae, scheduler=scheduler,
                                    dtype=dtype, local_files_only=True, low_cpu_mem_usage=False)
    pipe.to(device)
    kw = {} if max_sequence_length is None else {"max_sequence_length": max_sequence_length}
    out = {}
    with torch.no_grad():
        for q in prompts:
            if flux:
                e, pooled, txt_ids = pipe.encode_prompt(prompt=q, prompt_2=q, device=device, **kw)
                out[q] = {"encoder_hidden_states": e, "pooled_projections": pooled, "txt_ids": txt_ids}
            else:
                e, _, pooled, _ = pipe.encode_prompt(prompt=q, prompt_2=q, prompt_3=q, device=device,
                                                     do_classifier_free_guidance=False, **kw)
                out[q] = {"encoder_hidden_states": e, "pooled_projections": pooled}
    del pipe
    return out


def _in_dtype(model, dtype, where: Path):
    """``model`` with every parameter in ``dtype``. diffusers 0.42 loads some models in their
    stored dtype whatever ``dtype`` says (``SD3Transformer2DModel`` stays float32), so they
    are cast (with diffusers' warning about float32-only modules silenced when the model
    declares none), and the result is checked."""
    if {q.dtype for q in model.parameters()} != {dtype}:
        from diffusers.utils import logging as dlog
        level = dlog.get_verbosity()
        if not getattr(model, "_keep_in_fp32_modules", None):
            dlog.set_verbosity_error()
        try:
            model = model.to(dtype)
        finally:
            dlog.set_verbosity(level)
    got = {q.dtype for q in model.parameters()}
    if got != {dtype}:
        raise RuntimeError(f"{where} loaded in {sorted(map(str, got))}, not {dtype}")
    return model


def _load_parts(p: Path, transformer_cls, dtype, device):
    """The transformer, VAE and scheduler of the local pipeline folder ``p``, in ``dtype``."""
    require_diffusers()
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler
    kw = dict(dtype=dtype, low_cpu_mem_usage=False, local_files_only=True)
    transformer = _in_dtype(transformer_cls.from_pretrained(str(p), subfolder="transformer", **kw),
                            dtype, p / "transformer").to(device)
    vae = _in_dtype(AutoencoderKL.from_pretrained(str(p), subfolder="vae", **kw), dtype, p / "vae").to(device)
    scheduler = FlowMatchEulerDiscreteScheduler.from_pretrained(str(p), subfolder="scheduler",
                                                                local_files_only=True)
    return transformer, vae, scheduler
