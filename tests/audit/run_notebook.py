"""Run one jupytext percent notebook as a script, with its assertions instrumented.

    python tests/audit/run_notebook.py notebooks/NAME.py OUT_PREFIX

Code cells run in order in one namespace, in the notebook's folder, with the Agg backend;
the audit records go to ``OUT_PREFIX.<pid>.json`` (see :mod:`audit_recorder`).
"""
from __future__ import annotations

import os
import re
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import audit_recorder  # noqa: E402
from instrument import instrument  # noqa: E402

CELL = re.compile(r"^# %%(.*)$")


def cells(path: Path):
    """(first line number, source) of every code cell of a percent-format file."""
    lines = path.read_text().splitlines()
    out, start, kind, buf = [], None, None, []
    for i, line in enumerate(lines, 1):
        m = CELL.match(line)
        if m:
            if start is not None and kind == "code":
                out.append((start, "\n".join(buf)))
            kind = "markdown" if "[markdown]" in m.group(1) else "code"
            start, buf = i, [""]                  # keep line numbers: the marker line is blank
            continue
        if start is not None:
            buf.append(line)
    if start is not None and kind == "code":
        out.append((start, "\n".join(buf)))
    return out


def main(nb: str, out: str) -> int:
    path = Path(nb).resolve()
    os.environ["PFODE_AUDIT_OUT"] = out
    os.environ.setdefault("MPLBACKEND", "Agg")
    os.chdir(path.parent)
    import matplotlib.pyplot as plt
    ns = {"__name__": "__main__", "__file__": str(path)}
    t0 = time.time()
    for start, src in cells(path):
        tree = instrument(src, path.stem, line_offset=start - 1)
        exec(compile(tree, str(path), "exec"), ns)
        plt.close("all")
    audit_recorder.dump()
    print(f"{path.name}: {time.time() - t0:.0f} s, {len(audit_recorder.SITES)} assertion sites")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
