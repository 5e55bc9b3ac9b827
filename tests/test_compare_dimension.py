"""The checker of a re-run chapter 9 sweep (sweeps/compare_dimension.py) against the committed
table: it passes the table against itself, and a perturbation passes or fails according to
the error model its docstring derives."""
import importlib.util
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parent.parent
TABLE = ROOT / "results" / "dimension_default" / "table.csv"


@pytest.fixture(scope="module")
def checker():
    spec = importlib.util.spec_from_file_location("compare_dimension",
                                                  ROOT / "sweeps" / "compare_dimension.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def table():
    return pd.read_csv(TABLE)


def outside(checker, new, old):
    return {c for c, _, _, _, ok in checker.compare(new, old) if not ok}


def test_table_against_itself(checker, table):
    assert outside(checker, table.copy(), table) == set()
    assert checker.main([str(TABLE)]) == 0


def test_log_lambda_perturbations(checker, table):
    s = table.kind == "sample"
    tol = checker.BDF_REL * table.loc[s, "z2_over_n"] / 2
    new = table.copy()
    new.loc[s, "log_lambda"] += 0.9 * tol                  # inside every row's tolerance
    assert "log_lambda" not in outside(checker, new, table)
    i = table.index[s][0]
    new.loc[i, "log_lambda"] += 0.2 * tol[i] + 1e-8        # one row now 1.1 x its tolerance
    assert "log_lambda" in outside(checker, new, table)


def test_roundoff_and_exact_columns(checker, table):
    new = table.copy()
    new["log_pG_over_n"] *= 1 + 1e-11
    assert outside(checker, new, table) == set()
    new["log_pG_over_n"] *= 1 + 1e-7
    assert outside(checker, new, table) == {"log_pG_over_n"}
    new = table.copy()
    new.loc[new.index[1], "image"] = "another"
    assert outside(checker, new, table) == {"image"}


def test_a_count_moves_only_with_patches_at_the_threshold(checker, table):
    """p_unstable is the fraction of patches with log lambda > 0: changing it by 1/N is allowed
    only at a point where a patch lies within its tolerance of 0."""
    s = table.kind == "sample"
    near = (table.loc[s, "log_lambda"].abs()
            <= checker.BDF_REL * table.loc[s, "z2_over_n"] / 2).groupby(table.loc[s, "point_id"]).sum()
    far, close = near.index[near == 0][0], near.index[near > 0]
    summary = (table.kind == "summary")

    def moved(t, pid, k=1):
        new = t.copy()
        at = summary & (new.point_id == pid)
        new.loc[at, "p_unstable"] += k / new.loc[at, "N"]
        return new

    assert "p_unstable" in outside(checker, moved(table, far), table)
    old = table.copy()
    if not len(close):                          # put a patch of `far` on the threshold
        old.loc[table.index[s & (table.point_id == far)][0], "log_lambda"] = 0.0
        close = [far]
    pid = close[0]
    k = int(near.get(pid, 1)) or 1
    assert "p_unstable" not in outside(checker, moved(old, pid, k), old)
    assert "p_unstable" in outside(checker, moved(old, pid, k + 1), old)


def test_the_committed_rerun_reproduces_the_table(checker, table):
    """results/reruns/dimension_default: the default sweep re-run on a local Dask cluster of two
    workers, on another processor, with a notebook that records more columns."""
    rerun = pd.read_csv(ROOT / "results" / "reruns" / "dimension_default" / "table.csv")
    assert set(rerun["run_cpu"]) != {"Intel(R) Xeon(R) Processor"} and set(rerun["run_threads"]) == {1}
    rows = checker.compare(rerun, table)
    assert len(rows) == 72 and all(ok for *_, ok in rows)
