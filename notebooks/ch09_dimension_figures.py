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
# # The figures of the dimension sweep: instability of real patches against the dimension
#
# This notebook draws the figures of {doc}`../book/ch09_dimension_sweep` from the tables that
# the sweep runner wrote under `results/`: one row per parameter point (`kind = "summary"`)
# and one per held-out patch (`kind = "sample"`). Each point was computed by
# {doc}`the per-point notebook <ch09_dimension_sweep>`; its executed copy, with its printed
# numbers and cross-checks, is kept next to the table. Nothing is recomputed here except the
# patch thumbnails, which are drawn again from the same seeded crops.

# %% tags=["parameters"]
default_sweep = "dimension_default"   # results/<sweep>/table.csv
s_sweep = "dimension_s"
k_sweep = "dimension_K"
roundtrip_sweep = "dimension_roundtrip"   # the default sweep again, with the converged round trip
level = 0.95                          # confidence level of the recorded intervals
thumbs = 6                            # patches shown in each row of the thumbnail figure
margin_K = 0.2                        # equivalence margin for P(instability) across K
converged_tol = 1e-3                  # per-pixel round-trip error that counts as reconstructed

# %% tags=["hide-input"]
import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import display
from scipy import stats

import pfode.data
import pfode.nb
import pfode.stats
from pfode import bounds
run = pfode.nb.setup(globals())   # checks parameters, sets threads, seeds run.gen/run.rng

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
ss, ss_samples = load(s_sweep)
ks, ks_samples = load(k_sweep)
rt, rt_samples = load(roundtrip_sweep)
rt = rt.sort_values("n").reset_index(drop=True)
photos = list(dict.fromkeys(dim_samples["image"]))     # the held-out photographs, in order


def one(t, col):
    """The single value of a column that is constant over a table (a caption quotes it)."""
    v = t[col].unique()
    assert len(v) == 1, f"{col} takes the values {v}"
    return v[0].item() if hasattr(v[0], "item") else v[0]


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
# generated control must pass its chi-square test (and, as the chapter states, none of the
# generated samples is unstable), and every small-$n$ point must have passed
# its cross-checks against dopri5 and the trace integral.

# %%
for t in (dim, ss, ks):
    # threshold: data: the committed tables (no CPU dependence); Theorem 4.1 bounds must lie below
    #   the measured probabilities; 1e-12 for round-off
    assert (t["bound"] <= t["p_beta"] + 1e-12).all(), "Theorem 4.1 bound above the measured probability"
    assert (t["best_bound"] <= t["p_beta"] + 1e-12).all()
    assert (t["chi2_p_generated"] > 1e-3).all(), "generated samples did not invert to N(0, I)"
    assert (t["p_unstable_generated"] == 0).all(), "a generated sample is unstable"
    k = np.rint(t["p_unstable"] * t["N"]).astype(int)
    ci = bounds.bernoulli_ci(k.to_numpy(), t["N"].to_numpy(), level)
    np.testing.assert_allclose(ci.lower, t["p_unstable_lo"], atol=1e-12)
    np.testing.assert_allclose(ci.upper, t["p_unstable_hi"], atol=1e-12)
for _, row in dim.iterrows():
    sm = dim_samples[dim_samples["n"] == row["n"]]
    # Proposition (span): ||F(x)||^2 >= ||x_perp||^2 / s^2, hence delta2 >= P(||x_perp||^2 / s^2 > r)
    # threshold: the span proposition is an inequality that must hold; 1e-9 relative covers the BDF
    #   tolerance (1e-6) on ||z||^2 only through its relative error squared
    assert (sm["z2_over_n"] >= sm["xperp2_over_s2n"] * (1 - 1e-9)).all()
    assert row["delta2"] >= np.mean(sm["xperp2_over_s2n"] > row["r_over_n"]) - 1e-12
checked = dim.dropna(subset=["check_z_err"])
# threshold: data: BDF at rtol 1e-6 against dopri5 at the same tolerance: z to about 1e-5 relative,
#   log lambda_bar to its derived bound (chapter 9); committed tables
assert len(checked) >= 2 and (checked["check_z_err"] < 1e-4).all() and (checked["check_loglam_err"] < 1e-2).all()
print(f"cross-checked at n = {checked['n'].tolist()}: max |d log lambda_bar| (BDF vs dopri5) "
      f"{checked['check_loglam_err'].max():.1e}, max |d log det| (trace vs density) "
      f"{checked['check_trace_err'].max():.1e}")
# the round-trip sweep ran the default sweep's points again: the same patches must come out
# with the same instabilities
for p_ in ("K", "s", "N", "seed"):
    assert one(rt, p_) == one(dim, p_), p_
