#!/usr/bin/env bash
# Run every jupytext notebook in notebooks/ under nbval, in smoke mode.
#
# Notebooks are percent-format .py files (cells start with "# %%"). Each one is converted to a
# temporary .ipynb under _build/nbval/ (git-ignored) and run with `pytest --nbval-lax`: cell
# outputs are not compared, but any cell that raises fails the test, so notebooks assert their
# numbers inside cells. PFODE_SMOKE=1 tells notebooks to use small parameters.
#
# Called by `make test`; can be run on its own from the repository root:
#   bash tests/run_notebooks.sh [extra pytest args]
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
PY=${PYTHON:-$ROOT/.venv/bin/python}
OUTDIR=_build/nbval

# Percent-format notebooks only: helper modules without "# %%" cells are not notebooks.
mapfile -t NOTEBOOKS < <(
    find notebooks -name '*.py' -not -path '*/.ipynb_checkpoints/*' -type f 2>/dev/null \
        | sort | while read -r f; do grep -q '^# %%' "$f" && echo "$f"; done
)
if [ "${#NOTEBOOKS[@]}" -eq 0 ]; then
    echo "run_notebooks: no jupytext notebooks in notebooks/; skipping nbval."
    exit 0
fi

rm -rf "$OUTDIR"
mkdir -p "$OUTDIR"
IPYNBS=()
for src in "${NOTEBOOKS[@]}"; do
    dst="$OUTDIR/${src%.py}.ipynb"           # _build/nbval/notebooks/NAME.ipynb
    mkdir -p "$(dirname "$dst")"
    "$PY" -m jupytext --quiet --to ipynb --output "$dst" "$src"
    IPYNBS+=("$dst")
done
echo "run_notebooks: ${#IPYNBS[@]} notebook(s) in smoke mode (PFODE_SMOKE=1)."

export PFODE_SMOKE=1
# two notebooks run at once on two cores: one intra-op thread each avoids oversubscription
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
export PFODE_ROOT=$ROOT                      # notebooks run with cwd _build/nbval/notebooks
# Smoke-mode figures go next to the smoke notebooks, never into _build/figures (the book's).
export PFODE_FIGURES=$ROOT/$OUTDIR/figures
export MPLBACKEND=${MPLBACKEND:-Agg}
export PYTHONHASHSEED=${PYTHONHASHSEED:-0}

# --nbval-current-env: run the kernel from this interpreter whatever kernelspec a notebook names.
# --dist loadfile keeps all cells of one notebook on one worker.
rc=0
"$PY" -m pytest --nbval-lax --nbval-current-env --nbval-cell-timeout=600 \
    -p no:cacheprovider -n 2 --dist loadfile "$@" "${IPYNBS[@]}" || rc=$?
if [ "$rc" -eq 5 ]; then   # no tests collected
    echo "run_notebooks: nbval collected no cells; treating as success."
    rc=0
fi
exit "$rc"
