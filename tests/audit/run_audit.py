"""The assertion audit: every asserted number, its threshold, and whether runs agree.

    .venv/bin/python tests/audit/run_audit.py [--repeat 3] [--threads 2] [--jobs 2]
        [--notebooks NAME ...] [--no-tests] [--out results/audit]

Runs every book notebook at its default parameters ``--repeat`` times at one thread and once
more with ``PFODE_THREADS=--threads`` (notebooks take their thread count from
:func:`pfode.nb.start`), and the unit tests once, all with instrumented assertions
(:mod:`instrument`, :mod:`audit_recorder`). Writes ``asserts.csv`` (one row per assertion
site: evaluations, the smallest margin, the measured value and threshold there, the largest
relative change of any recorded value between runs, and the comment next to the assertion)
and ``summary.md`` (the sites within a factor 10 of their threshold).
"""
from __future__ import annotations

import argparse
import csv
import glob
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
PY = sys.executable
# The training notebook is the committed model's training run (15 min); it is audited in
# smoke mode, as the test suite runs it.
SMOKE_ONLY = {"ch14_train_mmdit"}


def notebooks(names=None):
    out = []
    for f in sorted((ROOT / "notebooks").glob("*.py")):
        if "# %%" in f.read_text() and (not names or f.stem in names):
            out.append(f)
    return out


def run_notebook(nb: Path, tag: str, tmp: Path, threads: int) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads),
           "PFODE_THREADS": str(threads), "PFODE_ROOT": str(ROOT), "MPLBACKEND": "Agg",
           "PFODE_FIGURES": str(tmp / "figures"), "PYTHONHASHSEED": "0",
           "OMP_WAIT_POLICY": "PASSIVE", "PYTHONPATH": str(ROOT / "lib")}
    if nb.stem in SMOKE_ONLY:
        env["PFODE_SMOKE"] = "1"
    else:
        env.pop("PFODE_SMOKE", None)
    prefix = tmp / f"{nb.stem}.{tag}"
    t0 = time.time()
    p = subprocess.run([PY, str(HERE / "run_notebook.py"), str(nb), str(prefix)], env=env,
                       capture_output=True, text=True)
    files = glob.glob(f"{prefix}.*.json")
    recs = json.load(open(files[0])) if files else []
    status = "ok" if p.returncode == 0 else "FAILED: " + (p.stderr.strip().splitlines() or ["?"])[-1]
    print(f"  {nb.stem} [{tag}] {time.time() - t0:.0f} s {status}", flush=True)
    return {"records": recs, "status": status, "seconds": time.time() - t0}


def run_tests(tmp: Path) -> list:
    env = {**os.environ, "PYTHONPATH": f"{HERE}:{ROOT / 'lib'}", "PFODE_AUDIT_OUT": str(tmp / "tests")}
    subprocess.run([PY, "-m", "pytest", "-p", "pytest_audit", "--assert=plain", "-q", "-n", "2",
                    "--dist", "loadfile", "-p", "no:cacheprovider", str(ROOT / "tests")],
                   env=env, cwd=ROOT, check=False)
    recs = []
    for f in glob.glob(str(tmp / "tests.*.json")):
        recs.extend(json.load(open(f)))
    return recs


def comment_near(site: str) -> str:
    """Where the threshold comes from, as the source says: the trailing comment of the
    assertion's line and the comment block above it, or above the run of assertions (and
    their continuation lines) it belongs to."""
    label, _, line = site.rpartition(":")
    for base in ("notebooks", "tests"):
        f = ROOT / base / f"{label}.py"
        if f.is_file():
            break
    else:
        return ""
    lines = f.read_text().splitlines()
    i = int(line) - 1
    out = []
    m = re.search(r"\)\s*#\s*(.*)$|^[^#\"']*#\s*(.*)$", lines[i])
    if m:
        out.append(m.group(1) or m.group(2) or "")
    j = i - 1
    indent = len(lines[i]) - len(lines[i].lstrip())
    while j >= 0:                                      # skip the assertions above in the same run
        t = lines[j].strip()
        cont = len(lines[j]) - len(lines[j].lstrip()) > indent and not t.startswith("#")
        opener = t.startswith("with ") and t.endswith(":")    # a block of assertions
        if t.startswith(("assert ", "np.testing.", "torch.testing.")) or cont or opener or \
                (t.startswith(("f\"", "\"", "err_msg")) and not t.startswith("#")):
            j -= 1
            continue
        break
    block = []
    while j >= 0 and lines[j].strip().startswith("#") and not lines[j].startswith("# %%"):
        block.insert(0, lines[j].strip().lstrip("# "))
        j -= 1
    return " ".join(block + out)[:400]


