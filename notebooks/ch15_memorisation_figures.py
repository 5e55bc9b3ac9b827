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
# # The verdict: memorisation, instability and reconstruction along the axis
#
# The figures and the verdict table of {doc}`../book/ch15_memorisation`, drawn from the table
# that the sweep runner wrote (`results/memorisation/table.csv`, one row per field kind and
# `N`) and from the per-patch tables kept next to it (`per_patch.csv` in each point's folder,
# with the executed notebook of the point). Nothing is recomputed here.
#
# Every interval is a 95 % bootstrap interval over the 40 held-out patches (each a distinct
# crop, the independent unit; the same patches in every row, so rows are paired), except the
# memorised fraction, a binomial (Wilson) interval over the generated samples.

# %% tags=["parameters"]
sweep = "memorisation"      # results/<sweep>/
n_boot = 2000
seed = 0

# %% tags=["hide-input"]
import logging

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import papermill
import torch
from IPython.display import display
from scipy import stats

import pfode.nb
import pfode.stats
from pfode import diffusers_field as dfl

run = pfode.nb.setup(globals(), smoke=dict(n_boot=200))
root = pfode.nb.repo_root()
folder = root / "results" / sweep
path = folder / "table.csv"
if not path.is_file():
    raise FileNotFoundError(f"{path} is missing: run `make sweep SPEC=sweeps/{sweep}.yml`")
table = pd.read_csv(path)
REQUIRED = ["field", "N", "n", "memorised_fraction", "p_lambda_bar_gt_1", "kappa_median", "E_median",
            "spearman_E_kappa", "fx_norm2_over_n"]
missing = [c for c in REQUIRED if c not in table]
assert not missing, f"table.csv lacks {missing}"
defaults = dict(num_test=40, steps=100, std=0.05, shift=3.0)
for k, want in defaults.items():               # the committed sweep ran at the book's settings
    assert (table[k] == want).all(), f"{k} is not {want} in every row of {path}"
KINDS = ["mixture", "local-score", "trained-mmdit"]
LABEL = {"mixture": "exact mixture (memorises)", "local-score": "local score machine (P = 5)",
         "trained-mmdit": "trained MMDiT"}
table["kind_order"] = table["field"].map(KINDS.index)
table = table.sort_values(["kind_order", "N"]).reset_index(drop=True)
per_patch = {}
for pid, f, N in zip(table["point_id"], table["field"], table["N"]):
    per_patch[f, N] = pd.read_csv(folder / pid / "per_patch.csv")


def rows_of(kind):
    """``[(N, per-patch table)]`` of one kind, by increasing N."""
    return [(N, per_patch[kind, N]) for N in sorted(table[table["field"] == kind]["N"])]


point_nb = folder / table["point_id"][0] / "ch15_memorisation_point.ipynb"
logging.getLogger("papermill").setLevel(logging.ERROR)   # its parser warns on comment-only lines
num_samples = int(papermill.inspect_notebook(str(point_nb))["num_samples"]["default"])
print(f"{len(table)} points; sum of their wall times {table['seconds'].sum() / 60:.0f} min")

# %% [markdown]
# ## Where each model sits on the axis
#
# The memorised fraction (ratio test, $d_1/d_2 < 1/3$) and the median distance of a sample to
# its nearest training patch. The held-out patches' own nearest-neighbour distance is the
# reference: a model that generalises makes samples as far from the training set as new data.

# %%
def wilson(frac, num):
    k = int(round(frac * num))
    ci = stats.binomtest(k, num).proportion_ci(confidence_level=0.95, method="wilson")
    return ci.low, ci.high


fig, axs = plt.subplots(1, 2, figsize=(11, 4), constrained_layout=True)
for j, kind in enumerate(KINDS):
    t = table[table["field"] == kind]
    if t.empty:
        continue
    lo, hi = np.array([wilson(f, num_samples) for f in t["memorised_fraction"]]).T
    axs[0].errorbar(t["N"], t["memorised_fraction"], [t["memorised_fraction"] - lo, hi - t["memorised_fraction"]],
                    fmt="o-", color=f"C{j}", capsize=3, label=LABEL[kind])
    axs[1].plot(t["N"], t["nn_distance_median"], "o-", color=f"C{j}", label=LABEL[kind])
