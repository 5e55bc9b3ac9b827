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
# # One point of the memorisation sweep: a field trained (or built) on N patches
#
# One row of the verdict table of [the memorisation chapter](../book/ch15_memorisation.md): a
# field of one kind built on (or trained on) `N` training patches of six photographs, measured
# on the same held-out patches of two other photographs. The sweep
# `sweeps/memorisation.yml` runs this notebook for every kind and `N` and keeps each executed
# copy under `results/memorisation/`; the chapter's figures are drawn from its table.
#
# The kinds (`field`):
#
# - `mixture`: the exact mixture of Gaussian neighbours of the N patches (the optimum of the
#   training loss on a finite set: a memorising model);
# - `local-score`: the location-specific local score machine on the same patches
#   ({eq}`eq-ls-velocity`): closed form, exact Jacobians, patch-local posteriors;
# - `trained-mmdit`: the MMDiT trained with the rectified-flow loss on the same N patches
#   (`models/memorisation/mmdit-N<N>`).
#
# Per held-out patch $x$ it measures, for Euler and Heun on the SD3 shifted grid: the
# reconstruction error $E(x)$, the inverted noise $\hat z$ against the tightly solved noise
# $z^*$, the paper's perturbation estimate $\kappa$, the exact directional instability $\lambda$
# along random directions and along the top singular direction of the discrete $J_{\hat G}$
# (batched Lanczos), $\bar\lambda$ by the Liouville integral with Hutchinson probes, and
# $\|\hat F(x)\|^2/n$. Over generated samples it measures memorisation by the nearest-neighbour
# ratio test.

# %% tags=["parameters"]
field = "mixture"           # the kind: "mixture", "local-score" or "trained-mmdit"
N = 128                     # training patches (for trained-mmdit: the model trained on N)
r = 16                      # patch side; n = 3 r^2 = 768
crop = 32                   # crop side in the photograph, averaged down to r x r
data_seed = 0
std = 0.05                  # component std s of the mixture and of the local score machine
patch = 5                   # window side P of the local score machine
model_root = "models/memorisation"   # trained models: <model_root>/mmdit-N<N>
num_test = 40               # held-out patches (the same for every kind and N)
num_samples = 64            # generated samples for the memorisation test
ratio_threshold = 1 / 3     # memorised: nearest / second-nearest training distance below this
steps = 100                 # solver steps of inversion and of generation
shift = 3.0                 # SD3 time shift of the grid (1.0: uniform)
methods = ["euler", "heun"]
tight_steps = 200           # RK4 steps of the tightly solved noise z* (checked against half as many)
perturb_std = 1e-3          # the paper's perturbation: Delta ~ N(0, perturb_std^2 I)
num_directions = 2          # perturbations (and random JVP directions) per patch
lanczos_iters = 8           # Golub–Kahan–Lanczos iterations for sigma_max of J_G (Euler)
num_probes = 2              # independent Hutchinson estimates of the Liouville integral per patch
liouville_rtol = 1e-4       # dopri5 tolerance (rtol = atol) of the Liouville integral
liouville_max_nfe = 1200    # evaluation budget of that solve (beyond it: not resolved)
n_boot = 2000
seed = 0
threads = 1

# %% tags=["hide-input"]
import math
import time

import numpy as np
import pandas as pd
import torch
from IPython.display import display

import pfode
import pfode.data
import pfode.nb
import pfode.record
import pfode.stats
from pfode import diffusers_field as dfl

run = pfode.nb.setup(globals(), threads=threads, smoke=dict(
    num_test=6, num_samples=8, steps=6, tight_steps=12, num_directions=1, lanczos_iters=3,
    num_probes=2, liouville_rtol=1e-2, liouville_max_nfe=200, n_boot=100, N=lambda n: min(n, 16)))
print(run)
KINDS = ("mixture", "local-score", "trained-mmdit")
if field not in KINDS:
    raise ValueError(f"field must be one of {', '.join(KINDS)}; got {field!r}")
if not 0 < ratio_threshold < 1:
    raise ValueError(f"ratio_threshold must be in (0, 1), got {ratio_threshold}")
unknown = sorted(set(methods) - {"euler", "heun"})
if unknown:
    raise ValueError(f"methods must be among euler, heun; got {unknown}")
t_start = time.time()

