"""The sweep runner serial against a local Dask cluster of two workers, in one run.

    .venv/bin/python benchmarks/bench_sweep.py           # writes benchmarks/sweep.md, sweep.json
    .venv/bin/python benchmarks/bench_sweep.py --quick   # two small points, printed only
    .venv/bin/python benchmarks/bench_sweep.py --render-only   # sweep.md from sweep.json

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
    """The table without the timings (columns ending in ``_s``) and where the points ran."""
    with open(table) as f:
        return [{k: v for k, v in r.items() if not k.startswith("run_") and not k.endswith("_s")}
                for r in csv.DictReader(f)]


def _point_walls(res) -> dict:
    """Each point's own wall time (kernel start to rename), from its params.json."""
    return {str(p.own["side"]): json.loads((p.directory / "params.json").read_text())["wall_s"]
            for p in res.points}


def run(sides=(2, 4, 8, 16), repeats: int = 1) -> dict:
    from pfode import sweep
    walls = {"serial": [], "workers 2": []}
    points = {"serial": [], "workers 2": []}
    tables = {}
    for _ in range(repeats):
        for mode, kw in (("serial", {"serial": True}), ("workers 2", {"workers": 2})):
            with tempfile.TemporaryDirectory(prefix="bench-sweep-") as tmp:
                spec = trimmed_spec(Path(tmp), sides)
                t0 = time.perf_counter()
                res = sweep.run_sweep(spec, results_dir=Path(tmp) / "results", progress=False, **kw)
                walls[mode].append(time.perf_counter() - t0)
                points[mode].append(_point_walls(res))
                tables[mode] = _rows(res.table)
    same = tables["serial"] == tables["workers 2"] or (
        sorted(map(json.dumps, tables["serial"])) == sorted(map(json.dumps, tables["workers 2"])))
    return {"sides": list(sides), "repeats": repeats, "wall_s": walls, "point_wall_s": points,
            "tables_equal": same, "rows": len(tables["serial"])}


def list_schedule(times, workers: int = 2) -> float:
    """Makespan of the points, in submission order, each to the first free worker."""
    free = [0.0] * workers
    for t in times:
        free[free.index(min(free))] += t
    return max(free)


def render(res: dict, info: dict) -> str:
    i_s = min(range(res["repeats"]), key=lambda i: res["wall_s"]["serial"][i])
    i_w = min(range(res["repeats"]), key=lambda i: res["wall_s"]["workers 2"][i])
    s, w = res["wall_s"]["serial"][i_s], res["wall_s"]["workers 2"][i_w]
    ps, pw = res["point_wall_s"]["serial"][i_s], res["point_wall_s"]["workers 2"][i_w]
    sides = res["sides"]
    ts, tw = [ps[k] for k in map(str, sides)], [pw[k] for k in map(str, sides)]
    bound = max(sum(ts) / 2, max(ts))
    return "\n".join([
        "## The sweep runner: serial against a local Dask cluster\n",
        f"- Date: {info['date']}; {info['nproc']} cores ({info['cpu']}), shared; "
        f"`python benchmarks/bench_sweep.py` ({res['repeats']} alternating repeat(s), the faster "
        "of each kept).",
        f"- The chapter 9 spec trimmed to side = {sides} (n = 3 side²), one thread per "
        "point, into temporary results folders. Both runs produce the same table "
        f"({res['rows']} rows, every column but the timings): {res['tables_equal']}.\n",
        "| runner | wall time (s) | ratio to serial | every repeat (s) |",
        "|---|---|---|---|",
        f"| `--serial` | {s:.1f} | 1 | {', '.join(f'{t:.1f}' for t in res['wall_s']['serial'])} |",
        f"| `--workers 2` (LocalCluster) | {w:.1f} | **{w / s:.2f}** | "
        f"{', '.join(f'{t:.1f}' for t in res['wall_s']['workers 2'])} |",
        f"| two workers, points as long as in the serial run, in grid order | "
        f"{list_schedule(ts):.1f} | {list_schedule(ts) / s:.2f} | |",
        f"| two workers, the best order (max(Σ/2, longest point)) | {bound:.1f} | {bound / s:.2f} | |",
        "",
        "Each point's own wall time (its kernel's start to its folder's rename), in seconds, in "
        "the fastest repeat of each:\n",
        "| side | " + " | ".join(map(str, sides)) + " | sum |",
        "|---|" + "---|" * (len(sides) + 1),
        "| `--serial` | " + " | ".join(f"{t:.1f}" for t in ts) + f" | {sum(ts):.1f} |",
        "| `--workers 2` | " + " | ".join(f"{t:.1f}" for t in tw) + f" | {sum(tw):.1f} |",
        "",
        "Two workers cannot beat the longest point nor half the serial work (the last row); "
        "with the points in grid order, the largest last, the schedule alone gives the row "
        "before. The rest is the machine and the cluster: two points at once contend for the "
        f"two cores and the memory bus (the sum of the point times grows {sum(tw) / sum(ts):.2f}×; "
        "the driver and the two workers, which only wait on their kernels, share the cores "
        f"too), and the cluster's start and stop take {w - list_schedule(tw):.1f} s beyond the "
        "schedule of the parallel run's own point times.", ""])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--render-only", action="store_true")
    ap.add_argument("--repeats", type=int, default=2)
    a = ap.parse_args(argv)
    from bench_common import machine_info
    if a.render_only:
        res = json.loads((HERE / "sweep.json").read_text())
        (HERE / "sweep.md").write_text(render(res, res["machine"]))
        return
    res = run((2, 4) if a.quick else (2, 4, 8, 16), repeats=1 if a.quick else a.repeats)
    res["machine"] = machine_info()
    text = render(res, res["machine"])
    print(text)
    if not res["tables_equal"]:
        raise SystemExit("the serial and the parallel tables differ")
    if not a.quick:
        (HERE / "sweep.md").write_text(text)
        (HERE / "sweep.json").write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
