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
# # The exact velocity field of a Gaussian mixture, checked
#
# The closed-form velocity, score and divergence of `pfode.GaussianMixture` are checked here
# against their definitions by independent routes: symbolic algebra for one component, numerical
# quadrature of the posterior for the mixture, finite differences, automatic differentiation, and
# the continuity equation that any velocity field transporting $p_t$ must satisfy.

# %% tags=["parameters"]
means = [[-2.0, -1.0], [2.0, -1.0], [0.0, 2.0]]   # the book's three-Gaussian example
stds = 0.2
seed = 0
num_points = 40            # query points per time for the numerical checks
times = [0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95]
quad_h = 0.02              # spacing of the x0 grid for the posterior quadrature
fd_h = 1e-5                # central-difference step in x and in t
field_times = [0.05, 0.3, 0.6, 0.95]   # panels of the field figure
field_grid = 17            # arrows per axis in the field figure

# %% tags=["hide-input"]
import time

import matplotlib.pyplot as plt
import numpy as np
import sympy as sp
import torch
from matplotlib.colors import LogNorm
from sympy import stats

import pfode
import pfode.nb  # the notebook helpers (smoke mode, savefig)

run = pfode.nb.setup(globals(), smoke=dict(   # smoke mode: caps and overrides
    num_points=10, times=[0.1, 0.5, 0.9], quad_h=lambda v: max(v, 0.025)))

gm = pfode.GaussianMixture(means=means, stds=stds)
gen = run.gen
print(gm)

# %% [markdown]
# ## One component, symbolically
#
# For $x_0 \sim \mathcal N(\mu, s^2)$ and independent $\varepsilon \sim \mathcal N(0, 1)$ the pair
# $(x_0, x_t)$ and the pair $(\varepsilon, x_t)$ are jointly Gaussian. `sympy.stats` computes
# their means and covariances from the definition $x_t = (1-t)x_0 + t\varepsilon$, and the Gaussian
# conditioning formula $\mathbb E[a \mid b] = \mathbb E a + \operatorname{Cov}(a,b)\operatorname{Var}(b)^{-1}(b - \mathbb E b)$
# gives $\mathbb E[\varepsilon - x_0 \mid x_t = x]$, which must equal the closed form
# $v(x,t) = \frac{t-(1-t)s^2}{\Sigma(t)}\,(x - (1-t)\mu) - \mu$ with $\Sigma(t) = (1-t)^2 s^2 + t^2$.

# %%
x, y, mu = sp.symbols("x x_0 mu", real=True)
s, t = sp.symbols("s t", positive=True)
X0 = stats.Normal("X0", mu, s)
EPS = stats.Normal("epsilon", 0, 1)
Xt = (1 - t) * X0 + t * EPS

mean_t = sp.simplify(stats.E(Xt))
var_t = sp.simplify(stats.variance(Xt))
cov_x0 = sp.simplify(stats.covariance(X0, Xt))
cov_eps = sp.simplify(stats.covariance(EPS, Xt))
Sigma = (1 - t) ** 2 * s ** 2 + t ** 2
print("E x_t =", mean_t, "  Var x_t =", sp.factor(var_t), "  Cov(x0, x_t) =", cov_x0,
      "  Cov(eps, x_t) =", cov_eps)
assert sp.simplify(mean_t - (1 - t) * mu) == 0
assert sp.simplify(var_t - Sigma) == 0

E_x0 = mu + cov_x0 / var_t * (x - mean_t)          # E[x0 | x_t = x]
E_eps = cov_eps / var_t * (x - mean_t)             # E[eps | x_t = x]
v_definition = E_eps - E_x0
v_closed_form = (t - (1 - t) * s ** 2) / Sigma * (x - (1 - t) * mu) - mu
difference = sp.simplify(v_definition - v_closed_form)
print("E[eps - x0 | x_t = x] - closed form =", difference)
assert difference == 0

# %% [markdown]
# A second route, Bayes' rule: the posterior of $x_0$ given $x_t = x$ has log-density
# $-\frac{(x_0-\mu)^2}{2s^2} - \frac{(x-(1-t)x_0)^2}{2t^2}$ up to a constant. It is a concave
# quadratic in $x_0$, so the posterior is Gaussian and its mean is the stationary point. The
# endpoints follow from the closed form: $v(x, 0) = -x$ and $v(x, 1) = x - \mu$.

