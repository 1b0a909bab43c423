"""The mask model that ships inside the package finds edits without any training, as its record says."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from helpers import config
from helpers.shipped import SHIPPED_MODEL, score_mask_model, shipped_mask_detector, shipped_model_path


def test_the_package_ships_a_small_model_with_its_provenance():
    path = shipped_model_path()
    assert path is not None, f"no shipped model at {SHIPPED_MODEL}: run the command its docs name"
    assert path.with_suffix(".keras").stat().st_size <= 10 * 1024 * 1024
    info = json.loads(path.read_text())
    assert info["details"]["command"].startswith("python -m helpers train")
    assert info["provenance"]["seed"] is not None
    metrics = info["provenance"]["metrics"]
    assert metrics["fixtures_pixel_f1"] > metrics["fixtures_floor_f1"]
    assert metrics["test_pixel_f1"] > metrics["test_floor_f1"]


def test_a_fresh_process_loads_the_shipped_model_with_the_artifact_module_alone():
    # The network's custom layers must be registered by the loader itself, not by whatever a caller happened to
    # import before (a script that loads the shipped model to fine-tune it imports nothing else).
    code = ("from helpers.models.artifact import load_model_artifact; "
            "from helpers.models.artifact_files import shipped_model_path; "
            "model, info = load_model_artifact(shipped_model_path()); print(info['architecture'])")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().endswith("forensic_net")


@pytest.mark.slow
def test_the_shipped_model_still_reaches_its_recorded_fixture_f1():
    fixtures = config.fixtures_manifest()
    if fixtures is None:
        pytest.skip("the real fixtures are not beside this checkout")
    from helpers.datasets.manifest import load_manifest

    recorded = json.loads(shipped_model_path().read_text())["provenance"]["metrics"]
    parts = {"fixtures": load_manifest(fixtures)}
    # The record is the network's own score (the matching branch came later and is scored beside it).
    measured = score_mask_model(shipped_mask_detector(matching=False), parts)
    # Another backend or BLAS may move a few pixels across 0.5; a real regression moves far more.
    assert measured["fixtures_pixel_f1"] == pytest.approx(recorded["fixtures_pixel_f1"], abs=0.01)
    assert measured["fixtures_image_auc"] == pytest.approx(recorded["fixtures_image_auc"], abs=0.02)
    # The detector analyze uses, with its copy-move matching branch, finds more of the fixtures' edits (many
    # CASIA v1 forgeries copy a region within the photo).
    branched = score_mask_model(shipped_mask_detector(), parts)
    assert branched["fixtures_pixel_f1"] >= measured["fixtures_pixel_f1"] + 0.05
    assert branched["fixtures_image_auc"] >= measured["fixtures_image_auc"] - 0.01


def test_analyze_maps_a_fixture_with_the_shipped_model_without_training(tmp_path):
    fixtures = config.fixtures_manifest()
    if fixtures is None:
        pytest.skip("the real fixtures are not beside this checkout")
    from helpers.analyze import analyze
    from helpers.datasets.manifest import load_manifest

    row = load_manifest(fixtures).query("label == 1").iloc[0]
    analysis = analyze(row["image_path"], detectors=["ela"], search_runs=False)
    assert analysis.models["mask_model"] == str(shipped_model_path())
    heatmap = analysis.maps["mask_model"]
    assert heatmap.shape == (analysis.height, analysis.width) and heatmap.max() > 0.5


@pytest.mark.slow
def test_train_saves_a_model_that_records_how_it_was_made(tmp_path, monkeypatch, synthetic_set):
    # The command that made the shipped model, on a budget of seconds: the saved description must name its data
    # (the training-split crops included), its curve and its held-out scores.
    import argparse

    import pandas as pd

    import helpers.shipped as shipped
    from helpers.datasets.splits import load_split

    monkeypatch.setattr(shipped, "synthesize", lambda *args, **kwargs: synthetic_set)

    def small_split(manifest, seed):  # every training row; four validation and four test images keep it quick
        split = load_split(manifest, seed=seed)
        parts = [split[split["split"] == "train"]] + [split[split["split"] == p].head(4) for p in ("val", "test")]
        return pd.concat(parts)

    monkeypatch.setattr(shipped, "load_split", small_split)
    monkeypatch.setattr(shipped.config, "fixtures_manifest", lambda: None)
    args = argparse.Namespace(profile="smoke", out=tmp_path / "model", budget_s=6.0, seed=3, photos=None,
                              example_share=0.25, flip_views=2)
    assert shipped.run_train(args) == 0
    info = json.loads((tmp_path / "model" / "forensic_net.json").read_text())
    crops = info["provenance"]["data"]["embedded_training_crops"]
    training_rows = int((load_split(synthetic_set, seed=3)["split"] == "train").sum())
    assert crops == {"images": training_rows, "share_of_each_batch": 0.25, "finetune_share": 0.0}
    assert info["provenance"]["metrics"]["example_images"] == crops["images"]
    assert info["details"]["learning_curve"] and info["provenance"]["metrics"]["test_pixel_f1"] is not None
    assert info["image_score"]["rule"] == "top_mean"
    assert info["flip_views"] == 2 and info["provenance"]["metrics"]["flip_views"] == 2


def test_the_train_command_reads_the_recipes_default_views_unless_told():
    # The command line must not import Keras to declare its options, so its default is written out: keep it equal.
    from helpers.__main__ import build_parser
    from helpers.models.portable import FLIP_VIEWS
    from helpers.models.recipes import DEFAULT_FLIP_VIEWS

    parser = build_parser()
    assert parser.parse_args(["train", "--out", "x"]).flip_views == DEFAULT_FLIP_VIEWS
    for views in sorted(FLIP_VIEWS):  # every view count a saved model may carry, and only those
        assert parser.parse_args(["train", "--out", "x", "--flip-views", str(views)]).flip_views == views
    assert parser.parse_args(["train", "--out", "x", "--flip-views", "1"]).flip_views == 1
    with pytest.raises(SystemExit):
        parser.parse_args(["train", "--out", "x", "--flip-views", "3"])
