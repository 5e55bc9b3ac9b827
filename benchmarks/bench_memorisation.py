"""The instrumentation of the memorisation part, priced in reconstructions, and the local score
machine against its GEMM floor.

Part A. On the same held-out patches (n = 768), for each field kind of the part (the trained
MMDiT, the local score machine, the exact mixture), one run times the reconstruction (Euler,
100 steps of inversion and 100 of regeneration) and each instrument of the per-point notebook:
κ (one perturbed regeneration), λ (one JVP of the discrete map), σ_max by the batched
Golub–Kahan–Lanczos of ``pfode.top_singular_value`` (8 iterations), ARPACK ``svds`` one patch at
a time (the route of ``jacobian_singular_values(k=1)``, timed on two patches and scaled to the
batch), and the Liouville integral with one Hutchinson probe (RK4, 100 uniform steps, so the
work is fixed). Reported as multiples of the reconstruction's time, measured side by side.

Part B. One evaluation of ``pfode.LocalScoreMachine`` against two floors in the same run: the
time of its two batched GEMMs alone (same shapes, the measured floor) and its flop count at the
GEMM rate of the machine (a 2048² float64 matrix product, the physical limit).

    .venv/bin/python benchmarks/bench_memorisation.py     # writes benchmarks/memorisation.md/.json
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

import pfode  # noqa: E402
import pfode.data  # noqa: E402
from bench_common import machine_info, median_time  # noqa: E402
from pfode import diffusers_field as dfl  # noqa: E402


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def _instruments(name, v, x, ts, steps, lanczos_iters, svds_points, log):
    batch = x.shape[0]
    G, F = dfl.schedule_map(v, ts, "euler"), dfl.schedule_map(v, ts.flip(0), "euler")
    with torch.no_grad():                                  # warm-up: first calls allocate
        v(x, 0.5)
        pfode.directional_instability(dfl.schedule_map(v, ts[-3:], "euler"), x, x)
        z_hat, t_inv = _timed(lambda: F(x))
        _, t_gen = _timed(lambda: G(z_hat))
        t_rec = t_inv + t_gen
        delta = 1e-3 * torch.randn(z_hat.shape, generator=torch.Generator().manual_seed(0), dtype=z_hat.dtype)
        _, t_kappa = _timed(lambda: G(z_hat + delta))
    _, t_lam = _timed(lambda: pfode.directional_instability(G, z_hat, delta))
    top, t_lanczos = _timed(lambda: pfode.top_singular_value(
        G, z_hat, iters=lanczos_iters, generator=torch.Generator().manual_seed(1)))
    sv, t_svds = _timed(lambda: pfode.jacobian_singular_values(G, z_hat[:svds_points], k=1))
    t_svds_batch = t_svds * batch / svds_points
    with torch.no_grad():
        _, t_liou = _timed(lambda: pfode.log_det_jacobian(
            v, x, direction="invert", method="rk4", steps=steps, trace="hutchinson",
            num_probes=1, generator=torch.Generator().manual_seed(2)))
    agree = float((top.value[:svds_points] - sv[:, 0]).abs().max() / sv[:, 0].abs().max())
    row = dict(field=name, batch=batch, reconstruction_s=t_rec, kappa=t_kappa / t_rec,
               lam_jvp=t_lam / t_rec, lanczos=t_lanczos / t_rec, svds_looped=t_svds_batch / t_rec,
               liouville_hutchinson=t_liou / t_rec, lanczos_vs_svds_rel_diff=agree)
    log(f"{name}: reconstruction {t_rec:.1f} s; kappa x{row['kappa']:.2f}, lambda x{row['lam_jvp']:.2f}, "
        f"Lanczos x{row['lanczos']:.1f}, svds x{row['svds_looped']:.1f}, Liouville x{row['liouville_hutchinson']:.1f}; "
        f"Lanczos - svds {agree:.1e}")
    return row


def part_a(*, batch=16, steps=100, lanczos_iters=8, svds_points=2, N_ls=128, N_mix=1024,
           model="models/memorisation/mmdit-N1024", log=print):
    split = pfode.data.trained_model_split(ROOT / model)
    x = torch.tensor(pfode.data.to_chw(split.test[:batch]))
    ls_train = pfode.data.trained_model_split(dict(r=16, crop=32, num_train=N_ls, num_test=1000,
                                                   data_seed=0)).train
    mix_train = pfode.data.trained_model_split(dict(r=16, crop=32, num_train=N_mix, num_test=1000,
                                                    data_seed=0)).train
    fields = {
        "trained MMDiT (N = 1024)": dfl.DiffusersField(dfl.load_transformer(ROOT / model)),
        f"local score machine (N = {N_ls}, P = 5)": pfode.LocalScoreMachine(
            torch.tensor(pfode.data.to_chw(ls_train)), 5, 0.05, shape=(3, 16, 16)),
        f"exact mixture (N = {N_mix})": pfode.GaussianMixture(torch.tensor(pfode.data.to_chw(mix_train)), 0.05),
    }
    ts = dfl.shift_sigma(torch.linspace(1.0, 0.0, steps + 1, dtype=torch.float64), 3.0)
    ts[0], ts[-1] = 1.0, 0.0
    rows = [_instruments(name, v, x, ts, steps, lanczos_iters, svds_points, log) for name, v in fields.items()]
    return rows


def _local_score_floor(N, batch, patch, repeats, peak, log):
    y = torch.randn(N, 3, 16, 16, generator=torch.Generator().manual_seed(N), dtype=torch.float64)
    ls = pfode.LocalScoreMachine(y, patch, 0.05)
    x = torch.randn(batch, ls.n, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    t_field = median_time(lambda: ls(x, 0.5), repeats)
    L, D = ls.L, 3 * patch * patch
    X, Yt = torch.randn(L, batch, D, dtype=torch.float64), torch.randn(L, D, N, dtype=torch.float64)
    R, Yc = torch.randn(L, batch, N, dtype=torch.float64), torch.randn(L, N, 3, dtype=torch.float64)
    t_floor = median_time(lambda: (torch.bmm(X, Yt), torch.bmm(R, Yc)), repeats)
    t_bound = ls.flops(batch) / peak
    log(f"LS N = {N}: {t_field * 1e3:.0f} ms; its two GEMMs alone {t_floor * 1e3:.0f} ms "
        f"(x{t_field / t_floor:.1f}); flop bound {t_bound * 1e3:.1f} ms at {peak / 1e9:.0f} GFLOP/s "
        f"(x{t_field / t_bound:.0f})")
    return dict(N=N, batch=batch, patch=patch, field_s=t_field, gemms_s=t_floor, flop_bound_s=t_bound,
                field_over_gemms=t_field / t_floor, field_over_flop_bound=t_field / t_bound,
                peak_gflops=peak / 1e9)


def part_b(*, batch=40, Ns=(128, 1024), patch=5, repeats=3, log=print):
    a = torch.randn(2048, 2048, dtype=torch.float64)
    t_gemm = median_time(lambda: a @ a, repeats)
    peak = 2 * 2048 ** 3 / t_gemm
    rows = [_local_score_floor(N, batch, patch, repeats, peak, log) for N in Ns]
    return rows


def render(info, a_rows, b_rows) -> str:
    L = ["## The memorisation instruments\n",
         f"- Date: {info['date']}; {info['nproc']} cores ({info['cpu']}), torch {info['torch']}, "
         f"{info['torch_threads']} thread(s); total {info['wall_s']:.0f} s.\n",
         "Each instrument's time as a multiple of one reconstruction (Euler, 100 steps of inversion "
         "and 100 of regeneration) on the same batch, measured in one run:\n",
         "| field | batch | reconstruction (s) | κ | λ (JVP) | σ_max, batched Lanczos (8 it.) | "
         "σ_max, ARPACK one patch at a time | Liouville, Hutchinson (RK4 100) |",
         "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in a_rows:
        L.append(f"| {r['field']} | {r['batch']} | {r['reconstruction_s']:.1f} | {r['kappa']:.2f} | "
                 f"{r['lam_jvp']:.2f} | {r['lanczos']:.1f} | {r['svds_looped']:.1f} | "
                 f"{r['liouville_hutchinson']:.1f} |")
    L.append("\nThe batched Lanczos value agrees with ARPACK's to a relative "
             f"{max(r['lanczos_vs_svds_rel_diff'] for r in a_rows):.0e} or better on the patches both ran.\n")
    L += ["One evaluation of the local score machine (window 5, 16 × 16 RGB) against its floors: "
          "its two batched GEMMs alone at the same shapes, and its flop count at the rate of a "
          "2048² float64 matrix product measured in the same run:\n",
          "| N | batch | field (ms) | two GEMMs alone (ms) | field / GEMMs | flop bound (ms) | field / flop bound |",
          "|---:|---:|---:|---:|---:|---:|---:|"]
    for r in b_rows:
        L.append(f"| {r['N']} | {r['batch']} | {r['field_s'] * 1e3:.0f} | {r['gemms_s'] * 1e3:.0f} | "
                 f"{r['field_over_gemms']:.1f} | {r['flop_bound_s'] * 1e3:.1f} | {r['field_over_flop_bound']:.0f} |")
    extra = ", ".join(f"{100 * (r['field_over_gemms'] - 1):.0f} % at N = {r['N']}" for r in b_rows)
    L.append(f"\nGEMM rate of the machine in this run: {b_rows[0]['peak_gflops']:.0f} GFLOP/s (float64). "
             "The GEMMs of the machine have an inner dimension of only D = 75 (and 3), so they "
             "are bound by writing the (positions × batch × N) logits, not by arithmetic; the "
             f"softmax and the elementwise terms over the same array add {extra}.\n")
    return "\n".join(L)


def main(quick=False):
    info = machine_info()
    t0 = time.time()
    a_rows = part_a(batch=4 if quick else 16, steps=10 if quick else 100, lanczos_iters=3 if quick else 8,
                    svds_points=1 if quick else 2)
    b_rows = part_b(batch=8 if quick else 40, Ns=(16, 128) if quick else (128, 1024), repeats=1 if quick else 3)
    info["wall_s"] = time.time() - t0
    text = render(info, a_rows, b_rows)
    if not quick:
        (HERE / "memorisation.md").write_text(text)
        (HERE / "memorisation.json").write_text(json.dumps(dict(info=info, instruments=a_rows, local_score=b_rows),
                                                           indent=1))
    print(text)


if __name__ == "__main__":
    main(quick="--quick" in sys.argv)
