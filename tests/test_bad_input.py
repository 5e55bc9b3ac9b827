"""Bad input gets a named error at once: never a hang, never a silent NaN.

The contract of the public API, tested by category rather than by example. Every public
function is registered below with one valid call: its arguments and the *kind* of each. A
*category* of bad input turns a valid value of a kind into a bad one:

==============  ====================================================================================
kind            categories
==============  ====================================================================================
batch (B, n)    wrong shape (1-D, 3-D, wrong n), wrong dtype (int, bool, float16, bfloat16, complex),
                NaN / inf at a random entry, empty batch, not a tensor, huge finite values
time t          below 0, above 1, NaN / inf, not a number (str, bool, None, list)
count           zero or negative, not an integer (2.5, "3", True, None)
positive        zero, negative, NaN, inf, not a number
choice          an unknown name, not a string
fraction        outside (0, 1), NaN, not a number
field / map     returns NaN, returns the wrong shape, returns a non-tensor, is not callable
generator       an int, a string
path            an int (a file descriptor), None
==============  ====================================================================================

The property (one test per registered function and argument, hypothesis drawing the
category and the bad value): the call raises ``ValueError``, ``TypeError`` or
``FloatingPointError`` (``FileNotFoundError`` for paths) whose message names the argument,
within ``LIMIT`` seconds. For huge finite values a finite result is also correct (the
function is defined there); a NaN or inf in the result never is.
"""
from __future__ import annotations

import math
import signal
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pfode
from pfode import bounds, data, record, restoration, sde, stats

