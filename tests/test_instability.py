"""Instability estimators against closed forms and against each other."""
import math

import numpy as np
import pytest
import torch
from scipy.stats import norm

import pfode

F64 = torch.float64


def gen(seed):
    return torch.Generator().manual_seed(seed)


def three_gaussians(std=0.2):
    return pfode.GaussianMixture([[-2.0, -1.0], [2.0, -1.0], [0.0, 2.0]], std)


# ---- single Gaussian: G(z) = mu + s z, J = s I -----------------------------------------------
@pytest.mark.parametrize("method", ["rk4", "dopri5"])
def test_single_gaussian_every_estimator_gives_s(method):
    s, n = 0.3, 4
    f = pfode.GaussianMixture(torch.ones(1, n, dtype=F64), s)
    G = pfode.generation_map(f, method=method, **({"steps": 100} if method == "rk4" else {}))
    z = torch.randn(5, n, generator=gen(0), dtype=F64)
    u = torch.randn(5, n, generator=gen(1), dtype=F64)
    torch.testing.assert_close(pfode.directional_instability(G, z, u), torch.full((5,), s, dtype=F64))
    torch.testing.assert_close(pfode.instability_coefficient(G, z, 0.5 * u), torch.full((5,), s, dtype=F64))
    torch.testing.assert_close(pfode.jacobian_singular_values(G, z), torch.full((5, n), s, dtype=F64))
    x, logdet = pfode.log_det_jacobian(f, z)
    torch.testing.assert_close(logdet, torch.full((5,), n * math.log(s), dtype=F64))
    torch.testing.assert_close(pfode.geometric_instability(logdet, n), torch.full((5,), s, dtype=F64))


# ---- one dimension: G'(z) = phi(z) / p(G(z)) ---------------------------------------------------
def test_one_dimensional_derivative_is_density_ratio():
    f = pfode.GaussianMixture([[-1.5], [0.5], [2.0]], [0.3, 0.2, 0.4], [0.3, 0.5, 0.2])
    G = pfode.generation_map(f, method="dopri5", rtol=1e-10, atol=1e-12)
    z = torch.linspace(-2.5, 2.5, 9, dtype=F64)[:, None]
    lam = pfode.directional_instability(G, z, torch.ones(1, dtype=F64))
    ratio = norm.pdf(z[:, 0].numpy()) / f.log_prob(G(z), 0.0).exp().numpy()
    np.testing.assert_allclose(lam.numpy(), ratio, rtol=1e-6)


# ---- Liouville: three independent routes to log|det J_G| -----------------------------------
def test_liouville_identity_in_dimension_ten():
    g = gen(2)
    n, K = 10, 6
    f = pfode.GaussianMixture(2 * torch.randn(K, n, generator=g, dtype=F64), 0.3)
    z = torch.randn(8, n, generator=g, dtype=F64)
    x, logdet_trace = pfode.log_det_jacobian(f, z)                          # closed-form divergence
    logdet_density = pfode.log_det_from_density(f, z, x)                    # exact mixture density
    torch.testing.assert_close(logdet_trace, logdet_density, rtol=1e-6, atol=1e-6)
    # generic exact trace (n JVPs) on a field that hides its closed-form divergence
    plain = lambda y, t: f(y, t)
    x2, logdet_jvp = pfode.log_det_jacobian(plain, z[:3], rtol=1e-7, atol=1e-9)
    torch.testing.assert_close(logdet_jvp, logdet_density[:3], rtol=1e-5, atol=1e-5)
    # the full Jacobian of the flow map
    J = pfode.jacobian(pfode.generation_map(f, method="dopri5"), z[:3])
    torch.testing.assert_close(torch.linalg.slogdet(J).logabsdet, logdet_density[:3], rtol=1e-6, atol=1e-6)


