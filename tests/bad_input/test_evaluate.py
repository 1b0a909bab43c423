"""``python -m helpers evaluate`` given bad input on purpose: it refuses before scoring, keeps its work, says why.

Each test is named after its case. The command runs in-process (``helpers.__main__.main``) so tiny detectors
registered here are the ones it evaluates.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from helpers.__main__ import main
from helpers.datasets.manifest import validate_manifest
from helpers.detectors import Detector, Prediction
from helpers.evaluation.cli import rows_path_for
from helpers.imageio import load_mask

CALLS: list[str] = []


class Truth(Detector):
    """Returns the true mask read beside the image, and records every image it sees."""

    def predict(self, image):
        CALLS.append(Path(image.path).name)
        mask_file = Path(image.path).parent.parent / "masks" / Path(image.path).name
        truth = load_mask(mask_file) if mask_file.is_file() else np.zeros(image.shape, bool)
        return Prediction(heatmap=truth.astype(np.float32), mask=truth, score=float(truth.any()))


class StopsOnTheThird(Truth):
    """Ctrl-C on the third image."""

    def predict(self, image):
        if len(CALLS) == 2:
            CALLS.append("interrupted")
            raise KeyboardInterrupt
        return super().predict(image)


@pytest.fixture(autouse=True)
def tiny_detectors(clean_registry):
    CALLS.clear()
    clean_registry.register_detector("truth")(Truth)
    return clean_registry


def run(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str, str]:
    code = main(["evaluate", "--quiet", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def one_line_error(err: str) -> str:
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def strict_json(path: Path) -> dict:
    def refuse(token: str) -> float:
        raise ValueError(f"{path} holds {token}")

    return json.loads(path.read_text(), parse_constant=refuse)


# -------------------------------------------------------------------------------------------------------------
# Arguments and --out, checked before anything is scored
# -------------------------------------------------------------------------------------------------------------
def test_out_is_a_directory(capsys, make_forgery_set, tmp_path: Path) -> None:
    code, _, err = run(capsys, "--manifest", str(make_forgery_set()), "--detectors", "truth", "--out", str(tmp_path))
    assert code == 2 and "is a folder" in one_line_error(err)
    assert CALLS == []


def test_out_cannot_be_written(capsys, make_forgery_set, tmp_path: Path) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    code, _, err = run(capsys, "--manifest", str(make_forgery_set()), "--detectors", "truth",
                       "--out", str(blocker / "report.json"))
    assert code == 2 and "cannot write" in one_line_error(err)
    assert CALLS == []


@pytest.mark.parametrize("threshold", ["1.5", "-0.1", "nan", "inf"])
def test_threshold_outside_zero_to_one_or_nan(capsys, make_forgery_set, tmp_path: Path, threshold: str) -> None:
    code, _, err = run(capsys, "--manifest", str(make_forgery_set()), "--detectors", "truth",
                       f"--threshold={threshold}", "--out", str(tmp_path / "r.json"))
    assert code == 2 and "--threshold must be a number in [0, 1]" in one_line_error(err)
    assert CALLS == [] and not (tmp_path / "r.json").exists()


def test_model_is_not_a_saved_model(capsys, make_forgery_set, tmp_path: Path) -> None:
    not_a_model = tmp_path / "empty_folder"
    not_a_model.mkdir()
    code, _, err = run(capsys, "--manifest", str(make_forgery_set()), "--model", str(not_a_model),
                       "--out", str(tmp_path / "r.json"))
    line = one_line_error(err)
    assert code == 2 and "expected a folder holding NAME.keras and NAME.json, or a .keras file" in line
    assert CALLS == []


def test_learned_detector_without_model(capsys, make_forgery_set, tmp_path: Path) -> None:
    code, _, err = run(capsys, "--manifest", str(make_forgery_set()), "--detectors", "truth,mask_model",
                       "--out", str(tmp_path / "r.json"))
    assert code == 2 and "needs --model" in one_line_error(err)
    assert CALLS == []


def test_unknown_detector(capsys, make_forgery_set, tmp_path: Path) -> None:
    code, _, err = run(capsys, "--manifest", str(make_forgery_set()), "--detectors", "truth,nope",
                       "--out", str(tmp_path / "r.json"))
    assert code == 2 and "unknown detector 'nope'" in one_line_error(err)


def test_header_only_manifest(capsys, tmp_path: Path) -> None:
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("image,mask,label\n")
    code, _, err = run(capsys, "--manifest", str(manifest), "--detectors", "truth", "--out", str(tmp_path / "r.json"))
    assert code == 2 and "no rows to evaluate" in one_line_error(err)


def test_label_not_zero_or_one(capsys, make_forgery_set, tmp_path: Path) -> None:
    manifest = make_forgery_set(tampered=1, authentic=1, extra=[{"image": "images/img00.png", "mask": "",
                                                                 "label": 2, "dataset": "x"}])
    code, _, err = run(capsys, "--manifest", str(manifest), "--detectors", "truth", "--out", str(tmp_path / "r.json"))
    line = one_line_error(err)
    assert code == 2 and "line 4" in line and "label 2 is not 0 (authentic) or 1 (tampered)" in line
    assert CALLS == []


def test_rows_of_an_earlier_run_without_resume(capsys, make_forgery_set, tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    manifest = str(make_forgery_set())
    assert run(capsys, "--manifest", manifest, "--detectors", "truth", "--out", str(out))[0] == 0
    before = rows_path_for(out).read_text()
    code, _, err = run(capsys, "--manifest", manifest, "--detectors", "truth", "--out", str(out))
    assert code == 2 and "--resume" in one_line_error(err)
    assert rows_path_for(out).read_text() == before, "an earlier run's rows are never overwritten"


def test_resume_with_another_threshold(capsys, make_forgery_set, tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    manifest = str(make_forgery_set())
    assert run(capsys, "--manifest", manifest, "--detectors", "truth", "--out", str(out))[0] == 0
    code, _, err = run(capsys, "--manifest", manifest, "--detectors", "truth", "--out", str(out), "--resume",
                       "--threshold", "0.3")
    assert code == 2 and "other settings" in one_line_error(err)


# -------------------------------------------------------------------------------------------------------------
# Keeping the work
# -------------------------------------------------------------------------------------------------------------
def test_ctrl_c_leaves_a_valid_partial_report(capsys, tiny_detectors, make_forgery_set, tmp_path: Path) -> None:
    tiny_detectors._REGISTRY["truth"] = StopsOnTheThird
    out = tmp_path / "r.json"
    code, _, err = run(capsys, "--manifest", str(make_forgery_set()), "--detectors", "truth", "--out", str(out))
    assert code == 130 and "--resume" in err
    report = strict_json(out)
    assert report["status"] == "interrupted" and report["scored_rows"] == 2
    assert len(pd.read_csv(rows_path_for(out))) == 2


def test_resume_continues_where_it_stopped(capsys, tiny_detectors, make_forgery_set, tmp_path: Path) -> None:
    tiny_detectors._REGISTRY["truth"] = StopsOnTheThird
    out = tmp_path / "r.json"
    manifest = str(make_forgery_set(tampered=3, authentic=3))
    assert run(capsys, "--manifest", manifest, "--detectors", "truth", "--out", str(out))[0] == 130
    tiny_detectors._REGISTRY["truth"] = Truth
    CALLS.clear()
    code, stdout, _ = run(capsys, "--manifest", manifest, "--detectors", "truth", "--out", str(out), "--resume")
    assert code == 0 and CALLS == ["img02.png", "img03.png", "img04.png", "img05.png"]
    report = strict_json(out)
    assert report["status"] == "complete" and report["scored_rows"] == 6
    whole = next(row for row in report["summary"] if row["dataset"] == "(all)")
    assert whole["pixel_f1"] == 1.0 and whole["image_auc"] == 1.0
    assert len(pd.read_csv(rows_path_for(out))) == 6


def test_report_holds_no_nan_and_prints_one_table_with_the_floor(capsys, make_forgery_set, tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    code, stdout, _ = run(capsys, "--manifest", str(make_forgery_set()), "--detectors", "truth", "--out", str(out))
    assert code == 0
    report = strict_json(out)  # per-dataset image AUC is undefined here: null, not NaN
    pristine = next(row for row in report["summary"] if row["dataset"] == "pristine")
    assert pristine["image_auc"] is None and pristine["pixel_f1"] is None
    header = stdout.splitlines()[0].split()
    assert header[:3] == ["detector", "dataset", "images"] and "floor" in header and "F1@0.5" in header
    assert sum(line.split()[0] == "truth" for line in stdout.splitlines()) == 3  # (all), forged, pristine


# -------------------------------------------------------------------------------------------------------------
# Bad rows: skipped with the loader's reason, the same reason `validate` gives
# -------------------------------------------------------------------------------------------------------------
def _bad_row_manifest(make_forgery_set, tmp_path: Path, case: str) -> tuple[Path, str]:
    root = tmp_path / "set"
    manifest = make_forgery_set(tampered=1, authentic=1)
    images = root / "images"
    rng = np.random.default_rng(7)
    row = {"label": 1, "dataset": "forged", "kind": "splice"}
    if case == "truncated image":
        path = images / "cut.jpg"
        Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(path, quality=90)
        data = path.read_bytes()
        path.write_bytes(data[: len(data) * 2 // 3])  # the header is whole, the pixel data is not
        row.update(image="images/cut.jpg", mask="", label=0, dataset="pristine", kind="authentic")
    elif case == "one-pixel image":
        Image.new("RGB", (1, 1)).save(images / "dot.png")
        row.update(image="images/dot.png", mask="", label=0, dataset="pristine", kind="authentic")
    elif case == "mask of another size":
        Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(images / "sized.png")
        Image.fromarray(np.full((30, 30), 255, np.uint8)).save(root / "masks" / "sized.png")
        row.update(image="images/sized.png", mask="masks/sized.png")
    elif case in ("exif-rotated pair, mask upright", "exif-rotated pair, mask stored sideways"):
        exif = Image.Exif()
        exif[0x0112] = 6  # rotate 90 degrees to view: stored 48 wide, upright 40 wide and 48 high
        Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(images / "turned.jpg", exif=exif)
        upright = "upright" in case
        mask = np.zeros((48, 40) if upright else (40, 48), np.uint8)
        mask[5:20, 5:20] = 255
        Image.fromarray(mask).save(root / "masks" / "turned.png")
        row.update(image="images/turned.jpg", mask="masks/turned.png")
    elif case == "rgb mask":
        Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(images / "coloured.png")
        Image.new("RGB", (48, 40), (255, 255, 255)).save(root / "masks" / "coloured.png")
        row.update(image="images/coloured.png", mask="masks/coloured.png")
    frame = pd.read_csv(manifest, keep_default_na=False)
    pd.concat([frame, pd.DataFrame([row])], ignore_index=True).to_csv(manifest, index=False)
    return manifest, row["image"]


@pytest.mark.parametrize("case,reason", [
    ("truncated image", "image file unreadable"),
    ("one-pixel image", "image is 1x1 pixels, smaller than 8x8"),
    ("mask of another size", "mask size 30x30 differs from image size 48x40"),
    ("exif-rotated pair, mask stored sideways", "mask size 48x40 differs from image size 40x48"),
    ("rgb mask", "mask is not single-channel (mode RGB)"),
])
def test_bad_row_is_skipped_with_the_reason_validate_gives(capsys, make_forgery_set, tmp_path: Path, case: str,
                                                           reason: str) -> None:
    manifest, image = _bad_row_manifest(make_forgery_set, tmp_path, case)
    errors = [p.message for p in validate_manifest(manifest).errors]
    assert len(errors) == 1 and reason in errors[0], errors
    out = tmp_path / "r.json"
    code, _, err = run(capsys, "--manifest", str(manifest), "--detectors", "truth", "--out", str(out))
    assert code == 0
    assert f"skipped line 4 ({image}): {errors[0]}" in err, err  # on the terminal, with validate's words
    report = strict_json(out)
    assert report["skipped"] == [{"image": image, "reason": errors[0]}]
    assert report["scored_rows"] == 2 and Path(image).name not in CALLS


def test_exif_rotated_pair_with_an_upright_mask_is_fine(capsys, make_forgery_set, tmp_path: Path) -> None:
    manifest, image = _bad_row_manifest(make_forgery_set, tmp_path, "exif-rotated pair, mask upright")
    assert validate_manifest(manifest).ok
    out = tmp_path / "r.json"
    assert run(capsys, "--manifest", str(manifest), "--detectors", "truth", "--out", str(out))[0] == 0
    report = strict_json(out)
    assert report["skipped"] == [] and report["scored_rows"] == 3 and "turned.jpg" in CALLS


def test_duplicate_rows_are_warned_about_once_and_scored_once(capsys, make_forgery_set, tmp_path: Path) -> None:
    twice = [{"image": "images/img00.png", "mask": "masks/img00.png", "label": 1, "dataset": "forged"}] * 2
    manifest = make_forgery_set(tampered=2, authentic=1, extra=twice)
    code, _, err = run(capsys, "--manifest", str(manifest), "--detectors", "truth", "--out", str(tmp_path / "r.json"))
    assert code == 0 and sorted(CALLS) == ["img00.png", "img01.png", "img02.png"]
    warnings = [line for line in err.splitlines() if "duplicate" in line]
    assert len(warnings) == 1 and "2 duplicate row(s)" in warnings[0] and "line 5" in warnings[0]


def test_paths_leaving_the_manifest_folder_are_warned_about_once(capsys, make_forgery_set, tmp_path: Path) -> None:
    make_forgery_set(tampered=2, authentic=1)
    inner = tmp_path / "set" / "lists"
    inner.mkdir()
    pd.DataFrame([{"image": f"../images/img0{i}.png", "mask": f"../masks/img0{i}.png" if i < 2 else "",
                   "label": int(i < 2)} for i in range(3)]).to_csv(inner / "manifest.csv", index=False)
    code, _, err = run(capsys, "--manifest", str(inner / "manifest.csv"), "--detectors", "truth",
                       "--out", str(tmp_path / "r.json"))
    assert code == 0 and len(CALLS) == 3
    warnings = [line for line in err.splitlines() if "leave the manifest's folder" in line]
    assert len(warnings) == 1 and warnings[0].startswith("warning: 5 path(s)")
    assert math.isfinite(strict_json(tmp_path / "r.json")["summary"][0]["pixel_f1"])


def test_a_second_evaluate_into_the_same_folder_is_refused(tmp_path, make_forgery_set):
    """Concurrent writers: while one run holds the report folder, another is refused naming its PID."""
    import os
    import subprocess
    import sys

    from helpers.locks import folder_lock

    manifest = make_forgery_set()
    out = tmp_path / "reports" / "report.json"
    with folder_lock(out.parent):
        done = subprocess.run([sys.executable, "-m", "helpers", "evaluate", "--manifest", str(manifest),
                               "--detectors", "ela", "--out", str(out)], capture_output=True, text=True)
    assert done.returncode == 1
    assert "being written by another process" in done.stderr and str(os.getpid()) in done.stderr
    assert not out.exists()
