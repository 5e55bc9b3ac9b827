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


def test_torch_is_pinned_to_the_cpu_build_everywhere():
    assert str(_pyproject_requirements()["torch"]) == "==2.13.0"
    assert str(_env_requirements()["torch"]) == "==2.13.0"
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^TORCH\s*:=\s*torch==2\.13\.0\s*$", makefile, re.M), (
        "Makefile must install torch==2.13.0 before the package"
    )


def test_environment_installs_the_package_with_all_extras():
    editable = [line for line in _env_pip_lines() if line.startswith("-e")]
    assert len(editable) == 1, "environment.yml must install the package itself (-e .[...])"
    target = editable[0][2:].strip()
    assert target.startswith("."), target
    extras = set(re.findall(r"[\w-]+", target[target.find("[") :])) if "[" in target else set()
    # Close the extras over self-references such as "pfode[notebooks]".
    optional = PROJECT.get("optional-dependencies", {})
    todo = list(extras)
    while todo:
        for line in optional.get(todo.pop(), []):
            req = Requirement(line)
            if canonicalize_name(req.name) == PKG:
                new = set(req.extras) - extras
                extras |= new
                todo += new
    assert extras >= set(optional), f"extras not installed: {sorted(set(optional) - extras)}"


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
