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

# %% tags=["hide-input"]
import time

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import scipy.stats
import skimage.transform
import torch
from IPython.display import display
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
photo = np.repeat(np.array(images), g * g)                       # (num_images * g^2,) source of each tile
np.testing.assert_array_equal(from_tiles(to_tiles(pics[images[0]])), pics[images[0]])

model_path = pfode.nb.repo_root() / model_path
split = pfode.data.trained_model_split(model_path)
train = torch.tensor(pfode.data.to_chw(split.train))           # (K, 3 R^2)
role = {nm: "training source" if nm in split.train_images else "held out" for nm in images}
fields = {"trained MMDiT": dfl.DiffusersField(dfl.load_transformer(model_path)),
          "exact mixture": pfode.GaussianMixture(means=train, stds=gm_std)}
ts = torch.linspace(1.0, 0.0, steps + 1, dtype=torch.float64)
print(f"{len(images)} photographs at {size}x{size}: {len(x)} tiles of {R}x{R}; {method}, {steps} steps; {role}")

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

# %%
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
_ = pfode.nb.publish(fig, "ch14_photo_gallery", "fig-ch14-photo-gallery", method=method.capitalize(),
                 steps=steps, size=size, tiles=g * g)

# %% [markdown]
# ```{glue:figure} fig-ch14-photo-gallery
# :name: fig-ch14-photo-gallery
#
# Whole photographs (left, resized to {glue:text}`fig-ch14-photo-gallery-size` pixels a side,
# {glue:text}`fig-ch14-photo-gallery-tiles` tiles each), the inverted noise $\hat z=\hat F(x)$
# of every $8\times 8$ tile (clipped to $[-2.5, 2.5]$), and the regenerated image
# $\hat G(\hat z)$, for the trained MMDiT and for the exact mixture of Gaussian neighbours of
# its training set ({glue:text}`fig-ch14-photo-gallery-method`, {glue:text}`fig-ch14-photo-gallery-steps`
# steps, in both directions). The exact field's failures show as wrong tiles (each tile
# regenerates to a training patch); the trained field's errors are small and are mapped in the
# next figure.
# ```

# %% [markdown]
# ## Failures are where the instability is
#
# Rank correlation (Spearman) between the per-tile error $E$ and κ over all tiles of all
# photographs, and Pearson on the logarithms (`pfode.stats.correlation`). The tiles are not
# independent: tiles of one photograph share its content, and two of the four default
# photographs are sources of the training set (seen as other crops at another scale). So each
# correlation has two 95% intervals: one resampling tiles, and one resampling whole
# photographs (the cluster bootstrap, `clusters=`), which is the honest one. With the four
# default photographs it is coarse: a resample is a multiset of four photographs, of which there are
# only 35, and with so few units its coverage is not guaranteed. So the
# correlation is also given for each photograph alone (interval over its tiles), for the
# held-out and for the training-source photographs pooled, and *within* photographs: the
# Pearson correlation of the ranks of κ and of $E$ taken inside each photograph, which removes
# any difference between photographs (a photograph with both larger errors and larger κ would
# otherwise make a correlation across photographs on its own).

# %%
def within_ranks(v):
    """Ranks of v inside each photograph, scaled to (0, 1]."""
    out = np.empty_like(v)
    for p in images:
        w = photo == p
        out[w] = scipy.stats.rankdata(v[w]) / w.sum()
    return out


corr, rows = {}, {}
for name in fields:
    a, b = np.log10(res[name]["kappa"]), np.log10(res[name]["err"])
    c = corr[name] = {
        "spearman": pfode.stats.correlation(a, b, "spearman", n_resamples=n_boot, seed=seed),
        "pearson": pfode.stats.correlation(a, b, "pearson", n_resamples=n_boot, seed=seed),
        "spearman, photographs": pfode.stats.correlation(a, b, "spearman", clusters=photo,
                                                         n_resamples=n_boot, seed=seed),
        "pearson, photographs": pfode.stats.correlation(a, b, "pearson", clusters=photo,
                                                        n_resamples=n_boot, seed=seed),
        "within, photographs": pfode.stats.correlation(within_ranks(a), within_ranks(b), "pearson",
                                                       clusters=photo, n_resamples=n_boot, seed=seed)}
    for p in images:
        w = photo == p
        c[p] = pfode.stats.correlation(a[w], b[w], "spearman", n_resamples=n_boot, seed=seed)
    for grp in ("held out", "training source"):
        w = np.isin(photo, [p for p in images if role[p] == grp])
        if w.sum() >= 3:
            c[grp] = pfode.stats.correlation(a[w], b[w], "spearman", n_resamples=n_boot, seed=seed)
    rows[name] = {"all tiles: Spearman, tiles resampled": f"{c['spearman']:+.2f}",
                  "all tiles: Spearman, photographs resampled": f"{c['spearman, photographs']:+.2f}",
                  "all tiles: Pearson (log), tiles resampled": f"{c['pearson']:+.2f}",
                  "all tiles: Pearson (log), photographs resampled": f"{c['pearson, photographs']:+.2f}",
                  "within photographs: rank correlation, photographs resampled": f"{c['within, photographs']:+.2f}"}
    rows[name] |= {f"{p} ({role[p]}, {g * g} tiles): Spearman": f"{c[p]:+.2f}" for p in images}
    rows[name] |= {f"{grp} photographs pooled: Spearman, tiles resampled": f"{c[grp]:+.2f}"
                   for grp in ("held out", "training source") if grp in c}
