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
# # Figure 5.1: three independent routes to the log-determinant of the generation map
#
# Lemma D.1 says $\log|\det J_G(z)| = \log\varphi_n(z) - \log p_G(G(z))$. This notebook computes
# the left side in two ways that never use $p_G$: the integral of $\nabla\cdot v$ along the
# path (Liouville's formula; exact trace and Hutchinson's estimate), and the log-determinant of
# the full Jacobian of the numerical flow map. It compares both with the right side, the exact
# mixture log-density. It then checks that $\bar\lambda_G$ lies between the smallest and the
# largest singular value, and that $|\det J_G|$ is the ratio of areas of small cells and their
# images.

# %% tags=["parameters"]
dims = [2, 10, 50]          # dimensions n; n = 2 is the book's three-Gaussian example
means_2d = [[-2.0, -1.0], [2.0, -1.0], [0.0, 2.0]]
stds_2d = 0.2
num_components = 6          # random mixtures for n > 2: means uniform on [-1, 1]^n
stds_nd = 0.25
num_points = 16             # points per dimension: half z ~ N(0, I_n), half z = F(x), x uniform on a box
data_box = [3.0, 1.0]       # half-width of that box for n = 2 and for n > 2
hutchinson_repeats = 32     # independent Rademacher probes per point (one per solve)
jacobian_max_n = 50         # route (iii), the full Jacobian, only up to this n
max_condition = 1e6         # route (iii) is compared to 1e-6 only where cond(J) is below this
segment_condition = 1e6     # route (iii) by segments: halve a segment while cond(J_segment) exceeds this
seed = 0
cell_side = 1e-3            # volume check: side of the small squares around the 2-D points
edge_points = 48            # boundary points per square edge for the image polygon
cells = 12                  # figure: cells per side of the noise square [-box, box]^2
box = 3.0

# %% tags=["hide-input"]
import time

import matplotlib.pyplot as plt
import numpy as np
import torch

import pfode
import pfode.nb

run = pfode.nb.setup(globals(), smoke=dict(   # smoke mode: caps and overrides
    dims=lambda v: [d for d in v if d <= 10], num_points=8, hutchinson_repeats=6, cells=6,
    edge_points=24))

gen = run.gen


def mixture(n):
    """The n = 2 example, else K random means on [-1, 1]^n with a common std."""
    if n == 2:
        return pfode.GaussianMixture(means=means_2d, stds=stds_2d)
    means = 2 * torch.rand(num_components, n, generator=gen, dtype=torch.float64) - 1
    return pfode.GaussianMixture(means=means, stds=stds_nd)


# %% [markdown]
# ## The three routes
#
# For each $n$, take points of two kinds: half are noise $z \sim \mathcal N(0, I_n)$ (the
# generation side), half are data $x$ uniform on a box (the reconstruction side:
# $[-3, 3]^2$ for $n = 2$, $[-1, 1]^n$ otherwise) with $z = F(x)$. Then compute
#
# - (i) Liouville: $\log|\det J_G(z)| = \int_1^0 \nabla\cdot v\,dt$ along the path, with the
#   closed-form divergence, and separately with Hutchinson's estimate
#   $\varepsilon^\top(\nabla v)\varepsilon$ (one Rademacher probe per solve, repeated);
# - (ii) density: $\log\varphi_n(z) - \log p_G(x)$ with the exact mixture density
#   (`pfode.log_det_from_density`);
# - (iii) Jacobian: $\log|\det|$ (`torch.linalg.slogdet`) of the full Jacobian, from $n$
#   tangent solves of the variational equation.
#
# On the generation side everything is computed from $z$ with `pfode.log_det_jacobian`,
# `pfode.generate` and `pfode.jacobian(pfode.generation_map(...))`. On the reconstruction
# side it is computed from $x$, along the inversion path (`direction="invert"`), with
# $J_G(F(x)) = J_F(x)^{-1}$: $\log|\det J_G(z)| = -\int_0^1 \nabla\cdot v\,dt = -\log|\det J_F(x)|$. At
# reconstruction points $|\det J_G|$ can reach $e^{50}$. There an error of $10^{-10}$ in $z$
# moves $G(z)$ visibly, so a solve from $z$ no longer lands on $x$, while the solve from $x$
# is well conditioned. All solves use dopri5 with the float64 defaults
# ($\mathrm{rtol} = 10^{-8}$, $\mathrm{atol} = 10^{-10}$).

