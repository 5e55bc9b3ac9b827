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
# # Figure 8.1: the Steiner volume, chi-square tails and the rates of Theorem 4.3
#
# Theorem 4.3 bounds $\delta_1$ by a volume, through the Steiner formula for a cube grown by a
# ball, and $\delta_2$ by a chi-square tail. This notebook checks the Steiner formula three ways
# (symbolic integration, the face decomposition, Monte Carlo), and derives and checks its
# expansion in the dimension at a fixed radius. It compares the exact chi-square
# tail with the Chernoff and Laurent–Massart bounds. It then computes the exponential rates at
# which both bounds fall with the dimension, and the region of parameters where the bound on
# $\delta_1$ tends to zero.

# %% tags=["parameters"]
seed = 0
mc_samples = 2_000_000      # Monte Carlo points for the 3-D Steiner volume
mc_ell = 1.0
mc_rhos = [0.1, 0.25, 0.5, 1.0, 2.0]
mc_level = 0.999            # Clopper-Pearson level for the Monte Carlo check
chi2_s = [0.1, 0.5, 1.0]    # r = (1 + s) n
n_max = 10000               # largest dimension in the rate plots
num_neighborhoods = 10      # m in Assumption 4.4
ells = [0.5, 1.0, 1.5, 1.9] # cube sides (the data cube [-1, 1]^n has side 2)
rho_fixed = 0.5             # a fixed growth radius
rho_bar = 0.1               # a dimension-normalised radius: rho = rho_bar sqrt(n)
grid_size = 121             # resolution of the regime maps
expansion_n_max = 1_000_000 # largest n in the check of the fixed-radius expansion (Lemma 8.2 (a))
expansion_ell = 1.0         # cube side of the detailed remainder plot

# %% tags=["hide-input"]
import math
import time

import matplotlib.pyplot as plt
import mpmath
import numpy as np
import sympy as sp
from scipy import optimize, special

import pfode
import pfode.nb
from pfode import bounds

run = pfode.nb.setup(globals(), smoke=dict(   # smoke mode: caps and overrides
    mc_samples=200_000, n_max=2000, grid_size=41, expansion_n_max=100_000))

rng = run.rng

# %% [markdown]
# ## The Steiner formula, symbolically
#
# Three expressions for $V_n(\ell, \rho) = \operatorname{vol}(C_\ell \oplus \rho B)$ must agree:
#
# 1. the Steiner sum $\sum_{k=0}^n \binom nk \ell^{n-k}\omega_k\rho^k$;
# 2. the hand count of the pieces: in the plane, the square, four $\ell\times\rho$ rectangles
#    and four quarter discs, $\ell^2 + 4\ell\rho + \pi\rho^2$; in space, the cube, six slabs,
#    twelve quarter cylinders and eight eighth balls,
#    $\ell^3 + 6\ell^2\rho + 3\pi\ell\rho^2 + \tfrac43\pi\rho^3$;
# 3. integration over slices (no faces involved). The section of $C_\ell \oplus \rho B$ at
#    height $u$ is $C^{n-1}_\ell \oplus \rho B^{n-1}$ for $|u| \le \ell/2$, and
#    $C^{n-1}_\ell \oplus \sqrt{\rho^2 - (|u| - \ell/2)^2}\,B^{n-1}$ for
#    $\ell/2 < |u| \le \ell/2 + \rho$. Hence
#    $V_n(\ell, \rho) = \ell\,V_{n-1}(\ell, \rho) + 2\int_0^\rho V_{n-1}\bigl(\ell, \sqrt{\rho^2 - u^2}\bigr)\,du$
#    with $V_1 = \ell + 2\rho$.

# %%
ell, rho, u = sp.symbols("ell rho u", positive=True)


def steiner_sum(n):
    return sum(sp.binomial(n, k) * ell ** (n - k) * sp.pi ** sp.Rational(k, 2) / sp.gamma(sp.Rational(k, 2) + 1) * rho**k
               for k in range(n + 1))


def steiner_by_slices(n):
    V = ell + 2 * rho
    for _ in range(n - 1):
        V = sp.expand(ell * V + 2 * sp.integrate(V.subs(rho, sp.sqrt(rho**2 - u**2)), (u, 0, rho)))
    return V


hand = {2: ell**2 + 4 * ell * rho + sp.pi * rho**2,
        3: ell**3 + 6 * ell**2 * rho + 3 * sp.pi * ell * rho**2 + sp.Rational(4, 3) * sp.pi * rho**3}
tic = time.perf_counter()
for n in (2, 3, 4):
    S, I = sp.expand(steiner_sum(n)), steiner_by_slices(n)
    assert sp.simplify(S - I) == 0, f"n={n}: Steiner sum differs from the slice integral"
    if n in hand:
        assert sp.simplify(S - hand[n]) == 0, f"n={n}: Steiner sum differs from the hand count"
    print(f"n = {n}:  V = {S}")
print(f"(sympy: {time.perf_counter() - tic:.1f} s) Steiner sum = slice integral for n = 2, 3, 4; "
      "= hand count for n = 2, 3")

# the library, in log space, against the exact expression and against a 60-digit sum
for n, (l_, r_) in [(2, (1.0, 0.3)), (3, (0.7, 2.0)), (3, (2.0, 0.01))]:
    exact = float(hand[n].subs({ell: l_, rho: r_}))
    np.testing.assert_allclose(bounds.log_steiner_volume(n, l_, r_), math.log(exact), rtol=1e-13)
mpmath.mp.dps = 60
for n, l_, r_ in [(500, 1.5, 0.5), (2000, 1.0, 0.3 * math.sqrt(2000)), (5000, 0.2, 3.0)]:
    s_mp = mpmath.fsum(mpmath.binomial(n, k) * mpmath.mpf(l_) ** (n - k) * mpmath.pi ** (mpmath.mpf(k) / 2)
                       / mpmath.gamma(mpmath.mpf(k) / 2 + 1) * mpmath.mpf(r_) ** k for k in range(n + 1))
    np.testing.assert_allclose(bounds.log_steiner_volume(n, l_, r_), float(mpmath.log(s_mp)), rtol=1e-12,
                               err_msg=f"log_steiner_volume({n}, {l_}, {r_}) vs a 60-digit sum")
