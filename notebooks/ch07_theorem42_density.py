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
# # Figure 7.1: mixtures of Gaussian neighbours approximate any density, and get sparser
#
# Three claims of Chapter 7, each checked against an independent truth:
#
# 1. on a finite training set, the exact minimiser of the flow-matching loss is the velocity
#    field of the training points themselves (a Gaussian mixture with $s \to 0$);
# 2. mixtures of Gaussian neighbours built from $m$ samples with a bandwidth $s_m \to 0$ converge
#    to the sampled density (Theorem 4.2): the Wasserstein-1 and Lévy distances fall with $m$;
# 3. the smaller $s$, the sparser $p_G$ and the larger $\bar\lambda_G$: in one dimension
#    $\bar\lambda_G(z) = G'(z) = \varphi(z)/p_G(G(z))$ is known in closed form.

# %% tags=["parameters"]
seed = 0
# 1. the empirical minimiser (two dimensions)
means = [[-2.0, -1.0], [2.0, -1.0], [0.0, 2.0]]   # training points are drawn from this mixture
stds = 0.2
num_train = 8
small_stds = [1e-1, 1e-2, 1e-3]                   # mixtures of the training points with these s
check_times = [0.05, 0.2, 0.5, 1.0]
num_pairs = 200000                                # Monte Carlo pairs (x0, eps, t) for the loss
blurred_stds = [0.05, 0.3]                        # fields of blurred training sets, for comparison
# 2. density (one dimension): p = mixture of two Beta densities on [-1, 1]
beta_weights = [0.6, 0.4]
beta_a = [2.0, 6.0]
beta_b = [5.0, 2.0]
m_values = [10, 30, 100, 300, 1000, 3000, 10000]
bandwidth_scale = 0.5                             # s_m = bandwidth_scale * m^(-1/5)
num_seeds = 8
grid_points = 6001
# 3. instability against s (one dimension)
num_train_1d = 12
s_values = [0.3, 0.1, 0.03, 0.01]

# %% tags=["hide-input"]
import time

import matplotlib.pyplot as plt
import numpy as np
import torch
from scipy import special, stats

import pfode
import pfode.nb

run = pfode.nb.setup(globals(), smoke=dict(   # smoke mode: caps and overrides
    num_pairs=40000, m_values=lambda v: [m for m in v if m <= 1000], num_seeds=4,
    grid_points=3001))

rng = run.rng
gen = run.gen

# %% [markdown]
# ## 1. The minimiser of the flow-matching loss on a finite training set
#
# Flow matching minimises $L(u) = \mathbb E\,\|u(x_t, t) - (\varepsilon - x_0)\|^2$ with $x_0$
# uniform on the training points $\mu_1, \dots, \mu_m$. The minimiser is the conditional mean,
# which for point masses is, with $r_k \propto \exp\bigl(-\|x - (1-t)\mu_k\|^2/(2t^2)\bigr)$,
#
# $$v_{\mathrm{emp}}(x, t) = \sum_k r_k(x, t)\,\frac{x - \mu_k}{t}.$$
#
# It is coded below from this formula, independently of `pfode`. Three checks follow:
# `pfode.GaussianMixture(means=training points, stds=s)` tends to it as $s \to 0$; its residual
# $v_{\mathrm{emp}}(x_t, t) - (\varepsilon - x_0)$ is orthogonal to every function of $(x_t, t)$
# (which characterises a conditional mean); and its loss is below that of the fields of
# blurred training sets.

# %%
train = pfode.GaussianMixture(means=means, stds=stds).sample(num_train, generator=gen)   # (m, 2)


def v_emp(x, t):
    """Exact empirical velocity field (s = 0), from its formula; x (B, 2), t (B,) or float."""
    t = torch.as_tensor(t, dtype=x.dtype).reshape(-1, 1)                         # (B or 1, 1)
    diff = x[:, None, :] - (1 - t)[:, :, None] * train[None]                      # (B, m, 2)
    logits = -(diff**2).sum(-1) / (2 * t**2)                                      # (B, m)
    r = torch.softmax(logits, dim=1)
    return ((x[:, None, :] - train[None]) * r[..., None]).sum(1) / t              # (B, 2)