ref = table.groupby("N")["test_nn_distance_median"].first()     # the same training set at each N
axs[1].plot(ref.index, ref.to_numpy(), "k--", lw=1, label="held-out patches")
for ax in axs:
    ax.set_xscale("log", base=2)
    ax.set_xticks(sorted(table["N"].unique()), [f"{v:g}" for v in sorted(table["N"].unique())])
    ax.set_xlabel("N (training patches)")
axs[0].set(ylabel="memorised fraction (d1/d2 < 1/3)", ylim=(-0.03, 1.03))
axs[1].set(ylabel="median distance of a sample to the training set")
axs[0].legend(fontsize=8)
axs[1].legend(fontsize=8)
_ = pfode.nb.publish(fig, "ch15_axis", "fig-ch15-axis", num_samples=num_samples)

# %% [markdown]
# ```{glue:figure} fig-ch15-axis
# :name: fig-ch15-axis
#
# Left: fraction of {glue:text}`fig-ch15-axis-num_samples` generated samples (Euler, 100 steps,
# SD3 shift 3) that copy a training patch by the ratio test, with Wilson 95 % intervals. Right:
# median distance of a sample to its nearest training patch; dashed, the same for the held-out
# patches (new data), whose distance to the training set shrinks as N grows.
# ```

# %% [markdown]
# ## Instability and reconstruction against N

# %%
def boot_median(x):
    return pfode.stats.bootstrap(np.median, x, n_resamples=n_boot, seed=seed)


def boot_mean(x):
    return pfode.stats.bootstrap(np.mean, x, n_resamples=n_boot, seed=seed)


def unstable(p):
    """Patches whose log lambda_bar is two standard errors above 0 (the mixture's is exact)."""
    return np.log(p["lambda_bar"]) > 2 * p["log_lambda_bar_se"].fillna(0)


panels = [(lambda p: p["kappa_euler"], "median κ (solid) and κ* (dashed), Euler", boot_median, "log"),
          (lambda p: p["err_euler"], "median E(x), Euler", boot_median, "log"),
          (lambda p: p["err_heun"], "median E(x), Heun", boot_median, "log"),
          (lambda p: p["fx_norm2_over_n"], "median ‖F̂(x)‖² / n (Euler)", boot_median, "log"),
          (lambda p: p["sigma_max"], "median σ_max(J_Ĝ(ẑ)) (Lanczos)", boot_median, "log"),
          (lambda p: unstable(p).astype(float), "P(λ̄ > 1)", boot_mean, "linear")]
fig, axs = plt.subplots(2, 3, figsize=(14, 8.2), layout="constrained")
for ax, (get, title, fn, yscale) in zip(axs.flat, panels):
    for j, kind in enumerate(KINDS):
        t = table[table["field"] == kind]
        if t.empty:
            continue
        ivs = [fn(get(per_patch[kind, N]).to_numpy()) for N in t["N"]]
        est = np.array([iv.estimate for iv in ivs])
        ax.errorbar(t["N"], est, [est - [iv.low for iv in ivs], np.array([iv.high for iv in ivs]) - est],
                    fmt="o-", color=f"C{j}", capsize=3, label=LABEL[kind])
        if title.startswith("median κ"):           # the amplification of the actual inversion error
            star = [boot_median(per_patch[kind, N]["kappa_star_euler"].to_numpy()).estimate for N in t["N"]]
            ax.plot(t["N"], star, "s--", color=f"C{j}", ms=4, label=f"κ* ({kind})")
    ax.set(title=title, xlabel="N")
    if yscale == "log":
        pfode.nb.log_axes(ax)
    else:
        ax.set_xscale("log")
    ax.xaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:g}"))
for ax in (axs[0, 0], axs[1, 0], axs[1, 1]):
    ax.axhline(1, color="0.5", lw=0.8)
axs[1, 2].set_ylim(-0.03, 1.03)
handles, labels = axs[0, 0].get_legend_handles_labels()
fig.legend(handles, labels, loc="outside lower center", ncol=3, fontsize=9)
_ = pfode.nb.publish(fig, "ch15_instability_vs_N", "fig-ch15-instability")

