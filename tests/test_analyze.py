"""analyze(): one image to a verdict, a map and the evidence; with saved models, without them, on bad files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from helpers.analyze import analyze, classifier_image_score, find_models, save_analysis
from helpers.imageio import ImageLoadError

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def saved_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny classifier and mask model saved the way notebooks 05 and 06 save them (untrained: shapes matter)."""
    from helpers.inference import save_mask_model
    from helpers.models.classifier import compact_ela_cnn, save_classifier
    from helpers.models.segmentation import unet_scratch

    folder = tmp_path_factory.mktemp("run") / "models"
    classifier = compact_ela_cnn(64, filters=4, dense=8)
    save_classifier(classifier, folder, {"input_size": 64, "mode": "crop", "threshold": 0.5, "model": "tiny"})
    mask_model = unet_scratch(("rgb", "ela"), base_filters=4, depth=2)
    save_mask_model(mask_model, folder, {"tile": 64, "overlap": 0.25, "threshold": 0.5, "model": "tiny_unet"})
    return folder


@pytest.fixture()
def photo(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    pixels = np.clip(rng.normal(120, 30, (200, 300, 3)), 0, 255).astype(np.uint8)
    path = tmp_path / "photo.png"
    Image.fromarray(pixels).save(path)
    return path


def test_without_models_reports_traces_and_metadata(photo: Path) -> None:
    result = analyze(photo, search_runs=False)
    assert (result.width, result.height, result.format) == (300, 200, "PNG")
    assert result.jpeg_quality is None and "no_exif" in result.flags
    assert result.classifier_score is None and result.verdict == "no classifier"
    assert any("no JPEG tables" in note for note in result.notes)
    assert any("no mask model" in note for note in result.notes)
    assert {"ela", "srm", "noise"} <= set(result.maps) and result.maps["ela"].shape == (200, 300)
    json.dumps(result.report())  # the report is plain JSON


def test_with_models_scores_and_maps_any_size(photo: Path, saved_models: Path) -> None:
    result = analyze(photo, classifier=saved_models, mask_model=saved_models)
    assert 0.0 <= result.classifier_score <= 1.0 and result.verdict in {"tampered", "authentic"}
    assert result.maps["mask"].shape == (200, 300) and result.maps["mask"].dtype == np.float32
    assert 0.0 <= result.tampered_fraction <= 1.0 and 0.0 <= result.max_probability <= 1.0
    assert result.maps["classifier_tiles"].shape == (4, 5)  # ceil(200/64) x ceil(300/64) tiles
    json_path, png_path = save_analysis(result, photo.parent / "out")
    report = json.loads(json_path.read_text())
    assert report["classifier_score"] == pytest.approx(result.classifier_score)
    assert png_path.stat().st_size > 10_000 and Image.open(png_path).format == "PNG"


def test_classifier_score_is_the_maximum_over_tiles(saved_models: Path) -> None:
    from helpers.models.classifier import load_classifier

    model, info = load_classifier(saved_models)
    rgb = np.random.default_rng(1).integers(0, 256, (130, 70, 3), dtype=np.uint8)
    score, tiles = classifier_image_score(model, info, rgb)
    assert tiles.shape == (3, 2) and score == pytest.approx(tiles.max())


def test_unreadable_file_is_one_clear_error(tmp_path: Path) -> None:
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 truncated")
    with pytest.raises(ImageLoadError) as caught:
        analyze(broken, search_runs=False)
    assert str(broken) in str(caught.value)


def test_command_line(photo: Path, saved_models: Path, tmp_path: Path) -> None:
    out = tmp_path / "reports"
    ok = subprocess.run([sys.executable, "-m", "helpers", "analyze", str(photo), "--out", str(out),
                         "--classifier", str(saved_models), "--mask-model", str(saved_models)],
                        capture_output=True, text=True, cwd=REPO)
    assert ok.returncode == 0, ok.stderr
    assert (out / "photo_analysis.json").is_file() and (out / "photo_analysis.png").is_file()
    text = tmp_path / "notes.txt"
    text.write_text("not an image")
    bad = subprocess.run([sys.executable, "-m", "helpers", "analyze", str(text), "--no-search"],
                         capture_output=True, text=True, cwd=REPO)
    assert bad.returncode == 1 and bad.stderr.startswith("error: ") and str(text) in bad.stderr


def test_find_models_picks_the_newest(saved_models: Path, tmp_path: Path) -> None:
    assert find_models(saved_models.parent) == (saved_models, saved_models)
    assert find_models(tmp_path / "nothing") == (None, None)