xs = 3 * (2 * torch.rand(500, 2, generator=gen, dtype=torch.float64) - 1)
print("max |GaussianMixture(train, s).velocity - v_emp| over 500 points:")
print("      s  " + "".join(f"   t = {t:<6}" for t in check_times))
diffs = np.zeros((len(small_stds), len(check_times)))
scale = np.array([v_emp(xs, t).abs().max().item() for t in check_times])       # size of the field
for i, s in enumerate(small_stds):
    gm_s = pfode.GaussianMixture(means=train, stds=s)
    for j, t in enumerate(check_times):
        diffs[i, j] = (gm_s.velocity(xs, t) - v_emp(xs, t)).abs().max().item()
    print(f"  {s:6.0e}  " + "".join(f"   {d:9.1e}" for d in diffs[i]))
# The difference is O(s^2) (Sigma_k = (1-t)^2 s^2 + t^2 replaces t^2); at t = 1 both are x - mean exactly.
# Check the order on the last two s (s << t, the asymptotic regime), where above rounding.
above = diffs[-2] > 1e-12
ratio = diffs[-2][above] / diffs[-1][above]
factor = small_stds[-2] / small_stds[-1]
# threshold: the difference is O(s^2) (Theorem 4.2 proof); halving s must divide it by about 4,
#   asserted > 2
assert np.all(ratio > 0.5 * factor**2), f"the difference does not shrink like s^2: ratios {ratio}"
# threshold: the claim of the text (within 1e-3 of v_emp at the smallest s)
assert np.all(diffs[-1] < 1e-3 * scale), f"at s = {small_stds[-1]} the mixture field is not within 1e-3 of v_emp"

# %%
x0 = train[torch.randint(0, num_train, (num_pairs,), generator=gen)]               # (N, 2)
eps = torch.randn(num_pairs, 2, generator=gen, dtype=torch.float64)
t = torch.rand(num_pairs, generator=gen, dtype=torch.float64).clamp_min(1e-6)
xt = (1 - t)[:, None] * x0 + t[:, None] * eps
target = eps - x0
resid = v_emp(xt, t) - target                                                   # (N, 2)
tests = {"g = x_t": xt, "g = t x_t": t[:, None] * xt, "g = sin(x_t)": torch.sin(xt),
         "g = (x_t1 x_t2, t)": torch.stack([xt[:, 0] * xt[:, 1], t], 1),
         "g = tanh(3 x_t) (1 - t)": torch.tanh(3 * xt) * (1 - t)[:, None]}


def cross_term(field_resid, g):
    """Monte Carlo mean and standard error of E[g . residual]."""
    prod = (g * field_resid).sum(1).numpy()
    return prod.mean(), prod.std(ddof=1) / np.sqrt(len(prod))


print("E[g(x_t, t) . (u(x_t, t) - (eps - x0))]: mean / standard error")
zs_emp = []
blurred = {s: pfode.GaussianMixture(means=train, stds=s) for s in blurred_stds}
resid_blur = {}
for s, gm_s in blurred.items():
    resid_blur[s] = gm_s.velocity(xt, t) - target                               # t per row
for name, g in tests.items():
    m_, se = cross_term(resid, g)
    zs_emp.append(m_ / se)
    row = f"  {name:26s} v_emp: {m_ / se:+6.2f} SE"
    for s in blurred_stds:
        mb, seb = cross_term(resid_blur[s], g)
        row += f"   s = {s}: {mb / seb:+8.2f} SE"
    print(row)
z_threshold = stats.norm.ppf(1 - 1e-3 / (2 * len(tests)))
# threshold: statistics: Bonferroni-corrected two-sided normal quantile at level 1e-3 over the test
#   functions
assert np.all(np.abs(zs_emp) < z_threshold), f"v_emp residual not orthogonal: {np.round(zs_emp, 2)}"
blur_max = max(abs(cross_term(resid_blur[blurred_stds[-1]], g)[0] / cross_term(resid_blur[blurred_stds[-1]], g)[1])
               for g in tests.values())
assert blur_max > z_threshold, "the test functions cannot tell a blurred field from the minimiser"