# %% [markdown]
# ```{glue:figure} fig-ch15-instability
# :name: fig-ch15-instability
#
# Against the number of training patches, over the 40 held-out patches with 95 % bootstrap
# intervals: the median of the paper's perturbation estimate κ of the regeneration map at the
# inverted noise (solid) and of κ*, its amplification of the actual inversion error
# $\hat z - z^*$ (dashed); the median reconstruction error with Euler and with Heun (100 steps each way,
# SD3 shift 3); the median squared norm of the inverted noise per dimension (1 for Gaussian
# noise); the median top singular value of the discrete regeneration map's Jacobian; and the
# fraction of patches with $\bar\lambda_G(F(x)) > 1$ (exact for the mixture, two standard errors
# of the Hutchinson estimate for the others; the local score machine's zeros lie under the trained
# MMDiT's). Grey lines at 1.
# ```

# %% [markdown]
# ## Does the error follow the instability? Correlation and the identity's regression
#
# Per held-out patch, $\log E$ against $\log\kappa$ (Euler), each kind and $N$. The identity
# $E \approx \kappa^*\|\hat z - z^*\|$ predicts a slope of 1 on $\log\kappa$ once
# $\log\|\hat z - z^*\|$ is in the regression; the colour is the patch's distance to the
# training set (the stratification).

# %%
Ns = sorted(table["N"].unique())
fig, axs = plt.subplots(len(KINDS), len(Ns), figsize=(3.1 * len(Ns), 2.8 * len(KINDS)),
                        constrained_layout=True, squeeze=False)
dist_all = np.concatenate([p["test_nn_distance"].to_numpy() for p in per_patch.values()])
norm = plt.Normalize(dist_all.min(), dist_all.max())
for i, kind in enumerate(KINDS):
    for j, N in enumerate(Ns):
        ax = axs[i, j]
        if (kind, N) not in per_patch:
            ax.text(0.5, 0.5, "not run\n(cost)", ha="center", va="center", transform=ax.transAxes)
            ax.set_xticks([])
            ax.set_yticks([])
            continue
        p = per_patch[kind, N]
        sc = ax.scatter(p["kappa_euler"], p["err_euler"], c=p["test_nn_distance"], norm=norm, s=12,
                        cmap="viridis")
        row = table[(table["field"] == kind) & (table["N"] == N)].iloc[0]
        ax.set(xscale="log", yscale="log",
               title=f"{kind}, N = {N}\nρ = {row.spearman_E_kappa:+.2f} [{row.spearman_low:+.2f}, "
                     f"{row.spearman_high:+.2f}]")
        ax.title.set_fontsize(8)
        pfode.nb.log_axes(ax)
        if np.log10(p["kappa_euler"].max() / p["kappa_euler"].min()) < 1:   # ticks at every digit: thin them
            ax.tick_params(axis="x", labelrotation=45, labelsize=7)
        if i == len(KINDS) - 1:
            ax.set_xlabel("κ (Euler)")
        if j == 0:
            ax.set_ylabel("E(x)")
fig.colorbar(sc, ax=axs, shrink=0.6, label="distance of the patch to the training set")
_ = pfode.nb.publish(fig, "ch15_error_vs_kappa", "fig-ch15-error-kappa")

# %% [markdown]
# ```{glue:figure} fig-ch15-error-kappa
# :name: fig-ch15-error-kappa
#
# Reconstruction error against κ for every held-out patch (Euler, 100 steps, SD3 shift 3), one
# panel per kind and $N$, coloured by the patch's distance to its nearest training patch. In
# each title the Spearman correlation with its 95 % bootstrap interval.
# ```

# %% [markdown]
# The same correlation stratified by the distance of the held-out patch to the training set:
# Spearman's $\rho(E, \kappa)$ in the nearer and the farther half of the patches (split at the
# median distance of each row), with bootstrap intervals over the 20 patches of each half.