# %% [markdown]
# ## Data and the field
#
# The split is the one the trained models saw (the data specification of their training logs):
# `N` crops of six photographs averaged down to $16\times16$ RGB, and held-out crops of
# `astronaut` and `flower`. The held-out patches are the same for every kind and `N` (they
# depend on the seed only), so the rows of the table are paired.

# %%
spec = dict(r=r, crop=crop, num_train=N, num_test=1000, data_seed=data_seed)
if field == "trained-mmdit":
    model_dir = pfode.nb.repo_root() / model_root / f"mmdit-N{N}"
    split = pfode.data.trained_model_split(model_dir)
    if {k: split.spec[k] for k in spec} != spec:
        raise ValueError(f"the model in {model_dir} was trained on {split.spec}, not on {spec}")
else:
    split = pfode.data.trained_model_split(spec)
full = pfode.data.patch_split(r, N, 1000, crop=crop, seed=data_seed)
np.testing.assert_array_equal(full.test, split.test)
pick = np.random.default_rng(seed).choice(len(split.test), num_test, replace=False)
train = torch.tensor(pfode.data.to_chw(split.train))                       # (N, n) float64
x = torch.tensor(pfode.data.to_chw(split.test[pick]))                      # (num_test, n)
photo = np.array(split.test_images)[full.test_source[pick]]
n = x.shape[1]
if field == "mixture":
    v = pfode.GaussianMixture(train, std)
elif field == "local-score":
    v = pfode.LocalScoreMachine(train, patch, std, shape=(3, r, r))
else:
    v = dfl.DiffusersField(dfl.load_transformer(model_dir))
print(f"{field}: {v}; N = {N}, n = {n}; {num_test} held-out patches "
      f"({', '.join(f'{(photo == p).sum()} of {p}' for p in split.test_images)})")

# %% [markdown]
# ## Memorisation of the generated samples
#
# `num_samples` samples $\hat G(z)$ from seeded noise (Euler on the same grid). For each, the
# distances $d_1 \le d_2$ to its two nearest training patches; a sample is *memorised* when
# $d_1 / d_2 <$ `ratio_threshold` (the ratio test of the memorisation literature). With
# $N = 1$ there is no second neighbour and the test is undefined.

# %%
ts_gen = dfl.shift_sigma(torch.linspace(1.0, 0.0, steps + 1, dtype=torch.float64), shift)
ts_gen[0], ts_gen[-1] = 1.0, 0.0
G = {m: dfl.schedule_map(v, ts_gen, m) for m in methods}
F = {m: dfl.schedule_map(v, ts_gen.flip(0), m) for m in methods}


def nearest_two(y):
    """Distances to the two nearest training patches, (B, 2), one GEMM."""
    d2 = ((y * y).sum(1, keepdim=True) - 2 * y @ train.T + (train * train).sum(1)).clamp_min(0)
    return d2.topk(2, dim=1, largest=False).values.sqrt()


z_samples = torch.randn(num_samples, n, generator=run.gen, dtype=torch.float64)
with torch.no_grad():
    samples = G["euler"](z_samples)
d_samples = nearest_two(samples).numpy()
ratio = d_samples[:, 0] / d_samples[:, 1]
memorised = ratio < ratio_threshold
d_test = nearest_two(x).numpy()
print(f"samples: memorised {memorised.mean():.2f} (ratio < {ratio_threshold:.3f}); median d1 "
      f"{np.median(d_samples[:, 0]):.3f} (held-out patches: {np.median(d_test[:, 0]):.3f})")

# %% [markdown]
# ## Reconstruction, its split, and the instability coefficients
#
# $\hat z = \hat F(x)$, $E(x) = \|\hat G(\hat z) - x\|$. The tightly solved noise $z^*$ is the
# RK4 inversion with `tight_steps` steps on the same shifted grid (its error is estimated from
# the run with half as many steps, a Richardson difference). The split
# $E(x) \le \kappa^*\,\|\hat z - z^*\| + \|\hat G(z^*) - x\|$ with
# $\kappa^* = \|\hat G(\hat z) - \hat G(z^*)\| / \|\hat z - z^*\|$ is the triangle inequality:
# the first term is the inversion error amplified by the regeneration map, the second the
# regeneration's own discretisation error.