loss_emp = (resid**2).sum(1)
for s in blurred_stds:
    d = ((resid_blur[s] ** 2).sum(1) - loss_emp).numpy()          # paired differences
    lo = d.mean() - stats.norm.ppf(0.975) * d.std(ddof=1) / np.sqrt(len(d))
    print(f"loss(s = {s}) - loss(v_emp) = {d.mean():.4f}, 95% CI lower end {lo:.4f} "
          f"(loss(v_emp) = {loss_emp.mean().item():.4f})")
    assert lo > 0, f"the blurred field s = {s} does not have a larger loss than v_emp"

# %% [markdown]
# The residual of $v_{\mathrm{emp}}$ is orthogonal to each test function within Monte Carlo
# error. The fields of blurred training sets fail that test and have a larger loss. A network
# trained to optimality on $m$ images therefore reproduces the training set. An imperfect
# network generalises a little around each point, which a small $s > 0$ models: a mixture of
# Gaussian neighbours.
#
# ## 2. Theorem 4.2: convergence to the sampled density
#
# The target $p$ is a two-component Beta mixture on $[-1, 1]$. From $m$ samples build the
# mixture of Gaussian neighbours $p_m = \frac1m\sum_i \mathcal N(x_i, s_m^2)$ with
# $s_m = 0.5\,m^{-1/5}$, and measure its distance to $p$ on CDFs, both exact:
#
# - Wasserstein-1: $W_1 = \int |F_{p_m} - F_p|\,dy$ (trapezoid rule on a fine grid);
# - Lévy: $L = \inf\{\epsilon > 0 : F_p(y - \epsilon) - \epsilon \le F_{p_m}(y) \le F_p(y + \epsilon) + \epsilon\ \forall y\}$
#   (bisection on $\epsilon$).
#
# The chapter shows $L \le \pi \le \sqrt{W_1}$, where $\pi$ is the Lévy–Prokhorov distance of
# Theorem 4.2, so both bracket $\pi$. It also shows
# $W_1(p_m, p) \le W_1(\hat p_m, p) + s_m\sqrt{2/\pi}$, with $\hat p_m$ the empirical measure of
# the samples.

# %%
beta_w, beta_a_, beta_b_ = map(np.asarray, (beta_weights, beta_a, beta_b))


def target_cdf(y):
    u = np.clip((np.asarray(y) + 1) / 2, 0, 1)
    return sum(w * stats.beta.cdf(u, a, b) for w, a, b in zip(beta_w, beta_a_, beta_b_))


def target_pdf(y):
    u = (np.asarray(y) + 1) / 2
    return 0.5 * sum(w * stats.beta.pdf(u, a, b) for w, a, b in zip(beta_w, beta_a_, beta_b_))


def target_sample(m, rng):
    comp = rng.choice(len(beta_w), size=m, p=beta_w)
    return 2 * rng.beta(beta_a_[comp], beta_b_[comp]) - 1


def mixture_cdf(y, centres, s, chunk=500):
    """CDF of (1/m) sum_i N(centres_i, s^2) at y, in chunks of centres."""
    out = np.zeros_like(y)
    for i in range(0, len(centres), chunk):
        out += special.ndtr((y[:, None] - centres[None, i:i + chunk]) / s).sum(1)
    return out / len(centres)


def levy_distance(y, G, F, tol=1e-7):
    """Lévy distance between the CDF F (a function) and the CDF G (values on the grid y)."""
    lo, hi = 0.0, 1.0
    while hi - lo > tol:
        eps = 0.5 * (lo + hi)
        if np.all(F(y - eps) - eps <= G) and np.all(G <= F(y + eps) + eps):
            hi = eps
        else:
            lo = eps
    return hi


