"""The sweep runner serial against a local Dask cluster of two workers, in one run.

    .venv/bin/python benchmarks/bench_sweep.py           # writes benchmarks/sweep.md, sweep.json
    .venv/bin/python benchmarks/bench_sweep.py --quick   # two small points, printed only

The chapter 9 spec trimmed to its four smallest resolutions (``sweeps/dimension_default.yml``
with ``side: [2, 4, 8, 16]``; one thread per point), run into temporary results folders
``--serial`` and with ``--workers 2``, alternately, ``--repeats`` times; the wall-time ratio
is the number to read (both runs share the machine with whatever else runs on it). The two
tables are compared: the same points and the same numbers.
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
import time
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))


def trimmed_spec(dest: Path, sides) -> Path:
    spec = yaml.safe_load((ROOT / "sweeps" / "dimension_default.yml").read_text())
    spec["grid"] = {"side": list(sides)}
    spec["notebook"] = str(ROOT / spec["notebook"])
    spec["resources"] = {"threads": 1}
    path = dest / "bench.yml"
    path.write_text(yaml.safe_dump(spec))
    return path


def _rows(table: Path) -> list[dict]:
    with open(table) as f:
        return [{k: v for k, v in r.items() if not k.startswith("run_")
                 and not (k.startswith("t_") and k.endswith("_s"))} for r in csv.DictReader(f)]


def run(sides=(2, 4, 8, 16), repeats: int = 1) -> dict:
    from pfode import sweep
    walls = {"serial": [], "workers 2": []}
    tables = {}
    for _ in range(repeats):
        for mode, kw in (("serial", {"serial": True}), ("workers 2", {"workers": 2})):
            with tempfile.TemporaryDirectory(prefix="bench-sweep-") as tmp:
                spec = trimmed_spec(Path(tmp), sides)
                t0 = time.perf_counter()
                res = sweep.run_sweep(spec, results_dir=Path(tmp) / "results", progress=False, **kw)
                walls[mode].append(time.perf_counter() - t0)
                tables[mode] = _rows(res.table)
    same = tables["serial"] == tables["workers 2"] or (
        sorted(map(json.dumps, tables["serial"])) == sorted(map(json.dumps, tables["workers 2"])))
    return {"sides": list(sides), "repeats": repeats, "wall_s": walls, "tables_equal": same,
            "rows": len(tables["serial"])}


def render(res: dict, info: dict) -> str:
    s, w = min(res["wall_s"]["serial"]), min(res["wall_s"]["workers 2"])
    return "\n".join([
        "## The sweep runner: serial against a local Dask cluster\n",
        f"- Date: {info['date']}; {info['nproc']} cores ({info['cpu']}), shared; "
        f"`python benchmarks/bench_sweep.py` ({res['repeats']} alternating repeat(s), the faster "
        "of each kept).",
        f"- The chapter 9 spec trimmed to side = {res['sides']} (n = 3 side²), one thread per "
        "point, into temporary results folders. Both runs produce the same table "
        f"({res['rows']} rows, every column but the timings): {res['tables_equal']}.\n",
        "| runner | wall time (s) | ratio to serial |",
        "|---|---|---|",
        f"| `--serial` | {s:.1f} | 1 |",
        f"| `--workers 2` (LocalCluster) | {w:.1f} | **{w / s:.2f}** |",
        "",
        "On two cores two workers can at best halve the wall time; the cluster's start "
        "(a scheduler and two worker processes) and each point's own kernel start are paid in "
        "both runs or only in the parallel one, and the largest point bounds the parallel run "
        "from below.", ""])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--repeats", type=int, default=1)
    a = ap.parse_args(argv)
    from bench_common import machine_info
    res = run((2, 4) if a.quick else (2, 4, 8, 16), repeats=a.repeats)
    text = render(res, machine_info())
    print(text)
    if not res["tables_equal"]:
        raise SystemExit("the serial and the parallel tables differ")
    if not a.quick:
        (HERE / "sweep.md").write_text(text)
        (HERE / "sweep.json").write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
