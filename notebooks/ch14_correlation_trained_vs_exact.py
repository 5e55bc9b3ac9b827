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
# # Figure 4(c) / A1 with real images: trained MMDiT versus the exact model
#
# Held-out photograph patches are inverted to noise and regenerated, with Euler and with Heun,
# by two fields: the small MMDiT trained on the book's patch set (`models/mmdit-patches`) and
# the exact field of the mixture of Gaussian neighbours of the same training patches (what
# perfect training converges to). For each patch the reconstruction error is set against the
# instability coefficient of the regeneration map at the inverted noise, measured the paper's
# way (a small perturbation of the inverted noise) and by exact Jacobian–vector products.
#
# The defaults (60 patches, 40 steps, one perturbation each) keep the run under two minutes on a
# CPU. The paper's setting is one papermill call away:
# `papermill ch14_correlation_trained_vs_exact.ipynb out.ipynb -p num_images 100 -p steps 500 -p num_directions 4`.
#
# With `pipeline_path` set to a local Stable Diffusion 3 / 3.5 or FLUX.1 folder and `image_dir`
# to a folder of images, the same measurements run on that model in latent space (errors in
# pixels) instead: the paper's Appendix E.2 setting, with the null prompt by default (or a
# `prompt`, with classifier-free guidance by `guidance_scale`). Only what holds for any model is
# asserted then; the figures and tables are written for it.

# %% tags=["parameters"]
model_path = "models/mmdit-patches"      # the trained MMDiT (diffusers format), relative to the repository root
num_images = 60             # held-out patches (the paper: 100 COCO images; -p num_images 100)
steps = 40                  # solver steps for inversion and for generation (the paper: 500; -p steps 500)
methods = ["euler", "heun"]
gm_std = 0.05               # common std of the exact mixture of Gaussian neighbours
perturb_std = 1e-3          # the paper's perturbation of the inverted noise: Delta ~ N(0, perturb_std^2 I)
num_directions = 1          # perturbations (and JVP directions) averaged per image
seed = 0
n_boot = 2000
pipeline_path = ""          # a local SD3 / SD3.5 or FLUX.1 pipeline folder: run the paper's setting instead
image_dir = ""              # with pipeline_path: a folder of images (e.g. 100 COCO val2014 images)
image_size = 512            # with pipeline_path: centre crop resized to this side
prompt = ""                 # with pipeline_path: the prompt (the paper: the null prompt)
guidance_scale = None       # with pipeline_path: as the pipeline means it (SD3: classifier-free guidance
                            #   against negative_prompt, None = none; FLUX.1-dev: its distilled scale, None = 3.5)
negative_prompt = ""        # with pipeline_path and an SD3 guidance_scale
max_sequence_length = None  # with pipeline_path: T5 prompt tokens (None: the pipeline's default)
dtype = "float32"           # with pipeline_path: "float32", "bfloat16" or "float16" (model and VAE)
chunk = 4                   # with pipeline_path: at most this many images per transformer / VAE call

# %% tags=["hide-input"]
import os
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from IPython.display import display
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

import pfode
import pfode.data
import pfode.nb
from pfode import diffusers_field as dfl

run = pfode.nb.setup(globals(), smoke=dict(   # smoke mode: caps and overrides
    num_images=12, steps=8, num_directions=1, n_boot=200))

t_start = time.time()
rng_seed = run.gen

# %% [markdown]
# ## Data and the two fields
#
# The held-out patches come from photographs that the model never saw (`astronaut`, `flower`);
# the data specification (patch size, crop, training photographs, seeds) is read from the model's
# `training_log.json`, so the exact mixture is built on exactly the training set of the MMDiT.
# In pipeline mode the images of `image_dir` are encoded by the VAE; the PF-ODE runs on latents
# and errors are measured on decoded pixels.