def test_hutchinson_trace_is_unbiased():
    g = gen(3)
    f = pfode.GaussianMixture(torch.randn(4, 6, generator=g, dtype=F64), 0.4)
    x = torch.randn(3, 6, generator=g, dtype=F64)
    probes = (2 * torch.randint(0, 2, (4000, 3, 6), generator=g) - 1).to(F64)  # (P, B, n)
    est = pfode.divergence(f, x, 0.5, trace="hutchinson", probes=probes)
    exact = pfode.divergence(f, x, 0.5)
    J = pfode.field_jacobian(f, x, 0.5)
    # Rademacher variance: 2 * sum_{i != j} J_ij^2 (symmetrised); 5 standard errors
    Js = 0.5 * (J + J.transpose(1, 2))
    var = 2 * ((Js ** 2).sum((1, 2)) - (Js.diagonal(dim1=1, dim2=2) ** 2).sum(1))
    # threshold: statistics: 5 standard errors of the 4000-probe Hutchinson mean (variance above)
    assert ((est - exact).abs() <= 5 * (var / 4000).sqrt() + 1e-12).all()


def test_hutchinson_log_det_close_to_exact():
    g = gen(4)
    f = pfode.GaussianMixture(torch.randn(3, 5, generator=g, dtype=F64), 0.5)
    z = torch.randn(4, 5, generator=g, dtype=F64)
    _, exact = pfode.log_det_jacobian(f, z)
    _, est = pfode.log_det_jacobian(f, z, trace="hutchinson", num_probes=64, generator=gen(5),
                                    rtol=1e-6, atol=1e-8)
    # threshold: a stated 10% tolerance on a 64-probe Hutchinson estimate along the path; its
    #   unbiasedness and variance are tested pointwise above
    assert (est - exact).abs().max() < 0.1 * exact.abs().max()


# ---- Liouville along the inversion path: log|det J_F(x)| = int_0^1 div v dt -------------------
class Counted:
    """A field that counts its evaluations; a solver spends at least one on each step."""

    def __init__(self, f):
        self.f, self.n, self.calls = f, f.n, 0

    def __call__(self, x, t):
        self.calls += 1
        return self.f(x, t)

    def divergence(self, x, t):
        return self.f.divergence(x, t)


def dopri5_bound(calls, entries, scale, rtol, atol):
    """Accumulated local error of one entry of a dopri5 solve: each step keeps its error estimate
    below atol + rtol |y| in the RMS over all ``entries`` of the state, so below sqrt(entries)
    times that in any one entry, and there are at most ``calls`` steps."""
    return calls * math.sqrt(entries) * (atol + rtol * scale)


def single_gaussian_inversion(s, n, B, seed):
    """N(mu, s^2 I): F(x) = (x - mu) / s and log|det J_F| = -n log s (G(z) = mu + s z)."""
    mu = torch.linspace(-1.0, 1.0, n, dtype=F64)[None]
    x = mu + torch.randn(B, n, generator=gen(seed), dtype=F64)
    return Counted(pfode.GaussianMixture(mu, s)), mu, x


def test_inversion_log_det_single_gaussian_closed_form():
    s, n, B, rtol, atol = 0.3, 4, 5, 1e-10, 1e-12
    f, mu, x = single_gaussian_inversion(s, n, B, 20)
    z, logdet = pfode.log_det_jacobian(f, x, direction="invert", rtol=rtol, atol=atol)
    # tolerance: dopri5_bound. Here div v = n a(t), a = (t - (1-t) s^2) / Sigma(t) = d/dt log Sigma / 2,
    #   does not depend on x, so the local errors of l add up unamplified; those of x grow at most by
    #   exp(int_0^1 |a| dt) = sqrt((1 + s^2) (1 + s^2) / s^2) (Groenwall; Sigma is least at
    #   t = s^2 / (1 + s^2)). |x_t - (1-t) mu| = sqrt(Sigma(t)) |x - mu| / s <= max(1, 1/s) |x - mu| and
    #   |l_t| <= n |log s| bound the state on the path.
    scale = max(mu.abs().max().item() + (x - mu).abs().max().item() / s, n * abs(math.log(s)))
    bound = dopri5_bound(f.calls, B * (n + 1), scale, rtol, atol)
    torch.testing.assert_close(logdet, torch.full((B,), -n * math.log(s), dtype=F64), rtol=0, atol=bound)
    torch.testing.assert_close(z, (x - mu) / s, rtol=0, atol=bound * (1 + s**2) / s)


