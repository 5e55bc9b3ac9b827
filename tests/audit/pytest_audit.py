"""pytest plugin: import the test modules with their assertions instrumented.

    python -m pytest -p pytest_audit --assert=plain tests   (with tests/audit on PYTHONPATH)

Test modules (``tests/test_*.py``) are loaded through :func:`instrument.instrument` instead of
pytest's own assertion rewriting (hence ``--assert=plain``); :mod:`audit_recorder` writes the
records at exit of every process (each xdist worker writes its own file).
"""
from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import sys
from pathlib import Path

from instrument import instrument

TESTS = Path(__file__).resolve().parents[1]


class _Loader(importlib.machinery.SourceFileLoader):
    def source_to_code(self, data, path, *, _optimize=-1):
        return compile(instrument(data.decode(), Path(path).stem), path, "exec")


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        leaf = name.rpartition(".")[2]
        if not leaf.startswith("test_"):
            return None
        file = TESTS / f"{leaf}.py"
        if not file.is_file():
            return None
        return importlib.util.spec_from_file_location(name, file, loader=_Loader(name, str(file)))


def pytest_configure(config):
    sys.meta_path.insert(0, _Finder())
