"""A registered dataset from an archive in data/raw to a validated manifest: by one command and by notebook 01."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from helpers.datasets.manifest import load_manifest, validate_manifest
from helpers.datasets.registry import get_dataset
from helpers.workbook import run_workbook
from test_registry import _zip, build_casia2

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture()
def data_root_with_casia2(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    archive = root / "raw" / get_dataset("casia2").archives[0]
    archive.parent.mkdir(parents=True)
    _zip(build_casia2(tmp_path / "replica"), archive, top="CASIA2")
    return root


def test_one_command_yields_a_validated_manifest(data_root_with_casia2: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "helpers", "download", "casia2", "--data-root", str(data_root_with_casia2),
         "--no-download"],
        capture_output=True, text=True, cwd=REPO,
    )
    assert result.returncode == 0, result.stderr
    manifest = data_root_with_casia2 / "casia2" / "manifest.csv"
    assert str(manifest) in result.stdout
    frame = load_manifest(manifest)
    assert validate_manifest(frame).ok
    assert set(frame["label"]) == {0, 1} and frame["group"].ne("").all()


def test_missing_archive_command_fails_with_instructions(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "helpers", "download", "casia2", "--data-root", str(tmp_path), "--no-download"],
        capture_output=True, text=True, cwd=REPO,
    )
    assert result.returncode == 1
    assert result.stderr.startswith("error: ")
    assert get_dataset("casia2").archives[0] in result.stderr


@pytest.mark.workbook
def test_datasets_notebook_indexes_a_real_dataset(data_root_with_casia2: Path, tmp_path: Path) -> None:
    result = run_workbook(profile="smoke", only=["01"], out_dir=tmp_path / "run", data_root=data_root_with_casia2,
                          extra_parameters={"real_dataset": "casia2", "allow_download": False}, progress=False)
    assert result.ok, result.notebooks[0].error
    metrics = json.loads((tmp_path / "run" / "metrics" / "01_datasets.json").read_text())
    assert metrics["real_dataset"]["dataset"] == "casia2"
    assert metrics["real_dataset"]["rows"] == len(load_manifest(data_root_with_casia2 / "casia2" / "manifest.csv"))
    assert metrics["real_dataset"]["errors"] == 0