def test_hutchinson_is_exact_for_an_isotropic_field_jacobian_and_probes_equal_generator():
    """∇v = a(t) I for one Gaussian: every Rademacher probe has eps^T ∇v eps = n a = div v."""
    s, n, B, P, rtol, atol = 0.3, 3, 4, 2, 1e-10, 1e-12
    f, mu, x = single_gaussian_inversion(s, n, B, 21)
    probes = (2 * torch.randint(0, 2, (P, B, n), generator=gen(22)) - 1).to(F64)      # (P, B, n)
    z1, l1 = pfode.log_det_jacobian(f, x, direction="invert", trace="hutchinson", probes=probes,
                                    rtol=rtol, atol=atol)
    scale = max(mu.abs().max().item() + (x - mu).abs().max().item() / s, n * abs(math.log(s)))
    # tolerance: dopri5_bound, as in the closed-form test above
    bound = dopri5_bound(f.calls, B * (n + 1), scale, rtol, atol)
    torch.testing.assert_close(l1, torch.full((B,), -n * math.log(s), dtype=F64), rtol=0, atol=bound)
    # the same Rademacher draw from a generator: the same solve, to the last bit
    z2, l2 = pfode.log_det_jacobian(f, x, direction="invert", trace="hutchinson", num_probes=P,
                                    generator=gen(22), rtol=rtol, atol=atol)
    assert torch.equal(z1, z2) and torch.equal(l1, l2)