print("pfode.bounds.log_steiner_volume agrees with the exact expressions (n = 2, 3) and with "
      "60-digit sums (n = 500, 2000, 5000) to 1e-12")

# %% [markdown]
# ## The Steiner formula by Monte Carlo, in three dimensions
#
# Draw points uniformly in the box $[-\ell/2 - \rho, \ell/2 + \rho]^3$. The distance of $x$
# to the cube $[-\ell/2, \ell/2]^3$ is $\|\max(|x| - \ell/2, 0)\|$, so the fraction within
# $\rho$, times the volume of the box, estimates $V_3$.

# %%
mc = []
for r_ in mc_rhos:
    half_side = mc_ell / 2 + r_
    x = rng.uniform(-half_side, half_side, size=(mc_samples, 3))
    d = np.linalg.norm(np.maximum(np.abs(x) - mc_ell / 2, 0.0), axis=1)
    est = bounds.bernoulli_ci(int(np.count_nonzero(d <= r_)), mc_samples, mc_level)
    box_vol = (2 * half_side) ** 3
    formula = float(hand[3].subs({ell: mc_ell, rho: r_}))
    mc.append((r_, formula, est.estimate * box_vol, est.lower * box_vol, est.upper * box_vol))
    print(f"rho = {r_:4}: formula {formula:9.5f}, Monte Carlo {est.estimate * box_vol:9.5f} "
          f"[{est.lower * box_vol:9.5f}, {est.upper * box_vol:9.5f}] ({mc_level:.1%} interval)")
    # threshold: statistics: the exact Steiner volume must lie in the 99.9% Clopper-Pearson
    #   interval of the Monte Carlo estimate
    assert est.lower * box_vol <= formula <= est.upper * box_vol, f"rho={r_}: formula outside the Monte Carlo interval"
mc = np.array(mc)

# %%
from matplotlib.patches import Rectangle, Wedge

fig, axes = plt.subplots(1, 2, figsize=(11, 4.6), constrained_layout=True)
ax = axes[0]
L, R = 1.0, 0.4
ax.add_patch(Rectangle((0, 0), L, L, color="0.35", label="cube $C_\\ell$: $\\ell^2$"))
for i, (xy, w, h) in enumerate([((0, -R), L, R), ((0, L), L, R), ((-R, 0), R, L), ((L, 0), R, L)]):
    ax.add_patch(Rectangle(xy, w, h, color="C0", alpha=0.6, label="edges $\\times$ normal segments: $4\\ell\\rho$" if i == 0 else None))
for i, (c, a0) in enumerate([((0, 0), 180), ((L, 0), 270), ((L, L), 0), ((0, L), 90)]):
    ax.add_patch(Wedge(c, R, a0, a0 + 90, color="C1", alpha=0.7, label="vertices $\\times$ quarter discs: $\\pi\\rho^2$" if i == 0 else None))
ax.set(xlim=(-0.5, 1.5), ylim=(-0.5, 1.5), aspect="equal", title="$C_\\ell \\oplus \\rho B$ in the plane")
ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.02), ncol=1)
ax.set_xticks([])
ax.set_yticks([])

ax = axes[1]
ax.errorbar(mc[:, 0], mc[:, 2] / mc[:, 1], yerr=[(mc[:, 2] - mc[:, 3]) / mc[:, 1], (mc[:, 4] - mc[:, 2]) / mc[:, 1]],
            fmt="o", capsize=3, label=f"Monte Carlo / formula, {mc_samples:,} points per $\\rho$")
ax.axhline(1.0, color="k", ls=":")
ax.set_xscale("log")
ax.set(xlabel=f"$\\rho$ (cube side $\\ell = {mc_ell:g}$)", ylabel="ratio", title="three dimensions: Monte Carlo vs Steiner")
ax.legend(fontsize=8)
_ = pfode.nb.publish(fig, "ch08_steiner", "fig-ch8-steiner", level=f"{mc_level:.1%}", ell=f"{mc_ell:g}",
                 samples=f"{mc_samples:,}")

# %% [markdown]
# ```{glue:figure} fig-ch8-steiner
# :name: fig-ch8-steiner
#
# The Steiner formula. Left: the square of side $\ell$ grown by radius $\rho$ is the square, four $\ell\times\rho$ rectangles (one per edge, with the 1-dimensional normal cone of the edge) and four quarter discs (one per vertex, with its 2-dimensional normal cone): $\ell^2 + 4\ell\rho + \pi\rho^2$. Right: in three dimensions, Monte Carlo estimates ({glue:text}`fig-ch8-steiner-samples` points per radius) of the volume of the grown cube of side $\ell =$ {glue:text}`fig-ch8-steiner-ell`, with {glue:text}`fig-ch8-steiner-level` Clopper–Pearson intervals, divided by the formula $\ell^3 + 6\ell^2\rho + 3\pi\ell\rho^2 + \tfrac43\pi\rho^3$; every interval contains 1 (asserted).
# ```

# %% [markdown]
# ## The Steiner volume at a fixed radius, to constant order
#
# For fixed $\ell$ and $\rho$ the largest terms of the Steiner sum have $k \approx k_0 = a^{1/3}n^{2/3}$,
# $a = 2\pi\rho^2/\ell^2$: few enough ($k_0 \ll n$) that $\binom nk \approx n^k e^{-k^2/(2n)}/k!$,
# and enough that Stirling's formula applies to $k!$ and $\Gamma(k/2 + 1)$. At $k \sim n^{2/3}$
# the factor $e^{-k^2/(2n)}$ is $e^{-\Theta(n^{1/3})}$, so it contributes a term of order $n^{1/3}$
# to $\log V_n$, and the width $\sqrt{2k_0/3}$ of the peak contributes $-\frac13\log n$.
# Laplace's method gives (Chapter 8, Lemma "Growth" (a); `bounds.log_steiner_volume_expansion`)
#
# $$
# \log V_n(\ell, \rho) = n\log\ell + \tfrac32 a^{1/3}n^{2/3} - \tfrac12 a^{2/3}n^{1/3} - \tfrac13\log n
# + C(a) + D(a)\,n^{-1/3} + O(n^{-2/3}),
# $$
#
# $C(a) = \frac a6 - \frac16\log a + \frac12\log\frac{2}{3\pi}$, $D(a) = \frac{a^{1/3}}{2} - \frac{5a^{4/3}}{108}$.
#
# The coefficients are derived symbolically first. With $\varepsilon = n^{-1/3}$, $\alpha = a^{1/3}$
# and $k = \alpha\varepsilon^{-2} + \sqrt\alpha\,\varepsilon^{-1}x$, Stirling's formula for
# $\log\binom nk$ and $\log\Gamma(k/2+1)$ is expanded in powers of $\varepsilon$ at fixed $x$
# (the terms $1/(12z)$ of Stirling's series enter only at order $\varepsilon^2$). The sum over
# $k$ becomes $\frac{\sqrt\alpha}{\varepsilon}\int e^{f(x)}\,dx$ (the sum and the integral differ
# by $e^{-\Theta(n^{2/3})}$, the peak being $\Theta(n^{1/3})$ wide). The order-$\varepsilon^0$
# part of $f$ is a Gaussian in $x$, and the order-$\varepsilon$ part is integrated against it.

