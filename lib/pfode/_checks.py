"""Input validation shared by the whole package.

Every public function checks its inputs here, so that bad input fails at once with a
message naming the argument, instead of producing NaN three solvers later.
"""
from __future__ import annotations

import math

import torch


def _under_vmap(x: torch.Tensor) -> bool:
    """True inside a ``torch.func`` transform (vmap, grad, jvp), where a data-dependent
    check may not run; the call outside the transform has already been checked."""
    try:
        return bool(torch._C._functorch.is_functorch_wrapped_tensor(x))
    except AttributeError:  # pragma: no cover - older torch
        return False


def as_batch(x, name: str, *, n: int | None = None, dtype=None) -> torch.Tensor:
    """Return ``x`` as a finite floating tensor of shape ``(B, n)``.

    Raises ``TypeError`` for non-tensors and non-floating dtypes and ``ValueError`` for
    wrong shapes and NaN/inf.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape (B, n), got {type(x).__name__}")
    if not torch.is_floating_point(x):
        raise TypeError(f"{name} must be a floating tensor (float32 or float64), got {x.dtype}")
    if x.dim() != 2:
        raise ValueError(f"{name} must have shape (B, n), got shape {tuple(x.shape)}")
    if n is not None and x.shape[1] != n:
        raise ValueError(f"{name} must have {n} columns (the dimension n), got shape {tuple(x.shape)}")
    # one reduction first: the sum is finite whenever every entry is (and rarely otherwise)
    if not _under_vmap(x) and not bool(torch.isfinite(x.sum())) and not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} contains NaN or inf")
    if dtype is not None and x.dtype != dtype:
        x = x.to(dtype)
    return x


def check_time(t, name: str = "t") -> None:
    """``t`` (float or tensor) must be finite and lie in [0, 1]."""
    if isinstance(t, torch.Tensor):
        if _under_vmap(t):
            return
        if not bool(torch.isfinite(t).all()):
            raise ValueError(f"{name} contains NaN or inf")
        if bool((t < 0).any()) or bool((t > 1).any()):
            raise ValueError(f"{name} must lie in [0, 1] (t = 0 data, t = 1 noise), got values "
                             f"in [{float(t.min()):.4g}, {float(t.max()):.4g}]")
    else:
        t = float(t)
        if not math.isfinite(t) or t < 0 or t > 1:
            raise ValueError(f"{name} must lie in [0, 1] (t = 0 data, t = 1 noise), got {t}")


def check_positive(value, name: str, *, allow_zero: bool = False) -> None:
    """A scalar that must be finite and > 0 (or >= 0)."""
    if value is None:
        return
    v = float(value)
    if not math.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be finite and {bound}, got {value}")


def check_steps(steps, name: str = "steps") -> None:
    if steps is None:
        return
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"{name} must be a positive integer, got {steps!r}")
