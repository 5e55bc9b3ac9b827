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
# # One point of the dimension sweep: real patches against a mixture of Gaussian neighbours
#
# For one patch side (dimension $n = 3\,\mathrm{side}^2$), one set of training patches ($K$ of
# them, the means of $p_G$) and one width $s$, this notebook measures on held-out real patches
# $x \sim q$ the geometric instability $\bar\lambda_G(F(x))$ from the exact density ratio, the
# probabilities $P(\bar\lambda > 1)$ and $P(\bar\lambda \ge \beta)$, the two terms $\delta_1$,
# $\delta_2$ of Theorem 4.1 and its bound, and the Euler reconstruction error. The sweep runner
# (`python -m pfode.sweep sweeps/dimension_default.yml`) runs it once per parameter point and
# collects the recorded numbers in `results/<sweep>/table.csv`; the page
# {doc}`../book/ch09_dimension_sweep` explains the method and shows the
# curves.

# %% tags=["parameters"]
side = 4             # patch side in pixels; the dimension n is 3 side^2
K = 256              # training patches: the components of p_G
s = 0.05             # common standard deviation of the Gaussian neighbours
num_test = 200       # held-out patches: samples of q
crop = 64            # crop side in source pixels (side must divide it)
seed = 0
alpha = 0.01         # r is the chi-square_n quantile at 1 - alpha
beta = 1.0           # Lemma D.2 threshold; gamma follows from beta and r
rtol = 1e-6          # BDF tolerances of the inversion
atol = 1e-8
euler_steps = 50     # Euler steps each way in the reconstruction
rtol_fine = 1e-9     # BDF tolerances of the refined round trip (convergence check)
atol_fine = 1e-11
num_converge = 16    # points whose BDF round trip is repeated at rtol_fine
num_control = 24     # generated samples x ~ p_G: F(x) must be N(0, I)
num_uniform = 48     # points uniform on the cube [-1, 1]^n (Assumptions 4.1-4.2 exactly)
num_check = 16       # points cross-checked against dopri5 and the trace integral
dopri5_cap = 50000   # count dopri5 evaluations on two points, stopping at this many
check_max_n = 48     # largest n at which those cross-checks run
workers = 1          # processes for the per-point inversions
device = "cpu"       # torch device of the mixture evaluations (log p_G, Euler)

# %% tags=["hide-input"]
import math
import time

import matplotlib.pyplot as plt
import numpy as np
import torch
from scipy import stats

import pfode
import pfode.data
import pfode.nb
import pfode.record
from pfode import bounds

run = pfode.nb.setup(globals(), smoke=dict(   # smoke mode: caps and overrides
    side=4, K=64, num_test=40, num_control=8, num_uniform=8, num_check=6, check_max_n=48,
    num_converge=6, workers=1))

t_start = time.perf_counter()
n = 3 * side * side
split = pfode.data.patch_split(side, K, num_test, crop=crop, seed=seed)
train, x = split.train, split.test                                   # (K, n), (N, n)
N = len(x)
dev = torch.device(device)
gm = pfode.GaussianMixture(torch.from_numpy(train).to(dev), s)       # p_G, float64
x_t = torch.from_numpy(x).to(dev)
log_pG = gm.log_prob(x_t).cpu().numpy()                              # (N,) exact
# threshold: Assumption 4.1 holds by construction (pixels mapped to [-1, 1])
assert x.min() >= -1 and x.max() <= 1 and train.min() >= -1 and train.max() <= 1
d2 = ((x * x).sum(1)[:, None] - 2 * x @ train.T + (train * train).sum(1)[None]).clip(0)
nn_rmse = np.sqrt(d2.min(1) / n)                                     # distance to nearest mean
patch_std = x.std(1)
print(f"n = {n} (side {side}), K = {K} training patches from {', '.join(split.train_images)}; "
      f"{N} held-out patches from {', '.join(split.test_images)}; s = {s}")
print(f"per-pixel distance of a held-out patch to its nearest training patch: median "
      f"{np.median(nn_rmse):.3f} = {np.median(nn_rmse) / s:.1f} s (quartiles "
      f"{np.quantile(nn_rmse, 0.25):.3f}, {np.quantile(nn_rmse, 0.75):.3f})")

