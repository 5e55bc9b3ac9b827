"""pfode.restoration against closed forms: phantoms, masks, degradations, the training objective."""
import math

import numpy as np
import pytest
import torch

from pfode import restoration as R
from pfode import sde


def test_phantoms_are_seeded_images_in_range():
    for make in (R.ellipse_phantoms, R.polygon_phantoms):
        a, b, c = make(5, 32, seed=1), make(5, 32, seed=1), make(5, 32, seed=2)
        assert a.shape == (5, 1, 32, 32) and a.dtype == torch.float32
        assert torch.equal(a, b) and not torch.equal(a, c)
        assert float(a.min()) >= 0 and float(a.max()) <= 1
        # threshold: a phantom is not blank: some pixels above 0.2 in every image
        assert bool(((a > 0.2).flatten(1).sum(1) > 10).all())
    sl = R.shepp_logan(32)
    assert sl.shape == (1, 1, 32, 32) and float(sl.max()) == pytest.approx(1.0)


def test_cartesian_mask_counts_and_centre():
    for acc in (4, 8):
        m = R.cartesian_mask(32, acc, generator=torch.Generator().manual_seed(0))
        assert int(m.sum()) == 32 // acc
        assert bool(m[0])                                   # the DC line is always kept
        low = np.argsort(np.abs(np.fft.fftfreq(32)), kind="stable")[:max(1, 32 // acc // 2)]
        assert bool(m[torch.as_tensor(low)].all())
    assert torch.equal(R.cartesian_mask(32, 4, generator=torch.Generator().manual_seed(3)),
                       R.cartesian_mask(32, 4, generator=torch.Generator().manual_seed(3)))


def test_kspace_zero_filling_against_numpy():
    x = R.ellipse_phantoms(3, 16, seed=4)
    mu = R.degrade(x, "kspace", generator=torch.Generator().manual_seed(5), acceleration=4, sigma=0.0)
    g = torch.Generator().manual_seed(5)                    # replay the masks drawn by degrade
    torch.randn(x.shape, generator=g)
    masks = [R.cartesian_mask(16, 4, generator=g).numpy() for _ in range(3)]
    for i in range(3):
        ref = np.fft.ifft2(masks[i][:, None] * np.fft.fft2(x[i, 0].numpy())).real
        # threshold: float32 FFTs of values in [0, 1]: round-off
        np.testing.assert_allclose(mu[i, 0].numpy(), ref, atol=1e-5)
    full = R.degrade(x, "kspace", generator=torch.Generator().manual_seed(0), acceleration=1, sigma=0.0)
    # threshold: full sampling without noise returns the image (round-off of two FFTs)
    np.testing.assert_allclose(full.numpy(), x.numpy(), atol=1e-5)


def test_super_resolution_and_rain():
    x = R.ellipse_phantoms(2, 32, seed=6)
    mu = R.degrade(x, "sr", generator=torch.Generator().manual_seed(0), sigma=0.0)
    blocks = torch.nn.functional.avg_pool2d(x, 4)
    # threshold: block means are kept exactly, the upsampling is piecewise constant (round-off)
    np.testing.assert_allclose(torch.nn.functional.avg_pool2d(mu, 4).numpy(), blocks.numpy(), atol=1e-6)
    assert torch.equal(mu, blocks.repeat_interleave(4, 2).repeat_interleave(4, 3))
    rain = R.degrade(x, "rain", generator=torch.Generator().manual_seed(1), sigma=0.0, density=3.0)
    assert bool((rain >= x - 1e-7).all()) and float(rain.max()) <= 1.0
    assert bool(((rain - x) > 0.1).flatten(1).any(1).all())     # every image has streaks


class _Oracle(torch.nn.Module):
    """The exact network for a point mass x0: F = (x0 - mu - c_skip (y - mu)) / c_out, recovered
    from the preconditioned input c_in (y - mu) and the timestep."""

    def __init__(self, process, x0, mu):
        super().__init__()
        self.p, self.x0, self.mu = process, x0, mu
        self.dummy = torch.nn.Parameter(torch.zeros(()))

    def forward(self, inp, timestep):
        t = timestep.double() / 1000 * self.p.T
        c = R.preconditioning(self.p, t)
        y_mu = inp[:, :1].double() / c["c_in"]
        out = (self.x0 - self.mu - c["c_skip"] * y_mu) / c["c_out"]

        class _Out:
            sample = out.float()
        return _Out()


@pytest.mark.parametrize("name", ["SGM", "D3GM", "Bridge (I2SB)"])
def test_loss_and_score_are_consistent_with_the_marginal(name):
    """For a point mass the optimal denoiser is x0 itself: zero loss, and its score is the exact
    score -(x - a x0 - b mu)/v of sde.exact_score on a (near) point-mass mixture."""
    p = sde.families()[name]
    x0 = R.ellipse_phantoms(1, 8, seed=0).double()
    mu = R.degrade(x0.float(), "sr", generator=torch.Generator().manual_seed(0), factor=2).double()
    net = _Oracle(p, x0, mu)
    loss = R.denoising_loss(net, p, x0.float().expand(16, -1, -1, -1), mu.float().expand(16, -1, -1, -1),
                            torch.Generator().manual_seed(1))
    # threshold: float32 round-off of a unit-scale target, relative 1e-7, squared and divided by
    #   c_out^2 >= (sigma sigma_d)^2 / (sigma^2 + sigma_d^2) at t >= 1e-3 T
    assert float(loss) < 1e-6
    score = R.learned_score(net, p, 8)
    x = torch.randn(4, 64, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    exact = sde.exact_score(p, sde.Mixture(x0.reshape(1, 64), 1e-12))
    for t in (0.3, 0.7):
        got, ref = score(x, t, mu.reshape(1, 64)), exact(x, t, mu.reshape(64))
        # threshold: the float32 denoiser (error ~1e-7 per pixel) enters the score as a D / v
        np.testing.assert_allclose(got.numpy(), ref.numpy(), rtol=1e-4, atol=1e-5 / p.coefficients(t)[2])


def test_d3gm_is_ir_sde_at_noise_level_tau_lambda():
    """[book: prop-lr-same-sde]: D3GM(lam, tau) and IR-SDE(tau lam) have the same coefficients,
    drift and diffusion (each checked against its SDE in test_sde), so the same training loss
    on the same stream: a network trained with one is trained with the other."""
    cos = sde.ThetaSchedule.terminal("cosine", target=0.01)
    d3, ir = sde.D3GM(cos, lam=0.1, tau=1.5), sde.IRSDE(cos, lam=0.15)
    for t in np.linspace(0.0, 1.0, 11):
        # threshold: the same formulas with tau lam = 0.1 * 1.5 against 0.15 in floating point:
        #   relative round-off of a few ulp
        np.testing.assert_allclose(d3.coefficients(t), ir.coefficients(t), rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(d3.drift_coefficients(t), ir.drift_coefficients(t), rtol=1e-13)
        np.testing.assert_allclose(d3.diffusion(t), ir.diffusion(t), rtol=1e-13, atol=1e-15)
    x0 = R.ellipse_phantoms(4, 8, seed=0)
    mu = R.degrade(x0, "sr", generator=torch.Generator().manual_seed(0), factor=2)
    torch.manual_seed(0)
    net = R.score_network(8, (8, 8))
    losses = [float(R.denoising_loss(net, p, x0, mu, torch.Generator().manual_seed(1))) for p in (d3, ir)]
    other = float(R.denoising_loss(net, sde.IRSDE(cos, lam=0.1), x0, mu, torch.Generator().manual_seed(1)))
    # threshold: float32 network on inputs equal to round-off: relative 1e-6; the loss does
    #   depend on the noise level (IR-SDE at lam = 0.1 differs by some 1e-3 relative, an order of
    #   magnitude clear of the 1e-5 asserted, itself ten times the round-off allowance)
    assert abs(losses[0] - losses[1]) <= 1e-6 * abs(losses[1])
    assert abs(other - losses[1]) > 1e-5 * abs(losses[1])


@pytest.mark.parametrize("call, arg", [
    (lambda: R.degrade(torch.zeros(2, 32, 32), "sr", generator=torch.Generator()), "x"),
    (lambda: R.degrade(torch.zeros(2, 1, 32, 32), "blur", generator=torch.Generator()), "kind"),
    (lambda: R.degrade(torch.zeros(2, 1, 32, 32), "sr", generator=None), "generator"),
    (lambda: R.degrade(torch.zeros(2, 1, 30, 30), "sr", generator=torch.Generator()), "factor"),
    (lambda: R.cartesian_mask(32, 0), "acceleration"),
    (lambda: R.score_network(30), "size"),
    (lambda: R.ellipse_phantoms(0), "num"),
])
def test_restoration_validation_names_argument(call, arg):
    with pytest.raises(ValueError, match=rf"\b{arg}\b"):
        call()


def test_measurements_are_paired_and_conditions_complete():
    a = R.measurements("kspace", 3, 16, seed=2)
    b = R.measurements("kspace", 3, 16, seed=2)
    assert list(a) == [f"x{acc} {c}" for acc in (4, 8) for c in ("in-domain", "Shepp-Logan", "polygons")]
    for k in a:
        assert torch.equal(a[k][0], b[k][0]) and torch.equal(a[k][1], b[k][1])
    assert list(R.measurements("sr", 2, 16)) == ["in-domain", "Shepp-Logan", "polygons"]
    assert list(R.measurements("rain", 2, 16)) == ["in-domain", "heavy rain", "polygons"]
    # the in-domain test phantoms are not training phantoms
    train = R.training_images("sr", 64, 16)
    test = R.measurements("sr", 4, 16)["in-domain"][0]
    assert float(torch.cdist(test.flatten(1), train.flatten(1)).min()) > 0


def test_psnr_and_baselines_closed_forms():
    x = torch.full((2, 1, 16, 16), 0.5)
    p, s = R.psnr_ssim(x + 0.1, x)
    # threshold: PSNR of a constant offset c with data range 1 is -20 log10(c); float32 round-off
    np.testing.assert_allclose(p, -20 * math.log10(0.1), rtol=1e-5)
    assert np.all(s <= 1)
    const = torch.full((2, 1, 16, 16), 0.3)
    for est in R.baselines("sr", const).values():
        # threshold: interpolation reproduces a constant image (float32 round-off)
        np.testing.assert_allclose(est.numpy(), 0.3, atol=1e-6)
    assert torch.equal(R.baselines("kspace", const)["zero-filled"], const)
    streak = const.clone()
    streak[:, :, 4, 4] = 1.0                                    # an isolated bright pixel
    assert float(R.baselines("rain", streak)["median 3x3"][0, 0, 4, 4]) == pytest.approx(0.3)
