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
# # Where Euler reconstruction fails
#
# Points drawn from the three-Gaussian example are inverted to noise and regenerated with the
# Euler method, using the exact velocity field. Most come back close to where they started, but a
# few land in a different component. This notebook locates those failures in data space and in
# noise space, and measures how the error depends on the number of steps.

# %% tags=["parameters"]
means = [[-2.0, -1.0], [2.0, -1.0], [0.0, 2.0]]   # the book's three-Gaussian example
stds = 0.2
num_points = 2000          # data points x ~ p0
seed = 0
steps = 30                 # Euler steps for each half of the reconstruction (Figure 1)
step_counts = [10, 20, 40, 80, 160, 320]   # Euler steps for the convergence study
num_worst = 8              # failures drawn with a line from x to its reconstruction
failure_factor = 10.0      # a failure: E(x) > failure_factor * median E
ref_rtol = 1e-10           # dopri5 reference for the exact noise F(x)
grid = 161                 # noise-space grid (per axis) for the basins of G
grid_rtol = 1e-6

# %% tags=["hide-input"]
import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.colors import ListedColormap, LogNorm

import pfode
import pfode.nb  # the notebook helpers (smoke mode, savefig)

run = pfode.nb.setup(globals(), smoke=dict(   # smoke mode: caps and overrides
    num_points=1000, step_counts=lambda v: [s for s in v if s <= 160], grid=61))

gm = pfode.GaussianMixture(means=means, stds=stds)
gen = run.gen
x = gm.sample(num_points, generator=gen)                                 # (N, 2)
print(gm, f"{num_points} points, Euler with {steps} steps per half")

# %% [markdown]
# Reconstruction with Euler in both directions, $\hat x = \hat G(\hat F(x))$, and the exact
# noise $z = F(x)$ from dopri5 at a tight tolerance, which serves as the reference for the
# inversion error $\|\hat z - z\|$.

# %%
x_rec, z_hat = pfode.reconstruct(gm, x, method="euler", steps=steps)
z_ref = pfode.invert(gm, x, method="dopri5", rtol=ref_rtol, atol=ref_rtol / 100)
err = (x_rec - x).norm(dim=1).numpy()                                    # E(x), (N,)
err_z = (z_hat - z_ref).norm(dim=1).numpy()                              # inversion error, (N,)
# Exact generation from the same inverted noise: E = ||G(z_hat) - G(z)|| with G(z) = x.
x_exact_gen = pfode.generate(gm, z_hat, method="dopri5", rtol=ref_rtol, atol=ref_rtol / 100)
err_exact_gen = (x_exact_gen - x).norm(dim=1).numpy()

median = np.median(err)
ratio = err.max() / median
failures = err > failure_factor * median
print(f"E(x): median {median:.3e}, mean {err.mean():.3e}, max {err.max():.3f}")
print(f"worst / median = {ratio:.1f}")
print(f"failures (E > {failure_factor:g} x median): {failures.sum()} of {num_points} "
      f"({100 * failures.mean():.1f}%)")
# threshold: the chapter's definition of a failure (E > failure_factor x median)
assert ratio > failure_factor, f"no failures: worst/median = {ratio:.2f}"

# With exact generation the error is ||G(ẑ) - G(z)|| = kappa * ||ẑ - z||, kappa the instability
# coefficient of G at z under the perturbation ẑ - z.
kappa = err_exact_gen / err_z                                          # (N,)
fail_g = err_exact_gen > failure_factor * np.median(err_exact_gen)
print(f"exact generation from ẑ: median error {np.median(err_exact_gen):.3e}, "
      f"{fail_g.sum()} failures, {(fail_g & failures).sum()} of them also Euler failures")
print(f"inversion error ||ẑ - z||: median {np.median(err_z):.3e}, "
      f"median over the failures {np.median(err_z[fail_g]):.3e}")
print(f"kappa = ||G(ẑ) - G(z)|| / ||ẑ - z||: median {np.median(kappa):.2f}, "
      f"median over the failures {np.median(kappa[fail_g]):.1f}")