# %% [markdown]
# ## The span of the training patches carries all the nonlinearity
#
# With a common width $s$, the responsibilities $r_k(x, t)$ depend on $x$ only through the
# inner products $\langle x, \mu_k\rangle$, so the field splits exactly into its projection on
# $V = \operatorname{span}\{\mu_k\}$ (dimension $D \le K$), which is the field of the mixture of
# the projected means, and the orthogonal part, on which $v = a(t)\,x$ with
# $a = \Sigma'/(2\Sigma)$. Hence $F(x) = F_V(x_\parallel) + x_\perp / s$ and
# $\log|\det J_G| = \log|\det J_{G_V}| + (n - D)\log s$. The cell checks the density side of
# this identity to rounding error and builds the $D$-dimensional field.

# %%
span = gm.span_reduction()                                           # basis Q of V, numpy's rank rule
D, gmV = span.dim, span.field                                        # gmV: the mixture in V
x_par, x_perp = (a.cpu().numpy() for a in span.split(x_t))           # (N, D), (N, n)
x_perp2 = (x_perp * x_perp).sum(1)                                   # (N,)
log_pV = gmV.log_prob(torch.from_numpy(x_par)).numpy()
np.testing.assert_allclose(span.log_prob(x_t).cpu().numpy(), log_pG, rtol=1e-10, atol=1e-8,
                           err_msg="log p_G does not split over span and complement")
print(f"D = dim span = {D}; median |x_perp|^2 / (s^2 n) = {np.median(x_perp2) / (s * s * n):.2f} "
      f"(the orthogonal part alone puts ||F(x)||^2 / n at least there)")

# %% [markdown]
# ## Exact inversion $z = F(x)$
#
# Where $\bar\lambda_G$ is large the inversion ODE is stiff: the posterior splits between
# components and $\nabla v$ has eigenvalues of order $-t\,\|\mu_k - \mu_l\|^2 / \Sigma^2$,
# which grow with $n$. An explicit solver (dopri5) then needs tens of thousands of steps per
# point at $n = 12288$; the implicit BDF method of `scipy.integrate.solve_ivp`, given the
# closed-form Jacobian $a I - (tc/\Sigma^2)\,\mathrm{Cov}_r(\mu)$
# (`GaussianMixture.velocity_jacobian`), needs a few hundred. Each held-out point is solved on
# its own in the $D$-dimensional span.

# %%
def invert_span(xs):
    """F(x) for the rows of xs through the span: F_V(x_par) by BDF, point by point, and
    ||F(x)||^2 = ||F_V(x_par)||^2 + ||x_perp||^2 / s^2; also the solver's per-point counts."""
    xs_par, xs_perp = (a.cpu().numpy() for a in span.split(xs))
    info = {}
    zs_par = pfode.invert(gmV, torch.from_numpy(xs_par), method="scipy-bdf", rtol=rtol, atol=atol,
                          info=info, workers=workers).numpy()
    return zs_par, (zs_par * zs_par).sum(1) + (xs_perp * xs_perp).sum(1) / s**2, info


t0 = time.perf_counter()
z_par, z2, bdf = invert_span(x_t)                                    # (N, D), (N,) ||F(x)||^2
t_invert = time.perf_counter() - t0
nfev, nlu = bdf["nfev"].astype(int), bdf["nlu"]                      # per point
log_phi = -0.5 * z2 - 0.5 * n * math.log(2 * math.pi)
log_det = log_phi - log_pG                                           # Lemma D.1, density side
log_det_V = (-0.5 * (z_par * z_par).sum(1) - 0.5 * D * math.log(2 * math.pi) - log_pV
             + (n - D) * math.log(s))
np.testing.assert_allclose(log_det_V, log_det, rtol=1e-9, atol=1e-6)
log_lam = log_det / n                                                # log lambda_bar (Def. 4.1)
log_lam_V = (log_det - (n - D) * math.log(s)) / D                    # the same, of G_V in the span
print(f"BDF inversion of {N} points: {t_invert:.1f} s; per point median "
      f"{np.median(nfev):.0f} evaluations, {np.median(nlu):.0f} LU (max {nfev.max()}, {nlu.max()})")
print(f"log lambda_bar quantiles 5/25/50/75/95%: {np.round(np.quantile(log_lam, [.05, .25, .5, .75, .95]), 3)}")
print(f"||F(x)||^2 / n median {np.median(z2) / n:.2f} (Gaussian noise: 1)")

