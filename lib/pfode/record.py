"""Record a notebook's measured numbers so that a sweep can tabulate them.

A notebook run by :mod:`pfode.sweep` ends with ``pfode.record.save_metrics(...)``. The
runner tells the notebook where to write through the environment variable
``PFODE_METRICS``; a notebook run by hand (or by the book build) has no such variable and
:func:`save_metrics` then only checks the rows and returns them.

Metrics are a dict (one row) or a list of dicts (several rows for one parameter point, e.g.
one row per dimension or per estimator). Values must be JSON scalars: numbers (numpy and
torch scalars are converted), strings, booleans or ``None``. Non-finite floats are written
as ``NaN`` / ``Infinity`` (Python's JSON dialect) and read back as floats.
"""
from __future__ import annotations

import json
import numbers
import os
import tempfile
from pathlib import Path
from contextlib import contextmanager
from typing import Any, Iterable, Iterator, Mapping, TextIO

__all__ = ["METRICS_ENV", "save_metrics", "load_metrics", "metrics_path"]

METRICS_ENV = "PFODE_METRICS"
"""Environment variable holding the path the sweep runner wants the metrics written to."""


def metrics_path() -> Path | None:
    """The path in ``$PFODE_METRICS``, or None when the notebook is not run by a sweep."""
    p = os.environ.get(METRICS_ENV, "")
    return Path(p) if p else None


def _scalar(key: str, value: Any):
    if value is None or isinstance(value, (bool, str)):
        return value
    item = getattr(value, "item", None)          # numpy / torch scalars and 0-d arrays
    if item is not None and getattr(value, "ndim", 0) == 0:
        value = item()
    if isinstance(value, bool):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    raise TypeError(f"metric {key!r} must be a number, string, bool or None; "
                    f"got {type(value).__name__}")


def _rows(rows) -> list[dict]:
    if isinstance(rows, Mapping):
        rows = [rows]
    if isinstance(rows, (str, bytes)) or not isinstance(rows, Iterable):
        raise TypeError("metrics must be a dict or a list of dicts")
    out = []
    for i, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise TypeError(f"metrics row {i} is a {type(row).__name__}, not a dict")
        clean = {}
        for k, v in row.items():
            if not isinstance(k, str) or not k:
                raise TypeError(f"metrics row {i}: keys must be non-empty strings, got {k!r}")
            clean[k] = _scalar(k, v)
        out.append(clean)
    if not out:
        raise ValueError("metrics must hold at least one row")
    return out


def _path(path, name: str = "path") -> Path:
    """A file path (str or os.PathLike), never a file descriptor or another object."""
    if isinstance(path, bool) or not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{name} must be a file path (str or os.PathLike), got "
                        f"{type(path).__name__} {path!r}")
    if not os.fspath(path):
        raise ValueError(f"{name} is empty")
    return Path(path)


def save_metrics(rows, path: str | os.PathLike | None = None) -> list[dict]:
    """Write ``rows`` (a dict or a list of dicts) as JSON to ``path``; return the clean rows.

    ``path=None`` uses ``$PFODE_METRICS`` (set by the sweep runner); when that is unset too,
    nothing is written. The file is written to a temporary name in the same folder and
    renamed, so a reader never sees half a file. A second call replaces the first.
    """
    clean = _rows(rows)
    target = _path(path) if path is not None else metrics_path()
    if target is None:
        return clean
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(target) as f:
        json.dump(clean, f, indent=1, allow_nan=True)
        f.write("\n")
    return clean


@contextmanager
def atomic_write(path: str | os.PathLike, *, newline: str | None = None) -> Iterator[TextIO]:
    """Open ``path`` for writing text so that readers see the old file or the whole new one,
    never a part: write to a temporary file in the same folder, then ``os.replace`` it (an
    exception, or a kill before the rename, leaves the old file as it was)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", newline=newline) as f:
            yield f
        os.chmod(tmp, 0o644)                                  # mkstemp makes it private
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def load_metrics(path: str | os.PathLike) -> list[dict]:
    """Read the rows written by :func:`save_metrics` (always a list of dicts)."""
    path = _path(path)
    try:
        with open(path) as f:
            data = json.load(f)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not a metrics file (invalid JSON: {exc})") from None
    return _rows(data)