tic = time.perf_counter()
W1 = np.zeros((num_seeds, len(m_values)))
LEVY = np.zeros_like(W1)
W1_emp = np.zeros_like(W1)
bandwidths = bandwidth_scale * np.array(m_values, dtype=float) ** (-0.2)
examples = {}
for k in range(num_seeds):
    rng_k = np.random.default_rng([seed, k])
    for j, (m, s) in enumerate(zip(m_values, bandwidths)):
        xs_m = target_sample(m, rng_k)
        y = np.linspace(-1 - 8 * s, 1 + 8 * s, grid_points)
        h = y[1] - y[0]
        G = mixture_cdf(y, xs_m, s)
        Fp = target_cdf(y)
        W1[k, j] = np.trapezoid(np.abs(G - Fp), y)
        LEVY[k, j] = levy_distance(y, G, target_cdf)
        emp = np.searchsorted(np.sort(xs_m), y, side="right") / m
        W1_emp[k, j] = np.trapezoid(np.abs(emp - Fp), y)
        # W1(p_m, p) <= W1(p_hat_m, p) + W1(p_hat_m, p_hat_m * N(0, s^2)) = ... + s E|Z|;
        # 2h covers the trapezoid error of integrands of total variation at most 2.
        assert W1[k, j] <= W1_emp[k, j] + s * np.sqrt(2 / np.pi) + 2 * h, f"W1 smoothing bound fails at m={m}"
        if k == 0:
            examples[m] = (xs_m, s)
print(f"{num_seeds} seeds x {len(m_values)} sample sizes: {time.perf_counter() - tic:.1f} s")

# Lévy <= Lévy-Prokhorov <= sqrt(W1); the grid resolves the CDFs to about h * max density.
assert np.all(LEVY <= np.sqrt(W1) + 1e-3), "Lévy distance above sqrt(W1): contradicts L <= LP <= sqrt(W1)"

logm = np.log(m_values)
slopes = {name: np.array([np.polyfit(logm, np.log(D[k]), 1)[0] for k in range(num_seeds)])
          for name, D in (("W1", W1), ("Levy", LEVY))}
slope_ci = {}
for name, sl in slopes.items():
    half_width = stats.t.ppf(0.975, num_seeds - 1) * sl.std(ddof=1) / np.sqrt(num_seeds)
    slope_ci[name] = (sl.mean(), sl.mean() - half_width, sl.mean() + half_width)
    print(f"log-log slope of {name:4s} against m: {sl.mean():+.3f}, 95% CI "
          f"[{slope_ci[name][1]:+.3f}, {slope_ci[name][2]:+.3f}] over {num_seeds} seeds")
    assert slope_ci[name][2] < 0, f"{name} does not fall with m"
print("  m      s_m     W1 (mean)   Levy (mean)   sqrt(W1)   W1 of the samples alone")
for j, m in enumerate(m_values):
    print(f"{m:6d}  {bandwidths[j]:.3f}   {W1[:, j].mean():.2e}    {LEVY[:, j].mean():.2e}     "
          f"{np.sqrt(W1[:, j]).mean():.2e}   {W1_emp[:, j].mean():.2e}")

# %%
fig, axes = plt.subplots(1, 2, figsize=(12, 4.4), constrained_layout=True)
ax = axes[0]
yy = np.linspace(-1.4, 1.4, 1401)
for i, m in enumerate([m for m in m_values if m in (10, 100, 1000, 10000)]):
    xs_m, s = examples[m]
    dens = stats.norm.pdf((yy[:, None] - xs_m[None]) / s).mean(1) / s
    ax.plot(yy, dens, color=f"C{i}", lw=1.2, label=f"$m = {m}$, $s_m = {s:.3f}$")
ax.plot(yy, np.where(np.abs(yy) < 1, target_pdf(np.clip(yy, -1, 1)), 0.0), "k", lw=2, label="target $p$")
ax.set(xlabel="$x$", ylabel="density", title="mixtures of Gaussian neighbours from $m$ samples")
ax.legend(fontsize=8)

ax = axes[1]
for name, D, c in (("$W_1$", W1, "C0"), ("Lévy $L$", LEVY, "C1"), ("$\\sqrt{W_1}$", np.sqrt(W1), "C2")):
    key = {"$W_1$": "W1", "Lévy $L$": "Levy"}.get(name)
    lab = name if key is None else f"{name}: slope {slope_ci[key][0]:+.2f} [{slope_ci[key][1]:+.2f}, {slope_ci[key][2]:+.2f}]"
    ax.loglog(m_values, D.mean(0), "o-", color=c, label=lab)
    ax.fill_between(m_values, D.min(0), D.max(0), color=c, alpha=0.2)
ax.set(xlabel="number of samples $m$", ylabel="distance to $p$",
       title="$L \\leq \\pi \\leq \\sqrt{W_1}$, all falling with $m$")
