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
# # Figures 9.1–9.4: instability of real patches against the dimension
#
# This notebook draws the figures of [the dimension sweep](../book/ch09_dimension_sweep.md)
# from the tables that the sweep runner wrote under `results/`: one row per parameter point
# (`kind = "summary"`) and one per held-out patch (`kind = "sample"`). Each point was computed
# by the per-point notebook `notebooks/ch09_dimension_sweep.py`; its executed copy, with its printed
# numbers and cross-checks, is kept next to the table. Nothing is recomputed here except the
# patch thumbnails, which are drawn again from the same seeded crops.

# %% tags=["parameters"]
default_sweep = "dimension_default"   # results/<sweep>/table.csv
s_sweep = "dimension_s"
k_sweep = "dimension_K"
level = 0.95                          # confidence level of the recorded intervals
thumbs = 6                            # patches shown in each row of the thumbnail figure

# %%
import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

import pfode.data
import pfode.nb
from pfode import bounds

root = pfode.nb.repo_root()


def load(sweep):
    path = root / "results" / sweep / "table.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: run `make sweep SPEC=sweeps/{sweep}.yml`")
    t = pd.read_csv(path)
    assert not t["smoke"].dropna().astype(bool).any(), f"{sweep} holds smoke-mode rows"
    return t[t["kind"] == "summary"].copy(), t[t["kind"] == "sample"].copy()


dim, dim_samples = load(default_sweep)
dim = dim.sort_values("n").reset_index(drop=True)
ss, _ = load(s_sweep)
ks, _ = load(k_sweep)
cols = ["n", "p_unstable", "p_unstable_lo", "p_unstable_hi", "delta1", "delta2", "bound",
        "best_bound", "p_unstable_uniform", "best_bound_uniform", "rmse_median", "t_total_s"]
with pd.option_context("display.width", 160, "display.precision", 3):
    print(dim[cols].to_string(index=False))
print(f"sweep wall time (sum over points, as run): {dim['t_total_s'].sum():.0f} s")

# %% [markdown]
# ## Consistency checks on the recorded numbers
#
# Theorem 4.1 must hold on every sample (its bound never exceeds the measured probability),
# the recorded Clopper–Pearson intervals must be the ones recomputed from the counts, the
# generated control must pass its chi-square test, and every small-$n$ point must have passed
# its cross-checks against dopri5 and the trace integral.

# %%
for t in (dim, ss, ks):
    assert (t["bound"] <= t["p_beta"] + 1e-12).all(), "Theorem 4.1 bound above the measured probability"
    assert (t["best_bound"] <= t["p_beta"] + 1e-12).all()
    assert (t["chi2_p_generated"] > 1e-3).all(), "generated samples did not invert to N(0, I)"
    k = np.rint(t["p_unstable"] * t["N"]).astype(int)
    ci = bounds.bernoulli_ci(k.to_numpy(), t["N"].to_numpy(), level)
    np.testing.assert_allclose(ci.lower, t["p_unstable_lo"], atol=1e-12)
    np.testing.assert_allclose(ci.upper, t["p_unstable_hi"], atol=1e-12)
checked = dim.dropna(subset=["check_z_err"])
assert len(checked) >= 2 and (checked["check_z_err"] < 1e-4).all() and (checked["check_loglam_err"] < 1e-2).all()
print(f"cross-checked at n = {checked['n'].tolist()}: max |d log lambda_bar| (BDF vs dopri5) "
      f"{checked['check_loglam_err'].max():.1e}, max |d log det| (trace vs density) "
      f"{checked['check_trace_err'].max():.1e}")

# %% [markdown]
# ## Figure 9.1: the probability of instability and the Theorem 4.1 bound

# %% mystnb={"figure": {"caption": "Held-out real patches against a mixture of $K = 256$ Gaussian neighbours ($s = 0.05$) built on patches of other photographs, at patch sides 2 to 64 ($n = 12$ to $12288$). Left: the measured probability of instability $P_q(\\bar\\lambda_G(F(x)) > 1)$ with 95% Clopper–Pearson intervals (200 patches per point), the Theorem 4.1 bound $1 - \\delta_1 - \\delta_2$ with $r$ the 99% quantile of $\\chi^2_n$ and $\\beta = 1$, and the best bound over all $r$; grey: the same for points uniform on the cube (the $q$ of Assumptions 4.1–4.2). Middle: the two terms of the bound with their intervals. Right: the median of $\\|F(x)\\|^2/n$ for held-out patches, its exact lower bound $\\|x_\\perp\\|^2/(s^2 n)$ from the part of $x$ outside the span of the training patches, the value for generated samples (Gaussian noise: 1) and the radius $r/n$.", "name": "fig-ch9-curve"}}
n = dim["n"].to_numpy()
fig, ax = plt.subplots(1, 3, figsize=(14, 4))
a = ax[0]
a.errorbar(n, dim["p_unstable"], yerr=[dim["p_unstable"] - dim["p_unstable_lo"], dim["p_unstable_hi"] - dim["p_unstable"]],
           fmt="o-", capsize=3, label=r"measured $P(\bar\lambda > 1)$, real patches")
