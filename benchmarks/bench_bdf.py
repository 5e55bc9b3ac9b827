"""Stiff inversion point by point: ``pfode.invert(method="scipy-bdf")`` against plain scipy.

The setting of chapter 9: held-out image patches inverted through the mixture of the training
patches restricted to the span of its means (``GaussianMixture.span_reduction``), where the
inversion ODE is stiff and BDF with the closed-form Jacobian needs a few hundred evaluations
per point. Three ways, on the same points, one thread, interleaved:

- **plain scipy**: ``solve_ivp(method="BDF")`` with a numpy velocity and Jacobian written in
  this file (the code chapter 9's notebook used to carry), the reference for speed;
- **pfode scipy-bdf**: the library's path (single-row numpy velocity ``velocity_np``, torch
  closed-form ``velocity_jacobian``, checks and evaluation counts);
- **pfode scipy-bdf, torch velocity**: the same with the field wrapped in a plain function,
  so that every evaluation is a torch call; it shows what the single-row numpy path saves.
"""
from __future__ import annotations

import numpy as np
import torch
from scipy.integrate import solve_ivp
from scipy.special import softmax
from threadpoolctl import threadpool_limits

import pfode
import pfode.data
from bench_common import threads, wall


def _numpy_field(Y: np.ndarray, s: float):
    """v(y, t) and its Jacobian for a mixture with means Y and common std s (numpy)."""
    Y2 = (Y * Y).sum(1)

    def resp(t, y):
        c = 1.0 - t
        sig = c * c * s * s + t * t
        return c, sig, softmax((c * (Y @ y) - 0.5 * c * c * Y2) / sig)

    def velocity(t, y):
        c, sig, r = resp(t, y)
        return ((t - c * s * s) / sig) * y - (t / sig) * (r @ Y)

    def jacobian(t, y):
        c, sig, r = resp(t, y)
        m = r @ Y
        J = -(t * c / sig**2) * ((Y.T * r) @ Y - np.outer(m, m))
        J[np.diag_indices_from(J)] += (t - c * s * s) / sig
        return J

    return velocity, jacobian


def run(*, side: int = 8, K: int = 256, points: int = 12, s: float = 0.05, rtol: float = 1e-6,
        atol: float = 1e-8, seed: int = 0, log=print) -> dict:
    split = pfode.data.patch_split(side, K, points, seed=seed)
    gm = pfode.GaussianMixture(torch.from_numpy(split.train), s)
    span = gm.span_reduction()
    x_par = span.split(torch.from_numpy(split.test))[0]                        # (N, D)
    Y = span.field.means.numpy()
    velocity, jacobian = _numpy_field(Y, s)

    def plain():
        with threadpool_limits(1):                 # as the library does: small systems
            out = [solve_ivp(velocity, (0.0, 1.0), y, method="BDF", jac=jacobian, rtol=rtol, atol=atol)
                   for y in x_par.numpy()]
        return np.stack([o.y[:, -1] for o in out]), float(np.mean([o.nfev for o in out]))

    def library(field):
        info = {}
        z = pfode.invert(field, x_par, method="scipy-bdf", rtol=rtol, atol=atol, info=info)
        return z.numpy(), info["nfe"]

    class TorchOnly:
        """The span field without its single-row numpy path (Jacobian kept)."""
        n = span.field.n
        __call__ = staticmethod(span.field.velocity)
        velocity_jacobian = staticmethod(span.field.velocity_jacobian)

    ways = {"plain scipy": plain,
            "pfode scipy-bdf": lambda: library(span.field),
            "pfode scipy-bdf, torch velocity": lambda: library(TorchOnly())}
    res = {name: {"wall_s": [], "cpu_s": []} for name in ways}
    with threads(1):
        for _ in range(2):                                  # interleaved repeats; the median kept
            for name, fn in ways.items():
                (z, nfe), w, c = wall(fn)
                res[name]["wall_s"].append(w)
                res[name]["cpu_s"].append(c)
                res[name].update(z=z, nfe=nfe)
    ref = res["plain scipy"]
    out = {"n": split.train.shape[1], "D": span.dim, "K": K, "points": points, "s": s,
           "rtol": rtol, "atol": atol, "ways": {}}
    for name, r in res.items():
        cpu = float(np.median(r["cpu_s"]))
        out["ways"][name] = dict(wall_s=float(np.median(r["wall_s"])), cpu_s=cpu, nfe=r["nfe"],
                                 max_dz=float(np.abs(r["z"] - ref["z"]).max()),
                                 cpu_ratio=cpu / float(np.median(ref["cpu_s"])))
        log(f"[bdf] {name}: {cpu:.2f} s CPU for {points} points, {r['nfe']:.0f} evaluations per "
            f"point, max |dz| vs plain {out['ways'][name]['max_dz']:.1e}")
    return out


def render(b: dict) -> str:
    L = ["# Stiff inversion point by point: pfode scipy-bdf vs plain scipy\n",
         f"BDF inversion (`solve_ivp`, rtol {b['rtol']:g}, atol {b['atol']:g}) of {b['points']} held-out "
         f"{b['n']}-pixel patches through the mixture of K = {b['K']} training patches (s = {b['s']}), "
         f"restricted to the span of its means (D = {b['D']}), as in chapter 9. One thread; median of "
         "two interleaved repeats. Plain scipy uses a numpy velocity and Jacobian written in the "
         "benchmark; the library evaluates the field through `GaussianMixture.velocity_np` (one row, "
         "numpy) and its torch `velocity_jacobian`; the last row forces a torch call per evaluation.\n",
         "| way | CPU (s) | wall (s) | evaluations per point | max \\|Δz\\| vs plain | CPU time vs plain |",
         "|---|---|---|---|---|---|"]
    for name, r in b["ways"].items():
        L.append(f"| {name} | {r['cpu_s']:.2f} | {r['wall_s']:.2f} | {r['nfe']:.0f} | {r['max_dz']:.1e} | "
                 f"**{r['cpu_ratio']:.2f}×** |")
    return "\n".join(L) + "\n"
