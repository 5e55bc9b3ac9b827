"""The local score machine against independent truths.

- quadrature: with one pixel and a 1x1 window the field is E[eps - x0 | x_t = x] for a 1-D
  mixture prior, an integral computed here by scipy's adaptive quadrature;
- the memorisation limit: windows that cover the image give exactly the Gaussian mixture;
- locality, the other limit: a 1x1 window factorises over pixels into C-dimensional mixtures;
- the closed-form JVP and VJP against automatic differentiation of the plain tensor operations
  and against a central difference;
- the Jacobian vanishes outside the window (exactly: the output at l never reads those pixels);
- batched = looped, and per-row times.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import integrate

import pfode
from pfode import LocalScoreMachine

F64 = torch.float64
EPS = torch.finfo(F64).eps


def images(N=6, C=2, H=5, W=4, seed=0):
    return torch.randn(N, C, H, W, generator=torch.Generator().manual_seed(seed), dtype=F64)


def points(B, n, seed=1):
    return torch.randn(B, n, generator=torch.Generator().manual_seed(seed), dtype=F64)


@pytest.mark.parametrize("t", [0.05, 0.3, 0.7, 0.95])
def test_one_pixel_against_quadrature(t):
    y, s = np.array([-0.8, 0.1, 0.9]), 0.2
    ls = LocalScoreMachine(torch.tensor(y).reshape(3, 1, 1, 1), 1, s)

    def v_quad(x):
        def joint(x0):   # prior (1/N) sum_k N(x0; y_k, s^2) times likelihood N(x; (1-t) x0, t^2)
            prior = np.exp(-0.5 * ((x0 - y) / s) ** 2).sum()
            return prior * math.exp(-0.5 * ((x - (1 - t) * x0) / t) ** 2)
        lo, hi = y.min() - 12 * s, y.max() + 12 * s
        pts = list(y)
        den = integrate.quad(joint, lo, hi, points=pts, epsabs=0, epsrel=1e-12, limit=200)[0]
        num = integrate.quad(lambda x0: joint(x0) * ((x - (1 - t) * x0) / t - x0), lo, hi,
                             points=pts, epsabs=0, epsrel=1e-12, limit=200)[0]
        return num / den

    xs = torch.linspace(-1.5, 1.5, 7, dtype=F64)[:, None]
    got = ls(xs, t)[:, 0].numpy()
    want = np.array([v_quad(float(x)) for x in xs])
    # threshold: quad's requested relative accuracy 1e-12 on both integrals, times the ratio's
    # condition (|num/den| <= 1/t + 1); 1e-9 leaves three orders of margin.
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("t", [0.0, 0.02, 0.4, 0.99, 1.0])
def test_whole_image_windows_are_the_mixture(t):
    y = images()
    N, C, H, W = y.shape
    x = points(4, C * H * W)
    for patch in (2 * max(H, W) - 1, 2 * max(H, W) + 3):
        ls = LocalScoreMachine(y, patch, 0.1)
        gm = pfode.GaussianMixture(y.reshape(N, -1), 0.1)
        got, want = ls(x, t), gm(x, t)
        # threshold: both are sums of N terms of size <= |v|; the expanded distances differ in
        # rounding only, so the gap is a few hundred eps times the scale. 1e4 eps is the margin.
        scale = float(want.abs().max()) + 1
        assert float((got - want).abs().max()) <= 1e4 * EPS * scale


def test_one_by_one_window_factorises_over_pixels():
    y = images(N=5, C=3, H=3, W=3)
    N, C, H, W = y.shape
    x = points(2, C * H * W)
    t, s = 0.45, 0.15
    v = LocalScoreMachine(y, 1, s)(x, t).reshape(2, C, H, W)
    xi = x.reshape(2, C, H, W)
    for i in range(H):
        for j in range(W):
            gm = pfode.GaussianMixture(y[:, :, i, j], s)
            want = gm(xi[:, :, i, j], t)
            scale = float(want.abs().max()) + 1
            assert float((v[:, :, i, j] - want).abs().max()) <= 1e4 * EPS * scale


def test_jvp_closed_form_against_autodiff_and_difference():
    y = images()
    n = y[0].numel()
    ls = LocalScoreMachine(y, 3, 0.1)
    x, w = points(3, n), points(3, n, seed=2)
    for t in (0.1, 0.5, 0.9):
        v, jw = ls.velocity_jvp(x, t, w)
        # forward-mode AD through the plain tensor operations (not the closed forms)
        v_ad, jw_ad = torch.func.jvp(lambda z, t=t: ls._apply(z, t), (x,), (w,))
        scale = float(jw_ad.abs().max()) + 1
        assert float((v - v_ad).abs().max()) == 0.0
        # threshold: the same algebra summed in another order; round-off, 1e4 eps of the scale
        assert float((jw - jw_ad).abs().max()) <= 1e4 * EPS * scale
        h = 1e-5
        fd = (ls(x + h * w, t) - ls(x - h * w, t)) / (2 * h)
        # threshold: central difference error h^2 |v'''| / 6 plus round-off eps |v| / h; with
        # |v'''| below 1e3 at these times both are under 1e-7 of the scale
        assert float((jw - fd).abs().max()) <= 1e-6 * scale


def test_vjp_closed_form_is_the_transpose():
    y = images()
    ls = LocalScoreMachine(y, 3, 0.1)
    x, u = points(3, ls.n), points(3, ls.n, seed=3)
    for t in (0.1, 0.5, 0.9):
        # reverse-mode AD through the plain tensor operations (not the closed forms)
        J = torch.stack([torch.autograd.functional.jacobian(lambda z, t=t: ls._apply(z[None], t)[0], x[b])
                         for b in range(3)])
        want = (J.transpose(1, 2) @ u[..., None])[..., 0]
        got = ls.velocity_vjp(x, t, u)
        scale = float(want.abs().max()) + 1
        assert float((got - want).abs().max()) <= 1e4 * EPS * scale
        # autograd through velocity() uses the closed form: the same numbers
        xx = x.clone().requires_grad_(True)
        g, = torch.autograd.grad(ls(xx, t), xx, u)
        assert torch.equal(g, got)
        # and forward mode through velocity() gives J w
        w = points(3, ls.n, seed=4)
        _, jw = torch.func.jvp(lambda z, t=t: ls(z, t), (x,), (w,))
        assert float((jw - (J @ w[..., None])[..., 0]).abs().max()) <= 1e4 * EPS * scale


def test_jacobian_is_local():
    y = images(N=4, C=1, H=6, W=6)
    ls = LocalScoreMachine(y, 3, 0.2)
    x = points(1, 36)
    J = pfode.field_jacobian(ls, x, 0.5)[0].reshape(6, 6, 6, 6)        # d v[i, j] / d x[k, l]
    ii, jj, kk, ll = np.meshgrid(*(np.arange(6),) * 4, indexing="ij")
    far = (np.abs(ii - kk) > 2) | (np.abs(jj - ll) > 2)                 # outside every window
    assert float(J[torch.tensor(far)].abs().max()) == 0.0               # never read: exactly zero
    near = (np.abs(ii - kk) <= 1) & (np.abs(jj - ll) <= 1)
    assert float(J[torch.tensor(near)].abs().max()) > 0.1


def test_batched_equals_looped_and_per_row_times():
    y = images()
    ls = LocalScoreMachine(y, 3, 0.1)
    n = ls.n
    x = points(5, n)
    t = torch.tensor([0.0, 0.1, 0.5, 0.8, 1.0], dtype=F64)
    batched = ls(x, t)
    looped = torch.cat([ls(x[i:i + 1], float(t[i])) for i in range(5)])
    scale = float(looped.abs().max()) + 1
    assert float((batched - looped).abs().max()) <= 1e4 * EPS * scale
    # rows processed in several blocks give the same numbers as one block
    from pfode import local_score
    old = local_score._BLOCK
    try:
        local_score._BLOCK = ls.L * ls.N            # one row per block
        assert torch.equal(ls(x, 0.3), LocalScoreMachine(y, 3, 0.1)(x, 0.3))
    finally:
        local_score._BLOCK = old


def test_at_t_one_the_velocity_is_x_minus_the_mean():
    y = images()
    ls = LocalScoreMachine(y, 3, 0.1)
    x = points(2, ls.n)
    want = x - y.reshape(len(y), -1).mean(0)               # E[eps - x0 | x_1 = x] = x - E x0
    assert float((ls(x, 1.0) - want).abs().max()) <= 1e4 * EPS * (float(want.abs().max()) + 1)


def test_float32_queries_and_solvers():
    y = images()
    ls = LocalScoreMachine(y, 3, 0.1)
    z = points(3, ls.n)
    x64 = pfode.generate(ls, z, method="euler", steps=20)
    x32 = pfode.generate(ls, z.float(), method="euler", steps=20)
    assert x32.dtype == torch.float32 and torch.isfinite(x32).all()
    # threshold: float32 round-off (6e-8) amplified by at most the Euler map's growth over 20
    # steps; 1e-3 of the scale is the stated margin
    assert float((x32.double() - x64).abs().max()) <= 1e-3 * (float(x64.abs().max()) + 1)


@pytest.mark.parametrize("kwargs, match", [
    (dict(patch=2), "odd"),
    (dict(patch=0), "patch"),
    (dict(std=0.0), "std"),
    (dict(std=float("nan")), "std"),
    (dict(shape=(2, 5, 5)), "images"),
])
def test_bad_construction(kwargs, match):
    args = dict(images=images().reshape(6, -1), patch=3, std=0.1, shape=(2, 5, 4)) | kwargs
    with pytest.raises((ValueError, TypeError), match=match):
        LocalScoreMachine(**args)


def test_bad_queries():
    ls = LocalScoreMachine(images(), 3, 0.1)
    with pytest.raises(ValueError, match="x"):
        ls(points(2, ls.n + 1), 0.5)
    with pytest.raises(ValueError, match="t"):
        ls(points(2, ls.n), 1.5)
    bad = points(2, ls.n)
    bad[1, 3] = float("nan")
    with pytest.raises(ValueError, match="x"):
        ls(bad, 0.5)
    with pytest.raises(ValueError, match="w"):
        ls.velocity_jvp(points(2, ls.n), 0.5, points(3, ls.n))
