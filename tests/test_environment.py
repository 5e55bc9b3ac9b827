"""environment.yml (conda / Binder) and the Makefile must install what pyproject.toml declares.

pyproject.toml is the source of truth. Every requirement of the core dependencies and of every
extra must appear in the pip section of environment.yml with the same version specifier, and
environment.yml must list nothing that pyproject.toml does not.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
PKG = canonicalize_name(PROJECT["name"])
ENV = yaml.safe_load((ROOT / "environment.yml").read_text())


def _pyproject_requirements() -> dict[str, SpecifierSet]:
    """Name -> specifier for the core dependencies and all extras, minus self-references."""
    reqs: dict[str, SpecifierSet] = {}
    groups = [PROJECT.get("dependencies", [])]
    groups += list(PROJECT.get("optional-dependencies", {}).values())
    for group in groups:
        for line in group:
            req = Requirement(line)
            name = canonicalize_name(req.name)
            if name == PKG:  # e.g. "pfode[notebooks]" inside an extra
                continue
            assert reqs.get(name, req.specifier) == req.specifier, f"{name} pinned twice"
            reqs[name] = req.specifier
    return reqs


def _env_pip_lines() -> list[str]:
    pip_sections = [d["pip"] for d in ENV["dependencies"] if isinstance(d, dict) and "pip" in d]
    assert len(pip_sections) == 1, "environment.yml needs exactly one pip section"
    return [str(line).strip() for line in pip_sections[0]]


def _env_requirements() -> dict[str, SpecifierSet]:
    reqs: dict[str, SpecifierSet] = {}
    for line in _env_pip_lines():
        if line.startswith("-"):  # pip options: -e ., --extra-index-url ...
            continue
        req = Requirement(line)
        name = canonicalize_name(req.name)
        assert name not in reqs, f"{name} listed twice in environment.yml"
        reqs[name] = req.specifier
    return reqs


def _conda_packages() -> dict[str, str]:
    out = {}
    for dep in ENV["dependencies"]:
        if isinstance(dep, str):
            name, _, version = dep.partition("=")
            out[name.strip()] = version.strip("= ")
    return out


def test_pyproject_dependencies_are_in_environment_yml():
    env = _env_requirements()
    missing = sorted(set(_pyproject_requirements()) - set(env))
    assert not missing, f"in pyproject.toml but not in environment.yml: {missing}"


def test_environment_yml_has_nothing_extra():
    extra = sorted(set(_env_requirements()) - set(_pyproject_requirements()))
    assert not extra, f"in environment.yml but not in pyproject.toml: {extra}"


def test_version_specifiers_match():
    py, env = _pyproject_requirements(), _env_requirements()
    diff = {n: (str(py[n]), str(env[n])) for n in py.keys() & env.keys() if py[n] != env[n]}
    assert not diff, f"specifiers differ (pyproject, environment.yml): {diff}"


def test_makefile_pins_satisfy_the_declared_ranges():
    """The Makefile installs the exact versions the book was run with (the CPU torch first);
    each must lie in the range pyproject.toml declares, so that a user's own torch or diffusers
    in that range is kept."""
    makefile = (ROOT / "Makefile").read_text()
    m = re.search(r"^TORCH\s*:=\s*(\S+)\s*$", makefile, re.M)
    e = re.search(r"^EXACT\s*:=\s*(.+?)\s*$", makefile, re.M)
    assert m and e, "Makefile must define TORCH (installed first) and EXACT"
    py = _pyproject_requirements()
    pins = [Requirement(m.group(1))] + [Requirement(x) for x in e.group(1).split()]
    for pin in pins:
        (version,) = [sp.version for sp in pin.specifier if sp.operator == "=="]
        name = canonicalize_name(pin.name)
        assert name in py, f"{name} is pinned in the Makefile but not declared in pyproject.toml"
        assert py[name].contains(version), f"{pin} is outside pyproject's {name}{py[name]}"
        assert not any(sp.operator == "==" for sp in py[name]), f"pyproject pins {name} exactly"
    assert "install $(TORCH)" in makefile and "$(EXACT)" in makefile


def test_binder_installs_the_package_after_the_environment():
    """repo2docker builds environment.yml before the repository is copied, so the package
    itself is installed by postBuild (without dependencies: environment.yml lists them all)."""
    assert not [line for line in _env_pip_lines() if line.startswith("-e")], (
        "environment.yml cannot install the package (-e .): repo2docker has not copied it yet")
    post = (ROOT / "postBuild").read_text()
    assert re.search(r"pip install --no-deps -e \.\s", post), post
    assert "ipykernel install" in post and "--name pfode" in post


def test_python_version_matches_requires_python():
    conda = _conda_packages()
    assert conda.get("python"), "environment.yml must pin python"
    assert SpecifierSet(PROJECT["requires-python"]).contains(conda["python"] + ".0")
    assert "pip" in conda


def test_license_and_citation_files_match_the_project():
    """pyproject declares MIT: the LICENSE file must be the MIT text, and CITATION.cff (read by
    GitHub and Zenodo) must parse and carry the same license and version."""
    assert PROJECT["license"]["text"] == "MIT"
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License") and "Permission is hereby granted, free of charge" in text
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert cff["cff-version"] == "1.2.0" and cff["license"] == "MIT"
    assert cff["version"] == PROJECT["version"] and cff["title"] and cff["authors"]
