"""analyze(): one image through every detector, saved models included, as JSON and a one-page figure."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import keras
import numpy as np
import pytest
from PIL import Image

from helpers import analyze as analyze_module
from helpers.analyze import analysis_figure, analyze, save_analysis
from helpers.detectors import Detector, MaskModelDetector, Prediction
from helpers.imageio import ImageLoadError
from helpers.models.artifact import save_model_artifact
from helpers.shipped import shipped_model_path

REPO = Path(__file__).resolve().parent.parent


class Halves(Detector):
    """Flags the right half of any image, with score 0.25."""

    description = "right half"

    def predict(self, image):
        heatmap = np.zeros(image.shape, np.float32)
        heatmap[:, image.shape[1] // 2 :] = 0.9
        return Prediction.from_heatmap(heatmap, score=0.25)


class Silent(Detector):
    """Flags nothing, no score."""

    def predict(self, image):
        return Prediction.from_heatmap(np.zeros(image.shape, np.float32))


@pytest.fixture()
def training_free(clean_registry):
    """A registry whose training-free detectors are exactly two tiny ones (the learned ones stay)."""
    learned = {name: cls for name, cls in clean_registry._REGISTRY.items() if getattr(cls, "trained", False)}
    clean_registry._REGISTRY.clear()
    clean_registry._REGISTRY.update(learned)
    clean_registry.register_detector("halves")(Halves)
    clean_registry.register_detector("silent")(Silent)
    return clean_registry


@pytest.fixture(scope="module")
def saved_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny classifier and mask model saved as notebooks 05 and 06 save them (untrained: shapes matter)."""
    folder = tmp_path_factory.mktemp("run") / "models"
    ela = keras.Input((32, 32, 3), name="ela")
    pooled = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(2, 3)(ela))
    classifier = keras.Model({"ela": ela}, keras.layers.Dense(1, activation="sigmoid")(pooled))
    save_model_artifact(classifier, folder, "classifier", {"threshold": 0.5, "architecture": "tiny"})
    rgb = keras.Input((None, None, 3), name="rgb")
    mask_model = keras.Model({"rgb": rgb}, keras.layers.Conv2D(1, 3, padding="same", activation="sigmoid")(rgb))
    save_model_artifact(mask_model, folder, "mask_model", {"tile": 64, "threshold": 0.5})
    return folder


