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
# # Stability of restoration: reverse SDEs against probability-flow ODEs
#
# A two-dimensional restoration problem with an exact posterior: the clean $x_0$ follows a
# three-component Gaussian mixture, the measurement is $\mu = y = A x_0 + \sigma_y \varepsilon$, and
# every family of {ref}`ch-sde-stability` is run with the exact score of its marginal started from
# the posterior $p(x_0 \mid y)$. Each family is solved twice, by its reverse SDE (Euler–Maruyama) and
# by its probability-flow ODE (RK4), and the output's sensitivity to the measurement and to the
# starting point is measured with the Brownian path held fixed.

# %% tags=["parameters"]
means = [[-2.0, -1.0], [2.0, -1.0], [0.0, 2.0]]
stds = 0.3
A = [[0.6, 0.3], [0.3, 0.6]]     # the degradation y = A x0 + sigma_y eps
sigma_y = 0.4
lam = 0.5                        # IR-SDE / D3GM / decoupled stationary std
tau = 1.5                        # D3GM stiffness
g_bridge = 0.8
eps_bridge = 0.01                # bridge runs on [0, T - eps]
target = 0.01                    # exp(-theta_bar_T) (IR-SDE's choice)
num_meas = 64                    # measurements y_j
seeds = 4                        # Brownian paths per measurement
sde_steps = 400
ode_steps = 200
fd = 1e-4                        # size of the perturbations of mu and of the start
num_check = 4000                 # samples for the posterior-moment check
refine = 4                       # step-count factor of the discretisation-error runs
jvp_points = 8                   # points where the JVP instability is compared with finite differences
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
import pfode.stats
from pfode import sde

run = pfode.nb.setup(globals(), smoke=dict(   # smoke mode: caps and overrides
    num_meas=64, seeds=1, sde_steps=200, ode_steps=100, num_check=1000, jvp_points=4))

dt = torch.float64
A_t = torch.tensor(A, dtype=dt)
prior = sde.Mixture(means, stds ** 2)
sched = sde.ThetaSchedule.terminal("cosine", target=target)
families = {
    "SGM": sde.VP(sched),
    "IR-SDE": sde.IRSDE(sched, lam=lam),
    "Coef.-decoupled": sde.DecoupledOU(sched, sde.ThetaSchedule.terminal("quadratic", target=target), lam=lam),
    "Bridge (I2SB)": sde.Bridge(sched, g=g_bridge),
    "D3GM": sde.D3GM(sched, lam=lam, tau=tau),
}
t_start = {name: (p.T - eps_bridge if isinstance(p, sde.Bridge) else p.T) for name, p in families.items()}
gen = run.gen
x0 = prior.sample(num_meas, gen)
y = x0 @ A_t.T + sigma_y * torch.randn(num_meas, 2, generator=gen, dtype=dt)
print(sched, f"{num_meas} measurements x {seeds} paths")


def run(name, y_rows, start_noise, path_seed, solver):
    """Output of family `name` from start b mu + sqrt(v) xi (xi = start_noise), for measurements y_rows."""
    proc = families[name]
    post = sde.posterior(prior, A_t, sigma_y, y_rows)
    score = sde.exact_score(proc, post)
    _, b, v = proc.coefficients(t_start[name])
    xT = b * y_rows + math.sqrt(v) * start_noise
    if solver == "sde":
        return sde.euler_maruyama(proc, score, xT, y_rows, steps=sde_steps, t_start=t_start[name], seed=path_seed)
    return sde.pf_ode(proc, score, xT, y_rows, t_start=t_start[name], steps=ode_steps, method="rk4")


# %% [markdown]
# First, correctness: for one measurement, every family's SDE and ODE outputs have the mean and
# variance of the exact posterior $p(x_0\mid y)$. The tolerance of the check has two parts.
#
# - Monte Carlo: the standard error of the sample mean and of the sample variance of `num_check`
#   outputs, estimated from a large exact posterior sample. The posterior is a mixture, and a
#   component of small weight far from the main one carries a large share of its variance, so
#   the sample variance fluctuates much more than for a Gaussian of the same variance.
# - Discretisation: each solver is run again with `refine` times the steps on the *same* Brownian
#   path (the coarse increments are sums of the fine ones), and the change of each moment is
#   extrapolated to zero step size (Richardson, weak order 1 for Euler–Maruyama, order 4 for
#   RK4). The coupling cancels most of the Monte Carlo noise of the difference; its own standard
#   error is part of the tolerance.
#
# The check starts every solver from the exact law $p_T$ (a mixture, sampled exactly), so that it
# tests the solvers alone; the restorations of the rest of the chapter start from the $x_0$-free
# part of $p_T$, whose mean differs by $a_T\,\mathbb E[x_0 \mid y]$. Each family draws its own start
# points and Brownian paths (from a generator of its own, so that the later cells do not depend on
# `num_check`), and the checks are independent.

