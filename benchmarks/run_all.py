"""Run the pfode benchmarks and write benchmarks/results.md and benchmarks/results.json.

Also runs bench_memorisation.py, bench_attention.py and bench_sweep.py, which write their own
.md / .json files (the sweep runner's ratio is summarised at the end of results.md).

    .venv/bin/python benchmarks/run_all.py           # full run (or: make bench)
    .venv/bin/python benchmarks/run_all.py --quick   # small smoke run, printed only

``--quick`` uses a 41x41 grid and small GEMMs and never overwrites the stored results.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import torch  # noqa: E402

import bench_attention  # noqa: E402
import bench_bdf  # noqa: E402
import bench_instability  # noqa: E402
import bench_memorisation  # noqa: E402
import bench_sweep  # noqa: E402
import bench_velocity  # noqa: E402
from bench_common import machine_info  # noqa: E402

COMMAND = "make bench   # or: .venv/bin/python benchmarks/run_all.py"


def _dur(sec):
    if sec >= 5400:
        return f"{sec / 3600:.1f} h"
    if sec >= 120:
        return f"{sec / 60:.0f} min"
    return f"{sec:.0f} s"


def _s(x):
    return f"{x:.3g}" if x < 100 else f"{x:.0f}"


def sweep_summary() -> str:
    """The sweep runner's ratio, from the last ``bench_sweep.py`` run (``sweep.json``)."""
    path = HERE / "sweep.json"
    if not path.exists():
        return ""
    r = json.loads(path.read_text())
    s, w = min(r["wall_s"]["serial"]), min(r["wall_s"]["workers 2"])
    return ("# The sweep runner\n\n"
            f"The chapter 9 spec trimmed to side = {r['sides']}: `--workers 2` (a local Dask "
            f"cluster) took **{w / s:.2f}×** the wall time of `--serial` ({w:.0f} s against "
            f"{s:.0f} s), the same table both ways: {r['tables_equal']} "
            "(`benchmarks/bench_sweep.py`, `benchmarks/sweep.md`).\n")