assert set(rt["n"]) <= set(dim["n"])
dl_rt, flips = 0.0, 0
for nn in rt["n"]:
    a = dim_samples[dim_samples["n"] == nn].sort_values("index")
    b = rt_samples[rt_samples["n"] == nn].sort_values("index")
    # threshold: same crops: the same seeded positions and the same float64 code give the same
    #   patch std bit for bit; 1e-12 relative admits only a change of summation order (pairwise
    #   sums: about log2(n) eps < 1e-14), while another crop changes the std by far more
    np.testing.assert_allclose(b["patch_std"], a["patch_std"], rtol=1e-12)
    dl = np.abs(b["log_lambda"].to_numpy() - a["log_lambda"].to_numpy())
    # threshold: error model: each BDF inversion (rtol 1e-6) gives z to 1e-4 relative (asserted
    #   against dopri5 in the per-point notebook), so two runs differ by at most 2e-4 ||z||, and
    #   log lambda_bar = (-||z||^2 / 2 - log p_G(x)) / n by at most 2e-4 ||z||^2 / n (+ 4e-8 ||z||^2 / n)
    allowed = 2.0001e-4 * np.maximum(a["z2_over_n"].to_numpy(), b["z2_over_n"].to_numpy()) + 1e-9
    assert (dl <= allowed).all(), (nn, dl.max())
    dl_rt = max(dl_rt, float(dl.max()))
    flips += int(((a["log_lambda"] > 0).to_numpy() != (b["log_lambda"] > 0).to_numpy()).sum())
print(f"round-trip sweep at n = {rt['n'].tolist()}: log lambda_bar as in the default sweep to "
      f"{dl_rt:.1e}; {flips} patch(es) change side of lambda_bar = 1")

# %% [markdown]
# ## The probability of instability and the Theorem 4.1 bound

# %% [markdown]
# The figure below quotes its parameters from the tables it draws.

# %%
r_level = stats.chi2.cdf(dim["r_over_n"] * dim["n"], dim["n"])       # the quantile that r is
# threshold: every point took r = chi2.ppf(1 - alpha, n) with one alpha (the caption quotes it);
#   the ppf -> r/n -> cdf round trip in float64 is exact to about 1e-13 (incomplete gamma to
#   ~1e-14 relative), so 1e-9 is round-off only, far below any other choice of alpha (>= 1e-3 apart)
assert np.ptp(r_level) < 1e-9
sparse = ss[ss["s"] == ss["s"].min()].sort_values("n")
curve_values = dict(K=int(one(dim, "K")), s=f"{one(dim, 's'):g}", N=int(one(dim, "N")),
                    n_min=int(dim["n"].min()), n_max=f"{dim['n'].max():,}",
                    side_min=int(dim["side"].min()), side_max=int(dim["side"].max()),
                    r_level=f"{r_level[0]:.0%}", level=f"{level:.0%}",
                    s_sparse=f"{one(sparse, 's'):g}", N_sparse=int(one(sparse, "N")))
print(curve_values)

# %%
n = dim["n"].to_numpy()
fig, ax = plt.subplots(1, 3, figsize=(14, 5))
a = ax[0]
a.errorbar(n, dim["p_unstable"], yerr=[dim["p_unstable"] - dim["p_unstable_lo"], dim["p_unstable_hi"] - dim["p_unstable"]],
           fmt="o-", capsize=3, label=r"measured $P(\bar\lambda > 1)$, real patches")
a.plot(n, dim["bound"], "s--", label=r"bound $1-\delta_1-\delta_2$ ($r$ = 99% $\chi^2_n$)")
a.plot(n, dim["best_bound"], "^:", label="best bound over $r$")
for name, mk in (("astronaut", "x"), ("flower", "+")):
    sel = [dim_samples[(dim_samples["n"] == nn) & (dim_samples["image"] == name)]["log_lambda"] for nn in n]
    est = bounds.bernoulli_ci(np.array([int((v > 0).sum()) for v in sel]), np.array([len(v) for v in sel]), level)
    a.errorbar(n * (1.06 if name == "flower" else 0.94), est.estimate, yerr=[est.estimate - est.lower, est.upper - est.estimate],
               fmt=mk + ":", capsize=2, lw=0.8, label=f"measured, {name} patches only")
a.errorbar(n, dim["p_unstable_uniform"], yerr=[dim["p_unstable_uniform"] - dim["p_unstable_uniform_lo"],
           dim["p_unstable_uniform_hi"] - dim["p_unstable_uniform"]], fmt="o-", color="0.6", capsize=3,
           label=r"measured, uniform on the cube")
a.plot(n, dim["best_bound_uniform"], "^:", color="0.6", label="best bound, uniform")
a.errorbar(sparse["n"], sparse["p_unstable"], yerr=[sparse["p_unstable"] - sparse["p_unstable_lo"],
           sparse["p_unstable_hi"] - sparse["p_unstable"]], fmt="D-", color="k", ms=4, capsize=3,
           label=f"measured, real patches, s = {sparse['s'].iloc[0]}")
a.set_xscale("log")
a.set_ylim(-0.03, 1.03)
a.set_xlabel("dimension n")
a.set_ylabel("probability")
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
outside = dim["D"] < dim["n"]                      # x_perp = 0 exactly where the span is everything
a.plot(n[outside], dim["xperp2_over_s2n_median"][outside], "v--",
       label=r"$\|x_\perp\|^2/(s^2 n)$ (median; 0 where $K \geq n$)")