a.plot(n, dim["bound"], "s--", label=r"bound $1-\delta_1-\delta_2$ ($r$ = 99% $\chi^2_n$)")
a.plot(n, dim["best_bound"], "^:", label="best bound over $r$")
a.errorbar(n, dim["p_unstable_uniform"], yerr=[dim["p_unstable_uniform"] - dim["p_unstable_uniform_lo"],
           dim["p_unstable_uniform_hi"] - dim["p_unstable_uniform"]], fmt="o-", color="0.6", capsize=3,
           label=r"measured, uniform on the cube")
a.plot(n, dim["best_bound_uniform"], "^:", color="0.6", label="best bound, uniform")
a.set_xscale("log")
a.set_ylim(-0.03, 1.03)
a.set_xlabel("dimension n")
a.set_ylabel("probability")
a.legend(fontsize=7, loc="center left")
a = ax[1]
for key, lab, mk in (("delta1", r"$\delta_1 = P_q(p_G(x) > \gamma)$", "o-"),
                     ("delta2", r"$\delta_2 = P_q(\|F(x)\|^2 > r)$", "s-")):
    a.errorbar(n, dim[key], yerr=[dim[key] - dim[key + "_lo"], dim[key + "_hi"] - dim[key]], fmt=mk,
               capsize=3, label=lab)
a.set_xscale("log")
a.set_ylim(-0.03, 1.03)
a.set_xlabel("dimension n")
a.legend(fontsize=8)
a = ax[2]
a.plot(n, dim["z2_over_n_median"], "o-", label=r"$\|F(x)\|^2/n$, real patches (median)")
a.plot(n, dim["xperp2_over_s2n_median"], "v--", label=r"$\|x_\perp\|^2/(s^2 n)$ (median)")
a.plot(n, dim["z2_over_n_generated"], "s-", label="generated samples (mean)")
a.plot(n, dim["r_over_n"], "k:", label=r"$r/n$")
a.set_xscale("log")
a.set_yscale("log")
a.set_xlabel("dimension n")
a.legend(fontsize=8)
fig.tight_layout()
pfode.nb.savefig(fig, "ch09_curve")
plt.show()

# %% [markdown]
# ## Figure 9.2: which patches stay stable

# %%
top = dim.iloc[-1]
smp = dim_samples[dim_samples["n"] == top["n"]].sort_values("index")
s_top, K_top, N_top = float(top["s"]), int(top["K"]), int(top["N"])
side_top = int(top["side"])
split = pfode.data.patch_split(side_top, 1, N_top, crop=int(top.get("crop", 64)), seed=int(top["seed"]))  # same crops
assert len(smp) == N_top
images = np.array(split.test_images)[split.test_source]                # photograph of each patch
unst = smp["log_lambda"].to_numpy() > 0
for name in split.test_images:
    sel = images == name
    print(f"{name}: {sel.sum()} patches, P(lambda_bar > 1) = {unst[sel].mean():.2f}, "
          f"median distance to nearest training patch {np.median(smp['nn_rmse'][sel]) / s_top:.1f} s")
thr = smp["nn_rmse"].to_numpy() / s_top
print(f"n = {int(top['n'])}: stable patches lie at median {np.median(thr[~unst]):.1f} s from their nearest "
      f"training patch, unstable ones at {np.median(thr[unst]):.1f} s")

# %% mystnb={"figure": {"caption": "Which held-out patches are unstable, at the largest dimension of the sweep. Left: $\\log\\bar\\lambda_G(F(x))$ against the per-pixel distance of the patch to its nearest training patch, in units of $s$, by source photograph; the horizontal lines are $\\log\\bar\\lambda = 0$ (instability above) and $\\log s$ (the value of a single Gaussian component, $J_G = sI$). Right: the patches with the smallest and the largest $\\bar\\lambda_G$ (top and bottom rows).", "name": "fig-ch9-which"}}
fig = plt.figure(figsize=(14, 4.2))
gs = fig.add_gridspec(2, 1 + thumbs, width_ratios=[thumbs * 0.9] + [1] * thumbs)
a = fig.add_subplot(gs[:, 0])
for name, mk in zip(split.test_images, "os^v"):
    sel = images == name
    a.scatter(thr[sel], smp["log_lambda"][sel], s=12, marker=mk, alpha=0.7, label=name)