def render(info, fig, vel, quick, omp=None, bdf=None) -> str:
    L = []
    w = L.append
    w("# Setup\n")
    w(f"- Date: {info['date']}; total wall time of the run {info['wall_s']:.0f} s.")
    w(f"- Machine: {info['nproc']} cores ({info['cpu']}), shared; load average (1, 5, 15 min) "
      f"{', '.join(f'{v:.2f}' for v in info['loadavg_start'])} at the start, "
      f"{', '.join(f'{v:.2f}' for v in info['loadavg_end'])} at the end.")
    w(f"- Python {info['python']}, torch {info['torch']} (default {info['torch_threads']} "
      f"threads), torchdiffeq {info['torchdiffeq']}, scipy {info['scipy']}, "
      f"numpy {info['numpy']}.")
    w(f"- Reproduce: `{COMMAND}`" + (" (this was a `--quick` run)" if quick else ""))
    w("- Timings on a shared machine are noisy; the ratios, measured in the same run, are "
      "the meaningful numbers. Single-threaded runs also report the CPU time of the process "
      "(`time.process_time`), which other jobs on the machine disturb far less than the "
      "wall time.\n")

    c = fig["chosen"]
    N = fig["N"]
    w("# Figure 3(b) instability map: scipy point by point vs pfode batched\n")
    w(f"The finite-difference map ‖G(z<sub>i,j+1</sub>) − G(z<sub>ij</sub>)‖/h along x on a "
      f"{N}×{N} grid ({fig['points']} points) over [−3, 3]² for the three-component mixture "
      f"of Figure 3 (s = 0.2, float64), both ways fed to the same `pfode.instability_fd`. "
      f"Tolerances, the same for both, start at rtol 1e-9 / atol 1e-11 and are tightened "
      f"tenfold until the two maps agree to {fig['target_max_abs_diff']:g} on the subset; "
      f"tried: "
      + ", ".join(f"rtol {t['rtol']:g} / atol {t['atol']:g} (max |ΔFD| "
                  f"{t['max_abs_diff_fd']:.1e})" for t in fig["tolerance_ladder"])
      + f"; the table uses the last. Largest λ on the subset: {fig['max_lambda_subset']:.1f}. The grid is "
      f"`np.linspace(-3, 3, {N})`, whose middle column is exactly x = 0, the mirror axis of "
      f"the two lower components; `torch.linspace` puts it at x = 1.1e-16, and for y < 0 the "
      f"generation map amplifies that offset to x ≈ 0.35, so those few values depend on "
      f"rounding and no two solvers agree on them.\n")
    w(f"**The scipy time is extrapolated**: scipy RK45 was run on {fig['subset_points']} of "
      f"the {fig['points']} points — the grid rows {fig['subset_rows']} (pairs of neighbouring "
      f"rows drawn with seed {fig['seed']}, giving {fig['subset_fd_values']} finite "
      f"differences) — and its time per point multiplied by {fig['points']}, because the full "
      f"grid point by point takes about {_dur(c['scipy_full_extrapolated_s'])} here. "
      f"scipy solves each point on its own, so the full-grid time is the sum of per-point "
      f"times; the random rows estimate the mean cost of a point (points differ in "
      f"stiffness, so this is a sample estimate). The pfode times are measured on the full grid. Accuracy is measured on the subset against "
      f"scipy RK45 (max |ΔFD| vs scipy) and against an independent reference, scipy DOP853 "
      f"with rtol 1e-13 (err vs reference). Torch threads: {fig['threads']} (one velocity "
      f"call on the grid took "
      + ", ".join(f"{1e3 * v:.1f} ms with {k}" for k, v in
                  fig['velocity_full_grid_s_by_threads'].items())
      + " thread(s); the faster count is used throughout the map benchmark).\n")
    w("| method | tolerance / steps | points timed | wall time (s) | full grid, wall (s) | "
      "full grid, CPU (s) | RHS calls (full grid) | max \\|ΔFD\\| vs scipy | "
      "err vs reference | speed-up vs scipy, wall | speed-up vs scipy, CPU |")
    w("|---|---|---|---|---|---|---|---|---|---|---|")
    w(f"| scipy RK45, point by point | rtol {c['rtol']:g}, atol {c['atol']:g} | "
      f"{fig['subset_points']} | {_s(c['scipy_subset_s'])} | "
      f"**{_s(c['scipy_full_extrapolated_s'])} (extrapolated)** | "
      f"{_s(c['scipy_full_extrapolated_cpu_s'])} (extrapolated) | "
      f"{c['scipy_rhs_calls_full_extrapolated']:.3g} single-point "
      f"({c['scipy_rhs_calls_per_point']:.0f} per point) | 0 | "
      f"{c['scipy_err_vs_reference']:.1e} | 1 | 1 |")
    w(f"| pfode dopri5 float64, one batch | rtol {c['rtol']:g}, atol {c['atol']:g} | "
      f"{fig['points']} | {_s(c['pfode_full_s'])} | {_s(c['pfode_full_s'])} | "
      f"{_s(c['pfode_full_cpu_s'])} | {c['pfode_rhs_calls']} batched | "
      f"{c['max_abs_diff_fd']:.1e} | {c['pfode_err_vs_reference']:.1e} | "
      f"**{c['ratio']:.0f}×** | **{c['ratio_cpu']:.0f}×** |")
    for a in fig["alternatives"]:
        tol = (f"{a['steps']} steps" if "steps" in a
               else f"rtol {a['rtol']:g}, atol {a['atol']:g}")
        if "failed" in a:
            w(f"| {a['name']} | {tol} | – | failed: {a['failed']} | | | | | | | |")
            continue
        w(f"| {a['name']} | {tol} | {fig['points']} | {_s(a['full_s'])} | {_s(a['full_s'])} | "
          f"{_s(a['full_cpu_s'])} | {a['rhs_calls']} batched | "
          f"{a['max_abs_diff_vs_scipy']:.1e}{'' if a['meets_target'] else ' (misses 1e-6)'} | "
          f"{a['err_vs_reference']:.1e} | {a['ratio_vs_scipy']:.0f}× | "
          f"{a['ratio_vs_scipy_cpu']:.0f}× |")
    w("")
    if len(fig["tolerance_ladder"]) > 1:
        w("Tolerance ladder (each row: scipy on the subset, pfode on the full grid):\n")
        w("| rtol / atol | scipy ms per point | scipy RHS per point | pfode full grid (s) | "
          "pfode RHS calls | max \\|ΔFD\\| | ratio (wall) | ratio (CPU) |")
        w("|---|---|---|---|---|---|---|---|")
        for t in fig["tolerance_ladder"]:
            w(f"| {t['rtol']:g} / {t['atol']:g} | {1e3 * t['scipy_per_point_s']:.1f} | "
              f"{t['scipy_rhs_calls_per_point']:.0f} | {_s(t['pfode_full_s'])} | "
              f"{t['pfode_rhs_calls']} | {t['max_abs_diff_fd']:.1e} | {t['ratio']:.0f}× | "
              f"{t['ratio_cpu']:.0f}× |")
        w("")
    w(f"Cost per single-point RHS evaluation: scipy "
      f"{1e6 * c['scipy_per_point_s'] / c['scipy_rhs_calls_per_point']:.0f} µs (one torch call "
      f"per point and stage), pfode dopri5 "
      f"{1e9 * c['pfode_full_s'] / c['pfode_rhs_point_evals']:.0f} ns "
      f"({c['pfode_rhs_point_evals']:.3g} point evaluations, solver overhead included). "
      f"Batched dopri5 controls one step size for the whole batch with an RMS error norm, so "
      f"it makes about {c['pfode_rhs_calls'] / c['scipy_rhs_calls_per_point']:.1f}× the "
      f"RHS calls scipy makes for a mean single point at the same tolerance.\n")

    w("# Exact mixture velocity vs GEMM\n")
    v0 = vel[0]
    w(f"`GaussianMixture.velocity(x, t={v0['t']})` with K = {v0['K']} components in "
      f"n = {v0['n']} dimensions (seeded random means, s = 0.1), batch B = {v0['B']}; flops "
      f"counted as the two GEMMs, 2·(2·B·K·n) = {4 * v0['B'] * v0['K'] * v0['n'] / 1e9:.2f} "
      f"GFLOP per call. Median of {v0['repeats']} interleaved repeats after warm-up, at "
      f"1 torch thread and at torch's default thread count. \"GEMM\" is torch.matmul on the same two shapes "
      f"((B,n)@(n,K) with the same transposed layout, and (B,K)@(K,n)). The velocity's own "
      f"two GEMMs are `addmm` calls (the squared distances with ‖x‖² + c²‖μ‖² as the added "
      f"term, the output with coef·x); the rest of a call is element-wise work on (B, K) "
      f"and (B, n).\n")
    w("| dtype | threads | velocity (ms) | velocity GFLOP/s | GEMM (B,n)@(n,K) GFLOP/s | "
      "GEMM (B,K)@(K,n) GFLOP/s | both GEMMs GFLOP/s | square GEMM GFLOP/s | "
      "**fraction of GEMM** | fraction of square GEMM |")
    w("|---|---|---|---|---|---|---|---|---|---|")
    for v in vel:
        w(f"| {v['dtype']} | {v['threads']} | {1e3 * v['median_s']['velocity']:.1f} | "
          f"{v['velocity_gflops']:.1f} | {v['gemm1_gflops']:.1f} | {v['gemm2_gflops']:.1f} | "
          f"{v['two_gemms_gflops']:.1f} | {v['square_gflops']:.1f} ({v['square_n']}²) | "
          f"**{v['fraction_of_gemm']:.0%}** | {v['fraction_of_square_gemm']:.0%} |")
    w("")
    w("Where the time of one velocity call goes (torch.profiler, self CPU time):\n")
    w("| dtype | threads | op | share | ms per call | calls per velocity |")
    w("|---|---|---|---|---|---|")
    for v in vel:
        for p in v["profile"][:5]:
            w(f"| {v['dtype']} | {v['threads']} | `{p['op']}` | {p['self_fraction']:.0%} | "
              f"{p['ms_per_call']:.2f} | {p['count_per_call']:.0f} |")
    w("")
    if bdf is not None:
        w(bench_bdf.render(bdf))
    w("# OpenMP wait policy on an oversubscribed machine\n")
    if not omp:
        w("On this shared, overloaded machine, torch's OpenMP threads were observed earlier to "
          "busy-wait at the end of each parallel region, so that with more threads than free "
          "cores an element-wise op waits for a descheduled partner thread and "
          "`OMP_WAIT_POLICY=PASSIVE` made multi-threaded calls faster; this run did not "
          "re-measure it.\n")
        return "\n".join(L)
    k = omp["default"]["velocity"][0]["threads"]
    fr = {p: {v["dtype"]: v["fraction_of_gemm"] for v in r["velocity"]} for p, r in omp.items()}
    gk = {p: r["grid_call_s_by_threads"].get(str(k), float("nan")) for p, r in omp.items()}
    w("By default torch's OpenMP threads busy-wait at the end of each parallel region, so on "
      "an overloaded machine (more runnable threads than cores) an element-wise op can wait "
      "for a partner thread that is descheduled; measured in this run in child processes "
      f"(load average {info['loadavg_end'][0]:.1f} at the end), setting `OMP_WAIT_POLICY=PASSIVE` "
      f"before torch starts changed the {k}-thread fraction of GEMM from "
      + ", ".join(f"{fr['default'][d]:.0%} to {fr['PASSIVE'][d]:.0%} ({d})"
                  for d in fr["default"] if d in fr["PASSIVE"])
      + f" and one K = 3 grid velocity call with {k} threads from "
      f"{1e3 * gk['default']:.1f} ms to {1e3 * gk['PASSIVE']:.1f} ms.\n")
    w(f"| OMP_WAIT_POLICY | dtype | threads | fraction of GEMM | K = 3 grid velocity call, "
      f"1 thread (ms) | K = 3 grid velocity call, {k} threads (ms) |")
    w("|---|---|---|---|---|---|")
    for policy, r in omp.items():
        g = r["grid_call_s_by_threads"]
        for v in r["velocity"]:
            w(f"| {policy} | {v['dtype']} | {v['threads']} | {v['fraction_of_gemm']:.0%} | "
              f"{1e3 * g.get('1', float('nan')):.1f} | {1e3 * g.get(str(k), float('nan')):.1f} |")
    w("")
    return "\n".join(L)