a.plot(n, dim["z2_over_n_generated"], "s-", label="generated samples (mean)")
a.plot(n, dim["r_over_n"], "k:", label=r"$r/n$")
a.set_xscale("log")
a.set_yscale("log")
a.set_xlabel("dimension n")
a.legend(fontsize=8)
fig.legend(*ax[0].get_legend_handles_labels(), loc="lower center", ncol=4, fontsize=8, frameon=False)
fig.tight_layout(rect=(0, 0.12, 1, 1))
_ = pfode.nb.publish(fig, "ch09_curve", "fig-ch9-curve", **curve_values)

# %% [markdown]
# ```{glue:figure} fig-ch9-curve
# :name: fig-ch9-curve
#
# Held-out real patches against a mixture of $K =$ {glue:text}`fig-ch9-curve-K` Gaussian neighbours ($s =$ {glue:text}`fig-ch9-curve-s`) built on patches of other photographs, at patch sides {glue:text}`fig-ch9-curve-side_min` to {glue:text}`fig-ch9-curve-side_max` ($n =$ {glue:text}`fig-ch9-curve-n_min` to {glue:text}`fig-ch9-curve-n_max`). Left: the measured probability of instability $P_q(\bar\lambda_G(F(x)) > 1)$ with {glue:text}`fig-ch9-curve-level` Clopper–Pearson intervals ({glue:text}`fig-ch9-curve-N` patches per point), the Theorem 4.1 bound $1 - \delta_1 - \delta_2$ with $r$ the {glue:text}`fig-ch9-curve-r_level` quantile of $\chi^2_n$ and $\beta = 1$, and the best bound over all $r$; dotted: the measured probability for the patches of each held-out photograph; grey: the same for points uniform on the cube (the $q$ of Assumptions 4.1–4.2); black: real patches against the sparsest mixture of the width sweep ($s =$ {glue:text}`fig-ch9-curve-s_sparse`, {glue:text}`fig-ch9-curve-N_sparse` patches per point). Middle: the two terms of the bound with their intervals. Right: the median of $\|F(x)\|^2/n$ for held-out patches, its exact lower bound $\|x_\perp\|^2/(s^2 n)$ from the part of $x$ outside the span of the training patches, the value for generated samples (Gaussian noise: 1) and the radius $r/n$.
# ```

# %% [markdown]
# ## Which patches stay stable
#
# The patch thumbnails are drawn again from the same seeded crops (`pfode.data.patch_split`
# with the sweep's parameters); the check below confirms that they are the same patches.

# %%
top = dim.iloc[-1]
smp = dim_samples[dim_samples["n"] == top["n"]].sort_values("index")
s_top, K_top, N_top = float(top["s"]), int(top["K"]), int(top["N"])
side_top = int(top["side"])
split = pfode.data.patch_split(side_top, 1, N_top, seed=int(top["seed"]))
assert len(smp) == N_top
images = smp["image"].to_numpy()
assert (images == np.array(split.test_images)[split.test_source]).all()
np.testing.assert_allclose(split.test.std(1), smp["patch_std"], rtol=1e-9)   # same patches
unst = smp["log_lambda"].to_numpy() > 0
thr = smp["nn_rmse"].to_numpy() / s_top
for nn in n:
    sm = dim_samples[dim_samples["n"] == nn]
    u = sm["log_lambda"] > 0
    print(f"n = {nn:5d}: P(lambda_bar > 1) astronaut {u[sm['image'] == 'astronaut'].mean():.2f}, "
          f"flower {u[sm['image'] == 'flower'].mean():.2f}; pixel std of stable / unstable patches "
          f"{sm['patch_std'][~u].median():.2f} / {sm['patch_std'][u].median():.2f}")
print(f"n = {int(top['n'])}: stable patches lie at median {np.median(thr[~unst]):.1f} s from their nearest "
      f"training patch, unstable ones at {np.median(thr[unst]):.1f} s; "
      f"{np.mean(smp['log_lambda'][~unst] < math.log(s_top) + 1):.0%} of the stable ones have "
      f"log lambda_bar within 1 of log s")

# %%
fig = plt.figure(figsize=(14, 4.2))
gs = fig.add_gridspec(2, 1 + thumbs, width_ratios=[thumbs * 0.9] + [1] * thumbs)
a = fig.add_subplot(gs[:, 0])
for name, mk in zip(split.test_images, "os^v"):
    sel = images == name
    a.scatter(thr[sel], smp["log_lambda"][sel], s=12, marker=mk, alpha=0.7, label=f"{name} patches")
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
_ = pfode.nb.publish(fig, "ch09_which", "fig-ch9-which", n=f"{int(top['n']):,}", K=K_top, s=f"{s_top:g}",
                 thumbs=thumbs)

# %% [markdown]
# ```{glue:figure} fig-ch9-which
# :name: fig-ch9-which
#
# Which held-out patches are unstable, at the largest dimension of the sweep, $n =$ {glue:text}`fig-ch9-which-n` ($K =$ {glue:text}`fig-ch9-which-K`, $s =$ {glue:text}`fig-ch9-which-s`). Left: $\log\bar\lambda_G(F(x))$ against the per-pixel distance of the patch to its nearest training patch, in units of $s$, by source photograph; the horizontal lines are $\log\bar\lambda = 0$ (instability above) and $\log s$ (the value of a single Gaussian component, $J_G = sI$). Right: the {glue:text}`fig-ch9-which-thumbs` patches with the smallest and the {glue:text}`fig-ch9-which-thumbs` with the largest $\bar\lambda_G$ (top and bottom rows), titled with $\log\bar\lambda_G$.
# ```