# %% [markdown]
# The cost of an explicit solver on the same problem: dopri5 (same tolerances, same
# $D$-dimensional system) on the held-out point with the largest $\bar\lambda_G$ and on the one
# with the smallest, stopped after `dopri5_cap` evaluations of the field.

# %%
probe = {}
threads = torch.get_num_threads()
torch.set_num_threads(1)                         # one point at a time: no use for threads
for label, i in (("unstable", int(np.argmax(log_lam))), ("stable", int(np.argmin(log_lam)))):
    t0, dp = time.perf_counter(), {}
    try:
        zi = pfode.invert(gmV, torch.from_numpy(x_par[i:i + 1]), method="dopri5", rtol=rtol, atol=atol,
                          max_nfe=dopri5_cap, info=dp)
        err = float(np.abs(zi[0].numpy() - z_par[i]).max() / max(1.0, np.abs(z_par[i]).max()))
        assert err < 1e-3, f"dopri5 and BDF disagree at the {label} point: {err:.1e}"
        nfe_dp = int(dp["nfe"])
        done = f"{nfe_dp} evaluations, z agrees with BDF to {err:.1e}"
    except pfode.BudgetExceeded:
        nfe_dp, done = dopri5_cap + 1, f"stopped after {dopri5_cap} evaluations"
    probe[f"dopri5_nfev_{label}"] = nfe_dp           # cap + 1: did not finish
    probe[f"bdf_nfev_{label}"] = int(nfev[i])
    print(f"{label} point (log lambda_bar {log_lam[i]:.2f}): dopri5 {done} "
          f"({time.perf_counter() - t0:.1f} s); BDF {nfev[i]} evaluations, {nlu[i]} LU")
torch.set_num_threads(threads)

# %% [markdown]
# ## Cross-checks at small $n$: dopri5 in the full space and the trace integral
#
# For the first `num_check` points (when $n \le$ `check_max_n`) the inversion is repeated with
# dopri5 in all $n$ coordinates (no reduction), and $\log|\det J_G|$ is recomputed by the
# Liouville trace integral `pfode.log_det_jacobian` along the generation path from that $z$.

# %%
check = {}
if n <= check_max_n:
    m = min(num_check, N)
    t0 = time.perf_counter()
    z_dp = pfode.invert(gm, x_t[:m], method="dopri5", rtol=1e-9, atol=1e-11).cpu().numpy()
    z_bdf = z_par[:m] @ span.basis.cpu().numpy().T + x_perp[:m] / s  # F(x) in full coordinates
    z_err = np.linalg.norm(z_bdf - z_dp, axis=1) / np.linalg.norm(z_dp, axis=1)
    log_lam_dp = (pfode.log_std_normal(torch.from_numpy(z_dp)).numpy() - log_pG[:m]) / n
    x_back, log_det_tr = pfode.log_det_jacobian(gm, torch.from_numpy(z_dp).to(dev),
                                                method="dopri5", rtol=1e-9, atol=1e-11)
    x_back = x_back.cpu()
    log_det_den = (pfode.log_det_from_density(gm, torch.from_numpy(z_dp).to(dev),
                                              x_back.to(dev))).cpu().numpy()
    log_det_tr = log_det_tr.cpu().numpy()
    # log lambda_bar = (-||z||^2 / 2 - log p_G(x)) / n - log(2 pi) / 2, so a solver difference
    # dz moves it by at most (||z|| ||dz|| + ||dz||^2 / 2) / n (triangle inequality): at rtol
    # 1e-6 and ||z||^2 / n of several hundred for small s this reaches 1e-2.
    dz = np.linalg.norm(z_bdf - z_dp, axis=1)
    loglam_allowed = (np.linalg.norm(z_dp, axis=1) * dz + 0.5 * dz**2) / n
    check = dict(check_points=m, check_z_err=float(z_err.max()),
                 check_loglam_err=float(np.abs(log_lam_dp - log_lam[:m]).max()),
                 check_trace_err=float(np.abs(log_det_tr - log_det_den).max()),
                 check_roundtrip=float(np.abs(x_back.numpy() - x[:m]).max()),
                 check_s=time.perf_counter() - t0)
    print(f"{m} points: BDF (reduced) vs dopri5 (full space): max relative |dz| {check['check_z_err']:.1e}, "
          f"max |d log lambda_bar| {check['check_loglam_err']:.1e}")
    print(f"trace integral vs density ratio: max |d log det| {check['check_trace_err']:.1e} "
          f"(log det up to {np.abs(log_det_den).max():.0f}); max |G(F(x)) - x| {check['check_roundtrip']:.1e}")
    # BDF runs at rtol 1e-6, so z agrees to about 1e-5 relative; log lambda_bar moves by no
    # more than the bound above, far below its spread (order one) across points.
    assert check["check_z_err"] < 1e-4, check
    assert (np.abs(log_lam_dp - log_lam[:m]) <= 1.001 * loglam_allowed + 1e-9).all(), check
    assert check["check_trace_err"] < 1e-5 * max(1.0, np.abs(log_det_den).max()), check
