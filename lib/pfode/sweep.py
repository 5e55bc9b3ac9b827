"""Run one notebook over a grid of parameters with papermill, resumably, on Dask.

Usage::

    python -m pfode.sweep SPEC                       # a local Dask cluster on this machine
    python -m pfode.sweep SPEC --workers 4           # ... of 4 worker processes
    python -m pfode.sweep SPEC --scheduler tcp://host:8786   # an existing Dask cluster
    python -m pfode.sweep SPEC --serial              # one point after another, no Dask
    python -m pfode.sweep SPEC --dry-run             # list the points and what is finished
    make sweep SPEC=sweeps/dimension_default.yml ARGS="--workers 2"

Other options: ``--threads N`` (threads of a point), ``--max-points N``, ``--results DIR``,
``--no-progress``. A cluster of your own: ``dask scheduler`` in one shell, ``dask worker
tcp://HOST:8786 --nworkers 4 --nthreads 1`` in others (each worker runs one point at a time;
every worker needs this project installed and the same file system); on SLURM,
``dask_jobqueue.SLURMCluster(...).scale(jobs=N)`` and its ``scheduler_address``.

A *spec* is a YAML file::

    sweep: dimension_default              # name: results go to results/<sweep>/
    notebook: notebooks/ch09_dimension_sweep.py   # jupytext text notebook
    description: one line (optional)
    parameters: {K: 1000, s: 0.05}        # fixed values for every point (optional)
    grid: {r: [2, 4, 8]}                  # cartesian product of lists (optional)
    points: [{r: 16, K: 256}]             # explicit extra points (optional)
    env: {OMP_NUM_THREADS: 2}             # environment of the kernel (optional)
    resources: {threads: 2, gpu: 1}       # what one point needs (optional)

At least one of ``grid`` and ``points`` must give a point. A point's parameters are the fixed
``parameters`` overridden by its grid values or its explicit entry. Relative paths are taken
from the project root (the nearest folder above the spec holding ``_toc.yml``; the spec's
folder when there is none). ``resources.threads`` is the thread count of a point (default 2;
``--threads`` overrides it) and sizes the local cluster (cores / threads workers);
``resources.gpu`` makes each point hold that many units of the Dask worker resource ``GPU``,
so that one point runs per GPU (a local cluster gets one worker per visible GPU, each with its
own ``CUDA_VISIBLE_DEVICES``).

What the runner does, in order:

1. validates the spec's keys and values, converts the notebook to ``.ipynb`` in a temporary
   folder (jupytext) and reads its parameters cell (``papermill.inspect_notebook``); any
   parameter the notebook does not declare, or of another type than its default, is
   rejected, naming it and the allowed names, before anything is run or written; a scheduler
   that does not answer within 10 s is reported before any point runs;
2. gives every point a deterministic id, ``<key=value slug>-<hash>`` where the hash covers
   *all* of the point's parameters (changing a fixed parameter changes every id, so stale
   results are never reused);
3. runs each unfinished point as one task (:func:`run_point`): papermill in a kernel of its own
   (kernel ``python3``, working directory the notebook's folder, talking over Unix sockets, so
   that kernels started at once cannot race for a TCP port) started with the point's
   environment passed explicitly (``OMP_NUM_THREADS``, ``MKL_NUM_THREADS``,
   ``OPENBLAS_NUM_THREADS`` and ``PFODE_THREADS`` from the threads; the driver's
   ``MALLOC_TRIM_THRESHOLD_``, not the one a Dask nanny gives its workers; the spec's
   ``env``), in a temporary folder ``results/<sweep>/.tmp-<id>-*``; the notebook records its
   numbers with :func:`pfode.record.save_metrics` (the path is in ``$PFODE_METRICS``). When
   the notebook and its metrics are complete the folder is renamed atomically to
   ``results/<sweep>/<id>/`` (holding ``<notebook>.ipynb``, ``params.json``, ``metrics.json``
   and the kernel's stderr, ``kernel.log``). A folder with that name *is* the "finished"
   marker: a killed driver or worker leaves only ``.tmp-*`` folders, removed by the runner,
   and finished points are skipped. When a Dask worker dies in the middle of a point the
   scheduler gives the point to another worker; a point already finished is not run again;
4. a point that raises is reported by id and parameters, its executed notebook kept under
   ``results/<sweep>/.failed/<id>.ipynb`` (its kernel's stderr next to it, ``<id>.kernel.log``),
   and the other points still run;
5. rebuilds ``results/<sweep>/table.csv`` (written to a temporary file, then ``os.replace``):
   one row per metrics row of every finished point of the spec, with columns ``point_id``,
   the parameters, then the metrics, then where each point ran (``run_threads``, ``run_cpu``,
   ``run_torch``).

A lock file (``results/<sweep>/.lock``, holding the driver's pid) keeps a second driver off a
sweep that is running; a dead driver's lock is taken over. A progress bar counts the finished
and failed points, and the Dask dashboard's address is printed. Dask (``distributed``) is the
``[sweep]`` extra; ``--serial`` runs without it.
"""
from __future__ import annotations