# %% [markdown]
# ## The width $s$ and the number of components $K$

# %%
with pd.option_context("display.width", 160, "display.precision", 3):
    print(ss.sort_values(["n", "s"])[["n", "s", "p_unstable", "p_unstable_lo", "p_unstable_hi", "delta2",
                                      "best_bound", "nn_rmse_median"]].to_string(index=False))
    print(ks.sort_values(["n", "K"])[["n", "K", "D", "p_unstable", "p_unstable_lo", "p_unstable_hi",
                                      "nn_rmse_median"]].to_string(index=False))

# %% [markdown]
# The statements of the chapter, asserted on the tables: the probability of instability rises
# with $n$ (intervals at the two ends disjoint) but stays below 0.99 at $s = 0.05$;
# $\delta_1$ falls; the bound with the chi-square radius is zero at every $n$; for uniform
# points the best bound rises with $n$; wide neighbours ($s \ge 0.2$) give no instability at
# any $n$; the smallest $s$ gives the highest probability at every $n$.
#
# Every point of a sweep uses the same crops (their positions depend on neither $n$, $s$ nor
# $K$), so two points can also be compared patch by patch: the interval of a difference of
# probabilities is then a paired bootstrap over the patches (`pfode.stats.paired_difference`,
# percentile intervals, since the differences take only the values $-1, 0, 1$).

# %%
def indicator(t, **where):
    """1 for an unstable held-out patch of one sweep point, 0 for a stable one, in patch order;
    and the photograph of each patch."""
    sel = np.ones(len(t), bool)
    for key, v in where.items():
        sel &= (t[key] == v).to_numpy()
    g = t[sel].sort_values("index")
    assert len(g), where
    return (g["log_lambda"] > 0).to_numpy(float), g["image"].to_numpy()


def paired(t, a, b, photo=None):
    """P(unstable at point a) - P(unstable at point b) over the same patches (those of one
    photograph when photo is given), with a paired bootstrap interval."""
    ua, ia = indicator(t, **a)
    ub, ib = indicator(t, **b)
    assert (ia == ib).all()
    keep = np.ones(len(ua), bool) if photo is None else ia == photo
    return pfode.stats.paired_difference(ua[keep], ub[keep], level=level, ci="percentile", seed=0)


# threshold: data: claims of the text on the committed sweep tables, compared through their 95%
#   Clopper-Pearson intervals (non-overlap) or paired bootstrap intervals (excluding 0), or as stated
assert dim["p_unstable_lo"].iloc[-1] > dim["p_unstable_hi"].iloc[0], "no rise with n"
rise = paired(dim_samples, dict(n=n[-1]), dict(n=n[0]))
assert rise.low > 0
assert dim["p_unstable_hi"].iloc[-1] < 0.99
assert dim["delta1_hi"].iloc[-1] < dim["delta1_lo"].iloc[0], "delta1 does not fall"
assert (dim["bound"] == 0).all() and (dim["delta2_lo"] > 0.5).all()
assert np.all(np.diff(dim["best_bound_uniform"]) >= 0)
assert (ss.loc[ss["s"] >= 0.2, "p_unstable"] == 0).all()
for nn, g in ss.groupby("n"):
    assert g.loc[g["s"].idxmin(), "p_unstable"] == g["p_unstable"].max(), nn
print(f"rise of P(lambda_bar > 1) from n = {n[0]} to n = {n[-1]}, same patches: {rise:.2f}")
s_rise = {}
for sv, g in ss.groupby("s"):
    n_top = g["n"].max()
    if g["p_unstable"].max() > 0:
        s_rise[sv] = paired(ss_samples, dict(n=n_top, s=sv), dict(n=g["n"].min(), s=sv))
        p_s = g.sort_values("n")["p_unstable"]
        print(f"s = {sv}: P from n = {g['n'].min()} to n = {n_top}: {p_s.iloc[0]:.2f} -> "
              f"{p_s.iloc[-1]:.2f}, paired difference {s_rise[sv]:.2f}")
# threshold: data: the rise with n is claimed for 0.01 <= s <= 0.1 (paired interval above 0)
#   and not claimed at the smallest s, where P is already near 1 at the smallest n
for sv, iv in s_rise.items():
    if sv > ss["s"].min():
        assert iv.low > 0, f"no rise with n at s = {sv}: {iv}"
best_s = ss.sort_values(["n", "s"]).groupby("n").first()
print("smallest s at each n: " + "; ".join(f"n = {nn}: s = {r['s']}, P = {r['p_unstable']:.2f} "
                                              f"[{r['p_unstable_lo']:.2f}, {r['p_unstable_hi']:.2f}]"
                                              for nn, r in best_s.iterrows()))

# %% [markdown]
# ### How much does $K$ change the probability?
#
# Overlapping intervals do not show that $K$ has no effect. Against the default $K$, the
# change in $P(\bar\lambda > 1)$ from every other $K$ of the sweep is estimated on the same
# patches, and compared with an equivalence margin of `margin_K`: a change that the interval
# keeps inside $\pm$ `margin_K` is called small. The margin is a choice: it is below the rise
# with $n$ that the default sweep detects, and above the resolution (about $\pm 0.1$) of a
# paired comparison on 100 patches.