# %%
strata, strata_raw = [], {}
for kind in KINDS:
    for N, p in rows_of(kind):
        near = p["test_nn_distance"] <= p["test_nn_distance"].median()
        row = {"field": kind, "N": N}
        for name, mask in (("nearer half", near), ("farther half", ~near)):
            c = pfode.stats.correlation(np.log(p["kappa_euler"][mask]), np.log(p["err_euler"][mask]), "spearman",
                                        n_resamples=n_boot, seed=seed)
            row[name] = f"{c.estimate:+.2f} [{c.low:+.2f}, {c.high:+.2f}]"
            strata_raw[kind, N, name] = c
        strata.append(row)
strata = pd.DataFrame(strata)
display(strata.style.hide(axis="index"))

# %% [markdown]
# ## The intervention: the top singular direction against random directions
#
# The same finite-difference κ along the top right singular vector of $J_{\hat G}(\hat z)$
# (Lanczos) and along random directions: the ratio is how much more an error placed in the
# worst direction is amplified than a random one.

# %%
fig, ax = plt.subplots(figsize=(6.5, 4), constrained_layout=True)
for j, kind in enumerate(KINDS):
    t = table[table["field"] == kind]
    if t.empty:
        continue
    ivs = [boot_median((per_patch[kind, N]["kappa_top"] / per_patch[kind, N]["kappa_euler"]).to_numpy())
           for N in t["N"]]
    est = np.array([iv.estimate for iv in ivs])
    ax.errorbar(t["N"], est, [est - [iv.low for iv in ivs], np.array([iv.high for iv in ivs]) - est],
                fmt="o-", color=f"C{j}", capsize=3, label=LABEL[kind])
ax.set(xlabel="N", ylabel="median κ(top) / κ(random)")
pfode.nb.log_axes(ax)
ax.legend(fontsize=8)
big = [int(((p["kappa_top"] / p["kappa_euler"]) > 100).sum()) for _, p in rows_of("mixture")]
top_max = max(float((p["kappa_top"] / p["kappa_euler"]).max()) for _, p in rows_of("mixture"))
rest_max = max(float((p["kappa_top"] / p["kappa_euler"])[(p["kappa_top"] / p["kappa_euler"]) <= 100].max())
               for _, p in rows_of("mixture"))
assert rest_max < 60, rest_max                  # the caption's "the rest below 60"
_ = pfode.nb.publish(fig, "ch15_intervention", "fig-ch15-intervention", big_lo=min(big), big_hi=max(big),
                 top_max=f"{top_max:.1e}")

# %% [markdown]
# ```{glue:figure} fig-ch15-intervention
# :name: fig-ch15-intervention
#
# Median over the held-out patches of the amplification of a perturbation of the inverted
# noise along the top singular direction of the discrete regeneration map, divided by the
# amplification along random directions (Euler), with 95 % bootstrap intervals. For the mixture
# the ratio is bimodal: {glue:text}`fig-ch15-intervention-big_lo` to
# {glue:text}`fig-ch15-intervention-big_hi` of the 40 patches have ratios above 100 (up to
# {glue:text}`fig-ch15-intervention-top_max`), the rest below 60; hence its wide intervals.
# ```

# %% [markdown]
# ## The verdict table

# %%
def fmt(iv, spec=".2g"):
    return f"{iv.estimate:{spec}} [{iv.low:{spec}}, {iv.high:{spec}}]"


verdict = []
for _, row in table.iterrows():
    p = per_patch[row.field, row.N]
    lo, hi = wilson(row.memorised_fraction, num_samples)
    verdict.append({
        "field": row.field, "N": int(row.N),
        "memorised": f"{row.memorised_fraction:.2f} [{lo:.2f}, {hi:.2f}]",
        "P(λ̄ > 1)": fmt(boot_mean(unstable(p).to_numpy(float)), ".2f"),
        "median κ": fmt(boot_median(p["kappa_euler"].to_numpy())),
        "median κ*": fmt(boot_median(p["kappa_star_euler"].to_numpy())),
        "median E": fmt(boot_median(p["err_euler"].to_numpy())),
        "ρ(E, κ)": f"{row.spearman_E_kappa:+.2f} [{row.spearman_low:+.2f}, {row.spearman_high:+.2f}]",
        "slope on log κ": f"{row.slope_log_kappa:.2f} [{row.slope_log_kappa_low:.2f}, {row.slope_log_kappa_high:.2f}]",
        "‖F̂(x)‖²/n": fmt(boot_median(p["fx_norm2_over_n"].to_numpy())),
    })
