"""Input validation shared by the whole package.

Every public function checks its inputs here, so that bad input fails at once with a
message naming the argument, instead of producing NaN three solvers later:

- ``TypeError`` for a value of the wrong kind (a string for a number, an integer tensor, a
  float16 tensor, a bool for a count);
- ``ValueError`` for a value of the right kind outside its domain (a wrong shape, NaN, t
  outside [0, 1], a non-positive count, an unknown name);
- ``FloatingPointError`` when a computation leaves float range (a field that returns NaN,
  a solution that overflows), naming the field and the time;
- ``ImportError`` naming the extra to install when an optional dependency is missing
  (:func:`require`).
"""
from __future__ import annotations

import math
import numbers
from typing import Callable, Iterable

import numpy as np
import torch

FLOAT_DTYPES = (torch.float32, torch.float64)

_PACKAGES = {"skimage": ("scikit-image", "notebooks"), "sklearn": ("scikit-learn", "notebooks"),
             "diffusers": ("diffusers", "diffusers"), "transformers": ("transformers", "diffusers"),
             "distributed": ("distributed (Dask)", "sweep")}


def require(module: str, what: str):
    """Import the optional dependency ``module`` (e.g. ``"skimage.metrics"``) or raise an
    ImportError that names what needed it and the extra that installs it:
    ``pip install 'pfode[notebooks]'`` (``make venv`` installs every extra)."""
    import importlib
    top = module.split(".")[0]
    package, extra = _PACKAGES.get(top, (top, "notebooks"))
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ImportError(f"{what} needs {package}, an optional dependency of pfode: "
                          f"pip install 'pfode[{extra}]' (make venv installs it)") from None


def _under_vmap(x: torch.Tensor) -> bool:
    """True inside a ``torch.func`` transform (vmap, grad, jvp), where a data-dependent
    check may not run; the call outside the transform has already been checked."""
    try:
        return bool(torch._C._functorch.is_functorch_wrapped_tensor(x))
    except AttributeError:  # pragma: no cover - older torch
        return False


def _finite(x: torch.Tensor) -> bool:
    # one reduction first: the sum is finite whenever every entry is (and rarely otherwise)
    return bool(torch.isfinite(x.sum())) or bool(torch.isfinite(x).all())


def check_dtype(x: torch.Tensor, name: str) -> None:
    """``x`` must be a float32 or float64 tensor (float16 / bfloat16 lose the instability
    coefficients entirely: κ off by 55–100 %)."""
    if x.dtype not in FLOAT_DTYPES:
        kind = "a half-precision" if x.dtype in (torch.float16, torch.bfloat16) else "a non-floating"
        raise TypeError(f"{name} must be a float32 or float64 tensor, got {kind} {x.dtype} tensor "
                        f"(convert it with {name}.double())")