def max_rel_change(runs: list) -> float:
    """Largest change of any recorded (measured, threshold) pair between runs, relative to the
    larger of the two sides in that evaluation (how much closer to, or further from, failing)."""
    worst = 0.0
    base = runs[0]
    for other in runs[1:]:
        if len(other) != len(base):
            return math.inf
        for (a, b), (c, d) in zip(base, other):
            scale = max(abs(a), abs(b), abs(c), abs(d))
            if not math.isfinite(scale):               # inf / NaN sides: equal or not
                same = all(x == y or (x != x and y != y) for x, y in ((a, c), (b, d)))
                worst = worst if same else math.inf
                continue
            if scale:
                worst = max(worst, abs(a - c) / scale, abs(b - d) / scale)
    return worst


def relocate(rows: list) -> list:
    """Point each row at its assertion in the current sources (matched by its source text, the
    nearest match to the recorded line) and read its comment again: comments added after a run
    need no new run. Rows whose assertion is no longer in the sources are dropped (and
    counted): a rerun is what finds the assertions added since."""
    kept = []
    for r in rows:
        label, _, line = r["site"].rpartition(":")
        path = ROOT / r["file"]
        if not path.is_file():
            continue
        lines = path.read_text().splitlines()
        first = r["source"].split("  ")[0].strip()[:60]
        hits = [i for i, ln in enumerate(lines) if ln.strip().startswith(first[:40])]
        if not hits:
            continue
        i = min(hits, key=lambda k: abs(k + 1 - int(line)))
        r["site"] = f"{label}:{i + 1}"
        r["comment"] = comment_near(r["site"])
        kept.append(r)
    if len(kept) < len(rows):
        print(f"relocate: {len(rows) - len(kept)} of {len(rows)} assertion sites are gone from the sources")
    return kept