def test_inversion_log_det_is_minus_generation_log_det_and_density_ratio():
    """[book: eq-ch5-data-side]: log|det J_F(x)| = -log|det J_G(F(x))| = log p_G(x) - log phi_n(F(x))."""
    g = gen(23)
    n, K = 10, 6
    f = pfode.GaussianMixture(2 * torch.randn(K, n, generator=g, dtype=F64), 0.3)
    x_typ, _ = pfode.log_det_jacobian(f, torch.randn(6, n, generator=g, dtype=F64))  # x = G(z): typical
    x_box = 4 * torch.rand(6, n, generator=g, dtype=F64) - 2                         # off the data
    x = torch.cat([x_typ, x_box])
    z, log_det_F = pfode.log_det_jacobian(f, x, direction="invert")
    density = -pfode.log_det_from_density(f, z, x)                     # log p_G(x) - log phi_n(F(x))
    # tolerance: 100 rtol (1 + |value|) at the float64 defaults (rtol = 1e-8): a stated factor 100
    #   over the solver tolerance for the accumulation of local errors over the steps and their
    #   growth along the path (as for the generation direction above)
    torch.testing.assert_close(log_det_F, density, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(z, pfode.invert(f, x), rtol=1e-6, atol=1e-6)
    # back along the generation path, from typical points only: where J_G(F(x)) is large (off the
    # data), the solve from F(x) does not return to x (the reason the inversion direction exists)
    x_back, log_det_G = pfode.log_det_jacobian(f, z[:6])
    torch.testing.assert_close(x_back, x_typ, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(log_det_G, -log_det_F[:6], rtol=1e-6, atol=1e-6)


def test_hutchinson_inversion_log_det_is_unbiased():
    """With a probe eps fixed along the path, the estimate is eps^T A eps, A = int_0^1 ∇v(x_t, t) dt,
    whose mean is tr A = log|det J_F(x)|: R independent probes per point (one per repeated row)."""
    from scipy.stats import t as student_t

    g = gen(24)
    n, B, R = 5, 4, 200
    f = pfode.GaussianMixture(torch.randn(3, n, generator=g, dtype=F64), 0.5)
    x = 2 * torch.rand(B, n, generator=g, dtype=F64) - 1
    _, exact = pfode.log_det_jacobian(f, x, direction="invert")
    _, est = pfode.log_det_jacobian(f, x.repeat(R, 1), direction="invert", trace="hutchinson",
                                    generator=gen(25))
    est = est.reshape(R, B)
    se = est.std(0) / math.sqrt(R)
    # threshold: statistics: a two-sided Student-t level of 1e-6 over the B points (Bonferroni)
    #   for the mean of R probes, plus the solver floor 1e-6 (1 + |exact|) of the exact route (the
    #   tolerance of the test above) for the two solves' different step sequences
    thr = student_t.ppf(1 - 1e-6 / (2 * B), R - 1)
    assert ((est.mean(0) - exact).abs() <= thr * se + 1e-6 * (1 + exact.abs())).all()
    # premise: the probes do spread (else the test above would only check the solver)
    assert (se > 1e-3).all()


# ---- Jacobians and spectra ---------------------------------------------------------------------
def test_jacobian_matches_central_differences():
    f = three_gaussians(0.3)
    G = pfode.generation_map(f, method="rk4", steps=200)
    z = torch.randn(4, 2, generator=gen(6), dtype=F64)
    J = pfode.jacobian(G, z)
    h = 1e-5
    for j in range(2):
        e = torch.zeros(2, dtype=F64)
        e[j] = h
        fd = (G(z + e) - G(z - e)) / (2 * h)
        torch.testing.assert_close(J[:, :, j], fd, rtol=1e-6, atol=1e-6)


def test_top_k_singular_values_by_lanczos_match_full_spectrum():
    g = gen(7)
    f = pfode.GaussianMixture(torch.randn(5, 6, generator=g, dtype=F64), 0.3)
    G = pfode.generation_map(f, method="rk4", steps=20)
    z = torch.randn(2, 6, generator=g, dtype=F64)
    full = pfode.jacobian_singular_values(G, z)
    top = pfode.jacobian_singular_values(G, z, k=2)
    torch.testing.assert_close(top, full[:, :2], rtol=1e-8, atol=1e-10)


def test_batched_lanczos_on_a_linear_map_with_known_spectrum():
    # M(z) = A z with A = Q1 diag(s) Q2ᵀ: σ_max = s[0] and its right vector Q2[:, 0], in closed form
    g = gen(11)
    n = 60
    Q1, _ = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=F64))
    Q2, _ = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=F64))
    s = torch.logspace(2, -2, n, dtype=F64)                 # gap s1/s2 = 1.17
    A = Q1 @ torch.diag(s) @ Q2.T
    z = torch.randn(3, n, generator=g, dtype=F64)
    top = pfode.top_singular_value(lambda q: q @ A.T, z, iters=25, generator=gen(12))
    # threshold: Krylov convergence for this gap after 25 steps is far below 1e-8 (Kaniel–Paige
    # bound); the value is a Ritz value, so it can only be below s[0]
    torch.testing.assert_close(top.value, torch.full((3,), float(s[0]), dtype=F64), rtol=1e-8, atol=0)
    assert bool((top.value <= s[0] * (1 + 1e-12)).all())
    np.testing.assert_allclose((top.vector @ Q2[:, 0]).abs().numpy(), 1.0, atol=1e-6)
    assert bool((top.change < 1e-8).all())
    # with as many iterations as dimensions it is exact whatever the gap
    flat = torch.ones(n, dtype=F64)
    flat[0] = 1.001
    A2 = Q1 @ torch.diag(flat) @ Q2.T
    exact = pfode.top_singular_value(lambda q: q @ A2.T, z, iters=n, generator=gen(13))
    torch.testing.assert_close(exact.value, torch.full((3,), 1.001, dtype=F64), rtol=1e-10, atol=0)