# %%
def segmented_log_det(field, y, t0, t1, depth=0):
    """(log|det| of the flow map from t0 to t1 at y as a sum over short segments, the Jacobian
    of the first segment tried).

    The Jacobian of the whole map can be so ill-conditioned that its computed determinant
    is meaningless; det(J_K ... J_1) = det(J_K) ... det(J_1) with each segment's Jacobian
    computed from the identity. A segment is halved while some point's Jacobian has a
    condition number above `segment_condition`.
    """
    M = pfode.FlowMap(field, t0, t1, method="dopri5")
    J = pfode.jacobian(M, y)                                                        # (B, n, n)
    sv = torch.linalg.svdvals(J)
    if (sv[:, 0] / sv[:, -1]).max() > segment_condition and depth < 8:
        tm = 0.5 * (t0 + t1)
        ym = pfode.FlowMap(field, t0, tm, method="dopri5")(y)
        return segmented_log_det(field, y, t0, tm, depth + 1)[0] + segmented_log_det(field, ym, tm, t1, depth + 1)[0], J
    return torch.linalg.slogdet(J).logabsdet, J


results = {}
for n in dims:
    gm = mixture(n)
    half = num_points // 2
    R = hutchinson_repeats
    # generation side: from z
    zg = torch.randn(half, n, generator=gen, dtype=torch.float64)                   # (B/2, n)
    tic = time.perf_counter()
    xg, tr_g = pfode.log_det_jacobian(gm, zg, trace="exact")                        # (i)
    t_trace = time.perf_counter() - tic
    tic = time.perf_counter()
    _, h_g = pfode.log_det_jacobian(gm, zg.repeat(R, 1), trace="hutchinson", num_probes=1, generator=gen)
    t_hutch = time.perf_counter() - tic
    den_g = pfode.log_det_from_density(gm, zg, pfode.generate(gm, zg))              # (ii)
    # reconstruction side: from x, along the inversion path
    xr = data_box[n > 2] * (2 * torch.rand(num_points - half, n, generator=gen, dtype=torch.float64) - 1)
    tic = time.perf_counter()
    zr, trF = pfode.log_det_jacobian(gm, xr, direction="invert")                   # (i)
    t_trace += time.perf_counter() - tic
    tic = time.perf_counter()
    _, hF = pfode.log_det_jacobian(gm, xr.repeat(R, 1), direction="invert", trace="hutchinson", generator=gen)
    t_hutch += time.perf_counter() - tic
    den_r = pfode.log_det_from_density(gm, zr, xr)                                  # (ii)

    z = torch.cat([zg, zr])
    trace = torch.cat([tr_g, -trF]).numpy()
    hutch = torch.cat([h_g.reshape(R, -1), -hF.reshape(R, -1)], 1).numpy()          # (R, B)
    density = torch.cat([den_g, den_r]).numpy()
    jac, sv, seg, t_jac = None, None, None, float("nan")
    if n <= jacobian_max_n:
        tic = time.perf_counter()
        seg_g, JG = segmented_log_det(gm, zg, 1.0, 0.0)                             # (iii), J_G(z): (B/2, n, n)
        seg_r, JF = segmented_log_det(gm, xr, 0.0, 1.0)                             # J_F(x) = J_G(F(x))^{-1}
        t_jac = time.perf_counter() - tic
        seg = torch.cat([seg_g, -seg_r]).numpy()
        jac = torch.cat([torch.linalg.slogdet(JG).logabsdet, -torch.linalg.slogdet(JF).logabsdet]).numpy()
        sv_F = torch.linalg.svdvals(JF)
        sv = torch.cat([torch.linalg.svdvals(JG), (1.0 / sv_F).flip(1)]).numpy()   # (B, n) descending
    results[n] = dict(gm=gm, z=z, trace=trace, density=density, jac=jac, seg=seg, sv=sv, hutch=hutch,
                      side=np.array(["gen"] * half + ["rec"] * (num_points - half)),
                      times=(t_trace, t_hutch, t_jac),
                      x_gap=(xg - pfode.generate(gm, zg)).norm(dim=1).max().item())

print("   n   max|(i)-(ii)|  max|(iii)-(ii)|  segments  Hutchinson: max|mean-(ii)|/SE  median SE   "
      "log lambda_bar range       time (i) / Hutch / (iii)")
