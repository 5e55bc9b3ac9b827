"""Small helpers shared by the book's notebooks.

- :func:`setup` is the first call of every notebook, in the cell after its ``parameters``
  cell, in one line: ``run = pfode.nb.setup(globals(), smoke=dict(num_points=100))``. It
  checks the parameters papermill injected (names and types), sets the thread count, shrinks
  the parameters in smoke mode, and returns a record of the run (:class:`Run`) with a seeded
  torch generator ``run.gen`` and numpy generator ``run.rng``. (:func:`start` is its first
  half, without the smoke overrides and the generators.)
- :func:`smoke` tells a notebook to shrink its parameters (the test suite sets
  ``PFODE_SMOKE=1``), so CI runs the same notebooks with small parameters.
- :func:`savefig` writes every figure as a PNG under one folder (``PFODE_FIGURES``; default
  ``<repo root>/_build/figures``, or ``<repo root>/_build/nbval/figures`` in smoke mode, so
  that smoke figures never sit next to the book's), so that each figure can be opened and
  inspected outside the rendered book.
- :func:`log_axes` makes log-log axes over short ranges carry readable ticks.
- :func:`publish` saves a figure, hands it to the page with the values its caption quotes
  (myst-nb ``glue``), and closes it: the caption then reads ``{glue:text}`name``` roles, so
  a run with other parameters never captions itself with the defaults.
- :func:`check_quoted` holds the numbers a chapter page quotes to the run that computes them.
- :func:`check_parameter` is the type rule for a notebook parameter against its default,
  shared with the sweep runner (:mod:`pfode.sweep`), which applies it before running anything.

Importing this module silences one warning: ``tqdm.auto`` (used by diffusers and
huggingface_hub) warns "IProgress not found" in a kernel without ipywidgets and falls back to
text bars, which is what the book wants; the warning would otherwise print on the page.
"""
from __future__ import annotations

import ast
import math
import os
import platform
import re
import warnings
from pathlib import Path
from typing import Any, NamedTuple

warnings.filterwarnings("ignore", message="IProgress not found")

INJECTED_MARK = "# Parameters"
"""First line of the cell papermill injects after a notebook's ``parameters`` cell."""

THREADS_ENV = "PFODE_THREADS"
"""Environment variable overriding the thread count a notebook asks :func:`start` for."""


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
    """``$PFODE_FIGURES``, else ``<repo root>/_build/figures`` (``_build/nbval/figures`` in
    smoke mode); created if missing."""
    default = repo_root() / "_build" / ("nbval/figures" if smoke() else "figures")
    d = Path(os.environ.get("PFODE_FIGURES") or default)
    d.mkdir(parents=True, exist_ok=True)
    return d


def savefig(fig, name: str, dpi: int = 150) -> Path:
    """Save ``fig`` as ``<figure_dir>/<name>.png`` and return the path."""
    if not name or any(c in name for c in "/\\ "):
        raise ValueError(f"name must be a plain file stem, got {name!r}")
    path = figure_dir() / f"{name}.png"
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    return path


