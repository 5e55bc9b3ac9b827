"""Throughput of the exact mixture velocity against the GEMMs it is made of.

One ``GaussianMixture.velocity`` call is two GEMMs, ``(B, n) @ (n, K)`` (squared distances)
and ``(B, K) @ (K, n)`` (weighted means): 2 * (2 B K n) flops. Its time is compared, in the
same run and interleaved, with ``torch.matmul`` on those two shapes and on a square GEMM.
"""
from __future__ import annotations

import statistics
import time

import torch
from torch.profiler import ProfilerActivity, profile

import pfode
from bench_common import threads


def _profile(field, x, t, calls=3, top=8):
    """Self CPU time per aten op over ``calls`` velocity calls, as fractions."""
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(calls):
            field.velocity(x, t)
    rows = [(e.key, e.self_cpu_time_total, e.count) for e in prof.key_averages()]
    total = sum(r[1] for r in rows)
    rows.sort(key=lambda r: -r[1])
    return [{"op": k, "self_fraction": s / total, "ms_per_call": s / calls / 1e3,
             "count_per_call": c / calls} for k, s, c in rows[:top]]


def run_dtype(dtype, *, K=2000, n=4096, B=512, square=2048, repeats=7, warmup=2, seed=0,
              t=0.5, log=print):
    g = torch.Generator().manual_seed(seed)
    means = torch.randn(K, n, generator=g, dtype=torch.float64)
    field = pfode.GaussianMixture(means, 0.1, dtype=dtype)
    # query points distributed like x_t at t = 0.5: (1 - t) x0 + t eps
    x0 = field.sample(B, generator=g).to(dtype)
    x = (1 - t) * x0 + t * torch.randn(B, n, generator=g, dtype=dtype)
    mu = field.means.to(dtype)                       # the stored (K, n) layout the field uses
    mu_t = mu.T                                      # the same transposed view as x @ mu.T
    r = torch.softmax(torch.randn(B, K, generator=g, dtype=dtype), dim=1)
    a_sq = torch.randn(square, square, generator=g, dtype=dtype)
    b_sq = torch.randn(square, square, generator=g, dtype=dtype)

    tasks = {
        "velocity": lambda: field.velocity(x, t),
        "gemm1 (B,n)@(n,K)": lambda: torch.matmul(x, mu_t),
        "gemm2 (B,K)@(K,n)": lambda: torch.matmul(r, mu),
        "square": lambda: torch.matmul(a_sq, b_sq),
    }

    for _ in range(warmup):
        for f in tasks.values():
            f()
    times = {k: [] for k in tasks}
    for _ in range(repeats):                         # interleaved: load changes hit all alike
        for k, f in tasks.items():
            t0 = time.perf_counter()
            f()
            times[k].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in times.items()}
    flops = 2 * (2 * B * K * n)
    gf = lambda fl, s: fl / s / 1e9
    res = {
        "dtype": str(dtype).replace("torch.", ""), "K": K, "n": n, "B": B, "t": t,
        "repeats": repeats, "threads": torch.get_num_threads(),
        "median_s": med, "all_s": times,
        "velocity_gflops": gf(flops, med["velocity"]),
        "two_gemms_gflops": gf(flops, med["gemm1 (B,n)@(n,K)"] + med["gemm2 (B,K)@(K,n)"]),
        "gemm1_gflops": gf(flops / 2, med["gemm1 (B,n)@(n,K)"]),
        "gemm2_gflops": gf(flops / 2, med["gemm2 (B,K)@(K,n)"]),
        "square_gflops": gf(2 * square ** 3, med["square"]),
        "square_n": square,
    }
    res["fraction_of_gemm"] = res["velocity_gflops"] / res["two_gemms_gflops"]
    res["fraction_of_square_gemm"] = res["velocity_gflops"] / res["square_gflops"]
    res["profile"] = _profile(field, x, t)
    log(f"[velocity {res['dtype']}, {res['threads']} thread(s)] velocity {med['velocity'] * 1e3:.1f} ms = "
        f"{res['velocity_gflops']:.1f} GFLOP/s; the two GEMMs {res['two_gemms_gflops']:.1f} "
        f"GFLOP/s; square {square}^2 {res['square_gflops']:.1f} GFLOP/s; fraction of GEMM "
        f"{res['fraction_of_gemm']:.1%}")
    return res


def run(*, K=2000, n=4096, B=512, square=2048, repeats=7, seed=0, thread_counts=None,
        log=print):
    """Both dtypes, at one thread and at torch's default thread count."""
    out = []
    for k in thread_counts or sorted({1, torch.get_num_threads()}):
        with threads(k):
            out += [run_dtype(dt, K=K, n=n, B=B, square=square, repeats=repeats, seed=seed,
                              log=log) for dt in (torch.float32, torch.float64)]
    return out