# %%
log_post = -(y - mu) ** 2 / (2 * s ** 2) - (x - (1 - t) * y) ** 2 / (2 * t ** 2)
(posterior_mean,) = sp.solve(sp.diff(log_post, y), y)
assert sp.simplify(sp.diff(log_post, y, 2) + 1 / s ** 2 + (1 - t) ** 2 / t ** 2) == 0  # concave
print("Bayes posterior mean - conditioning formula =", sp.simplify(posterior_mean - E_x0))
assert sp.simplify(posterior_mean - E_x0) == 0
v_bayes = (x - (1 - t) * posterior_mean) / t - posterior_mean   # eps = (x_t - (1-t) x0) / t
assert sp.simplify(v_bayes - v_closed_form) == 0

v0, v1 = sp.simplify(v_closed_form.subs(t, 0)), sp.simplify(v_closed_form.subs(t, 1))
print("v(x, 0) =", v0, "   v(x, 1) =", v1)
assert sp.simplify(v0 + x) == 0 and sp.simplify(v1 - (x - mu)) == 0

# %% [markdown]
# Tweedie's formula gives a relation between the velocity and the score that the checks below
# use: since $x_t \mid x_0 \sim \mathcal N((1-t)x_0, t^2)$,
# $(1-t)\,\mathbb E[x_0 \mid x_t = x] = x + t^2 \nabla \log p_t(x)$, hence
# $v(x,t) = -\bigl(x + t\,\nabla\log p_t(x)\bigr)/(1-t)$ for $t < 1$. For one component:

# %%
score_1d = -(x - (1 - t) * mu) / Sigma
assert sp.simplify((x + t ** 2 * score_1d) / (1 - t) - E_x0) == 0
assert sp.simplify(-(x + t * score_1d) / (1 - t) - v_closed_form) == 0
print("Tweedie relation holds for one component")

# %% [markdown]
# ## The mixture, numerically
#
# **Velocity by quadrature.** For the mixture, $\mathbb E[x_0 \mid x_t = x]$ is a ratio of two
# integrals over $x_0 \in \mathbb R^2$ with the weight $p_0(x_0)\,\mathcal N(x; (1-t)x_0, t^2 I)$.
# A Riemann sum on a uniform grid of spacing `quad_h` is accurate to near machine precision for
# such smooth, rapidly decaying integrands. This uses nothing of the closed form: only $p_0$
# written out directly in numpy.

# %%
mu_np, s2_np, w_np = np.array(means), np.full(len(means), stds ** 2), np.full(len(means), 1 / len(means))
lo, hi = mu_np.min(0) - 8 * stds - 1, mu_np.max(0) + 8 * stds + 1
g1 = np.arange(lo[0], hi[0] + quad_h / 2, quad_h)
g2 = np.arange(lo[1], hi[1] + quad_h / 2, quad_h)
X0g = np.stack(np.meshgrid(g1, g2, indexing="ij"), -1).reshape(-1, 2)         # (Q, 2)
d2 = ((X0g[:, None, :] - mu_np[None]) ** 2).sum(-1)                             # (Q, K)
p0 = (w_np / (2 * np.pi * s2_np) * np.exp(-d2 / (2 * s2_np))).sum(1)            # (Q,)
print(f"quadrature grid {len(g1)} x {len(g2)}, mass of p0 on it: {p0.sum() * quad_h ** 2:.12f}")
np.testing.assert_allclose(p0.sum() * quad_h ** 2, 1.0, rtol=1e-10)