def log_axes(ax) -> None:
    """Log-log axes with at least two labelled ticks on each axis. Over less than two decades
    matplotlib's default leaves one labelled tick or none; there the major ticks are put at
    1-2-3-5 (below one decade at every digit) and labelled plainly (``%g``). Minor tick labels
    are dropped (they collide on short ranges). Call it after plotting, once the limits are set."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.set(xscale="log", yscale="log")
    for axis, (lo, hi) in ((ax.xaxis, ax.get_xlim()), (ax.yaxis, ax.get_ylim())):
        decades = math.log10(hi / lo)
        if decades < 2:
            subs = tuple(range(1, 10)) if decades < 1 else (1, 2, 3, 5)
            axis.set_major_locator(LogLocator(subs=subs))
            axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        axis.set_minor_formatter(NullFormatter())


def _caption_text(value) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int):
        return f"{value:d}"
    return f"{value:.3g}"


def publish(fig, name: str, label: str, dpi: int = 150, **values) -> Path:
    """Save ``fig`` as ``<figure_dir>/<name>.png`` (:func:`savefig`), glue it under ``label``
    for a ``{glue:figure}`` directive, glue each keyword as text under ``<label>-<key>`` (ints
    as they are, floats to 3 significant digits, anything else through ``str``), and close the
    figure so that the cell does not draw it a second time. Returns the PNG's path. Without
    myst-nb (the ``book`` extra) the figure is shown in the cell instead.

    A markdown cell of the same notebook then shows it, captioned from the data it draws::

        ```{glue:figure} fig-ch9-curve
        :name: fig-ch9-curve

        ... a mixture of $K =$ {glue:text}`fig-ch9-curve-K` Gaussian neighbours ...
        ```
    """
    for key in values:
        if not key.isidentifier():
            raise ValueError(f"caption value names must be identifiers, got {key!r}")
    path = savefig(fig, name, dpi=dpi)
    try:
        from myst_nb import glue
    except ImportError:               # no book extra: an ordinary inline figure
        return path
    import matplotlib.pyplot as plt

    for key, value in values.items():
        glue(f"{label}-{key}", _caption_text(value), display=False)
    glue(label, fig, display=False)
    plt.close(fig)
    return path


_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def _unit(token: str) -> float:
    """One unit in the last printed digit of a number as written (``"0.128"`` -> 1e-3,
    ``"7.4e-12"`` -> 1e-13, ``"212"`` -> 1)."""
    mantissa, _, exponent = token.lower().partition("e")
    decimals = len(mantissa.split(".")[1]) if "." in mantissa else 0
    return 10.0 ** (int(exponent or 0) - decimals)


def check_quoted(page: dict) -> int:
    """Check each ``name: (computed, quoted)`` pair, where both sides are the same numbers as
    text (a string such as ``"0.128 [0.124, 0.133]"``, a number, or a tuple of these): every
    number of ``computed`` must lie within one unit of the last printed digit of the matching
    number in ``quoted``. The page prints rounded values, and a value that sits at a rounding
    boundary may round the other way on another CPU; one unit admits that and nothing more.
    Raises AssertionError naming the entry; returns the number of entries checked."""
    def numbers(v):
        if isinstance(v, (tuple, list)):
            return [t for item in v for t in numbers(item)]
        return _NUMBER.findall(str(v))

    for name, (computed, quoted) in page.items():
        got, want = numbers(computed), numbers(quoted)
        if len(got) != len(want) or not want:
            raise AssertionError(f"{name}: page quotes {quoted!r}, computed {computed!r}")
        for g, w in zip(got, want):
            if abs(float(g) - float(w)) > 1.0001 * _unit(w):
                raise AssertionError(f"{name}: page quotes {quoted!r}, computed {computed!r}")
    return len(page)


# ---- parameters -------------------------------------------------------------------------------
def _kind(value) -> str:
    if value is None:
        return "None"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "str"
    if isinstance(value, (list, tuple)):
        return "list"
    if isinstance(value, dict):
        return "dict"
    return type(value).__name__


_ACCEPTS = {"int": ("int",), "float": ("float", "int"), "bool": ("bool",), "str": ("str",),
            "list": ("list",), "dict": ("dict",)}


def check_parameter(name: str, value: Any, default: Any) -> None:
    """Raise ``TypeError`` when ``value`` cannot stand for a parameter whose default is ``default``.

    The rule: a ``None`` default takes anything; an ``int`` default takes an ``int`` (not a
    ``bool``, not ``2.0``); a ``float`` default a ``float`` or an ``int``; ``bool``, ``str``,
    ``dict`` the same type; a list default (list or tuple) a list or tuple whose items follow
    the rule for the default's items when those all have one kind.
    """
    want = _kind(default)
    got = _kind(value)
    if want == "None" or want not in _ACCEPTS:
        return
    if got not in _ACCEPTS[want]:
        raise TypeError(f"parameter {name!r} must be {_article(want)} like its default "
                        f"{default!r}, got {_article(got)} {value!r}")
    if want == "float" and got == "float" and math.isnan(value):
        raise ValueError(f"parameter {name!r} is NaN")
    if want == "list" and default:
        kinds = {_kind(d) for d in default}
        if len(kinds) == 1:
            for i, item in enumerate(value):
                check_parameter(f"{name}[{i}]", item, default[0])


def _article(kind: str) -> str:
    return {"int": "an int", "float": "a float", "bool": "a bool", "str": "a str",
            "list": "a list", "dict": "a dict", "None": "None"}.get(kind, f"a {kind}")


def _assigned(source: str) -> list[str]:
    """Names assigned at the top level of a cell's source."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    names = []
    for node in tree.body:
        targets = (node.targets if isinstance(node, ast.Assign)
                   else [node.target] if isinstance(node, ast.AnnAssign) else [])
        for t in targets:
            for sub in ast.walk(t):
                if isinstance(sub, ast.Name):
                    names.append(sub.id)
    return names