# %%
k_ref = int(one(dim, "K"))
eq_rows = []
for nn, g in ks.groupby("n"):
    for k_ in sorted(set(g["K"]) - {k_ref}):
        row = dict(n=nn, K=k_, change=paired(ks_samples, dict(n=nn, K=k_), dict(n=nn, K=k_ref)))
        for ph in photos:
            row[ph] = paired(ks_samples, dict(n=nn, K=k_), dict(n=nn, K=k_ref), photo=ph)
        eq_rows.append(row)
eq = pd.DataFrame(eq_rows)
display(eq.assign(**{c: eq[c].map(lambda iv: f"{iv:.2f}") for c in ["change", *photos]})
          .rename(columns={"change": f"P(K) - P(K = {k_ref}), both photographs"}))
eq_hi = eq[eq["n"] >= 192]
worst_K = max(max(abs(iv.low), abs(iv.high)) for iv in eq_hi["change"])
worst_K_photo = max(max(abs(iv.low), abs(iv.high)) for ph in photos for iv in eq_hi[ph])
low_n = paired(ks_samples, dict(n=ks["n"].min(), K=ks["K"].max()), dict(n=ks["n"].min(), K=ks["K"].min()))
print(f"n >= 192: every paired interval within +-{worst_K:.2f} (both photographs), "
      f"+-{worst_K_photo:.2f} (one photograph at a time); margin {margin_K}")
print(f"n = {ks['n'].min()}: P(K = {ks['K'].max()}) - P(K = {ks['K'].min()}) = {low_n:.2f}")
# threshold: the equivalence margin margin_K (a stated choice, see above) for n >= 192, both
#   photographs together; at the smallest n the fall with K is claimed (interval below 0)
assert worst_K < margin_K, worst_K
assert low_n.high < 0
# threshold: data: the text names the single change over K (n >= 192) whose interval excludes 0
detected = eq_hi[[iv.low > 0 or iv.high < 0 for iv in eq_hi["change"]]]
print("changes detected at n >= 192: " + "; ".join(f"K = {r.K}, n = {r.n}: {r.change:.2f}" for r in detected.itertuples()))
assert len(detected) == 1

# %%
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
n_s = sorted(ss["n"].unique())
_ = pfode.nb.publish(fig, "ch09_s_k", "fig-ch9-s-k",
                 n_list=", ".join(f"{v:,}" for v in n_s[:-1]) + f" and {n_s[-1]:,}",
                 K_s=int(one(ss, "K")), N_s=int(one(ss, "N")), s_K=f"{one(ks, 's'):g}",
                 N_K=int(one(ks, "N")), K_min=int(ks["K"].min()), K_max=int(ks["K"].max()),
                 level=f"{level:.0%}")

# %% [markdown]
# ```{glue:figure} fig-ch9-s-k
# :name: fig-ch9-s-k
#
# Left: the probability of instability against the width $s$ of the Gaussian neighbours, at $n =$ {glue:text}`fig-ch9-s-k-n_list` ($K =$ {glue:text}`fig-ch9-s-k-K_s`, {glue:text}`fig-ch9-s-k-N_s` held-out patches per point, {glue:text}`fig-ch9-s-k-level` Clopper–Pearson intervals). Right: against the number $K$ of training patches, from {glue:text}`fig-ch9-s-k-K_min` to {glue:text}`fig-ch9-s-k-K_max` where it was run (the largest $K$ only at the smaller dimensions, since the solve takes place in $\min(K, n)$ dimensions; the curves end where the sweep does; $s =$ {glue:text}`fig-ch9-s-k-s_K`, {glue:text}`fig-ch9-s-k-N_K` patches per point). Small $s$ is the sparse regime of Assumption 4.4; a wide $s$ makes $p_G$ cover the real patches and instability disappears.
# ```

# %% [markdown]
# ## Reconstruction error
#
# The Euler reconstruction of the default sweep ($\hat G(\hat F(x))$, `euler_steps` steps each
# way) is not converged: the inversion is stiff where $G$ is unstable, and the BDF solve of
# the same inversion needs hundreds of evaluations per point. Its error therefore mixes
# discretisation error with the amplification by $G$. The round-trip sweep reconstructs the
# same patches with BDF both ways (in the span; the orthogonal part is exact), and repeats
# the round trip of `num_converge` points at the tighter tolerance `rtol_fine`. The table gives, for each $n$
# and photograph, the median converged error of the unstable and of the stable patches, the
# bootstrap interval of their difference, how many patches are reconstructed to within
# `converged_tol` per pixel, and the largest ratio (coarse over fine tolerance) of the error of a
# refined unstable patch: an error that does not fall when the tolerance falls is not solver
# error.

# %%
def median_gap(e, u):
    return np.median(e[u == 1]) - np.median(e[u == 0])


