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
# # Restoration tables at small scale
#
# The five families of {ref}`ch-measure-preserving` restore 8×8 images with the exact score of the
# posterior under a mixture-of-Gaussian-neighbours prior (one component per training digit of
# scikit-learn's `load_digits`). Five degradations: 4× super-resolution (2×2 block average),
# Cartesian k-space undersampling ×4 and ×8 (MRI style), synthetic rain streaks, and haze
# (atmospheric scattering). Four test conditions: held-out digits of the prior's classes
# (in-domain), digits of other classes, in-domain digits under 3× stronger measurement noise than
# the model assumes, and the Shepp–Logan phantom (not a digit: a generalization test). PSNR/SSIM
# (mean ± 95 % half-width over test images) are reported next to classical baselines, the exact
# posterior mean and an exact posterior sample, followed by the paired differences between the
# families on the same images and noises, and an ablation over $\tau$ and the θ schedule for D³GM. Larger runs are a parameter change away, e.g.
# `papermill -p num_test 200 -p num_prior 800 -p steps 200 ...`.

# %% tags=["parameters"]
prior_classes = [0, 1, 2, 3, 4]   # the prior: training images of these classes
shift_classes = [5, 6, 7, 8, 9]   # the shifted test set
num_prior = 250                   # mixture components (training images)
s_prior = 0.1                     # component std (pixel values in [0, 1])
num_test = 24                     # images (phantom: noise draws) per test condition
sigma_y = 0.02                    # measurement noise assumed by the model
sigma_shift = 0.06                # measurement noise of the noise-shifted condition
haze_t = [0.8, 0.4]               # transmission, top row to bottom row (depth grows downwards)
haze_A = 0.9                      # airlight
rain_max = 3                      # streaks per image: 1..rain_max
rain_int = [0.3, 0.7]             # streak intensity range
rain_stats = 20000                # streak layers drawn to fit the Gaussian approximation
lam = 0.1
tau = 1.5
g_bridge = 0.3
eps_bridge = 0.01
steps = 80                        # Euler-Maruyama steps
taus = [1.0, 1.5, 2.5]            # ablation
kinds = ["linear", "quadratic", "log", "cosine"]
seed = 0

# %% tags=["hide-input"]
import math
import time

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from IPython.display import display
from skimage.data import shepp_logan_phantom
from skimage.metrics import peak_signal_noise_ratio, structural_similarity
from skimage.transform import resize
from sklearn.datasets import load_digits

import pfode
import pfode.nb
import pfode.stats
from pfode import sde

run = pfode.nb.setup(globals(), smoke=dict(   # smoke mode: caps and overrides
    num_prior=120, num_test=6, steps=40, rain_stats=4000, taus=lambda v: v[::2],
    kinds=lambda v: v[::3]))

clock = time.perf_counter()
dt = torch.float64
rng = run.rng
digits = load_digits()
X = digits.data / 16.0
lab = digits.target
idx_in = rng.permutation(np.flatnonzero(np.isin(lab, prior_classes)))
idx_sh = rng.permutation(np.flatnonzero(np.isin(lab, shift_classes)))
prior = sde.Mixture(torch.tensor(X[idx_in[:num_prior]], dtype=dt), s_prior ** 2)
phantom = resize(shepp_logan_phantom(), (8, 8), anti_aliasing=True)
phantom = (phantom / phantom.max()).ravel()                            # same [0, 1] range as the digits
x_in = torch.tensor(X[idx_in[num_prior:num_prior + num_test]], dtype=dt)
conditions = {"in-domain": (x_in, sigma_y),
              "other classes": (torch.tensor(X[idx_sh[:num_test]], dtype=dt), sigma_y),
              "noise x3": (x_in, sigma_shift),
              "phantom": (torch.tensor(phantom, dtype=dt).expand(num_test, -1).clone(), sigma_y)}
print(f"prior: {num_prior} images of classes {prior_classes}; {num_test} images per condition")