# %%
y1 = y[:1].expand(num_check, 2).contiguous()
post1 = sde.posterior(prior, A_t, sigma_y, y[:1])
w1, m1 = post1.log_weights.exp()[0], post1.means[0]
pm = post1.mean()[0]
pv = torch.diagonal((w1[:, None, None] * (post1.covs + m1[:, :, None] * m1[:, None, :])).sum(0)
                    - torch.outer(pm, pm))                              # exact posterior variances
between = (w1[:, None] * (m1 - pm) ** 2)                               # (K, 2): between-component part
minor = int(torch.argsort(w1)[-2])
print(f"posterior of y_1: component weights {w1.numpy().round(4)}; the component of weight "
      f"{float(w1[minor]):.4f} carries {(between[minor] / pv).numpy().round(2)} of the variance")
gen_check = torch.Generator().manual_seed(seed + 20)
ref = sde.Mixture(m1, post1.covs, post1.log_weights[0]).sample(200_000, gen_check)
se_mean = ref.std(0) / math.sqrt(num_check)
se_var = ((ref - pm) ** 2).std(0) / math.sqrt(num_check)
n_tests = len(families) * 2 * 2 * 2                                    # families x solvers x moments x coordinates
z_crit = float(stats.norm.isf(0.01 / (2 * n_tests)))                   # family-wise level 0.01 (Bonferroni)
post_n = sde.posterior(prior, A_t, sigma_y, y1)
check_rows, disc = [], {}
for name, proc in families.items():
    score = sde.shared_cov_score(proc, post_n)
    xT = sde.marginal_mixture(proc, post_n, t_start[name], y1).sample(num_check, gen_check)
    fine = torch.randn(num_check, refine * sde_steps, 2, generator=gen_check, dtype=dt)
    coarse = fine.view(num_check, sde_steps, refine, 2).sum(2) / math.sqrt(refine)
    for solver, order in (("sde", 1), ("ode", 4)):
        if solver == "sde":
            out_c, out_f = (sde.euler_maruyama(proc, score, xT, y1, steps=k, t_start=t_start[name], noise=nz)
                            for k, nz in ((sde_steps, coarse), (refine * sde_steps, fine)))
        else:
            out_c, out_f = (sde.pf_ode(proc, score, xT, y1, t_start=t_start[name], steps=k, method="rk4")
                            for k in (ode_steps, refine * ode_steps))
        rich = refine ** order / (refine ** order - 1)                 # error at h = rich x (coarse - fine)
        for moment, stat, se_mc in (("mean", lambda o: o.mean(0), se_mean),
                                    ("variance", lambda o: o.var(0), se_var)):
            exact = pm if moment == "mean" else pv
            if moment == "mean":
                d_i = out_c - out_f
            else:
                d_i = (out_c - out_c.mean(0)) ** 2 - (out_f - out_f.mean(0)) ** 2
            bias = rich * (stat(out_c) - stat(out_f))                  # estimated discretisation error
            se_bias = rich * d_i.std(0) / math.sqrt(num_check)
            dev = stat(out_c) - exact
            tol = z_crit * se_mc + bias.abs() + z_crit * se_bias
            disc[(name, solver, moment)] = (bias, se_bias)
            for j in range(2):
                check_rows.append({"family": name, "solver": solver, "moment": moment, "coordinate": j + 1,
                                   "exact": float(exact[j]), "deviation": float(dev[j]),
                                   "MC s.e.": float(se_mc[j]), "discretisation": float(bias[j]),
                                   "disc. s.e.": float(se_bias[j]), "tolerance": float(tol[j]),
                                   "deviation / tolerance": float(dev[j].abs() / tol[j])})
