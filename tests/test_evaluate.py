"""Each metric pinned on small hand-made cases whose values are worked out here."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from helpers.evaluate import (
    all_tampered_f1,
    best_threshold_f1,
    border_band,
    confusion_counts,
    localisation_table,
    mcc_from_counts,
    pixel_auc,
    pixel_metrics,
    summarise_localisation,
)


@pytest.fixture()
def case() -> tuple[np.ndarray, np.ndarray]:
    """4x4 image, top-left 2x2 tampered; one tampered pixel missed (0.2), one false alarm (0.7)."""
    mask = np.zeros((4, 4), bool)
    mask[:2, :2] = True
    probability = np.full((4, 4), 0.1)
    probability[:2, :2] = 0.9
    probability[1, 1] = 0.2
    probability[3, 3] = 0.7
    return probability, mask


def test_fixed_threshold_scores(case) -> None:
    probability, mask = case
    # At 0.5: TP = 3, FP = 1 (the 0.7), FN = 1 (the 0.2), TN = 11.
    assert confusion_counts(probability >= 0.5, mask) == (3, 1, 1, 11)
    scores = pixel_metrics(probability, mask)
    assert scores["f1"] == pytest.approx(2 * 3 / (2 * 3 + 1 + 1))  # 0.75
    assert scores["iou"] == pytest.approx(3 / 5)
    assert scores["mcc"] == pytest.approx((3 * 11 - 1 * 1) / np.sqrt(4 * 4 * 12 * 12))  # 32 / 48
    # AUC: the three 0.9 beat all 12 negatives (36 pairs); the 0.2 beats the eleven 0.1 (11): 47 of 48 pairs.
    assert scores["auc"] == pytest.approx(47 / 48)
    assert scores["auc"] == pytest.approx(roc_auc_score(mask.ravel(), probability.ravel()))
    # Predicting everything tampered: p = 4/16, F1 = 2p / (1 + p) = 0.4.
    assert scores["all_tampered_f1"] == pytest.approx(0.4) == all_tampered_f1(mask)


def test_best_threshold_and_permuted_f1(case) -> None:
    probability, mask = case
    # Threshold 0.2 catches all four tampered pixels and the 0.7 false alarm: F1 = 8/9 (vs 6/7 above 0.7).
    best, permuted = best_threshold_f1(probability, mask)
    assert best == pytest.approx(8 / 9)
    assert permuted == pytest.approx(8 / 9)
    # An inverted prediction scores 0 at 0.5 but 1 once polarity is forgiven.
    inverted = 1.0 - mask.astype(float)
    assert pixel_metrics(inverted, mask)["f1"] == 0.0
    assert best_threshold_f1(inverted, mask) == (pytest.approx(0.4), 1.0)  # best non-permuted: all tampered


def test_border_exclusion_forgives_a_boundary_error() -> None:
    mask = np.zeros((20, 20), bool)
    mask[5:15, 5:15] = True
    grown = np.zeros((20, 20), bool)
    grown[4:16, 4:16] = True  # the mask plus a one-pixel ring
    without = pixel_metrics(grown.astype(float), mask)
    assert without["best_f1"] == pytest.approx(2 * 100 / (2 * 100 + 44))
    with_border = pixel_metrics(grown.astype(float), mask, border=2)
    assert with_border["best_f1"] == 1.0 and with_border["permuted_f1"] == 1.0
    assert with_border["f1"] == without["f1"], "the fixed-threshold F1 keeps every pixel"
    band = border_band(mask, 2)
    assert band[4, 10] and band[5, 10] and not band[10, 10] and not band[0, 0]
    assert not border_band(mask, 0).any()


def test_degenerate_cases() -> None:
    assert mcc_from_counts(0, 0, 5, 11) == 0.0
    assert np.isnan(pixel_auc(np.ones((3, 3)), np.zeros((3, 3), bool)))
    empty = np.zeros((3, 3), bool)
    assert np.isnan(pixel_metrics(np.zeros((3, 3)), empty)["f1"])
    with pytest.raises(ValueError, match="differ"):
        pixel_metrics(np.zeros((3, 3)), np.zeros((3, 4), bool))


def test_table_averages_per_image_not_per_pixel(case) -> None:
    probability, mask = case
    big_mask = np.zeros((100, 100), bool)
    big_mask[:50] = True
    perfect = big_mask.astype(float)
    table = localisation_table([("small", probability, mask), ("big", perfect, big_mask)])
    summary = summarise_localisation(table)
    assert summary["images"] == 2
    assert summary["f1"] == pytest.approx((0.75 + 1.0) / 2)  # pooled pixels would give ~1.0
    assert list(table["image"]) == ["small", "big"]


def test_manifest_evaluation_with_known_predictors(synthetic_set, tmp_path) -> None:
    import pandas as pd

    from helpers.evaluate import ALL_TAMPERED, ELA_BASELINE, evaluate_manifest, results_table
    from helpers.imageio import load_mask

    subset = pd.concat([synthetic_set[synthetic_set["label"] == 1].head(6),
                        synthetic_set[synthetic_set["label"] == 0].head(6)]).reset_index(drop=True)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not an image")
    subset = pd.concat([subset, subset.iloc[[0]].assign(image_path=str(broken))], ignore_index=True)
    masks = {row.image_path: (load_mask(row.mask_path) if row.mask_path else None) for row in subset.itertuples()}
    labels = dict(zip(subset["image_path"], subset["label"]))

    def oracle(rgb):  # looks up the truth by the image's size and content: fine for a test
        for path, mask in masks.items():
            if mask is not None and mask.shape == rgb.shape[:2]:
                return mask.astype(np.float32)
        return np.zeros(rgb.shape[:2], np.float32)

    per_image = evaluate_manifest(subset, {"oracle": oracle}, progress=False,
                                  image_scorers={"oracle": lambda rgb: 1.0 if oracle(rgb).any() else 0.0})
    assert (per_image["error"] != "").sum() == 1 and str(broken) in per_image.loc[per_image["error"] != "", "error"].iloc[0]
    table = results_table(per_image).set_index("predictor")
    oracle_row = table.loc["oracle"]
    assert oracle_row["tampered"] == 6 and oracle_row["images"] == 12
    assert oracle_row["pixel_f1"] == 1.0 and oracle_row["iou"] == 1.0 and oracle_row["pixel_auc"] == 1.0
    floor = table.loc[ALL_TAMPERED]
    # The floor is 2p/(1+p) per image, averaged: the same number in its own row and beside every model.
    assert floor["pixel_f1"] == pytest.approx(floor["all_tampered_f1"]) == pytest.approx(oracle_row["all_tampered_f1"])
    assert np.isnan(floor["image_auc"])
    assert 0 <= table.loc[ELA_BASELINE, "pixel_f1"] <= 1
    assert oracle_row["image_auc"] == 1.0 and oracle_row["image_balanced_accuracy"] == 1.0
    assert set(labels.values()) == {0, 1}


def test_evaluate_command_writes_a_report_with_baselines(fixtures_manifest, tmp_path) -> None:
    import json
    import subprocess
    import sys

    out = tmp_path / "report.json"
    result = subprocess.run([sys.executable, "-m", "helpers", "evaluate", "--manifest", str(fixtures_manifest),
                             "--out", str(out), "--quiet"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    predictors = {row["predictor"] for row in report["results"]}
    assert predictors == {"all tampered (floor)", "thresholded ELA"}
    assert "all tampered (floor)" in result.stdout and "casia1" in result.stdout
    missing = subprocess.run([sys.executable, "-m", "helpers", "evaluate", "--manifest", str(tmp_path / "none.csv"),
                              "--out", str(out)], capture_output=True, text=True)
    assert missing.returncode == 1 and missing.stderr.startswith("error: ")