for n, r in results.items():
    d_tr = np.abs(r["trace"] - r["density"]).max()
    d_jac = np.abs(r["jac"] - r["density"]).max() if r["jac"] is not None else np.nan
    d_seg = np.abs(r["seg"] - r["density"]).max() if r["seg"] is not None else np.nan
    h_mean = r["hutch"].mean(0)
    h_se = r["hutch"].std(0, ddof=1) / np.sqrt(hutchinson_repeats)
    # standardised error; the solver tolerance is a floor on the spread (in two dimensions a
    # Rademacher probe sees only A11 + A22 +- (A12 + A21), which has no spread where A is antisymmetric off the diagonal)
    zscore = (h_mean - r["density"]) / np.sqrt(h_se**2 + (1e-6 * (1 + np.abs(r["density"])))**2)
    r["h_mean"], r["h_se"], r["zscore"] = h_mean, h_se, zscore
    lb = r["density"] / n
    print(f"{n:4d}   {d_tr:11.2e}   {d_jac:12.2e}   {d_seg:8.1e}   {np.abs(zscore).max():27.2f}   "
          f"{np.median(h_se):9.3f}   [{lb.min():+.3f}, {lb.max():+.3f}]   "
          f"{r['times'][0]:.1f} s / {r['times'][1]:.1f} s / {r['times'][2]:.1f} s")

# %% [markdown]
# The exact routes agree to the solver tolerance, with one exception. Where $J$ is nearly
# singular (condition number above `max_condition`), the determinant of the computed Jacobian
# loses digits in proportion to the condition number; routes (i) and (ii) do not. Route (iii)
# recovers when the map is cut into short segments, each with a well-conditioned Jacobian,
# and the log-determinants of the segments are added
# (`segmented_log_det`: $\det(J_K\cdots J_1) = \det J_K\cdots\det J_1$). The
# Hutchinson estimate is unbiased: its
# mean over the probes differs from the exact value by a few standard errors at most. It is
# also noisy, and the noise grows with $n$: each probe sees $n$ coordinates of the trace.

# %%
from scipy import stats

z_threshold = stats.t.ppf(1 - 1e-3 / (2 * num_points * len(results)), hutchinson_repeats - 1)
for n, r in results.items():
    scale = 1.0 + np.abs(r["density"])
    np.testing.assert_allclose(r["trace"], r["density"], rtol=0, atol=1e-6 * scale.max(),
                               err_msg=f"n={n}: Liouville trace integral vs exact density")
    if r["jac"] is not None:
        # The determinant of a computed matrix is only as good as its condition number allows:
        # columns accurate to ~rtol give log|det| accurate to ~ n * rtol * cond(J).
        cond = r["sv"][:, 0] / r["sv"][:, -1]
        ok = cond < max_condition
        np.testing.assert_allclose(r["jac"][ok], r["density"][ok], rtol=0, atol=1e-6 * scale.max(),
                                   err_msg=f"n={n}: slogdet of the Jacobian vs exact density")
        # each segment may still have a condition number up to segment_condition (1e6), which
        # costs about one digit against the whole-map tolerance
        np.testing.assert_allclose(r["seg"], r["density"], rtol=0, atol=1e-5 * scale.max(),
                                   err_msg=f"n={n}: product of segment Jacobian determinants vs exact density")
        bad = ~ok
        assert np.all(np.abs(r["jac"] - r["density"])[bad] < 1e-6 * n * cond[bad]), \
            f"n={n}: slogdet error larger than the conditioning explains"
        if bad.any():
            print(f"n = {n}: {bad.sum()} point(s) with cond(J) >= {max_condition:.0e} "
                  f"(cond up to {cond.max():.1e}): route (iii) differs by up to "
                  f"{np.abs(r['jac'] - r['density'])[bad].max():.1e}; by segments it differs by "
                  f"{np.abs(r['seg'] - r['density'])[bad].max():.1e}")
    assert r["x_gap"] < 1e-6, f"n={n}: G(z) differs between the augmented and plain solves"
    # Hutchinson: unbiased, so each standardised error is roughly Student-t with R - 1 degrees
    # of freedom; the threshold leaves a 1-in-1000 chance of a false alarm over all points.
    assert np.abs(r["zscore"]).max() < z_threshold, \
        f"n={n}: Hutchinson mean off by {np.abs(r['zscore']).max():.1f} SE (threshold {z_threshold:.1f})"

# %% [markdown]
# ## $\bar\lambda_G$ between the extreme singular values
#
# $\bar\lambda_G = |\det J_G|^{1/n} = (\prod_i \sigma_i)^{1/n}$ is a geometric mean of the
# singular values, so $\sigma_{\min} \le \bar\lambda_G \le \sigma_{\max}$. In particular
# $\bar\lambda_G > 1$ forces $\sigma_{\max} > 1$: some direction is stretched.