check = pd.DataFrame(check_rows)
display(check.set_index(["family", "solver", "moment", "coordinate"]).style.format("{:.2e}"))
# threshold: statistics: Monte Carlo standard error (z at family-wise level 0.01, Bonferroni over
#   families x solvers x moments x coordinates) plus the measured discretisation error and z times
#   its own standard error
bad = check[check["deviation / tolerance"] >= 1]
assert bad.empty, bad
rel_est = {name: float((disc[(name, "sde", "variance")][0].abs() / pv).max()) for name in families}
rel_up = {name: float(((disc[(name, "sde", "variance")][0].abs() + z_crit * disc[(name, "sde", "variance")][1])
                       / pv).max()) for name in families}
print(f"Euler-Maruyama at {sde_steps} steps, discretisation error of the posterior variance relative to the "
      f"variance (largest coordinate), estimate and upper end (+ {z_crit:.2f} s.e.): "
      + ", ".join(f"{k} {rel_est[k]:.4f} ({rel_up[k]:.4f})" for k in families))
print(f"largest |deviation| / tolerance over all checks: {check['deviation / tolerance'].max():.2f}; Monte Carlo "
      f"s.e. of the variance relative to the variance: {(se_var / pv).numpy().round(3)}")
# threshold: the text's claim: at the notebook's step count Euler-Maruyama changes the posterior
#   variance by a few per cent at most: every estimate below 3 %, every upper end below 10 %
assert max(rel_est.values()) < 0.03 and max(rel_up.values()) < 0.10, (rel_est, rel_up)

# %% [markdown]
# ## Empirical Lipschitz constants
#
# For each measurement $y_j$ and Brownian path, a random unit direction $u$ and $\delta = $ `fd`:
#
# - measurement: $L_\mu = \|\mathrm{out}(y + \delta u) - \mathrm{out}(y)\| / \delta$, same start
#   noise $\xi$ and same Brownian increments (the score, the drift and the start all move with $\mu$);
# - start: $L_{x_T} = \|\mathrm{out}(x_T + \delta u) - \mathrm{out}(x_T)\| / \delta$, same $y$ and path.
#
# For the ODE, $L_{x_T}$ is the directional instability $\lambda(x_T; u)$ of Part I; at a few points
# it is also computed exactly by `pfode.directional_instability` (forward-mode JVP through RK4) and
# compared.

# %%
Y = y.repeat_interleave(seeds, 0)                                      # (B, 2), B = num_meas * seeds
B = Y.shape[0]
Xi = torch.randn(B, 2, generator=gen, dtype=dt)
U = torch.randn(B, 2, generator=gen, dtype=dt)
U = U / U.norm(dim=1, keepdim=True)
path_seed = seed + 1000
results = {}
for name in families:
    for solver in ("sde", "ode"):
        # one batch: base, perturbed measurement, perturbed start (row i of each block shares path i)
        Yc = torch.cat([Y, Y + fd * U, Y])
        _, b, v = families[name].coefficients(t_start[name])
        Xic = torch.cat([Xi, Xi, Xi + fd * U / math.sqrt(v)])             # start moves by fd * u
        if solver == "sde":
            noise = sde.path_noise(B, sde_steps, 2, path_seed).repeat(3, 1, 1)
            proc = families[name]
            post = sde.posterior(prior, A_t, sigma_y, Yc)
            xT = b * Yc + math.sqrt(v) * Xic
            out = sde.euler_maruyama(proc, sde.exact_score(proc, post), xT, Yc, steps=sde_steps,
                                     t_start=t_start[name], noise=noise)
        else:
            out = run(name, Yc, Xic, None, "ode")
        base, pm_, ps_ = out[:B], out[B:2 * B], out[2 * B:]
        L_mu = ((pm_ - base).norm(dim=1) / fd).numpy()
        L_x = ((ps_ - base).norm(dim=1) / fd).numpy()
        sq_err = ((base - x0.repeat_interleave(seeds, 0)) ** 2).sum(1).numpy()
        results[(name, solver)] = dict(L_mu=L_mu, L_x=L_x, sq_err=sq_err)

# %% [markdown]
# The table: means and 95th percentiles with 95 % bootstrap intervals (BCa) over the independent
# unit, the measurement $y_j$ (its `seeds` Brownian paths are resampled together); maxima are
# the largest of the `num_meas` × `seeds` values, with no interval (a bootstrap of a maximum is
# not valid).