verdict = pd.DataFrame(verdict)
display(verdict.style.hide(axis="index"))
markdown = ["| " + " | ".join(verdict.columns) + " |", "|" + "---|" * len(verdict.columns)]
markdown += ["| " + " | ".join(str(v) for v in r) + " |" for r in verdict.itertuples(index=False)]
table_md = pfode.nb.figure_dir() / "ch15_verdict_table.md"     # the table as the chapter page prints it
table_md.write_text("\n".join(markdown) + "\n")
print(f"the verdict table in Markdown: {table_md.name}, next to the figures")

# %% [markdown]
# ## Is the Liouville integral resolved for the fields without a density?
#
# The tolerance check (`sweeps/memorisation_liouville.yml`, notebook
# `ch15_liouville_check.py`): the first six held-out patches again with the same probes, at the
# sweep's tolerance and at one 100 times tighter.

# %%
liou = pd.read_csv(root / "results" / "memorisation_liouville" / "table.csv")
assert not liou["smoke"].astype(bool).any()
display(liou[["field", "N", "num_test", "median_abs_diff", "max_abs_diff", "same_side",
              "median_log_lambda_bar_tight"]].style.hide(axis="index").format(precision=4))
# threshold: the classification lambda_bar > 1 needs |log lambda_bar| resolved; every trained and
# local-score estimate is below log 0.5 = -0.69, twenty times the largest solver error allowed here
assert (liou["max_abs_diff"] < 0.05).all() and (liou["same_side"] == 1).all()

# %% [markdown]
# ## The claims of the chapter, on the committed table
#
# Each sentence of the chapter's findings is one assertion here, with the margin it needs.

# %%
def rows(kind, Nmin=0):
    return [(N, p) for N, p in rows_of(kind) if N >= Nmin]


mix, trained = rows("mixture"), rows("trained-mmdit")
ls_rows = rows("local-score")
frac = table.set_index(["field", "N"])["memorised_fraction"]
# 1. The axis is measured: the mixture copies, the trained MMDiT stops copying from N = 128 on.
# threshold: Wilson intervals over the samples; "copies" = lower end above 1/2, "does not" =
# upper end below 0.1
assert all(wilson(frac["mixture", N], num_samples)[0] > 0.5 for N, _ in mix)
assert all(wilson(frac["trained-mmdit", N], num_samples)[1] < 0.1 for N, _ in rows("trained-mmdit", 128))
# 2. Volume: about half the held-out patches are unstable under the mixture, none under a trained model.
p_mix = [boot_mean(unstable(p).to_numpy(float)) for _, p in mix]
p_tr = [boot_mean(unstable(p).to_numpy(float)) for _, p in trained]
assert all(iv.low > 0.2 for iv in p_mix), p_mix          # threshold: clearly above 0 (interval)
assert all(iv.estimate == 0 for iv in p_tr), p_tr        # not one patch, at any N
lam_tr = np.concatenate([np.log(p["lambda_bar"]) for _, p in trained])
assert lam_tr.max() < np.log(0.5), np.exp(lam_tr.max())  # threshold: every patch contracts volume 2-fold or more per dimension
# 3. delta_2: the mixture's inverted noise is far from Gaussian, a generalising model's is not.
fx_mix = [boot_median(p["fx_norm2_over_n"].to_numpy()) for _, p in mix]
fx_gen = [boot_median(p["fx_norm2_over_n"].to_numpy()) for _, p in rows("trained-mmdit", 128)]
assert all(iv.low > 3 for iv in fx_mix), fx_mix           # threshold: chi^2_768 / 768 exceeds 1.2 with probability 1e-9
assert all(iv.high < 1.2 for iv in fx_gen), fx_gen
# 4. The inversion error is contracted, not amplified, by every field's regeneration map.
ks = [boot_median(p["kappa_star_euler"].to_numpy()) for _, p in mix + trained + ls_rows]
assert all(iv.high < 1 for iv in ks), ks                  # threshold: kappa* = 1 separates contraction from amplification
# 5. ... although directions of strong stretch exist: the top singular direction against random ones.
top_tr = [boot_median((p["kappa_top"] / p["kappa_euler"]).to_numpy()) for _, p in trained]
# threshold: "an order of magnitude": the interval's lower end above 10
assert all(iv.low > 10 for iv in top_tr), top_tr
smax_tr = [boot_median(p["sigma_max"].to_numpy()) for _, p in trained]
# threshold: sigma_max = 1 separates stretching from contraction
assert all(iv.low > 1 for iv in smax_tr), smax_tr
# 6. The reconstruction error: Heun reconstructs held-out patches under every trained model and
# under none of the mixtures.
e_heun_tr = [boot_median(p["err_heun"].to_numpy()) for _, p in trained]
e_heun_mix = [boot_median(p["err_heun"].to_numpy()) for _, p in mix]
assert all(iv.high < 0.02 for iv in e_heun_tr), e_heun_tr   # threshold: 0.02 is 0.1 % of a patch's norm (about 20)
assert all(iv.low > 1 for iv in e_heun_mix), e_heun_mix
# 7. Correlation of E with kappa (Euler): present for the trained MMDiT from N = 128 on.
rho_tr = table[(table["field"] == "trained-mmdit") & (table["N"] >= 128)]
# threshold: the bootstrap interval excludes 0 (present) or contains it (not detectable)
assert (rho_tr["spearman_low"] > 0).all(), rho_tr[["N", "spearman_E_kappa", "spearman_low"]]
rho_mix = table[table["field"] == "mixture"]
assert ((rho_mix["spearman_low"] < 0) & (rho_mix["spearman_high"] > 0)).all()   # no correlation for the mixture
# 7b. Does the correlation grow with N? The same patches under both models: a paired bootstrap of
# the difference of the two Spearman coefficients.
def rho_gap(k16, e16, k8, e8):
    return stats.spearmanr(k8, e8).statistic - stats.spearmanr(k16, e16).statistic