rec_rows = []
for nn in rt["n"]:
    g_rt = rt_samples[rt_samples["n"] == nn]
    g_eu = g_rt                      # the same Euler reconstruction as the default sweep's, rerun
    for ph in [*photos, "both"]:
        h = g_rt if ph == "both" else g_rt[g_rt["image"] == ph]
        he = g_eu if ph == "both" else g_eu[g_eu["image"] == ph]
        u = (h["log_lambda"] > 0).to_numpy(float)
        e = h["rmse_bdf"].to_numpy()
        fine = h.dropna(subset=["rmse_bdf_fine"])
        ratio = (fine["rmse_bdf"] / fine["rmse_bdf_fine"]).to_numpy()
        uf = fine["log_lambda"].to_numpy() > 0
        gap = (pfode.stats.bootstrap(median_gap, e, u, level=level, ci="percentile", seed=0)
               if 0 < u.sum() < len(u) else None)
        ue = (he["log_lambda"] > 0).to_numpy()
        rec_rows.append(dict(
            n=nn, photo=ph, N=len(u), unstable=int(u.sum()), bdf_all=np.median(e),
            bdf_unstable=np.median(e[u == 1]) if u.any() else np.nan,
            bdf_stable=np.median(e[u == 0]) if (u == 0).any() else np.nan, gap=gap,
            rec_unstable=int((e[u == 1] < converged_tol).sum()),
            rec_stable=int((e[u == 0] < converged_tol).sum()),
            ratio_unstable_max=ratio[uf].max() if uf.any() else np.nan,
            ratio_stable_median=np.median(ratio[~uf]) if (~uf).any() else np.nan,
            euler_all=np.median(he["rmse"]),
            euler_unstable=np.median(he["rmse"][ue]) if ue.any() else np.nan,
            euler_stable=np.median(he["rmse"][~ue]) if (~ue).any() else np.nan,
            euler_perp=np.median(he["rmse_perp"]) if "rmse_perp" in he else np.nan))
rec = pd.DataFrame(rec_rows)
show = rec.copy()
show["gap"] = show["gap"].map(lambda iv: "" if iv is None else f"{iv:.2g}")
with pd.option_context("display.precision", 3):
    display(show.rename(columns={
        "bdf_all": "BDF, all (median)", "euler_all": "Euler, all",
        "bdf_unstable": "BDF, unstable (median)", "bdf_stable": "BDF, stable (median)",
        "gap": "unstable - stable", "rec_unstable": f"unstable < {converged_tol:g}",
        "rec_stable": f"stable < {converged_tol:g}", "ratio_unstable_max": "ratio, unstable (max)",
        "ratio_stable_median": "ratio, stable (median)", "euler_unstable": "Euler, unstable",
        "euler_stable": "Euler, stable", "euler_perp": "Euler, outside the span"}))

# %%
rho_rows = []
for nn in [n[-1]]:
    for ph in [*photos, "both"]:
        h = smp if ph == "both" else smp[smp["image"] == ph]
        rho_rows.append(dict(n=nn, photo=ph, method="Euler",
                             rho=pfode.stats.correlation(h["log_lambda"], h["rmse"], "spearman", seed=0)))
for nn in rt["n"]:
    g_rt = rt_samples[rt_samples["n"] == nn]
    for ph in [*photos, "both"]:
        h = g_rt if ph == "both" else g_rt[g_rt["image"] == ph]
        rho_rows.append(dict(n=nn, photo=ph, method="BDF",
                             rho=pfode.stats.correlation(h["log_lambda"], h["rmse_bdf"], "spearman", seed=0)))
rho_t = pd.DataFrame(rho_rows)
display(rho_t.assign(rho=rho_t["rho"].map(lambda r: f"{r.estimate:.2f} [{r.low:.2f}, {r.high:.2f}]"))
        .rename(columns={"rho": f"Spearman(log lambda_bar, error), {level:.0%} bootstrap"}))

# %% [markdown]
# The statements of the chapter on the reconstruction, asserted on the round-trip table, in each
# photograph: no unstable patch is reconstructed to within `converged_tol`; the error of every
# refined unstable patch changes by less than a factor 10 when the tolerance falls 1000-fold
# (a solver error would fall with it); the median converged error of the unstable patches is
# above that of the stable ones (interval of the difference above zero).

# %%
# threshold: data: claims of the text on the round-trip table (counts as stated; the factor 10
#   is two orders of magnitude below the 1000-fold change of the tolerance that a solver error
#   would follow; medians compared through the bootstrap interval of their difference)
assert (rec["rec_unstable"] == 0).all(), rec[["n", "photo", "rec_unstable"]]
assert (rec["ratio_unstable_max"].dropna() < 10).all(), rec[["n", "photo", "ratio_unstable_max"]]
gap_pos = rec[[iv.low > 0 for iv in rec["gap"]]]
print("median gap unstable - stable with an interval above zero at: " + "; ".join(
    f"n = {r.n}, {r.photo}" for r in gap_pos.itertuples()))
