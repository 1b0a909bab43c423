"""Packaging: pyproject.toml and environment.yml agree; the README's commands are what CI runs."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

REPO = Path(__file__).resolve().parent.parent


def _pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def _key(requirement: Requirement) -> tuple[str, str, str]:
    return canonicalize_name(requirement.name), str(requirement.specifier), str(requirement.marker or "")


def test_environment_yml_names_the_same_packages_as_pyproject() -> None:
    project = _pyproject()["project"]
    declared = {_key(Requirement(r)) for r in project["dependencies"] + project["optional-dependencies"]["dev"]}
    environment = yaml.safe_load((REPO / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in environment["dependencies"] if isinstance(d, dict) and "pip" in d)
    editable = [line for line in pip_section if line.startswith("-e")]
    conda = {_key(Requirement(line)) for line in pip_section if not line.startswith("-")}
    assert editable == ["-e ."], "environment.yml must install the workbook itself"
    assert conda == declared, (
        f"only in pyproject.toml: {sorted(declared - conda)}; only in environment.yml: {sorted(conda - declared)}"
    )
    python = next(d for d in environment["dependencies"] if isinstance(d, str) and d.startswith("python"))
    assert re.fullmatch(r"python=3\.1[0-2]", python)


def test_required_stack_is_declared() -> None:
    names = {canonicalize_name(Requirement(r).name) for r in _pyproject()["project"]["dependencies"]}
    assert {
        "tensorflow", "keras", "segmentation-models", "albumentations", "pandas", "seaborn", "scikit-image",
        "scikit-learn", "opencv-python-headless", "pillow", "tqdm", "papermill", "jupyterlab", "ipykernel",
    } <= names


def test_ci_runs_the_readme_test_command_and_nothing_else() -> None:
    readme = (REPO / "README.md").read_text()
    quick_start = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"```(?:bash|sh)?\n(.*?)```", quick_start, flags=re.S)
    lines = [line.split("#")[0].strip() for block in commands for line in block.splitlines()]
    lines = [line for line in lines if line]
    assert lines == ["make workbook", "make test"], f"the quick start must be exactly two commands, got {lines}"
    ci = [line.strip() for line in (REPO / ".ci" / "run").read_text().splitlines()]
    steps = [line for line in ci if line and not line.startswith("#") and not line.startswith(("set ", "cd "))]
    assert steps == ["make test"], steps


def test_make_test_treats_no_collected_tests_as_failure() -> None:
    makefile = (REPO / "Makefile").read_text()
    recipe = makefile.split("\ntest:", 1)[1].split("\n\n", 1)[0]
    assert "-eq 5" in recipe and "exit 1" in recipe


def test_test_tiers_are_registered_made_and_documented() -> None:
    markers = [line.split(":")[0] for line in _pyproject()["tool"]["pytest"]["ini_options"]["markers"]]
    assert {"workbook", "gpu", "slow"} <= set(markers)
    makefile = (REPO / "Makefile").read_text()
    fast = makefile.split("\ntest-fast:", 1)[1].split("\n\n", 1)[0]
    assert '-m "not workbook and not slow"' in fast and "-eq 5" in fast
    full = makefile.split("\ntest:", 1)[1].split("\n\n", 1)[0]
    # make test (CI) runs every tier, slow tests included: the unit tier in parallel, then the rest on one process.
    assert '-m "not workbook and not slow" -n 2 $(PYTEST_ARGS);' in full
    assert '-m "workbook or slow" $(PYTEST_ARGS);' in full
    gpu = makefile.split("\ntest-gpu:", 1)[1].split("\n\n", 1)[0]
    assert "-m gpu" in gpu
    development = (REPO / "README.md").read_text().split("## Development", 1)[1]
    assert all(command in development for command in ("make test-fast", "make test`", "make test-gpu"))