# %%
meas = np.repeat(np.arange(num_meas), seeds)                          # the independent unit of each row
q95_ = lambda a: np.quantile(a, 0.95)
rows = []
for (name, solver), r in results.items():
    row = {"family": name, "solver": solver}
    for key, label in (("L_mu", "L_mu"), ("L_x", "L_xT")):
        row[f"{label} mean"] = f"{pfode.stats.bootstrap(np.mean, r[key], clusters=meas):.3g}"
        row[f"{label} q95"] = f"{pfode.stats.bootstrap(q95_, r[key], clusters=meas):.3g}"
        row[f"{label} max (of {B})"] = f"{r[key].max():.3g}"
    row["RMSE"] = f"{pfode.stats.bootstrap(lambda e: np.sqrt(np.mean(e)), r['sq_err'], clusters=meas):.3f}"
    rows.append(row)
display(pd.DataFrame(rows).set_index(["family", "solver"]))

# %% [markdown]
# The JVP check of the ODE's start sensitivity (D³GM, a few points): the exact directional
# instability and the finite difference agree.

# %%
name = "D3GM"
proc = families[name]
yj, xij, uj = Y[:jvp_points], Xi[:jvp_points], U[:jvp_points]
post = sde.posterior(prior, A_t, sigma_y, yj)
_, b, v = proc.coefficients(proc.T)
ode_map = lambda z: sde.pf_ode(proc, sde.exact_score(proc, post), z, yj, steps=ode_steps, method="rk4")
lam_jvp = pfode.directional_instability(ode_map, b * yj + math.sqrt(v) * xij, uj).numpy()
print("JVP:", lam_jvp.round(4), "\nFD: ", results[(name, "ode")]["L_x"][:jvp_points].round(4))
np.testing.assert_allclose(results[(name, "ode")]["L_x"][:jvp_points], lam_jvp, rtol=1e-3)

# %% [markdown]
# ## The Gaussian prediction
#
# {prf:ref}`prop-ch12-gauss` predicts, for one Gaussian component with covariance eigenvalues $c_i$,
# the start sensitivities $J^{\rm ODE}_i = \sqrt{c_i / V_i}$ and
# $J^{\rm SDE}_i = (c_i / V_i)\, e^{-\bar\theta}$ with $V_i = e^{-2\bar\theta} c_i + v$, at the start
# time. The posterior here is dominated by one component for most measurements, so the median of
# the measured $L_{x_T}$ should fall in the range of the prediction over the eigenvalues of the
# posterior component covariance.

# %%
c_eig = torch.linalg.eigvalsh(sde.posterior(prior, A_t, sigma_y, y[:1]).covs[0]).numpy()   # same for all k
for name, proc in families.items():
    a, _, v = proc.coefficients(t_start[name])
    V = a * a * c_eig + v
    J_ode, J_sde = np.sqrt(c_eig / V), (c_eig / V) * a
    med_o, med_s = np.median(results[(name, "ode")]["L_x"]), np.median(results[(name, "sde")]["L_x"])
    print(f"{name:16s} ODE median {med_o:.4f} in [{J_ode.min():.4f}, {J_ode.max():.4f}]   "
          f"SDE median {med_s:.2e} in [{J_sde.min():.2e}, {J_sde.max():.2e}]")
    # threshold: the closed-form Jacobians of the linear ODE and SDE maps bound the measured
    #   medians; 15% / 30% are stated margins for the finite differences (fd = 1e-4) and the Monte
    #   Carlo spread of the SDE paths
    assert 0.85 * J_ode.min() <= med_o <= 1.15 * J_ode.max(), (name, med_o, J_ode)
    assert 0.7 * J_sde.min() <= med_s <= 1.3 * J_sde.max(), (name, med_s, J_sde)

# %% [markdown]
# ## Does "ODEs amplify, measure-preserving SDEs contract" hold here?
#
# Three comparisons, asserted as they come out in this problem, each with a 95 % bootstrap
# interval over the measurements (all families and both solvers see the same measurements,
# start noises, directions and Brownian paths, so the comparisons are paired):
#
# 1. start sensitivity: for every family the reverse SDE forgets its start far more than the
#    PF-ODE (the paired difference of mean $L_{x_T}$, ODE minus SDE, has its interval above 0);
# 2. the PF-ODE is not uniformly contracting: its largest $L_{x_T}$ exceeds 1 for some family (the
#    mode boundaries of Part I), while its mean may be below 1;
# 3. measurement sensitivity $L_\mu$: the medians of ODE and SDE are close (the posterior's own
#    sensitivity), but the PF-ODEs have the heavier upper tail: the ratio of 95th percentiles, ODE
#    over SDE, pooled over the families, has its interval above 1, and the ratio of every family
#    is above 1 (its own interval is printed). Means are dominated by a few points
#    near mode boundaries, for the SDEs too; the paired differences of $L_\mu$ between D³GM's SDE
#    and the other SDEs are printed with their intervals (means and medians), and the medians
#    asserted to be close to 0.

