"""Does a re-run of a chapter 9 dimension sweep reproduce a table, to the notebook's tolerance?

    python sweeps/compare_dimension.py NEW.csv [OLD.csv]   # OLD: results/dimension_default/table.csv

Rows are matched by point and patch; only the columns both tables have are compared, each
against what the notebook's numerics allow (exit status 1 when a column is outside it):

- **exact**: the parameters, the point's shape, the patch and its photograph.
- **round-off**: closed-form float64 evaluations (log p_G by log-sum-exp over K components,
  the distance off the span, nearest-neighbour errors): relative 1e-9, far above n ε for
  n ≤ 12288 (3e-12), far below any digit the book quotes; ‖x⊥‖²/(s²n), which is zero when
  the span is the whole space, also absolute (n ε)²/s² (its round-off, with ‖x‖² ≤ n).
- **BDF**: F(x) is solved at rtol 1e-6, and every run asserts ``‖z_BDF − z_dopri5‖ < 1e-4 ‖z‖``
  against dopri5 at rtol 1e-9 (``check_z_err``), so two runs agree to ``‖Δz‖ ≤ 2e-4 ‖z‖``:
  ``‖z‖²/n`` to relative ``e = 4e-4 + 4e-8``, and log λ̄ = (−‖z‖²/2 − log p_G)/n − log(2π)/2 to
  ``e ‖z‖²/(2n)`` absolute (a quantile of the patches' log λ̄ to the largest of these).
- **counts**: a fraction of patches above a threshold of log λ̄ or ‖z‖² must be equal, unless
  patches lie within their tolerance of the threshold; the difference can be at most their
  number over N.
- **reported only**: the Euler reconstruction errors (G amplifies Δz by its Jacobian, which
  the chapter shows is unbounded), the χ² p-value, solver work (steps, LU counts), the
  timings, the cross-check errors and where the point ran.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
KEY = ["point_id", "kind", "index"]
EXACT = ["K", "s", "num_test", "seed", "side", "n", "D", "N", "smoke", "image", "check_points"]
ROUNDOFF = ["log_pG_over_n", "xperp2_over_s2n", "nn_rmse", "patch_std", "xperp2_over_s2n_median",
            "nn_rmse_median", "r_over_n", "log_gamma_over_n", "delta1", "delta1_lo", "delta1_hi"]
BDF_REL = 4e-4 + 4e-8
EPS = np.finfo(np.float64).eps
Z2 = ["z2_over_n", "z2_over_n_median", "z2_over_n_generated", "z2_over_n_uniform_median"]
LOGLAM = ["log_lambda"]
QUANTILES = ["loglam_q05", "loglam_q25", "loglam_q50", "loglam_q75", "loglam_q95"]
# fraction -> which per-patch quantity and threshold decide it
COUNTS = {"p_unstable": "log_lambda", "p_beta": "log_lambda", "delta2": "z2_over_n"}


def compare(new: pd.DataFrame, old: pd.DataFrame) -> list[tuple[str, str, float, float, bool]]:
    """``(column, rule, largest deviation, allowed, ok)`` for every compared column."""
    new, old = (t.assign(index=t["index"].fillna(-1)).set_index(KEY).sort_index() for t in (new, old))
    if not new.index.equals(old.index):
        missing = old.index.difference(new.index)
        raise SystemExit(f"the tables hold different rows ({len(missing)} of the old are missing)")
    cols = [c for c in old.columns if c in new.columns]
    samples = old.xs("sample", level="kind")
    out = []
    for c in cols:
        a, b = new[c], old[c]
        if c in EXACT:
            same = ((a == b) | (a.isna() & b.isna())).all()
            out.append((c, "exact", float(not same), 0.0, bool(same)))
        elif c in ROUNDOFF:
            # ||x_perp||^2 is zero when the span is the whole space (D = n): then it is the
            # round-off of x - P x, at most (n eps ||x||)^2 with ||x||^2 <= n (pixels in [0, 1])
            atol = ((old["n"] * EPS) ** 2 / old["s"] ** 2) if c.startswith("xperp2") else 0.0
            d = float(np.nanmax((np.abs(a - b) - atol) / np.maximum(np.abs(b), 1e-300)))
            out.append((c, "round-off, relative", max(d, 0.0), 1e-9, d <= 1e-9))
        elif c in Z2:
            d = float(np.nanmax(np.abs(a - b) / np.abs(b)))
            out.append((c, "BDF, relative", d, BDF_REL, d <= BDF_REL))
        elif c in LOGLAM or c in QUANTILES:
            tol = BDF_REL * old["z2_over_n"] / 2 + 1e-9
            if c in QUANTILES:       # the largest patch tolerance of the same point
                tol = old.index.get_level_values("point_id").map(
                    (BDF_REL * samples["z2_over_n"] / 2).groupby(level="point_id").max()) + 1e-9
            excess = np.asarray(np.abs(a - b) - tol, dtype=float)
            d = float(np.nanmax(np.abs(a - b)))
            out.append((c, "BDF, absolute (per row)", d, float(np.nanmax(tol)), bool(np.nanmax(excess) <= 0)))
        elif (base := c.removesuffix("_lo").removesuffix("_hi")) in COUNTS:
            what = COUNTS[base]
            r_over_n = old.xs("summary", level="kind")["r_over_n"].droplevel("index")
            pid = samples.index.get_level_values("point_id")
            threshold = 0.0 if what == "log_lambda" else pid.map(r_over_n).to_numpy()
            scale = 0.5 if what == "log_lambda" else 1.0      # log lambda: e ||z||^2 / (2n)
            near = (samples[what] - threshold).abs() <= scale * BDF_REL * samples["z2_over_n"]
            allowed = near.groupby(level="point_id").mean()   # patches at the threshold / N
            diff = (a - b).abs().xs("summary", level="kind").droplevel("index")
            out.append((c, "count", float(diff.max()), float(allowed.max()),
                        bool((diff <= allowed.reindex(diff.index) + 1e-12).all())))
        else:
            d = float(np.nanmax(np.abs(a - b) / np.maximum(np.abs(b), 1e-300))) \
                if pd.api.types.is_numeric_dtype(b) and pd.api.types.is_numeric_dtype(a) else float("nan")
            out.append((c, "reported only, relative", d, float("nan"), True))
    return out


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not 1 <= len(argv) <= 2:
        raise SystemExit(__doc__.splitlines()[2].strip())
    new = pd.read_csv(argv[0])
    old = pd.read_csv(argv[1] if len(argv) > 1 else ROOT / "results/dimension_default/table.csv")
    rows = compare(new, old)
    width = max(len(r[0]) for r in rows)
    for c, rule, d, allowed, ok in rows:
        print(f"{c:<{width}}  {rule:<26} {d:10.2e}  allowed {allowed:9.2e}  {'ok' if ok else 'OUTSIDE'}")
    bad = [r[0] for r in rows if not r[4]]
    print(f"{len(rows)} columns compared, {len(rows) - len(bad)} within the error model"
          + (f"; outside: {', '.join(bad)}" if bad else ""))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
