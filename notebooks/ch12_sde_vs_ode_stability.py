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
num_check = 400                  # samples for the posterior-moment check
jvp_points = 8                   # points where the JVP instability is compared with finite differences
seed = 0

# %%
import math

import matplotlib.pyplot as plt
import numpy as np
import torch

import pfode
import pfode.nb
from pfode import sde

run = pfode.nb.setup(globals(), smoke=dict(   # smoke mode: caps and overrides
    num_meas=24, seeds=2, sde_steps=200, ode_steps=100, num_check=200, jvp_points=4))

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
# covariance of the exact posterior $p(x_0\mid y)$ (within Monte Carlo error and the small
# bias of starting from the $x_0$-free part of $p_T$).

# %%
y1 = y[:1].expand(num_check, 2).contiguous()
post1 = sde.posterior(prior, A_t, sigma_y, y[:1])
pm = post1.mean()[0]
pcov_true = (post1.log_weights.exp()[0, :, None, None]
             * (post1.covs + post1.means[0, :, :, None] * post1.means[0, :, None, :])).sum(0) - torch.outer(pm, pm)
psd = torch.sqrt(torch.diagonal(pcov_true))
# standard error of a sample variance from an exact posterior sample (the posterior may be bimodal)
ref = sde.Mixture(post1.means[0], post1.covs, post1.log_weights[0]).sample(50_000, gen)
se_var = ((ref - pm) ** 2).std(0) / math.sqrt(num_check)
xi = torch.randn(num_check, 2, generator=gen, dtype=dt)
for name in families:
    for solver in ("sde", "ode"):
        out = run(name, y1, xi, seed + 10, solver)
        err = ((out.mean(0) - pm).abs() / (psd / math.sqrt(num_check))).max()
        z_var = ((out.var(0) - psd ** 2).abs() / se_var).max()
        print(f"{name:16s} {solver}: |mean - posterior mean| / SE = {float(err):.2f}, "
              f"|var - posterior var| / SE = {float(z_var):.2f}, std ratio {(out.std(0) / psd).numpy().round(3)}")
        # threshold: statistics: posterior moments within 5 standard errors (Bonferroni over
        #   families x solvers x coordinates); the Euler-Maruyama bias at 400 steps (see the text)
        #   is part of what this allows
        assert err < 5, (name, solver, err)
        assert z_var < 5, (name, solver, z_var)

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
        rmse = float(((base - x0.repeat_interleave(seeds, 0)) ** 2).sum(1).mean().sqrt())
        results[(name, solver)] = dict(L_mu=L_mu, L_x=L_x, rmse=rmse)

print(f"{'family':16s} {'solver':6s} {'L_mu mean':>9s} {'L_mu q95':>8s} {'L_mu max':>8s} "
      f"{'L_xT mean':>9s} {'L_xT q95':>8s} {'L_xT max':>8s} {'RMSE':>6s}")
for (name, solver), r in results.items():
    print(f"{name:16s} {solver:6s} {r['L_mu'].mean():9.3f} {np.quantile(r['L_mu'], 0.95):8.3f} "
          f"{r['L_mu'].max():8.3f} {r['L_x'].mean():9.3f} {np.quantile(r['L_x'], 0.95):8.3f} "
          f"{r['L_x'].max():8.3f} {r['rmse']:6.3f}")

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
# Three comparisons, asserted as they come out in this problem:
#
# 1. start sensitivity: for every family the reverse SDE forgets its start far more than the
#    PF-ODE (mean $L_{x_T}$ of the SDE below that of the ODE);
# 2. the PF-ODE is not uniformly contracting: its largest $L_{x_T}$ exceeds 1 for some family (the
#    mode boundaries of Part I), while its mean may be below 1;
# 3. measurement sensitivity $L_\mu$: the medians of ODE and SDE are close (the posterior's own
#    sensitivity), but the PF-ODE of every family has the heavier upper tail (95th percentile,
#    asserted). Means are dominated by a few points near mode boundaries, for the SDEs too, and are
#    only printed, as is the ranking of the SDE families among themselves (it changes with the
#    sample size and the parameters).

# %%
for name in families:
    s, o = results[(name, "sde")], results[(name, "ode")]
    assert s["L_x"].mean() < o["L_x"].mean(), (name, s["L_x"].mean(), o["L_x"].mean())
ode_max = max(results[(n, "ode")]["L_x"].max() for n in families)
print(f"largest PF-ODE start sensitivity over families: {ode_max:.2f}")
assert ode_max > 1, "the PF-ODEs contract everywhere in this problem"
ratio_mu = {n: results[(n, "ode")]["L_mu"].mean() / results[(n, "sde")]["L_mu"].mean() for n in families}
print("mean L_mu, ODE / SDE, per family:", {k: round(float(v), 3) for k, v in ratio_mu.items()})
q95 = {n: np.quantile(results[(n, "ode")]["L_mu"], 0.95) / np.quantile(results[(n, "sde")]["L_mu"], 0.95)
       for n in families}
med = {n: np.median(results[(n, "ode")]["L_mu"]) / np.median(results[(n, "sde")]["L_mu"]) for n in families}
print("95th percentile of L_mu, ODE / SDE:", {k: round(float(v), 3) for k, v in q95.items()})
print("median of L_mu, ODE / SDE:", {k: round(float(v), 3) for k, v in med.items()})
# threshold: the claim (every PF-ODE has a heavier tail of mu-sensitivity than its SDE): ratio > 1
assert all(r > 1 for r in q95.values()), f"some PF-ODE has a lighter tail of mu-sensitivity than its SDE: {q95}"
d3 = results[("D3GM", "sde")]["L_mu"].mean()
others = {n: results[(n, "sde")]["L_mu"].mean() for n in families if n != "D3GM"}
print(f"D3GM SDE mean L_mu {d3:.3f}; other SDEs: " + ", ".join(f"{k} {v:.3f}" for k, v in others.items()))

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
axes[0].legend(fontsize=8)
fig.tight_layout()
pfode.nb.savefig(fig, "ch12_lipschitz")
plt.show()
