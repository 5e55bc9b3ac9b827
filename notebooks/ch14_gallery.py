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
# # Figures 1, A2, A3 with whole photographs: where reconstruction fails
#
# The paper's Figures 1, A2 and A3 show real images, their inverted noise and their
# reconstructions, with the failures. The book's trained MMDiT works on $8\times 8$ patches,
# too small to look at, so here a whole photograph is resized to `size`×`size` pixels, cut into
# non-overlapping $8\times 8$ tiles, and every tile is inverted to noise and regenerated
# (Euler, `steps` steps) by the trained MMDiT and by the exact mixture of Gaussian neighbours of
# its training set. The tiles are put back together: a failure shows as a wrong tile. Next to
# the map of the per-tile reconstruction error stands the map of the per-tile instability
# coefficient κ of the regeneration map at the inverted noise (the paper's perturbation
# estimate, Appendix E.2), and the two are correlated over all tiles.

# %% tags=["parameters"]
model_path = "models/mmdit-patches"   # the trained MMDiT (diffusers format), relative to the repository root
images = ["astronaut", "flower", "coffee", "chelsea"]   # photographs (pfode.data.SOURCES)
size = 48                   # side of the resized photograph in pixels (a multiple of 8)
steps = 50                  # Euler steps for inversion and for generation (the paper: 500)
method = "euler"
gm_std = 0.05               # common std of the exact mixture of Gaussian neighbours
perturb_std = 1e-3          # the paper's perturbation Delta ~ N(0, perturb_std^2 I) of the inverted noise
num_worst = 6               # worst tiles shown per field
seed = 0
n_boot = 2000

# %%
import time

import matplotlib.pyplot as plt
import numpy as np
import skimage.transform
import torch
from matplotlib.colors import LogNorm
from matplotlib.ticker import NullFormatter

import pfode
import pfode.data
import pfode.nb
from pfode import diffusers_field as dfl

run = pfode.nb.setup(globals(), smoke=dict(   # smoke mode: caps and overrides
    images=lambda v: v[:2], size=32, steps=10, n_boot=200, num_worst=3))

t_start = time.time()
gen = run.gen
assert size % 8 == 0, "size must be a multiple of the patch side 8"

# %% [markdown]
# ## Photographs as tiles, and the two fields
#
# Each photograph is cropped to its central square and resized (with anti-aliasing) to
# `size`×`size`, values in $[-1, 1]$. `astronaut` and `flower` are the held-out photographs of
# the model; `coffee` and `chelsea` are training photographs, but the model saw them only as
# $32\times32$ crops averaged down to $8\times 8$ (scale 1/4), never whole at scale
# `size`/side, so their tiles are not training patches either. The exact mixture is built on
# exactly the training set of the MMDiT (specification read from `training_log.json`).

# %%
R = 8                                                            # the model's patch side
g = size // R                                                    # tiles per side