assert fail_g.sum() >= 1, "no failures under exact generation"
# The failures are not points with a large inversion error: their noise is about as accurate
# as everyone else's, and G amplifies the small error.
assert np.median(err_z[fail_g]) < 2 * np.median(err_z), "failures have large inversion errors"
assert np.median(kappa[fail_g]) > failure_factor * np.median(kappa), \
    "failures are not explained by amplification in G"

# %% [markdown]
# The basins of $G$ in noise space: each grid point $z$ is coloured by the component nearest to
# $G(z)$ (dopri5). A point whose exact noise $F(x)$ lies close to a basin boundary can be pushed
# across it by a small inversion error, and then regenerates in the wrong component.

# %%
s = np.linspace(-3.5, 3.5, grid)
Z = pfode.grid_points(torch.tensor(s), torch.tensor(s)).to(torch.float64)  # (grid^2, 2)
GZ = pfode.generate(gm, Z, method="dopri5", rtol=grid_rtol, atol=grid_rtol / 100)
basin = torch.cdist(GZ, gm.means).argmin(1).reshape(grid, grid).numpy()    # (grid, grid)

xs = np.linspace(-3.5, 3.5, 201)
P = pfode.grid_points(torch.tensor(xs), torch.tensor(xs)).to(torch.float64)
logp = gm.log_prob(P).reshape(len(xs), len(xs)).numpy()

# %% mystnb={"figure": {"caption": "Euler reconstruction of points of the three-Gaussian example. Left, data space: density contours of $p_0$, points coloured by their reconstruction error $E(x)$ (log scale), and for the worst points a line from $x$ to its reconstruction $\\hat G(\\hat F(x))$ (cross). Right, noise space: the Euler-inverted noise $\\hat z$ in the same colours over the basins of the exact generation map $G$ (shading: the component $G(z)$ lands in); for the worst points a line joins the exact noise $F(x)$ (dopri5, open circle) to $\\hat z$. The failures sit on basin boundaries, where a small inversion error is enough to change the component.", "name": "fig-ch1-failures"}}
order = np.argsort(err)                       # draw the largest errors on top
worst = order[::-1][:num_worst]
norm = LogNorm(vmin=err.min(), vmax=err.max())
cmap = "viridis"
fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(12, 5.6), constrained_layout=True)

ax0.contour(xs, xs, logp, levels=np.linspace(logp.max() - 12, logp.max(), 7), colors="0.6",
            linewidths=0.8, linestyles="solid")
sc = ax0.scatter(x[order, 0], x[order, 1], c=err[order], cmap=cmap, norm=norm, s=6)
ax0.scatter(x[failures, 0], x[failures, 1], c=err[failures], cmap=cmap, norm=norm, s=36,
            edgecolors="k", linewidths=0.7, zorder=3,
            label=f"failures, $E(x) > {failure_factor:g}\\times$ median")
for i in worst:
    ax0.plot([x[i, 0], x_rec[i, 0]], [x[i, 1], x_rec[i, 1]], color="crimson", lw=1.0)
    ax0.plot(x_rec[i, 0], x_rec[i, 1], "x", color="crimson", ms=7, mew=1.5)
ax0.plot([], [], color="crimson", marker="x", label=f"{num_worst} worst: $x \\to \\hat G(\\hat F(x))$")
ax0.set(title=f"data space (Euler, {steps} steps per half)", xlabel="$x_1$", ylabel="$x_2$",
        xlim=(-3.5, 3.5), ylim=(-3.5, 3.5), aspect="equal")
ax0.legend(loc="lower center", fontsize=9)

shades = ListedColormap(["#dbe9f6", "#fde0c5", "#d9f0d3"])
ax1.pcolormesh(s, s, basin, cmap=shades, shading="nearest", rasterized=True)
ax1.contour(s, s, basin, levels=[0.5, 1.5], colors="0.5", linewidths=0.6)
ax1.scatter(z_hat[order, 0], z_hat[order, 1], c=err[order], cmap=cmap, norm=norm, s=6)
ax1.scatter(z_hat[failures, 0], z_hat[failures, 1], c=err[failures], cmap=cmap, norm=norm, s=36,
            edgecolors="k", linewidths=0.7, zorder=3)