else:
    print(f"n = {n} > {check_max_n}: cross-checks skipped (they run in the small-n points of the sweep)")

# %% [markdown]
# ## Control: generated samples invert to Gaussian noise
#
# For $x = G(z)$ with $z \sim \mathcal N(0, I_n)$, $F(x) = z$, so $\sum_i \|F(x_i)\|^2$ over
# $m$ generated samples is $\chi^2_{mn}$: an exact test of the whole inversion pipeline.

# %%
gen = run.gen
xg = gm.sample(num_control, generator=gen).to(dev)                       # x ~ p_G
_, z2_gen, _ = invert_span(xg)
log_pG_gen = gm.log_prob(xg).cpu().numpy()
log_lam_gen = (-0.5 * z2_gen - 0.5 * n * math.log(2 * math.pi) - log_pG_gen) / n
chi2_total = z2_gen.sum()
p_chi2 = 2 * min(stats.chi2.cdf(chi2_total, num_control * n), stats.chi2.sf(chi2_total, num_control * n))
print(f"generated samples: sum ||F(x)||^2 = {chi2_total:.0f} for chi2 with {num_control * n} "
      f"degrees of freedom (two-sided p = {p_chi2:.2f}); P(lambda_bar > 1) = {np.mean(log_lam_gen > 0):.2f}")
assert p_chi2 > 1e-3, f"inverted generated samples are not N(0, I): p = {p_chi2:.2e}"

# %% [markdown]
# ## Theorem 4.1: $\delta_1$, $\delta_2$ and the bound
#
# $r$ is the $(1-\alpha)$ quantile of $\chi^2_n$, the radius that holds a fraction $1-\alpha$ of
# Gaussian noise: it is the choice under which $\delta_2 = \alpha$ if $F(x)$ were Gaussian (the
# assumption behind the chi-square tail of Theorem 4.3). $\gamma$ then follows from
# $\beta$ by Lemma D.2: $\log\gamma = -n\log\beta - \tfrac n2\log 2\pi - r/2$; with $\beta = 1$
# the bound certifies instability. The best bound over all $r$ (with $\gamma(r)$ again from
# $\beta$) is reported too: it is chosen after seeing the data, so it is optimistic.

# %%
r_ball = float(stats.chi2.ppf(1 - alpha, n))
log_gamma = -n * math.log(beta) - 0.5 * n * math.log(2 * math.pi) - 0.5 * r_ball
assert abs(float(bounds.log_beta(n, r_ball, log_gamma)) - math.log(beta)) < 1e-9
d1 = bounds.delta1_mc(log_pG, log_gamma)
d2 = bounds.delta2_mc(z2, r_ball)
lower = float(bounds.probability_lower_bound(d1.estimate, d2.estimate))
unstable = bounds.bernoulli_ci(int((log_lam > 0).sum()), N)
above_beta = bounds.bernoulli_ci(int((log_lam >= math.log(beta)).sum()), N)
# Lemma D.2 pointwise: ||z||^2 <= r and p_G(x) <= gamma imply lambda_bar >= beta
inside = (z2 <= r_ball) & (log_pG <= log_gamma)
assert (log_lam[inside] >= math.log(beta) - 1e-12).all(), "Lemma D.2 violated"
assert lower <= above_beta.estimate + 1e-12, "Theorem 4.1 violated on the sample"
# the sample values of ||F(x)||^2 attain the max over all r; r_ball first, reported on a tie
best = bounds.theorem41_best_bound(z2, log_pG, n, beta, r_candidates=np.r_[r_ball, np.sort(z2)])
# threshold: Theorem 4.1 holds on the sample for every r (empirical union bound); 1e-12 for
#   round-off
assert best.bound <= above_beta.estimate + 1e-12
print(f"r = chi2 quantile {1 - alpha}: r/n = {r_ball / n:.3f}, log(gamma)/n = {log_gamma / n:.3f}")
print(f"P(lambda_bar > 1) = {unstable.estimate:.3f} [{unstable.lower:.3f}, {unstable.upper:.3f}]; "
      f"P(lambda_bar >= beta = {beta}) = {above_beta.estimate:.3f}")