def _defaults(source: str) -> dict:
    """``{name: default value}`` of a parameters cell (executed in a namespace of its own)."""
    ns: dict = {}
    try:
        exec(compile(source, "<parameters>", "exec"), {"math": math}, ns)
    except Exception:                                    # noqa: BLE001 - then no type check
        return {k: None for k in _assigned(source)}
    return {k: ns.get(k) for k in _assigned(source)}


def check_injected(namespace: dict, history=None) -> list[str]:
    """Check the parameters papermill injected into a running notebook; return their names.

    The injected cell (first line ``# Parameters``) and the ``parameters`` cell before it are
    read from the kernel's input history (``In``). A name the parameters cell does not declare
    raises ``ValueError`` (papermill itself only warns), a value of the wrong type
    ``TypeError`` (:func:`check_parameter`), before any work is done.
    """
    if history is None:
        history = namespace.get("In")
    if not history:
        return []
    cells = list(history)
    inj = next((i for i in range(len(cells) - 1, 0, -1)
                if cells[i].lstrip().startswith(INJECTED_MARK)), None)
    if inj is None:
        return []
    declared = _defaults(cells[inj - 1])
    injected = _assigned(cells[inj])
    unknown = [k for k in injected if k not in declared]
    if unknown:
        raise ValueError(f"unknown parameter(s) {', '.join(map(repr, unknown))}: this notebook's "
                         f"parameters are {', '.join(sorted(declared))} (check the spelling of "
                         f"the -p option)")
    for k in injected:
        check_parameter(k, namespace.get(k), declared[k])
    return injected


# ---- the run ----------------------------------------------------------------------------------
class Run(NamedTuple):
    """What :func:`setup` set up: the thread counts, the numerical libraries, the machine, the
    smoke overrides applied, and the generators seeded from the notebook's ``seed``."""

    threads: int
    smoke: bool
    injected: tuple
    blas: str
    cpu: str
    overridden: tuple = ()
    seed: Any = None
    gen: Any = None
    rng: Any = None

    def __str__(self) -> str:
        mode = "smoke mode, " if self.smoke else ""
        return f"{mode}{self.threads} thread(s); {self.blas}; {self.cpu}"