# %%
eps_, al_ = sp.symbols("varepsilon alpha", positive=True)
x_, log_eps = sp.symbols("x log_varepsilon", real=True)
n_sym = eps_**-3
k_sym = al_ * eps_**-2 + sp.sqrt(al_) * x_ / eps_


def series_eps(expr, order=7):
    return sp.expand(sp.series(expr, eps_, 0, order).removeO())


# log k = log(alpha) - 2 log(eps) + log(1 + eps x / sqrt(alpha)); log n = -3 log(eps)
log_k = sp.log(al_) - 2 * log_eps + series_eps(sp.log(1 + x_ * eps_ / sp.sqrt(al_)))
log_1mkn = series_eps(sp.log(1 - k_sym / n_sym))            # log(1 - k/n)
log_rho_over_ell = sp.log(al_**3 / (2 * sp.pi)) / 2         # a = alpha^3 = 2 pi rho^2 / ell^2
# log binom(n, k) by Stirling for n!, k!, (n - k)!; log omega_k = (k/2) log pi - log Gamma(k/2 + 1)
log_binom = (-3 * log_eps * k_sym - (n_sym - k_sym) * log_1mkn - log_1mkn / 2 - k_sym * log_k
             - (sp.log(2 * sp.pi) + log_k) / 2)
log_omega = k_sym / 2 * sp.log(sp.pi) - (k_sym / 2 * (log_k - sp.log(2)) - k_sym / 2 + (sp.log(sp.pi) + log_k) / 2)
f_sym = sp.expand(log_binom + log_omega + k_sym * log_rho_over_ell)   # log(t_k / ell^n)
coef = {j: sp.simplify(f_sym.coeff(eps_, j)) for j in (-3, -2, -1, 0, 1)}
gauss = sp.integrate(sp.exp(coef[0]), (x_, -sp.oo, sp.oo))
first = sp.simplify(sp.integrate(sp.exp(coef[0]) * coef[1], (x_, -sp.oo, sp.oo)) / gauss)
const = sp.expand_log(sp.log(sp.sqrt(al_)) - log_eps + sp.log(gauss), force=True)   # log(sqrt(alpha)/eps) + log of the integral
print("order eps^-3, eps^-2, eps^-1:", coef[-3], ",", coef[-2], ",", coef[-1])
print("order eps^0 (with -log eps = (1/3) log n):", sp.simplify(const))
print("order eps^1:", sp.factor(first))
assert coef[-3] == 0 and not coef[-2].has(x_) and not coef[-1].has(x_), "the expansion is not centred at the peak"
# against the library's coefficients, at a few values of a
# threshold: exact identities evaluated in float64 by two routes (sympy's expressions and the
#   library's closed forms), a few dozen operations each: round-off about 1e-15 relative, so
#   1e-12 is a margin of 1000, while a wrong coefficient is off by O(1)
for a_val in (0.3, math.pi / 2, 8 * math.pi):
    al_val, n_val = a_val ** (1 / 3), 1000.0
    e_val = n_val ** (-1 / 3)
    T = bounds.log_steiner_volume_expansion(n_val, 1.0, math.sqrt(a_val / (2 * math.pi)))
    sub = {al_: al_val, log_eps: math.log(e_val)}
    derived = [float(coef[-2].subs(sub)) / e_val**2, float(coef[-1].subs(sub)) / e_val,
               float(const.subs(sub)), float(first.subs(sub)) * e_val]
    np.testing.assert_allclose(derived, [T[1], T[2], T[3] + T[4], T[5]], rtol=1e-12,
                               err_msg=f"a={a_val}: symbolic Laplace expansion vs bounds.log_steiner_volume_expansion")
print("the symbolic Laplace expansion gives the coefficients of bounds.log_steiner_volume_expansion")

# %% [markdown]
# Now the exact $\log V_n$ (log-sum-exp of all $n+1$ terms in float64, `bounds.log_steiner_volume`)
# against the expansion, for $n$ from $10^2$ to `expansion_n_max` and each cube side, at
# $\rho =$ `rho_fixed`. Three checks, each with a tolerance from the next term of the expansion:
#
# 1. the remainder after $n\log\ell + \frac32 a^{1/3}n^{2/3}$ alone is not $O(\log n)$: divided by
#    $\log n$ it keeps growing, and a least-squares fit of it on $n^{1/3}$, $\log n$, $1$ recovers
#    $-\frac12 a^{2/3}$ and $-\frac13$, to within what the omitted $D(a)n^{-1/3}$ can move them;
# 2. with the $n^{1/3}$ term the remainder divided by $\log n$ stays bounded;
# 3. after the constant the remainder is $D(a)n^{-1/3}(1 + O(n^{-1/3}))$, and after the
#    $n^{-1/3}$ term it falls like $n^{-2/3}$.