print(f"delta1 = {d1.estimate:.3f} [{d1.lower:.3f}, {d1.upper:.3f}], "
      f"delta2 = {d2.estimate:.3f} [{d2.lower:.3f}, {d2.upper:.3f}], bound 1 - d1 - d2 = {lower:.3f}")
print(f"best bound over r: {best.bound:.3f} at r/n = {best.r / n:.2f}")

# %% [markdown]
# ## Control: the uniform distribution on the cube
#
# Theorem 4.3 assumes that $q$ has a density bounded below on the whole cube $[-1, 1]^n$
# (Assumptions 4.1–4.2). The uniform distribution is the extreme case; the same quantities for
# `num_uniform` uniform points show what the theorem's own $q$ gives against the same $p_G$.

# %%
xu = torch.from_numpy(np.random.default_rng([seed, 1]).uniform(-1.0, 1.0, size=(num_uniform, n))).to(dev)
_, z2_uni, _ = invert_span(xu)
log_pG_uni = gm.log_prob(xu).cpu().numpy()
log_lam_uni = (-0.5 * z2_uni - 0.5 * n * math.log(2 * math.pi) - log_pG_uni) / n
uni = bounds.bernoulli_ci(int((log_lam_uni > 0).sum()), num_uniform)
d1_uni = float(np.mean(log_pG_uni > log_gamma))
d2_uni = float(np.mean(z2_uni > r_ball))
best_uni = bounds.theorem41_best_bound(z2_uni, log_pG_uni, n, beta).bound
# threshold: Theorem 4.1 holds on the sample for every r (empirical union bound); 1e-12 for
#   round-off
assert best_uni <= np.mean(log_lam_uni >= math.log(beta)) + 1e-12
print(f"uniform points: P(lambda_bar > 1) = {uni.estimate:.3f} [{uni.lower:.3f}, {uni.upper:.3f}], "
      f"median log lambda_bar {np.median(log_lam_uni):.2f}, ||F(x)||^2 / n median {np.median(z2_uni) / n:.1f}; "
      f"delta1 = {d1_uni:.3f}, delta2 = {d2_uni:.3f}, best bound over r {best_uni:.3f}")

# %% [markdown]
# ## Euler reconstruction
#
# $\hat G(\hat F(x))$ with `euler_steps` Euler steps each way, in the full space; the error is
# reported per pixel (RMSE, pixels in $[-1, 1]$).

# %%
t0 = time.perf_counter()
x_rec, _ = pfode.reconstruct(gm, x_t, method="euler", steps=euler_steps)
t_euler = time.perf_counter() - t0
rmse = ((x_rec - x_t) ** 2).mean(1).sqrt().cpu().numpy()
# the part of the error outside the span, where the exact flow is linear (x_perp / s and back)
rmse_perp = (span.split(x_rec - x_t)[1] ** 2).mean(1).sqrt().cpu().numpy()
assert np.isfinite(rmse).all()
uns = log_lam > 0


def med(v, sel):
    return float(np.median(v[sel])) if sel.any() else float("nan")


print(f"Euler ({euler_steps} + {euler_steps} steps, {t_euler:.2f} s): per-pixel RMSE median "
      f"{np.median(rmse):.3f}, mean {rmse.mean():.3f}; unstable points median "
      f"{med(rmse, uns):.3f}, stable points median {med(rmse, ~uns):.3f}; the part outside the "
      f"span alone: median {np.median(rmse_perp):.3f}")