p16, p8 = per_patch["trained-mmdit", 16], per_patch["trained-mmdit", 8192]
gap = pfode.stats.bootstrap(rho_gap, p16["kappa_euler"], p16["err_euler"], p8["kappa_euler"], p8["err_euler"],
                            n_resamples=n_boot, seed=seed)
print(f"Spearman(N = 8192) - Spearman(N = 16), paired over the patches: {gap:+.2f}")
assert gap.low > 0, gap                                   # threshold: the paired interval excludes 0
# 7c. Stratified by distance: the mixture shows no correlation in either half; the local score
# machine only in the nearer half (from N = 128 on); the trained MMDiT in both halves alike.
assert all(c.low < 0 < c.high for (k, N, h), c in strata_raw.items() if k == "mixture")
assert all(c.low > 0 for (k, N, h), c in strata_raw.items() if k == "local-score" and N >= 128 and h == "nearer half")
assert all(c.low < 0 < c.high for (k, N, h), c in strata_raw.items() if k == "local-score" and h == "farther half")
strat_tr = [c.estimate for (k, N, h), c in strata_raw.items() if k == "trained-mmdit" and N >= 128]
strat_ls = [c.estimate for (k, N, h), c in strata_raw.items() if k == "local-score" and N >= 128 and h == "nearer half"]
# 8. The identity's slope on log kappa is far below 1: kappa is measured along random directions.
slopes_all = table["slope_log_kappa_high"]
# threshold: the identity's slope 1 lies above every interval
assert (slopes_all < 1).all(), table[["field", "N", "slope_log_kappa", "slope_log_kappa_high"]]
# 9. The mixture's kappa* is the Euler product of a(t) = (t - (1-t) s^2) / Sigma(t) on the grid: where
# one component holds the whole posterior, Cov_r vanishes in eq-gmm-jacobian and the regeneration
# map's derivative is that scalar.
ts = dfl.shift_sigma(torch.linspace(1.0, 0.0, 101, dtype=torch.float64), 3.0).numpy()
ts[0], ts[-1] = 1.0, 0.0
s_ = 0.05
sig = (1 - ts[:-1]) ** 2 * s_ ** 2 + ts[:-1] ** 2
euler_factor = float(np.prod(1 + np.diff(ts) * (ts[:-1] - (1 - ts[:-1]) * s_ ** 2) / sig))
med_star = [float(np.median(p["kappa_star_euler"])) for _, p in mix]
print(f"Euler factor of the one-component flow: {euler_factor:.4f}; the mixture's median kappa*: "
      f"{', '.join(f'{m:.4f}' for m in med_star)}")