ax.legend(fontsize=8)
_ = pfode.nb.publish(fig, "ch07_density", "fig-ch7-density", K=len(beta_weights), c=f"{bandwidth_scale:g}",
                 seeds=num_seeds)

# %% [markdown]
# ```{glue:figure} fig-ch7-density
# :name: fig-ch7-density
#
# Theorem 4.2 in one dimension. Left: the target density $p$ (a mixture of {glue:text}`fig-ch7-density-K` Beta densities on $[-1, 1]$, black) and mixtures of Gaussian neighbours built from $m$ of its samples with bandwidth $s_m = c\,m^{-1/5}$, $c =$ {glue:text}`fig-ch7-density-c`. Right: their distance to $p$ against $m$, mean over {glue:text}`fig-ch7-density-seeds` seeds with the range over seeds shaded: Wasserstein-1 (exact, from the CDFs), the Lévy distance (a lower bound on the Lévy–Prokhorov distance $\pi$) and $\sqrt{W_1}$ (an upper bound on $\pi$). All fall as powers of $m$; the fitted log-log slopes, with 95% intervals over seeds, are in the legend.
# ```

# %% [markdown]
# ## 3. Sparser mixtures are more unstable
#
# Keep $m$ = `num_train_1d` samples of $p$ and shrink $s$. In one dimension the generation map
# is the monotone transport $G = F_{p_G}^{-1}\circ\Phi$, so the inversion is
# $F(x) = \Phi^{-1}(F_{p_G}(x))$ and
# $\bar\lambda_G(F(x)) = G'(F(x)) = \varphi(F(x))/p_G(x)$, all in closed form. (The ODE
# solver is used only as a check.) Two quantities are measured under $q$ uniform on $[-1, 1]$:
# the probability that $\bar\lambda_G > 1$, and the largest $\bar\lambda_G$.
#
# A lower bound shows that the largest value must blow up as $s \to 0$. Let $g$ be the widest
# gap between neighbouring samples and $x^*$ its midpoint. Every sample is at least $g/2$ from
# $x^*$, so $p_G(x^*) \le e^{-g^2/(8s^2)}/(s\sqrt{2\pi})$. Also $F_{p_G}(x^*)$ lies within
# $\Phi(-g/(2s))$ of $k/m$, where $k$ is the number of samples below $x^*$; this bounds
# $|F(x^*)|$ by some $z^*$. Hence
# $\bar\lambda_G(F(x^*)) \ge \varphi(z^*)\,s\sqrt{2\pi}\,e^{g^2/(8s^2)}$.

# %%
train_1d = np.sort(target_sample(num_train_1d, np.random.default_rng([seed, 99])))


def log_lambda_1d(x, s):
    """(F(x), log lambda_bar_G(F(x))) for p_G = (1/m) sum N(train_1d, s^2), in closed form."""
    u = (x[:, None] - train_1d[None]) / s                                      # (N, m)
    log_p = special.logsumexp(-0.5 * u**2, axis=1) - np.log(len(train_1d) * s * np.sqrt(2 * np.pi))
    lower = special.logsumexp(special.log_ndtr(u), axis=1) - np.log(len(train_1d))     # log F_pG
    upper = special.logsumexp(special.log_ndtr(-u), axis=1) - np.log(len(train_1d))    # log (1 - F_pG)
    # z = Phi^{-1}(F_pG), from whichever tail is smaller, for accuracy
    z = np.where(lower < upper, special.ndtri_exp(lower), -special.ndtri_exp(upper))
    log_phi = -0.5 * z**2 - 0.5 * np.log(2 * np.pi)
    return z, log_phi - log_p


