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
# # Controlled score errors: the Gaussian case in closed form
#
# The five families of {ref}`ch-measure-preserving` restore 8×8 digits under 4× super-resolution
# with a Gaussian prior, so that every posterior, every marginal and, for an affine score error,
# the law of the Euler–Maruyama output are Gaussian and known exactly
# ({ref}`ch-score-error`). Four errors are injected: the score of a wrong component mixed in with
# weight ε, a noise-prediction error of size δ (a score error growing like $1/\sqrt{v_t}$ near
# $t = 0$), a score of the wrong magnitude $(1+\eta)s^*$, and a fixed random smooth field of size
# $C$ (not affine: simulated, and bounded pathwise). For each family, error and number of steps
# the notebook computes the exact KL divergence and 2-Wasserstein distance of the output law to the
# exact posterior and the expected restoration error, and checks them against the closed forms of
# the chapter. Runs in about a minute on two cores; every size is a parameter.

# %% tags=["parameters"]
num_train = 400                   # digits of the prior's classes used to fit the Gaussian prior
num_test = 24                     # held-out test digits (the independent unit)
prior_classes = [0, 1, 2, 3, 4]
shrink = 1e-3                     # prior covariance + shrink * I
sigma_y = 0.02                    # measurement noise (4x super-resolution by 2x2 block averages)
lam = 0.1                         # OU families: lambda (D3GM: tau * lambda)
tau = 1.5
g_bridge = 0.3
eps_bridge = 0.01
steps_grid = [20, 40, 80, 160, 320, 640]
wrong_weights = [0.01, 0.03, 0.1]   # (b) weight on the wrong component
eps_errors = [0.01, 0.03, 0.1]      # (c) size of the noise-prediction error
scales = [0.05, 0.2]                # (d) relative error of the score's magnitude
field_sizes = [0.3, 1.0, 3.0]       # (a) bound C of the smooth field
field_rank = 4                      # images the smooth field points along
field_bandwidth = 1.0
field_paths = 8                     # paths per test image for the smooth field
field_steps = 80
mc_paths = 4000                     # Monte Carlo check of the exact law
delta = 0.05                        # TDD: probability level
seed = 0

# %% tags=["hide-input"]
import math
import time

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from IPython.display import display
from scipy.ndimage import gaussian_filter
from scipy.stats import ncx2
from sklearn.datasets import load_digits

import pfode
import pfode.nb
import pfode.stats
from pfode import sde

run = pfode.nb.setup(globals(), smoke=dict(
    num_test=6, steps_grid=lambda v: v[:4], mc_paths=1000, field_paths=2, field_sizes=lambda v: v[1:2]))