# %%
tic = time.perf_counter()
n_exp = np.unique(np.round(np.logspace(2, np.log10(expansion_n_max), 13)).astype(int))
ne = n_exp.astype(float)
i_1e4 = int(np.argmin(np.abs(n_exp - 10_000)))
expansion = {}
for l_ in sorted(set(ells) | {expansion_ell}):
    a_ = 2 * math.pi * rho_fixed**2 / l_**2
    exact = np.array([bounds.log_steiner_volume(int(n), l_, rho_fixed) for n in n_exp])
    T = bounds.log_steiner_volume_expansion(ne, l_, rho_fixed)
    rem = exact[:, None] - np.cumsum(T, axis=1)             # rem[:, j]: remainder after terms 0..j
    C_, D_ = T[0, 4], T[0, 5] * ne[0] ** (1 / 3)
    expansion[l_] = dict(a=a_, rem=rem, excess=exact - T[:, 0])
    # 1. the n^(2/3) law alone: remainder / log n grows, and the fit recovers the next two terms
    r2 = rem[:, 1]
    A = np.column_stack([ne ** (1 / 3), np.log(ne), np.ones_like(ne)])
    P_ = np.linalg.pinv(A)
    fit = P_ @ r2
    omitted = 1.5 * abs(D_) * ne[0] ** (-1 / 3)
    tol = np.abs(P_).sum(axis=1) * omitted
    print(f"ell = {l_}, rho = {rho_fixed} (a = {a_:.3f}): remainder after the n^(2/3) term / log n: "
          f"{r2[0] / np.log(ne[0]):.2f} at n = {n_exp[0]}, {r2[-1] / np.log(ne[-1]):.2f} at n = {n_exp[-1]}; "
          f"fitted n^(1/3) coefficient {fit[0]:.4f} (-a^(2/3)/2 = {-0.5 * a_ ** (2 / 3):.4f}, tolerance {tol[0]:.4f}), "
          f"log n coefficient {fit[1]:.3f} (-1/3, tolerance {tol[1]:.3f})")
    # threshold: -(1/2) a^(2/3) n^(1/3) / log n grows by a factor of about 7 from n = 1e2 to 1e6
    #   (3 to 1e5 in smoke mode); 1.5 leaves room for the log and constant terms
    assert abs(r2[-1] / np.log(ne[-1])) > 1.5 * abs(r2[0] / np.log(ne[0])), f"ell={l_}: remainder is O(log n)"
    # threshold: the coefficients can move by ||row of pinv||_1 times the omitted terms, bounded by
    #   1.5 |D| n^(-1/3) at the smallest n (check 3 bounds the n^(-2/3) part by 0.5 |D| n^(-1/3))
    assert np.all(np.abs(fit[:2] - [-0.5 * a_ ** (2 / 3), -1 / 3]) <= tol[:2]), f"ell={l_}: fitted coefficients"
    # 2. with the n^(1/3) term: remainder / log n bounded (it tends to -1/3)
    r3 = rem[:, 2]
    # threshold: the next terms of the expansion, -(1/3) log n + C + D n^(-1/3), with a factor 2 on
    #   the last for the O(n^(-2/3)) term
    assert np.all(np.abs(r3) <= np.log(ne) / 3 + abs(C_) + 2 * abs(D_) * ne ** (-1 / 3)), f"ell={l_}"
    # 3. the constant and the n^(-1/3) term
    # threshold: after C(a) the remainder is D n^(-1/3) (1 + O(n^(-1/3))): factor 1.5 at n = 100
    assert np.all(np.abs(rem[:, 4]) <= 1.5 * abs(D_) * ne ** (-1 / 3)), f"ell={l_}: remainder after C(a)"
    # threshold: O(n^(-2/3)) predicts a fall by (n_max/1e4)^(2/3) (21.5 for 1e6, 4.6 for 1e5);
    #   half of it for the higher-order terms
    assert abs(rem[-1, 5]) < abs(rem[i_1e4, 5]) / (0.5 * (ne[-1] / ne[i_1e4]) ** (2 / 3)), f"ell={l_}: n^(-2/3)"
    e = expansion[l_]
    e["fit"], e["tol"], e["C"], e["D"] = fit, tol, C_, D_
    print(f"           at n = {n_exp[i_1e4]}: log V - n log ell = {e['excess'][i_1e4]:.2f}; error of the n^(2/3) law "
          f"{r2[i_1e4]:+.2f} ({r2[i_1e4] / e['excess'][i_1e4]:+.2%}), with the n^(1/3) term {r3[i_1e4]:+.2f} "
          f"({r3[i_1e4] / e['excess'][i_1e4]:+.2%}), with all terms to the constant {rem[i_1e4, 4]:+.4f}, "
          f"to n^(-1/3) {rem[i_1e4, 5]:+.1e}")
r3_over_log = np.array([expansion[l_]["rem"][:, 2] / np.log(ne) for l_ in ells])
print(f"remainder after the n^(1/3) term / log n, all ell: between {r3_over_log.min():.3f} and {r3_over_log.max():.3f}")
print(f"({time.perf_counter() - tic:.1f} s) the expansion holds to O(n^(-2/3)) for n = {n_exp[0]} ... {n_exp[-1]}")

# %%
fig, axes = plt.subplots(1, 2, figsize=(12, 4.6), constrained_layout=True)
ax = axes[0]
e = expansion[expansion_ell]
names = ["$n\\log\\ell + \\frac{3}{2} a^{1/3}n^{2/3}$", "$\\ldots - \\frac{1}{2} a^{2/3}n^{1/3}$",
         "$\\ldots - \\frac{1}{3}\\log n$", "$\\ldots + C(a)$", "$\\ldots + D(a)\\,n^{-1/3}$"]
for j, name in zip(range(1, 6), names):
    ax.loglog(n_exp, np.abs(e["rem"][:, j]), "o-", ms=3, color=f"C{j - 1}", label=name)
ax.loglog(n_exp, 0.5 * e["a"] ** (2 / 3) * ne ** (1 / 3), ":", color="C0", lw=1)
ax.loglog(n_exp, abs(e["D"]) * ne ** (-1 / 3), ":", color="C3", lw=1)
ax.set(xlabel="dimension $n$", ylabel="$|\\log V_n - \\mathrm{expansion}|$",
       title=f"remainder of the expansion, $\\ell = {expansion_ell:g}$, $\\rho = {rho_fixed:g}$")
