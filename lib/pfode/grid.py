"""Time grids: the one place where a solver's grid is built and checked.

Every solver of :mod:`pfode` runs on a strictly monotone grid of times in [0, 1] (t = 0 data,
t = 1 noise): decreasing for generation, increasing for inversion. :func:`time_grid` builds it
from ``steps`` (uniform) or takes an explicit ``ts`` (e.g. a shifted diffusers schedule) and
checks it; :func:`check_grid` checks a grid given directly.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import torch

from ._checks import check_steps


def as_times(ts, name: str = "ts") -> torch.Tensor:
    """A 1-D float64 CPU tensor of times from a sequence, array or tensor."""
    if isinstance(ts, torch.Tensor):
        if ts.is_complex() or ts.dtype == torch.bool:
            raise TypeError(f"{name} must hold real times, got dtype {ts.dtype}")
        return ts.detach().to("cpu", torch.float64).flatten()
    if isinstance(ts, (str, bytes)):
        raise TypeError(f"{name} must be a sequence of times in [0, 1], got {ts!r}")
    try:
        arr = np.asarray(ts, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a sequence of times in [0, 1], got {ts!r}") from None
    return torch.from_numpy(arr.copy()).flatten()


def check_grid(ts, name: str = "ts") -> torch.Tensor:
    """``ts`` as a float64 tensor, checked: at least two finite times in [0, 1], strictly
    monotone."""
    ts = as_times(ts, name)
    if ts.numel() < 2:
        raise ValueError(f"{name} must hold at least two times")
    if not bool(torch.isfinite(ts).all()) or bool((ts < 0).any()) or bool((ts > 1).any()):
        raise ValueError(f"{name} must lie in [0, 1] (t = 0 data, t = 1 noise)")
    d = ts[1:] - ts[:-1]
    if not (bool((d > 0).all()) or bool((d < 0).all())):
        raise ValueError(f"{name} must be strictly monotone")
    return ts


def time_grid(t0: float, t1: float, *, steps: Optional[int] = None, ts=None,
              default_steps: int = 100) -> torch.Tensor:
    """The grid from ``t0`` to ``t1``: ``ts`` checked (it must start at ``t0`` and end at
    ``t1``), else ``steps`` uniform steps (``default_steps`` when None). float64, (steps + 1,)."""
    if ts is not None:
        if steps is not None:
            raise ValueError("give steps or ts, not both")
        ts = check_grid(ts)
        if float(ts[0]) != t0 or float(ts[-1]) != t1:
            raise ValueError(f"ts must run from t = {t0:g} to t = {t1:g}, got {float(ts[0]):g} "
                             f"to {float(ts[-1]):g}")
        return ts
    check_steps(steps)
    steps = default_steps if steps is None else steps
    return torch.linspace(t0, t1, steps + 1, dtype=torch.float64)
