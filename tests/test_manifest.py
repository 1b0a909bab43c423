from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from helpers.datasets.manifest import (
    ManifestError,
    load_manifest,
    validate_manifest,
    write_manifest,
)


def _png(path: Path, size: tuple[int, int], mode: str = "RGB", value: int = 0) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, value if mode != "RGB" else (value, value, value)).save(path)
    return path.name


def _mask(path: Path, size: tuple[int, int], box: tuple[int, int, int, int] | None) -> None:
    pixels = np.zeros((size[1], size[0]), np.uint8)
    if box:
        x0, y0, x1, y1 = box
        pixels[y0:y1, x0:x1] = 255
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)


def _write_csv(folder: Path, rows: list[dict]) -> Path:
    path = folder / "manifest.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_real_fixtures_manifest_validates_as_it_is(fixtures_manifest: Path) -> None:
    frame = load_manifest(fixtures_manifest)
    report = validate_manifest(frame)
    assert report.rows == len(frame) > 50
    assert report.ok, report.summary()
    assert set(frame["label"]) == {0, 1}
    assert all(Path(p).is_file() for p in frame["image_path"])
    assert all(Path(p).is_file() for p in frame.loc[frame["mask"] != "", "mask_path"])
    assert (frame.loc[frame["label"] == 0, "mask_path"] == "").all()


def test_every_problem_names_its_line_image_and_problem(tmp_path: Path) -> None:
    for name in ("good", "wrong_size", "authentic_marked", "rgb_mask", "label_two", "no_mask"):
        _png(tmp_path / "images" / f"{name}.png", (40, 30))
    _mask(tmp_path / "masks" / "good.png", (40, 30), (5, 5, 15, 15))
    _mask(tmp_path / "masks" / "wrong_size.png", (30, 40), (5, 5, 15, 15))
    _mask(tmp_path / "masks" / "authentic_marked.png", (40, 30), (0, 0, 3, 3))
    _png(tmp_path / "masks" / "rgb_mask.png", (40, 30), "RGB", 255)
    rows = [
        {"image": "images/good.png", "mask": "masks/good.png", "label": 1},
        {"image": "images/wrong_size.png", "mask": "masks/wrong_size.png", "label": 1},
        {"image": "images/authentic_marked.png", "mask": "masks/authentic_marked.png", "label": 0},
        {"image": "images/rgb_mask.png", "mask": "masks/rgb_mask.png", "label": 1},
        {"image": "images/label_two.png", "mask": "", "label": 2},
        {"image": "images/missing.png", "mask": "", "label": 0},
        {"image": "images/good.png", "mask": "masks/good.png", "label": 1},
        {"image": "images/no_mask.png", "mask": "", "label": 1},
        {"image": "images/good.png", "mask": "masks/gone.png", "label": 1},
    ]
    manifest = _write_csv(tmp_path, rows)
    report = validate_manifest(manifest)
    lines = report.lines()
    expected = {
        3: "mask size 30x40 differs from image size 40x30",
        4: "authentic image (label 0) has a non-empty mask",
        5: "mask is not single-channel",
        6: "label 2 is not 0 (authentic) or 1 (tampered)",
        7: "image file not found",
        8: "image listed more than once",
        10: "mask file not found",
    }
    for line, message in expected.items():
        image = rows[line - 2]["image"]
        hits = [entry for entry in lines if f"line {line} ({image}): error: {message}" in entry]
        assert hits, f"no error '{message}' for line {line} in:\n" + "\n".join(lines)
    assert not any("line 2 " in entry for entry in lines), "the valid row was flagged"
    warnings = [p for p in report.warnings if p.row == 7]
    assert warnings and "without a mask" in warnings[0].message
    assert not report.ok
    with pytest.raises(ManifestError, match="invalid rows"):
        validate_manifest(manifest, strict=True)


def test_warnings_alone_keep_a_manifest_usable(tmp_path: Path) -> None:
    _png(tmp_path / "a.png", (8, 8))
    _png(tmp_path / "b.png", (8, 8))
    grey = np.full((8, 8), 128, np.uint8)
    Image.fromarray(grey).save(tmp_path / "soft.png")
    manifest = _write_csv(tmp_path, [
        {"image": "a.png", "mask": "", "label": 1},
        {"image": "b.png", "mask": "soft.png", "label": 1},
    ])
    report = validate_manifest(manifest)
    assert report.ok
    assert {p.row for p in report.warnings} == {0, 1}
    assert any("not binary" in p.message for p in report.warnings)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("image,label\na.png,0\n", "missing required column(s) mask"),
        ("image,mask,label\na.png,,yes\n", "line 2 (a.png): label 'yes' is not an integer"),
        ("image,mask,label\na.png,,0.5\n", "label '0.5' is not an integer"),
    ],
)
def test_unreadable_manifests_raise_naming_the_file(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "manifest.csv"
    path.write_text(content)
    with pytest.raises(ManifestError) as caught:
        load_manifest(path)
    assert str(path) in str(caught.value)
    assert message in str(caught.value)


def test_missing_manifest_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="manifest not found"):
        load_manifest(tmp_path / "nope.csv")


def test_write_then_load_elsewhere_keeps_paths_and_extra_columns(tmp_path: Path) -> None:
    source = tmp_path / "source"
    _png(source / "images" / "x.png", (10, 8))
    _mask(source / "masks" / "x.png", (10, 8), (1, 1, 4, 4))
    _png(source / "images" / "y.png", (10, 8))
    original = load_manifest(_write_csv(source, [
        {"image": "images/x.png", "mask": "masks/x.png", "label": 1, "group": "g1", "quality": 90},
        {"image": "images/y.png", "mask": "", "label": 0, "group": "g1", "quality": 75},
    ]))
    target = tmp_path / "elsewhere" / "deeper" / "manifest.csv"
    write_manifest(original, target)
    text = target.read_text()
    assert text.splitlines()[0] == "image,mask,label,group,quality"
    assert "../../source/images/x.png" in text
    reloaded = load_manifest(target)
    assert [Path(p).resolve() for p in reloaded["image_path"]] == [Path(p).resolve() for p in original["image_path"]]
    assert reloaded["mask_path"].iloc[1] == ""
    assert reloaded["quality"].tolist() == [90, 75]
    assert validate_manifest(reloaded).ok


def test_validate_cli_exit_codes(tmp_path: Path, fixtures_manifest: Path) -> None:
    run = lambda *args: subprocess.run([sys.executable, "-m", "helpers", "validate", *args],  # noqa: E731
                                       capture_output=True, text=True)
    good = run(str(fixtures_manifest))
    assert good.returncode == 0, good.stderr
    assert "0 errors" in good.stdout
    bad_manifest = _write_csv(tmp_path, [{"image": "missing.png", "mask": "", "label": 0}])
    bad = run(str(bad_manifest))
    assert bad.returncode == 1
    assert "line 2 (missing.png): error: image file not found" in bad.stdout
    absent = run(str(tmp_path / "absent.csv"))
    assert absent.returncode == 2
    assert "manifest not found" in absent.stderr