# threshold: 2 % covers the patches whose error has a part where the posterior is still mixed
assert all(abs(m - euler_factor) < 0.02 * euler_factor for m in med_star)
print("claims 1-9 hold on the committed table")

# The numbers the chapter's summary quotes in its prose, held to the run.
tr = table[table["field"] == "trained-mmdit"].set_index("N")
ratio_star = [np.median(p["kappa_star_euler"] / p["sigma_max"]) for _, p in trained]
prose = {
    "copies at N = 16 (%)": (f"{100 * frac['trained-mmdit', 16]:.0f}", "19"),
    "trained lambda_bar": (f"{np.median(np.exp(lam_tr)):.2f}", "0.06"),
    "sigma_max, smallest and largest median": ((f"{min(iv.estimate for iv in smax_tr):.0f}",
                                               f"{max(iv.estimate for iv in smax_tr):.0f}"), ("6", "13")),
    "top / random": (f"{np.median([iv.estimate for iv in top_tr]):.0f}", "25"),
    "Spearman at N = 16 and 8192": ((f"{tr.loc[16, 'spearman_E_kappa']:.2f}", f"{tr.loc[8192, 'spearman_E_kappa']:.2f}"),
                                    ("0.37", "0.72")),
    "Heun E, largest median (trained)": (f"{max(iv.estimate for iv in e_heun_tr):.3f}", "0.007"),
    "kappa* / sigma_max (%)": (f"{100 * np.median(ratio_star):.0f}", "2"),
}
def share_range(rows_):
    """Median share of the amplified inversion error in the split E <= kappa* dz + e_gen, in %."""
    sh = []
    for _, p in rows_:
        a = p["kappa_star_euler"] * p["dz_euler"]
        sh.append(float(np.median(a / (a + p["e_gen_euler"]))))
    return f"{100 * min(sh):.0f}", f"{100 * max(sh):.0f}"


