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
# # The temporal distribution discrepancy bound
#
# {prf:ref}`prop-ch11-tdd` bounds the temporal distribution discrepancy
# $\|x_0 - x_T\|^2$ of the D³GM / IR-SDE forward process from below and from above, each with
# probability at least $1-\delta$. This notebook simulates the forward SDE by Euler–Maruyama across θ schedules, terminal
# times $T$ and stiffness $\tau$, and checks (i) that each bound holds with empirical frequency at
# least $1-\delta$ (Clopper–Pearson interval), (ii) that the lower bound lies below the exact
# $\delta$-quantile and the upper bound above the $(1-\delta)$-quantile
# (a scaled non-central $\chi^2$, from scipy), and (iii) that the mean of $\|x_T - \mu\|^2$ is the
# "data residual + stationary term" of the original statement.

# %% tags=["parameters"]
d = 64                     # dimension (an 8x8 image)
num_pairs = 10             # (x0, mu) pairs: x0 ~ prior, mu = a_deg x0 + s_deg noise
paths = 200                # forward paths per pair and configuration
a_deg, s_deg = 0.6, 0.3    # the degradation that makes mu from x0
prior_std = 0.3
lam = 0.5
kinds = ["linear", "quadratic", "log", "cosine"]
Ts = [0.2, 0.5, 1.0]       # terminal times; the schedule scale is the one with exp(-theta_bar_1) = 0.01
taus = [1.0, 1.5, 2.5]
delta = 0.05
steps = 200                # Euler-Maruyama steps on [0, T]
level = 0.99               # Clopper-Pearson level
seed = 0

# %% tags=["hide-input"]
import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from IPython.display import display
from scipy import stats

import pfode
import pfode.nb
from pfode import bounds, sde

run = pfode.nb.setup(globals(), smoke=dict(   # smoke mode: caps and overrides
    paths=100, kinds=lambda v: v[::3] if len(v) > 2 else v))

dt = torch.float64
gen = run.gen
centers = torch.randn(3, d, generator=gen, dtype=dt)
prior = sde.Mixture(centers, prior_std ** 2)
x0 = prior.sample(num_pairs, gen)                                           # (P, d)
mu = a_deg * x0 + s_deg * torch.randn(num_pairs, d, generator=gen, dtype=dt)  # (P, d)
X0 = x0.repeat_interleave(paths, 0)                                          # (P*paths, d)
MU = mu.repeat_interleave(paths, 0)
print(f"d = {d}, {num_pairs} pairs x {paths} paths, ||x0 - mu||^2 in "
      f"[{float(((x0 - mu) ** 2).sum(1).min()):.2f}, {float(((x0 - mu) ** 2).sum(1).max()):.2f}]")

# %% [markdown]
# For each configuration the forward SDE is run from $x_0$ toward $\mu$; the bound
# {eq}`eq-ch11-tdd-bound` is evaluated with $c = (1-e^{-\bar\theta_T})(x_0-\mu)$ and
# $v = \tau^2\lambda^2(1-e^{-2\bar\theta_T})$.