for i in worst:
    ax1.plot([z_ref[i, 0], z_hat[i, 0]], [z_ref[i, 1], z_hat[i, 1]], color="crimson", lw=1.0)
    ax1.plot(z_ref[i, 0], z_ref[i, 1], "o", mfc="none", color="crimson", ms=7)
ax1.plot([], [], "o", mfc="none", color="crimson", label="exact noise $F(x)$ of the worst points")
for k, (name, c) in enumerate(zip(["basin of component 1", "basin of component 2",
                                   "basin of component 3"], shades.colors)):
    ax1.fill_between([], [], color=c, label=name)
ax1.set(title="noise space: inverted noise $\\hat z = \\hat F(x)$", xlabel="$z_1$",
        ylabel="$z_2$", xlim=(-3.5, 3.5), ylim=(-3.5, 3.5), aspect="equal")
ax1.legend(loc="lower left", fontsize=8, framealpha=0.9)
fig.colorbar(sc, ax=[ax0, ax1], label="reconstruction error $E(x)$", shrink=0.85)
pfode.nb.savefig(fig, "ch01_reconstruction_failures")
plt.show()

# %% [markdown]
# ## The error against the number of steps
#
# Euler is a first-order method, so each half of the reconstruction has a global error of order
# $h = 1/N$. The typical (median) error should therefore fall like $1/N$. The failures also
# become rarer: the band around the basin boundaries in which an inversion error of size $O(h)$
# changes the component has width $O(h)$, so the mean error, failures included, is $O(h)$ too.

# %%
rows = []
for n_steps in step_counts:
    xr, _ = pfode.reconstruct(gm, x, method="euler", steps=n_steps)
    e = (xr - x).norm(dim=1).numpy()
    rows.append((n_steps, e.mean(), np.median(e), e.max(), (e > failure_factor * np.median(e)).sum()))
rows = np.array(rows)
N, mean_e, median_e, max_e, n_fail = rows.T
slope_mean = np.polyfit(np.log(N), np.log(mean_e), 1)[0]
slope_median = np.polyfit(np.log(N), np.log(median_e), 1)[0]
print(" steps   mean E     median E   max E    failures")
for r in rows:
    print(f"{int(r[0]):6d}  {r[1]:.3e}  {r[2]:.3e}  {r[3]:.3f}  {int(r[4]):5d}")
print(f"least-squares slope of log E against log N: mean {slope_mean:.2f}, median {slope_median:.2f}")

assert np.all(np.diff(mean_e) < 0), "the mean error does not decrease with the number of steps"
assert np.all(np.diff(median_e) < 0), "the median error does not decrease with the number of steps"
# threshold: Euler is first order; a fitted log-log slope over N = 10..320 carries the O(h)
#   next-order term; 0.2 / 0.3 are the stated margins
assert abs(slope_median + 1) < 0.2, f"median error is not first order: slope {slope_median:.2f}"
assert abs(slope_mean + 1) < 0.3, f"mean error is not first order: slope {slope_mean:.2f}"

# %% mystnb={"figure": {"caption": "Reconstruction error of Euler against the number of steps per half, over the same points: mean, median and maximum of $E(x)$, with the slope $-1$ of a first-order method for reference. The median and the mean fall like $1/N$; the maximum stays of the order of the distance between components until the step is small enough that no inverted noise crosses a basin boundary.", "name": "fig-ch1-steps"}}
fig, ax = plt.subplots(figsize=(6, 4.2), constrained_layout=True)
ax.loglog(N, mean_e, "o-", label=f"mean (slope {slope_mean:.2f})")
ax.loglog(N, median_e, "s-", label=f"median (slope {slope_median:.2f})")
ax.loglog(N, max_e, "^--", color="0.4", label="max")
ax.loglog(N, median_e[0] * N[0] / N, ":", color="k", label="slope $-1$")
ax.set(xlabel="Euler steps per half $N$", ylabel="reconstruction error $E(x)$",
       title="Euler reconstruction error against steps")
ax.legend(fontsize=9)
pfode.nb.savefig(fig, "ch01_error_vs_steps")
plt.show()