# %%
claims = []
for name in families:
    s_, o_ = results[(name, "sde")], results[(name, "ode")]
    d_x = pfode.stats.paired_difference(o_["L_x"], s_["L_x"], clusters=meas)
    r95 = pfode.stats.bootstrap(lambda a, b: q95_(a) / q95_(b), o_["L_mu"], s_["L_mu"], clusters=meas)
    rmed = pfode.stats.bootstrap(lambda a, b: np.median(a) / np.median(b), o_["L_mu"], s_["L_mu"], clusters=meas)
    claims.append({"family": name, "mean L_xT, ODE - SDE": d_x, "q95 L_mu, ODE / SDE": r95,
                   "median L_mu, ODE / SDE": rmed, "median L_mu, SDE": np.median(s_["L_mu"]),
                   "max L_xT, ODE": o_["L_x"].max()})
claims = pd.DataFrame(claims).set_index("family")
display(claims.apply(lambda col: [f"{v:.3g}" for v in col]))
# threshold: claim 1: the interval of the paired difference of mean start sensitivity lies above 0
assert all(iv.low > 0 for iv in claims["mean L_xT, ODE - SDE"]), claims["mean L_xT, ODE - SDE"]
ode_max = claims["max L_xT, ODE"].max()
print(f"largest PF-ODE start sensitivity over families (the maximum of {B} values each): {ode_max:.2f}")
# threshold: claim 2: an amplification, i.e. some PF-ODE start sensitivity above 1
assert ode_max > 1, "the PF-ODEs contract everywhere in this problem"
pooled = [np.concatenate([results[(n, sv)]["L_mu"] for n in families]) for sv in ("ode", "sde")]
r95_pooled = pfode.stats.bootstrap(lambda a, b: q95_(a) / q95_(b), *pooled, clusters=np.tile(meas, len(families)))
print(f"95th percentile of L_mu, ODE / SDE, pooled over the families: {r95_pooled:.3g}; per family: "
      + ", ".join(f"{k} {v:.3g}" for k, v in claims["q95 L_mu, ODE / SDE"].items()))
# threshold: claim 3: the interval of the pooled ratio of 95th percentiles (ODE / SDE) lies above 1,
#   and every family's ratio is above 1
assert r95_pooled.low > 1, r95_pooled
assert all(iv.estimate > 1 for iv in claims["q95 L_mu, ODE / SDE"]), claims["q95 L_mu, ODE / SDE"]
# threshold: claim 3: the medians are close: every ratio of medians (ODE / SDE) within 25 %
assert all(0.8 < iv.estimate < 1.25 for iv in claims["median L_mu, ODE / SDE"]), claims["median L_mu, ODE / SDE"]
d3 = results[("D3GM", "sde")]["L_mu"]
vs_d3 = {n: pfode.stats.paired_difference(d3, results[(n, "sde")]["L_mu"], clusters=meas)
         for n in families if n != "D3GM"}
print(f"SDE mean L_mu, D3GM minus each other family (paired, 95 % interval over {num_meas} measurements): "
      + "; ".join(f"{k} {v:.3f}" for k, v in vs_d3.items()))
vs_d3_med = {n: pfode.stats.paired_difference(d3, results[(n, "sde")]["L_mu"], statistic=np.median, clusters=meas)
             for n in families if n != "D3GM"}
print("the same for the median of the paired differences: " + "; ".join(f"{k} {v:.3f}" for k, v in vs_d3_med.items()))
# threshold: the text's summary: on a typical path D3GM's SDE is as sensitive to mu as every other
#   SDE: the median paired difference below 0.01 in magnitude (under 4 % of the median
#   sensitivity 0.28; the means are printed only, they are driven by rare paths near mode
#   boundaries)
assert all(abs(iv.estimate) < 0.01 for iv in vs_d3_med.values()), vs_d3_med

