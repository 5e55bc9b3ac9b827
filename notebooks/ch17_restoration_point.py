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
# # Evaluating one trained restoration model
#
# Loads the network trained by `ch17_train_restoration` for one task, family and seed, restores
# every test condition of the task (`pfode.restoration.measurements`: the same clean images and
# the same measurements for every family and seed) by Euler–Maruyama with the learned score, at
# each step count of `steps_list`, and records PSNR and SSIM per image. One point of
# `sweeps/restoration_eval.yml`; the rows go to `results/d3gm_learned/table.csv`.
#
# Two outputs per run (column `last`): `"euler"`, the Euler–Maruyama sample itself, whose last
# step goes from $t_1 = t_{\rm start}/N$ to 0; and `"denoise"`, the denoiser's estimate
# $D(x_{t_1}, \mu, t_1) \approx \mathbb E[x_0 \mid x_{t_1}, \mu]$ taken instead of that last step
# (the final denoising step of Song et al. and EDM), from the same path, at one network
# evaluation more.

# %% tags=["parameters"]
task = "kspace"
family = "D3GM"
seed = 0
model_dir = ""              # default: models/restoration/<task>-<family>-s<seed>
num_test = 32               # test images per condition (the paired unit)
steps_list = [25, 100]      # Euler-Maruyama steps
sigma = 0.01
lam = 0.1
tau = 1.5
g_bridge = 0.3
eval_seed = 0               # measurements and sampler noise: the same for every family and seed
device = "cpu"
threads = 1

# %% tags=["hide-input"]
import time

import numpy as np
import torch

import pfode
import pfode.nb
import pfode.record
from pfode import restoration as R
from pfode import sde
from diffusers import UNet2DModel  # after pfode.nb, which silences tqdm's ipywidgets warning

run = pfode.nb.setup(globals(), threads=threads, smoke=dict(num_test=2, steps_list=lambda v: v[:1]))
fams = sde.families(lam=lam, tau=tau, g_bridge=g_bridge)
if family not in fams:
    raise ValueError(f"family must be one of {list(fams)}, got {family!r}")
process = fams[family]
path = pfode.nb.repo_root() / (model_dir or f"models/restoration/{task}-{family}-s{seed}")
if not (path / "config.json").exists():
    raise FileNotFoundError(f"no trained model at {path} (config.json missing): run "
                            f"notebooks/ch17_train_restoration.py for task={task!r}, family={family!r}, seed={seed}")
net = UNet2DModel.from_pretrained(path, low_cpu_mem_usage=False).to(device).eval()
size = net.config.sample_size
n = size * size
score = R.learned_score(net, process, size)
clock = time.perf_counter()
rows = []
for ci, (cond, (x, mu)) in enumerate(R.measurements(task, num_test, size, sigma=sigma, seed=eval_seed).items()):
    mu_f = mu.reshape(num_test, n).double()
    for steps in steps_list:
        xT = process.terminal(mu_f, num_test, torch.Generator().manual_seed(eval_seed + 100 + ci), t=process.t_start())
        before_last = {}

        def keep(i, t, x_i):
            if i == steps - 1:
                before_last.update(t=t, x=x_i)

        out = sde.euler_maruyama(process, score, xT, mu_f, steps=steps, t_start=process.t_start(),
                                 seed=eval_seed + 1000 * (ci + 1), callback=keep)
        t1 = torch.full((num_test,), float(before_last["t"]), dtype=torch.float64)
        with torch.no_grad():
            den = R.denoise(net, process, before_last["x"].reshape(num_test, 1, size, size).float(),
                            mu.float(), t1)
        for last, est in (("euler", out.reshape(num_test, 1, size, size).float()), ("denoise", den.float())):
            psnr, ssim = R.psnr_ssim(est, x)
            rows += [dict(condition=cond, steps=steps, last=last, image=i,
                          psnr=float(psnr[i]), ssim=float(ssim[i])) for i in range(num_test)]
            print(f"{cond}, {steps} steps, last step {last}: PSNR {psnr.mean():.2f} dB, SSIM {ssim.mean():.3f}")
pfode.record.save_metrics(rows)
print(f"{len(rows)} rows in {time.perf_counter() - clock:.1f} s")