display(pd.DataFrame(rows).rename_axis("correlation of E and κ [95% CI]"))
if not pfode.nb.smoke():            # the claims of the text, at the default size
    c = corr["trained MMDiT"]
    # threshold: the text claims a positive correlation for the trained MMDiT, across and within
    #   photographs, with photographs as the independent unit: 0 must lie below both intervals
    assert c["spearman, photographs"].low > 0, f"trained MMDiT: {c['spearman, photographs']}"
    assert c["within, photographs"].low > 0, f"trained MMDiT: {c['within, photographs']}"
    if "held out" in c:
        # threshold: the text claims the correlation does not rest on the training-source
        #   photographs: 0 below the interval of the held-out photographs alone
        assert c["held out"].low > 0, f"trained MMDiT, held-out photographs: {c['held out']}"
    c = corr["exact mixture"]
    # threshold: the text reports no rank correlation for the exact mixture: 0 inside the
    #   photograph-bootstrap intervals
    assert c["spearman, photographs"].low < 0 < c["spearman, photographs"].high, f"exact: {c['spearman, photographs']}"
    assert c["within, photographs"].low < 0 < c["within, photographs"].high, f"exact: {c['within, photographs']}"

# %%
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
    s = corr[nm]["spearman, photographs"]
    for q in ("err", "kappa"):
        cb = fig.colorbar(ims[nm, q], ax=axs[:, j], location="bottom", shrink=0.9, pad=0.01,
                          label=("E" if q == "err" else "κ") + (f"   (ρ = {s:+.2f})" if q == "err" else ""))
        cb.ax.xaxis.set_minor_formatter(NullFormatter())
        j += 1
_ = pfode.nb.publish(fig, "ch14_error_kappa_maps", "fig-ch14-error-kappa-maps", num_images=len(images),
                 method=method.capitalize(), steps=steps)

# %% [markdown]
# ```{glue:figure} fig-ch14-error-kappa-maps
# :name: fig-ch14-error-kappa-maps
#
# Where reconstruction fails and where the regeneration map is unstable
# ({glue:text}`fig-ch14-error-kappa-maps-method`, {glue:text}`fig-ch14-error-kappa-maps-steps`
# steps). For each photograph (rows): the original, then for each field the map of the per-tile
# reconstruction error $E$ and the map of the per-tile instability coefficient κ (both on
# logarithmic colour scales shared by all photographs of one field). The label of each error
# colour bar gives Spearman's ρ of $E$ and κ over all tiles of the
# {glue:text}`fig-ch14-error-kappa-maps-num_images` photographs, with its 95% interval from
# resampling whole photographs.
# ```

# %%
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
    pfode.nb.log_axes(ax)
    ax.set(xlabel="κ (perturbation)", ylabel="reconstruction error E",
           title=f"{nm}: Spearman {corr[nm]['spearman'].estimate:+.2f}")
_ = pfode.nb.publish(fig, "ch14_worst_tiles", "fig-ch14-worst-tiles", num_worst=num_worst,
                 num_tiles=len(x), num_images=len(images))

# %% [markdown]
# ```{glue:figure} fig-ch14-worst-tiles
# :name: fig-ch14-worst-tiles
#
# The {glue:text}`fig-ch14-worst-tiles-num_worst` worst tiles of each field (largest
# reconstruction error over all {glue:text}`fig-ch14-worst-tiles-num_tiles` tiles of the
# {glue:text}`fig-ch14-worst-tiles-num_images` photographs): the original tile, its inverted
# noise (clipped to $[-2.5, 2.5]$) and its reconstruction, labelled with the error $E$ and the
# instability coefficient κ, and the rank of κ among all tiles (1 = most unstable). Right: $E$
# against κ for every tile, worst tiles circled; the title gives Spearman's ρ over all tiles.
# ```

# %%
print(f"total {time.time() - t_start:.0f} s")
