"""Runtime side of the assertion audit: record every asserted comparison's slack.

:mod:`instrument` rewrites ``assert`` statements so that each comparison inside them calls
:func:`cmp` and each ``assert_allclose`` / ``assert_close`` calls :func:`allclose`. Both compute
the comparison exactly as the original code would and keep, per assertion site, the smallest
*margin* seen over all its evaluations:

- ``a < b`` (or ``<=``) with ``a, b`` of one sign: ``margin = b / a`` for positive values and
  ``a / b`` for negative ones, the factor by which one side must move for the check to fail;
  the same for ``>``/``>=`` with the sides exchanged. Which side is the threshold does not
  matter. Opposite signs make a *sign test* (margin infinite; the values are kept).
- ``assert_allclose(actual, desired, rtol, atol)``: ``margin = min (atol + rtol |desired|) /
  |actual - desired|`` over the elements (torch's ``assert_close`` with its dtype defaults).
- ``==`` and the rest: exact checks, no margin.

The records are written as JSON to ``$PFODE_AUDIT_OUT`` (one file per process) by
:func:`dump`, called at exit.
"""
from __future__ import annotations

import atexit
import json
import math
import operator
import os

import numpy as np

SITES: dict = {}
_MAX_VALUES = 20000
_OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
        "==": operator.eq, "!=": operator.ne, "is": operator.is_, "is not": operator.is_not,
        "in": lambda a, b: a in b, "not in": lambda a, b: a not in b}


def _numeric(a):
    try:
        if hasattr(a, "detach"):
            a = a.detach().cpu().double().numpy()
        arr = np.asarray(a, dtype=np.float64)
    except Exception:
        return None
    return arr


def _site(site):
    rec = SITES.get(site[0])
    if rec is None:
        rec = SITES[site[0]] = {"site": site[0], "source": site[1], "kind": site[2],
                                "evaluations": 0, "failed": 0, "margin": math.inf,
                                "measured": None, "threshold": None, "sign_tests": 0,
                                "integers": True, "values": []}
    return rec


def _keep(rec, margin, a, b, ok):
    rec["evaluations"] += 1
    rec["integers"] &= bool(float(a).is_integer() and float(b).is_integer())
    if len(rec["values"]) < _MAX_VALUES:             # for comparing runs value by value
        rec["values"].append([float(a), float(b)])
    rec["failed"] += 0 if ok else 1
    if margin < rec["margin"] or rec["measured"] is None:
        if margin <= rec["margin"]:
            rec["margin"], rec["measured"], rec["threshold"] = float(margin), float(a), float(b)


def _margin_less(a, b):
    """Elementwise slack of ``a < b``: returns (margin array, sign-test mask)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        pos = (a >= 0) & (b > 0)
        neg = (a < 0) & (b <= 0)
        m = np.where(pos, b / np.where(a == 0, 0.0, a), np.nan)
        m = np.where(pos & (a == 0), np.inf, m)
        m = np.where(neg, a / np.where(b == 0, -0.0, b), m)
        m = np.where(neg & (b == 0), np.inf, m)
        sign = ~(pos | neg) & (a < b)
        m = np.where(sign, np.inf, m)
        m = np.where(np.isnan(m), 0.0, m)            # failing across signs, or NaN
    return m, sign


_NEGATE = {"<": ">=", "<=": ">", ">": "<=", ">=": "<"}


def cmp(site, left, op, right, negated=False):
    """``left <op> right``, recording the slack (see the module docstring). ``negated``: the
    comparison stands under ``not``, so the slack recorded is that of the opposite one."""
    result = _OPS[op](left, right)
    try:
        rec = _site(site)
        if negated and op in _NEGATE:
            op = _NEGATE[op]
        if op in ("<", "<=", ">", ">="):
            a, b = _numeric(left), _numeric(right)
            if a is not None and b is not None and a.size and b.size:
                a, b = np.broadcast_arrays(a, b)
                lo, hi = (a, b) if op in ("<", "<=") else (b, a)
                m, sign = _margin_less(lo, hi)
                ok_el = _OPS[op](a, b)
                m = np.where(ok_el, np.maximum(m, 1.0), np.minimum(m, 1.0))
                i = int(np.argmin(m))
                rec["sign_tests"] += int(sign.ravel()[i])
                _keep(rec, float(m.ravel()[i]), a.ravel()[i], b.ravel()[i], bool(np.all(ok_el)))
                return result
        rec["kind"] = "exact"
        rec["evaluations"] += 1
    except Exception:  # the audit never changes what the code does
        pass
    return result


def mark(site, value):
    """An assertion whose test is not a plain comparison (``(a > 1) | ~(b > 1)``): counted,
    with no margin."""
    try:
        rec = _site(site)
        rec["kind"] = "compound"
        rec["evaluations"] += 1
    except Exception:
        pass
    return value


def allclose(site, fn, *args, **kwargs):
    """Call ``fn`` (an assert_allclose / assert_close) and record its margin."""
    try:
        rec = _site(site)
        actual, desired = args[0], args[1]
        a, d = _numeric(actual), _numeric(desired)
        if a is not None and d is not None:
            name = getattr(fn, "__name__", "")
            if name == "assert_close":
                dt = getattr(actual, "dtype", None)
                import torch
                default = {torch.float64: (1e-7, 1e-7), torch.float32: (1.3e-6, 1e-5)}.get(dt, (1e-7, 1e-7))
                rtol = kwargs.get("rtol", default[0])
                atol = kwargs.get("atol", default[1])
            else:
                rtol = kwargs.get("rtol", args[2] if len(args) > 2 else 1e-7)
                atol = kwargs.get("atol", args[3] if len(args) > 3 else 0.0)
            a, d = np.broadcast_arrays(a, d)
            allowed = float(atol) + float(rtol) * np.abs(d)
            err = np.abs(a - d)
            with np.errstate(divide="ignore", invalid="ignore"):
                m = np.where(err == 0, np.inf, allowed / err)
            both_nan = np.isnan(a) & np.isnan(d)
            m = np.where(both_nan, np.inf, m)
            m = np.where(np.isnan(m), 0.0, m)
            i = int(np.argmin(m)) if m.size else 0
            if m.size:
                _keep(rec, float(m.ravel()[i]), err.ravel()[i], allowed.ravel()[i], bool(np.all(m >= 1)))
    except Exception:
        pass
    return fn(*args, **kwargs)


def dump(path=None):
    path = path or os.environ.get("PFODE_AUDIT_OUT")
    if not path or not SITES:
        return
    path = f"{path}.{os.getpid()}.json"
    with open(path, "w") as f:
        json.dump(list(SITES.values()), f, indent=0, default=float)


atexit.register(dump)
