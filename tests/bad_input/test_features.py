"""``python -m helpers features`` with bad arguments and a busy cache folder."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from bad_input.conftest import error_lines, lock_held_elsewhere, run_cli
from helpers.forensics.cache import compute_features


def _features(manifest: Path, out: Path, *extra: object) -> list[object]:
    return ["features", "--manifest", manifest, "--kinds", "ela", "--out", out, "--no-progress", *extra]


@pytest.mark.parametrize("quality", ["300", "0", "-5", "101", "high", "90.5"])
def test_an_ela_quality_outside_1_to_100_is_refused_by_the_parser(
    tiny_manifest: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], quality: str
) -> None:
    out = tmp_path / "cache"
    code, stdout, err = run_cli(_features(tiny_manifest, out, "--workers", "1", "--quality", quality), capsys)

    assert code == 2
    assert error_lines(err) == [
        f"python -m helpers features: error: argument --quality: expected a JPEG quality, a whole number from 1 "
        f"to 100, got {quality!r}"
    ]
    assert not out.exists(), "refused before any work"


@pytest.mark.parametrize("workers", ["0", "-1"])
def test_fewer_than_one_worker_is_refused_by_the_parser(
    tiny_manifest: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], workers: str
) -> None:
    code, stdout, err = run_cli(_features(tiny_manifest, tmp_path / "cache", "--workers", workers), capsys)
    assert code == 2
    assert len(error_lines(err)) == 1 and "argument --workers: expected a whole number >= 1" in err


def test_a_second_writer_into_the_same_cache_is_refused_naming_the_owner_pid(
    tiny_manifest: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "cache"
    with lock_held_elsewhere(out) as pid:
        code, stdout, err = run_cli(_features(tiny_manifest, out, "--workers", "1"), capsys)
    assert code == 1
    assert error_lines(err) == err.strip().splitlines() and len(error_lines(err)) == 1
    assert str(out) in err and f"PID {pid}" in err
    assert list(out.rglob("*.npy")) == [] and list(out.iterdir()) == []

    assert run_cli(_features(tiny_manifest, out, "--workers", "1"), capsys)[0] == 0, "free again once the owner is done"


@pytest.mark.parametrize("value", [math.nan, math.inf])
def test_non_finite_feature_parameters_are_refused_before_anything_is_written(
    tiny_manifest: Path, tmp_path: Path, value: float
) -> None:
    out = tmp_path / "cache"
    with pytest.raises(ValueError, match="parameters of 'srm' must be finite JSON values"):
        compute_features(tiny_manifest, ["srm"], out, workers=1, params={"srm": {"truncate": value}}, progress=False)
    assert not out.exists()