def photo(name):
    """Central square of the photograph, resized to (size, size, 3) in [-1, 1]."""
    a = pfode.data.load_image(name)
    h, w, _ = a.shape
    s = min(h, w)
    a = a[(h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s]
    return np.clip(skimage.transform.resize(a, (size, size), anti_aliasing=True, order=1), -1, 1)


def to_tiles(img):
    """(size, size, 3) -> (g*g, 3*R*R) in the model's (3, R, R) order, row-major tiles."""
    t = img.reshape(g, R, g, R, 3).transpose(0, 2, 4, 1, 3)     # (g, g, 3, R, R)
    return torch.tensor(t.reshape(g * g, -1))


def from_tiles(x):
    """Inverse of to_tiles: (g*g, 3*R*R) -> (size, size, 3)."""
    t = np.asarray(x, dtype=np.float64).reshape(g, g, 3, R, R).transpose(0, 3, 1, 4, 2)
    return t.reshape(size, size, 3)


pics = {name: photo(name) for name in images}
x = torch.cat([to_tiles(pics[name]) for name in images])        # (num_images * g^2, 192) float64
np.testing.assert_array_equal(from_tiles(to_tiles(pics[images[0]])), pics[images[0]])

model_path = pfode.nb.repo_root() / model_path
train = torch.tensor(pfode.data.to_chw(pfode.data.trained_model_split(model_path).train))   # (K, 3 R^2)
fields = {"trained MMDiT": dfl.DiffusersField(dfl.load_transformer(model_path)),
          "exact mixture": pfode.GaussianMixture(means=train, stds=gm_std)}
ts = torch.linspace(1.0, 0.0, steps + 1, dtype=torch.float64)
print(f"{len(images)} photographs at {size}x{size}: {len(x)} tiles of {R}x{R}; {method}, {steps} steps")

# %% [markdown]
# ## Reconstruction and instability of every tile
#
# $\hat z = \hat F(x)$, $\hat x = \hat G(\hat z)$, $E = \|x - \hat x\|$ per tile, and
# $\kappa = \|\hat G(\hat z + \Delta) - \hat G(\hat z)\| / \|\Delta\|$ with one draw
# $\Delta \sim N(0, \sigma_p^2 I)$ per tile (`pfode.instability_coefficient` solves $\hat z$ and
# $\hat z + \Delta$ in one batch).

# %%
res = {}
for name, field in fields.items():
    t0 = time.time()
    G = dfl.schedule_map(field, ts, method)
    F = dfl.schedule_map(field, ts.flip(0), method)
    with torch.no_grad():
        z_hat = F(x)
        delta = perturb_std * torch.randn(z_hat.shape, generator=gen, dtype=z_hat.dtype)
        both = G(torch.cat([z_hat, z_hat + delta]))
    x_rec, x_pert = both[:len(x)], both[len(x):]
    kappa = ((x_pert - x_rec).norm(dim=1) / delta.norm(dim=1)).numpy()
    err = (x_rec - x).norm(dim=1).numpy()
    res[name] = dict(z=z_hat, rec=x_rec, err=err, kappa=kappa)
    print(f"{name:>14s}: E median {np.median(err):.3f}, max {err.max():.3f}; "
          f"kappa median {np.median(kappa):.3f}, max {kappa.max():.3f}; {time.time() - t0:.1f} s")
    assert np.all(np.isfinite(err)) and np.all(kappa > 0)

# %% [markdown]
# Check against an independent computation: κ from `pfode.instability_coefficient` (its own
# batch) must reproduce the in-line estimate on a few tiles of the trained field (same map,
# same directions, so the same number up to rounding).

# %%
name = "trained MMDiT"
G = dfl.schedule_map(fields[name], ts, method)
idx = np.arange(4)
torch.manual_seed(seed)
u = perturb_std * torch.randn(len(idx), x.shape[1], generator=torch.Generator().manual_seed(seed + 1),
                              dtype=torch.float64)
with torch.no_grad():
    k_lib = pfode.instability_coefficient(G, res[name]["z"][idx], u).numpy()
    k_man = ((G(res[name]["z"][idx] + u) - G(res[name]["z"][idx])).norm(dim=1) / u.norm(dim=1)).numpy()
print("kappa, library vs separate solves:", np.round(k_lib, 4), np.round(k_man, 4))
np.testing.assert_allclose(k_lib, k_man, rtol=1e-3)

# %% mystnb={"figure": {"caption": "Whole photographs (left), the inverted noise $\\hat z=\\hat F(x)$ of every $8\\times 8$ tile (clipped to $[-2.5, 2.5]$), and the regenerated image $\\hat G(\\hat z)$, for the trained MMDiT and for the exact mixture of Gaussian neighbours of its training set (Euler for both directions). The exact field's failures show as wrong tiles (each tile regenerates to a training patch); the trained field's errors are small and are mapped in the next figure.", "name": "fig-ch14-photo-gallery"}}
cols = ["original"] + [f"{nm}: {lbl}" for nm in fields for lbl in ("inverted noise", "reconstruction")]
n = g * g
fig, axs = plt.subplots(len(images), len(cols), figsize=(2.1 * len(cols), 2.2 * len(images)),
                        squeeze=False, constrained_layout=True)
for i, im_name in enumerate(images):
    sl = slice(i * n, (i + 1) * n)
    panels = [pics[im_name]]
    for nm in fields:
        panels += [from_tiles(res[nm]["z"][sl]) / 2.5, from_tiles(res[nm]["rec"][sl])]
    pfode.data.show(np.stack(panels), axs[i])                   # (len(cols), size, size, 3)
    axs[i, 0].set_ylabel(im_name, fontsize=9)
for j, c in enumerate(cols):
    axs[0, j].set_title(c, fontsize=8)
pfode.nb.savefig(fig, "ch14_photo_gallery")
plt.show()

# %% [markdown]
# ## Failures are where the instability is
#
# Rank correlation (Spearman) between the per-tile error $E$ and κ over all tiles of all
# photographs, and Pearson on the logarithms, with 95% paired-bootstrap intervals
# (`pfode.stats.correlation`).

# %%
corr = {}
for name in fields:
    a, b = res[name]["kappa"], res[name]["err"]
    corr[name] = {c: pfode.stats.correlation(np.log10(a), np.log10(b), c, n_resamples=n_boot, seed=seed)
                  for c in ("spearman", "pearson")}
    s, p = corr[name]["spearman"], corr[name]["pearson"]
    print(f"{name:>14s}: Spearman(E, kappa) {s.estimate:+.2f} [{s.low:+.2f}, {s.high:+.2f}] (p = {s.p_value:.1e}); "
          f"Pearson(log) {p.estimate:+.2f} [{p.low:+.2f}, {p.high:+.2f}]; {len(a)} tiles")
    # threshold: an interval contains its estimate (a consistency check of the bootstrap)
    assert s.low <= s.estimate <= s.high
# The paper's claim for a trained model: the failing tiles are the unstable ones.
if not pfode.nb.smoke():
    s = corr["trained MMDiT"]["spearman"]
    assert s.low > 0, f"no positive rank correlation of E and kappa for the trained MMDiT: {s}"

# %% mystnb={"figure": {"caption": "Where reconstruction fails and where the regeneration map is unstable. For each photograph (rows): the original, then for each field the map of the per-tile reconstruction error $E$ and the map of the per-tile instability coefficient κ (both on logarithmic colour scales shared by all photographs of one field). The panel titles give Spearman's ρ of $E$ and κ over all tiles of all photographs, with its 95% bootstrap interval.", "name": "fig-ch14-error-kappa-maps"}}
cols = ["original"] + [f"{nm}: {q}" for nm in fields for q in ("error E", "κ")]
fig, axs = plt.subplots(len(images), len(cols), figsize=(2.3 * len(cols), 2.2 * len(images) + 0.6),
                        squeeze=False, constrained_layout=True)
norms = {(nm, q): LogNorm(vmin=res[nm][q].min(), vmax=res[nm][q].max()) for nm in fields for q in ("err", "kappa")}
ims = {}
for i, im_name in enumerate(images):
    sl = slice(i * n, (i + 1) * n)
    axs[i, 0].imshow(pfode.data.show(pics[im_name]), interpolation="nearest", extent=(0, g, g, 0))
    j = 1
    for nm in fields:
        for q, cmap in (("err", "magma"), ("kappa", "viridis")):
            ims[nm, q] = axs[i, j].imshow(res[nm][q][sl].reshape(g, g), cmap=cmap, norm=norms[nm, q],
                                          interpolation="nearest", extent=(0, g, g, 0))
            j += 1
    for ax in axs[i]:
        ax.set_xticks([]), ax.set_yticks([])
    axs[i, 0].set_ylabel(im_name, fontsize=9)
for j, c in enumerate(cols):
    axs[0, j].set_title(c, fontsize=8)
j = 1
for nm in fields:
    s = corr[nm]["spearman"]
    for q in ("err", "kappa"):
        cb = fig.colorbar(ims[nm, q], ax=axs[:, j], location="bottom", shrink=0.9, pad=0.01,
                          label=("E" if q == "err" else "κ") + (f"   (ρ = {s.estimate:+.2f} [{s.low:+.2f}, {s.high:+.2f}])" if q == "err" else ""))
        cb.ax.xaxis.set_minor_formatter(NullFormatter())
        j += 1
pfode.nb.savefig(fig, "ch14_error_kappa_maps")
plt.show()

# %% mystnb={"figure": {"caption": "The worst tiles of each field (largest reconstruction error over all photographs): the original tile, its inverted noise (clipped to $[-2.5, 2.5]$) and its reconstruction, labelled with the error $E$ and the instability coefficient κ, and the rank of κ among all tiles (1 = most unstable). Right: $E$ against κ for every tile, worst tiles circled.", "name": "fig-ch14-worst-tiles"}}
fig = plt.figure(figsize=(13, 1.25 * num_worst + 0.8), constrained_layout=True)
sub = fig.subfigures(1, 2 * len(fields), width_ratios=[0.8, 1.3] * len(fields))
for f_i, nm in enumerate(fields):
    err, kap = res[nm]["err"], res[nm]["kappa"]
    worst = np.argsort(err)[::-1][:num_worst]
    rank = np.empty(len(kap), int)
    rank[np.argsort(kap)[::-1]] = np.arange(1, len(kap) + 1)
    axs = sub[2 * f_i].subplots(num_worst, 3)
    for k, t in enumerate(worst):
        pfode.data.show(torch.stack([x[t], res[nm]["z"][t] / 2.5, res[nm]["rec"][t]]), axs[k], layout="chw")
        axs[k, 0].set_ylabel(f"E={err[t]:.2f}\nκ={kap[t]:.2g}\n(κ rank {rank[t]})", fontsize=7)
        if k == 0:
            for j, c in enumerate(("original", "noise", "recon.")):
                axs[0, j].set_title(c, fontsize=8)
    sub[2 * f_i].suptitle(nm, fontsize=9)
    ax = sub[2 * f_i + 1].subplots()
    ax.scatter(kap, err, s=8, alpha=0.6, color=f"C{f_i}")
    ax.scatter(kap[worst], err[worst], s=60, facecolors="none", edgecolors="k")
    ax.set(xscale="log", yscale="log", xlabel="κ (perturbation)", ylabel="reconstruction error E",
           title=f"{nm}: Spearman {corr[nm]['spearman'].estimate:+.2f}")
    ax.xaxis.set_minor_formatter(NullFormatter()), ax.yaxis.set_minor_formatter(NullFormatter())
pfode.nb.savefig(fig, "ch14_worst_tiles")
plt.show()

# %%
print(f"total {time.time() - t_start:.0f} s")
