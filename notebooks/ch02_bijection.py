# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # The generation map is a bijection, numerically
#
# $F = G^{-1}$ exactly, so the round trips $G(F(x))$ and $F(G(z))$ must return their input up to
# the solver's error. This notebook measures that error for the adaptive dopri5 solver as its
# tolerance shrinks, and for the fixed-step Euler, Heun and RK4 methods as the number of steps
# grows, on the three-Gaussian example in float64.

# %% tags=["parameters"]
means = [[-2.0, -1.0], [2.0, -1.0], [0.0, 2.0]]   # the book's three-Gaussian example
stds = 0.2
num_points = 200           # data points x ~ p0 and noise points z ~ N(0, I)
seed = 0
rtols = [1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8, 1e-9, 1e-10]   # dopri5, atol = rtol / 100
methods = ["euler", "heun", "rk4"]
step_counts = [8, 16, 32, 64, 128, 256, 512, 1024]
fit_from = 32              # smallest step count used in the order fits
error_floor = 1e-12        # errors below this are rounding, left out of the fits
ref_rtol = 1e-12           # dopri5 reference for the exact inversion F(x)

# %% tags=["hide-input"]
import time

import matplotlib.pyplot as plt
import numpy as np
import torch

import pfode
import pfode.nb  # the notebook helpers (smoke mode, savefig)

run = pfode.nb.setup(globals(), smoke=dict(   # smoke mode: caps and overrides
    num_points=50, rtols=lambda v: [r for r in v if r in (1e-3, 1e-5, 1e-7, 1e-9, 1e-10)],
    step_counts=lambda v: [s for s in v if s <= 256], fit_from=32))

gm = pfode.GaussianMixture(means=means, stds=stds)
gen = run.gen
x = gm.sample(num_points, generator=gen)                                          # (B, 2)
z = torch.randn(num_points, gm.n, generator=gen, dtype=torch.float64)             # (B, 2)
print(gm, f"{num_points} data points and {num_points} noise points, float64")

# %% [markdown]
# ## dopri5: round-trip error against tolerance

# %%
rows = []
for rtol in rtols:
    opts = dict(method="dopri5", rtol=rtol, atol=rtol / 100)
    start = time.perf_counter()
    gf = (pfode.generate(gm, pfode.invert(gm, x, **opts), **opts) - x).norm(dim=1).max().item()
    fg = (pfode.invert(gm, pfode.generate(gm, z, **opts), **opts) - z).norm(dim=1).max().item()
    rows.append((rtol, gf, fg, time.perf_counter() - start))
rows = np.array(rows)
R, GF, FG = rows[:, 0], rows[:, 1], rows[:, 2]
print("   rtol    max|G(F(x)) - x|  max|F(G(z)) - z|   time")
for r in rows:
    print(f"  {r[0]:.0e}     {r[1]:.2e}          {r[2]:.2e}      {r[3]:.2f} s")
slope_gf = np.polyfit(np.log(R), np.log(GF), 1)[0]
slope_fg = np.polyfit(np.log(R), np.log(FG), 1)[0]
print(f"least-squares slope of log error against log rtol: G∘F {slope_gf:.2f}, F∘G {slope_fg:.2f}")

for name, e, sl in (("G(F(x))", GF, slope_gf), ("F(G(z))", FG, slope_fg)):
    # Falls with the tolerance: a clear positive log-log slope, each tightening by one decade
    # at least not increasing the error (a factor 2 allows for the discreteness of step control),
    # and small at the tightest tolerance.
    assert sl > 0.5, f"{name}: round-trip error does not fall with the tolerance (slope {sl:.2f})"
    assert np.all(e[1:] < 2 * e[:-1]), f"{name}: round-trip error grows when the tolerance shrinks"
    assert e[-1] < 1e-7, f"{name}: round-trip error {e[-1]:.2e} at rtol {R[-1]:.0e}"

# %% [markdown]
# ## Fixed steps: one-way and round-trip error against steps
#
# The one-way error $\|\hat F_N(x) - F(x)\|$ (reference $F$ from dopri5 at `ref_rtol`) of a
# method of order $p$ falls like $N^{-p}$. The round trip $\hat G_N(\hat F_N(x))$ does better for
# Heun and RK4: for a method of even order the leading local error terms of a step and of the
# same step taken backwards cancel, so the round-trip error falls like $N^{-(p+1)}$ (the chapter
# proves this). Euler has odd order and no cancellation. Orders are fitted to the **median**
# error over the points, by least squares over the step counts $N \geq$ `fit_from` whose error
# is above `error_floor`.

# %%
z_ref = pfode.invert(gm, x, method="dopri5", rtol=ref_rtol, atol=ref_rtol / 100)
z_ref2 = pfode.invert(gm, x, method="dopri5", rtol=10 * ref_rtol, atol=ref_rtol / 10)
ref_err = (z_ref - z_ref2).norm(dim=1).max().item()
print(f"reference F(x): change from rtol {10 * ref_rtol:.0e} to {ref_rtol:.0e} is {ref_err:.1e}")
assert ref_err < 1e-9
one_way_floor = max(error_floor, 100 * ref_err)