def test_batched_lanczos_on_a_flow_map_matches_the_full_spectrum():
    g = gen(14)
    f = pfode.GaussianMixture(torch.randn(20, 10, generator=g, dtype=F64), 0.1)
    G = pfode.generation_map(f, method="euler", steps=50)
    z = torch.randn(4, 10, generator=g, dtype=F64)
    full = pfode.jacobian_singular_values(G, z)[:, 0]
    top = pfode.top_singular_value(G, z, iters=10, generator=gen(15))
    # threshold: iters = n = 10, so the Krylov space is the whole space; round-off only
    torch.testing.assert_close(top.value, full, rtol=1e-9, atol=0)
    # the returned vector is the direction of largest stretch: λ along it equals σ_max
    torch.testing.assert_close(pfode.directional_instability(G, z, top.vector), full, rtol=1e-9, atol=0)


def test_max_over_directions_is_top_singular_value():
    f = three_gaussians()
    G = pfode.generation_map(f, method="rk4", steps=200)
    z = torch.randn(3, 2, generator=gen(8), dtype=F64)
    J = pfode.jacobian(G, z)
    U, S, Vh = torch.linalg.svd(J)
    lam_top = pfode.directional_instability(G, z, Vh[:, 0, :])
    torch.testing.assert_close(lam_top, S[:, 0])
    angles = torch.linspace(0, math.pi, 64, dtype=F64)
    dirs = torch.stack([angles.cos(), angles.sin()], 1)
    for b in range(3):
        lams = pfode.directional_instability(G, z[b:b + 1].expand(64, 2), dirs)
        # threshold: lambda(u) <= sigma_max holds exactly; 1e-10 relative for the two solves
        assert lams.max() <= S[b, 0] * (1 + 1e-10)


# ---- finite differences, finite perturbations -------------------------------------------------
def test_fd_on_grid_converges_to_jvp_at_midpoints_second_order():
    """Inside a basin, where G is smooth on the scale of the grid (on a basin boundary the
    peak of λ is narrower than any affordable h, and the FD averages over it)."""
    f = three_gaussians(0.3)
    G = pfode.generation_map(f, method="rk4", steps=100)
    errs = []
    for N in (11, 21):
        xs = torch.linspace(1.0, 2.0, N, dtype=F64)
        ys = torch.tensor([-1.2, -0.6], dtype=F64)
        fd = pfode.instability_fd(G, xs, ys, axis="x")                       # (2, N-1)
        mid = pfode.grid_points(0.5 * (xs[1:] + xs[:-1]), ys)
        lam = pfode.directional_instability(G, mid, torch.tensor([1.0, 0.0], dtype=F64)).reshape(2, N - 1)
        errs.append((fd - lam).abs().max().item())
    assert errs[1] < errs[0] / 3          # O(h^2): halving h divides the error by ~4
    fd_y = pfode.instability_fd(G, torch.tensor([0.0, 0.1], dtype=F64), torch.linspace(0, 0.2, 3, dtype=F64), axis="y")
    assert fd_y.shape == (2, 2)


def test_kappa_tends_to_lambda():
    f = three_gaussians()
    G = pfode.generation_map(f, method="rk4", steps=200)
    z = torch.randn(4, 2, generator=gen(9), dtype=F64)
    u = torch.randn(4, 2, generator=gen(10), dtype=F64)
    u = u / u.norm(dim=1, keepdim=True)
    lam = pfode.directional_instability(G, z, u)
    gaps = [(pfode.instability_coefficient(G, z, eps * u) - lam).abs().max().item() for eps in (1e-2, 1e-3)]
    assert gaps[1] < gaps[0] / 5          # first order in eps