# %% [markdown]
# The degradations. The linear ones are dense matrices, $y = A x_0 + b + \sigma\varepsilon$, and the
# posterior is exact. Rain streaks are additive but not Gaussian: a rainy image is
# $y = x_0 + r + \sigma\varepsilon$ with $r$ a sum of one to three oblique line segments of random
# position, length and intensity. The exact score is available only for a linear-Gaussian
# measurement, so the model replaces the law of $r$ by the Gaussian with the same mean $m_r$ and
# covariance $\Sigma_r$ (fitted on independent streak layers): $A = I$ with structured noise
# $\Sigma_r + \sigma^2 I$, whitened to $W(y - m_r) = W x_0 + \varepsilon$, $W^\top W = (\Sigma_r +
# \sigma^2 I)^{-1}$. The papers instead learn a score conditioned on the rainy image from pairs; the
# moment-matched Gaussian is what a perfectly trained model that only captures second-order
# statistics of the streaks would know, and the streaks of the test images are drawn from the true
# (non-Gaussian) generator. Each family is attracted to an image-space $\mu$: the nearest-neighbour
# upsampled low-resolution image, the zero-filled inverse FFT, the rainy or hazy image.

# %%
n = 64
# 4x super-resolution: 2x2 block average (16 x 64)
A_sr = np.zeros((16, n))
for i in range(4):
    for j in range(4):
        for di in range(2):
            for dj in range(2):
                A_sr[4 * i + j, 8 * (2 * i + di) + 2 * j + dj] = 0.25