# %% [markdown]
# ## Converged reconstruction
#
# A few tens of Euler steps (`euler_steps`) do not resolve the stiff inversion (the BDF solve
# above needs hundreds of evaluations per point), so the Euler error mixes discretisation
# error with the amplification by $G$. The round trip through the stiff solver separates the two. In the span,
# $\hat x_\parallel = G_V(\hat F_V(x_\parallel))$ by BDF both ways; the orthogonal part goes
# exactly to $x_\perp/s$ and back, so the per-pixel error is
# $\|\hat x_\parallel - x_\parallel\| / \sqrt n$. The round trip of `num_converge` points
# spread over the held-out set is repeated at the tighter tolerance `rtol_fine`: an error
# that falls with the tolerance is solver error; one that does not is the amplification by $G$
# of the error that remains, which no tolerance available in float64 removes.

# %%
t0 = time.perf_counter()
xr_par = pfode.generate(gmV, torch.from_numpy(z_par), method="scipy-bdf", rtol=rtol, atol=atol,
                        workers=workers).numpy()
rmse_bdf = np.linalg.norm(xr_par - x_par, axis=1) / math.sqrt(n)
t_bdf_gen = time.perf_counter() - t0
sel_conv = np.unique(np.linspace(0, N - 1, min(num_converge, N)).round().astype(int))
t0 = time.perf_counter()
xf_par = pfode.reconstruct(gmV, torch.from_numpy(x_par[sel_conv]), method="scipy-bdf", rtol=rtol_fine,
                           atol=atol_fine, workers=workers)[0].numpy()
t_fine = time.perf_counter() - t0
rmse_fine = np.full(N, np.nan)
rmse_fine[sel_conv] = np.linalg.norm(xf_par - x_par[sel_conv], axis=1) / math.sqrt(n)
assert np.isfinite(rmse_bdf).all() and np.isfinite(rmse_fine[sel_conv]).all()
gain = rmse_bdf[sel_conv] / np.maximum(rmse_fine[sel_conv], 1e-300)   # error ratio, coarse / fine
print(f"BDF round trip (rtol {rtol}, generation {t_bdf_gen:.1f} s): per-pixel RMSE median "
      f"{np.median(rmse_bdf):.2e}; unstable points median {med(rmse_bdf, uns):.2e}, stable points "
      f"median {med(rmse_bdf, ~uns):.2e}")
print(f"refined at rtol {rtol_fine} on {len(sel_conv)} points ({t_fine:.1f} s): error ratio coarse / fine "
      f"for the unstable ones {np.round(np.sort(gain[uns[sel_conv]]), 1)}, for the stable ones "
      f"{np.round(np.sort(gain[~uns[sel_conv]]), 1)} (tolerance ratio {rtol / rtol_fine:.0f})")

# %% mystnb={"figure": {"caption": "One point of the sweep. Left: the geometric instability $\\log\\bar\\lambda_G(F(x))$ of held-out real patches (the samples of $q$), of generated samples $x \\sim p_G$ and of points uniform on the cube; instability is $\\log\\bar\\lambda > 0$. Right: $\\|F(x)\\|^2 / n$ for the same points, against the value 1 of Gaussian noise and the radius $r/n$ of Theorem 4.1 (dashed).", "name": "fig-ch9-point"}}
fig, ax = plt.subplots(1, 2, figsize=(10, 3.6))
allv = np.concatenate([log_lam, log_lam_gen, log_lam_uni])
bins = np.linspace(allv.min(), allv.max(), 40)
ax[0].hist(log_lam, bins=bins, alpha=0.7, label=f"held-out patches (q), N = {N}")
ax[0].hist(log_lam_gen, bins=bins, alpha=0.7, label=f"generated (p_G), m = {num_control}")
ax[0].hist(log_lam_uni, bins=bins, alpha=0.5, label=f"uniform on the cube, m = {num_uniform}")
ax[0].axvline(0, color="k", lw=1)
ax[0].set_xlabel(r"$\log\bar\lambda_G(F(x))$")
ax[0].set_ylabel("count")
ax[0].legend(fontsize=8)
ax[0].set_title(f"n = {n}, K = {K}, s = {s}")
allz = np.concatenate([z2, z2_gen, z2_uni]) / n
zb = np.logspace(np.log10(allz.min()), np.log10(allz.max()), 40)
ax[1].hist(z2 / n, bins=zb, alpha=0.7, label="held-out patches (q)")
ax[1].hist(z2_gen / n, bins=zb, alpha=0.7, label="generated (p_G)")
ax[1].hist(z2_uni / n, bins=zb, alpha=0.5, label="uniform on the cube")
ax[1].axvline(1, color="k", lw=1)
ax[1].axvline(r_ball / n, color="k", ls="--", lw=1)
ax[1].set_xscale("log")
ax[1].set_xlabel(r"$\|F(x)\|^2 / n$")
ax[1].legend(fontsize=8)
fig.tight_layout()
pfode.nb.savefig(fig, "ch09_point")
plt.show()