@pytest.fixture()
def photo(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    pixels = np.clip(rng.normal(120, 30, (100, 150, 3)), 0, 255).astype(np.uint8)
    path = tmp_path / "photo.png"
    Image.fromarray(pixels).save(path)
    return path


def test_every_training_free_detector_runs_through_the_contract(training_free, photo: Path) -> None:
    result = analyze(photo, search_runs=False)
    # no saved model anywhere: the mask model that ships with the package joins the training-free detectors
    assert set(result.detectors) == {"halves", "silent", "mask_model"}
    assert result.models["mask_model"] == str(shipped_model_path())
    assert result.detectors["halves"]["score"] == 0.25 and result.detectors["halves"]["mask_fraction"] == 0.5
    assert result.detectors["silent"]["score"] is None and result.detectors["silent"]["mask_fraction"] == 0.0
    assert (result.width, result.height, result.format) == (150, 100, "PNG")
    assert result.verdict == "no classifier" and "no_exif" in result.flags
    assert any("shipped forensic network" in note for note in result.notes)
    report = json.loads(json.dumps(result.report(), allow_nan=False))  # plain, strict JSON
    assert report["detectors"]["halves"] == {"score": 0.25, "mask_fraction": 0.5, "heatmap_max": pytest.approx(0.9),
                                             "seconds": report["detectors"]["halves"]["seconds"], "error": None}


def test_saved_models_join_the_detectors(training_free, photo: Path, saved_models: Path) -> None:
    result = analyze(photo, classifier=saved_models, mask_model=saved_models)
    assert set(result.detectors) == {"halves", "silent", "classifier", "mask_model"}
    assert 0.0 <= result.detectors["classifier"]["score"] <= 1.0 and result.verdict in {"tampered", "authentic"}
    assert result.maps["mask_model"].shape == (100, 150) and result.maps["classifier"].shape == (100, 150)
    assert result.models == {"classifier": str(saved_models.resolve()), "mask_model": str(saved_models.resolve())}
    # a saved model passed as a detector counts as that model: not run twice, not reported missing
    passed = analyze(photo, detectors={"mine": MaskModelDetector(saved_models / "mask_model.keras")}, search_runs=False)
    assert set(passed.detectors) == {"mine"} and passed.models["mask_model"].endswith("mask_model.keras")
    assert not any("no mask model" in note for note in passed.notes)
    assert any("no classifier" in note for note in passed.notes)


def test_the_figure_shows_every_detector_titled_with_its_score(training_free, photo: Path) -> None:
    figure = analysis_figure(analyze(photo, search_runs=False))
    titles = [ax.get_title() for ax in figure.axes]
    assert any(t.startswith("halves\nscore 0.25, 50.0% flagged") for t in titles)
    assert any(t.startswith("silent\nscore -") for t in titles)


def test_a_failing_detector_is_reported_and_the_others_run(training_free, photo: Path) -> None:
    class Broken(Detector):
        def predict(self, image):
            raise RuntimeError("no luck")

    result = analyze(photo, detectors={"broken": Broken(), "halves": "halves"}, search_runs=False)
    assert result.detectors["broken"]["error"] == "RuntimeError: no luck" and "broken" not in result.maps
    assert result.detectors["halves"]["error"] is None
    assert any("broken failed" in note for note in result.notes)


def test_reports_are_written_with_the_figure(training_free, photo: Path, tmp_path: Path) -> None:
    json_path, png_path = save_analysis(analyze(photo, search_runs=False), tmp_path / "out")
    assert json_path.name.startswith("photo-") and json_path.name.endswith("_analysis.json")
    assert png_path.with_suffix(".json") == json_path
    assert json.loads(json_path.read_text())["detectors"]["halves"]["mask_fraction"] == 0.5
    assert Image.open(png_path).format == "PNG"


def test_unreadable_file_is_one_clear_error(tmp_path: Path) -> None:
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 truncated")
    with pytest.raises(ImageLoadError) as caught:
        analyze(broken, search_runs=False)
    assert str(broken) in str(caught.value)


def test_command_line(photo: Path, tmp_path: Path) -> None:
    # A saved model given by path (the shipped one: NumPy runs it, so this interpreter never starts TensorFlow;
    # classifiers and Keras-run mask models join in-process in test_saved_models_join_the_detectors).
    model = shipped_model_path()
    if model is None:
        pytest.skip("this installation ships no model")
    out = tmp_path / "reports"
    ok = subprocess.run([sys.executable, "-m", "helpers", "analyze", str(photo), "--out", str(out),
                         "--mask-model", str(model), "--detectors", "ela,noise"],
                        capture_output=True, text=True, cwd=REPO)
    assert ok.returncode == 0, ok.stderr
    written = sorted(p.suffix for p in out.glob("photo-*_analysis.*"))
    assert written == [".json", ".png"]
    report = json.loads(next(out.glob("*.json")).read_text())
    assert set(report["detectors"]) == {"ela", "noise", "mask_model"}
    assert report["models"]["mask_model"] == str(model.resolve())
    text = tmp_path / "notes.txt"
    text.write_text("not an image")
    bad = subprocess.run([sys.executable, "-m", "helpers", "analyze", str(text), "--no-search", "--out", str(out)],
                         capture_output=True, text=True, cwd=REPO)
    last = bad.stderr.strip().splitlines()[-1]  # after whatever the deep-learning backend logs on import
    assert bad.returncode == 1 and last.startswith("error: ") and str(text) in last


def test_saved_models_run_tile_by_tile_on_a_large_image(training_free, saved_models: Path, tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    path = tmp_path / "large.png"
    Image.fromarray(rng.integers(0, 256, (300, 520, 3), dtype=np.uint8)).save(path)
    result = analyze(path, classifier=saved_models, mask_model=saved_models, tile=256, margin=32)
    assert result.tiles > 1 and {"classifier", "mask_model", "halves"} <= set(result.detectors)
    assert all(entry["error"] is None for entry in result.detectors.values()), result.notes
    assert result.maps["mask_model"].shape == (300, 520) and 0.0 <= result.detectors["mask_model"]["score"] <= 1.0
    # the model is one 3x3 convolution, so tiles of the image give the map of the whole image, seams aside
    whole = analyze(path, classifier=saved_models, mask_model=saved_models)
    assert whole.tiles == 1
    difference = np.abs(result.maps["mask_model"] - whole.maps["mask_model"])
    assert np.median(difference) < 1e-4 and difference.mean() < 0.01


class Meeting(Detector):
    """Waits (up to 10 s) until ``parties`` detectors are predicting at once, then flags nothing."""

    def __init__(self, barrier: threading.Barrier) -> None:
        self.barrier = barrier

    def predict(self, image):
        self.barrier.wait()
        return Prediction.from_heatmap(np.zeros(image.shape, np.float32), score=0.0)


def test_detectors_run_side_by_side_on_images_up_to_the_parallel_limit(photo: Path, monkeypatch) -> None:
    together = threading.Barrier(2, timeout=10)
    chosen = {"first": Meeting(together), "second": Meeting(together), "halves": Halves()}
    found = analyze(photo, detectors=chosen, search_runs=False)
    # The report keeps the order given (the shipped mask model, when installed, comes after).
    assert list(found.detectors)[:3] == ["first", "second", "halves"]
    assert all(entry["error"] is None for entry in found.detectors.values()), found.detectors
    assert found.detectors["halves"]["score"] == 0.25
    # Above the limit one detector runs at a time: the two never meet, and each says so.
    monkeypatch.setattr(analyze_module, "PARALLEL_MAX_PIXELS", 100)
    alone = threading.Barrier(2, timeout=0.5)
    found = analyze(photo, detectors={"first": Meeting(alone), "second": Meeting(alone)}, search_runs=False)
    assert all("BrokenBarrierError" in (found.detectors[name]["error"] or "") for name in ("first", "second"))


def test_a_large_photo_gets_the_quick_set_unless_all_are_asked_for(training_free, photo: Path, monkeypatch) -> None:
    monkeypatch.setattr(analyze_module, "QUICK_ABOVE_PIXELS", 100 * 150 - 1)  # the photo counts as large
    monkeypatch.setattr(analyze_module, "QUICK_DETECTORS", ("halves",))
    quick = analyze(photo, search_runs=False)
    expected = {"halves"} | ({"mask_model"} if shipped_model_path() is not None else set())
    assert set(quick.detectors) == expected
    assert any("the quick set ran (halves" in note and "--detectors all adds silent" in note for note in quick.notes)
    every = analyze(photo, detectors="all", search_runs=False)
    assert {"halves", "silent"} <= set(every.detectors)
    assert not any("quick set" in note for note in every.notes)
    chosen = analyze(photo, detectors=["silent"], search_runs=False)  # a choice is never replaced
    assert "silent" in chosen.detectors and "halves" not in chosen.detectors
