"""Arguments are checked at the parser: one line naming the argument and what was expected, exit status 2,
before any work starts. The argparse types live in :mod:`helpers.cli_args` for every command to use."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from bad_input.conftest import error_lines, run_cli


def _refused(capsys: pytest.CaptureFixture[str], argv: list[object], argument: str, expected: str) -> None:
    code, out, err = run_cli(argv, capsys)
    assert code == 2, err
    lines = error_lines(err)
    assert len(lines) == 1 and f"argument {argument}: " in lines[0] and expected in lines[0], err


@pytest.mark.parametrize("n", ["0", "-5", "many", "2.5"])
def test_synth_with_fewer_than_one_sample_is_refused_by_the_parser(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], n: str
) -> None:
    _refused(capsys, ["synth", "--out", tmp_path / "s", "--n", n], "--n", f"expected a whole number >= 1, got {n!r}")
    assert not (tmp_path / "s").exists()


def test_synth_with_a_negative_seed_or_no_workers_is_refused_by_the_parser(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _refused(capsys, ["synth", "--out", tmp_path, "--n", "4", "--seed", "-1"], "--seed", "whole number >= 0")
    _refused(capsys, ["synth", "--out", tmp_path, "--n", "4", "--workers", "0"], "--workers", "whole number >= 1")


@pytest.mark.parametrize(
    "option, value, expected",
    [
        ("--retries", "-1", "whole number >= 0"),
        ("--timeout", "0", "number > 0"),
        ("--timeout", "nan", "not a finite number"),
        ("--max-unpacked-gb", "0", "number > 0"),
        ("--max-unpacked-gb", "inf", "not a finite number"),
    ],
)
def test_download_limits_that_cannot_work_are_refused_by_the_parser(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], option: str, value: str, expected: str
) -> None:
    argv = ["download", "--url", "http://127.0.0.1:9/x.zip", "--dest", tmp_path / "d", option, value]
    _refused(capsys, argv, option, expected)
    assert not (tmp_path / "d").exists()


def _parse(kind: str, value: str) -> object:
    """Parse ``--x=value`` with the type ``helpers.cli_args.<kind>``; a refusal raises ``ArgumentError``."""
    import helpers.cli_args

    parser = argparse.ArgumentParser(prog="p", exit_on_error=False)
    parser.add_argument("--x", type=getattr(helpers.cli_args, kind))
    return parser.parse_args([f"--x={value}"]).x


@pytest.mark.parametrize("value, ok", [("0", True), ("1", True), ("0.35", True), ("1.0", True), ("-0.1", False),
                                       ("1.01", False), ("nan", False), ("inf", False), ("-inf", False),
                                       ("half", False)])
def test_a_threshold_is_a_finite_number_between_0_and_1(value: str, ok: bool) -> None:
    if ok:
        assert _parse("unit_float", value) == float(value)
        return
    with pytest.raises(argparse.ArgumentError, match="expected a number between 0 and 1"):
        _parse("unit_float", value)


@pytest.mark.parametrize("value, ok", [("1", True), ("100", True), ("75", True), ("0", False), ("101", False),
                                       ("300", False), ("90.5", False), ("", False)])
def test_a_jpeg_quality_is_a_whole_number_from_1_to_100(value: str, ok: bool) -> None:
    if ok:
        assert _parse("jpeg_quality", value) == int(value)
        return
    with pytest.raises(argparse.ArgumentError, match="whole number from 1 to 100"):
        _parse("jpeg_quality", value)


def test_counts_are_at_least_one_and_retries_at_least_zero() -> None:
    assert _parse("positive_int", "3") == 3 and _parse("non_negative_int", "0") == 0
    assert _parse("positive_float", "0.5") == 0.5
    for kind, value in (("positive_int", "0"), ("positive_int", "-2"), ("non_negative_int", "-1"),
                        ("positive_float", "-1"), ("positive_float", "0")):
        with pytest.raises(argparse.ArgumentError, match="expected a"):
            _parse(kind, value)


def test_a_model_is_a_saved_model_folder_or_a_keras_file(tmp_path: Path) -> None:
    expected = "expected a saved model folder (holding a .keras file) or a .keras file"
    folder = tmp_path / "mask_model"
    folder.mkdir()
    (folder / "mask_model.json").write_text("{}")
    weights = tmp_path / "old.h5"
    weights.write_bytes(b"h5")
    cases = {
        tmp_path / "missing": "does not exist",
        folder: "is a folder without a .keras file",
        weights: "is a .h5 file",
    }
    for path, problem in cases.items():
        with pytest.raises(argparse.ArgumentError) as info:
            _parse("model_path", str(path))
        assert f"{path} {problem}; {expected}" in str(info.value)

    (folder / "mask_model.keras").write_bytes(b"zip")
    assert _parse("model_path", str(folder)) == folder
    assert _parse("model_path", str(folder / "mask_model.keras")) == folder / "mask_model.keras"
