"""pfode: exact probability-flow ODE models, solvers and instability estimators.

Conventions: ``x_t = (1 - t) x0 + t eps`` (t = 0 data, t = 1 noise), the PF-ODE
``dx/dt = v(x, t) = E[eps - x0 | x_t = x]``, the generation map ``G`` (t: 1 → 0) and the
inversion ``F = G^{-1}`` (t: 0 → 1). Every function takes batched tensors ``(B, n)``.
"""
from . import bounds, exact_inversion, grid, nb, sde, stats
from .fields import GaussianMixture, SpanReduction
from .local_score import LocalScoreMachine
from .instability import (
    directional_instability,
    divergence,
    field_jacobian,
    geometric_instability,
    grid_points,
    instability_coefficient,
    instability_fd,
    jacobian,
    jacobian_singular_values,
    jvp,
    log_det_from_density,
    log_det_jacobian,
    log_std_normal,
    path_constants,
    top_singular_value,
)
from .solvers import (
    METHODS,
    ORDER,
    SCHEMES,
    TABLEAUS,
    BudgetExceeded,
    FlowMap,
    default_steps,
    default_tolerances,
    generate,
    generation_map,
    integrate,
    invert,
    inversion_map,
    reconstruct,
    rk_step,
)

__version__ = "0.1.0"