# %%
with torch.no_grad():
    ts_tight = dfl.shift_sigma(torch.linspace(0.0, 1.0, tight_steps + 1, dtype=torch.float64), shift)
    ts_half = ts_tight[::2].clone()
    z_star = dfl.schedule_map(v, ts_tight, "rk4")(x)
    z_half = dfl.schedule_map(v, ts_half, "rk4")(x)
tight_err = ((z_star - z_half).norm(dim=1) / 15).numpy()       # RK4: error of z* ~ difference / (2^4 - 1)
print(f"z*: ||z*|| median {np.median(z_star.norm(dim=1).numpy()):.3g}; estimated error median "
      f"{np.median(tight_err):.2e}, max {tight_err.max():.2e}")

rows = []
per_method = {}
for m in methods:
    t0 = time.time()
    with torch.no_grad():
        z_hat = F[m](x)
        x_rec = G[m](z_hat)
        x_star = G[m](z_star)
    err = (x_rec - x).norm(dim=1).numpy()
    dz = (z_hat - z_star).norm(dim=1).numpy()
    kappa_star = ((x_rec - x_star).norm(dim=1).numpy()) / dz
    e_gen = (x_star - x).norm(dim=1).numpy()
    kap, lam = [], []
    for _ in range(num_directions):
        delta = perturb_std * torch.randn(z_hat.shape, generator=run.gen, dtype=torch.float64)
        with torch.no_grad():
            x_pert = G[m](z_hat + delta)
        kap.append(((x_pert - x_rec).norm(dim=1) / delta.norm(dim=1)).numpy())
        if m == "euler":                       # the exact JVP along the same directions (Euler only: cost)
            lam.append(pfode.directional_instability(G[m], z_hat, delta).detach().numpy())
    per_method[m] = dict(z_hat=z_hat, err=err, kappa=np.mean(kap, 0),
                         lam=np.mean(lam, 0) if lam else np.full(num_test, np.nan), dz=dz,
                         kappa_star=kappa_star, e_gen=e_gen)
    print(f"{m:5s}: E median {np.median(err):.3g}; kappa median {np.median(per_method[m]['kappa']):.3g}; "
          f"||z_hat - z*|| median {np.median(dz):.3g}; {time.time() - t0:.0f} s")

# %% [markdown]
# Checks against independent truths: the split is the triangle inequality, so it must hold for
# every patch; with Euler, $\kappa$ (a finite difference) and $\lambda$ (the exact JVP of the
# same discrete map along the same directions) agree where the map is smooth on the scale of
# $\Delta$.

# %%
for m, res in per_method.items():
    bound = res["kappa_star"] * res["dz"] + res["e_gen"]
    # threshold: the triangle inequality up to float64 round-off of the norms (1e-9 relative)
    assert np.all(res["err"] <= bound * (1 + 1e-9) + 1e-12), f"{m}: E exceeds its split"
    share = np.median(res["kappa_star"] * res["dz"] / bound)
    check = ""
    if m == "euler":
        rel = np.abs(res["kappa"] - res["lam"]) / res["lam"]
        check = f"|kappa - lambda| / lambda median {np.median(rel):.1e}; "
    print(f"{m:5s}: {check}share of the split taken by the amplified inversion error {share:.2f} (median)")

# %% [markdown]
# ## The top singular direction against random directions (an intervention)
#
# $\sigma_{\max}(J_{\hat G}(\hat z))$ by batched Golub–Kahan–Lanczos (`lanczos_iters` JVPs and
# VJPs of the whole batch), and the directional instability along random directions. A
# perturbation along the top singular vector is amplified by $\sigma_{\max}$; a random one by
# about the root-mean-square singular value. The intervention: perturb $\hat z$ by
# $\Delta = $ `perturb_std` $\sqrt n\,u_{\rm top}$ and measure the finite-difference $\kappa$
# along it.

# %%
t0 = time.time()
top = pfode.top_singular_value(G["euler"], per_method["euler"]["z_hat"], iters=lanczos_iters,
                               generator=torch.Generator().manual_seed(seed + 7))
sigma_max = top.value.numpy()
with torch.no_grad():
    zh = per_method["euler"]["z_hat"]
    d_top = perturb_std * math.sqrt(n) * top.vector
    kappa_top = ((G["euler"](zh + d_top) - G["euler"](zh)).norm(dim=1) / d_top.norm(dim=1)).numpy()