import argparse
import contextlib
import hashlib
import itertools
import json
import os
import re
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

from .record import METRICS_ENV, atomic_write, load_metrics

THREADS_ENV = "PFODE_THREADS"          # pfode.nb.start reads it in the kernel


def runtime(threads) -> dict:
    """Where a point is computed: thread count, CPU model, numerical libraries.

    Round-off, and so the last digits of an adaptive solve, can depend on all three (MKL takes
    other code paths on Intel and AMD processors; reductions split differently across
    threads), so each finished point records them and a resumed sweep says when it mixes them.
    """
    import platform

    from .nb import cpu_model
    libs = {"python": platform.python_version()}
    for mod in ("torch", "numpy", "scipy"):
        try:
            libs[mod] = __import__(mod).__version__
        except ImportError:  # pragma: no cover
            pass
    return {"threads": int(threads) if str(threads).isdigit() else str(threads),
            "cpu": cpu_model(), "machine": platform.machine(), **libs}

__all__ = [
    "SpecError",
    "SweepError",
    "Spec",
    "Point",
    "SweepResult",
    "load_spec",
    "expand_points",
    "point_id",
    "notebook_parameters",
    "run_sweep",
    "write_table",
    "main",
]

SPEC_KEYS = {"sweep", "notebook", "description", "parameters", "grid", "points", "env",
             "kernel", "results_dir", "cell_timeout", "resources"}
RESOURCE_KEYS = {"threads": 1, "gpu": 0}          # and the smallest value each may take
REQUIRED_KEYS = ("sweep", "notebook")
FINISHED_FILES = ("params.json", "metrics.json")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class SpecError(ValueError):
    """The spec file or a point in it is invalid (nothing has been run)."""


class SweepError(RuntimeError):
    """One or more points failed while running (the others finished)."""


@dataclass
class Spec:
    """A validated sweep spec (see the module docstring)."""

    path: Path
    root: Path
    sweep: str
    notebook: Path
    parameters: dict
    grid: dict
    points: list
    env: dict
    kernel: str = "python3"
    results_dir: Path | None = None
    cell_timeout: int | None = None
    description: str = ""
    resources: dict = field(default_factory=dict)


@dataclass
class Point:
    """One parameter point of a sweep."""

    id: str
    parameters: dict          # all parameters passed to the notebook (fixed + own)
    own: dict                 # the values that come from the grid / explicit entry
    directory: Path           # results/<sweep>/<id>

    @property
    def finished(self) -> bool:
        return self.directory.is_dir() and all((self.directory / f).is_file()
                                               for f in FINISHED_FILES)


@dataclass
class SweepResult:
    """What :func:`run_sweep` did."""

    sweep_dir: Path
    points: list[Point]
    ran: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    table: Path | None = None
    wall_s: float = 0.0


# --------------------------------------------------------------------------- spec


def _project_root(start: Path) -> Path:
    for d in (start, *start.parents):
        if (d / "_toc.yml").exists():
            return d
    return start


def _check_scalar_or_list(where: str, key: str, value: Any) -> None:
    """Parameter values must survive a YAML -> papermill -> JSON round trip."""
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise SpecError(f"{where}: value of {key!r} is not plain data ({value!r})") from exc


def _check_param_names(where: str, mapping: Any) -> dict:
    if mapping is None:
        return {}
    if not isinstance(mapping, dict):
        raise SpecError(f"{where} must be a mapping of parameter names to values, "
                        f"got {type(mapping).__name__}")
    for k, v in mapping.items():
        if not isinstance(k, str) or not k.isidentifier():
            raise SpecError(f"{where}: {k!r} is not a valid parameter name")
        _check_scalar_or_list(where, k, v)
    return dict(mapping)