first = rec[(rec["n"] == rt["n"].min()) & (rec["photo"] != "both")]
assert all(iv.low > 0 for iv in first["gap"]), first
# the converged error grows with n: per-patch change from the smallest to the largest n of the
# round-trip sweep (same patches), and the stable patches reconstructed become fewer
e_lo = rt_samples[rt_samples["n"] == rt["n"].min()].sort_values("index")["rmse_bdf"].to_numpy()
e_hi = rt_samples[rt_samples["n"] == rt["n"].max()].sort_values("index")["rmse_bdf"].to_numpy()
grow = pfode.stats.paired_difference(e_hi, e_lo, statistic=np.median, level=level, seed=0)
rb = rec[rec["photo"] == "both"].set_index("n")
rec_lo = bounds.bernoulli_ci(int(rb["rec_stable"].iloc[0]), int(rb["N"].iloc[0] - rb["unstable"].iloc[0]), level)
rec_hi = bounds.bernoulli_ci(int(rb["rec_stable"].iloc[-1]), int(rb["N"].iloc[-1] - rb["unstable"].iloc[-1]), level)
print(f"converged error, n = {rb.index[0]} to {rb.index[-1]}: median per-patch change {grow:.3f}; stable "
      f"patches reconstructed {rec_lo.estimate:.2f} [{rec_lo.lower:.2f}, {rec_lo.upper:.2f}] -> "
      f"{rec_hi.estimate:.2f} [{rec_hi.lower:.2f}, {rec_hi.upper:.2f}]")
# threshold: data: claims of the text, through the paired bootstrap interval (above 0) and
#   95% Clopper-Pearson intervals (non-overlap)
assert grow.low > 0
assert rec_hi.upper < rec_lo.lower
# from n = 192 on the stable patches' error no longer follows the tolerance (median ratio below
#   10, against the 1000-fold change of the tolerance)
assert (rb.loc[rb.index >= 192, "ratio_stable_median"] < 10).all()
# the gap in each photograph: at every n in flower; in astronaut at n = 12 and 192 only
assert set(gap_pos.loc[gap_pos["photo"] == "flower", "n"]) == set(rt["n"])
assert set(gap_pos.loc[gap_pos["photo"] == "astronaut", "n"]) == {12, 192}
# rank correlations: the converged error follows log lambda_bar in both photographs at every n
#   except n = 48 in astronaut; the Euler correlation at the largest n holds pooled and in
#   flower, not in astronaut
rho_t["pos"] = [r.low > 0 for r in rho_t["rho"]]
bdf_rho = rho_t[rho_t["method"] == "BDF"]
assert set(map(tuple, bdf_rho.loc[~bdf_rho["pos"], ["n", "photo"]].to_numpy())) == {(48, "astronaut")}
eu = rho_t[rho_t["method"] == "Euler"].set_index("photo")
assert eu.loc["both", "pos"] and eu.loc["flower", "pos"] and eu.loc["astronaut", "rho"].low < 0
print(f"stable patches reconstructed to within {converged_tol:g}: " + "; ".join(
    f"n = {r.n}, {r.photo}: {r.rec_stable} of {r.N - r.unstable}" for r in rec.itertuples()))

# %%
n_rt = rt["n"].to_numpy()
fig, ax = plt.subplots(1, 3, figsize=(15, 4.4))
a = ax[0]
for (ph, g), col in zip(rec[rec["photo"] != "both"].groupby("photo", sort=False), ("C0", "C1")):
    a.plot(g["n"], g["bdf_unstable"], "o-", color=col, label=f"BDF, unstable, {ph}")
    a.plot(g["n"], g["bdf_stable"], "o--", color=col, mfc="none", label=f"BDF, stable, {ph}")
both = rec[rec["photo"] == "both"]
a.plot(both["n"], both["euler_unstable"], "s-", color="0.5", label="Euler, unstable")
a.plot(both["n"], both["euler_stable"], "s--", color="0.5", mfc="none", label="Euler, stable")
a.axhline(converged_tol, color="k", ls=":", lw=1)
a.set_xscale("log")
a.set_yscale("log")
a.set_xlabel("dimension n")
a.set_ylabel("per-pixel RMSE (median)")
a.legend(fontsize=7, loc="lower right")
a.set_title("median round-trip error")
a = ax[1]
for nn, col in zip(n_rt, plt.cm.viridis(np.linspace(0, 0.9, len(n_rt)))):
    h = rt_samples[rt_samples["n"] == nn]
    a.scatter(h["log_lambda"], h["rmse_bdf"], s=8, alpha=0.6, color=col, label=f"n = {nn:,}")
a.axvline(0, color="k", lw=1)
a.axhline(converged_tol, color="k", ls=":", lw=1)
a.set_yscale("log")
a.set_xlabel(r"$\log\bar\lambda_G(F(x))$")
a.set_ylabel("per-pixel RMSE, BDF round trip")
a.legend(fontsize=7, loc="lower right", markerscale=2)
a.set_title("each patch")
a = ax[2]
for nn, col in zip(n_rt, plt.cm.viridis(np.linspace(0, 0.9, len(n_rt)))):
    h = rt_samples[(rt_samples["n"] == nn)].dropna(subset=["rmse_bdf_fine"])
    a.scatter(h["log_lambda"], h["rmse_bdf"] / h["rmse_bdf_fine"], s=18, color=col, label=f"n = {nn:,}")