ax.legend(fontsize=8, title="expansion up to", title_fontsize=8, loc="lower left")
ax = axes[1]
for i, l_ in enumerate(ells):
    rem = expansion[l_]["rem"]
    ax.semilogx(n_exp, rem[:, 1] / np.log(ne), "--", color=f"C{i}")
    ax.semilogx(n_exp, rem[:, 2] / np.log(ne), "-", color=f"C{i}", label=f"$\\ell = {l_:g}$")
ax.axhline(-1 / 3, color="k", ls=":", lw=1, label="$-1/3$")
ax.plot([], [], "k--", label="after the $n^{2/3}$ term")
ax.plot([], [], "k-", label="after the $n^{1/3}$ term")
ax.set(xlabel="dimension $n$", ylabel="remainder $/\\log n$", title=f"remainder over $\\log n$, $\\rho = {rho_fixed:g}$")
ax.legend(fontsize=8, ncol=2, loc="lower left")
_ = pfode.nb.publish(fig, "ch08_expansion", "fig-ch8-expansion", rho=rho_fixed, ell=expansion_ell,
                 n_max=f"{n_exp[-1]:,}")

# %% [markdown]
# ```{glue:figure} fig-ch8-expansion
# :name: fig-ch8-expansion
#
# The Steiner volume $\log V_n(\ell, \rho)$ at the fixed radius $\rho =$ {glue:text}`fig-ch8-expansion-rho` against its expansion, for $n$ from 100 to {glue:text}`fig-ch8-expansion-n_max`. Left: for $\ell =$ {glue:text}`fig-ch8-expansion-ell`, the absolute remainder after each successive term (markers); the dotted lines are the sizes of the first omitted term, $\frac12 a^{2/3}n^{1/3}$ and $|D(a)|n^{-1/3}$. Each term lowers the remainder by an order: $n^{1/3}$, $\log n$, a constant, $n^{-1/3}$, $n^{-2/3}$. Right: the remainder divided by $\log n$, for each cube side. After the $n^{2/3}$ term alone (dashed) it grows like $n^{1/3}/\log n$; with the $n^{1/3}$ term (solid) it stays bounded and tends to $-1/3$ (dotted).
# ```

# %% [markdown]
# ## The chi-square tail: exact, Chernoff and Laurent–Massart
#
# For $z \sim \mathcal N(0, I_n)$, $\|z\|^2 \sim \chi^2_n$ and
# $P(\chi^2_n > r) = Q(n/2, r/2)$. With $r = (1+s)n$, Chernoff gives
# $e^{-\frac n2(s - \ln(1+s))}$, and Laurent–Massart gives $e^{-x}$ with
# $r = n + 2\sqrt{nx} + 2x$. All three are computed in log space. The exact tail comes from
# `bounds.log_chi2_tail`; where it is below $10^{-300}$ it is checked against a 60-digit
# incomplete gamma function. By Cramér's theorem the Chernoff exponent is the exact rate:
# $-\frac1n\log P \to I = \frac12(s - \ln(1+s))$. The Bahadur–Rao refinement
# $P \sim e^{-nI}/(\theta\sigma\sqrt{2\pi n})$, with $\theta = s/(2(1+s))$ and
# $\sigma = \sqrt2(1+s)$, gives the polynomial factor, and the exact tail must approach it.