one_way, round_trip, timing = {}, {}, {}
for m in methods:
    start = time.perf_counter()
    ow, rt = [], []
    for n_steps in step_counts:
        z_hat = pfode.invert(gm, x, method=m, steps=n_steps)
        x_rec = pfode.generate(gm, z_hat, method=m, steps=n_steps)
        e_ow, e_rt = (z_hat - z_ref).norm(dim=1), (x_rec - x).norm(dim=1)
        ow.append((e_ow.median().item(), e_ow.max().item()))
        rt.append((e_rt.median().item(), e_rt.max().item()))
    one_way[m], round_trip[m] = np.array(ow), np.array(rt)
    timing[m] = time.perf_counter() - start


def fitted_order(errors, floor):
    N = np.array(step_counts, dtype=float)
    keep = (N >= fit_from) & (errors > floor)
    assert keep.sum() >= 3, f"only {keep.sum()} step counts in the asymptotic range"
    return -np.polyfit(np.log(N[keep]), np.log(errors[keep]), 1)[0], N[keep]


orders = {}
print("method  order  one-way slope  round-trip slope  (fit range)          time")
for m in methods:
    p = pfode.ORDER[m]
    s_ow, n_ow = fitted_order(one_way[m][:, 0], one_way_floor)
    s_rt, n_rt = fitted_order(round_trip[m][:, 0], error_floor)
    orders[m] = (s_ow, s_rt)
    print(f"{m:6s}  {p:5d}  {s_ow:13.2f}  {s_rt:16.2f}  N = {int(n_ow[0])}..{int(n_ow[-1])} / "
          f"{int(n_rt[0])}..{int(n_rt[-1])}   {timing[m]:.1f} s")
    expected_rt = p + 1 if p % 2 == 0 else p
    # threshold: fitted orders over the asymptotic range (errors above error_floor); stated margin
    #   0.3 on the order
    assert abs(s_ow - p) < 0.3, f"{m}: one-way order {s_ow:.2f}, expected {p}"
    assert abs(s_rt - expected_rt) < 0.3, f"{m}: round-trip order {s_rt:.2f}, expected {expected_rt}"

# %% mystnb={"figure": {"caption": "Round trips through the exact field of the three-Gaussian example (float64, data points $x \\sim p_0$ and noise points $z \\sim \\mathcal N(0, I)$). Left: dopri5, largest round-trip error against the relative tolerance (absolute tolerance $= \\mathrm{rtol}/100$); tighter tolerances to the right. The error falls roughly in proportion to the tolerance; at $\\mathrm{rtol} = 10^{-3}$ one point of $G(F(x))$ already lands in another component. Middle: one-way error of the fixed-step inversion $\\hat F_N(x)$ against the number of steps; median over the points (solid) and maximum (dashed), with the fitted orders $1, 2, 4$ (dash-dotted: the floor set by the reference solution, below which errors are not fitted). Right: round-trip error of $\\hat G_N(\\hat F_N(x))$; Euler keeps order 1 while Heun and RK4 gain one order (3 and 5), because the leading error of an even-order method cancels between a step and the same step taken backwards. The maximum of the Euler round trip stays of order one up to a few hundred steps: a few points change component (Chapter 1).", "name": "fig-ch2-bijection"}}
fig, axes = plt.subplots(1, 3, figsize=(15, 4.6), constrained_layout=True)
ax = axes[0]
ax.loglog(R, GF, "o-", label="$\\max\\,\\|G(F(x)) - x\\|$")
ax.loglog(R, FG, "s-", label="$\\max\\,\\|F(G(z)) - z\\|$")
ax.loglog(R, R, ":", color="k", label="$=\\mathrm{rtol}$")
ax.set(xlabel="dopri5 relative tolerance rtol", ylabel="round-trip error",
       title="adaptive dopri5")
ax.invert_xaxis()  # tighter tolerances to the right, like more steps in the other panels
ax.legend(fontsize=9)

N = np.array(step_counts, dtype=float)
colors = dict(zip(methods, ["C0", "C1", "C2"]))
for ax, data, col, title in ((axes[1], one_way, 0, "one way: $\\|\\hat F_N(x) - F(x)\\|$"),
                             (axes[2], round_trip, 1, "round trip: $\\|\\hat G_N(\\hat F_N(x)) - x\\|$")):
    for m in methods:
        ax.loglog(N, data[m][:, 0], "o-", color=colors[m],
                  label=f"{m}: slope $-{orders[m][col]:.2f}$ (median)")
        ax.loglog(N, data[m][:, 1], "--", color=colors[m], alpha=0.6)
    ax.plot([], [], "--", color="0.4", label="max over points")
    ax.axhline(one_way_floor if col == 0 else error_floor, color="0.6", lw=0.8, ls="-.",
               label="floor: smaller errors are not fitted")
    ax.set(xlabel="steps $N$", ylabel="error", title=title, ylim=(1e-16, 10))
    ax.legend(fontsize=8, loc="lower left")
pfode.nb.savefig(fig, "ch02_bijection")
plt.show()