def write_report(rows: list, out: Path) -> list:
    cols = list(rows[0]) if rows else []
    with open(out / "asserts.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols)
        w.writeheader()
        w.writerows(sorted(rows, key=lambda r: (r["file"], int(r["site"].rpartition(":")[2]))))
    close = [r for r in rows if r["kind"] in ("compare", "allclose") and float(r["margin"]) < 10]
    num = [r for r in rows if r["kind"] in ("compare", "allclose")]
    with open(out / "summary.md", "w") as f:
        f.write(f"{len(rows)} assertion sites ({len(num)} numeric comparisons); {len(close)} within a "
                f"factor 10 of their threshold. Margin: the factor by which one side must move for "
                f"the assertion to fail (worst evaluation); threads Δ: the largest change of a "
                f"recorded value at 2 threads, relative to the larger side.\n\n"
                f"| site | margin | measured | threshold | threads Δ | where the threshold comes from |\n"
                f"|---|---|---|---|---|---|\n")
        for r in sorted(close, key=lambda r: r["site"]):
            tc = f"{float(r['thread_change']):.1e}" if r["thread_change"] not in ("", None) else ""
            why = r["comment"].replace("threshold: ", "").replace("|", "/")[:220]
            f.write(f"| {r['site']} | {float(r['margin']):.3g} | {float(r['measured']):.3g} | "
                    f"{float(r['threshold']):.3g} | {tc} | {why} |\n")
    return close


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--notebooks", nargs="*")
    ap.add_argument("--no-tests", action="store_true")
    ap.add_argument("--out", default=str(ROOT / "results" / "audit"))
    ap.add_argument("--recomment", metavar="CSV", help="no run: relocate the rows of an earlier "
                    "asserts.csv in the current sources, read their comments again, rewrite the report")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.recomment:
        rows = relocate(list(csv.DictReader(open(args.recomment))))
        close = write_report(rows, out)
        print(f"audit: {len(rows)} sites, {len(close)} within a factor 10; written to {out}")
        return 0
    tmp = Path(tempfile.mkdtemp(prefix="pfode-audit-"))
    nbs = notebooks(args.notebooks)
    runs = {nb.stem: {} for nb in nbs}
    jobs = [(nb, f"r{k}", 1) for k in range(args.repeat) for nb in nbs]
    print(f"audit: {len(nbs)} notebooks x {args.repeat} runs at 1 thread on {args.jobs} jobs")
    with ThreadPoolExecutor(args.jobs) as ex:
        for (nb, tag, _th), res in zip(jobs, ex.map(lambda j: run_notebook(j[0], j[1], tmp, j[2]), jobs)):
            runs[nb.stem][tag] = res
    if args.threads and args.threads > 1:
        print(f"audit: once more at {args.threads} threads, one notebook at a time")
        for nb in nbs:
            runs[nb.stem][f"t{args.threads}"] = run_notebook(nb, f"t{args.threads}", tmp, args.threads)
    rows = []
    for name, by_tag in runs.items():
        sites = {}
        for tag, res in by_tag.items():
            for r in res["records"]:
                sites.setdefault(r["site"], {})[tag] = r
        for site, per in sites.items():
            first = per.get("r0") or next(iter(per.values()))
            reps = [per[t]["values"] for t in sorted(per) if t.startswith("r")]
            thr = [per[t]["values"] for t in per if t.startswith("t")]
            rows.append(dict(
                file=f"notebooks/{name}.py", site=site, kind="count" if first["integers"] and first["kind"] == "compare" else first["kind"],
                evaluations=first["evaluations"], failed=max(p["failed"] for p in per.values()),
                margin=min(p["margin"] for p in per.values()), measured=first["measured"],
                threshold=first["threshold"], sign_tests=first["sign_tests"],
                repeat_change=max_rel_change(reps) if len(reps) > 1 else "",
                thread_change=max_rel_change([reps[0]] + thr) if thr and reps else "",
                runs="; ".join(f"{t}:{by_tag[t]['status']}" for t in by_tag if by_tag[t]["status"] != "ok"),
                source=first["source"], comment=comment_near(site)))
    if not args.no_tests:
        print("audit: unit tests")
        merged = {}
        for r in run_tests(tmp):
            m = merged.get(r["site"])
            if m is None:
                merged[r["site"]] = r
            else:
                m["evaluations"] += r["evaluations"]
                m["failed"] += r["failed"]
                if r["margin"] < m["margin"]:
                    m.update(margin=r["margin"], measured=r["measured"], threshold=r["threshold"])
                m["integers"] &= r["integers"]
        for site, r in merged.items():
            rows.append(dict(
                file=f"tests/{site.rpartition(':')[0]}.py", site=site,
                kind="count" if r["integers"] and r["kind"] == "compare" else r["kind"],
                evaluations=r["evaluations"], failed=r["failed"], margin=r["margin"],
                measured=r["measured"], threshold=r["threshold"], sign_tests=r["sign_tests"],
                repeat_change="", thread_change="", runs="", source=r["source"],
                comment=comment_near(site)))
    for r in rows:
        r["margin"] = float(r["margin"])
    close = write_report(rows, out)
    failed = [r for r in rows if (r["failed"] and r["kind"] != "compound") or r["runs"]]
    print(f"audit: {len(rows)} sites, {len(close)} within a factor 10, {len(failed)} failing; "
          f"written to {out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