a.axhline(0, color="k", lw=1)
a.axhline(math.log(s_top), color="k", ls=":", lw=1)
a.set_xlabel("distance to the nearest training patch / s (per pixel)")
a.set_ylabel(r"$\log\bar\lambda_G(F(x))$")
a.set_title(f"n = {int(top['n'])}, K = {K_top}, s = {s_top}")
a.legend(fontsize=8)
order = np.argsort(smp["log_lambda"].to_numpy())
for row, idx in enumerate((order[:thumbs], order[::-1][:thumbs])):
    for j, i in enumerate(idx):
        b = fig.add_subplot(gs[row, 1 + j])
        b.imshow(pfode.data.to_image(split.test[i], side_top))
        b.set_xticks([])
        b.set_yticks([])
        b.set_title(f"{smp['log_lambda'].iloc[i]:.1f}", fontsize=8)
fig.tight_layout()
pfode.nb.savefig(fig, "ch09_which")
plt.show()

# %% [markdown]
# ## Figure 9.3: the width $s$ and the number of components $K$

# %%
with pd.option_context("display.width", 160, "display.precision", 3):
    print(ss.sort_values(["n", "s"])[["n", "s", "p_unstable", "p_unstable_lo", "p_unstable_hi", "delta2",
                                      "best_bound", "nn_rmse_median"]].to_string(index=False))
    print(ks.sort_values(["n", "K"])[["n", "K", "D", "p_unstable", "p_unstable_lo", "p_unstable_hi",
                                      "nn_rmse_median"]].to_string(index=False))

# %% mystnb={"figure": {"caption": "Left: the probability of instability against the width $s$ of the Gaussian neighbours, at three dimensions ($K = 256$, 100 held-out patches per point, 95% intervals). Right: against the number $K$ of training patches ($s = 0.05$). Small $s$ and few components are the sparse regime of Assumption 4.4; a wide $s$ makes $p_G$ cover the real patches and instability disappears.", "name": "fig-ch9-s-k"}}
fig, ax = plt.subplots(1, 2, figsize=(11, 4))
for nn, g in ss.sort_values("s").groupby("n"):
    ax[0].errorbar(g["s"], g["p_unstable"], yerr=[g["p_unstable"] - g["p_unstable_lo"], g["p_unstable_hi"] - g["p_unstable"]],
                   fmt="o-", capsize=3, label=f"n = {nn}")
ax[0].set_xscale("log")
ax[0].set_xlabel("width s of the Gaussian neighbours")
ax[0].set_ylabel(r"$P(\bar\lambda > 1)$")
ax[0].set_ylim(-0.03, 1.03)
ax[0].legend(fontsize=8)
for nn, g in ks.sort_values("K").groupby("n"):
    ax[1].errorbar(g["K"], g["p_unstable"], yerr=[g["p_unstable"] - g["p_unstable_lo"], g["p_unstable_hi"] - g["p_unstable"]],
                   fmt="o-", capsize=3, label=f"n = {nn}")
ax[1].set_xscale("log")
ax[1].set_xlabel("training patches K (components of $p_G$)")
ax[1].set_ylim(-0.03, 1.03)
ax[1].legend(fontsize=8)
fig.tight_layout()
pfode.nb.savefig(fig, "ch09_s_k")
plt.show()

# %% [markdown]
# ## Figure 9.4: Euler reconstruction error

# %% mystnb={"figure": {"caption": "Euler reconstruction $\\hat G(\\hat F(x))$, 50 steps each way, of the held-out patches of the dimension sweep. Left: per-pixel RMSE against $n$ (median over all patches, over the unstable ones and over the stable ones). Right: per-patch RMSE against $\\log\\bar\\lambda_G(F(x))$ at the largest dimension.", "name": "fig-ch9-rmse"}}
fig, ax = plt.subplots(1, 2, figsize=(11, 4))
ax[0].plot(n, dim["rmse_median"], "o-", label="all patches")
ax[0].plot(n, dim["rmse_unstable_median"], "s--", label=r"unstable ($\bar\lambda > 1$)")
ax[0].plot(n, dim["rmse_stable_median"], "^--", label=r"stable ($\bar\lambda \leq 1$)")
ax[0].set_xscale("log")
ax[0].set_xlabel("dimension n")
ax[0].set_ylabel("per-pixel RMSE (pixels in [-1, 1])")
ax[0].legend(fontsize=8)
ax[1].scatter(smp["log_lambda"], smp["rmse"], s=10, alpha=0.6)
ax[1].axvline(0, color="k", lw=1)
ax[1].set_xlabel(r"$\log\bar\lambda_G(F(x))$")
ax[1].set_ylabel("per-pixel RMSE")
ax[1].set_title(f"n = {int(top['n'])}")
fig.tight_layout()
pfode.nb.savefig(fig, "ch09_rmse")
plt.show()