def cpu_model() -> str:
    """The processor's model name (``/proc/cpuinfo``; ``platform.processor()`` elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def blas_info() -> str:
    """torch's and numpy's BLAS libraries with their thread counts, in one line."""
    parts = []
    try:
        import torch
        parts.append(f"torch {torch.__version__} ({'MKL' if torch.backends.mkl.is_available() else 'no MKL'},"
                     f" {torch.get_num_threads()} threads)")
    except ImportError:  # pragma: no cover
        pass
    try:
        from threadpoolctl import threadpool_info
        for lib in threadpool_info():
            if lib.get("user_api") == "blas":
                parts.append(f"numpy {lib.get('internal_api')} {lib.get('version')} "
                             f"{lib.get('architecture', '')} ({lib.get('num_threads')} threads)")
    except ImportError:  # pragma: no cover
        pass
    return "; ".join(parts)


def set_threads(threads: int) -> int:
    """Set torch's intra-op threads and every BLAS / OpenMP pool of the process to ``threads``."""
    from ._checks import check_int
    threads = check_int(threads, "threads")
    import torch
    torch.set_num_threads(threads)
    try:
        from threadpoolctl import threadpool_limits
        threadpool_limits(limits=threads)
    except ImportError:  # pragma: no cover
        pass
    return threads


def start(namespace: dict, *, threads: int = 1) -> Run:
    """The first half of :func:`setup` (which the notebooks call), without the smoke
    overrides and the generators: ``run = pfode.nb.start(globals())``.

    1. Checks the parameters papermill injected against the ``parameters`` cell
       (:func:`check_injected`): an unknown name or a value of the wrong type stops the
       notebook at once with a message naming the parameter.
    2. Sets the thread count (:func:`set_threads`) to ``threads`` — one by default, so that
       the book's numbers do not depend on the machine's core count — or to
       ``$PFODE_THREADS`` when set.
    3. Returns a :class:`Run` (threads, smoke mode, injected names, BLAS, CPU) to print or
       record with the results.
    """
    injected = check_injected(namespace)
    env = os.environ.get(THREADS_ENV, "")
    if env:
        try:
            threads = int(env)
        except ValueError:
            raise ValueError(f"${THREADS_ENV} must be a positive integer, got {env!r}") from None
    set_threads(threads)
    return Run(threads, smoke(), tuple(injected), blas_info(), cpu_model())


def shrink(value, rule):
    """The smoke-mode value of a parameter: ``rule(value)`` for a callable rule, the smaller
    of the two for numbers (a rule is a cap: smoke mode never enlarges a run), else ``rule``."""
    if callable(rule):
        return rule(value)
    numbers = (int, float)
    if (isinstance(rule, numbers) and isinstance(value, numbers)
            and not isinstance(rule, bool) and not isinstance(value, bool)):
        return min(value, rule)
    return rule


def setup(namespace: dict, *, smoke: dict | None = None, seed=None, threads: int = 1) -> Run:
    """The one-line preamble of a book notebook:
    ``run = pfode.nb.setup(globals(), smoke=dict(num_points=100, steps=lambda s: s[:2]))``.

    1. :func:`start`: checks the injected parameters, sets the thread count.
    2. In smoke mode (:func:`smoke`), replaces each parameter named in ``smoke`` in
       ``namespace`` by :func:`shrink` of it: a number is capped, a callable is applied to the
       current value, anything else replaces it. A name the notebook does not define raises
       ``KeyError`` naming it (in either mode, so a misspelt override never goes unnoticed).
    3. Seeds ``run.gen`` (``torch.Generator``) and ``run.rng`` (``numpy.random.Generator``)
       with ``seed``, by default the notebook's ``seed`` parameter (no generators when there
       is none).
    """
    overrides = dict(smoke or {})
    missing = sorted(k for k in overrides if k not in namespace)
    if missing:
        raise KeyError(f"smoke override(s) for undefined parameter(s) {', '.join(missing)}")
    run = start(namespace, threads=threads)
    applied = []
    if run.smoke:
        for name, rule in overrides.items():
            namespace[name] = shrink(namespace[name], rule)
            applied.append(name)
    if seed is None:
        seed = namespace.get("seed")
    gen = rng = None
    if seed is not None:
        import numpy as np
        import torch
        from ._checks import check_int
        seed = check_int(seed, "seed", lower=0)
        gen = torch.Generator().manual_seed(seed)
        rng = np.random.default_rng(seed)
    return run._replace(overridden=tuple(applied), seed=seed, gen=gen, rng=rng)
