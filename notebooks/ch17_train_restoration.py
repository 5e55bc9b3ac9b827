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
# # Training one restoration family on one task
#
# One conditional noise predictor (`pfode.restoration.score_network`, a small `UNet2DModel`
# with inputs $x_t$ and $\mu$, the same architecture for every family) is trained with the
# denoising score-matching objective of one family of {ref}`ch-measure-preserving` on one task:
# k-space undersampling of random ellipse phantoms (×4 and ×8 mixed), 4× super-resolution of the
# same phantoms, or rain streaks on grey-scale photograph patches. Every family gets the same data
# stream, the same budget and the same optimiser; only the forward process (and so the marginal
# $x_t = a_t x_0 + b_t\mu + \sqrt{v_t}\xi$ the network learns to denoise) differs. The weights are
# saved in diffusers format with the training log; `sweeps/restoration_train.yml` runs every task,
# family and seed. In smoke mode it trains a few steps into a temporary folder.

# %% tags=["parameters"]
task = "sr"                 # "kspace" (x4 and x8), "sr" (4x), "rain" (photographs)
family = "D3GM"             # a key of pfode.sde.families()
seed = 0                    # network initialisation, data stream, noise
size = 32
num_train = 4096            # fixed training images (phantoms or photograph patches)
channels = [16, 32]
batch = 32
train_steps = 800
lr = 2e-3
ema_decay = 0.995
max_minutes = 10.0          # wall-clock guard: training stops early when it is spent
sigma = 0.01                # measurement noise
lam = 0.1                   # the families' parameters (as in Part V)
tau = 1.5
g_bridge = 0.3
device = "cpu"              # "cuda" on a GPU machine
threads = 1
out_dir = "models/restoration/sr-D3GM-s0"   # relative to the repository root

# %% tags=["hide-input"]
import json
import os
import platform
import tempfile
import time

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm.auto import tqdm

import pfode
import pfode.data
import pfode.nb
import pfode.record
from pfode import restoration as R
from pfode import sde

run = pfode.nb.setup(globals(), threads=threads, smoke=dict(
    num_train=64, train_steps=4, max_minutes=1.0,
    out_dir=lambda _: tempfile.mkdtemp(prefix="restoration-smoke-")))
fams = sde.families(lam=lam, tau=tau, g_bridge=g_bridge)
if family not in fams:
    raise ValueError(f"family must be one of {list(fams)}, got {family!r}")
if task not in R.TASKS:
    raise ValueError(f"task must be one of {list(R.TASKS)}, got {task!r}")
process = fams[family]
out_dir = str(pfode.nb.repo_root() / out_dir)
os.makedirs(out_dir, exist_ok=True)
torch.manual_seed(seed)
gen = torch.Generator().manual_seed(seed)
x_train = R.training_images(task, num_train, size, seed=seed)
net = R.score_network(size, tuple(channels)).to(device)
ema = AveragedModel(net, multi_avg_fn=get_ema_multi_avg_fn(ema_decay))
opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=0.0)
sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=train_steps, pct_start=0.1)
print(f"{family} on {task}: {x_train.shape[0]} training images, {sum(p.numel() for p in net.parameters())} parameters")

# %%
log, clock = [], time.perf_counter()
bar = tqdm(range(train_steps), desc=f"{task}/{family}/s{seed}")
for step in bar:
    idx = torch.randint(0, x_train.shape[0], (batch,), generator=gen)
    x0 = x_train[idx]
    mu = R.degrade_task(x0, task, generator=gen, sigma=sigma)
    loss = R.denoising_loss(net, process, x0.to(device), mu.to(device), gen)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
    opt.step()
    sched.step()
    ema.update_parameters(net)
    log.append(float(loss))
    if step % 50 == 0:
        bar.set_postfix(loss=f"{np.mean(log[-50:]):.4f}")
    if time.perf_counter() - clock > 60 * max_minutes:
        print(f"stopped by the wall-clock guard after {step + 1} steps")
        break
minutes = (time.perf_counter() - clock) / 60
# threshold: the loss of a noise predictor starts near E||xi||^2 / n = 1 and must fall: a network
#   that learned nothing stays at 1; the last 10 % of steps average below 0.9 of the first 5 %
steps_done = len(log)
if not run.smoke:
    first, last = np.mean(log[:max(1, steps_done // 20)]), np.mean(log[-max(1, steps_done // 10):])
    print(f"loss: first 5 % {first:.4f}, last 10 % {last:.4f}; {minutes:.1f} min")
    assert last < 0.9 * first, (first, last)

# %%
model = ema.module
model.save_pretrained(out_dir)
meta = dict(task=task, family=family, seed=seed, size=size, num_train=num_train, channels=list(channels),
            batch=batch, train_steps=train_steps, steps_done=steps_done, lr=lr, ema_decay=ema_decay,
            sigma=sigma, lam=lam, tau=tau, g_bridge=g_bridge, minutes=minutes, device=device,
            threads=threads, cpu=pfode.nb.cpu_model(), torch=torch.__version__, python=platform.python_version(),
            loss_every_50=[float(np.mean(log[i:i + 50])) for i in range(0, steps_done, 50)])
with pfode.record.atomic_write(os.path.join(out_dir, "training_log.json")) as f:
    json.dump(meta, f, indent=1)
pfode.record.save_metrics([dict(steps_done=steps_done, minutes=minutes, final_loss=float(np.mean(log[-50:])))])
fig, ax = plt.subplots(figsize=(5, 3))
ax.plot(np.arange(len(meta["loss_every_50"])) * 50, meta["loss_every_50"])
ax.set(xlabel="step", ylabel="noise-prediction loss (mean of 50 steps)", title=f"{task}, {family}, seed {seed}")
fig.tight_layout()
fig.savefig(os.path.join(out_dir, "loss.png"), dpi=100)
plt.show()
print(f"saved to {out_dir}")