# %% mystnb={"figure": {"caption": "Sampling trajectories of the five families for one measurement $\\mu$ (black cross), reverse SDE (top) and probability-flow ODE (bottom), coloured by time from $t = T$ (light) to $t = 0$ (dark; black dots: the outputs; the SDE row shows half of the paths for legibility); grey contours: the exact posterior $p(x_0\\mid\\mu)$; the true $x_0$ is the red star.", "name": "fig-ch12-trajectories"}}
j, ntraj = 3, 12
yt = y[j:j + 1].expand(ntraj, 2).contiguous()
post = sde.posterior(prior, A_t, sigma_y, yt)
xs = np.linspace(-4, 4, 161)
G = torch.tensor(np.stack(np.meshgrid(xs, xs), -1).reshape(-1, 2), dtype=dt)
dens = sde.posterior(prior, A_t, sigma_y, y[j:j + 1].expand(len(G), 2)).log_prob(G).exp().reshape(161, 161)
fig, axes = plt.subplots(2, len(families), figsize=(3.0 * len(families), 6.2), sharex=True, sharey=True)
xi_t = torch.randn(ntraj, 2, generator=torch.Generator().manual_seed(seed + 7), dtype=dt)
for col, (name, proc) in enumerate(families.items()):
    score = sde.exact_score(proc, post)
    _, b, v = proc.coefficients(t_start[name])
    xT = b * yt + math.sqrt(v) * xi_t
    for row, solver in enumerate(("sde", "ode")):
        traj = []
        cb = lambda i, t, x: traj.append(x.clone())
        if solver == "sde":
            sde.euler_maruyama(proc, score, xT, yt, steps=sde_steps, t_start=t_start[name], seed=seed + 7, callback=cb)
        else:
            pfode.integrate(sde.pf_ode_field(proc, score, yt), xT,
                            torch.linspace(t_start[name] / proc.T, 0, ode_steps + 1, dtype=dt), method="rk4", callback=cb)
        tr = torch.stack(traj).numpy()                                      # (steps+1, ntraj, 2)
        ax = axes[row, col]
        ax.contour(xs, xs, dens, levels=5, colors="0.6", linewidths=0.7)
        cols = plt.cm.viridis_r(np.linspace(0.05, 1, tr.shape[0]))
        for k in range(ntraj if solver == "ode" else ntraj // 2):
            ax.scatter(tr[:, k, 0], tr[:, k, 1], c=cols, s=1.2 if solver == "ode" else 0.6)
        ax.scatter(tr[-1, :, 0], tr[-1, :, 1], c="k", s=8, zorder=3)
        ax.plot(*y[j].numpy(), "kx", ms=9, mew=2)
        ax.plot(*x0[j].numpy(), "r*", ms=10)
        ax.set_xlim(-4, 4)
        ax.set_ylim(-4, 4)
        ax.set_aspect("equal")
        if row == 0:
            ax.set_title(name, fontsize=10)
        if col == 0:
            ax.set_ylabel(("reverse SDE" if solver == "sde" else "PF-ODE") + "\n$x_2$")
        if row == 1:
            ax.set_xlabel("$x_1$")
fig.tight_layout()
pfode.nb.savefig(fig, "ch12_trajectories")
plt.show()

# %% mystnb={"figure": {"caption": "Distribution over measurements and paths of the empirical Lipschitz constants: sensitivity to the start $x_T$ (left, log scale) and to the measurement $\\mu$ (right), reverse SDE against PF-ODE for each family. Boxes: quartiles; whiskers: 5th and 95th percentiles.", "name": "fig-ch12-lipschitz"}}
fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
names = list(families)
for ax, key, title in zip(axes, ("L_x", "L_mu"), ("start $x_T$", "measurement $\\mu$")):
    for k, solver in enumerate(("sde", "ode")):
        data = [results[(n, solver)][key] for n in names]
        pos = np.arange(len(names)) + (k - 0.5) * 0.35
        bp = ax.boxplot(data, positions=pos, widths=0.3, whis=(5, 95), showfliers=False, patch_artist=True)
        for patch in bp["boxes"]:
            patch.set_facecolor(f"C{k}")
            patch.set_alpha(0.6)
        ax.plot([], [], "s", color=f"C{k}", label="reverse SDE" if solver == "sde" else "PF-ODE")
    ax.set_xticks(np.arange(len(names)))
    ax.set_xticklabels(names, rotation=20, fontsize=8)
    ax.axhline(1, color="0.5", lw=0.8, ls="--")
    ax.set_title(f"sensitivity to the {title}")
    ax.set_ylabel("$\\|\\Delta\\,\\mathrm{out}\\| / \\|\\delta\\|$")
axes[0].set_yscale("log")
axes[0].legend(fontsize=8, loc="center right")
fig.tight_layout()
pfode.nb.savefig(fig, "ch12_lipschitz")
plt.show()