def test_batched_equals_looped_estimators():
    f = three_gaussians()
    G = pfode.generation_map(f, method="heun", steps=50)
    z = torch.randn(4, 2, generator=gen(11), dtype=F64)
    u = torch.tensor([1.0, 0.0], dtype=F64)
    lam = pfode.directional_instability(G, z, u)
    torch.testing.assert_close(lam, torch.cat([pfode.directional_instability(G, z[i:i + 1], u) for i in range(4)]))
    sv = pfode.jacobian_singular_values(G, z)
    torch.testing.assert_close(sv, torch.cat([pfode.jacobian_singular_values(G, z[i:i + 1]) for i in range(4)]))


# ---- Theorem 3.1 path constants --------------------------------------------------------------
def test_path_constants_single_gaussian_closed_form():
    """For N(mu, s^2 I): ∇v = a(t) I with a = (t - (1-t)s^2)/Sigma, so L = max_t |a(t)|."""
    s = 0.5
    f = pfode.GaussianMixture(torch.zeros(1, 2, dtype=F64), s)
    x = torch.randn(3, 2, generator=gen(12), dtype=F64)
    L, M = pfode.path_constants(f, x, steps=50)
    t = np.linspace(0, 1, 51)[:-1]                                           # Euler grid, left points
    t = np.append(t, 1.0)
    a = (t - (1 - t) * s ** 2) / ((1 - t) ** 2 * s ** 2 + t ** 2)
    np.testing.assert_allclose(L.numpy(), np.abs(a).max(), rtol=1e-12)
    assert (M > 0).all()


# ---- validation ---------------------------------------------------------------------------------
def test_validation_errors():
    f = three_gaussians()
    G = pfode.generation_map(f, method="euler", steps=5)
    z = torch.zeros(2, 2, dtype=F64)
    with pytest.raises(ValueError, match="u must be non-zero"):
        pfode.directional_instability(G, z, torch.zeros(2, dtype=F64))
    with pytest.raises(ValueError, match="delta must be non-zero"):
        pfode.instability_coefficient(G, z, torch.zeros(2, 2, dtype=F64))
    with pytest.raises(ValueError, match="u must have"):
        pfode.directional_instability(G, z, torch.ones(3, 2, dtype=F64))
    with pytest.raises(ValueError, match="axis"):
        pfode.instability_fd(G, [0.0, 1.0], [0.0, 1.0], axis="z")
    with pytest.raises(ValueError, match="xs must be increasing and uniformly spaced"):
        pfode.instability_fd(G, [0.0, 1.0, 3.0], [0.0, 1.0])
    with pytest.raises(ValueError, match="k must be"):
        pfode.jacobian_singular_values(G, z, k=2)
    with pytest.raises(ValueError, match="trace"):
        pfode.log_det_jacobian(f, z, trace="approx")
    with pytest.raises(ValueError, match="num_probes"):
        pfode.log_det_jacobian(f, z, trace="hutchinson", num_probes=0)
    with pytest.raises(ValueError, match="unknown direction 'inversion'; choose one of generate, invert"):
        pfode.log_det_jacobian(f, z, direction="inversion")
    with pytest.raises(ValueError, match=r"probes must have shape \(P, 2, 2\).*got \(2, 2\)"):
        pfode.log_det_jacobian(f, z, trace="hutchinson", probes=torch.ones(2, 2, dtype=F64))
    with pytest.raises(ValueError, match=r"probes must have shape \(P, 2, 2\).*got \(1, 3, 2\)"):
        pfode.log_det_jacobian(f, z, trace="hutchinson", probes=torch.ones(1, 3, 2, dtype=F64))
    with pytest.raises(TypeError, match="probes must be a torch.Tensor"):
        pfode.log_det_jacobian(f, z, trace="hutchinson", probes=[[[1.0, 1.0], [1.0, 1.0]]])
    with pytest.raises(TypeError, match="probes must be a float32 or float64"):
        pfode.log_det_jacobian(f, z, trace="hutchinson", probes=torch.ones(1, 2, 2, dtype=torch.int64))
    with pytest.raises(ValueError, match="probes is empty"):
        pfode.log_det_jacobian(f, z, trace="hutchinson", probes=torch.ones(0, 2, 2, dtype=F64))
    with pytest.raises(ValueError, match="probes, or num_probes and generator"):
        pfode.log_det_jacobian(f, z, trace="hutchinson", probes=torch.ones(1, 2, 2, dtype=F64), generator=gen(0))
    with pytest.raises(ValueError, match="probes only apply to trace='hutchinson'"):
        pfode.log_det_jacobian(f, z, probes=torch.ones(1, 2, 2, dtype=F64))
    with pytest.raises(ValueError, match="n must be"):
        pfode.geometric_instability(torch.zeros(2), 0)
    with pytest.raises(ValueError, match="unknown method"):
        pfode.generation_map(f, method="midpoint")
    with pytest.raises(ValueError, match="direction"):
        pfode.path_constants(f, z, direction="sideways")


