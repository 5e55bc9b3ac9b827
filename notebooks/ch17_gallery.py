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
# # What the learned models restore
#
# One test image per condition of every task, restored by the committed models of one training
# seed, one per family, from the same measurement and the same sampler noise: the pictures behind
# the numbers of {doc}`ch17_learned_tables`. The measurements are those of the evaluation
# (`pfode.restoration.measurements` at its seed and noise); the sampler noise is drawn for this
# figure, so a panel's PSNR is one draw, not the table's mean.

# %% tags=["parameters"]
image = 0                   # index of the test image shown in every condition
model_seed = 0              # which trained seed's models to load
steps = 100                 # Euler-Maruyama steps
num_test = 32               # the evaluation's number of test images (fixes the measurements)
sigma = 0.01
eval_seed = 0
lam = 0.1
tau = 1.5
device = "cpu"

# %% tags=["hide-input"]
import matplotlib.pyplot as plt
import pandas as pd
import torch

import pfode.nb
from pfode import restoration as R
from pfode import sde
from diffusers import UNet2DModel  # after pfode.nb, which silences tqdm's ipywidgets warning

run = pfode.nb.setup(globals(), smoke=dict(steps=10))
if not 0 <= image < num_test:
    raise ValueError(f"image must be in [0, {num_test}), got {image}")
ORDER = ["Coef.-decoupled", "SGM", "IR-SDE", "D3GM"]
LABEL = {"Coef.-decoupled": "coef.-decoupled", "SGM": "SGM", "IR-SDE": "OU (IR-SDE)", "D3GM": "D³GM"}
SLUG = {"Coef.-decoupled": "decoupled"}
CLASSICAL = {"kspace": "zero-filled", "sr": "bicubic", "rain": "median 3x3"}
fams = sde.families(lam=lam, tau=tau)
root = pfode.nb.repo_root()

# the tasks of the committed evaluation (results/d3gm_learned/table.csv)
evaluated = pd.read_csv(root / "results" / "d3gm_learned" / "table.csv", usecols=["task"]).task.unique()
panels = []                 # (task, condition, {column: (image, psnr)})
for task in [t for t in R.TASKS if t in evaluated]:
    meas = R.measurements(task, num_test, sigma=sigma, seed=eval_seed)
    x = torch.cat([x[image:image + 1] for x, _ in meas.values()])
    mu = torch.cat([mu[image:image + 1] for _, mu in meas.values()])
    size = x.shape[-1]
    cols = {"clean": x, "measurement": mu, CLASSICAL[task]: R.baselines(task, mu)[CLASSICAL[task]]}
    for f in ORDER:
        path = root / "models" / "restoration" / f"{task}-{SLUG.get(f, f)}-s{model_seed}"
        if not (path / "config.json").exists():
            raise FileNotFoundError(f"no trained model at {path}: run `make sweep SPEC=sweeps/restoration_train.yml`")
        net = UNet2DModel.from_pretrained(path, low_cpu_mem_usage=False).to(device).eval()
        proc = fams[f]
        mu_f = mu.reshape(len(mu), -1).double()
        xT = proc.terminal(mu_f, len(mu), torch.Generator().manual_seed(eval_seed + 7), t=proc.t_start())
        out = sde.euler_maruyama(proc, R.learned_score(net, proc, size), xT, mu_f, steps=steps,
                                 t_start=proc.t_start(), seed=eval_seed + 8)
        cols[LABEL[f]] = out.reshape(-1, 1, size, size).float().clamp(0, 1)
    for i, cond in enumerate(meas):
        panels.append((task, cond, {k: (v[i, 0].numpy(), None if k == "clean" else R.psnr_ssim(v[i:i + 1], x[i:i + 1])[0][0])
                                    for k, v in cols.items()}))
    print(f"{task}: restored {len(meas)} conditions with {len(ORDER)} families")

# %%
names = ["clean", "measurement", "classical"] + [LABEL[f] for f in ORDER]
fig, axs = plt.subplots(len(panels), len(names), figsize=(1.35 * len(names), 1.45 * len(panels)), layout="constrained")
for r, (task, cond, cols) in enumerate(panels):
    for c, (key, (img, psnr)) in enumerate(cols.items()):
        ax = axs[r, c]
        ax.imshow(img, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        if psnr is not None:
            ax.set_title(f"{psnr:.1f} dB", fontsize=7, pad=2)
        if r == 0:
            ax.set_xlabel(names[c], fontsize=8)
            ax.xaxis.set_label_position("top")
            ax.xaxis.labelpad = 12
        if c == 0:
            ax.set_ylabel(f"{task}\n{cond}", fontsize=7)
_ = pfode.nb.publish(fig, "ch17_gallery", "fig-ch17-gallery", steps=steps, image=image, model_seed=model_seed)

# %% [markdown]
# ```{glue:figure} fig-ch17-gallery
# :name: fig-ch17-gallery
#
# Test image {glue:text}`fig-ch17-gallery-image` of every condition (rows: task and condition),
# restored by the seed-{glue:text}`fig-ch17-gallery-model_seed` model of each family with
# {glue:text}`fig-ch17-gallery-steps` Euler–Maruyama steps from the same measurement and sampler
# noise. Columns: the clean image, the measurement μ (k-space: the zero-filled image; super-resolution:
# the block means, drawn at full size; rain: the rainy image), the classical estimate (zero-filling,
# bicubic, 3×3 median), and the four families. Above each panel its PSNR against the clean image.
# Grey scale 0 (black) to 1 (white), every pixel a square.
# ```