# %%
ns = np.unique(np.round(np.logspace(0, np.log10(n_max), 60)).astype(int))
chi = {}
for s in chi2_s:
    r = (1 + s) * ns
    exact = np.asarray(bounds.log_chi2_tail(ns, r))
    chern = -0.5 * ns * (s - np.log1p(s))
    y = (r - ns) / (np.sqrt(2 * r - ns) + np.sqrt(ns))          # sqrt(x) with r = n + 2 sqrt(n x) + 2x
    lm = -(y**2)
    # the library's own bounds, where they do not underflow
    ok = chern > -700
    np.testing.assert_allclose(np.log(bounds.chi2_tail_chernoff(ns[ok], r[ok])), chern[ok], rtol=1e-12)
    np.testing.assert_allclose(np.log(bounds.chi2_tail_laurent_massart(ns[ok], r[ok])), lm[ok], rtol=1e-12)
    # threshold: Chernoff and Laurent-Massart are upper bounds that must hold; 1e-12 covers the
    #   round-off of log tails
    assert np.all(exact <= chern + 1e-12), f"s={s}: exact tail above the Chernoff bound"
    assert np.all(exact <= lm + 1e-12), f"s={s}: exact tail above the Laurent-Massart bound"
    chi[s] = (exact, chern, lm)
    rate = 0.5 * (s - math.log1p(s))
    print(f"s = {s}: at n = {ns[-1]}, -log P/n = {-exact[-1] / ns[-1]:.5f} (exact), {rate:.5f} (Chernoff rate), "
          f"{y[-1]**2 / ns[-1]:.5f} (Laurent-Massart); log P = {exact[-1]:.1f}")
    # Bahadur-Rao: P ~ exp(-n I) / (theta sigma sqrt(2 pi n)), theta = s / (2(1+s)), sigma = sqrt(2)(1+s)
    theta, sigma = s / (2 * (1 + s)), math.sqrt(2) * (1 + s)
    log_br = chern - np.log(theta * sigma * np.sqrt(2 * np.pi * ns))
    err = np.abs(exact - log_br)
    j5 = np.searchsorted(ns, ns[-1] // 5)
    print(f"         Bahadur-Rao: |log P - log P_BR| = {err[j5]:.3f} at n = {ns[j5]}, {err[-1]:.4f} at n = {ns[-1]}")
    # threshold: Bahadur-Rao is the exact asymptotic (error O(1/n)): from n/5 to n the error must
    #   fall by at least 0.4 (O(1/n) predicts 0.2)
    assert err[-1] < 0.4 * err[j5] + 1e-3 and err[-1] < 0.2, f"s={s}: exact tail does not approach Bahadur-Rao"
for n_, r_ in [(n_max, 2.0 * n_max), (2000, 3000.0)]:
    ref = float(mpmath.log(mpmath.gammainc(mpmath.mpf(n_) / 2, mpmath.mpf(r_) / 2, regularized=True)))
    np.testing.assert_allclose(bounds.log_chi2_tail(n_, r_), ref, rtol=1e-10)
print("exact <= Chernoff and exact <= Laurent-Massart at every plotted (n, s); log_chi2_tail matches mpmath")

# %% mystnb={"figure": {"caption": "The $\\chi^2$ tail $\\delta_2 = P(\\chi^2_n > (1+s)n)$ (solid, exact) and its Chernoff (dashed) and Laurent–Massart (dotted) bounds, in log space, against the dimension $n$. Left: $-\\log_{10}$ of each on log-log axes (exponential decay is a line of slope one; a bound lies below the exact curve). Right: $\\log\\delta_2/n$, so an exponential rate shows as a level; the exact tail approaches the Chernoff rate $-\\frac12(s - \\ln(1+s))$ (Cramér), while Laurent–Massart is weaker for large $s$. Both bounds hold at every $n$ and $s$.", "name": "fig-ch8-chi2"}}
fig, axes = plt.subplots(1, 2, figsize=(12, 4.4), constrained_layout=True)
for i, s in enumerate(chi2_s):
    exact, chern, lm = chi[s]
    ax = axes[0]          # -log10 delta2 on log-log axes: a straight line of slope 1 is exponential decay
    ax.loglog(ns, -exact / np.log(10), "-", color=f"C{i}", label=f"$s = {s}$")
    ax.loglog(ns, np.maximum(-chern / np.log(10), 1e-3), "--", color=f"C{i}")
    ax.loglog(ns, np.maximum(-lm / np.log(10), 1e-3), ":", color=f"C{i}", lw=2)
    ax = axes[1]
    ax.plot(ns, exact / ns, "-", color=f"C{i}")
    ax.plot(ns, chern / ns, "--", color=f"C{i}")
    ax.plot(ns, lm / ns, ":", color=f"C{i}", lw=2)
axes[0].plot([], [], "k-", label="exact")
axes[0].plot([], [], "k--", label="Chernoff bound")
axes[0].plot([], [], "k:", lw=2, label="Laurent–Massart bound")
for ax in axes:
    ax.set_xscale("log")
    ax.set_xlabel("dimension $n$")
axes[0].set(ylabel="$-\\log_{10}\\delta_2$ (bounds below the exact curve)", ylim=(1e-2, None),
            title="$\\delta_2 = P(\\chi^2_n > (1+s)\\,n)$, $r = (1+s)\\,n$")
axes[1].set(ylabel="$\\log(\\delta_2)\\,/\\,n$", ylim=(-0.6, 0.02),
            title="per dimension: the exact rate tends to Chernoff's")
axes[0].legend(fontsize=8, ncol=2)
pfode.nb.savefig(fig, "ch08_chi2")
plt.show()

# %% [markdown]
# ## The bound on $\delta_1$ and its rate
#
# For $q$ uniform on $[-1, 1]^n$ ($q_{\max} = 2^{-n}$), and $p_G \le \gamma$ outside the
# $\rho$-neighbourhoods of $m$ cubes of side $\ell$,
# $\log\delta_1 \le \log m + \log V_n(\ell, \rho) - n\log 2$ (`bounds.delta1_steiner_bound`).
#
# - **Fixed $\rho$.** The grown cube differs from the cube only near its boundary:
#   $\log V_n(\ell, \rho) = n\log\ell + \tfrac32 a^{1/3}n^{2/3} - \tfrac12 a^{2/3}n^{1/3} + O(\log n)$,
#   $a = 2\pi\rho^2/\ell^2$ (checked above). So the bound falls at the rate $\log(\ell/2)$ per
#   dimension whenever $\ell < 2$, with a slowly vanishing correction $a^{1/3}n^{-1/3}$ to the slope.
# - **$\rho = \bar\rho\sqrt n$**, the natural scale: the radius at which a Gaussian neighbour
#   falls below $\gamma = e^{-cn}$ is $\rho^2 = 2s^2\bigl(cn - \tfrac n2\log(2\pi s^2)\bigr)$
#   (`bounds.gaussian_neighbor_radius`), proportional to $\sqrt n$. Then (Chapter 8, by
#   Stirling and Laplace's method)
#   $\frac1n\log V_n \to \Psi(\ell, \bar\rho) = \max_{0\le a\le1}\bigl[H(a) + (1-a)\log\ell + \tfrac a2\log(2\pi e\bar\rho^2/a)\bigr]$,
#   and the bound tends to zero exactly when $\Psi(\ell, \bar\rho) < \log 2$.

# %%
def psi(ell_, rho_bar_):
    """lim (1/n) log vol(C_ell + rho_bar sqrt(n) B), by the variational formula."""
    if rho_bar_ == 0:
        return math.log(ell_)
    # stationarity: (1 - a)/a * sqrt(2 pi rho_bar^2 / a) = ell, left side decreasing in a
    f = lambda a: math.log1p(-a) - math.log(a) + 0.5 * math.log(2 * math.pi * rho_bar_**2 / a) - math.log(ell_)
    a = optimize.brentq(f, 1e-15, 1 - 1e-15, xtol=1e-15)
    H = -a * math.log(a) - (1 - a) * math.log1p(-a)
    return H + (1 - a) * math.log(ell_) + 0.5 * a * math.log(2 * math.pi * math.e * rho_bar_**2 / a)


n_rate = np.unique(np.round(np.logspace(0, np.log10(n_max), 40)).astype(int))
log_m = math.log(num_neighborhoods)
fixed = {l_: np.array([log_m + bounds.log_steiner_volume(n, l_, rho_fixed) - n * math.log(2) for n in n_rate])
         for l_ in ells}
scaled = {l_: np.array([log_m + bounds.log_steiner_volume(n, l_, rho_bar * math.sqrt(n)) - n * math.log(2)
                        for n in n_rate]) for l_ in ells}
mid = len(n_rate) // 2
for l_ in ells:
    slope_fixed = (fixed[l_][-1] - fixed[l_][-2]) / (n_rate[-1] - n_rate[-2])
    a_ = 2 * math.pi * rho_fixed**2 / l_**2
    # fixed rho: the bound is log m - n log 2 plus the expansion of log V_n checked above
    T = bounds.log_steiner_volume_expansion(n_rate[-1], l_, rho_fixed)
    err_expansion = fixed[l_][-1] - (log_m - n_rate[-1] * math.log(2) + T[:5].sum())
    conv = [abs((scaled[l_][j] - log_m) / n_rate[j] + math.log(2) - psi(l_, rho_bar)) for j in (mid, -1)]
    print(f"ell = {l_}: rho = {rho_fixed}: slope of log delta1-bound at n = {n_rate[-1]}: {slope_fixed:+.4f} "
          f"(limit log(ell/2) = {math.log(l_ / 2):+.4f}); expansion to the constant off by {err_expansion:+.4f}")
    print(f"           rho = {rho_bar} sqrt(n): rate Psi - log 2 = {psi(l_, rho_bar) - math.log(2):+.4f}, "
          f"|(1/n) log V - Psi| = {conv[0]:.1e} at n = {n_rate[mid]}, {conv[1]:.1e} at n = {n_rate[-1]}")
    print(f"           log10 of the delta1 bound at n = {n_rate[-1]}: {fixed[l_][-1] / math.log(10):+.1f}")
    # threshold: the remainder after the constant is D(a) n^(-1/3) (1 + O(n^(-1/3))), factor 1.5
    assert abs(err_expansion) <= 1.5 * abs(T[5]), f"ell={l_}: the delta1 bound does not follow the expansion"
    # threshold: d/dn of the expansion: log(ell/2) + a^(1/3) n^(-1/3) - (1/6) a^(2/3) n^(-2/3) - 1/(3n);
    #   the first correction is an upper bound on the excess slope, doubled for the finite difference
    assert slope_fixed < math.log(l_ / 2) + 2 * a_ ** (1 / 3) * n_rate[-1] ** (-1 / 3)
    # threshold: Laplace: log V_n = n Psi - (1/2) log n + O(1) (Stirling's -(1/2) log n from the
    #   binomial and from omega_k, +(1/2) log n from the sqrt(n)-wide peak), so the gap is
    #   (log n) / (2n) + O(1/n); twice that leading term (log n) / n is the margin
    assert conv[1] < conv[0] and conv[1] < math.log(n_rate[-1]) / n_rate[-1], \
        f"ell={l_}: (1/n) log V does not approach Psi"
    # the library's delta1 bound is the same number, capped at 1
    np.testing.assert_allclose(bounds.delta1_steiner_bound(n_rate[-1], num_neighborhoods, l_, rho_fixed,
                                                           -n_rate[-1] * math.log(2)),
                               math.exp(min(fixed[l_][-1], 0.0)), rtol=1e-10, atol=1e-300)
# Psi against brute force over a (a) at small rho_bar and closed-form limits
for l_, rb in [(1.0, 0.3), (1.9, 0.05), (0.5, 1.0)]:
    a = np.linspace(1e-9, 1 - 1e-9, 200001)
    brute = np.max(-a * np.log(a) - (1 - a) * np.log1p(-a) + (1 - a) * np.log(l_) + 0.5 * a * np.log(2 * np.pi * np.e * rb**2 / a))
    np.testing.assert_allclose(psi(l_, rb), brute, rtol=0, atol=1e-8)
    # threshold: Psi is a maximum over a that includes both end points, so it exceeds both terms
    #   exactly; 1e-12 for round-off
    assert psi(l_, rb) >= max(math.log(l_), 0.5 * math.log(2 * math.pi * math.e * rb**2)) - 1e-12
print("Psi agrees with a brute-force maximisation and exceeds both the cube and the ball terms")

# %% [markdown]
# **The regime where the $\delta_1$ bound vanishes.** $\Psi(\ell, \bar\rho) < \log 2$ is a region
# below a curve in the $(\ell, \bar\rho)$ plane. It meets the axis $\bar\rho = 0$ at $\ell = 2$
# (the cube of the data) and the axis $\ell = 0$ at $\bar\rho = 2/\sqrt{2\pi e} \approx 0.48$ (a
# ball of radius $\bar\rho\sqrt n$ has the volume of $[-1,1]^n$ to exponential order). With Gaussian
# neighbours of width $s$, and $\gamma$ chosen so that $\beta = 1$ at $r = (1 + s')n$,
# $c = -\log\gamma/n = \tfrac12\log 2\pi + \tfrac{1+s'}{2}$ and
# $\bar\rho^2 = 2s^2\bigl(c - \tfrac12\log(2\pi s^2)\bigr)$. The right panel maps the
# $(\ell, s)$ plane: below each curve both $\delta_1$ and the chi-square $\delta_2$ vanish, so
# the probability of $\bar\lambda_G \ge 1$ tends to one. This holds provided $\|F(x)\|^2/n$
# stays below $1 + s'$ under $q$. For $q$ uniform on the cube, Chapter 6 measured
# $\|F(x)\|^2/n$ far above one (about 15 at $n = 128$, $s = 0.15$), so there the curve for
# $r/n = 16$ is the relevant one.

# %%
ell_grid = np.linspace(0.02, 2.5, grid_size)
rb_grid = np.linspace(0.0, 0.7, grid_size)
PSI = np.array([[psi(l_, rb) for l_ in ell_grid] for rb in rb_grid])                    # (rho_bar, ell)
# boundary checks: Psi(2, 0) = log 2, Psi(0+, 2/sqrt(2 pi e)) -> log 2
np.testing.assert_allclose(psi(2.0, 0.0), math.log(2), rtol=1e-14)
rb0 = 2 / math.sqrt(2 * math.pi * math.e)
assert abs(psi(1e-6, rb0) - math.log(2)) < 1e-4, "Psi at ell -> 0 is not the ball volume"

s_grid = np.logspace(-2.5, 0, grid_size)
r_over_n = [1.1, 4.0, 16.0]
regime = {}
for rn in r_over_n:
    c = 0.5 * math.log(2 * math.pi) + 0.5 * rn                          # beta = 1 at r = rn * n
    rb_s = np.sqrt(np.maximum(2 * s_grid**2 * (c - 0.5 * np.log(2 * np.pi * s_grid**2)), 0.0))
    # same radius as bounds.gaussian_neighbor_radius, per sqrt(n)
    n_chk = 400
    np.testing.assert_allclose(bounds.gaussian_neighbor_radius(n_chk, s_grid, -c * n_chk) / math.sqrt(n_chk), rb_s,
                               rtol=1e-12)
    regime[rn] = np.array([[psi(l_, rb) for l_ in ell_grid] for rb in rb_s])           # (s, ell)

# %%
delta2_r_over_n = 1.5        # the delta2 curve for comparison: r = 1.5 n
vacuous = [l_ for l_ in ells if psi(l_, rho_bar) > math.log(2)]          # positive rate at rho = rho_bar sqrt(n)
fixed_vacuous = [l_ for l_ in ells if fixed[l_][-1] > 0]                  # fixed rho, still above 1 at n_max
print(f"positive rate for rho = {rho_bar} sqrt(n): ell = {vacuous}; fixed rho = {rho_fixed}, bound still above 1 "
      f"at n = {n_rate[-1]}: ell = {fixed_vacuous}")
fig, axes = plt.subplots(1, 3, figsize=(17, 5.8), constrained_layout=True)
ax = axes[0]
for i, l_ in enumerate(ells):
    ax.plot(n_rate, fixed[l_] / np.log(10), "-", color=f"C{i}", label=f"$\\ell = {l_}$, $\\rho = {rho_fixed}$")
    ax.plot(n_rate, scaled[l_] / np.log(10), "--", color=f"C{i}", label=f"$\\ell = {l_}$, $\\rho = {rho_bar}\\sqrt{{n}}$")
ax.plot(n_rate, np.asarray(bounds.log_chi2_tail(n_rate, delta2_r_over_n * n_rate)) / np.log(10), "k-", lw=2,
        label=f"exact $\\delta_2$, $r = {delta2_r_over_n:g}n$")
ax.set_yscale("symlog", linthresh=1.0)
y_lo, y_hi = ax.get_ylim()
y_hi = max(y_hi, 10.0)
ax.axhspan(0.0, y_hi, color="0.85", zorder=0)
ax.set_ylim(y_lo, y_hi)
ax.text(0.5 * n_rate[-1], 0.3, "above 0: bound $> 1$, vacuous", fontsize=9, ha="center", va="center")
ax.set(xlabel="dimension $n$", ylabel="$\\log_{10}$ of the bound (symlog axis)",
       title="$\\delta_1$ bounds and exact $\\delta_2$: exponential, or vacuous above 0")
ax.legend(fontsize=7, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.13))