mx = table[table["field"] == "mixture"]
lsr = table[table["field"] == "local-score"]
gen = tr[tr.index >= 128]
far = [p for _, p in trained + ls_rows]
log_far = np.concatenate([np.log(p["lambda_bar"]) for p in far])
e_mix = [float(np.median(p["err_euler"])) for _, p in mix]
prose |= {
    "mixture copies (%)": ((f"{100 * mx['memorised_fraction'].min():.0f}", f"{100 * mx['memorised_fraction'].max():.0f}"),
                           ("62", "100")),
    "mixture sample distance": (f"{mx['nn_distance_median'].median():.2f}", "1.08"),
    "held-out distance": ((f"{table['test_nn_distance_median'].min():.0f}", f"{table['test_nn_distance_median'].max():.0f}"),
                          ("5", "7")),
    "mixture unstable (%)": ((f"{100 * min(iv.estimate for iv in p_mix):.0f}", f"{100 * max(iv.estimate for iv in p_mix):.0f}"),
                             ("38", "55")),
    "Liouville check": (f"{liou['max_abs_diff'].max():.2f}", "0.04"),
    "distance of log lambda_bar from 0": (f"{np.abs(log_far).min():.1f}", "2.1"),
    "mixture delta2": ((f"{mx['fx_norm2_over_n'].min():.1f}", f"{mx['fx_norm2_over_n'].max():.0f}"), ("4.8", "13")),
    "local-score delta2": ((f"{lsr['fx_norm2_over_n'].min():.1f}", f"{lsr['fx_norm2_over_n'].max():.1f}"), ("3.4", "9.1")),
    "trained delta2": ((f"{tr.loc[16, 'fx_norm2_over_n']:.1f}", f"{gen['fx_norm2_over_n'].min():.2f}",
                        f"{gen['fx_norm2_over_n'].max():.2f}"), ("2.7", "0.47", "0.89")),
    "mixture kappa*": (f"{np.median(med_star):.3f}", "0.039"),
    "contraction": (f"{1 / euler_factor:.0f}", "26"),
    "mixture E": ((f"{min(e_mix):.1f}", f"{max(e_mix):.0f}"), ("5.8", "14")),
    "local-score kappa*": (f"{np.median([np.median(p['kappa_star_euler']) for _, p in ls_rows]):.2f}", "0.07"),
    "trained kappa*": (f"{np.median([np.median(p['kappa_star_euler']) for _, p in trained]):.2f}", "0.13"),
    "trained E": (f"{np.median([np.median(p['err_euler']) for _, p in trained]):.1f}", "0.5"),
    "local-score sigma_max": ((f"{lsr['sigma_max_median'].min():.0f}", f"{lsr['sigma_max_median'].max():.0f}"), ("44", "106")),
    "top / random, local score": (f"{lsr['top_over_random_median'].median():.0f}", "12"),
    "Spearman intervals": ((f"{tr.loc[16, 'spearman_low']:.2f}", f"{tr.loc[16, 'spearman_high']:.2f}",
                            f"{tr.loc[8192, 'spearman_low']:.2f}", f"{tr.loc[8192, 'spearman_high']:.2f}"),
                           ("0.03", "0.65", "0.51", "0.86")),
    "Spearman gap": (f"{gap:+.2f}", "+0.35 [+0.07, +0.68]"),
    "share of the split, mixture (%)": (share_range(mix), ("6", "16")),
    "share of the split, local score (%)": (share_range(ls_rows), ("38", "45")),
    "share of the split, trained (%)": (share_range(trained), ("48", "52")),
    "Heun E, local score": ((f"{min(np.median(p['err_heun']) for _, p in ls_rows):.2f}",
                             f"{max(np.median(p['err_heun']) for _, p in ls_rows):.1f}"), ("0.84", "1.4")),
    "Heun E, mixture": ((f"{min(iv.estimate for iv in e_heun_mix):.1f}", f"{max(iv.estimate for iv in e_heun_mix):.1f}"),
                        ("5.2", "11.5")),
    "kappa, local score": ((f"{lsr['kappa_median'].min():.1f}", f"{lsr['kappa_median'].max():.1f}"), ("1.6", "4.4")),
    "stratified, trained": ((f"{min(strat_tr):.2f}", f"{max(strat_tr):.2f}"), ("0.49", "0.73")),
    "stratified, local score nearer": ((f"{min(strat_ls):.2f}", f"{max(strat_ls):.2f}"), ("0.77", "0.86")),
    "trained slopes": ((f"{tr['slope_log_kappa'].min():.2f}", f"{tr['slope_log_kappa'].max():.2f}"), ("0.18", "0.28")),
}
if not run.smoke and not run.injected:         # the page quotes the run at the default parameters
    print(f"{pfode.nb.check_quoted(prose)} numbers of the chapter's prose checked against the run")

# %% [markdown]
# The table on the chapter page is this table: every cell of the page's verdict table must
# match the computed one to within one unit of its last printed digit
# (`pfode.nb.check_quoted`), so the page cannot drift from the committed results.

# %%
page_text = (root / "book" / "ch15_memorisation.md").read_text()
section = page_text.split("## The verdict", 1)[1]
lines = [ln for ln in section.splitlines() if ln.startswith("|")]
header = [c.strip() for c in lines[0].strip("|").split("|")]
quoted = pd.DataFrame([[c.strip() for c in ln.strip("|").split("|")] for ln in lines[2:]], columns=header)
assert list(quoted.columns) == list(verdict.columns), (list(quoted.columns), list(verdict.columns))
assert len(quoted) == len(verdict), f"the page's table has {len(quoted)} rows, the run {len(verdict)}"
checks = {}
for i in range(len(verdict)):
    for col in verdict.columns:
        if col == "field":
            assert quoted[col][i].strip("`") == verdict[col][i], (quoted[col][i], verdict[col][i])
            continue
        checks[f"row {i + 1}, {col}"] = (str(verdict[col][i]), quoted[col][i])
if not run.smoke and not run.injected:
    print(f"{pfode.nb.check_quoted(checks)} cells of the page's verdict table checked against the run")