xq = np.linspace(-1, 1, 20001)                  # q uniform on [-1, 1]: a fine grid
gaps = np.diff(train_1d)
ig = np.argmax(gaps)
g, x_star, k_star = gaps[ig], 0.5 * (train_1d[ig] + train_1d[ig + 1]), ig + 1
rows = []
for s in s_values:
    z_q, ll_q = log_lambda_1d(xq, s)
    tail = special.ndtr(-g / (2 * s))
    z_hi = max(abs(special.ndtri(np.clip(k_star / num_train_1d - tail, 1e-300, 1))),
               abs(special.ndtri(np.clip(k_star / num_train_1d + tail, 0, 1 - 1e-16))))
    log_bound = -0.5 * z_hi**2 - 0.5 * np.log(2 * np.pi) + np.log(s * np.sqrt(2 * np.pi)) + g**2 / (8 * s**2)
    _, ll_star = log_lambda_1d(np.array([x_star]), s)
    # threshold: the lower bound on lambda_bar in a gap (the proposition above) must hold; 1e-9 for
    #   the quadrature of the 1-D map
    assert ll_star[0] >= log_bound - 1e-9, f"s={s}: lambda_bar at the gap midpoint below its lower bound"
    # P_{z ~ N(0,1)}(lambda_bar > 1) = P_{x ~ p_G}(lambda_bar(F(x)) > 1), by quadrature in x
    xw = np.linspace(train_1d[0] - 10 * s, train_1d[-1] + 10 * s, 200001)
    z_w, ll_w = log_lambda_1d(xw, s)
    p_w = stats.norm.pdf((xw[:, None] - train_1d[None]) / s).mean(1) / s
    P_gen = np.trapezoid(p_w * (ll_w > 0), xw)
    rows.append(dict(s=s, P_q=np.mean(ll_q > 0), max_log=ll_q.max(), log_bound=log_bound, P_gen=P_gen,
                     z=z_w, ll=ll_w))
hull = (min(train_1d[-1], 1) - max(train_1d[0], -1)) / 2
print(f"training points: {np.round(train_1d, 3)}; widest gap {g:.3f} at {x_star:.3f}; "
      f"share of [-1, 1] between the outermost points {hull:.3f}")
print("     s    P_q(lambda_bar > 1)   max log lambda_bar over [-1,1]   lower bound at the gap   P_z~N(lambda_bar > 1)")
for r in rows:
    print(f"  {r['s']:5.2f}   {r['P_q']:19.3f}   {r['max_log']:30.1f}   {r['log_bound']:22.1f}   {r['P_gen']:21.3f}")
assert rows[-1]["max_log"] > rows[0]["max_log"] + 10, "largest lambda_bar does not grow as s shrinks"
assert rows[-1]["P_q"] > rows[0]["P_q"], "instability is not more frequent under q for the sparser mixture"

# check the closed form against the ODE at a few points
for s in s_values[:3]:
    gm1 = pfode.GaussianMixture(means=train_1d[:, None], stds=s)
    xc = torch.linspace(-0.95, 0.95, 9, dtype=torch.float64)[:, None]
    z_ode = pfode.invert(gm1, xc).numpy().ravel()
    z_cf, ll_cf = log_lambda_1d(xc.numpy().ravel(), s)
    ll_ode = (pfode.log_det_from_density(gm1, torch.as_tensor(z_ode[:, None]), xc)).numpy()
    np.testing.assert_allclose(z_ode, z_cf, atol=1e-6, err_msg=f"s={s}: ODE inversion vs Phi^-1(F_pG)")
print("the closed-form inversion agrees with dopri5 to 1e-6 at 9 points for s =", s_values[:3])

# %% [markdown]
# Theorem 4.2 approximates $p$ with $m \to \infty$ and $s \to 0$ together, while the sparsity
# assumption keeps $m$ fixed. With the `num_train_1d` samples fixed, shrinking $s$ does not bring
# $p_G$ closer to $p$. By the triangle inequality and part (c) of the bracketing lemma,
# $W_1(p_G, p) \ge W_1(\hat p_m, p) - s\sqrt{2/\pi}$, which tends to $W_1(\hat p_m, p) > 0$ as
# $s \to 0$.

# %%
y_w = np.linspace(-1 - 8 * max(s_values), 1 + 8 * max(s_values), 4 * grid_points)
h_w = y_w[1] - y_w[0]
Fp_w = target_cdf(y_w)
W1_emp_fixed = np.trapezoid(np.abs(np.searchsorted(train_1d, y_w, side="right") / num_train_1d - Fp_w), y_w)
W1_fixed = np.array([np.trapezoid(np.abs(mixture_cdf(y_w, train_1d, s) - Fp_w), y_w) for s in s_values])
lower_fixed = W1_emp_fixed - np.array(s_values) * np.sqrt(2 / np.pi)
for s, w, lo in zip(s_values, W1_fixed, lower_fixed):
    print(f"m = {num_train_1d}, s = {s:5.2f}: W1(p_G, p) = {w:.4f} (lower bound W1(p_hat, p) - s sqrt(2/pi) = {lo:+.4f})")