def velocity_by_quadrature(xq, tq, chunk=8):
    """E[eps - x0 | x_t = x] = (x - E[x0 | x_t = x]) / t, by quadrature over x0."""
    out = []
    for xc in np.array_split(xq, max(1, len(xq) // chunk)):
        d2q = ((xc[:, None, :] - (1 - tq) * X0g[None]) ** 2).sum(-1)             # (b, Q)
        logw = np.log(p0)[None] - d2q / (2 * tq ** 2)                             # (b, Q)
        wts = np.exp(logw - logw.max(1, keepdims=True))
        e_x0 = (wts @ X0g) / wts.sum(1, keepdims=True)                            # (b, 2)
        out.append((xc - e_x0) / tq)   # = (x - (1-t) E[x0|x]) / t - E[x0|x]
    return np.concatenate(out)


def points_at(tq, num):
    """num samples of x_t = (1 - t) x0 + t eps."""
    x0 = gm.sample(num, generator=gen)
    eps = torch.randn(num, gm.n, generator=gen, dtype=torch.float64)
    return (1 - tq) * x0 + tq * eps


results = {}
start = time.perf_counter()
for tq in times:
    xq = points_at(tq, num_points)
    v = gm.velocity(xq, tq)
    v_quad = torch.from_numpy(velocity_by_quadrature(xq.numpy(), tq))
    results.setdefault("velocity vs quadrature", []).append(float((v - v_quad).abs().max()))
    np.testing.assert_allclose(v, v_quad, rtol=1e-8, atol=1e-8,
                               err_msg=f"velocity disagrees with the quadrature at t = {tq}")
print(f"velocity vs quadrature: max |error| {max(results['velocity vs quadrature']):.2e} "
      f"({time.perf_counter() - start:.1f} s)")

# %% [markdown]
# **Endpoints.** At $t = 0$ the field is $-x$; at $t = 1$ it is $x - \sum_k w_k \mu_k$.

# %%
xe = torch.randn(num_points, gm.n, generator=gen, dtype=torch.float64) * 3
np.testing.assert_allclose(gm.velocity(xe, 0.0), -xe, rtol=1e-13, atol=1e-13)
np.testing.assert_allclose(gm.velocity(xe, 1.0), xe - gm.weights @ gm.means, rtol=1e-13, atol=1e-13)
print("endpoints: v(x, 0) = -x and v(x, 1) = x - sum_k w_k mu_k hold")

# %% [markdown]
# **Score, divergence and the continuity equation.** At each time and each point:
#
# - the score against central differences of `log_prob` in $x$;
# - the velocity against the Tweedie relation $v = -(x + t\,\nabla\log p_t)/(1-t)$;
# - the closed-form divergence against the trace of the Jacobian from automatic differentiation
#   (`pfode.field_jacobian`), and against the trace of a central-difference Jacobian of the
#   velocity;
# - the continuity equation $\partial_t p_t + \nabla\cdot(p_t v) = 0$, divided by $p_t$:
#   $\partial_t \log p_t + \nabla\cdot v + v\cdot\nabla\log p_t = 0$, with $\partial_t \log p_t$
#   from central differences of `log_prob` in $t$. It ties the velocity to the densities it
#   transports, so it is an independent check of $v$, its divergence and the score together.

# %%
def central_diff_x(f, xq, h):
    """Central differences of f: (B, n) -> (B, m) along each coordinate; (B, m, n)."""
    cols = []
    for j in range(xq.shape[1]):
        e = torch.zeros_like(xq)
        e[:, j] = h
        cols.append((f(xq + e) - f(xq - e)) / (2 * h))
    return torch.stack(cols, -1)


for tq in times:
    xq = points_at(tq, num_points)
    v, score, div = gm.velocity(xq, tq), gm.score(xq, tq), gm.divergence(xq, tq)

    score_fd = central_diff_x(lambda z: gm.log_prob(z, tq)[:, None], xq, fd_h)[:, 0]
    results.setdefault("score vs FD of log p", []).append(float((score - score_fd).abs().max()))
    np.testing.assert_allclose(score, score_fd, rtol=1e-6, atol=1e-6)

    v_tweedie = -(xq + tq * score) / (1 - tq)
    results.setdefault("velocity vs Tweedie", []).append(float((v - v_tweedie).abs().max()))
    np.testing.assert_allclose(v, v_tweedie, rtol=1e-10, atol=1e-10)

    div_ad = pfode.field_jacobian(gm, xq, tq).diagonal(dim1=1, dim2=2).sum(1)
    results.setdefault("divergence vs AD trace", []).append(float((div - div_ad).abs().max()))
    np.testing.assert_allclose(div, div_ad, rtol=1e-10, atol=1e-10)

    div_fd = central_diff_x(lambda z: gm.velocity(z, tq), xq, fd_h).diagonal(dim1=1, dim2=2).sum(1)
    results.setdefault("divergence vs FD trace", []).append(float((div - div_fd).abs().max()))
    np.testing.assert_allclose(div, div_fd, rtol=1e-6, atol=1e-6)

    dt_logp = (gm.log_prob(xq, tq + fd_h) - gm.log_prob(xq, tq - fd_h)) / (2 * fd_h)
    residual = dt_logp + div + (v * score).sum(1)
    scale = dt_logp.abs() + div.abs() + (v * score).sum(1).abs()
    results.setdefault("continuity residual", []).append(float(residual.abs().max()))
    assert bool((residual.abs() <= 1e-6 * (1 + scale)).all()), \
        f"continuity equation fails at t = {tq}: max residual {float(residual.abs().max()):.2e}"

print(f"{'check':28s} max |error| over {len(times)} times x {num_points} points")
for name, errs in results.items():
    print(f"{name:28s} {max(errs):.2e}")

# %% mystnb={"figure": {"caption": "Agreement of the closed-form field of the three-Gaussian example with independent computations, as a function of $t$ (largest absolute difference over the query points $x_t$). The velocity agrees with the quadrature of its definition and with the Tweedie relation to rounding error; the divergence agrees with the autodiff trace to rounding error; the comparisons with central differences (score, divergence, and $\\partial_t \\log p_t$ in the continuity equation) sit at the $O(h^2)$ plus round-off level of the differences.", "name": "fig-ch2-checks"}}
fig, ax = plt.subplots(figsize=(7, 4.2), constrained_layout=True)
markers = iter("osD^v<>")
for name, errs in results.items():
    ax.semilogy(times, np.maximum(errs, 1e-17), marker=next(markers), label=name)
ax.set(xlabel="time $t$", ylabel="max absolute difference", ylim=(1e-17, 1e-4),
       title="closed-form field against independent computations")
ax.legend(fontsize=8, ncol=2, loc="upper left")
pfode.nb.savefig(fig, "ch02_velocity_checks")
plt.show()

# %% mystnb={"figure": {"caption": "The exact velocity field of the three-Gaussian example at four times, over the density $p_t$ (shading, log scale). Arrows show the direction of $-v(x,t)$, in which generation moves a point as $t$ decreases, with the speed $\\|v\\|$ as colour. Near $t = 1$ the field is almost the affine map $x \\mapsto x - \\bar\\mu$; near $t = 0$ it drives every point into one of the three components, and between the components the arrows diverge: neighbouring points are sent to different components.", "name": "fig-ch2-field"}}
lim = 3.5
gx = np.linspace(-lim, lim, field_grid)
P = pfode.grid_points(torch.tensor(gx), torch.tensor(gx)).to(torch.float64)
fine = np.linspace(-lim, lim, 161)
Pf = pfode.grid_points(torch.tensor(fine), torch.tensor(fine)).to(torch.float64)
speeds = [gm.velocity(P, tq).norm(dim=1).numpy() for tq in field_times]
snorm = LogNorm(vmin=min(sp_.min() for sp_ in speeds), vmax=max(sp_.max() for sp_ in speeds))
ncol = 2
nrow = -(-len(field_times) // ncol)
fig, axes = plt.subplots(nrow, ncol, figsize=(4.6 * ncol, 4.3 * nrow), constrained_layout=True,
                         squeeze=False)
for ax, tq, speed in zip(axes.flat, field_times, speeds):
    logp = gm.log_prob(Pf, tq).reshape(len(fine), len(fine)).numpy()
    ax.pcolormesh(fine, fine, np.maximum(logp, logp.max() - 12), cmap="Greys", shading="nearest",
                  rasterized=True)
    V = -gm.velocity(P, tq).numpy()
    Vn = V / np.linalg.norm(V, axis=1, keepdims=True).clip(1e-12)
    q = ax.quiver(P[:, 0], P[:, 1], Vn[:, 0], Vn[:, 1], speed, cmap="viridis", norm=snorm,
                  angles="xy", scale_units="xy", scale=1 / (0.8 * (gx[1] - gx[0])), width=0.005)
    ax.set(title=f"$t = {tq}$", xlim=(-lim, lim), ylim=(-lim, lim), aspect="equal")
for ax in axes[-1]:
    ax.set_xlabel("$x_1$")
for ax in axes[:, 0]:
    ax.set_ylabel("$x_2$")
for ax in axes.flat[len(field_times):]:
    ax.set_visible(False)
fig.colorbar(q, ax=axes, label="speed $\\|v(x, t)\\|$", shrink=0.8)
pfode.nb.savefig(fig, "ch02_velocity_field")
plt.show()