# %%
models = {}          # name -> dict(field, x, ts, decode)
if pipeline_path:
    if not os.path.isdir(pipeline_path):
        raise FileNotFoundError(
            f"pipeline_path {pipeline_path!r} is not a folder. Download an SD3 / SD3.5 pipeline "
            "(e.g. stabilityai/stable-diffusion-3.5-medium) elsewhere and pass its local path.")
    if not os.path.isdir(image_dir):
        raise FileNotFoundError(f"image_dir {image_dir!r} is not a folder of images")
    from PIL import Image
    if dtype not in ("float32", "bfloat16", "float16"):
        raise ValueError(f"dtype must be 'float32', 'bfloat16' or 'float16', got {dtype!r}")
    pf = dfl.load_pipeline(pipeline_path, image_size=image_size, dtype=getattr(torch, dtype),
                           device="cuda" if torch.cuda.is_available() else "cpu", chunk=chunk,
                           prompt=prompt, guidance_scale=guidance_scale, negative_prompt=negative_prompt,
                           max_sequence_length=max_sequence_length)
    files = sorted(p for p in Path(image_dir).iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    files = files[:num_images]

    def load(p):
        im = Image.open(p).convert("RGB")
        s = min(im.size)
        im = im.crop(((im.width - s) // 2, (im.height - s) // 2, (im.width + s) // 2, (im.height + s) // 2))
        a = np.asarray(im.resize((image_size, image_size), Image.BICUBIC), dtype=np.float32) / 127.5 - 1
        return torch.tensor(a).permute(2, 0, 1)

    images = torch.stack([load(p) for p in files]).to(pf.field.device)
    lat = pf.encode(images).double()
    models[Path(pipeline_path).name] = dict(field=pf.field, x=lat, pixels=images.cpu().double(),
                                            ts=pf.ts(steps), decode=lambda z: pf.decode(z).cpu().double(),
                                            shape=pf.latent_shape)
    num_images = len(files)
    photo = np.array([p.name for p in files])                               # each image its own unit
    print(f"{pf}: {num_images} images of {image_dir}, {steps} steps")
else:
    model_path = pfode.nb.repo_root() / model_path      # an absolute path is kept as it is
    split = pfode.data.trained_model_split(model_path, min_test=num_images)
    r = split.r
    train = torch.tensor(pfode.data.to_chw(split.train))                     # (K, n) float64
    pick = np.random.default_rng(seed).choice(len(split.test), num_images, replace=False)
    x = torch.tensor(pfode.data.to_chw(split.test[pick]))                    # (N, n) held out
    spec = split.spec                    # the same split again, for the source photograph of each patch
    full = pfode.data.patch_split(spec["r"], spec["num_train"], len(split.test), crop=spec["crop"],
                                  seed=spec["data_seed"], train_images=split.train_images,
                                  test_images=split.test_images)
    np.testing.assert_array_equal(full.test, split.test)
    photo = np.array(split.test_images)[full.test_source[pick]]            # (N,) photograph of each patch
    ts = torch.linspace(1.0, 0.0, steps + 1, dtype=torch.float64)            # uniform, no shift
    trained = dfl.DiffusersField(dfl.load_transformer(model_path))
    exact = pfode.GaussianMixture(means=train, stds=gm_std)
    ident = lambda z: z                                                      # noqa: E731
    models["trained MMDiT"] = dict(field=trained, x=x, pixels=x, ts=ts, decode=ident,
                                  shape=(3, r, r))
    models["exact mixture"] = dict(field=exact, x=x, pixels=x, ts=ts, decode=ident, shape=(3, r, r))
    print(f"trained: {trained} ({split.log['steps']} steps, held-out loss {split.log['loss_final_heldout']:.3f})")
    print(f"exact: mixture of {exact.K} Gaussian neighbours, std {gm_std}, n = {exact.n}")
    print(f"{num_images} held-out patches from {split.test_images} "
          f"({', '.join(f'{(photo == p).sum()} of {p}' for p in split.test_images)}); {steps} steps per direction")

# %% [markdown]
# ## Reconstruction, perturbation and JVP instability
#
# For each field and solver: $\hat z = \hat F(x)$, $\hat x = \hat G(\hat z)$ and
# $E(x) = \|x - \hat x\|$ (pixels in $[-1, 1]$). Then the paper's estimate
# $\kappa = \|\hat G(\hat z + \Delta) - \hat G(\hat z)\| / \|\Delta\|$ with
# $\Delta \sim N(0, \sigma_p^2 I)$, and the exact directional instability
# $\lambda = \|J_{\hat G}(\hat z)\,u\| / \|u\|$ of the discrete map along the same directions
# (tangent equation, exact up to rounding), each averaged over `num_directions` draws.

# %%
results = {}
for name, m in models.items():
    field, x, ts = m["field"], m["x"], m["ts"]
    for method in methods:
        t0 = time.time()
        G = dfl.schedule_map(field, ts, method)
        F = dfl.schedule_map(field, ts.flip(0), method)
        with torch.no_grad():
            z_hat = F(x)
            x_rec = G(z_hat)
        err = (m["decode"](x_rec) - m["pixels"]).flatten(1).norm(dim=1).numpy()
        kap, lam = [], []
        for k in range(num_directions):
            delta = perturb_std * torch.randn(z_hat.shape, generator=rng_seed, dtype=z_hat.dtype)
            with torch.no_grad():
                x_pert = G(z_hat + delta)
            kap.append(((x_pert - x_rec).norm(dim=1) / delta.norm(dim=1)).numpy())
            _, jd = G.jvp(z_hat, delta.to(z_hat.device))
            lam.append((jd.detach().norm(dim=1) / delta.norm(dim=1)).numpy())
        results[name, method] = dict(err=err, kappa=np.mean(kap, 0), lam=np.mean(lam, 0),
                                     z_hat=z_hat, x_rec=x_rec, seconds=time.time() - t0)
        print(f"{name:>14s} {method:5s}: E median {np.median(err):.3e} max {err.max():.3e}; "
              f"kappa median {np.median(results[name, method]['kappa']):.3f}; "
              f"{time.time() - t0:.1f} s")

# %% [markdown]
# Checks against independent truths. The perturbation estimate $\kappa$ is a finite difference
# of the same discrete map whose exact derivative gives $\lambda$: where the map is smooth on
# the scale of the perturbation the two must agree. That is asserted for the trained network
# (a smooth field); for the exact mixture the disagreement is only reported, since its
# generation map bends sharply between training points. And on the trained field Heun, second
# order, must reconstruct better than Euler with the same number of steps.

# %%
for (name, method), res in results.items():
    rel = np.abs(res["kappa"] - res["lam"]) / res["lam"]
    print(f"{name:>14s} {method:5s}: |kappa - lambda| / lambda: median {np.median(rel):.1e}, max {rel.max():.1e}")
    if not pipeline_path and name != "exact mixture":   # the patch model; any pipeline is only reported
        assert np.median(rel) < 0.05, f"perturbation estimate and JVP disagree for {name}, {method}"
if {"euler", "heun"} <= set(methods):
    name = list(models)[0]
    e_eu, e_he = results[name, "euler"]["err"], results[name, "heun"]["err"]
    gain = pfode.stats.bootstrap(np.median, e_eu / e_he, n_resamples=n_boot, seed=seed)   # paired, per patch
    print(f"{name}: median E Euler {np.median(e_eu):.3e}, Heun {np.median(e_he):.3e}; "
          f"per-patch ratio E_Euler / E_Heun: median {gain:.0f}")
    if not pipeline_path:       # a claim about the patch model, not about every pipeline
        assert np.median(e_he) < np.median(e_eu), f"Heun does not beat Euler on {name}"
        # threshold: a ratio of 1 means no gain; the interval must lie above it
        assert gain.low > 1, f"Heun does not reconstruct better than Euler on {name}: ratio {gain:.2f}"

# %% [markdown]
# ## Correlation of reconstruction error and instability
#
# Pearson on $\log_{10}$ of both quantities (errors and coefficients span orders of magnitude)
# and Spearman (rank; unaffected by the log), with 95% paired-bootstrap intervals.

# %%
corr = {}
for (name, method), res in results.items():
    for est in ("kappa", "lam"):
        a, b = np.log10(res[est]), np.log10(res["err"])
        corr[name, method, est] = {c: pfode.stats.correlation(a, b, c, n_resamples=n_boot, seed=seed)
                                   for c in ("pearson", "spearman")}
        p, s = corr[name, method, est]["pearson"], corr[name, method, est]["spearman"]
        print(f"{name:>14s} {method:5s} {est:5s}: Pearson {p.estimate:+.2f} [{p.low:+.2f}, {p.high:+.2f}]"
              f"  Spearman {s.estimate:+.2f} [{s.low:+.2f}, {s.high:+.2f}]  (p = {s.p_value:.1e})")
# The paper's claim (its Figure 4(c)): with Euler, larger instability goes with larger error.
# Tested on the trained model at full size (the smoke configuration has too few points).
if not pipeline_path and not pfode.nb.smoke() and "euler" in methods:
    s = corr["trained MMDiT", "euler", "kappa"]["spearman"]
    assert s.low > 0, f"no positive rank correlation for the trained model with Euler: {s}"

# %% [markdown]
# ## How unstable is the regeneration map?
#
# The median of κ over the patches with a 95% bootstrap interval (`pfode.stats.bootstrap` of
# `np.median`, resampling patches), and the median per source photograph. κ < 1 means that the
# regeneration map shrinks a perturbation of the inverted noise: it contracts there. The
# held-out patches come from two photographs only, too few units for a bootstrap over
# photographs; the per-photograph medians show whether the two agree.

# %%
med_kappa, per_photo = {}, {}
for (name, method), res in results.items():
    med_kappa[name, method] = pfode.stats.bootstrap(np.median, res["kappa"], n_resamples=n_boot, seed=seed)
    per_photo[name, method] = {p: float(np.median(res["kappa"][photo == p])) for p in dict.fromkeys(photo)}
    per = "" if pipeline_path else "; per photograph: " + ", ".join(
        f"{p} {v:.2f}" for p, v in per_photo[name, method].items())
    print(f"{name:>14s} {method:5s}: median kappa {med_kappa[name, method]:.3f}{per}")
if not pipeline_path and not pfode.nb.smoke():       # claims of the text, at the default size
    for method in methods:
        iv = med_kappa["trained MMDiT", method]
        # threshold: kappa = 1 separates contraction from expansion; the text calls the trained
        #   field's regeneration map contracting at the typical inverted noise
        assert iv.high < 1, f"median kappa of the trained MMDiT with {method} is not below 1: {iv}"
        assert max(per_photo["trained MMDiT", method].values()) < 1, \
            f"a photograph's median kappa is not below 1: {per_photo['trained MMDiT', method]}"
    if "heun" in methods:
        s = corr["trained MMDiT", "heun", "kappa"]["spearman"]
        # threshold: the text reports no detectable rank correlation with Heun: 0 in the interval
        assert s.low < 0 < s.high, f"the trained MMDiT with Heun has a rank correlation after all: {s}"

# %%
names = list(models)


def log_axes(ax):
    """Log-log axes with at least two labelled ticks on each axis: over less than two decades
    the major ticks are at 1-2-3-5 (below one decade at every digit), plainly labelled; minor
    tick labels are dropped (they collide on short ranges). Call it after plotting."""
    ax.set(xscale="log", yscale="log")
    for axis, (lo, hi) in ((ax.xaxis, ax.get_xlim()), (ax.yaxis, ax.get_ylim())):
        decades = np.log10(hi / lo)
        if decades < 2:
            axis.set_major_locator(LogLocator(subs=np.arange(1, 10) if decades < 1 else (1, 2, 3, 5)))
            axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        axis.set_minor_formatter(NullFormatter())


fig, axs = plt.subplots(len(methods), len(names), figsize=(5.2 * len(names), 4.3 * len(methods)),
                        squeeze=False, constrained_layout=True)
for j, name in enumerate(names):
    for i, method in enumerate(methods):
        res, ax = results[name, method], axs[i, j]
        ax.scatter(res["kappa"], res["err"], s=14, alpha=0.75, color=f"C{j}")
        log_axes(ax)
        ax.set(xlabel="instability coefficient κ (perturbation)",
               ylabel="reconstruction error E(x)", title=f"{name}, {method}, {steps} steps")
        p, s = corr[name, method, "kappa"]["pearson"], corr[name, method, "kappa"]["spearman"]
        ax.text(0.03, 0.97, f"Pearson (log) {p.estimate:+.2f} [{p.low:+.2f}, {p.high:+.2f}]\n"
                f"Spearman {s.estimate:+.2f} [{s.low:+.2f}, {s.high:+.2f}]",
                transform=ax.transAxes, va="top", fontsize=9,
                bbox=dict(boxstyle="round", fc="white", ec="0.8"))
_ = pfode.nb.publish(fig, "ch14_scatter_trained_vs_exact", "fig-ch14-scatter", fields=" and ".join(names),
                 methods=" and ".join(m.capitalize() for m in methods), steps=steps, num_images=num_images)

# %% [markdown]
# ```{glue:figure} fig-ch14-scatter
# :name: fig-ch14-scatter
#
# Reconstruction error $E(x)=\|x-\hat G(\hat F(x))\|$ of {glue:text}`fig-ch14-scatter-num_images`
# held-out images against the averaged instability coefficient $\kappa$ of the regeneration map
# at the inverted noise (the paper's perturbation estimate), for the fields
# {glue:text}`fig-ch14-scatter-fields` (columns, left to right) with the solvers
# {glue:text}`fig-ch14-scatter-methods` (rows, top to bottom), {glue:text}`fig-ch14-scatter-steps`
# steps each way. Each panel gives Pearson's r of the logarithms and Spearman's ρ with 95%
# bootstrap intervals (resampling images).
# ```

# %%
fig, axs = plt.subplots(1, len(methods), figsize=(5 * len(methods), 4.3), squeeze=False,
                        constrained_layout=True)
for i, method in enumerate(methods):
    ax = axs[0, i]
    for j, name in enumerate(names):
        res = results[name, method]
        ax.scatter(res["lam"], res["kappa"], s=12, alpha=0.7, color=f"C{j}", label=name)
    lo = min(min(results[n, method]["lam"].min() for n in names), min(results[n, method]["kappa"].min() for n in names))
    hi = max(max(results[n, method]["lam"].max() for n in names), max(results[n, method]["kappa"].max() for n in names))
    ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
    log_axes(ax)
    ax.set(xlabel="λ (exact JVP)", ylabel="κ (perturbation)", title=method)
    ax.legend()
_ = pfode.nb.publish(fig, "ch14_kappa_vs_lambda", "fig-ch14-kappa-lambda", perturb_std=f"{perturb_std:g}",
                 num_directions=num_directions)

# %% [markdown]
# ```{glue:figure} fig-ch14-kappa-lambda
# :name: fig-ch14-kappa-lambda
#
# The two instability estimates per image: the paper's perturbation coefficient κ
# (perturbation std {glue:text}`fig-ch14-kappa-lambda-perturb_std`) against the exact directional
# coefficient λ from Jacobian–vector products of the same discrete regeneration map, along the
# same directions ({glue:text}`fig-ch14-kappa-lambda-num_directions` per image, averaged). Points
# on the diagonal: the perturbation is small enough to measure the derivative.
# ```

# %%
num_show = 4
worst_by = "euler" if "euler" in methods else methods[0]
rows = []
for name in names:
    res = results[name, worst_by]
    for i in np.argsort(res["err"])[::-1][:num_show]:
        pix = models[name]["pixels"][i].flatten()
        recs = [models[name]["decode"](results[name, mt]["x_rec"][i:i + 1])[0].flatten() for mt in methods]
        noise = res["z_hat"][i].cpu().reshape(models[name]["shape"])[:3].flatten() / 2.5   # 3 channels
        rows.append((name, res["err"][i], [pix, noise] + recs))
cols = ["original", "inverted noise"] + [f"{mt} reconstruction" for mt in methods]
fig, axs = plt.subplots(len(rows), len(cols), figsize=(1.7 * len(cols), 1.7 * len(rows)),
                        squeeze=False, constrained_layout=True)
for k, (name, e, ims) in enumerate(rows):
    for j, im in enumerate(ims):
        pfode.data.show(im, axs[k, j], layout="chw")              # flattened (3, h, w)
        if k == 0:
            axs[k, j].set_title(cols[j], fontsize=9)
    axs[k, 0].set_ylabel(f"{name}\nE = {e:.2f}", fontsize=8)
_ = pfode.nb.publish(fig, "ch14_gallery_worst", "fig-ch14-gallery", method=worst_by.capitalize(),
                 num_show=num_show, methods=" and ".join(m.capitalize() for m in methods))

# %% [markdown]
# ```{glue:figure} fig-ch14-gallery
# :name: fig-ch14-gallery
#
# The worst reconstructions with {glue:text}`fig-ch14-gallery-method`. For each field, the
# {glue:text}`fig-ch14-gallery-num_show` held-out images with the largest reconstruction error:
# the original, the inverted noise $\hat z$ (shown clipped to $[-2.5, 2.5]$) and the
# reconstructions with {glue:text}`fig-ch14-gallery-methods` from the same field.
# ```

# %% [markdown]
# ## Does the trained model memorise its training set?
#
# A model that memorised its training patches would generate patches lying next to training
# patches. The exact mixture does so by construction: each of its samples is a training patch
# plus Gaussian noise of std $s$, at a distance of about $s\sqrt n$ from it. For `num_images`
# samples of each field (the same seeded noise for both, generated with each solver on the same
# grid) the distance to the nearest of the training patches is set against two references: the
# held-out patches of the other photographs, and as many new crops of the *training* photographs
# (new random positions, which may overlap training crops; a sample of the distribution the
# model was trained on). Medians with 95% bootstrap intervals.

# %%
if not pipeline_path:
    noise = torch.randn(num_images, x.shape[1], generator=torch.Generator().manual_seed(seed + 1),
                        dtype=torch.float64)
    fresh = torch.tensor(pfode.data.to_chw(pfode.data.patches(split.train_images, num_images, r,
                                                              crop=spec["crop"], seed=seed + 1)))

    def nn_dist(a):
        """Distance of each row of a to the nearest training patch."""
        return torch.cdist(a, train).min(dim=1).values.numpy()

    nn = {"held-out patches (other photographs)": nn_dist(x),
          "new crops of the training photographs": nn_dist(fresh)}
    for name in ("trained MMDiT", "exact mixture"):
        for method in methods:
            with torch.no_grad():
                samples = dfl.schedule_map(models[name]["field"], ts, method)(noise)
            nn[f"{name}: samples, {method}"] = nn_dist(samples)
    nn_med = {k: pfode.stats.bootstrap(np.median, v, n_resamples=n_boot, seed=seed) for k, v in nn.items()}
    ref = nn_med["held-out patches (other photographs)"].estimate
    radius = gm_std * np.sqrt(x.shape[1])                    # s sqrt(n): where a memorised sample lies
    print(f"s sqrt(n) = {radius:.3f}")
    display(pd.DataFrame({"median distance to nearest training patch [95% CI]": [f"{iv:.2f}" for iv in nn_med.values()],
                          "ratio of medians to held-out": [f"{iv.estimate / ref:.2f}" for iv in nn_med.values()],
                          "minimum": [f"{v.min():.2f}" for v in nn.values()],
                          "patches": [len(v) for v in nn.values()]}, index=pd.Index(list(nn), name="patches of")))
    if not pfode.nb.smoke():
        for method in methods:
            tr, ex = nn_med[f"trained MMDiT: samples, {method}"], nn_med[f"exact mixture: samples, {method}"]
            # threshold: the exact mixture memorises by construction: its samples lie within
            #   about s sqrt(n) of a training patch (a margin of 1.5)
            assert ex.high < 1.5 * radius, f"exact mixture samples ({method}) are not at its training patches: {ex}"
            # threshold: a generalising model's samples lie clearly farther than a memorised one:
            #   more than twice that radius, and beyond the exact mixture's interval
            assert tr.low > max(2 * radius, ex.high), f"trained MMDiT samples ({method}) lie at training patches: {tr}"

# %% [markdown]
# ## Summary table
#
# Medians over the patches; median κ with its 95% bootstrap interval, correlations of $E$ with
# κ and with λ with their 95% paired-bootstrap intervals; wall time of the field and solver.

# %%
table = pd.DataFrame([
    {"field": name, "solver": method, "median E": f"{np.median(res['err']):.2e}",
     "median κ [95% CI]": f"{med_kappa[name, method]:.2f}",
     "Pearson log κ, log E": f"{corr[name, method, 'kappa']['pearson']:+.2f}",
     "Spearman κ, E": f"{corr[name, method, 'kappa']['spearman']:+.2f}",
     "Pearson log λ, log E": f"{corr[name, method, 'lam']['pearson']:+.2f}",
     "Spearman λ, E": f"{corr[name, method, 'lam']['spearman']:+.2f}",
     "time": f"{res['seconds']:.0f} s"}
    for (name, method), res in results.items()]).set_index(["field", "solver"])
display(table)

# %%
print(f"total {time.time() - t_start:.0f} s")