def as_batch(x, name: str, *, n: int | None = None, dtype=None) -> torch.Tensor:
    """Return ``x`` as a finite float32/float64 tensor of shape ``(B, n)`` with ``B >= 1``.

    Raises ``TypeError`` for non-tensors and other dtypes and ``ValueError`` for wrong
    shapes, empty batches and NaN/inf.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape (B, n), got {type(x).__name__}")
    check_dtype(x, name)
    if x.dim() != 2:
        raise ValueError(f"{name} must have shape (B, n), got shape {tuple(x.shape)}")
    if n is not None and x.shape[1] != n:
        raise ValueError(f"{name} must have {n} columns (the dimension n), got shape {tuple(x.shape)}")
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"{name} is empty (shape {tuple(x.shape)}): pass at least one row of "
                         f"at least one column")
    if not _under_vmap(x) and not _finite(x):
        raise ValueError(f"{name} contains NaN or inf")
    if dtype is not None and x.dtype != dtype:
        x = x.to(dtype)
    return x


def as_real(value, name: str, dtype) -> torch.Tensor:
    """``value`` (array-like of real numbers) as a tensor of ``dtype``, or a TypeError naming it."""
    if isinstance(value, torch.Tensor):
        if value.is_complex() or value.dtype == torch.bool:
            raise TypeError(f"{name} must hold real numbers, got dtype {value.dtype}")
        return value.detach().to(dtype)
    try:
        return torch.as_tensor(value, dtype=dtype)
    except (TypeError, ValueError, RuntimeError):
        raise TypeError(f"{name} must be an array of real numbers, got {type(value).__name__}") from None


def check_norms(sq: torch.Tensor, x: torch.Tensor, name: str = "x", what: str = "") -> torch.Tensor:
    """``sq``, the squared norms of the rows of ``x``, must not overflow x's dtype; returns ``sq``.
    ``what`` ends the message (what is undefined there)."""
    if not _under_vmap(sq) and not bool(torch.isfinite(sq).all()):
        raise ValueError(f"{name} has a row whose squared norm overflows {x.dtype} (largest entry "
                         f"{float(x.abs().max()):.3g}){what}")
    return sq


def as_float(value, name: str) -> float:
    """A real number (Python, numpy or 0-d tensor; not a bool or a string) as a float."""
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise ValueError(f"{name} must be a number, got a tensor of shape {tuple(value.shape)}")
        if value.is_complex():
            raise TypeError(f"{name} must be a real number, got a complex tensor")
        value = value.item()
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value.item()
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} {value!r}")
    return float(value)


def check_time(t, name: str = "t") -> None:
    """``t`` (a number or a tensor) must be finite and lie in [0, 1]."""
    if isinstance(t, torch.Tensor) and t.numel() != 1:
        if _under_vmap(t):
            return
        if not torch.is_floating_point(t) and t.dtype not in (torch.int32, torch.int64):
            raise TypeError(f"{name} must be a real tensor, got dtype {t.dtype}")
        if not bool(torch.isfinite(t).all()):
            raise ValueError(f"{name} contains NaN or inf")
        if bool((t < 0).any()) or bool((t > 1).any()):
            raise ValueError(f"{name} must lie in [0, 1] (t = 0 data, t = 1 noise), got values "
                             f"in [{float(t.min()):.4g}, {float(t.max()):.4g}]")
        return
    if isinstance(t, torch.Tensor) and _under_vmap(t):
        return
    v = as_float(t, name)
    if not math.isfinite(v) or v < 0 or v > 1:
        raise ValueError(f"{name} must lie in [0, 1] (t = 0 data, t = 1 noise), got {v}")


def check_positive(value, name: str, *, allow_zero: bool = False) -> None:
    """A scalar that must be finite and > 0 (or >= 0); None passes (a default)."""
    if value is None:
        return
    v = as_float(value, name)
    if not math.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be finite and {bound}, got {value}")


def check_int(value, name: str, *, lower: int = 1, upper: int | None = None) -> int:
    """An integer (Python or numpy; not a bool, not ``2.0``) with ``lower <= value [<= upper]``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}")
    value = int(value)
    if value < lower or (upper is not None and value > upper):
        rng = f">= {lower}" if upper is None else f"in [{lower}, {upper}]"
        raise ValueError(f"{name} must be an integer {rng}, got {value}")
    return value


def check_steps(steps, name: str = "steps") -> None:
    """``steps`` is None (the default) or a positive integer."""
    if steps is not None:
        check_int(steps, name)


def check_choice(value, name: str, choices: Iterable[str]) -> str:
    """``value`` must be one of ``choices`` (strings)."""
    choices = tuple(choices)
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"unknown {name} {value!r}; choose one of {', '.join(choices)}")
    return value


def check_callable(value, name: str, *, optional: bool = False) -> None:
    if value is None and optional:
        return
    if not callable(value):
        raise TypeError(f"{name} must be callable, got {type(value).__name__}")


def check_generator(generator, name: str = "generator") -> None:
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"{name} must be a torch.Generator or None, got {type(generator).__name__} "
                        f"(make one with torch.Generator().manual_seed(seed))")


def _when(t) -> str:
    if t is None:
        return ""
    if isinstance(t, torch.Tensor) and t.numel() != 1:
        return " at a batch of times"
    try:
        return f" at t = {float(t):.6g}"
    except (TypeError, ValueError):
        return ""


def check_output(out, like: torch.Tensor, name: str, t=None) -> torch.Tensor:
    """The value a user's field or map returned for input ``like``: a floating tensor of
    ``like``'s shape, finite; ``t`` (optional) is named in the message."""
    if not isinstance(out, torch.Tensor):
        raise TypeError(f"{name} must return a torch.Tensor, got {type(out).__name__}{_when(t)}")
    if out.shape != like.shape:
        raise ValueError(f"{name} returned shape {tuple(out.shape)} for an input of shape "
                         f"{tuple(like.shape)}{_when(t)}: it must return one row of the input's "
                         f"dimension per input row")
    if not torch.is_floating_point(out):
        raise TypeError(f"{name} returned a {out.dtype} tensor{_when(t)}; it must return float32 "
                        f"or float64")
    if not _under_vmap(out) and not _finite(out):
        bad = "the state" if not _finite(like) else "its output"
        raise FloatingPointError(f"{name} returned NaN or inf{_when(t)} ({bad} is not finite: the "
                                 f"field is undefined there or the solution overflowed)")
    return out


def checked_field(field: Callable, name: str = "field") -> Callable:
    """``field`` with every output checked by :func:`check_output` (cost: one reduction)."""
    if getattr(field, "_checked", False):
        return field

    def v(x, t):
        return check_output(field(x, t), x, name, t)

    v._checked = True
    return v