# %% [markdown]
# ## Recorded numbers
#
# One summary row, and one row per held-out patch (`kind = "sample"`) so that the figures can
# show distributions and look for the patches that stay stable.

# %%
q = np.quantile(log_lam, [0.05, 0.25, 0.5, 0.75, 0.95])
summary = dict(
    kind="summary", n=n, D=D, N=N, smoke=pfode.nb.smoke(),
    p_unstable=unstable.estimate, p_unstable_lo=unstable.lower, p_unstable_hi=unstable.upper,
    p_beta=above_beta.estimate, p_beta_lo=above_beta.lower, p_beta_hi=above_beta.upper,
    delta1=d1.estimate, delta1_lo=d1.lower, delta1_hi=d1.upper,
    delta2=d2.estimate, delta2_lo=d2.lower, delta2_hi=d2.upper,
    bound=lower, best_bound=best.bound, r_best_over_n=best.r / n,
    r_over_n=r_ball / n, log_gamma_over_n=log_gamma / n,
    loglam_q05=q[0], loglam_q25=q[1], loglam_q50=q[2], loglam_q75=q[3], loglam_q95=q[4],
    z2_over_n_median=float(np.median(z2) / n),
    xperp2_over_s2n_median=float(np.median(x_perp2) / (s * s * n)),
    nn_rmse_median=float(np.median(nn_rmse)),
    rmse_median=float(np.median(rmse)), rmse_mean=float(rmse.mean()),
    rmse_unstable_median=float(np.median(rmse[uns])) if uns.any() else None,
    rmse_stable_median=float(np.median(rmse[~uns])) if (~uns).any() else None,
    rmse_perp_median=float(np.median(rmse_perp)),
    rmse_bdf_median=float(np.median(rmse_bdf)), rmse_bdf_unstable_median=med(rmse_bdf, uns),
    rmse_bdf_stable_median=med(rmse_bdf, ~uns), num_converge_points=len(sel_conv),
    t_bdf_gen_s=t_bdf_gen, t_fine_s=t_fine,
    p_unstable_generated=float(np.mean(log_lam_gen > 0)),
    p_unstable_uniform=uni.estimate, p_unstable_uniform_lo=uni.lower, p_unstable_uniform_hi=uni.upper,
    loglam_uniform_median=float(np.median(log_lam_uni)), z2_over_n_uniform_median=float(np.median(z2_uni) / n),
    delta1_uniform=d1_uni, delta2_uniform=d2_uni, best_bound_uniform=best_uni,
    z2_over_n_generated=float(z2_gen.mean() / n), chi2_p_generated=float(p_chi2),
    bdf_nfev_median=float(np.median(nfev)), bdf_nlu_median=float(np.median(nlu)),
    t_invert_s=t_invert, t_euler_s=t_euler, t_total_s=time.perf_counter() - t_start,
    **probe, **check)
samples = [dict(kind="sample", n=n, index=i, image=split.test_images[split.test_source[i]],
                log_lambda=float(log_lam[i]), z2_over_n=float(z2[i] / n),
                xperp2_over_s2n=float(x_perp2[i] / (s * s * n)), log_pG_over_n=float(log_pG[i] / n),
                nn_rmse=float(nn_rmse[i]), patch_std=float(patch_std[i]), rmse=float(rmse[i]),
                log_lambda_span=float(log_lam_V[i]), rmse_perp=float(rmse_perp[i]),
                rmse_bdf=float(rmse_bdf[i]), rmse_bdf_fine=float(rmse_fine[i]))
           for i in range(N)]
pfode.record.save_metrics([summary] + samples)
print(f"total {summary['t_total_s']:.1f} s")