print(f"sigma_max median {np.median(sigma_max):.3g} (Lanczos change in the last iteration: median "
      f"{np.median(top.change.numpy()):.1e}); kappa along u_top median {np.median(kappa_top):.3g} "
      f"vs random {np.median(per_method['euler']['kappa']):.3g}; {time.time() - t0:.0f} s")
# threshold: where the Ritz value has converged (change below 1e-6 in the last iteration) it is
# sigma_max, which no direction may exceed; 1e-6 relative covers the round-off of the two JVP routes
conv = top.change.numpy() < 1e-6
assert np.all(per_method["euler"]["lam"][conv] <= sigma_max[conv] * (1 + 1e-6)), "a direction beats sigma_max"
print(f"Lanczos converged for {conv.sum()} of {num_test} patches")

# %% [markdown]
# ## The geometric average by the Liouville integral
#
# $\log|\det J_F(x)| = \int_0^1 \operatorname{div} v(x_t, t)\,dt$ along the inversion path
# (adaptive dopri5 at tolerance `liouville_rtol`, at most `liouville_max_nfe` evaluations:
# near $t = 0$ the divergence has short spikes where the posterior switches between training
# patches, which fixed grids step over), with the divergence estimated by one Rademacher
# Hutchinson probe held along the path, `num_probes` independent times per patch;
# $\bar\lambda_G(F(x)) = \exp(-\log|\det J_F(x)|/n)$. The spread of the independent
# estimates is the estimator's error, and a patch counts as unstable or stable only when its
# mean is two standard errors away from $\log\bar\lambda = 0$.
#
# For the mixture the density side of Lemma D.1,
# $\log|\det J_G(z^*)| = \log\varphi_n(z^*) - \log p_G(x)$, needs no integral of the
# divergence at all: it is the value used for the mixture, and the check of the Hutchinson route.

# %%
t0 = time.time()
R = num_probes
try:
    with torch.no_grad():
        _, ld = pfode.log_det_jacobian(v, x.repeat(R, 1), direction="invert", method="dopri5",
                                       rtol=liouville_rtol, atol=liouville_rtol, trace="hutchinson",
                                       num_probes=1, generator=torch.Generator().manual_seed(seed + 11),
                                       max_nfe=liouville_max_nfe)
    ld = ld.numpy().reshape(R, num_test) / n                             # log|det J_F(x)| / n
    log_lam_hutch = -ld.mean(0)
    log_lam_se = ld.std(0, ddof=1) / math.sqrt(R) if R > 1 else np.full(num_test, np.nan)
    resolved = True
except pfode.BudgetExceeded as exc:
    print(f"Liouville integral not resolved within {liouville_max_nfe} evaluations: {exc}")
    log_lam_hutch = log_lam_se = np.full(num_test, np.nan)
    resolved = False
print(f"Hutchinson: median log lambda_bar {np.nanmedian(log_lam_hutch) if resolved else float('nan'):.3g}, "
      f"median standard error {np.nanmedian(log_lam_se) if resolved else float('nan'):.2g}; {time.time() - t0:.0f} s")
exact_check = {}
if field == "mixture":
    log_lam = (pfode.log_det_from_density(v, z_star, x).numpy()) / n        # log lambda_bar_G(z*)
    log_lam_se_used = np.zeros(num_test)
    if resolved:
        diff = log_lam_hutch - log_lam
        exact_check = dict(hutchinson_minus_density_median=float(np.median(diff)),
                           hutchinson_within_2se=float(np.mean(np.abs(diff) <= 2 * log_lam_se)),
                           hutchinson_same_side=float(np.mean((log_lam_hutch > 0) == (log_lam > 0))))
        print(f"Hutchinson - density side, log lambda_bar: median {np.median(diff):+.2e}; within two "
              f"standard errors for {exact_check['hutchinson_within_2se']:.2f}; same side of 1 for "
              f"{exact_check['hutchinson_same_side']:.2f}")
else:
    log_lam, log_lam_se_used = log_lam_hutch, log_lam_se
lam_bar = np.exp(log_lam)
decided_up = log_lam > 2 * log_lam_se_used
decided_down = log_lam < -2 * log_lam_se_used
print(f"lambda_bar median {np.nanmedian(lam_bar):.3g}; P(lambda_bar > 1) = {np.mean(decided_up):.2f} "
      f"(undecided {1 - np.mean(decided_up) - np.mean(decided_down):.2f})")