ax = axes[1]
im = ax.pcolormesh(ell_grid, rb_grid, PSI - math.log(2), cmap="RdBu_r", vmin=-1.0, vmax=1.0, shading="auto")
ax.contour(ell_grid, rb_grid, PSI - math.log(2), levels=[0.0], colors="k", linewidths=2)
ax.plot([2.0], [0.0], "ko")
ax.plot([0.0], [rb0], "ko", clip_on=False)
fig.colorbar(im, ax=ax, label="rate $\\Psi(\\ell, \\bar\\rho) - \\log 2$ of the $\\delta_1$ bound")
ax.set(xlabel="cube side $\\ell$ (data cube: 2)", ylabel="$\\bar\\rho = \\rho/\\sqrt{n}$",
       title="$\\delta_1$ bound $\\to 0$ below the curve")

ax = axes[2]
for i, rn in enumerate(r_over_n):
    cs = ax.contour(ell_grid, s_grid, regime[rn] - math.log(2), levels=[0.0], colors=[f"C{i}"], linewidths=2)
    ax.plot([], [], color=f"C{i}", lw=2, label=f"$r/n = {rn}$")
ax.set_yscale("log")
ax.text(0.3, 0.006, "$\\delta_1$ bound $\\to 0$", fontsize=10)
ax.text(1.9, 0.3, "bound vacuous", fontsize=10, ha="center")
ax.set(xlabel="cube side $\\ell$", ylabel="Gaussian-neighbour width $s$",
       title="$\\beta = 1$: $\\delta_1$ bound $\\to 0$ below each curve")