# %%
records = []
for kind in kinds:
    base = sde.ThetaSchedule.terminal(kind, target=0.01, T=1.0)
    for T in Ts:
        sched = sde.ThetaSchedule(kind, scale=base.scale, T=T)
        tb = sched.theta_bar(T)
        for tau in taus:
            proc = sde.D3GM(sched, lam=lam, tau=tau)
            xT = sde.forward_em(proc, X0, MU, steps=steps, generator=gen)
            tdd = ((X0 - xT) ** 2).sum(1).view(num_pairs, paths)                 # (P, paths)
            c2 = ((1 - math.exp(-tb)) ** 2 * ((x0 - mu) ** 2).sum(1))            # (P,)
            v = (tau * lam) ** 2 * (1 - math.exp(-2 * tb))
            lb = sde.tdd_lower_bound(c2, v, d, delta)                             # (P,)
            ub = sde.tdd_upper_bound(c2, v, d, delta)                             # (P,)
            exact_q = torch.tensor(v * stats.ncx2.ppf(delta, d, (c2 / v).numpy()))
            exact_Q = torch.tensor(v * stats.ncx2.ppf(1 - delta, d, (c2 / v).numpy()))
            held = int((tdd >= lb[:, None]).sum())
            held_u = int((tdd <= ub[:, None]).sum())
            # the original statement's terms: E||x_T - mu||^2 = (||x0-mu||^2 - d tau^2 lam^2) e^{-2tb} + d tau^2 lam^2
            dist_mu = ((xT - MU) ** 2).sum(1).view(num_pairs, paths)
            pred_mu = (((x0 - mu) ** 2).sum(1) - d * (tau * lam) ** 2) * math.exp(-2 * tb) + d * (tau * lam) ** 2
            # Euler-Maruyama inflates the stationary variance by about theta h / 2: allow for it
            em_bias = max(sched.theta(t) for t in np.linspace(0, T, 51)) * (T / steps) / 2
            excess = ((dist_mu.mean(1) - pred_mu).abs() - em_bias * d * (tau * lam) ** 2).clamp_min(0)
            z_mu = (excess / (dist_mu.std(1) / math.sqrt(paths))).max()
            records.append(dict(kind=kind, T=T, tau=tau, theta_bar=tb, held=held, held_u=held_u,
                                N=tdd.numel(), lb=lb.numpy(), ub=ub.numpy(), exact_q=exact_q.numpy(),
                                exact_Q=exact_Q.numpy(), mc_Q=torch.quantile(tdd, 1 - delta, dim=1).numpy(),
                                mc_q=torch.quantile(tdd, delta, dim=1).numpy(),
                                mean_tdd=tdd.mean(1).numpy(), z_mu=float(z_mu)))

# %% [markdown]
# The claims. For every configuration: each bound holds with frequency at least $1-\delta$ (the
# lower end of the Clopper–Pearson interval at level 0.99 is above $1-\delta$); the lower bound is
# positive (informative) and below the exact $\delta$-quantile, the upper bound above the exact
# $(1-\delta)$-quantile; the Monte Carlo $\delta$-quantile agrees with the exact one; the mean
# of $\|x_T-\mu\|^2$ matches the original statement's two terms (|z| below 4.5, Bonferroni over pairs
# and configurations, after allowing for the $O(\theta h)$ bias of Euler–Maruyama).

# %%
tab = []
for r in records:
    ci = bounds.bernoulli_ci(r["held"], r["N"], level)
    r["freq"], r["ci_low"] = float(ci[0]), float(ci[1])
    ci_u = bounds.bernoulli_ci(r["held_u"], r["N"], level)
    r["freq_u"], r["ci_low_u"] = float(ci_u[0]), float(ci_u[1])
    tab.append({"kind": r["kind"], "T": r["T"], "tau": r["tau"], "theta_bar_T": r["theta_bar"],
                "freq (lower bound holds)": r["freq"], f"CP low ({level:g})": r["ci_low"],
                "lower bound": r["lb"].mean(), "exact q_delta": r["exact_q"].mean(), "MC q_delta": r["mc_q"].mean(),
                "mean TDD": r["mean_tdd"].mean(), "upper bound": r["ub"].mean(), "exact q_(1-delta)": r["exact_Q"].mean(),
                "freq (upper bound holds)": r["freq_u"], f"CP low up ({level:g})": r["ci_low_u"], "max |z| (mean)": r["z_mu"]})
    # threshold: the bounds hold with probability >= 1 - delta (the proposition): the frequency and
    #   the lower end of its confidence interval must reach 1 - delta; the deterministic
    #   inequalities lb <= exact quantile <= ub must hold exactly
    assert r["freq"] >= 1 - delta and r["ci_low"] >= 1 - delta, f"lower bound failed too often: {r}"
    assert r["freq_u"] >= 1 - delta and r["ci_low_u"] >= 1 - delta, f"upper bound failed too often: {r}"
    assert np.all(r["lb"] > 0) and np.all(r["lb"] <= r["exact_q"]), r
    assert np.all(r["ub"] >= r["exact_Q"]), r
    # MC delta-quantile vs exact: order-statistic standard error, plus the Euler-Maruyama bias
    np.testing.assert_allclose(r["mc_q"], r["exact_q"], rtol=0.25, atol=0.15 * d * (r["tau"] * lam) ** 2)
    # threshold: statistics: the Monte Carlo mean within 4.5 standard errors of the exact mean
    #   (Bonferroni over the rows at level 1e-4)
    assert r["z_mu"] < 4.5, r