# %%
for n, r in results.items():
    if r["sv"] is None:
        continue
    sv = r["sv"]
    lam_bar = np.exp(r["density"] / n)                  # from the density (route ii)
    gm_sv = np.exp(np.log(sv).mean(1))                  # geometric mean of the singular values
    ok = sv[:, 0] / sv[:, -1] < max_condition        # see the conditioning remark above
    tol = 1e-6 * (1.0 + np.abs(r["density"])).max() / n      # the tolerance of route (iii), per dimension
    np.testing.assert_allclose(np.log(gm_sv[ok]), np.log(lam_bar[ok]), rtol=0, atol=tol,
                               err_msg=f"n={n}: geometric mean of singular values vs density ratio")
    # threshold: sigma_min <= lambda_bar <= sigma_max holds exactly (a geometric mean); 1e-9
    #   relative is the stated allowance for the solver error of the density route
    assert np.all(sv[:, 0] >= lam_bar * (1 - 1e-9)), f"n={n}: sigma_max < lambda_bar"
    assert np.all(sv[:, -1] <= lam_bar * (1 + 1e-9)), f"n={n}: sigma_min > lambda_bar"
    print(f"n = {n:3d}: sigma_max in [{sv[:, 0].min():.3g}, {sv[:, 0].max():.3g}], "
          f"lambda_bar in [{lam_bar.min():.3g}, {lam_bar.max():.3g}], "
          f"sigma_min in [{sv[:, -1].min():.3g}, {sv[:, -1].max():.3g}]; "
          f"points with lambda_bar > 1: {(lam_bar > 1).sum()}, with sigma_max > 1: {(sv[:, 0] > 1).sum()}")

# %% mystnb={"figure": {"caption": "Three routes to $\\log|\\det J_G(z)|$, divided by $n$ (so the axes show $\\log\\bar\\lambda_G$), at points $z \\sim \\mathcal N(0, I_n)$ and $z = F(x)$ with $x$ uniform on a box (computed from $x$). Left: the Liouville trace integral (i, circles), the log-determinant of the full Jacobian computed as a product over short segments of the path (iii, crosses) and the Hutchinson estimate (mean over the probes with two standard errors) against the exact density ratio (ii). Middle: absolute differences from route (ii), on a log scale; the exact routes agree to the solver tolerance, except the determinant of the whole-map Jacobian (squares) where that Jacobian is nearly singular; the Hutchinson mean agrees to within its standard error (bars: one standard error). Right: singular values of $J_G(z)$ for each point (sorted by $\\bar\\lambda_G$): the geometric mean $\\bar\\lambda_G$ always lies between $\\sigma_{\\min}$ and $\\sigma_{\\max}$, and $\\sigma_{\\max}$ exceeds one at many points where $\\bar\\lambda_G$ does not.", "name": "fig-ch5-three-routes"}}
fig, axes = plt.subplots(1, 3, figsize=(15, 4.6), constrained_layout=True)
colors = {n: f"C{i}" for i, n in enumerate(results)}
ax = axes[0]
lo, hi = np.inf, -np.inf
for n, r in results.items():
    ref = r["density"] / n
    lo, hi = min(lo, ref.min()), max(hi, ref.max())
    ax.plot(ref, r["trace"] / n, "o", color=colors[n], mfc="none", ms=7, label=f"n = {n}: (i) trace")
    if r["seg"] is not None:
        ax.plot(ref, r["seg"] / n, "x", color=colors[n], ms=6, label=f"n = {n}: (iii) slogdet, segments")
    ax.errorbar(ref, r["h_mean"] / n, yerr=2 * r["h_se"] / n, fmt=".", color=colors[n], alpha=0.5,
                capsize=2, label=f"n = {n}: Hutchinson")
pad = 0.05 * (hi - lo)
ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], "k:", lw=1)
ax.set_xscale("symlog", linthresh=1.0)
ax.set_yscale("symlog", linthresh=1.0)
ax.set(xlabel="(ii) exact density: $(\\log\\varphi_n(z) - \\log p_G(G(z)))/n$",
       ylabel="$\\log|\\det J_G(z)|\\,/\\,n$", title="agreement (per dimension; symlog axes)")
ax.legend(fontsize=7, ncol=1, loc="upper left")

