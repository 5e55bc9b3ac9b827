"""Shared helpers for the benchmarks: machine facts, timers, an RHS counter, thread control."""
from __future__ import annotations

import contextlib
import datetime
import os
import platform
import statistics
import time

import numpy as np
import scipy
import torch


def machine_info() -> dict:
    """Facts that make a timing interpretable: cores, load, library versions, threads."""
    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        import torchdiffeq
        tdq = torchdiffeq.__version__
    except Exception:  # pragma: no cover - reported, not needed
        tdq = "?"
    return {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "loadavg_start": list(os.getloadavg()),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "torchdiffeq": tdq,
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
    }


class CountingField:
    """Wraps a field and counts its calls (torchdiffeq and scipy do not expose the count)."""

    def __init__(self, field):
        self.field, self.n, self.calls, self.points = field, field.n, 0, 0

    def __call__(self, x, t):
        self.calls += 1
        self.points += x.shape[0]
        return self.field(x, t)


def wall(fn, *args, **kwargs):
    """(result, wall seconds, CPU seconds of this process) of one call.

    With one thread the CPU time is the cost of the computation itself, far less sensitive
    than the wall time to other jobs on a shared machine."""
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0, time.process_time() - c0


def median_time(fn, repeats: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


@contextlib.contextmanager
def threads(k: int):
    old = torch.get_num_threads()
    torch.set_num_threads(k)
    try:
        yield
    finally:
        torch.set_num_threads(old)


__all__ = ["machine_info", "CountingField", "wall", "median_time", "threads"]