up_sr = np.zeros((n, 16))
for i in range(8):
    for j in range(8):
        up_sr[8 * i + j, 4 * (i // 2) + j // 2] = 1.0
# Cartesian k-space: keep whole phase-encoding rows of the 2-D DFT, real/imag stacked, unitary scale
F1 = np.fft.fft(np.eye(8), axis=0)
F2 = np.kron(F1, F1)                                                   # 2-D DFT on row-major 8x8


def kspace(rows):
    keep = [r * 8 + c for r in rows for c in range(8)]
    A = np.concatenate([F2[keep].real, F2[keep].imag]) / 8.0
    return A, np.linalg.pinv(A)                                        # zero-filling = pinv


A_k4, zf4 = kspace([0, 1])                                             # 16 of 64 samples: x4
A_k8, zf8 = kspace([0])                                                # 8 of 64 samples: x8
# zero-filling checked against numpy's FFT: pinv(A) A x = Re ifft2(mask . fft2 x), the mask closed under
# k -> -k (a real image's spectrum is Hermitian, so rows 0, 1 determine row 7)
xt = X[:5].reshape(5, 8, 8)
for A_, zf_, rows in ((A_k4, zf4, [0, 1, 7]), (A_k8, zf8, [0])):
    mask = np.zeros((8, 8))
    mask[rows] = 1
    ref = np.fft.ifft2(mask * np.fft.fft2(xt)).real.reshape(5, n)
    np.testing.assert_allclose(X[:5] @ A_.T @ zf_.T, ref, atol=1e-10)
# haze: y = t x + (1 - t) A_air, transmission varying by row
t_map = np.repeat(np.linspace(*haze_t, 8), 8)
A_hz = np.diag(t_map)


def rain_layers(num, gen):
    """Additive oblique streaks (two rows down per column right), 1..rain_max per image."""
    out = np.zeros((num, 8, 8))
    for i in range(num):
        for _ in range(gen.integers(1, rain_max + 1)):
            a, length = gen.uniform(*rain_int), gen.integers(4, 9)
            r0, c0 = gen.integers(0, 9 - length), gen.integers(-2, 8)
            for j in range(length):
                if 0 <= c0 + j // 2 < 8:
                    out[i, r0 + j, c0 + j // 2] += a
    return out.reshape(num, n)


R = rain_layers(rain_stats, np.random.default_rng(seed + 999))       # fitting set, independent of tests
m_r, S_r = R.mean(0), np.cov(R.T)
W_rain = np.linalg.inv(np.linalg.cholesky(S_r + sigma_y ** 2 * np.eye(n)))   # W (S_r + s^2 I) W^T = I
np.testing.assert_allclose(W_rain @ (S_r + sigma_y ** 2 * np.eye(n)) @ W_rain.T, np.eye(n), atol=1e-8)
print(f"rain: mean streak mass per image {R.sum(1).mean():.2f}; largest pixel std {np.sqrt(S_r.diagonal().max()):.3f}")


def linear_task(A, b, to_mu, baselines):
    A_t = torch.tensor(A, dtype=dt)
    return dict(simulate=lambda x0, sig, g, gen: x0 @ A_t.T + torch.tensor(b, dtype=dt)
                + sig * torch.randn(x0.shape[0], A.shape[0], generator=g, dtype=dt),
                model=lambda y: (A_t, y - torch.tensor(b, dtype=dt), sigma_y),
                to_mu=to_mu, baselines=baselines)


tasks = {
    "SR x4": linear_task(A_sr, np.zeros(16), lambda y: y @ up_sr.T,
                         {"nearest (measurement)": lambda y: y @ up_sr.T,
                          "bicubic": lambda y: np.stack([resize(r.reshape(4, 4), (8, 8), order=3).ravel() for r in y])}),
    "k-space x4": linear_task(A_k4, np.zeros(32), lambda y: y @ zf4.T, {"zero-filling": lambda y: y @ zf4.T}),
    "k-space x8": linear_task(A_k8, np.zeros(16), lambda y: y @ zf8.T, {"zero-filling": lambda y: y @ zf8.T}),
    "rain": dict(simulate=lambda x0, sig, g, gen: x0 + torch.tensor(rain_layers(x0.shape[0], gen), dtype=dt)
                 + sig * torch.randn(x0.shape, generator=g, dtype=dt),
                 model=lambda y: (torch.tensor(W_rain, dtype=dt), (y - torch.tensor(m_r, dtype=dt)) @ torch.tensor(W_rain, dtype=dt).T, 1.0),
                 to_mu=lambda y: y, baselines={"measurement": lambda y: y}),
    "haze": linear_task(A_hz, (1 - t_map) * haze_A, lambda y: y,
                        {"measurement": lambda y: y, "model inversion (known t, A)": lambda y: (y - (1 - t_map) * haze_A) / t_map}),
}
np.testing.assert_allclose(A_sr @ np.ones(n), np.ones(16))              # block average


def families(kind="cosine", tau_=tau):
    return sde.families(sde.ThetaSchedule.terminal(kind, target=0.01), lam=lam, tau=tau_, g_bridge=g_bridge)


def restore(proc, post, mu, path_seed):
    t0 = proc.t_start(eps_bridge)
    xT = proc.terminal(mu, mu.shape[0], torch.Generator().manual_seed(path_seed), t=t0)
    return sde.euler_maruyama(proc, sde.shared_cov_score(proc, post), xT, mu, steps=steps, t_start=t0, seed=path_seed)


class Scores(tuple):
    """(mean PSNR, 95 % half-width of the PSNR mean, mean SSIM) over the rows; ``.psnr`` keeps the
    PSNR of each row (image or noise draw) for paired comparisons."""


def scores(x, ref):
    x, ref = np.clip(np.asarray(x), 0, 1), np.asarray(ref)
    p = np.array([peak_signal_noise_ratio(r, e, data_range=1.0) for r, e in zip(ref, x)])
    s = np.mean([structural_similarity(r.reshape(8, 8), e.reshape(8, 8), data_range=1.0, win_size=3) for r, e in zip(ref, x)])
    out = Scores((p.mean(), 1.96 * p.std(ddof=1) / math.sqrt(len(p)), s))
    out.psnr = p
    return out


# %% [markdown]
# The sampler uses `sde.shared_cov_score`, the exact score in the eigenbasis of the shared posterior
# covariance; checked here against the general `sde.exact_score` on one posterior.

# %%
y0 = tasks["k-space x8"]["simulate"](x_in[:4], sigma_y, torch.Generator().manual_seed(seed), None)
A0, y0_lin, std0 = tasks["k-space x8"]["model"](y0)
post0 = sde.posterior(prior, A0, std0, y0_lin)
mu0 = torch.tensor(zf8 @ y0.numpy().T, dtype=dt).T
for proc in families().values():
    for t_ in (0.2, 0.7):
        np.testing.assert_allclose(sde.shared_cov_score(proc, post0)(mu0, t_, mu0).numpy(),
                                   sde.exact_score(proc, post0)(mu0, t_, mu0).numpy(), rtol=1e-8, atol=1e-8)

# %%
table, outputs = {}, {}
for it, (tname, task) in enumerate(tasks.items()):
    for ic, (cname, (x0, sig)) in enumerate(conditions.items()):
        g = torch.Generator().manual_seed(seed + 100 * it + ic)
        y = task["simulate"](x0, sig, g, np.random.default_rng(seed + 100 * it + ic))
        A, y_lin, std = task["model"](y)
        post = sde.posterior(prior, A, std, y_lin)
        mu = torch.tensor(task["to_mu"](y.numpy()), dtype=dt)
        row = {name: scores(fn(y.numpy()), x0.numpy()) for name, fn in task["baselines"].items()}
        row["posterior mean (MMSE)"] = scores(post.mean().numpy(), x0.numpy())
        row["exact posterior sample"] = scores(post.sample(x0.shape[0], g).numpy(), x0.numpy())
        for fname, proc in families().items():
            out = restore(proc, post, mu, seed + 1)
            row[fname] = scores(out.numpy(), x0.numpy())
            outputs[(tname, cname, fname)] = out
        outputs[(tname, cname, "mu")] = mu
        outputs[(tname, cname, "x0")] = x0
        outputs[(tname, cname, "posterior mean")] = post.mean()
        table[(tname, cname)] = row

fams = list(families())
full = pd.DataFrame({(tname, m): {c: f"{table[(tname, c)][m][0]:.2f} ± {table[(tname, c)][m][1]:.2f} / {table[(tname, c)][m][2]:.3f}"
                                  for c in conditions}
                     for tname in tasks for m in dict.fromkeys(m for c in conditions for m in table[(tname, c)])}).T
full.index.names = ["task", "method"]
print("PSNR (dB) ± 95 % half-width of the mean over test images / mean SSIM")
display(full)
print(f"elapsed {time.perf_counter() - clock:.1f} s")

# %% [markdown]
# The families compared with each other on the *same* images, measurements and noises: the paired
# difference of PSNR, D³GM minus each other family, averaged over the test images (for the phantom,
# over the noise draws), with a 95 % bootstrap interval (BCa) over those independent units.

# %%
pairs = {}
for tname in tasks:
    for cname in conditions:
        for f in fams:
            if f != "D3GM":
                pairs[(tname, cname, f)] = pfode.stats.paired_difference(
                    table[(tname, cname)]["D3GM"].psnr, table[(tname, cname)][f].psnr)
paired = pd.DataFrame({(tname, f"D3GM - {f}"): {c: f"{pairs[(tname, c, f)]:.2f}" for c in conditions}
                       for tname in tasks for f in fams if f != "D3GM"}).T
paired.index.names = ["task", "paired PSNR difference (dB)"]
display(paired)
n_excl = sum(iv.low > 0 or iv.high < 0 for iv in pairs.values())
in_dom = [iv for k, iv in pairs.items() if k[1] == "in-domain" and k[2] != "Bridge (I2SB)"]
print(f"{n_excl} of {len(pairs)} intervals exclude 0; in domain, D3GM minus SGM / IR-SDE / decoupled: "
      f"estimates in [{min(iv.estimate for iv in in_dom):.2f}, {max(iv.estimate for iv in in_dom):.2f}] dB, "
      f"interval ends in [{min(iv.low for iv in in_dom):.2f}, {max(iv.high for iv in in_dom):.2f}] dB")
ou_vp = {k: iv for k, iv in pairs.items() if k[2] != "Bridge (I2SB)"}
print(f"D3GM against SGM, IR-SDE and the decoupled OU ({len(ou_vp)} pairs): |estimate| at most "
      f"{max(abs(iv.estimate) for iv in ou_vp.values()):.2f} dB; {sum(iv.low > 0 for iv in ou_vp.values())} intervals "
      f"above 0, {sum(iv.high < 0 for iv in ou_vp.values())} below 0 (at 95 %, about {0.05 * len(ou_vp):.0f} expected "
      f"by chance if all differences were 0)")
# threshold: the families target the same posterior, so a paired difference is discretisation
#   and sampling noise only; the text's margin: no interval lies entirely beyond 1 dB either way
#   (no pair is resolved to differ by more than 1 dB)
assert all(iv.low < 1 and iv.high > -1 for iv in ou_vp.values()), {k: iv for k, iv in ou_vp.items()
                                                                   if iv.low >= 1 or iv.high <= -1}
bridge_haze = pairs[("haze", "in-domain", "Bridge (I2SB)")]
print(f"haze, in domain, D3GM minus the bridge: {bridge_haze:.2f} dB")
# threshold: the bridge's larger discretisation error where the posterior is narrowest (haze): the
#   interval of the paired difference lies above 0
assert bridge_haze.low > 0, bridge_haze

# %% [markdown]
# The claims, asserted. (1) The exact posterior mean, which minimises the expected squared error, has
# a higher in-domain PSNR than every sampler. (2) All five families sample the same posterior, so
# in-domain the four OU/VP families agree with an exact posterior sample to within 1.5 dB; the
# bridge, whose drift is singular at $T$, is printed separately (its Euler–Maruyama error with this
# number of steps is larger where the posterior is narrow). (3) With digits of other classes the
# prior is wrong: every sampler loses PSNR relative to in-domain, for every task. The noise-shifted
# condition and the phantom are reported, not asserted: where the measurement is weak (k-space ×8)
# the posterior is dominated by the prior and 3× the assumed noise changes little, and nothing in
# the setting fixes the sign of the phantom's loss in advance.

# %%
for tname in tasks:
    row = table[(tname, "in-domain")]
    # threshold: the MMSE estimator has the smallest expected squared error, so the highest PSNR;
    #   an exact ordering
    assert all(row["posterior mean (MMSE)"][0] > row[f][0] for f in fams), (tname, row)
    gaps = {f: round(float(row[f][0] - row["exact posterior sample"][0]), 2) for f in fams}
    loss = {c: [round(float(row[f][0] - table[(tname, c)][f][0]), 2) for f in fams] for c in conditions if c != "in-domain"}
    print(f"{tname}: in-domain PSNR minus exact-sample PSNR {gaps}; loss per family {loss}")
    # threshold: the claim of the text (every family samples the exact posterior, so their PSNR is
    #   that of an exact posterior sample, within 1.5 dB)
    assert all(abs(v) < 1.5 for f, v in gaps.items() if f != "Bridge (I2SB)"), (tname, gaps)
    assert all(v > 0 for v in loss["other classes"]), (tname, loss["other classes"])

# %% [markdown]
# ## Ablation: D³GM's stiffness τ and θ schedule (super-resolution)

# %%
tname = "SR x4"
ablation = {}
for cname in ("in-domain", "other classes"):
    x0, sig = conditions[cname]
    g = torch.Generator().manual_seed(seed + 5)
    y = tasks[tname]["simulate"](x0, sig, g, None)
    A, y_lin, std = tasks[tname]["model"](y)
    post = sde.posterior(prior, A, std, y_lin)
    mu = torch.tensor(tasks[tname]["to_mu"](y.numpy()), dtype=dt)
    for kind in kinds:
        for tau_ in taus:
            ablation[(cname, kind, tau_)] = scores(restore(families(kind, tau_)["D3GM"], post, mu, seed + 1).numpy(), x0.numpy())
abl = pd.DataFrame([{"schedule": kind, "tau": tau_,
                     **{f"{c} PSNR ± hw / SSIM": f"{ablation[(c, kind, tau_)][0]:.2f} ± {ablation[(c, kind, tau_)][1]:.2f} / "
                        f"{ablation[(c, kind, tau_)][2]:.3f}" for c in ("in-domain", "other classes")}}
                    for kind in kinds for tau_ in taus]).set_index(["schedule", "tau"])
display(abl)
vals = np.array([v[0] for k, v in ablation.items() if k[0] == "in-domain"])
half = max(v[1] for k, v in ablation.items() if k[0] == "in-domain")
print(f"in-domain PSNR range over the ablation: {vals.max() - vals.min():.2f} dB (95% half-width of one entry ≤ {half:.2f} dB)")
assert vals.max() - vals.min() < 1.5, "the ablation changes the in-domain PSNR by more than sampling noise"

# %% mystnb={"figure": {"caption": "Restorations with the exact posterior score. For each task (column groups), three columns: an in-domain digit, a digit of a class absent from the prior, and the Shepp–Logan phantom (not a digit; the next figure shows it at full resolution). Rows: ground truth, the measurement $\\mu$ each family is attracted to, the exact posterior mean, the restorations of the five families. Every pixel is drawn as a square (no interpolation), grey scale from 0 (black) to 1 (white).", "name": "fig-ch13-examples"}}
rows = ["x0", "mu", "posterior mean"] + fams
cols = {"in-domain": "in-domain", "other classes": "other class", "phantom": "phantom"}
fig, axes = plt.subplots(len(rows), len(cols) * len(tasks), figsize=(0.95 * len(cols) * len(tasks), 1.0 * len(rows) + 0.5))
for c, tname in enumerate(tasks):
    for j, cname in enumerate(cols):
        for r, key in enumerate(rows):
            ax = axes[r, len(cols) * c + j]
            ax.imshow(outputs[(tname, cname, key)][0].numpy().reshape(8, 8), cmap="gray", vmin=0, vmax=1,
                      interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0 and j == 0:
                ax.set_ylabel({"x0": "truth", "mu": "$\\mu$", "posterior mean": "post. mean"}.get(key, key),
                              fontsize=7, rotation=0, ha="right", va="center")
        axes[0, len(cols) * c + j].set_title((f"{tname}\n" if j == 1 else "\n") + cols[cname], fontsize=7)
fig.tight_layout(h_pad=0.2, w_pad=0.2)
pfode.nb.savefig(fig, "ch13_examples")
plt.show()

# %%
full_res = shepp_logan_phantom()
fig, axes = plt.subplots(1, 2, figsize=(6.4, 3.0))
axes[0].imshow(full_res, cmap="gray", vmin=0, vmax=full_res.max(), interpolation="nearest")
axes[0].set_title(f"Shepp–Logan phantom, {full_res.shape[0]}×{full_res.shape[1]}", fontsize=9)
axes[1].imshow(phantom.reshape(8, 8), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
axes[1].set_title("the 8×8 test image (anti-aliased, scaled)", fontsize=9)
for ax in axes:
    ax.set_xticks([])
    ax.set_yticks([])
fig.tight_layout()
_ = pfode.nb.publish(fig, "ch13_phantom", "fig-ch13-phantom", res=f"{full_res.shape[0]}×{full_res.shape[1]}")

# %% [markdown]
# ```{glue:figure} fig-ch13-phantom
# :name: fig-ch13-phantom
#
# The test image of the phantom condition: `skimage.data.shepp_logan_phantom()` at its own
# resolution, {glue:text}`fig-ch13-phantom-res` (left), and the 8×8 image restored here (right), the
# same phantom reduced with anti-aliasing and scaled to $[0, 1]$, every pixel drawn as a square.
# At 8×8 the bright skull ring and a dark centre (the two dark ellipses merged) survive; the small
# inner features are below the resolution.
# ```

# %% mystnb={"figure": {"caption": "PSNR of the five families with the exact posterior score against the exact posterior mean (MMSE), an exact posterior sample and the best classical baseline, per task and test condition; error bars: 95 % half-widths over test images (for the phantom, over noise draws).", "name": "fig-ch13-psnr"}}
fig, axes = plt.subplots(1, len(tasks), figsize=(3.2 * len(tasks), 3.6))
refs = ["posterior mean (MMSE)", "exact posterior sample"]
for ax, tname in zip(axes, tasks):
    for k, m in enumerate(fams + refs + ["best baseline"]):
        xs, ys, es = [], [], []
        for ic, cname in enumerate(conditions):
            row = table[(tname, cname)]
            key = max(tasks[tname]["baselines"], key=lambda b: row[b][0]) if m == "best baseline" else m
            xs.append(ic + 0.09 * (k - 3.5))
            ys.append(row[key][0])
            es.append(row[key][1])
        style = dict(fmt="o", ms=3, capsize=2) if m in fams else dict(fmt="s" if m != "best baseline" else "x", ms=4, capsize=2)
        ax.errorbar(xs, ys, yerr=es, label=m, **style)
    ax.set_xticks(range(len(conditions)))
    ax.set_xticklabels(list(conditions), rotation=30, fontsize=8)
    ax.set_title(tname, fontsize=9)
axes[0].set_ylabel("PSNR (dB)")
fig.legend(*axes[0].get_legend_handles_labels(), loc="lower center", ncol=8, fontsize=8, frameon=False)
fig.tight_layout(rect=(0, 0.09, 1, 1))
pfode.nb.savefig(fig, "ch13_psnr")
plt.show()
print(f"total elapsed {time.perf_counter() - clock:.1f} s")