def load_spec(path: str | os.PathLike) -> Spec:
    """Read and validate a sweep spec; raise :class:`SpecError` with a clear message."""
    import yaml

    path = Path(path).resolve()
    if not path.is_file():
        raise SpecError(f"spec file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise SpecError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise SpecError(f"{path}: a spec must be a YAML mapping with keys "
                        f"{', '.join(sorted(SPEC_KEYS))}")
    unknown = sorted(set(data) - SPEC_KEYS)
    if unknown:
        raise SpecError(f"{path}: unknown spec key(s) {', '.join(map(repr, unknown))}; "
                        f"allowed: {', '.join(sorted(SPEC_KEYS))}")
    missing = [k for k in REQUIRED_KEYS if not data.get(k)]
    if missing:
        raise SpecError(f"{path}: missing required key(s) {', '.join(missing)}")
    sweep = data["sweep"]
    if not isinstance(sweep, str) or not _NAME_RE.match(sweep):
        raise SpecError(f"{path}: sweep name {sweep!r} must be letters, digits, '_', '.', '-'")
    root = _project_root(path.parent)
    notebook = Path(str(data["notebook"]))
    notebook = (notebook if notebook.is_absolute() else root / notebook).resolve()
    if not notebook.is_file():
        raise SpecError(f"{path}: notebook not found: {notebook}")
    if notebook.suffix not in (".py", ".md", ".ipynb"):
        raise SpecError(f"{path}: notebook must be a jupytext .py/.md file or an .ipynb, "
                        f"got {notebook.name}")

    parameters = _check_param_names("parameters", data.get("parameters"))
    grid = data.get("grid") or {}
    if not isinstance(grid, dict):
        raise SpecError(f"{path}: grid must map parameter names to lists of values")
    for k, values in grid.items():
        _check_param_names("grid", {k: values})
        if not isinstance(values, list):
            raise SpecError(f"{path}: grid value of {k!r} must be a list, got {values!r}")
        if not values:
            raise SpecError(f"{path}: grid list of {k!r} is empty (the grid has no points)")
    points = data.get("points") or []
    if not isinstance(points, list):
        raise SpecError(f"{path}: points must be a list of mappings")
    for i, p in enumerate(points):
        if not isinstance(p, dict) or not p:
            raise SpecError(f"{path}: points[{i}] must be a non-empty mapping, got {p!r}")
        _check_param_names(f"points[{i}]", p)
    if not grid and not points:
        raise SpecError(f"{path}: the sweep has no points: give a non-empty grid or points")
    env = data.get("env") or {}
    if not isinstance(env, dict) or not all(isinstance(k, str) for k in env):
        raise SpecError(f"{path}: env must map variable names to values")
    env = {k: str(v) for k, v in env.items()}
    kernel = data.get("kernel", "python3")
    if not isinstance(kernel, str) or not kernel:
        raise SpecError(f"{path}: kernel must be a kernel name")
    results_dir = data.get("results_dir")
    if results_dir is not None:
        results_dir = Path(str(results_dir))
        results_dir = results_dir if results_dir.is_absolute() else root / results_dir
    cell_timeout = data.get("cell_timeout")
    if cell_timeout is not None and (isinstance(cell_timeout, bool)
                                     or not isinstance(cell_timeout, int) or cell_timeout < 1):
        raise SpecError(f"{path}: cell_timeout must be a positive integer (seconds)")
    description = data.get("description") or ""
    resources = data.get("resources") or {}
    if not isinstance(resources, dict) or set(resources) - set(RESOURCE_KEYS):
        raise SpecError(f"{path}: resources must be a mapping with keys among "
                        f"{', '.join(RESOURCE_KEYS)}, got {resources!r}")
    for k, v in resources.items():
        if isinstance(v, bool) or not isinstance(v, int) or v < RESOURCE_KEYS[k]:
            raise SpecError(f"{path}: resources.{k} must be an integer >= {RESOURCE_KEYS[k]}, got {v!r}")
    return Spec(path, root, sweep, notebook, parameters, dict(grid), list(points), env,
                kernel, results_dir, cell_timeout, str(description), dict(resources))


def _slug_value(v: Any) -> str:
    s = v if isinstance(v, str) else json.dumps(v, separators=(",", ":"))
    return re.sub(r"[^A-Za-z0-9.+-]+", "-", s).strip("-") or "x"


def point_id(parameters: dict, own: dict | None = None, *, max_slug: int = 60) -> str:
    """Deterministic id ``<k=v_k=v slug>-<8 hex>`` of a point.

    The slug lists ``own`` (the values that vary across the sweep, in sorted key order) for
    readability; the hash is the SHA-1 of the canonical JSON of *all* ``parameters``, so two
    points share an id only when every parameter is equal.
    """
    own = parameters if own is None else own
    canon = json.dumps(parameters, sort_keys=True, separators=(",", ":"), allow_nan=False)
    digest = hashlib.sha1(canon.encode()).hexdigest()[:8]
    slug = "_".join(f"{k}={_slug_value(own[k])}" for k in sorted(own))
    slug = slug[:max_slug].rstrip("_-.")
    return f"{slug}-{digest}" if slug else digest


def expand_points(spec: Spec, sweep_dir: Path | None = None) -> list[Point]:
    """The spec's points: the grid's cartesian product (first key slowest), then ``points``.

    Duplicate points (same parameters) are kept once.
    """
    sweep_dir = sweep_dir or _sweep_dir(spec, None)
    owns: list[dict] = []
    if spec.grid:
        keys = list(spec.grid)
        for combo in itertools.product(*(spec.grid[k] for k in keys)):
            owns.append(dict(zip(keys, combo)))
    owns.extend(dict(p) for p in spec.points)
    out, seen = [], set()
    for own in owns:
        params = {**spec.parameters, **own}
        pid = point_id(params, own)
        if pid in seen:
            continue
        seen.add(pid)
        out.append(Point(pid, params, own, sweep_dir / pid))
    return out