clock = time.perf_counter()
DT = torch.float64
rng = run.rng
digits = load_digits()
X, lab = digits.data / 16.0, digits.target
idx = rng.permutation(np.flatnonzero(np.isin(lab, prior_classes)))
train, test = X[idx[:num_train]], X[idx[num_train:num_train + num_test]]
m0, C0 = train.mean(0), np.cov(train.T) + shrink * np.eye(64)
n = 64
A = np.zeros((16, n))                                      # 2x2 block average, 8x8 -> 4x4
up = np.zeros((n, 16))                                     # nearest-neighbour upsampling
for i in range(8):
    for j in range(8):
        A[4 * (i // 2) + j // 2, 8 * i + j] = 0.25
        up[8 * i + j, 4 * (i // 2) + j // 2] = 1.0
y = test @ A.T + sigma_y * rng.standard_normal((num_test, 16))
prior = sde.Mixture(torch.tensor(m0[None]), torch.tensor(C0[None]))
post_mix = sde.posterior(prior, torch.tensor(A), sigma_y, torch.tensor(y))
post = sde.GaussianLaw(post_mix.means[:, 0], post_mix.covs[0])      # one Gaussian posterior per image
c, U = torch.linalg.eigh(post.cov)
mu = torch.tensor(y @ up.T)                                # the measurement in image space
x0 = torch.tensor(test)
fams = sde.families(lam=lam, tau=tau, g_bridge=g_bridge)
t0 = {name: p.t_start(eps_bridge) for name, p in fams.items()}
print(f"{num_test} test digits; posterior variances from {float(c[0]):.2g} to {float(c[-1]):.3g} "
      f"(prior: {np.linalg.eigvalsh(C0)[0]:.2g} to {np.linalg.eigvalsh(C0)[-1]:.3g})")

# %% [markdown]
# ## The four errors
#
# (b) The **wrong component**: with weight ε on a Gaussian component whose mean is off by $d$
# (here the mean digit of the classes 5–9 minus the prior mean), the score is
# $(1-\varepsilon)s^*_t + \varepsilon \tilde s_t$, an error $e_t = \varepsilon a_t V_t^{-1} d$ that
# grows towards $t = 0$ as $V_t$ shrinks to the posterior covariance. (c) A **noise-prediction
# error**: a network that predicts the noise $\xi$ of $x_t = a_t x_0 + b_t\mu + \sqrt{v_t}\xi$ with an
# error $\delta\rho$ ($\rho$ a fixed unit image) returns the score error $-\delta\rho/\sqrt{v_t}$.
# (d) A **scale error** $(1+\eta)s^*$. (a) A **smooth field** $e(x) = C R\sin(Wx+\varphi)/\sqrt q$,
# bounded by $C$ (`sde.smooth_field`), pointing along $q$ smooth random images.

# %%
g = np.random.default_rng(seed + 1)
d_wrong = torch.tensor(X[lab >= 5].mean(0) - m0)
rho = torch.tensor(gaussian_filter(g.standard_normal((8, 8)), 1.0).ravel())
rho = rho / rho.norm()
basis = torch.linalg.qr(torch.tensor(np.stack([gaussian_filter(g.standard_normal((8, 8)), 1.0).ravel()
                                               for _ in range(field_rank)], 1))).Q


def wrong_component(p, weight):
    def shift(t):
        a, _, v = p.coefficients(t)
        return weight * (U * (a / (a * a * c + v))) @ (U.T @ d_wrong)
    return sde.ScoreError(shift)


def eps_error(p, size):
    return sde.ScoreError(lambda t: -size * rho / math.sqrt(p.coefficients(t)[2]))


def scale_error(eta):
    return sde.ScoreError(scale=lambda t: eta)


errors = {("clean", 0.0): lambda p: None}
errors.update({("wrong component", w): (lambda p, w=w: wrong_component(p, w)) for w in wrong_weights})
errors.update({("noise prediction", s): (lambda p, s=s: eps_error(p, s)) for s in eps_errors})
errors.update({("scale", e): (lambda p, e=e: scale_error(e)) for e in scales})


def metrics(law):
    """Per image: KL(law || posterior), W2 to the posterior, expected MSE against the true image."""
    kl = torch.distributions.kl_divergence(law.distribution(), post.distribution())
    w2 = sde.gaussian_w2(law, post)
    mse = (((law.mean - x0) ** 2).sum(1) + torch.trace(law.cov)) / n
    return kl.numpy(), w2.numpy(), mse.numpy()


# %% [markdown]
# ## Check: the exact law against the sampler
#
# `sde.gaussian_em_law` propagates the mean and covariance of the Euler–Maruyama recursion
# exactly ({eq}`eq-se-recursion`). Against `sde.euler_maruyama` run on `mc_paths` paths of one test
# image, with the wrong-component error at its largest weight: every coordinate's mean and variance
# must agree within Monte Carlo error.

# %%
for name in ("SGM", "D3GM"):
    p = fams[name]
    err = wrong_component(p, wrong_weights[-1])
    law = sde.gaussian_em_law(p, post.mean[:1], post.cov, mu[:1], error=err, steps=80, t_start=t0[name])
    score = sde.shared_cov_score(p, sde.Mixture(post.mean[:1], post.cov[None]))
    xT = p.terminal(mu[0], mc_paths, torch.Generator().manual_seed(seed + 3), t=t0[name])
    out = sde.euler_maruyama(p, err(score), xT, mu[0], steps=80, t_start=t0[name], seed=seed + 4)
    sd = law.cov.diagonal().sqrt()
    z_mean = ((out.mean(0) - law.mean[0]) / (sd / math.sqrt(mc_paths))).abs().max()
    z_var = ((out.var(0) - law.cov.diagonal()) / (law.cov.diagonal() * math.sqrt(2 / (mc_paths - 1)))).abs().max()
    print(f"{name}: largest |z| over the 64 coordinates: mean {float(z_mean):.2f}, variance {float(z_var):.2f}")
    # threshold: 64 coordinates, two-sided normal tail: P(max |z| > 4.5) < 64 * 6.8e-6 = 4.4e-4
    assert float(z_mean) < 4.5 and float(z_var) < 4.5, (name, float(z_mean), float(z_var))

# %% [markdown]
# ## The study: every family, error and step count
#
# One exact law per family, error and number of steps (and the continuous limit, from the moment
# equations {eq}`eq-se-moments`). The noise-prediction error is singular at $t = 0$ for the
# continuous solver; its limit is the clean continuous law plus the closed-form bias
# $\delta\,\Gamma^\varepsilon(c_j)\,\tilde\rho_j$ of {eq}`eq-se-gain-eps` in each eigen-direction.

# %%
def nu_end(p, t):
    a, _, v = p.coefficients(t)
    return v / (a * a)


def eps_gain(p, t):
    """Γ^ε(c_j) = 2 √c_j arctan(√(ν_T / c_j)), [book: eq-se-gain-eps]."""
    return 2 * c.sqrt() * torch.atan(torch.sqrt(nu_end(p, t) / c))


rows = []
for fname, p in fams.items():
    clean_limit = sde.gaussian_reverse_law(p, post.mean, post.cov, mu, t_start=t0[fname])
    for (kind, size), make in errors.items():
        err = make(p)
        for steps in steps_grid + [math.inf]:
            if math.isinf(steps):
                if kind == "noise prediction":
                    bias = (-size * (U.T @ rho) * eps_gain(p, t0[fname])) @ U.T
                    law = sde.GaussianLaw(clean_limit.mean + bias, clean_limit.cov)
                else:
                    law = sde.gaussian_reverse_law(p, post.mean, post.cov, mu, error=err, t_start=t0[fname])
            else:
                law = sde.gaussian_em_law(p, post.mean, post.cov, mu, error=err, steps=steps, t_start=t0[fname])
            kl, w2, mse = metrics(law)
            for i in range(num_test):
                rows.append(dict(family=fname, error=kind, size=size, steps=steps, image=i,
                                 kl=kl[i], w2=w2[i], mse=mse[i]))
study = pd.DataFrame(rows)
summary = (study.groupby(["error", "size", "family", "steps"], sort=False)
           .agg(kl=("kl", "mean"), w2=("w2", "mean"), psnr=("mse", lambda m: float(np.mean(-10 * np.log10(m)))))
           .reset_index())
print(f"{len(study)} exact laws x images in {time.perf_counter() - clock:.1f} s")

# %% [markdown]
# ## The continuous limit does not depend on the family
#
# {prf:ref}`prop-se-invariance`: in the continuous limit, (b) every family samples the shifted law
# $\mathcal N(m + \varepsilon d, C)$, with $\mathrm{KL} = \tfrac12\varepsilon^2 d^\top C^{-1} d$;
# (c) the noise-prediction error moves the mean by $\delta\,\Gamma^\varepsilon(c_j)$ per
# eigen-direction, $\Gamma^\varepsilon \to \pi\sqrt{c_j}$, so $\mathrm{KL} \to \tfrac12\pi^2\delta^2$;
# (d) the scale error leaves the mean and divides the covariance by $1 + 2\eta$, so
# $\mathrm{KL} \to \tfrac n2[(1+2\eta)^{-1} - 1 + \log(1+2\eta)]$. The family enters only through
# the terminal inverse signal-to-noise ratio $\nu_T = v_T/a_T^2$ and the start at the $x_0$-free
# terminal law, both corrections of relative order $c/\nu_T$ or $a_T^2$.

# %%
Cinv = U @ torch.diag(1 / c) @ U.T
closed = {("clean", 0.0): 0.0}
closed.update({("wrong component", w): 0.5 * w * w * float(d_wrong @ Cinv @ d_wrong) for w in wrong_weights})
closed.update({("noise prediction", s): 0.5 * math.pi ** 2 * s * s for s in eps_errors})
closed.update({("scale", e): n / 2 * (1 / (1 + 2 * e) - 1 + math.log(1 + 2 * e)) for e in scales})
limit = summary[np.isinf(summary.steps)].set_index(["error", "size", "family"]).kl.unstack("family")
limit["closed form (nu_T -> inf)"] = [closed[k] for k in limit.index]
display(limit.style.format("{:.4g}").format_index("{:g}", level=1))
nuT = {f: nu_end(p, t0[f]) for f, p in fams.items()}
cmax = float(c[-1])
# the corrections of the proposition, per family: the noise-prediction gain falls short of pi sqrt(c)
# by (2/pi) sqrt(c/nu_T) at most (relative), twice that in KL; the start displacement is c/(c + nu_T)
tol = {f: 4 / math.pi * math.sqrt(cmax / nu) + 2 * cmax / (cmax + nu) + 1e-3 for f, nu in nuT.items()}
print("nu_T per family:", {f: round(v, 1) for f, v in nuT.items()})
print("tolerance from the corrections:", {f: round(v, 3) for f, v in tol.items()})
for key, cf in closed.items():
    if cf == 0:
        continue
    rel = (limit.loc[key, list(fams)] / cf - 1).abs()
    nonbridge = rel.drop("Bridge (I2SB)")
    print(f"{key}: largest relative gap to the closed form {nonbridge.max():.2g} (OU/VP families), "
          f"{rel['Bridge (I2SB)']:.2g} (bridge, nu_T = {nuT['Bridge (I2SB)']:.3g})")
    # threshold: the corrections above (finite nu_T and the x0-free start) plus 1e-3 for the
    #   solver, per family
    assert all(nonbridge[f] < tol[f] for f in nonbridge.index), (key, nonbridge, tol)

# %% [markdown]
# The closed form of the noise-prediction gain is checked twice: against the quadrature of
# {eq}`eq-se-gain` with the weight $1/\sqrt{v_t}$ (`sde.error_gain`), for every family, and against
# the sampler's own law: for the OU/VP families the Euler–Maruyama bias converges to it at order
# one, and Aitken's $\Delta^2$ extrapolation of the last three step counts removes the leading
# term. The bridge's sampler is not yet in its asymptotic regime at these step counts (its drift
# $1/(T-t)$ is 100 at the start), so it is checked by quadrature only.

# %%
for fname, p in fams.items():
    quadr = sde.error_gain(p, c.numpy(), t_start=t0[fname], weight=lambda t, p=p: 1 / math.sqrt(max(p.coefficients(t)[2], 1e-300)))
    rel = float(np.abs(quadr / eps_gain(p, t0[fname]).numpy() - 1).max())
    print(f"{fname}: closed-form noise-prediction gain against quadrature: largest relative gap {rel:.1e}")
    # threshold: quadrature of an integrable 1/sqrt(t) endpoint singularity to relative 1e-10; a
    #   margin of 1e-6 for quad's error estimate there
    assert rel < 1e-6, (fname, rel)
for fname, p in fams.items():
    if fname == "Bridge (I2SB)":
        continue
    ex = (-eps_errors[-1] * (U.T @ rho) * eps_gain(p, t0[fname]))
    got = []
    for steps in steps_grid[-3:]:
        law_e = sde.gaussian_em_law(p, post.mean[:1], post.cov, mu[:1], error=eps_error(p, eps_errors[-1]),
                                    steps=steps, t_start=t0[fname])
        law_0 = sde.gaussian_em_law(p, post.mean[:1], post.cov, mu[:1], steps=steps, t_start=t0[fname])
        got.append(float(((law_e.mean - law_0.mean)[0] @ U) @ ex / (ex @ ex)))
    d1, d2 = got[1] - got[0], got[2] - got[1]
    order = math.log2(d1 / d2)
    aitken = got[2] - d2 * d2 / (d2 - d1)
    print(f"{fname}: EM bias / closed form at {steps_grid[-3:]} steps: {[round(v, 4) for v in got]}; "
          f"observed order {order:.2f}; Aitken limit {aitken:.4f}")
    # threshold: Aitken's extrapolation leaves a remainder of the next order, below 5 % of the bias
    #   at these step counts (the smoke grid's coarsest counts included)
    assert abs(aitken - 1) < 0.05, (fname, got, aitken)

# %% mystnb={"figure": {"caption": "KL divergence of the output law to the exact posterior (mean over test images) against the number of Euler–Maruyama steps, per family; dashed: the family-independent continuous limit (the proposition on imperfect-score limits). Left to right: exact score, the wrong component (middle weight), the noise-prediction error (middle size), the scale error (smallest).", "name": "fig-se-steps"}}
panels = [("clean", 0.0), ("wrong component", wrong_weights[len(wrong_weights) // 2]),
          ("noise prediction", eps_errors[len(eps_errors) // 2]), ("scale", scales[0])]
fig, axes = plt.subplots(1, 4, figsize=(13, 3.4), sharey=False)
for ax, key in zip(axes, panels):
    sub = summary[(summary.error == key[0]) & (summary["size"] == key[1]) & np.isfinite(summary.steps)]
    for fname in fams:
        s_ = sub[sub.family == fname]
        ax.loglog(s_.steps, s_.kl, "o-", ms=3, label=fname)
    if closed[key] > 0:
        ax.axhline(closed[key], color="k", ls="--", lw=1, label="continuous limit")
    ax.set_xlabel("Euler–Maruyama steps")
    ax.set_title(key[0] if key[1] == 0 else f"{key[0]}, {key[1]:g}", fontsize=9)
    pfode.nb.log_axes(ax)
    ax.set_xticks(steps_grid[::2] + [steps_grid[-1]] if len(steps_grid) % 2 == 0 else steps_grid[::2])
    ax.set_xticklabels([f"{v:g}" for v in ax.get_xticks()])
    ax.xaxis.set_minor_locator(plt.NullLocator())
axes[0].set_ylabel("KL(output ‖ posterior)")
axes[-1].legend(fontsize=7, frameon=False)
fig.tight_layout()
pfode.nb.savefig(fig, "ch16_steps")
plt.show()

# %% [markdown]
# ## The gain of a bounded error depends on the units
#
# A score error bounded by $C$ in the score's own units moves the output by at most
# $C\,\Gamma(c_{\max})$ ({prf:ref}`prop-se-pathwise`), with the gain $\Gamma$ of {eq}`eq-se-gain`.
# Unlike $\Gamma^\varepsilon$ it depends on the family: through $a_t$ as a function of $\nu$, i.e.
# on the scale $\kappa$ of the process's noise.

# %%
cgrid = np.geomspace(float(c[0]), float(c[-1]), 30)
gains = {f: sde.error_gain(p, cgrid, t_start=t0[f]) for f, p in fams.items()}
eps_gains = {f: eps_gain(p, t0[f]).numpy() for f, p in fams.items()}
gtab = pd.DataFrame({f: {"Gamma(c_max), bounded error": gains[f][-1],
                         "Gamma^eps(c_max), noise-prediction error": float(eps_gains[f][-1]),
                         "pi sqrt(c_max)": math.pi * math.sqrt(float(c[-1]))} for f in fams}).T
display(gtab.style.format("{:.3g}"))
# the propagator c a_t / V_t of prop-se-propagator along the top eigen-direction: does it exceed 1?
phi_max = {}
for f, p in fams.items():
    ts_ = np.linspace(0, t0[f], 4001)[1:]
    phi = [cmax * p.coefficients(t)[0] / (p.coefficients(t)[0] ** 2 * cmax + p.coefficients(t)[2]) for t in ts_]
    phi_max[f] = (max(phi), float(ts_[int(np.argmax(phi))]))
print("largest propagator Phi(0, t) along the top direction (value, t):",
      {f: (round(v, 2), round(t, 2)) for f, (v, t) in phi_max.items()})
# D3GM(lam, tau) is the SDE of IR-SDE with lam' = tau lam: the same drift and diffusion
same = sde.error_gain(sde.IRSDE(fams["D3GM"].schedule, lam=tau * lam), cmax, t_start=t0["D3GM"])
print(f"Gamma(c_max): D3GM(lam={lam}, tau={tau}) {gtab.loc['D3GM', 'Gamma(c_max), bounded error']:.4f}, "
      f"IR-SDE(lam={tau * lam:g}) {same:.4f}")
# threshold: the same SDE, so the same integral: quadrature tolerance (relative 1e-10)
assert abs(same / gtab.loc["D3GM", "Gamma(c_max), bounded error"] - 1) < 1e-8

# %% mystnb={"figure": {"caption": "Gain of a score error per eigen-direction of posterior variance $c$. Left: a bounded error ($\\|e\\| \\le 1$ in score units), the gain $\\Gamma(c)$ of the pathwise bound, family dependent. Right: a noise-prediction error of unit size, $\\Gamma^\\varepsilon(c) = 2\\sqrt c\\arctan\\sqrt{\\nu_T/c}$, the same for every family up to the finite terminal $\\nu_T$ (the bridge, started at $T - \\varepsilon$); dotted: $\\pi\\sqrt c$.", "name": "fig-se-gain"}}
fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
for f in fams:
    axes[0].loglog(cgrid, gains[f], label=f)
    axes[1].loglog(c.numpy(), eps_gains[f], label=f)
axes[1].loglog(cgrid, np.pi * np.sqrt(cgrid), "k:", label=r"$\pi\sqrt{c}$")
axes[0].set_ylabel(r"$\Gamma(c)$ (bounded score error)")
axes[1].set_ylabel(r"$\Gamma^\varepsilon(c)$ (noise-prediction error)")
for ax in axes:
    ax.set_xlabel("posterior variance $c$ of the eigen-direction")
axes[1].legend(fontsize=7, frameon=False)
for ax in axes:
    pfode.nb.log_axes(ax)
fig.tight_layout()
pfode.nb.savefig(fig, "ch16_gain")
plt.show()

# %% [markdown]
# ## A non-affine error: the smooth field, pathwise
#
# The smooth field is not affine, so its law has no closed form. {prf:ref}`prop-se-pathwise` bounds
# it on every path: run with and without the error on the same start and the same Brownian
# increments, the two outputs differ by at most $C\,\Gamma_h(c_{\max})$, the discrete gain (the
# displacement of the mean under a unit constant error along the top eigenvector, from
# `sde.gaussian_em_law`).

# %%
def min_factor(p, t_start, steps):
    """min over steps and eigen-directions of 1 + h A_t (A = k - g^2/V), the factor of eq-se-recursion."""
    ts_ = np.linspace(t_start, 0, steps + 1)
    h = ts_[0] - ts_[1]
    out = []
    for t in ts_[:-1]:
        a_, _, v_ = p.coefficients(t)
        A_ = p.drift_coefficients(t)[0] - p.diffusion(t) ** 2 / (a_ * a_ * c + v_)
        out.append(float((1 + h * A_).min()))
    return min(out)


factors = {(f, st): min_factor(p, t0[f], st) for f, p in fams.items() for st in (steps_grid[0], field_steps)}
print("min (1 + h A) over steps and directions:", {k: round(v, 2) for k, v in factors.items()})
# the discrete bound needs every factor positive at the steps used
assert all(factors[(f, field_steps)] > 0 for f in fams), factors
B = num_test * field_paths
means_rep = post.mean.repeat_interleave(field_paths, 0)
mu_rep = mu.repeat_interleave(field_paths, 0)
x0_rep = x0.repeat_interleave(field_paths, 0)
top = U[:, -1]
zero = torch.zeros(1, n, dtype=DT)
field_rows = []
for fname, p in fams.items():
    unit = sde.gaussian_em_law(p, zero, post.cov, zero, error=sde.ScoreError(lambda t: top), steps=field_steps, t_start=t0[fname])
    base = sde.gaussian_em_law(p, zero, post.cov, zero, steps=field_steps, t_start=t0[fname])
    gain_h = float((unit.mean - base.mean)[0] @ top)
    score = sde.shared_cov_score(p, sde.Mixture(means_rep[:, None, :], post.cov[None]))
    xT = p.terminal(mu_rep, B, torch.Generator().manual_seed(seed + 7), t=t0[fname])
    kw = dict(steps=field_steps, t_start=t0[fname], seed=seed + 8)
    clean = sde.euler_maruyama(p, score, xT, mu_rep, **kw)
    mse0 = ((clean - x0_rep) ** 2).mean(1).reshape(num_test, field_paths).mean(1)
    for size in field_sizes:
        err = sde.ScoreError(field=sde.smooth_field(basis, size, bandwidth=field_bandwidth, seed=seed + 9))
        out = sde.euler_maruyama(p, err(score), xT, mu_rep, **kw)
        dist = (out - clean).norm(dim=1)
        # threshold: the inequality of prop-se-pathwise, exact up to round-off (relative 1e-9)
        assert float(dist.max()) <= size * gain_h * (1 + 1e-9), (fname, size, float(dist.max()), size * gain_h)
        mse = ((out - x0_rep) ** 2).mean(1).reshape(num_test, field_paths).mean(1)
        loss = pfode.stats.bootstrap(np.mean, (10 * torch.log10(mse / mse0)).numpy())
        field_rows.append(dict(family=fname, C=size, bound=size * gain_h, max_displacement=float(dist.max()),
                               mean_displacement=float(dist.mean()), psnr_loss=loss))
field_tab = pd.DataFrame(field_rows)
display(field_tab.assign(psnr_loss=field_tab.psnr_loss.map(lambda iv: f"{iv:.2f}"))
        .style.format({"C": "{:g}", "bound": "{:.3g}", "max_displacement": "{:.3g}", "mean_displacement": "{:.3g}"}))
print("psnr_loss: PSNR of the clean run minus PSNR with the field (dB), mean over test images [95 % CI]")

# %% [markdown]
# ## The TDD bound with its $C$ term
#
# The transcription of D³GM's Proposition 2 (MATH.md §6), read in $d$ dimensions for D³GM, is
# $\mathrm{LB}(C) = (\|x_0-\mu\|^2 - d\kappa^2)e^{-2\bar\theta_T} + d\kappa^2 +
# \sigma_{\max}^2(C\sigma_{\max}^2 + d + 2\sqrt{dL} + 2L)$, $\kappa = \tau\lambda$,
# $\sigma_{\max} = \max_t \tau\sigma_t$, $L = \log(1/\delta)$. It is compared with the exact
# $\delta$-quantile of the forward TDD $\|x_0 - x_T\|^2$ ({prf:ref}`prop-ch11-tdd`) and with sure
# brackets of the $\delta$-quantile of the reverse discrepancy $\|\hat x_0 - x_0\|^2$ under a score
# error of size $C$: by {prf:ref}`prop-se-pathwise`, $\|\hat x_0 - x_0\| \in
# [\|x^*_0 - x_0\| - C\Gamma,\ \|x^*_0 - x_0\| + C\Gamma]$, with the exact-score output $x^*_0$ of
# known Gaussian law.

# %%
p = fams["D3GM"]
sched = p.schedule
tgrid = np.linspace(0, p.T, 2001)
sig_max = max(p.diffusion(t) for t in tgrid)
kappa2 = p.attractor_var
e2 = math.exp(-2 * sched.theta_bar(p.T))
L = math.log(1 / delta)
resid = ((x0 - mu) ** 2).sum(1).numpy()
a_T, _, v_T = p.coefficients(p.T)
fwd_q = v_T * ncx2.ppf(delta, n, ((1 - a_T) ** 2 * resid) / v_T)
law80 = sde.gaussian_em_law(p, post.mean, post.cov, mu, steps=field_steps, t_start=t0["D3GM"])
draws = law80.distribution().sample((20000,)) if not run.smoke else law80.distribution().sample((2000,))
rev_q = np.quantile(((draws - x0) ** 2).sum(-1).numpy(), delta, axis=0)       # exact-score output, per image
gain_top = float(field_tab[(field_tab.family == "D3GM")].bound.iloc[0] / field_sizes[0])
tdd_rows = []
for size in [0.0] + field_sizes:
    lb = (resid - n * kappa2) * e2 + n * kappa2 + sig_max ** 2 * (size * sig_max ** 2 + n + 2 * math.sqrt(n * L) + 2 * L)
    hi = (np.sqrt(rev_q) + size * gain_top) ** 2
    tdd_rows.append(dict(C=size, bound=float(np.median(lb)), forward_quantile=float(np.median(fwd_q)),
                         reverse_quantile_upper=float(np.median(hi)),
                         images_bound_above_forward=int((lb > fwd_q).sum()),
                         images_bound_above_reverse=int((lb > hi).sum())))
tdd = pd.DataFrame(tdd_rows)
display(tdd.style.format({"C": "{:g}", "bound": "{:.3g}", "forward_quantile": "{:.3g}", "reverse_quantile_upper": "{:.3g}"}))
print(f"sigma_max^2 = {sig_max ** 2:.3g}, d kappa^2 = {n * kappa2:.3g}; medians over {num_test} images")

# %% [markdown]
# ## The claims, asserted
#
# (1) With exact scores the families differ only by discretisation: at 20 steps the KL to the
# posterior spans orders of magnitude between families, and every family's KL falls at least
# fourfold from 20 to 80 steps. (2) With an error, the KL of every OU/VP family converges to the
# same continuous limit (checked above within 5 %), so at the largest step count the families'
# KLs agree within 10 % for every error. (3) The smooth field's displacement never exceeds its
# bound, and its PSNR loss grows with $C$ for every family.

# %%
fin = summary[np.isfinite(summary.steps)]
kl20 = fin[(fin.error == "clean") & (fin.steps == steps_grid[0])].set_index("family").kl
kl80 = fin[(fin.error == "clean") & (fin.steps == min(80, steps_grid[-1]))].set_index("family").kl
print("KL at 20 steps, exact score:", kl20.map(lambda v: f"{v:.3g}").to_dict())
print("KL at 80 steps, exact score:", kl80.map(lambda v: f"{v:.3g}").to_dict())
# threshold: weak order one: four times the steps divides the O(h) error about fourfold; at least
#   fourfold here because the error at 20 steps also has higher-order terms of the same sign
assert (kl20 / kl80 >= 4).all(), (kl20 / kl80)
big = fin[(fin.steps == steps_grid[-1]) & (fin.family != "Bridge (I2SB)")]
kl_clean = big[big.error == "clean"].set_index("family").kl
checked = 0
for (kind, size), sub in big.groupby(["error", "size"]):
    if kind == "clean":
        continue
    ou = sub.set_index("family").kl
    spread = float(ou.max() / ou.min() - 1)
    resolved = steps_grid[-1] >= 640 and bool((kl_clean / ou).max() < 0.05)
    print(f"{kind} {size:g}: KL at {steps_grid[-1]} steps, OU/VP families within {100 * spread:.1f} % "
          f"(discretisation KL / error KL at most {float((kl_clean / ou).max()):.2g})")
    if resolved:
        checked += 1
        # threshold: the 5 % limit agreement above, plus the discretisation: the clean KL, required
        #   here below 5 % of the error's KL, and the O(h) lag of the error's own displacement,
        #   at 640 steps at most 0.7 % (the Aitken check: 1 - 0.9928), so 1.5 % in KL
        assert spread < 0.10, (kind, size, sub)
assert checked > 0 or steps_grid[-1] < 640, "no error size is resolved above the discretisation error"
for fname, sub in field_tab.groupby("family"):
    per_c = (sub.mean_displacement / sub.C).to_numpy()
    print(f"{fname}: mean displacement / C = {np.round(per_c, 4).tolist()}; largest displacement / bound "
          f"{float((sub.max_displacement / sub.bound).max()):.3f}")
    # threshold: first-order response: the displacement is at most 0.09 against the field's length
    #   scale of 1 (its bandwidth), so the field along the displaced path changes by under 10 % and
    #   the displacement per unit C stays within 10 %
    assert per_c.max() / per_c.min() - 1 < 0.10, (fname, per_c)

# %% [markdown]
# The numbers quoted on the chapter page, checked against this run (at the default parameters).

# %%
ratio = field_tab.max_displacement / field_tab.bound
prose = {
    "KL at 20 steps": ((f"{kl20['SGM']:.0f}", f"{kl20['Bridge (I2SB)']:.1f}", f"{kl20['D3GM']:.3f}", f"{kl20['IR-SDE']:.3f}"),
                       ("355", "25.7", "0.124", "0.127")),
    "KL at 80 steps": ((f"{kl80['SGM']:.4f}", f"{kl80['Bridge (I2SB)']:.2f}", f"{kl80['D3GM']:.4f}", f"{kl80['IR-SDE']:.4f}"),
                       ("0.0224", "2.19", "0.0058", "0.0071")),
    "KL at 80 steps, OU range": ((f"{kl80[['IR-SDE', 'Coef.-decoupled', 'D3GM']].min():.4f}",
                                 f"{kl80[['IR-SDE', 'Coef.-decoupled', 'D3GM']].max():.4f}"), ("0.0058", "0.0087")),
    "propagator max": (tuple(f"{phi_max[f][0]:.2f}" for f in ("SGM", "IR-SDE", "Coef.-decoupled", "Bridge (I2SB)", "D3GM"))
                       + (f"{cmax:.3f}",), ("1.00", "2.68", "2.97", "3.01", "1.83", "0.277")),
    "nu_T": (tuple(f"{nuT[f]:.0f}" for f in ("IR-SDE", "Coef.-decoupled", "D3GM", "SGM")) + (f"{nuT['Bridge (I2SB)']:.1f}",),
             ("100", "137", "225", "9999", "8.9")),
    "factors at 20 steps": ((f"{factors[('SGM', steps_grid[0])]:.2f}",
                             f"{min(factors[(f, steps_grid[0])] for f in ('IR-SDE', 'Coef.-decoupled', 'D3GM')):.2f}"),
                            ("-1.13", "0.39")),
    "decoupled vs IR at 20": ((f"{kl20['Coef.-decoupled']:.3f}", f"{kl20['IR-SDE']:.3f}"), ("0.150", "0.127")),
    "limit wrong 0.1": (f"{closed[('wrong component', 0.1)]:.3f}", "0.597"),
    "limit scale 0.2": (f"{closed[('scale', 0.2)]:.3f}", "1.624"),
    "gain bounded": (tuple(f"{gtab.loc[f, 'Gamma(c_max), bounded error']:.3f}" for f in ("SGM", "IR-SDE", "Coef.-decoupled", "Bridge (I2SB)", "D3GM")),
                     ("0.813", "0.142", "0.134", "0.147", "0.205")),
    "gain eps": ((f"{gtab['Gamma^eps(c_max), noise-prediction error'].min():.2f}", f"{gtab['Gamma^eps(c_max), noise-prediction error'].max():.2f}",
                  f"{math.pi * math.sqrt(float(c[-1])):.2f}"), ("1.47", "1.65", "1.65")),
    "field ratio": ((f"{ratio.min():.3f}", f"{ratio.max():.3f}"), ("0.037", "0.170")),
    "tdd": ((f"{tdd.bound.iloc[0]:.1f}", f"{tdd.forward_quantile.iloc[0]:.2f}", f"{tdd.reverse_quantile_upper.iloc[-1]:.2f}",
             f"{sig_max ** 2:.3f}"), ("41.6", "3.92", "3.06", "0.411")),
}
if not run.smoke and not run.injected:
    print(f"{pfode.nb.check_quoted(prose)} numbers of the chapter's prose checked against the run")
print(f"total elapsed {time.perf_counter() - clock:.1f} s")
