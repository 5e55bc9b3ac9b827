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
# # Training a small MMDiT on photograph patches
#
# A small `SD3Transformer2DModel` (the MMDiT of Stable Diffusion 3, a few layers, null
# conditioning) is trained with the rectified-flow objective on a fixed, finite set of r×r RGB
# patches (8×8 at the defaults) of scikit-image photographs, in pixel space. The weights are saved in diffusers format
# to `models/mmdit-patches/`; the book's chapter loads them and does not retrain. At the
# default parameters this notebook is the real training run (CPU); in smoke mode it trains a few
# steps into a temporary folder.

# %% tags=["parameters"]
r = 8                       # patch side (pixels); n = 3 r^2
patch_size = 2              # MMDiT token side (pixels): (r / patch_size)^2 image tokens
crop = 32                   # crop side in the photograph, averaged down to r x r
num_train = 8192            # the finite training set (also the means of the exact model)
num_test = 1000             # held-out patches (other photographs)
data_seed = 0
width_heads = 2             # attention heads of 32 channels: inner width 64
num_layers = 3
batch = 128
train_steps = 3500
max_minutes = 30.0          # wall-clock guard: training stops early when it is spent
lr = 1e-3
warmup = 200
ema_decay = 0.998
seed = 0
threads = 1
out_dir = "models/mmdit-patches"   # relative to the repository root (an absolute path is kept)

# %% tags=["hide-input"]
import json
import math
import os
import platform
import tempfile
import time

import matplotlib.pyplot as plt
import numpy as np
import torch
from tqdm.auto import tqdm

import pfode
import pfode.data
import pfode.nb
import pfode.record
from pfode.diffusers_field import DiffusersField

run = pfode.nb.setup(globals(), threads=threads, smoke=dict(   # smoke mode: caps and overrides
    num_train=512, num_test=64, train_steps=30, max_minutes=1.0, warmup=5,
    out_dir=lambda _: tempfile.mkdtemp(prefix="mmdit-smoke-"),   # never overwrite the committed weights
))
if r % patch_size:
    raise ValueError(f"patch_size = {patch_size} must divide the patch side r = {r}")
out_dir = str(pfode.nb.repo_root() / out_dir)
os.makedirs(out_dir, exist_ok=True)

os.environ["HF_HUB_OFFLINE"] = "1"
from diffusers import SD3Transformer2DModel  # noqa: E402

torch.manual_seed(seed)

split = pfode.data.trained_model_split(dict(r=r, crop=crop, num_train=num_train, num_test=num_test,
                                            data_seed=data_seed))      # recorded in the training log
x_train = torch.tensor(pfode.data.to_chw(split.train), dtype=torch.float32)   # (num_train, 3 r^2)
x_test = torch.tensor(pfode.data.to_chw(split.test), dtype=torch.float32)
print(f"train: {tuple(x_train.shape)} from {split.train_images}; "
      f"held out: {tuple(x_test.shape)} from {split.test_images}")

# %% [markdown]
# The model: patch size `patch_size` (16 image tokens for an 8×8 patch and patch size 2), `num_layers` joint blocks of
# width 64, and a one-token text stream that is always zero (unconditional model: the
# "null prompt"). The time embedding takes `timestep = 1000 t`.

# %%
config = dict(sample_size=r, patch_size=patch_size, in_channels=3, out_channels=3, num_layers=num_layers,
              attention_head_dim=32, num_attention_heads=width_heads, joint_attention_dim=8,
              caption_projection_dim=32 * width_heads, pooled_projection_dim=8,
              pos_embed_max_size=r)
model = SD3Transformer2DModel(**config)
ema = SD3Transformer2DModel(**config)
ema.load_state_dict(model.state_dict())
ema.requires_grad_(False)
num_params = sum(p.numel() for p in model.parameters())
print(f"SD3Transformer2DModel: {num_params:,} parameters ({4 * num_params / 2**20:.1f} MiB float32)")

cond = {"encoder_hidden_states": torch.zeros(batch, 1, 8), "pooled_projections": torch.zeros(batch, 8)}


def rf_loss(net, x0, eps, t):
    """Rectified flow: x_t = (1 - t) x0 + t eps, target eps - x0 (the velocity)."""
    xt = (1 - t[:, None]) * x0 + t[:, None] * eps
    B = len(x0)
    out = net(hidden_states=xt.reshape(B, 3, r, r), timestep=1000 * t,
              encoder_hidden_states=cond["encoder_hidden_states"][:B].expand(B, 1, 8),
              pooled_projections=cond["pooled_projections"][:B].expand(B, 8),
              return_dict=False)[0]
    return (out.reshape(B, -1) - (eps - x0)).pow(2).mean()


# A fixed held-out evaluation: the same noise and times at every evaluation.
g_eval = torch.Generator().manual_seed(seed + 1)
n_eval = min(len(x_test), batch)
eval_batch = (x_test[:n_eval], torch.randn(n_eval, 3 * r * r, generator=g_eval),
              torch.rand(n_eval, generator=g_eval))


@torch.no_grad()
def eval_loss(net):
    return float(rf_loss(net.eval(), *eval_batch))


loss_init = eval_loss(model)
print(f"held-out loss at initialisation: {loss_init:.4f}")

# %% [markdown]
# Training: AdamW, linear warm-up then cosine decay of the learning rate, times drawn from the
# logit-normal distribution of SD3 (`t = sigmoid(N(0, 1))`), an exponential moving average of
# the weights (the saved model).

# %%
opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
sched = torch.optim.lr_scheduler.LambdaLR(
    opt, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(s, train_steps) / train_steps)))