PROBE_TAG = "OMP_PROBE_JSON "


def omp_probe(quick, seed):
    """Velocity vs GEMM at torch's default threads, and one K = 3 grid call (in a child)."""
    import numpy as np
    import pfode
    from bench_common import median_time, threads
    size = dict(K=500, n=1024, B=128, square=512, repeats=3) if quick else {}
    k = torch.get_num_threads()
    vel = bench_velocity.run(seed=seed, thread_counts=[k], log=lambda s: None, **size)
    N = 41 if quick else 201
    xs = torch.from_numpy(np.linspace(-3.0, 3.0, N))
    Z = pfode.grid_points(xs, xs)
    f = pfode.GaussianMixture(means=bench_instability.MEANS, stds=bench_instability.STDS)
    grid = {}
    for kk in sorted({1, k}):
        with threads(kk):
            grid[str(kk)] = median_time(lambda: f(Z, 0.5), 5, warmup=2)
    return {"OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY"), "velocity": vel,
            "grid_call_s_by_threads": grid, "grid_N": N}


def run_omp_probe(quick, seed, log):
    """Repeat the multi-threaded velocity measurement with OMP_WAIT_POLICY=PASSIVE."""
    if torch.get_num_threads() < 2 or os.environ.get("OMP_WAIT_POLICY"):
        return None
    out = {}
    for policy in ("default", "PASSIVE"):
        env = dict(os.environ)
        env.pop("OMP_WAIT_POLICY", None)
        if policy != "default":
            env["OMP_WAIT_POLICY"] = policy
        cmd = [sys.executable, str(Path(__file__).resolve()), "--omp-probe", "--seed", str(seed)]
        proc = subprocess.run(cmd + (["--quick"] if quick else []), env=env,
                              capture_output=True, text=True)
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(PROBE_TAG)]
        if proc.returncode or not lines:
            log(f"[omp] probe with policy {policy} failed: {proc.stderr[-500:]}")
            return None
        out[policy] = json.loads(lines[-1][len(PROBE_TAG):])
        r = out[policy]
        log(f"[omp] {policy}: fraction of GEMM "
            + ", ".join(f"{v['dtype']} {v['fraction_of_gemm']:.0%}" for v in r["velocity"])
            + "; K=3 grid call " + ", ".join(f"{1e3 * t:.1f} ms ({kk} thr)" for kk, t in
                                               r["grid_call_s_by_threads"].items()))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true",
                    help="small grid, small GEMMs, few repeats; prints, writes no files")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-progress", action="store_true")
    ap.add_argument("--render-only", action="store_true",
                    help="rewrite results.md from the stored results.json without running")
    ap.add_argument("--omp-probe", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.render_only:
        data = json.loads((HERE / "results.json").read_text())
        (HERE / "results.md").write_text(render(data["machine"], data["instability_map"],
                                                data["velocity"], False, data.get("omp"),
                                                data.get("bdf")) + "\n" + sweep_summary())
        return
    if args.omp_probe:
        print(PROBE_TAG + json.dumps(omp_probe(args.quick, args.seed)), flush=True)
        return

    info = machine_info()
    t0 = time.perf_counter()
    print(f"load average at start: {info['loadavg_start']}; torch threads "
          f"{info['torch_threads']}; nproc {info['nproc']}", flush=True)
    log = lambda s: print(s, flush=True)
    if args.quick:
        fig = bench_instability.run(N=41, pairs=1, seed=args.seed, thread_repeats=3,
                                    progress=not args.no_progress, log=log)
        vel = bench_velocity.run(K=500, n=1024, B=128, square=512, repeats=3, seed=args.seed,
                                 log=log)
    else:
        fig = bench_instability.run(seed=args.seed, progress=not args.no_progress, log=log)
        vel = bench_velocity.run(seed=args.seed, log=log)
    omp = run_omp_probe(args.quick, args.seed, log)
    bdf = bench_bdf.run(points=4 if args.quick else 12, seed=args.seed, log=log)
    info["wall_s"] = time.perf_counter() - t0
    info["loadavg_end"] = list(os.getloadavg())
    if args.quick:
        print("\n" + render(info, fig, vel, True, omp, bdf))
        bench_memorisation.main(quick=True)
        bench_attention.main(["--quick"])
        bench_sweep.main(["--quick"])
        return
    (HERE / "results.json").write_text(json.dumps(
        {"machine": info, "command": COMMAND, "instability_map": fig, "velocity": vel,
         "omp": omp, "bdf": bdf}, indent=1, default=float))
    bench_sweep.main([])                 # writes sweep.md / .json, summarised in results.md
    (HERE / "results.md").write_text(render(info, fig, vel, False, omp, bdf) + "\n" + sweep_summary())
    print(f"wrote {HERE / 'results.md'} and {HERE / 'results.json'}")
    bench_memorisation.main()            # writes memorisation.md / .json
    bench_attention.main([])             # writes attention.md / .json


if __name__ == "__main__":
    main()