def _sweep_dir(spec: Spec, results_dir: str | os.PathLike | None) -> Path:
    base = Path(results_dir) if results_dir is not None else (spec.results_dir or spec.root / "results")
    return Path(base).resolve() / spec.sweep


# --------------------------------------------------------------------------- notebook


def _to_ipynb(notebook: Path, dest: Path, kernel: str) -> Path:
    """Write ``notebook`` (jupytext text or .ipynb) as ``dest/<stem>.ipynb``."""
    import jupytext
    import nbformat

    nb = jupytext.read(notebook)
    ks = nb.metadata.get("kernelspec") or {}
    if not ks.get("name"):
        nb.metadata["kernelspec"] = {"name": kernel, "display_name": kernel, "language": "python"}
    nb.metadata.setdefault("language_info", {"name": "python"})
    out = dest / f"{notebook.stem}.ipynb"
    nbformat.write(nb, out)
    return out


def _declared(ipynb: Path) -> dict:
    """``{name: default}`` of the parameters cell.

    ``papermill.inspect_notebook`` skips any line holding two ``=`` (e.g. ``a = 1  # b = 2``);
    the names assigned at top level of the cell (read with ``ast``) are added, so such a
    comment cannot make a real parameter look unknown.
    """
    import ast

    import nbformat
    import papermill

    declared = {k: v.get("default") for k, v in papermill.inspect_notebook(str(ipynb)).items()}
    nb = nbformat.read(ipynb, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code" and "parameters" in cell.metadata.get("tags", []):
            try:
                tree = ast.parse(cell.source)
            except SyntaxError as exc:
                raise SpecError(f"the parameters cell of {ipynb.name} is not valid Python: {exc}") from exc
            for node in tree.body:
                targets = (node.targets if isinstance(node, ast.Assign)
                           else [node.target] if isinstance(node, ast.AnnAssign) else [])
                for t in targets:
                    if isinstance(t, ast.Name) and t.id not in declared:
                        declared[t.id] = ast.get_source_segment(cell.source, node.value)
            break
    return declared


def notebook_parameters(notebook: str | os.PathLike) -> dict:
    """The parameters declared in the notebook's ``parameters`` cell: ``{name: default repr}``."""
    notebook = Path(notebook)
    with tempfile.TemporaryDirectory(prefix="pfode-sweep-") as tmp:
        ipynb = _to_ipynb(notebook, Path(tmp), "python3") if notebook.suffix != ".ipynb" else notebook
        return _declared(ipynb)


def _default_value(source):
    """The value of a default written in a parameters cell, or None when it is not a literal."""
    import ast
    if not isinstance(source, str):
        return source
    try:
        return ast.literal_eval(source)
    except (ValueError, SyntaxError):
        return None


def _check_points_against(spec: Spec, allowed: dict, points: Sequence[Point]) -> None:
    """Every parameter of every point must be declared by the notebook and have the type of
    its default (:func:`pfode.nb.check_parameter`); checked before anything runs."""
    from .nb import check_parameter

    if not allowed:
        raise SpecError(f"{spec.notebook.name} has no parameters cell (a code cell tagged "
                        f"'parameters'), so it cannot be swept")
    names = set(spec.parameters) | set(spec.grid)
    for p in spec.points:
        names |= set(p)
    unknown = sorted(names - set(allowed))
    if unknown:
        raise SpecError(
            f"{spec.path.name}: unknown parameter(s) {', '.join(map(repr, unknown))} for "
            f"{spec.notebook.name}; its parameters are: {', '.join(sorted(allowed))}")
    defaults = {k: _default_value(v) for k, v in allowed.items()}
    for point in points:
        for k, v in point.parameters.items():
            try:
                check_parameter(k, v, defaults[k])
            except (TypeError, ValueError) as exc:
                raise SpecError(f"{spec.path.name}: point {json.dumps(point.own)}: {exc}") from None


# Set by a Dask nanny in its worker's environment (``distributed.nanny.pre-spawn-environ``;
# the workers of a ``dask worker`` command have it): the thread counts are set per point below;
# the malloc setting (glibc gives freed memory back at once) made a chapter 9 point 1.7 times
# slower in a kernel that inherited it, so a point gets the driver's value (unset: unset).
_DRIVER_ENV = ("MALLOC_TRIM_THRESHOLD_",)


def point_task(spec: Spec, ipynb: Path, point: Point, sweep_dir: Path, threads: int) -> dict:
    """Everything :func:`run_point` needs for ``point``, as plain data (it travels to a worker).

    ``env`` is what the kernel's environment must hold on top of the worker's: the thread
    counts, the driver's values of :data:`_DRIVER_ENV` (``None``: removed), the spec's ``env``.
    """
    n = str(threads)
    env = {**{k: os.environ.get(k) for k in _DRIVER_ENV}, "OMP_NUM_THREADS": n,
           "MKL_NUM_THREADS": n, "OPENBLAS_NUM_THREADS": n, THREADS_ENV: n,
           "OMP_WAIT_POLICY": "PASSIVE", **spec.env}
    return {"sweep": spec.sweep, "notebook": spec.notebook.name, "ipynb": str(ipynb),
            "cwd": str(spec.notebook.parent), "kernel": spec.kernel, "timeout": spec.cell_timeout,
            "id": point.id, "parameters": point.parameters, "own": point.own,
            "directory": str(point.directory), "sweep_dir": str(sweep_dir), "env": env,
            "gpu": spec.resources.get("gpu", 0)}


def run_point(task: dict) -> dict:
    """Execute one point (a :func:`point_task`) and rename its folder into place.

    Runs in any process: the driver's (``--serial``) or a Dask worker's. The kernel gets the
    task's environment explicitly (this process's environment is not changed, so several
    points can run side by side), in a temporary folder ``<sweep>/.tmp-<id>-*``; the folder
    becomes ``<sweep>/<id>/`` by one ``os.rename`` when the notebook and its metrics are
    complete. A point that is already finished (run to completion by an earlier attempt whose
    worker died before reporting) is not run again. Returns ``{"id", "status", "wall_s"}``
    with status ``"ran"`` or ``"finished before"``; raises when the notebook fails, after
    keeping its executed notebook under ``<sweep>/.failed/``.
    """
    import papermill
    from jupyter_client.manager import KernelManager

    point_dir, sweep_dir = Path(task["directory"]), Path(task["sweep_dir"])
    if all((point_dir / f).is_file() for f in FINISHED_FILES):
        return {"id": task["id"], "status": "finished before", "wall_s": 0.0}
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{task['id']}-", dir=sweep_dir))
    out_nb = tmp / f"{Path(task['notebook']).stem}.ipynb"
    metrics = tmp / "metrics.json"
    env = {**os.environ, **task["env"], METRICS_ENV: str(metrics), **_gpu_env(task)}
    env = {k: v for k, v in env.items() if v is not None}
    start = time.perf_counter()
    ok = False
    # Unix sockets, at an absolute and short path (a socket path has at most 107 bytes): kernels
    # started at once by two workers cannot race for a TCP port (a kernel then dies with
    # "Address already in use"), and nothing is open to the network.
    sockets = tempfile.mkdtemp(prefix="pfode-kernel-") if os.name == "posix" else None
    km = (KernelManager(kernel_name=task["kernel"], transport="ipc", ip=os.path.join(sockets, "k"))
          if sockets else KernelManager(kernel_name=task["kernel"]))
    try:
        with open(tmp / "kernel.log", "w") as log:             # the kernel's own stderr
            km.start_kernel(env=env, cwd=task["cwd"], stderr=log)
        papermill.execute_notebook(
            task["ipynb"], str(out_nb), parameters=task["parameters"], kernel_name=task["kernel"],
            km=km, progress_bar=False, log_output=False, execution_timeout=task["timeout"])
        if not metrics.is_file():
            raise SweepError(f"the notebook finished without recording metrics "
                             f"(call pfode.record.save_metrics(...)); ${METRICS_ENV} was {metrics}")
        load_metrics(metrics)                                 # readable, non-empty
        wall = time.perf_counter() - start
        meta = {"sweep": task["sweep"], "point_id": task["id"], "notebook": task["notebook"],
                "parameters": task["parameters"], "own": task["own"],
                "smoke": env.get("PFODE_SMOKE", "") not in ("", "0", "false", "False"),
                "wall_s": round(wall, 3), "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
                "runtime": runtime(env[THREADS_ENV])}
        (tmp / "params.json").write_text(json.dumps(meta, indent=1) + "\n")
        os.chmod(tmp, 0o755)                                  # mkdtemp makes it private
        for f in tmp.iterdir():
            os.chmod(f, 0o644)
        if point_dir.exists():                                # an incomplete leftover
            shutil.rmtree(point_dir)
        os.rename(tmp, point_dir)                             # atomic: now it is finished
        ok = True
        for old in (sweep_dir / ".failed").glob(f"{task['id']}.*"):
            old.unlink(missing_ok=True)
        return {"id": task["id"], "status": "ran", "wall_s": wall}
    finally:
        if km.has_kernel:
            km.shutdown_kernel(now=True)
        if sockets:
            shutil.rmtree(sockets, ignore_errors=True)
        if not ok:
            failed = sweep_dir / ".failed"
            failed.mkdir(exist_ok=True)
            for src, suffix in ((out_nb, ".ipynb"), (tmp / "kernel.log", ".kernel.log")):
                if src.exists():
                    shutil.copy2(src, failed / f"{task['id']}{suffix}")
            shutil.rmtree(tmp, ignore_errors=True)


def _gpu_env(task: dict) -> dict:
    """``CUDA_VISIBLE_DEVICES`` for a GPU point on a local cluster: worker ``i`` of a
    :func:`local_cluster` with GPU resources owns device ``i`` (a worker of an external cluster
    keeps the devices its own environment gives it)."""
    if not task["gpu"] or "CUDA_VISIBLE_DEVICES" in task["env"]:
        return {}
    try:
        from distributed import get_worker
        name = get_worker().name
    except (ImportError, ValueError):
        return {}
    return {"CUDA_VISIBLE_DEVICES": str(name)} if isinstance(name, int) else {}


# --------------------------------------------------------------------------- table


def _cell(v: Any) -> Any:
    """A table cell: lists and mappings as compact JSON, NaN as ``nan`` (an empty cell is a
    missing value)."""
    if isinstance(v, (list, dict)):
        return json.dumps(v, separators=(",", ":"))
    return "nan" if isinstance(v, float) and v != v else v


RUN_COLUMNS = ("threads", "cpu", "torch")


def _point_runtime(p: Point) -> dict:
    """The ``runtime`` record of a finished point ({} for points finished before it existed)."""
    try:
        return json.loads((p.directory / "params.json").read_text()).get("runtime") or {}
    except (OSError, ValueError):
        return {}


def mixed_runtimes(points: Sequence[Point], current: dict) -> list[str]:
    """Finished points computed with another thread count, CPU or library versions than
    ``current``: one line each, for the resume warning."""
    out = []
    for p in points:
        if not p.finished:
            continue
        rt = _point_runtime(p)
        diff = {k: (rt.get(k), v) for k, v in current.items() if rt and rt.get(k) != v}
        if not rt:
            diff = {"runtime": ("not recorded", "recorded")}
        if diff:
            out.append(f"{p.id}: " + ", ".join(f"{k} {a!r} (now {b!r})" for k, (a, b) in diff.items()))
    return out


def write_table(sweep_dir: Path, points: Sequence[Point]) -> Path:
    """(Re)build ``<sweep_dir>/table.csv`` from the finished points among ``points``.

    One row per metrics row; columns ``point_id``, every parameter (in first-seen order),
    every metric, then ``run_threads``, ``run_cpu``, ``run_torch``. A metric named like a
    parameter must carry the same value (else :class:`SweepError`). Lists and mappings are
    written as JSON, a missing value as an empty cell; the file is replaced atomically.
    """
    import pandas as pd

    rows, params = [], {}
    for p in (p for p in points if p.finished):
        params.update(dict.fromkeys(p.parameters))
        run = {f"run_{k}": v for k, v in _point_runtime(p).items() if k in RUN_COLUMNS}
        for m in load_metrics(p.directory / "metrics.json"):
            for k in m.keys() & p.parameters.keys():
                if m[k] != p.parameters[k]:
                    raise SweepError(f"point {p.id}: metric {k!r} = {m[k]!r} clashes with the "
                                     f"parameter {k} = {p.parameters[k]!r}")
            rows.append({k: _cell(v) for k, v in {**m, **p.parameters, "point_id": p.id, **run}.items()})
    run_cols = [f"run_{k}" for k in RUN_COLUMNS]
    first = ["point_id", *params]
    metrics = dict.fromkeys(k for r in rows for k in r if k not in first and k not in run_cols)
    table = pd.DataFrame(rows, columns=[*first, *metrics, *run_cols], dtype=object)
    path = sweep_dir / "table.csv"
    with atomic_write(path, newline="") as f:
        table.to_csv(f, index=False, na_rep="", lineterminator="\n")
    return path


# --------------------------------------------------------------------------- driver


@contextlib.contextmanager
def _lock(sweep_dir: Path) -> Iterator[None]:
    lock = sweep_dir / ".lock"
    try:
        fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        try:
            pid = int(lock.read_text().strip() or 0)
            os.kill(pid, 0)
            alive = True
        except (ValueError, ProcessLookupError, PermissionError, OSError):
            alive = False
        if alive:
            raise SweepError(f"{sweep_dir} is being run by process {pid} (remove {lock} if not)") from None
        lock.unlink(missing_ok=True)
        fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    try:
        os.write(fd, str(os.getpid()).encode())
        os.close(fd)
        yield
    finally:
        lock.unlink(missing_ok=True)


def run_sweep(spec_path: str | os.PathLike, *, results_dir: str | os.PathLike | None = None,
              dry_run: bool = False, max_points: int | None = None, threads: int | None = None,
              progress: bool = True, out=None, serial: bool = False, workers: int | None = None,
              scheduler: str | None = None) -> SweepResult:
    """Run (or, with ``dry_run``, list) the points of a spec; see the module docstring.

    ``serial``: one point after another in this process, without Dask. Otherwise the points
    are tasks of a ``dask.distributed`` cluster: the one at ``scheduler`` (an address such as
    ``tcp://host:8786``), or a ``LocalCluster`` of ``workers`` processes started here (default:
    the cores divided by the threads of a point, at least 1). ``threads``: the threads of a
    point (default the spec's ``resources.threads``, else 2).

    Raises :class:`SpecError` before running anything when the spec is invalid or the
    scheduler does not answer, and :class:`SweepError` after the run when some points failed
    (the others are finished and tabulated). ``max_points`` limits how many unfinished points
    this call runs.
    """
    out = sys.stdout if out is None else out
    if max_points is not None and (isinstance(max_points, bool) or max_points < 1):
        raise SpecError(f"max_points must be a positive integer, got {max_points!r}")
    for name, value in (("threads", threads), ("workers", workers)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise SpecError(f"{name} must be a positive integer, got {value!r}")
    if serial and (workers is not None or scheduler is not None):
        raise SpecError("serial runs in this process: it takes neither workers nor scheduler")
    if scheduler is not None and workers is not None:
        raise SpecError("workers sizes a local cluster; a scheduler brings its own workers")
    spec = load_spec(spec_path)
    threads = threads or spec.resources.get("threads", 2)
    sweep_dir = _sweep_dir(spec, results_dir)
    points = expand_points(spec, sweep_dir)
    with tempfile.TemporaryDirectory(prefix="pfode-sweep-") as tmp:
        ipynb = (_to_ipynb(spec.notebook, Path(tmp), spec.kernel)
                 if spec.notebook.suffix != ".ipynb" else spec.notebook)
        allowed = _declared(ipynb)
        _check_points_against(spec, allowed, points)         # before anything is written
        result = SweepResult(sweep_dir, points)
        todo = [p for p in points if not p.finished]
        result.skipped = [p.id for p in points if p.finished]
        if max_points is not None:
            todo = todo[:max_points]
        threads_env = spec.env.get(THREADS_ENV, str(threads))
        mixed = mixed_runtimes(points, runtime(threads_env)) if todo else []
        if mixed:
            print(f"warning: {len(mixed)} finished point(s) of {spec.sweep} were computed on "
                  f"another machine, thread count or library version than this run; their "
                  f"last digits (round-off, adaptive step sequences) may differ from points "
                  f"computed now. The table's run_* columns say which is which; delete a "
                  f"point's folder to recompute it.\n  " + "\n  ".join(mixed[:10]), file=out)
        if dry_run:
            print(f"sweep {spec.sweep}: {len(points)} point(s), {len(result.skipped)} finished, "
                  f"notebook {spec.notebook.name}, results in {sweep_dir}", file=out)
            for p in points:
                mark = "done" if p.finished else ("run " if p in todo else "wait")
                print(f"  [{mark}] {p.id}  {json.dumps(p.own)}", file=out)
            return result
        sweep_dir.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        with _lock(sweep_dir):
            _remove_stale(sweep_dir)                         # left by a killed run
            tasks = [point_task(spec, ipynb, p, sweep_dir, threads) for p in todo]
            runner = (_serial(tasks) if serial or not tasks else
                      _on_dask(tasks, spec, threads, workers, scheduler, out))
            try:
                for task, outcome in _progress(runner, len(points), len(result.skipped), sweep_dir, progress):
                    if isinstance(outcome, BaseException):
                        msg = _short_error(outcome)
                        result.failed[task["id"]] = msg
                        print(f"point {task['id']} {json.dumps(task['own'])} FAILED: {msg}", file=out)
                    else:
                        result.ran.append(task["id"])
            finally:
                _remove_stale(sweep_dir)                     # of points whose worker was killed
                result.table = write_table(sweep_dir, points)
        result.wall_s = time.perf_counter() - start
    done = sum(p.finished for p in points)
    print(f"sweep {spec.sweep}: ran {len(result.ran)}, skipped {len(result.skipped)} finished, "
          f"failed {len(result.failed)}; {done}/{len(points)} finished; "
          f"{result.wall_s:.1f} s; table {result.table}", file=out)
    if result.failed:
        lines = "\n".join(f"  {pid}: {msg}" for pid, msg in result.failed.items())
        err = SweepError(f"{len(result.failed)} point(s) of sweep {spec.sweep} failed "
                         f"(executed notebooks under {sweep_dir / '.failed'}):\n{lines}")
        err.result = result
        raise err
    return result


def _remove_stale(sweep_dir: Path) -> None:
    for stale in sweep_dir.glob(".tmp-*"):
        shutil.rmtree(stale, ignore_errors=True)


def _serial(tasks):
    """``(task, result or exception)`` for each task, run here one after another."""
    for task in tasks:
        try:
            yield task, run_point(task)
        except Exception as exc:   # noqa: BLE001 - reported by the driver, others go on
            yield task, exc


def _progress(runner, total: int, initial: int, sweep_dir: Path, enabled: bool):
    """The runner's outcomes, with a bar of finished points and the running / failed counts."""
    from tqdm import tqdm
    bar = tqdm(total=total, initial=initial, desc=sweep_dir.name, unit="point", disable=not enabled,
               file=sys.stderr)
    failed = 0
    try:
        for task, outcome in runner:
            failed += isinstance(outcome, BaseException)
            running = len(list(sweep_dir.glob(".tmp-*")))       # a point at work has one
            bar.set_postfix_str(f"running {running}, failed {failed}, last {task['id'][:32]}",
                                refresh=False)
            bar.update(1)
            yield task, outcome
    finally:
        bar.close()


def _on_dask(tasks, spec: Spec, threads: int, workers: int | None, scheduler: str | None, out):
    """``(task, result or exception)`` as the points finish on a Dask cluster.

    A task whose worker dies is given by the scheduler to another worker (up to
    ``distributed.scheduler.allowed-failures`` times, then reported as failed): a point has no
    side effect before its final rename, and :func:`run_point` does not run a finished point
    again, so a killed worker loses nothing and no point is run to completion twice.
    """
    from ._checks import require
    distributed = require("distributed", "running a sweep on Dask (use --serial without it)")
    gpu = spec.resources.get("gpu", 0)
    cluster = None
    if scheduler is not None:
        try:
            client = distributed.Client(scheduler, timeout="10s")
        except (OSError, TimeoutError) as exc:
            raise SpecError(f"no Dask scheduler answers at {scheduler!r} within 10 s ({exc}); "
                            f"start one (dask scheduler; dask worker {scheduler}) or run "
                            f"without --scheduler for a local cluster") from None
    else:
        cluster = local_cluster(workers, threads, gpu)
        client = distributed.Client(cluster)
    try:
        link = getattr(client, "dashboard_link", None)
        n = len(client.scheduler_info(n_workers=-1).get("workers", {}))
        print(f"Dask: {n} worker(s) at {client.scheduler.address}"
              + (f"; dashboard {link}" if link else ""), file=out)
        resources = {"GPU": gpu} if gpu else None
        futures = {client.submit(run_point, t, key=f"{t['sweep']}-{t['id']}", pure=False,
                                 resources=resources): t for t in tasks}
        for fut in distributed.as_completed(futures):
            try:
                outcome = fut.result()
            except Exception as exc:   # noqa: BLE001 - the point failed; the others go on
                outcome = exc
            yield futures[fut], outcome
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def local_cluster(workers: int | None = None, threads: int = 2, gpu: int = 0):
    """A ``dask.distributed.LocalCluster`` for sweep points: one point per worker process
    (one task thread each), ``workers`` of them (default: the cores divided by ``threads``, at
    least 1; with ``gpu``, one worker per visible GPU, each holding the resource ``GPU: 1``)."""
    import logging

    import dask
    import distributed
    if gpu:
        import torch
        count = torch.cuda.device_count()
        if count < 1:
            raise SpecError("the spec's points need a GPU (resources.gpu) and none is visible here")
        workers, resources = workers or count, {"GPU": 1}
    else:
        workers, resources = workers or max(1, (os.cpu_count() or 1) // threads), None
    # A nanny writes distributed.nanny.pre-spawn-environ (thread counts 1, a malloc setting)
    # into *this* process's os.environ before it spawns its worker: not here. The worker only
    # waits on its kernel, which gets its thread counts from the point's task.
    with dask.config.set({"distributed.nanny.pre-spawn-environ": {}}):
        return distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                        resources=resources, dashboard_address=":0",
                                        silence_logs=logging.ERROR)


def _short_error(exc: BaseException) -> str:
    """One line: papermill's PapermillExecutionError carries the notebook's exception."""
    ename = getattr(exc, "ename", None)
    evalue = getattr(exc, "evalue", None)
    if ename:
        cell = getattr(exc, "exec_count", None)
        return f"{ename}: {evalue}" + (f" (cell {cell})" if cell is not None else "")
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pfode.sweep", description=__doc__.split("\n")[0])
    ap.add_argument("spec", help="sweep spec (YAML)")
    ap.add_argument("--dry-run", action="store_true", help="list the points and exit")
    ap.add_argument("--max-points", type=int, default=None, help="run at most N unfinished points")
    ap.add_argument("--results", default=None, help="results folder (default: <root>/results)")
    ap.add_argument("--threads", type=int, default=None,
                    help="threads of a point (OMP_NUM_THREADS of its kernel unless the spec's env "
                         "sets it; default: the spec's resources.threads, else 2)")
    how = ap.add_mutually_exclusive_group()
    how.add_argument("--workers", type=int, default=None,
                     help="worker processes of the local Dask cluster (default: cores / threads)")
    how.add_argument("--scheduler", default=None, metavar="ADDRESS",
                     help="run on the Dask cluster of this scheduler (e.g. tcp://host:8786)")
    how.add_argument("--serial", action="store_true",
                     help="one point after another in this process, without Dask")
    ap.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = ap.parse_args(argv)
    try:
        run_sweep(args.spec, results_dir=args.results, dry_run=args.dry_run,
                  max_points=args.max_points, threads=args.threads,
                  progress=not args.no_progress, serial=args.serial, workers=args.workers,
                  scheduler=args.scheduler)
    except SpecError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except SweepError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