gen = run.gen
losses, evals = [], []
t_start = time.time()
model.train()
for step in tqdm(range(train_steps), desc="training", mininterval=10):
    idx = torch.randint(0, len(x_train), (batch,), generator=gen)
    eps = torch.randn(batch, 3 * r * r, generator=gen)
    t = torch.sigmoid(torch.randn(batch, generator=gen))
    loss = rf_loss(model, x_train[idx], eps, t)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    sched.step()
    with torch.no_grad():
        for pe, pm in zip(ema.parameters(), model.parameters()):
            pe.lerp_(pm, 1 - ema_decay)
    losses.append(float(loss.detach()))
    if step % 100 == 0 or step == train_steps - 1:
        evals.append((step, eval_loss(ema)))
        model.train()
    if time.time() - t_start > 60 * max_minutes:
        evals.append((step, eval_loss(ema)))
        break
minutes = (time.time() - t_start) / 60
steps_done = len(losses)
loss_final = evals[-1][1]
print(f"{steps_done} steps of batch {batch} in {minutes:.1f} min on {platform.processor() or 'CPU'} "
      f"({torch.get_num_threads()} threads); held-out loss (EMA weights) {loss_init:.4f} -> {loss_final:.4f}")
if not pfode.nb.smoke():
    assert loss_final < 0.5 * loss_init, "training did not halve the held-out loss"

# %% mystnb={"figure": {"caption": "Rectified-flow training loss of the small MMDiT on photograph patches: the training loss per step (light) and its running mean, and the held-out loss of the EMA weights on a fixed batch of patches of other photographs.", "name": "fig-ch14-loss"}}
fig, ax = plt.subplots(figsize=(7, 4), constrained_layout=True)
ax.plot(losses, color="0.8", lw=0.5, label="training batch")
k = max(1, min(100, len(losses) // 5))
ax.plot(np.arange(k - 1, len(losses)), np.convolve(losses, np.ones(k) / k, mode="valid"),
        color="C0", label=f"running mean ({k} steps)")
ax.plot(*zip(*evals), "o-", color="C3", ms=3, label="held out (EMA)")
ax.set(xlabel="step", ylabel="loss  E||v_θ(x_t, t) − (ε − x₀)||² / n", yscale="log")
ax.legend()
pfode.nb.savefig(fig, "ch14_training_loss")
fig.savefig(os.path.join(out_dir, "loss.png"), dpi=120, bbox_inches="tight")
plt.show()

# %% [markdown]
# Samples: noise regenerated by the trained field with Euler, 100 steps, next to training and
# held-out patches.

# %%
ema.eval()
field = DiffusersField(ema)
z = torch.randn(64, field.n, generator=torch.Generator().manual_seed(seed + 2), dtype=torch.float64)
with torch.no_grad():
    samples = pfode.generate(field, z, method="euler", steps=20 if pfode.nb.smoke() else 100)
assert torch.isfinite(samples).all()
print(f"sample pixel range [{samples.min():.2f}, {samples.max():.2f}], "
      f"mean {samples.mean():.3f} (training mean {x_train.mean():.3f})")


def tile(flat, rows=8):
    imgs = pfode.data.show(flat, layout="chw")                    # (B, r, r, 3) in [0, 1]
    cols = len(imgs) // rows
    pad = np.ones((rows, cols, r + 1, r + 1, 3))
    pad[:, :, :r, :r] = imgs[:rows * cols].reshape(rows, cols, r, r, 3)
    return pad.transpose(0, 2, 1, 3, 4).reshape(rows * (r + 1), cols * (r + 1), 3)


# %% mystnb={"figure": {"caption": "Left: 64 training patches. Middle: 64 samples of the trained MMDiT (Euler, 100 steps, from seeded noise). Right: 64 held-out patches of other photographs.", "name": "fig-ch14-samples"}}
fig, axs = plt.subplots(1, 3, figsize=(12, 4.3), constrained_layout=True)
for ax, im, title in zip(axs, [tile(x_train[:64]), tile(samples.float()), tile(x_test[:64])],
                         ["training patches", "MMDiT samples", "held-out patches"]):
    ax.imshow(im, interpolation="nearest")
    ax.set_title(title)
    ax.axis("off")
pfode.nb.savefig(fig, "ch14_training_samples")
fig.savefig(os.path.join(out_dir, "samples.png"), dpi=120, bbox_inches="tight")
plt.show()

# %% [markdown]
# Save the EMA weights in diffusers format, with the training log.

# %%
os.makedirs(out_dir, exist_ok=True)
ema.save_pretrained(out_dir)
log = dict(steps=steps_done, batch=batch, minutes=round(minutes, 2), threads=torch.get_num_threads(),
           device="cpu", torch=torch.__version__, num_params=num_params, lr=lr, warmup=warmup,
           ema_decay=ema_decay, seed=seed, loss_init=loss_init, loss_final_heldout=loss_final,
           loss_final_train_mean=float(np.mean(losses[-100:])), evals=evals, data=split.spec)
with open(os.path.join(out_dir, "training_log.json"), "w") as f:
    json.dump(log, f, indent=1)
size_mb = sum(os.path.getsize(os.path.join(out_dir, f)) for f in os.listdir(out_dir)) / 2**20
print(f"saved to {out_dir}: {sorted(os.listdir(out_dir))}, {size_mb:.1f} MiB")
assert size_mb < 20, "model folder larger than 20 MiB"
pfode.record.save_metrics([dict(num_train=num_train, steps=steps_done, minutes=round(minutes, 2),
                                loss_init=loss_init, loss_final_heldout=loss_final,
                                loss_final_train_mean=log["loss_final_train_mean"])])
reloaded = DiffusersField(SD3Transformer2DModel.from_pretrained(out_dir))
with torch.no_grad():
    np.testing.assert_allclose(reloaded(z[:8], 0.5).numpy(), field(z[:8], 0.5).numpy(), atol=1e-6)