ax = axes[1]
for j, (n, r) in enumerate(results.items()):
    ref = r["density"]
    xs = np.full(num_points, j) + np.linspace(-0.25, 0.25, num_points)
    ax.semilogy(xs - 0.05, np.abs(r["trace"] - ref) + 1e-17, "o", color=colors[n], mfc="none")
    if r["jac"] is not None:
        ax.semilogy(xs + 0.05, np.abs(r["jac"] - ref) + 1e-17, "s", color=colors[n], mfc="none", ms=4)
        ax.semilogy(xs + 0.05, np.abs(r["seg"] - ref) + 1e-17, "x", color=colors[n])
    ax.errorbar(xs + 0.15, np.abs(r["h_mean"] - ref), yerr=[np.minimum(r["h_se"], 0.999 * np.abs(r["h_mean"] - ref)), r["h_se"]],
                fmt=".", color=colors[n], alpha=0.35, capsize=1.5, lw=0.8)
ax.plot([], [], "ko", mfc="none", label="(i) trace, exact")
ax.plot([], [], "ks", mfc="none", ms=4, label="(iii) slogdet, whole map")
ax.plot([], [], "kx", label="(iii) slogdet, segments")
ax.errorbar([], [], yerr=[], fmt="k.", alpha=0.5, label="Hutchinson mean $\\pm$ 1 SE")
ax.set_xticks(range(len(results)), [f"n = {n}" for n in results])
ax.set(ylabel="$|\\,\\cdot - \\mathrm{(ii)}|$ in $\\log|\\det J_G|$", title="differences from the density route")
ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=2)

ax = axes[2]
offset = 0
for n, r in results.items():
    if r["sv"] is None:
        continue
    order = np.argsort(r["density"])
    idx = offset + np.arange(num_points)
    ax.semilogy(idx, r["sv"][order, 0], "^", color=colors[n], ms=5)
    ax.semilogy(idx, np.exp(r["density"][order] / n), "o", color=colors[n], ms=5)
    ax.semilogy(idx, r["sv"][order, -1], "v", color=colors[n], ms=5)
    ax.text(offset + num_points / 2, 1.6e-3, f"n = {n}", ha="center", fontsize=9, color=colors[n])
    offset += num_points + 3
ax.axhline(1.0, color="k", lw=0.8, ls=":")
ax.plot([], [], "k^", label="$\\sigma_{\\max}$")
ax.plot([], [], "ko", label="$\\bar\\lambda_G$")
ax.plot([], [], "kv", label="$\\sigma_{\\min}$")
ax.set_xticks([])
ax.set(ylabel="singular values of $J_G(z)$", title="$\\sigma_{\\min} \\leq \\bar\\lambda_G \\leq \\sigma_{\\max}$",
       ylim=(1e-3, None))
ax.legend(fontsize=8, loc="upper left")
pfode.nb.savefig(fig, "ch05_three_routes")
plt.show()

# %% [markdown]
# ## The volume interpretation
#
# $|\det J_G(z)|$ is the factor by which $G$ multiplies small areas near $z$. Around each of
# the two-dimensional noise points $z \sim \mathcal N(0, I_2)$ above, take a square of side
# `cell_side`, map a dense polygon on its boundary through $G$, and measure the area of the
# image with the shoelace formula.
# Divided by the area of the square, it must equal $|\det J_G(z)|$ from route (ii) up to
# $O(\text{cell\_side})$. The two computations share nothing but the ODE.

# %%
gm2 = results[2]["gm"] if 2 in results else mixture(2)
z2 = results[2]["z"].numpy()[results[2]["side"] == "gen"]
s = np.linspace(0.0, 1.0, edge_points, endpoint=False)
square = np.concatenate([np.stack([s, 0 * s], 1), np.stack([1 + 0 * s, s], 1),
                         np.stack([1 - s, 1 + 0 * s], 1), np.stack([0 * s, 1 - s], 1)]) - 0.5  # (4E, 2) ccw


def image_areas(corners_or_centres, side):
    """Shoelace area of G(boundary polygon) for squares of the given side, shape (C,)."""
    poly = corners_or_centres[:, None, :] + side * square[None]                            # (C, 4E, 2)
    img = pfode.generate(gm2, torch.as_tensor(poly.reshape(-1, 2))).numpy().reshape(poly.shape)
    px, py = img[..., 0], img[..., 1]
    return 0.5 * (px * np.roll(py, -1, 1) - np.roll(px, -1, 1) * py).sum(1), poly, img