ax.legend(fontsize=8)
_ = pfode.nb.publish(fig, "ch08_rates", "fig-ch8-rates", m=num_neighborhoods, rho=f"{rho_fixed:g}",
                 rho_bar=f"{rho_bar:g}", vacuous=(" and ".join(f"{l_:g}" for l_ in vacuous) or "none of the sides"),
                 fixed_vacuous=(" and ".join(f"{l_:g}" for l_ in fixed_vacuous) or "none of the sides"),
                 n_max=f"{n_rate[-1]:,}",
                 r2=f"{delta2_r_over_n:g}", r_over_n=", ".join(f"{v:g}" for v in r_over_n))

# %% [markdown]
# ```{glue:figure} fig-ch8-rates
# :name: fig-ch8-rates
#
# Rates of Theorem 4.3 for $q$ uniform on $[-1, 1]^n$ and $m =$ {glue:text}`fig-ch8-rates-m` neighbourhoods. Left: the bound $\log\delta_1 \le \log m + \log V_n(\ell, \rho) - n\log 2$, not capped at 0, against $n$ on a symlog axis, for a fixed radius $\rho =$ {glue:text}`fig-ch8-rates-rho` (solid; slope $\log(\ell/2)$) and for $\rho =$ {glue:text}`fig-ch8-rates-rho_bar`$\sqrt n$ (dashed; slope $\Psi(\ell, \bar\rho) - \log 2$). Curves in the grey band are above 0: there the bound exceeds one and says nothing; this is the case for all large $n$ for the dashed curves with $\ell =$ {glue:text}`fig-ch8-rates-vacuous`, whose rate is positive. For $\ell$ close to 2 the fixed-$\rho$ bound falls only at large $n$, because of the $n^{2/3}$ correction; at $n =$ {glue:text}`fig-ch8-rates-n_max` it is still above one for $\ell =$ {glue:text}`fig-ch8-rates-fixed_vacuous`. The exact $\log_{10}\delta_2$ for $r =$ {glue:text}`fig-ch8-rates-r2`$\,n$ is shown for comparison (black). Middle: the rate $\Psi(\ell, \bar\rho) - \log 2$ in the $(\ell, \bar\rho)$ plane; the bound on $\delta_1$ tends to zero below the black curve $\Psi = \log 2$. Right: the same condition for Gaussian neighbours of width $s$ with $\gamma$ chosen so that $\beta = 1$, for $r/n =$ {glue:text}`fig-ch8-rates-r_over_n`; below each curve the bound on $\delta_1$ vanishes.
# ```