F64 = torch.float64
LIMIT = 20          # seconds; every valid call below takes well under one
ERRORS = (ValueError, TypeError, FloatingPointError)
SETTINGS = settings(max_examples=25, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


@contextmanager
def time_limit(seconds):
    def handler(signum, frame):
        raise TimeoutError(f"the call did not return within {seconds} s (a hang)")
    old = signal.signal(signal.SIGALRM, handler)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def finite_result(out) -> bool:
    """True when every number in the result (tensors, arrays, tuples, named tuples) is finite."""
    if isinstance(out, torch.Tensor):
        return (not torch.is_floating_point(out)) or bool(torch.isfinite(out).all())
    if isinstance(out, np.ndarray):
        return out.dtype.kind not in "fc" or bool(np.isfinite(out).all())
    if isinstance(out, float):
        return math.isfinite(out)
    if isinstance(out, (tuple, list)):
        return all(finite_result(o) for o in out)
    return True


# ---- the valid objects the calls are built from -------------------------------------------------
def gm2():
    return pfode.GaussianMixture([[-1.0, 0.0], [1.0, 0.5]], 0.5)


def ls4():
    return pfode.LocalScoreMachine([[-1.0, 0.0, 0.5, 1.0], [1.0, 0.5, -0.5, 0.0]], 3, 0.5, shape=(1, 2, 2))


def X(B=3, n=2, seed=0):
    return torch.randn(B, n, generator=torch.Generator().manual_seed(seed), dtype=F64)


def sched():
    return sde.ThetaSchedule.terminal("cosine")


def law():
    return sde.Mixture([[0.0, 1.0], [1.0, -1.0]], 0.2)


MU = [0.5, 0.25]
_TMP = __import__("tempfile").mkdtemp(prefix="pfode-bad-input-")
METRICS = record.save_metrics({"a": 1}, f"{_TMP}/metrics.json") and f"{_TMP}/metrics.json"


# ---- categories ----------------------------------------------------------------------------------
def _random_entry(x: torch.Tensor, value, draw):
    y = x.clone()
    i = draw(st.integers(0, y.numel() - 1))
    y.view(-1)[i] = value
    return y


@st.composite
def bad_batch(draw, valid, n_fixed=True):
    c = draw(st.sampled_from(["shape", "dtype", "nonfinite", "empty", "type", "huge"]))
    if c == "shape":
        wrong_n = [valid[:, :1] if valid.shape[1] > 1 else torch.cat([valid, valid], 1),
                   torch.cat([valid, valid], 1)] if n_fixed else []
        return c, draw(st.sampled_from([valid[0], valid[None], *wrong_n]))
    if c == "dtype":
        return c, valid.to(draw(st.sampled_from([torch.int64, torch.bool, torch.float16, torch.bfloat16,
                                                 torch.complex128])))
    if c == "nonfinite":
        return c, _random_entry(valid, draw(st.sampled_from([math.nan, math.inf, -math.inf])), draw)
    if c == "empty":
        return c, valid[:0]
    if c == "type":
        return c, draw(st.sampled_from([valid.numpy(), valid.tolist(), "x", None]))
    scale = draw(st.sampled_from([1e150, 1e300]))
    return c, valid * scale


@st.composite
def bad_params(draw, valid, ndims=(2,)):
    """A parameter array (mixture means): integer or half-precision entries are converted, so
    only wrong numbers of dimensions, NaN / inf, empty, complex and text are bad."""
    c = draw(st.sampled_from(["shape", "nonfinite", "empty", "dtype", "type"]))
    if c == "shape":
        cands = [v for v in (valid[0], valid[None], valid[None, None]) if v.dim() not in ndims]
        return c, draw(st.sampled_from(cands))
    if c == "nonfinite":
        return c, _random_entry(valid, draw(st.sampled_from([math.nan, math.inf, -math.inf])), draw)
    if c == "empty":
        return c, valid[:0]
    if c == "dtype":
        return c, valid.to(torch.complex128)
    return c, draw(st.sampled_from(["means", [["a", "b"]]]))


@st.composite
def bad_time(draw, valid=0.5, upper=1.0):
    c = draw(st.sampled_from(["range", "nonfinite", "type"]))
    if c == "range":
        return c, draw(st.one_of(st.floats(-1e6, -1e-9), st.floats(upper + 1e-9, 1e6)))
    if c == "nonfinite":
        return c, draw(st.sampled_from([math.nan, math.inf, -math.inf]))
    return c, draw(st.sampled_from(["0.5", True, None, [0.5, 0.2], 0.5j]))


@st.composite
def bad_count(draw, valid=None):
    c = draw(st.sampled_from(["range", "type"]))
    if c == "range":
        return c, draw(st.integers(-10**9, 0))
    return c, draw(st.sampled_from([2.5, 3.0, "3", True, float("nan")]))


@st.composite
def bad_count_array(draw, valid=None):
    """A count of an array function (numpy style): 3.0 is the integer 3 there."""
    c = draw(st.sampled_from(["range", "type"]))
    if c == "range":
        return c, draw(st.integers(-10**9, 0))
    return c, draw(st.sampled_from([2.5, "3", True, float("nan")]))


@st.composite
def bad_direction(draw, valid):
    """A direction: (n,) broadcasts, so only other shapes, dtypes, NaN and zero rows are bad."""
    c = draw(st.sampled_from(["shape", "dtype", "nonfinite", "zero", "type", "huge"]))
    if c == "shape":
        return c, draw(st.sampled_from([valid[None], valid[:, :1], torch.cat([valid, valid], 0)]))
    if c == "dtype":
        return c, valid.to(draw(st.sampled_from([torch.bool, torch.float16, torch.complex128])))
    if c == "nonfinite":
        return c, _random_entry(valid, draw(st.sampled_from([math.nan, math.inf])), draw)
    if c == "zero":
        return c, valid * 0
    if c == "type":
        return c, "u"
    return c, valid * 1e300


@st.composite
def bad_array_positive(draw, valid=None):
    """A positive argument of an array function: lists and arrays broadcast, so only text,
    complex numbers, zero or negative values and NaN are bad."""
    c = draw(st.sampled_from(["range", "nonfinite", "type"]))
    if c == "range":
        return c, draw(st.one_of(st.just(0.0), st.floats(-1e6, -1e-12)))
    if c == "nonfinite":
        return c, math.nan
    return c, draw(st.sampled_from(["1e-3", 1e-3j, ["a"]]))


@st.composite
def bad_positive(draw, valid=None):
    c = draw(st.sampled_from(["range", "nonfinite", "type"]))
    if c == "range":
        return c, draw(st.one_of(st.just(0.0), st.floats(-1e6, -1e-12)))
    if c == "nonfinite":
        return c, draw(st.sampled_from([math.nan, math.inf]))
    return c, draw(st.sampled_from(["1e-3", [1e-3, 1e-4, 1e-5], 1e-3j]))


@st.composite
def bad_choice(draw, valid=None):
    c = draw(st.sampled_from(["unknown", "type"]))
    if c == "unknown":
        return c, draw(st.text(min_size=0, max_size=8).filter(lambda s: s != valid and s not in ALL_NAMES))
    return c, draw(st.sampled_from([0, None, 1.5, ["euler"]]))


@st.composite
def bad_fraction(draw, valid=None):
    c = draw(st.sampled_from(["range", "nonfinite", "type"]))
    if c == "range":
        return c, draw(st.one_of(st.floats(-10, 0), st.floats(1, 10, exclude_min=True)))
    if c == "nonfinite":
        return c, draw(st.sampled_from([math.nan, math.inf]))
    return c, draw(st.sampled_from(["0.5", None]))


@st.composite
def bad_field(draw, valid=None):
    c = draw(st.sampled_from(["nan", "shape", "type", "callable"]))
    if c == "nan":
        return c, lambda x, *a: x * float("nan")
    if c == "shape":
        return c, lambda x, *a: x[:, :1] * 0.1
    if c == "type":
        return c, lambda x, *a: x.numpy()
    return c, draw(st.sampled_from([None, 3, "field"]))


@st.composite
def bad_generator(draw, valid=None):
    return "type", draw(st.sampled_from([0, "seed", np.random.default_rng(0)]))


@st.composite
def bad_path(draw, valid=None):
    return "type", draw(st.sampled_from([3, 2.5, ["metrics.json"]]))


ALL_NAMES = set(pfode.METHODS) | set(sde.KINDS) | {"x", "y", "exact", "hutchinson",
                                                                     "invert", "generate", "pearson",
                                                                     "spearman", "BCa", "percentile",
                                                                     "warn", "raise", "ignore"}
KINDS = {"batch": bad_batch, "batchn": lambda valid: bad_batch(valid, n_fixed=False),
         "params": bad_params, "params3": lambda valid: bad_params(valid, ndims=(2, 3)),
         "counta": bad_count_array, "direction": bad_direction, "positivea": bad_array_positive,
         "positivea0": bad_array_positive, "time": bad_time, "count": bad_count, "positive": bad_positive,
         "choice": bad_choice, "fraction": bad_fraction, "field": bad_field, "map": bad_field,
         "generator": bad_generator, "path": bad_path}


@dataclass
class Case:
    """One public function: ``call(**args)`` is valid; ``kinds`` say what each argument is;
    ``names`` the word the error must contain (default: the argument's name)."""

    name: str
    call: object
    args: dict
    kinds: dict
    names: dict = field(default_factory=dict)
    huge_ok: bool = True           # huge finite input: a finite result is acceptable


def _field_names(a):
    return {a: r"field|score|map_fn"}


CASES = [
    # exact fields
    Case("GaussianMixture", lambda means, stds: pfode.GaussianMixture(means, stds),
         {"means": X(2, 2), "stds": 0.5}, {"means": "params", "stds": "positive"}, {"stds": "stds"}),
    Case("GaussianMixture.velocity", lambda x, t: gm2().velocity(x, t), {"x": X(), "t": 0.5},
         {"x": "batch", "t": "time"}),
    Case("GaussianMixture.log_prob", lambda x, t: gm2().log_prob(x, t), {"x": X(), "t": 0.3},
         {"x": "batch", "t": "time"}),
    Case("GaussianMixture.score", lambda x, t: gm2().score(x, t), {"x": X(), "t": 0.3},
         {"x": "batch", "t": "time"}),
    Case("GaussianMixture.divergence", lambda x, t: gm2().divergence(x, t), {"x": X(), "t": 0.3},
         {"x": "batch", "t": "time"}),
    Case("GaussianMixture.velocity_jvp", lambda x, w: gm2().velocity_jvp(x, 0.4, w),
         {"x": X(), "w": X(seed=1)}, {"x": "batch", "w": "batch"}),
    Case("GaussianMixture.sample", lambda num, generator: gm2().sample(num, generator),
         {"num": 4, "generator": None}, {"num": "count", "generator": "generator"}),
    Case("LocalScoreMachine", lambda images, patch, std: pfode.LocalScoreMachine(images, patch, std, shape=(1, 2, 2)),
         {"images": X(3, 4), "patch": 3, "std": 0.5}, {"images": "params", "patch": "count", "std": "positive"}),
    Case("LocalScoreMachine.velocity", lambda x, t: ls4().velocity(x, t), {"x": X(3, 4), "t": 0.5},
         {"x": "batch", "t": "time"}),
    Case("LocalScoreMachine.velocity_jvp", lambda x, w: ls4().velocity_jvp(x, 0.4, w),
         {"x": X(3, 4), "w": X(3, 4, seed=1)}, {"x": "batch", "w": "batch"}),
    # solvers
    Case("generate", lambda field, z, method, steps: pfode.generate(field, z, method=method, steps=steps),
         {"field": gm2(), "z": X(), "method": "euler", "steps": 5},
         {"field": "field", "z": "batch", "method": "choice", "steps": "count"}, _field_names("field")),
    Case("generate dopri5", lambda field, z, rtol: pfode.generate(field, z, method="dopri5", rtol=rtol),
         {"field": gm2(), "z": X(), "rtol": 1e-6}, {"field": "field", "z": "batch", "rtol": "positive"},
         _field_names("field")),
    Case("generate scipy", lambda field, z: pfode.generate(field, z, method="scipy-rk45"),
         {"field": gm2(), "z": X(2)}, {"field": "field", "z": "batch"}, _field_names("field")),
    Case("invert", lambda field, x, method, steps: pfode.invert(field, x, method=method, steps=steps),
         {"field": gm2(), "x": X(), "method": "heun", "steps": 4},
         {"field": "field", "x": "batch", "method": "choice", "steps": "count"}, _field_names("field")),
    Case("reconstruct", lambda field, x: pfode.reconstruct(field, x, method="rk4", steps=3),
         {"field": gm2(), "x": X()}, {"field": "field", "x": "batch"}, _field_names("field")),
    Case("integrate", lambda field, x, method: pfode.integrate(field, x, [0.0, 0.5, 1.0], method=method),
         {"field": gm2(), "x": X(), "method": "rk4"}, {"field": "field", "x": "batch", "method": "choice"},
         _field_names("field")),
    Case("rk_step", lambda field, x, t, method: pfode.rk_step(field, x, t, -0.1, method),
         {"field": gm2(), "x": X(), "t": 0.5, "method": "heun"},
         {"field": "field", "x": "batch", "t": "time", "method": "choice"}, _field_names("field")),
    Case("generation_map", lambda field, method, steps: pfode.generation_map(field, method=method, steps=steps)(X()),
         {"field": gm2(), "method": "rk4", "steps": 3}, {"field": "field", "method": "choice", "steps": "count"},
         _field_names("field")),
    Case("FlowMap.jvp", lambda z, u: pfode.generation_map(gm2(), method="rk4", steps=3).jvp(z, u),
         {"z": X(), "u": X(seed=2)}, {"z": "batch", "u": "batch"}),
    # instability estimators
    Case("directional_instability", lambda map_fn, z, u: pfode.directional_instability(map_fn, z, u),
         {"map_fn": lambda q: 2 * q, "z": X(), "u": X(seed=3)}, {"map_fn": "map", "z": "batchn", "u": "direction"},
         {"map_fn": "map_fn"}),
    Case("instability_coefficient", lambda map_fn, z, delta: pfode.instability_coefficient(map_fn, z, delta),
         {"map_fn": lambda q: 2 * q, "z": X(), "delta": X(seed=4) * 1e-3},
         {"map_fn": "map", "z": "batchn", "delta": "direction"}, {"map_fn": "map_fn"}),
    Case("jvp", lambda map_fn, z, u: pfode.jvp(map_fn, z, u), {"map_fn": lambda q: q * q, "z": X(), "u": X(seed=5)},
         {"map_fn": "map", "z": "batchn", "u": "batch"}, {"map_fn": "map_fn"}),
    Case("jacobian", lambda map_fn, z: pfode.jacobian(map_fn, z), {"map_fn": lambda q: q * q, "z": X()},
         {"map_fn": "map", "z": "batchn"}, {"map_fn": "map_fn"}),
    Case("jacobian_singular_values", lambda z, k: pfode.jacobian_singular_values(lambda q: 3 * q, z, k),
         {"z": X(1, 4), "k": 2}, {"z": "batchn", "k": "count"}),
    Case("top_singular_value", lambda z, iters: pfode.top_singular_value(lambda q: 3 * q, z, iters=iters),
         {"z": X(2, 4), "iters": 3}, {"z": "batchn", "iters": "count"}),
    Case("field_jacobian", lambda field, x, t: pfode.field_jacobian(field, x, t),
         {"field": gm2(), "x": X(), "t": 0.5}, {"field": "field", "x": "batch", "t": "time"}, _field_names("field")),
    Case("divergence", lambda x, t, trace: pfode.divergence(gm2(), x, t, trace=trace),
         {"x": X(), "t": 0.5, "trace": "exact"}, {"x": "batch", "t": "time", "trace": "choice"}),
    Case("log_det_jacobian", lambda z, direction, steps, trace, generator: pfode.log_det_jacobian(
        gm2(), z, direction=direction, method="rk4", steps=steps, trace=trace, generator=generator),
         {"z": X(), "direction": "invert", "steps": 4, "trace": "hutchinson", "generator": None},
         {"z": "batch", "direction": "choice", "steps": "count", "trace": "choice", "generator": "generator"}),
    Case("log_std_normal", lambda z: pfode.log_std_normal(z), {"z": X()}, {"z": "batchn"}),
    Case("log_det_from_density", lambda z, x: pfode.log_det_from_density(gm2(), z, x),
         {"z": X(), "x": X(seed=6)}, {"z": "batch", "x": "batch"}),
    Case("grid_points", lambda xs, ys: pfode.grid_points(xs, ys), {"xs": [0.0, 1.0], "ys": [0.5]},
         {"xs": "axis", "ys": "axis"}),
    Case("geometric_instability", lambda n: pfode.geometric_instability(torch.zeros(3), n), {"n": 2},
         {"n": "count"}),
    Case("instability_fd", lambda map_fn, axis: pfode.instability_fd(map_fn, [0.0, 0.5, 1.0], [0.0, 1.0], axis=axis),
         {"map_fn": lambda q: 2 * q, "axis": "x"}, {"map_fn": "map", "axis": "choice"}, {"map_fn": "map_fn"}),
    Case("path_constants", lambda x, steps, direction: pfode.path_constants(gm2(), x, steps=steps, direction=direction),
         {"x": X(), "steps": 3, "direction": "invert"}, {"x": "batch", "steps": "count", "direction": "choice"}),
    Case("SpanReduction.split", lambda x: gm2().span_reduction().split(x), {"x": X()}, {"x": "batch"}),
    Case("SpanReduction.perp_flow", lambda t0: gm2().span_reduction().perp_flow(X(), t0, 1.0), {"t0": 0.0},
         {"t0": "time"}),
    Case("default_steps", lambda method: pfode.default_steps(method), {"method": "rk4"}, {"method": "choice"}),
    Case("default_tolerances", lambda dtype: pfode.default_tolerances(dtype), {"dtype": torch.float64},
         {"dtype": "dtype"}),
    # exactly invertible samplers
    Case("generate edict", lambda field, z, method, steps: pfode.generate(field, z, method=method, steps=steps),
         {"field": gm2(), "z": X(), "method": "edict", "steps": 5},
         {"field": "field", "z": "batch", "method": "choice", "steps": "count"}, _field_names("field")),
    Case("invert bdia", lambda field, x, method, steps: pfode.invert(field, x, method=method, steps=steps),
         {"field": gm2(), "x": X(), "method": "bdia", "steps": 5},
         {"field": "field", "x": "batch", "method": "choice", "steps": "count"}, _field_names("field")),
    Case("invert fixed point", lambda max_iter, tol: pfode.invert(gm2(), X(), method="fixed-point",
                                                                  steps=5, max_iter=max_iter, tol=tol),
         {"max_iter": 50, "tol": 1e-10}, {"max_iter": "count", "tol": "positive"}),
    Case("reconstruct belm", lambda x, method: pfode.reconstruct(gm2(), x, method=method, steps=4),
         {"x": X(), "method": "belm"}, {"x": "batch", "method": "choice"}),
    Case("generate edict p", lambda p: pfode.generate(gm2(), X(), method="edict", steps=3, p=p),
         {"p": 0.9}, {"p": "fraction"}),
    Case("generate scipy-bdf", lambda field, x, workers, max_nfe: pfode.invert(
        field, x, method="scipy-bdf", workers=workers, max_nfe=max_nfe),
         {"field": gm2(), "x": X(), "workers": 1, "max_nfe": 100000},
         {"field": "field", "x": "batch", "workers": "count", "max_nfe": "count"}, _field_names("field")),
    # SDE families
    Case("ThetaSchedule", lambda kind, scale, T: sde.ThetaSchedule(kind, scale, T),
         {"kind": "linear", "scale": 2.0, "T": 1.0}, {"kind": "choice", "scale": "positive", "T": "positive"}),
    Case("ThetaSchedule.terminal", lambda kind, target, theta_min: sde.ThetaSchedule.terminal(kind, target, 1.0, theta_min),
         {"kind": "log", "target": 0.01, "theta_min": 0.1},
         {"kind": "choice", "target": "fraction", "theta_min": "positive0"}),
    Case("ThetaSchedule.theta", lambda t: sched().theta(t), {"t": 0.5}, {"t": "time"}),
    Case("Mixture", lambda means, covs: sde.Mixture(means, covs), {"means": X(2, 2), "covs": 0.3},
         {"means": "params3", "covs": "positive"}),
    Case("Mixture.score", lambda x: law().score(x), {"x": X()}, {"x": "batch"}),
    Case("Mixture.log_prob", lambda x: law().log_prob(x), {"x": X()}, {"x": "batch"}),
    Case("Mixture.sample", lambda num, generator: law().sample(num, generator),
         {"num": 5, "generator": None}, {"num": "count", "generator": "generator"}),
    Case("posterior", lambda y, noise_std: sde.posterior(law(), [[1.0, 0.0]], noise_std, y),
         {"y": X(3, 1), "noise_std": 0.1}, {"y": "batch", "noise_std": "positive"}),
    Case("D3GM.drift", lambda x, t: sde.D3GM(sched(), 0.5, 2.0).drift(x, t, MU), {"x": X(), "t": 0.5},
         {"x": "batch", "t": "time"}),
    Case("VP.drift", lambda x: sde.VP(sched()).drift(x, 0.5, MU), {"x": X()}, {"x": "batchn"}),
    Case("D3GM", lambda lam, tau: sde.D3GM(sched(), lam, tau), {"lam": 0.5, "tau": 2.0},
         {"lam": "positive", "tau": "positive"}),
    Case("path_noise", lambda num, steps, n, seed: sde.path_noise(num, steps, n, seed),
         {"num": 2, "steps": 3, "n": 2, "seed": 0}, {"num": "count", "steps": "count", "n": "count", "seed": "count0"}),
    Case("euler_maruyama", lambda x, score, steps: sde.euler_maruyama(sde.IRSDE(sched(), 0.5), score, x, MU, steps=steps),
         {"x": X(), "score": sde.exact_score(sde.IRSDE(sched(), 0.5), law()), "steps": 5},
         {"x": "batch", "score": "field", "steps": "count"}, {"score": "score"}),
    Case("forward_em", lambda x0, steps, generator: sde.forward_em(sde.IRSDE(sched(), 0.5), x0, MU, steps=steps,
                                                                  generator=generator),
         {"x0": X(), "steps": 5, "generator": torch.Generator().manual_seed(0)},
         {"x0": "batch", "steps": "count", "generator": "generator"}),
    Case("gaussian_em_law", lambda mean, steps: sde.gaussian_em_law(sde.IRSDE(sched(), 0.5), mean, 0.3 * torch.eye(2, dtype=F64),
                                                                    MU, steps=steps),
         {"mean": X(), "steps": 5}, {"mean": "batch", "steps": "count"}),
    Case("error_gain", lambda c: sde.error_gain(sde.IRSDE(sched(), 0.5), c), {"c": 0.1}, {"c": "positivea"}),
    Case("smooth_field", lambda size, bandwidth: sde.smooth_field(torch.eye(2, dtype=F64), size, bandwidth=bandwidth)(X(), 0.5),
         {"size": 0.5, "bandwidth": 1.0}, {"size": "positive0", "bandwidth": "positive"}),
    Case("restoration.ellipse_phantoms", lambda num, size: restoration.ellipse_phantoms(num, size), {"num": 2, "size": 8},
         {"num": "count", "size": "count"}),
    Case("restoration.cartesian_mask", lambda acceleration: restoration.cartesian_mask(16, acceleration),
         {"acceleration": 4}, {"acceleration": "count"}),
    Case("restoration.degrade", lambda sigma: restoration.degrade(torch.zeros(2, 1, 8, 8), "sr", generator=torch.Generator(),
                                                                  factor=2, sigma=sigma),
         {"sigma": 0.01}, {"sigma": "positive0"}),
    Case("tdd_lower_bound", lambda d, delta: sde.tdd_lower_bound(1.0, 0.5, d, delta), {"d": 4, "delta": 0.05},
         {"d": "count", "delta": "fraction"}),
    # bounds, statistics, data, records
    Case("bounds.theorem31_bound", lambda h: bounds.theorem31_bound(h, 1.0, 1.0), {"h": 0.01}, {"h": "positivea0"}),
    # (n is a real number of degrees of freedom in the chi-square and beta formulas)
    Case("bounds.chi2_tail", lambda n, r: bounds.chi2_tail(n, r), {"n": 10, "r": 12.0},
         {"n": "positivea", "r": "positivea0"}),
    Case("bounds.log_beta", lambda n, r: bounds.log_beta(n, r, -1.0), {"n": 10, "r": 12.0},
         {"n": "positivea", "r": "positivea"}),
    Case("bounds.bernoulli_ci", lambda trials, level: bounds.bernoulli_ci(3, trials, level),
         {"trials": 10, "level": 0.95}, {"trials": "counta", "level": "fraction"}),
    Case("bounds.log_steiner_volume", lambda n, ell: bounds.log_steiner_volume(n, ell, 0.5), {"n": 3, "ell": 1.0},
         {"n": "counta", "ell": "positivea"}),
    Case("bounds.log_steiner_volume_expansion", lambda n, ell, rho: bounds.log_steiner_volume_expansion(n, ell, rho),
         {"n": 100.0, "ell": 1.0, "rho": 0.5}, {"n": "positivea", "ell": "positivea", "rho": "positivea"}),
    Case("stats.bootstrap", lambda n_resamples, level: stats.bootstrap(
        np.median, [1.0, 2.0, 4.0, 3.0, 0.5], n_resamples=n_resamples, level=level),
         {"n_resamples": 50, "level": 0.9}, {"n_resamples": "count", "level": "fraction"}),
    Case("stats.paired_difference", lambda n_resamples, level: stats.paired_difference(
        [1.0, 2.0, 4.0, 3.0], [0.5, 2.5, 3.0, 3.5], n_resamples=n_resamples, level=level),
         {"n_resamples": 50, "level": 0.9}, {"n_resamples": "count", "level": "fraction"}),
    Case("stats.correlation", lambda method, n_resamples, level: stats.correlation(
        [1.0, 2.0, 4.0, 3.0], [2.0, 1.0, 5.0, 4.0], method, n_resamples=n_resamples, level=level),
         {"method": "spearman", "n_resamples": 50, "level": 0.9},
         {"method": "choice", "n_resamples": "count", "level": "fraction"}),
    Case("data.patches", lambda num, r: data.patches(["astronaut"], num, r, crop=8), {"num": 2, "r": 2},
         {"num": "count", "r": "count"}),
    Case("data.load_image", lambda name: data.load_image(name), {"name": "astronaut"}, {"name": "choice"}),
    Case("record.load_metrics", lambda path: record.load_metrics(path), {"path": METRICS}, {"path": "path"}),
    Case("record.save_metrics", lambda path: record.save_metrics({"a": 1}, path), {"path": METRICS},
         {"path": "path"}),
]

# kinds that need no strategy of their own
KINDS["positive0"] = bad_positive          # >= 0 allowed: only the negative and non-numbers apply
KINDS["count0"] = bad_count                # >= 0 allowed


@st.composite
def bad_dtype(draw, valid=None):
    return "type", draw(st.sampled_from([torch.float16, torch.int64, "float16", 3, np.int32, None]))


KINDS["dtype"] = bad_dtype


@st.composite
def bad_axis(draw, valid=None):
    c = draw(st.sampled_from(["empty", "nonfinite", "type", "shape"]))
    if c == "empty":
        return c, []
    if c == "nonfinite":
        return c, [0.0, draw(st.sampled_from([math.nan, math.inf]))]
    if c == "shape":
        return c, [[0.0, 1.0], [2.0, 3.0]]
    return c, draw(st.sampled_from(["grid", None, [0.0, "a"]]))


KINDS["axis"] = bad_axis

PAIRS = [(c, a) for c in CASES for a in c.kinds]


def _acceptable_zero(kind, category, value):
    """Values a category draws that are valid for a ``... >= 0`` kind."""
    return kind in ("positive0", "count0", "positivea0") and category == "range" and value == 0


@pytest.mark.parametrize("case, arg", PAIRS, ids=[f"{c.name}-{a}" for c, a in PAIRS])
@SETTINGS
@given(data=st.data())
def test_bad_argument_gets_a_named_error(case, arg, data):
    kind = case.kinds[arg]
    valid = case.args[arg]
    category, value = data.draw(KINDS[kind](valid), label=f"{arg}: category, value")
    if _acceptable_zero(kind, category, value):
        return
    args = {**case.args, arg: value}
    word = case.names.get(arg, arg)
    try:
        with time_limit(LIMIT):
            out = case.call(**args)
    except ERRORS + (FileNotFoundError,) as exc:
        import re
        if category == "huge" and "overflow" in str(exc):
            return                                   # named for what happened: an overflow
        assert re.search(word, str(exc)), (
            f"{case.name}: bad {arg} ({category}: {value!r:.80}) raised {type(exc).__name__} "
            f"without naming {word!r}: {exc}")
        return
    assert category == "huge" and case.huge_ok, (
        f"{case.name}: bad {arg} ({category}: {value!r:.80}) was accepted")
    assert finite_result(out), f"{case.name}: huge {arg} returned NaN or inf"


def test_every_case_is_valid_as_registered():
    """The registered calls themselves run and return finite numbers (else the test above proves
    nothing)."""
    for case in CASES:
        with time_limit(LIMIT):
            out = case.call(**case.args)
        assert finite_result(out), case.name


def test_the_registry_covers_the_public_api():
    """Every public callable of the top-level package has a registered case (or is a class whose
    methods are registered)."""
    covered = {c.name.split(" ")[0].split(".")[0] for c in CASES}
    public = {k for k in pfode.__all__} if hasattr(pfode, "__all__") else {
        k for k, v in vars(pfode).items() if callable(v) and not k.startswith("_")
        and getattr(v, "__module__", "").startswith("pfode")}
    exempt = {"FlowMap", "inversion_map",           # FlowMap.jvp / generation_map cover them
              "BudgetExceeded"}                     # an exception class, raised, not called
    missing = sorted(public - covered - exempt)
    assert not missing, f"public functions without a bad-input case: {missing}"