print(f"W1(p_hat_m, p) = {W1_emp_fixed:.4f} for the m = {num_train_1d} samples; for comparison, m = {m_values[-1]} "
      f"with s_m = {bandwidths[-1]:.3f}: W1 = {W1[:, -1].mean():.4f} (mean over {num_seeds} seeds)")
# threshold: the triangle inequality must hold; 2h for the trapezoid rule on integrands of total
#   variation at most 2
assert np.all(W1_fixed >= lower_fixed - 2 * h_w), "W1 below its lower bound"
# threshold: the claim: at the smallest s the lower bound itself stays above 0 (here by more than
#   the grid error), so shrinking s at fixed m cannot approximate p
assert lower_fixed[-1] > 2 * h_w, "at fixed m the distance to p does not stay away from 0"

# %%
fig, axes = plt.subplots(1, 2, figsize=(12, 4.4), constrained_layout=True)
ax = axes[0]
for i, r in enumerate(rows):
    keep = np.abs(r["z"]) < 3.5
    ax.plot(r["z"][keep], r["ll"][keep] / np.log(10), color=f"C{i}", lw=1, label=f"$s = {r['s']:g}$")
ax.axhline(0, color="k", ls=":", lw=1)
ax.set_yscale("symlog", linthresh=1.0)
ax.set(xlabel="noise $z$", ylabel="$\\log_{10}\\bar\\lambda_G(z)$ (symlog axis)", xlim=(-3.5, 3.5),
       title="$\\bar\\lambda_G = \\varphi(z)/p_G(G(z))$ over noise space")
ax.legend(fontsize=8)

ax = axes[1]
S = np.array([r["s"] for r in rows])
ax.semilogx(S, [r["P_q"] for r in rows], "o-", color="C0", label="$P_q(\\bar\\lambda_G > 1)$")
ax.semilogx(S, [r["P_gen"] for r in rows], "s-", color="C3", label="$P_{z\\sim N(0,1)}(\\bar\\lambda_G > 1)$")
ax.set(xlabel="bandwidth $s$", ylabel="probability", ylim=(-0.02, 1.02))
ax.invert_xaxis()
ax2 = ax.twinx()
ax2.semilogx(S, [r["max_log"] / np.log(10) for r in rows], "^-", color="C2", label="max $\\log_{10}\\bar\\lambda_G$ over $[-1,1]$")
ax2.semilogx(S, [r["log_bound"] / np.log(10) for r in rows], "^--", color="C2", alpha=0.6, label="lower bound at the widest gap")
ax2.set_ylabel("$\\log_{10}\\bar\\lambda_G$", color="C2")
ax2.set_yscale("symlog", linthresh=10)
h1, l1 = ax.get_legend_handles_labels()
h2, l2 = ax2.get_legend_handles_labels()
ax.legend(h1 + h2, l1 + l2, fontsize=8, loc="center left")
ax.set_title("sparser $p_G$ (smaller $s$, to the right)")
_ = pfode.nb.publish(fig, "ch07_instability", "fig-ch7-instability", m=num_train_1d)

# %% [markdown]
# ```{glue:figure} fig-ch7-instability
# :name: fig-ch7-instability
#
# Instability grows as the mixture of Gaussian neighbours gets sparser (one dimension, {glue:text}`fig-ch7-instability-m` samples of the Beta-mixture target, bandwidth $s$). Left: $\log_{10}\bar\lambda_G$ over noise space, $\bar\lambda_G(z) = G'(z) = \varphi(z)/p_G(G(z))$ in closed form; each spike is the noise interval that $G$ spreads across a gap between samples. Right: under $q$ uniform on $[-1, 1]$, the probability that $\bar\lambda_G(F(x)) > 1$ and the largest $\log_{10}\bar\lambda_G$, against $s$; the largest value stays above the closed-form lower bound at the midpoint of the widest gap (dashed), which grows like $e^{g^2/(8s^2)}$. Under generation ($z \sim \mathcal N(0, 1)$, red) instability stays rare for every $s$: the noise a generated sample comes from seldom lies in one of the narrow spikes.
# ```