print("per configuration; bounds and quantiles averaged over the (x0, mu) pairs")
display(pd.DataFrame(tab).set_index(["kind", "T", "tau"]).round(4))
ratio = np.concatenate([r["lb"] / r["exact_q"] for r in records])
ratio_u = np.concatenate([r["ub"] / r["exact_Q"] for r in records])
print(f"lower bound / exact delta-quantile: min {ratio.min():.3f}, median {np.median(ratio):.3f}; "
      f"upper bound / exact (1-delta)-quantile: median {np.median(ratio_u):.3f}, max {ratio_u.max():.3f}")
# the schedule shape enters only through theta_bar_T: same T and tau, different kinds, same law
for T in Ts:
    for tau in taus:
        sel = [r for r in records if r["T"] == T and r["tau"] == tau]
        tbs = [r["theta_bar"] for r in sel]
        print(f"T={T}, tau={tau}: theta_bar_T over kinds {np.round(tbs, 3)}")

# %%
fig, ax = plt.subplots(figsize=(8.4, 3.8))
for i, tau in enumerate(taus):
    sel = sorted([r for r in records if r["tau"] == tau], key=lambda r: r["theta_bar"])
    tb = [r["theta_bar"] for r in sel]
    ax.plot(tb, [r["lb"].mean() for r in sel], "-", color=f"C{i}", label=f"bounds, $\\tau={tau:g}$")
    ax.plot(tb, [r["ub"].mean() for r in sel], "-", color=f"C{i}")
    ax.plot(tb, [r["exact_q"].mean() for r in sel], "--", color=f"C{i}", lw=1)
    ax.plot(tb, [r["exact_Q"].mean() for r in sel], "--", color=f"C{i}", lw=1)
    ax.plot(tb, [r["mc_q"].mean() for r in sel], "o", color=f"C{i}", ms=3)
    ax.plot(tb, [r["mc_Q"].mean() for r in sel], "s", color=f"C{i}", ms=3)
ax.plot([], [], "k--", lw=1, label="exact quantiles")
ax.plot([], [], "ko", ms=3, label=r"Monte Carlo ($\delta$: dots, $1-\delta$: squares)")
ax.set_xticks(sorted({round(r["theta_bar"], 3) for r in records}))
ax.set_yscale("log")
ax.set_xlabel(r"$\bar\theta_T$")
ax.set_ylabel(rf"$\|x_0 - x_T\|^2$: $\delta$ and $1-\delta$ quantiles")
ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)
fig.tight_layout()
_ = pfode.nb.publish(fig, "ch11_tdd_bound", "fig-ch11-tdd", d=d, delta=f"{delta:g}", pairs=num_pairs, paths=paths)

# %% [markdown]
# ```{glue:figure} fig-ch11-tdd
# :name: fig-ch11-tdd
#
# The TDD lower and upper bounds (solid) against the exact $\delta$- and $(1-\delta)$-quantiles of
# $\|x_0 - x_T\|^2$ (dashed) and their Monte Carlo estimates (dots, squares; {glue:text}`fig-ch11-tdd-paths`
# paths per pair), $d =$ {glue:text}`fig-ch11-tdd-d`, $\delta =$ {glue:text}`fig-ch11-tdd-delta`,
# averaged over the {glue:text}`fig-ch11-tdd-pairs` $(x_0, \mu)$ pairs, as a function of $\bar\theta_T$
# (all schedules and terminal times pooled), for each stiffness $\tau$ (colours). Larger $\tau$ raises
# the stationary term $d\tau^2\lambda^2$; larger $\bar\theta_T$ removes the memory of $x_0$.
# ```