a.axvline(0, color="k", lw=1)
a.axhline(1, color="k", ls=":", lw=1)
a.set_yscale("log")
a.set_xlabel(r"$\log\bar\lambda_G(F(x))$")
a.set_ylabel("error at the coarse / at the fine tolerance")
a.legend(fontsize=7, loc="upper right")
a.set_title("tolerance refinement")
fig.tight_layout()
_ = pfode.nb.publish(fig, "ch09_rmse", "fig-ch9-rmse", N=int(one(rt, "N")),
                 n_list=", ".join(f"{v:,}" for v in n_rt), tol=f"{converged_tol:g}",
                 m=int(rt["num_converge_points"].max()))

# %% [markdown]
# ```{glue:figure} fig-ch9-rmse
# :name: fig-ch9-rmse
#
# Reconstruction $\hat G(\hat F(x))$ of the {glue:text}`fig-ch9-rmse-N` held-out patches per point of the round-trip sweep, $n =$ {glue:text}`fig-ch9-rmse-n_list`. Left: median per-pixel error of the converged round trip (BDF both ways) for the unstable and the stable patches of each photograph, and of the Euler round trip (the per-point notebook's `euler_steps` steps each way; both photographs, grey); dotted: {glue:text}`fig-ch9-rmse-tol`. Middle: the error of each patch against $\log\bar\lambda_G(F(x))$. Right: for {glue:text}`fig-ch9-rmse-m` patches per point, the error at the sweep's tolerance divided by the error at the tighter tolerance `rtol_fine` of the per-point notebook: solver error falls with the tolerance, the amplification of the remaining error by $G$ does not (ratio near 1, dotted).
# ```

# %% [markdown]
# ## Per photograph
#
# The held-out patches come from two photographs. Within one photograph the crop positions
# are independent and uniform, so the intervals above describe these two photographs; they
# say nothing about the variation from one photograph to the next, which two photographs do not
# allow to estimate (a bootstrap over photographs would resample two units). The table gives
# the main quantities of the default sweep for each photograph separately, with intervals over
# its own patches; the cell after it asserts the conclusions that the chapter states for both.

# %%
ph_rows = []
for _, row in dim.iterrows():
    g = dim_samples[dim_samples["n"] == row["n"]]
    for ph in photos:
        h = g[g["image"] == ph]
        N_ph = len(h)
        ci = bounds.bernoulli_ci(int((h["log_lambda"] > 0).sum()), N_ph, level)
        d1 = bounds.bernoulli_ci(int((h["log_pG_over_n"] > row["log_gamma_over_n"]).sum()), N_ph, level)
        d2 = bounds.bernoulli_ci(int((h["z2_over_n"] > row["r_over_n"]).sum()), N_ph, level)
        ph_rows.append(dict(n=row["n"], photo=ph, N=N_ph, p=ci, delta1=d1, delta2=d2,
                            bound=max(0.0, 1 - d1.estimate - d2.estimate)))
ph_t = pd.DataFrame(ph_rows)
fmt = lambda iv: f"{iv.estimate:.2f} [{iv.lower:.2f}, {iv.upper:.2f}]"    # noqa: E731
display(ph_t.assign(p=ph_t["p"].map(fmt), delta1=ph_t["delta1"].map(fmt), delta2=ph_t["delta2"].map(fmt))
        .rename(columns={"p": "P(lambda_bar > 1)", "bound": "1 - delta1 - delta2"}))
ph_rise = {ph: paired(dim_samples, dict(n=n[-1]), dict(n=n[0]), photo=ph) for ph in photos}
s_rise_ph = {(sv, ph): paired(ss_samples, dict(n=ss.loc[ss["s"] == sv, "n"].max(), s=sv),
                              dict(n=ss["n"].min(), s=sv), photo=ph)
             for sv in s_rise for ph in photos}
for ph in photos:
    print(f"{ph}: rise of P from n = {n[0]} to n = {n[-1]} {ph_rise[ph]:.2f}; with s: " + "; ".join(
        f"s = {sv}: {s_rise_ph[sv, ph]:.2f}" for sv in s_rise))

# %%
# threshold: data: the conclusions stated for each photograph, compared through 95%
#   Clopper-Pearson intervals (non-overlap) or paired bootstrap intervals (excluding 0)
lo_ph, hi_ph = ph_t[ph_t["n"] == n[0]].set_index("photo"), ph_t[ph_t["n"] == n[-1]].set_index("photo")
for ph in photos:
    assert ph_rise[ph].low > 0, ph                                    # P rises with n
    assert hi_ph.loc[ph, "p"].upper < 0.99, ph                         # and stays below 0.99
    assert hi_ph.loc[ph, "delta1"].upper < lo_ph.loc[ph, "delta1"].lower, ph    # delta1 falls
    # the Theorem 4.1 bound stays vacuous in each photograph (stated: below 0.05 at every n)
    assert (ph_t.loc[ph_t["photo"] == ph, "bound"] < 0.05).all(), ph
    for sv in s_rise:
        if sv >= 0.05:                                                # the rise at wide s
            assert s_rise_ph[sv, ph].low > 0, (sv, ph)
    sp = ss_samples[ss_samples["image"] == ph]
    for nn, g in sp.groupby("n"):                                     # s decides, in each photograph
        p_s = g.groupby("s")["log_lambda"].apply(lambda v: np.mean(v > 0))
        assert (p_s[p_s.index >= 0.2] == 0).all() and p_s.iloc[0] == p_s.max(), (ph, nn)