# %% [markdown]
# ## The row of the table

# %%
fx = per_method["euler"]["z_hat"].pow(2).sum(1).numpy() / n        # ||F_hat(x)||^2 / n (Euler)
e, k = per_method["euler"]["err"], per_method["euler"]["kappa"]
boot = dict(n_resamples=n_boot, seed=seed)
rho = pfode.stats.correlation(np.log(k), np.log(e), "spearman", **boot)


def slopes(lk, ldz, le):
    """OLS of log E on [1, log kappa, log ||z_hat - z*||]: the identity predicts slope 1 on log kappa."""
    coef, *_ = np.linalg.lstsq(np.column_stack([np.ones_like(lk), lk, ldz]), le, rcond=None)
    return coef


logs = (np.log(k), np.log(per_method["euler"]["dz"]), np.log(e))
slope_k = pfode.stats.bootstrap(lambda *a: slopes(*a)[1], *logs, **boot)
slope_dz = pfode.stats.bootstrap(lambda *a: slopes(*a)[2], *logs, **boot)
row = dict(field=field, N=N, n=n, smoke=run.smoke,
           memorised_fraction=float(memorised.mean()),
           nn_distance_median=float(np.median(d_samples[:, 0])),
           nn_ratio_median=float(np.median(ratio)),
           test_nn_distance_median=float(np.median(d_test[:, 0])),
           p_lambda_bar_gt_1=float(np.mean(decided_up)),
           p_lambda_bar_undecided=float(1 - np.mean(decided_up) - np.mean(decided_down)),
           lambda_bar_median=float(np.nanmedian(lam_bar)), liouville_resolved=resolved,
           kappa_median=float(np.median(k)),
           kappa_median_low=0.0, kappa_median_high=0.0,
           E_median=float(np.median(e)), E_median_low=0.0, E_median_high=0.0,
           spearman_E_kappa=rho.estimate, spearman_low=rho.low, spearman_high=rho.high,
           slope_log_kappa=slope_k.estimate, slope_log_kappa_low=slope_k.low, slope_log_kappa_high=slope_k.high,
           slope_log_dz=slope_dz.estimate,
           fx_norm2_over_n=float(np.median(fx)),
           sigma_max_median=float(np.median(sigma_max)),
           kappa_top_median=float(np.median(kappa_top)),
           top_over_random_median=float(np.median(kappa_top / k)),
           dz_median=float(np.median(per_method["euler"]["dz"])),
           tight_error_max=float(tight_err.max()),
           seconds=round(time.time() - t_start, 1), **exact_check)
for name, vals in (("kappa_median", k), ("E_median", e)):
    iv = pfode.stats.bootstrap(np.median, vals, **boot)
    row[name + "_low"], row[name + "_high"] = iv.low, iv.high
for m in methods:
    res = per_method[m]
    row[f"E_median_{m}"] = float(np.median(res["err"]))
    row[f"kappa_median_{m}"] = float(np.median(res["kappa"]))
fx_iv = pfode.stats.bootstrap(np.median, fx, **boot)
row["fx_norm2_over_n_low"], row["fx_norm2_over_n_high"] = fx_iv.low, fx_iv.high
per_patch = pd.DataFrame(dict(
    patch_index=pick, photo=photo, test_nn_distance=d_test[:, 0], lambda_bar=lam_bar,
    log_lambda_bar_se=log_lam_se_used, log_lambda_bar_hutchinson=log_lam_hutch, fx_norm2_over_n=fx,
    sigma_max=sigma_max, kappa_top=kappa_top,
    **{f"{q}_{m}": per_method[m][q] for m in methods for q in ("err", "kappa", "lam", "dz", "kappa_star", "e_gen")
       if not (q == "lam" and m != "euler")}))
display(pd.DataFrame([row]).T.rename(columns={0: "value"}))
pfode.record.save_metrics([row])
per_patch.to_csv(pfode.record.metrics_path().with_name("per_patch.csv") if pfode.record.metrics_path()
                 else pfode.nb.figure_dir() / f"ch15_point_{field}_N{N}.csv", index=False)
print(f"done in {time.time() - t_start:.0f} s")
