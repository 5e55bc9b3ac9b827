"""Small helpers shared by the book's notebooks.

- :func:`smoke` tells a notebook to shrink its parameters (the test suite sets
  ``PFODE_SMOKE=1``), so CI runs the same notebooks with small parameters.
- :func:`savefig` writes every figure as a PNG under one folder (``PFODE_FIGURES``,
  default ``<repo root>/_build/figures``), so that each figure can be opened and inspected outside
  the rendered book.
"""
from __future__ import annotations

import os
from pathlib import Path


def smoke() -> bool:
    """True when the notebook runs in the test suite's small configuration."""
    return os.environ.get("PFODE_SMOKE", "") not in ("", "0", "false", "False")


def repo_root() -> Path:
    """The book's root: ``$PFODE_ROOT`` when set, else the nearest folder above the working
    directory holding ``_toc.yml``."""
    if os.environ.get("PFODE_ROOT"):
        return Path(os.environ["PFODE_ROOT"]).resolve()
    here = Path.cwd().resolve()
    for d in (here, *here.parents):
        if (d / "_toc.yml").exists():
            return d
    return here


def figure_dir() -> Path:
    """``$PFODE_FIGURES`` or ``<repo root>/_build/figures`` (created if missing)."""
    d = Path(os.environ.get("PFODE_FIGURES", repo_root() / "_build" / "figures"))
    d.mkdir(parents=True, exist_ok=True)
    return d


def savefig(fig, name: str, dpi: int = 150) -> Path:
    """Save ``fig`` as ``<figure_dir>/<name>.png`` and return the path."""
    if not name or any(c in name for c in "/\\ "):
        raise ValueError(f"name must be a plain file stem, got {name!r}")
    path = figure_dir() / f"{name}.png"
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    return path