area_small, _, _ = image_areas(z2, cell_side)
det_ii = np.exp(pfode.log_det_from_density(gm2, torch.as_tensor(z2), pfode.generate(gm2, torch.as_tensor(z2))).numpy())
rel = np.abs(area_small / cell_side**2 - det_ii) / det_ii
print(f"squares of side {cell_side:g} around {len(z2)} points: |det J_G| from {det_ii.min():.3g} to {det_ii.max():.3g}; "
      f"relative difference of the area ratio: median {np.median(rel):.1e}, max {rel.max():.1e}")
assert np.all(area_small > 0), "G reversed the orientation of a square (det J_G must stay positive)"
np.testing.assert_allclose(area_small / cell_side**2, det_ii, rtol=1e-3,
                           err_msg="area ratio of a small square vs |det J_G| at its centre")

# %% [markdown]
# The same construction on a coarse grid of cells shows where $G$ stretches (next figure). A
# cell that contains a piece of a boundary between two basins is spread across the empty space
# between two components. Inside such a cell $|\det J_G|$ varies over many orders of
# magnitude: on the symmetry line $z_1 = 0$ it is enormous (printed below), so a thin strip of
# the cell covers most of its image.

# %%
tic = time.perf_counter()
edges = np.linspace(-box, box, cells + 1)
h = edges[1] - edges[0]
centres = np.array([[a, b] for b in edges[:-1] for a in edges[:-1]]) + h / 2            # (C, 2)
area_img, boundary, img = image_areas(centres, h)
assert np.all(area_img > 0), "G reversed the orientation of a cell"
zc = torch.tensor([[0.0, -1.0]], dtype=torch.float64)
print(f"log|det J_G| at z = (0, -1): {pfode.log_det_from_density(gm2, zc, pfode.generate(gm2, zc)).item():.1f}")
print(f"{len(centres)} cells of side {h:.2f}: area ratio |G(C)|/|C| from {area_img.min() / h**2:.2e} "
      f"to {area_img.max() / h**2:.2e} ({time.perf_counter() - tic:.1f} s)")

# %%
from matplotlib.collections import PolyCollection
from matplotlib.colors import Normalize

fig, axes = plt.subplots(1, 2, figsize=(11, 5), constrained_layout=True)
vals = np.log10(area_img / h**2)
vmax = np.abs(vals).max()
norm = Normalize(-vmax, vmax)
cmap = plt.get_cmap("RdBu_r")
for ax, polys, title, lim, var in ((axes[0], boundary, "noise space: cells $C$", box, "z"),
                                   (axes[1], img, "data space: images $G(C)$", 3.2, "x")):
    pc = PolyCollection(list(polys), facecolors=cmap(norm(vals)), edgecolors="k", linewidths=0.3)
    ax.add_collection(pc)
    ax.set(xlim=(-lim, lim), ylim=(-lim, lim), aspect="equal", title=title,
           xlabel=f"${var}_1$", ylabel=f"${var}_2$")
axes[1].plot(*np.array(means_2d).T, "k+", ms=10, mew=1.5, label="component means")
axes[1].legend(loc="lower right", fontsize=8)
sm = plt.cm.ScalarMappable(norm=norm, cmap=cmap)
fig.colorbar(sm, ax=axes, shrink=0.8, label="$\\log_{10}\\,|G(C)|/|C|$")
_ = pfode.nb.publish(fig, "ch05_volume", "fig-ch5-volume", cells=cells, side=f"{h:.2f}",
                     ratio_min=f"{area_img.min() / h**2:.1e}", ratio_max=f"{area_img.max() / h**2:.1e}")

# %% [markdown]
# ```{glue:figure} fig-ch5-volume
# :name: fig-ch5-volume
#
# The volume interpretation of $|\det J_G|$ for the three-Gaussian example. Left: a grid of
# {glue:text}`fig-ch5-volume-cells` $\times$ {glue:text}`fig-ch5-volume-cells` cells of side
# {glue:text}`fig-ch5-volume-side` in noise space, coloured by $\log_{10}$ of the area ratio
# $|G(C)|/|C|$ (from {glue:text}`fig-ch5-volume-ratio_min` to
# {glue:text}`fig-ch5-volume-ratio_max`). Right: the images $G(C)$ of the same cells in data
# space, same colours. Cells near the boundaries between the basins of the three components are
# stretched over the empty space between the components (area ratio above one); cells in the bulk
# of a basin are squeezed onto a component (ratio far below one). The cells that contain the point
# where the three basins meet are stretched most; together their images cover the empty triangle
# between the components.
# ```