def test_projected_tangent_on_a_basin_boundary():
    """At the symmetric boundary z = 0 of ±2 components, G(0) = 0 and G'(0) = φ(0)/p(0) ≈ e^198:
    the projected tangent gets the log-gain right where the linear tangent cannot be resolved."""
    f = pfode.GaussianMixture([[-2.0], [2.0]], 0.1)
    G = pfode.generation_map(f, method="dopri5")
    z = torch.zeros(1, 1, dtype=F64)
    x, d, log_gain = G.log_jvp(z, torch.ones(1, 1, dtype=F64))
    expected = pfode.log_std_normal(z) - f.log_prob(torch.zeros(1, 1, dtype=F64), 0.0)
    # threshold: the test's premise (a gain of e^190 and more): closed form log phi(0) - log p_G(0)
    assert float(expected) > 190
    torch.testing.assert_close(log_gain, expected, rtol=1e-6, atol=0)
    torch.testing.assert_close(d.abs(), torch.ones(1, 1, dtype=F64))
    # jvp is exp(log_gain) times the unit direction, scaled by ‖u‖
    _, Ju = G.jvp(z, 3 * torch.ones(1, 1, dtype=F64))
    torch.testing.assert_close(Ju.abs().log()[:, 0], expected + math.log(3), rtol=1e-6, atol=0)


def test_projected_and_linear_tangents_agree_where_both_work():
    f = three_gaussians(0.3)
    z = torch.randn(6, 2, generator=gen(13), dtype=F64)
    u = torch.randn(6, 2, generator=gen(14), dtype=F64)
    _, projected = pfode.generation_map(f, method="dopri5").jvp(z, u)
    _, linear = pfode.generation_map(f, method="rk4", steps=400).jvp(z, u)
    torch.testing.assert_close(projected, linear, rtol=1e-5, atol=1e-8)


def test_fd_on_a_single_row():
    f = three_gaussians(0.3)
    G = pfode.generation_map(f, method="rk4", steps=50)
    xs = torch.linspace(1.0, 2.0, 6, dtype=F64)
    one = pfode.instability_fd(G, xs, torch.tensor([-1.0], dtype=F64))
    two = pfode.instability_fd(G, xs, torch.tensor([-1.0, 0.5], dtype=F64))
    assert one.shape == (1, 5)
    torch.testing.assert_close(one[0], two[0])
    with pytest.raises(ValueError, match="ys must hold at least two points"):
        pfode.instability_fd(G, xs, torch.tensor([-1.0], dtype=F64), axis="y")


def test_hutchinson_rejects_row_by_row_solvers():
    f = pfode.GaussianMixture([[-1.0, 0.0], [1.0, 0.5]], 0.5)
    z = torch.randn(3, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    for method, direction in (("scipy-rk45", "generate"), ("scipy-bdf", "invert"), ("fixed-point", "invert")):
        with pytest.raises(ValueError, match="hutchinson"):
            pfode.log_det_jacobian(f, z, method=method, direction=direction, trace="hutchinson",
                                   generator=torch.Generator().manual_seed(1))
