"""The field's evaluation protocols, so the workbook's numbers compare with published ones.

Localisation (per tampered image, then averaged over tampered images, never pooled over all pixels, so a
large image does not outweigh a small one):

* **pixel F1 at 0.5** (also IoU and MCC at 0.5): the convention of MVSS-Net and the IMDL-BenCo benchmark;
* **best-threshold F1**: the F1 at the threshold that suits each image best (an oracle, an upper bound), and
  **permuted F1**: ``max(F1(pred), F1(1 - pred))``, which forgives inverted polarity; both with a band of
  ground-truth border pixels excluded, the convention of TruFor (Guillaro et al., CVPR 2023) and of Huh et al.
  (ECCV 2018), since hand-drawn masks are unsure at their edges;
* **pixel AUC** per image (threshold-free).

Detection (per image): ROC-AUC of an image score, balanced accuracy and F1 at 0.5.

Every number needs its floor beside it: predicting *every* pixel as tampered scores an F1 of ``2p / (1 + p)``
on an image whose tampered fraction is ``p`` (:func:`all_tampered_f1`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pandas as pd

__all__ = [
    "THRESHOLDS",
    "pixel_auc",
    "border_band",
    "confusion_counts",
    "f1_from_counts",
    "iou_from_counts",
    "mcc_from_counts",
    "pixel_metrics",
    "best_threshold_f1",
    "all_tampered_f1",
    "localisation_table",
    "summarise_localisation",
    "ALL_TAMPERED",
    "ELA_BASELINE",
    "ela_baseline",
    "evaluate_manifest",
    "results_table",
    "load_predictors",
    "register_cli",
]

THRESHOLDS: np.ndarray = np.linspace(0.0, 1.0, 101)
"""Thresholds tried by :func:`best_threshold_f1` (0.00, 0.01, ..., 1.00)."""


def pixel_auc(score_map: np.ndarray, mask: np.ndarray, valid: np.ndarray | None = None) -> float:
    """ROC-AUC of ``score_map`` against the bool ``mask``; NaN when the (valid) mask is all one class.

    Computed from ranks (Mann-Whitney U) with ties averaged, in O(n log n) without building a curve.
    ``valid`` (bool, same shape) restricts the pixels that count.
    """
    truth = np.asarray(mask, bool)
    scores = np.asarray(score_map, np.float64)
    if truth.shape != scores.shape:
        raise ValueError(f"map of shape {scores.shape} and mask of shape {truth.shape} differ")
    if valid is not None:
        keep = np.asarray(valid, bool)
        truth, scores = truth[keep], scores[keep]
    truth, scores = truth.ravel(), scores.ravel()
    positives = int(truth.sum())
    negatives = truth.size - positives
    if positives == 0 or negatives == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    sorted_scores = scores[order]
    boundaries = np.flatnonzero(np.diff(sorted_scores)) + 1
    starts = np.concatenate([[0], boundaries])
    ends = np.concatenate([boundaries, [scores.size]])
    ranks = np.empty(scores.size, np.float64)
    ranks[order] = np.repeat((starts + ends + 1) / 2.0, ends - starts)  # 1-based mean rank of each tie run
    return float((ranks[truth].sum() - positives * (positives + 1) / 2.0) / (positives * negatives))


def border_band(mask: np.ndarray, width: int) -> np.ndarray:
    """Pixels within ``width`` pixels of the mask's boundary, inside or outside (bool); none when width is 0."""
    truth = np.asarray(mask, bool)
    if width <= 0 or not truth.any() or truth.all():
        return np.zeros_like(truth)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * width + 1, 2 * width + 1))
    as_bytes = truth.astype(np.uint8)
    dilated = cv2.dilate(as_bytes, kernel) > 0
    eroded = cv2.erode(as_bytes, kernel, borderType=cv2.BORDER_REPLICATE) > 0
    return dilated & ~eroded


def confusion_counts(prediction: np.ndarray, mask: np.ndarray, valid: np.ndarray | None = None) -> tuple[int, int, int, int]:
    """(TP, FP, FN, TN) of a bool ``prediction`` against a bool ``mask`` over the ``valid`` pixels."""
    pred = np.asarray(prediction, bool)
    truth = np.asarray(mask, bool)
    if pred.shape != truth.shape:
        raise ValueError(f"prediction of shape {pred.shape} and mask of shape {truth.shape} differ")
    if valid is not None:
        keep = np.asarray(valid, bool)
        pred, truth = pred[keep], truth[keep]
    tp = int(np.count_nonzero(pred & truth))
    fp = int(np.count_nonzero(pred & ~truth))
    fn = int(np.count_nonzero(~pred & truth))
    tn = int(pred.size - tp - fp - fn)
    return tp, fp, fn, tn


def f1_from_counts(tp: float, fp: float, fn: float) -> float:
    """F1 = 2TP / (2TP + FP + FN).

    With no tampered pixel and no prediction (TP = FP = FN = 0) the F1 is undefined and returned as NaN, so
    callers decide; the protocols here only score tampered images, where that cannot happen.
    """
    denominator = 2 * tp + fp + fn
    return float(2 * tp / denominator) if denominator else float("nan")


def iou_from_counts(tp: float, fp: float, fn: float) -> float:
    """Intersection over union TP / (TP + FP + FN); NaN when both are empty."""
    denominator = tp + fp + fn
    return float(tp / denominator) if denominator else float("nan")


def mcc_from_counts(tp: float, fp: float, fn: float, tn: float) -> float:
    """Matthews correlation coefficient; 0 when a row or column of the confusion matrix is empty."""
    denominator = np.sqrt(float(tp + fp) * float(tp + fn) * float(tn + fp) * float(tn + fn))
    return float((tp * tn - fp * fn) / denominator) if denominator else 0.0


def pixel_metrics(
    probability: np.ndarray, mask: np.ndarray, *, threshold: float = 0.5, border: int = 0,
) -> dict[str, float]:
    """Localisation metrics of one image: F1, IoU, MCC at ``threshold``, pixel AUC, best-threshold and
    permuted F1, and the all-tampered floor; pixels within ``border`` of the mask's boundary are ignored by the
    best-threshold and permuted F1 (the TruFor convention) but not by the fixed-threshold scores.
    """
    score = np.asarray(probability, np.float64)
    truth = np.asarray(mask, bool)
    tp, fp, fn, tn = confusion_counts(score >= threshold, truth)
    valid = ~border_band(truth, border) if border > 0 else None
    best, permuted = best_threshold_f1(score, truth, valid=valid)
    return {
        "f1": f1_from_counts(tp, fp, fn),
        "iou": iou_from_counts(tp, fp, fn),
        "mcc": mcc_from_counts(tp, fp, fn, tn),
        "auc": pixel_auc(score, truth),
        "best_f1": best,
        "permuted_f1": permuted,
        "tampered_fraction": float(truth.mean()),
        "all_tampered_f1": all_tampered_f1(truth),
    }


def best_threshold_f1(
    probability: np.ndarray, mask: np.ndarray, *, valid: np.ndarray | None = None,
    thresholds: Sequence[float] = THRESHOLDS,
) -> tuple[float, float]:
    """(best-threshold F1, best-threshold permuted F1) of one image over ``thresholds``.

    The permuted F1 also tries the inverted prediction at every threshold and keeps the better. Computed from
    a histogram of scores per class, so all thresholds cost one pass over the pixels.
    """
    score = np.asarray(probability, np.float64)
    truth = np.asarray(mask, bool)
    if valid is not None:
        keep = np.asarray(valid, bool)
        score, truth = score[keep], truth[keep]
    score, truth = score.ravel(), truth.ravel()
    edges = np.asarray(thresholds, np.float64)
    # For each threshold t: predicted positive <=> score >= t. Count positives/negatives at or above t.
    positives_sorted = np.sort(score[truth])
    negatives_sorted = np.sort(score[~truth])
    tp = positives_sorted.size - np.searchsorted(positives_sorted, edges, side="left")
    fp = negatives_sorted.size - np.searchsorted(negatives_sorted, edges, side="left")
    fn = positives_sorted.size - tp
    tn = negatives_sorted.size - fp
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(2 * tp + fp + fn > 0, 2 * tp / np.maximum(2 * tp + fp + fn, 1), np.nan)
        # Inverted prediction: positives become the pixels below t, so TP' = FN, FP' = TN, FN' = TP.
        f1_inverted = np.where(2 * fn + tn + tp > 0, 2 * fn / np.maximum(2 * fn + tn + tp, 1), np.nan)
    best = float(np.nanmax(f1)) if np.isfinite(f1).any() else float("nan")
    permuted = float(np.nanmax(np.fmax(f1, f1_inverted))) if np.isfinite(f1).any() else float("nan")
    return best, permuted


def all_tampered_f1(mask: np.ndarray) -> float:
    """F1 of predicting every pixel tampered: 2p / (1 + p) for a tampered fraction p (NaN without pixels)."""
    truth = np.asarray(mask, bool)
    if truth.size == 0:
        return float("nan")
    fraction = float(truth.mean())
    return 2 * fraction / (1 + fraction)


def localisation_table(
    items: Iterable[tuple[str, np.ndarray, np.ndarray]], *, threshold: float = 0.5, border: int = 0,
) -> pd.DataFrame:
    """:func:`pixel_metrics` for each ``(name, probability, mask)`` of a *tampered* image, one row each."""
    rows = []
    for name, probability, mask in items:
        truth = np.asarray(mask, bool)
        if probability.shape != truth.shape:
            raise ValueError(f"{name}: prediction {probability.shape} and mask {truth.shape} differ in shape")
        rows.append({"image": name, **pixel_metrics(probability, truth, threshold=threshold, border=border)})
    return pd.DataFrame(rows)


def summarise_localisation(table: pd.DataFrame) -> dict[str, float]:
    """Means over tampered images (NaN-aware) of every column of a :func:`localisation_table`, plus the count."""
    numeric = table.drop(columns=[c for c in ("image",) if c in table]).select_dtypes("number")
    summary = {column: float(numeric[column].mean(skipna=True)) for column in numeric}
    summary["images"] = int(len(table))
    return summary


# ----------------------------------------------------------------------------------------------------------------
# Evaluating predictors over a manifest
# ----------------------------------------------------------------------------------------------------------------
ALL_TAMPERED = "all tampered (floor)"
ELA_BASELINE = "thresholded ELA"


def ela_baseline(rgb: np.ndarray, quality: int = 90) -> np.ndarray:
    """The training-free ELA baseline: the ELA map (mean over channels) divided by its maximum, in [0, 1].

    At 0.5 it marks the pixels whose error level is at least half the image's largest, the way ELA is read by
    eye; its image score (max over pixels) is always 1, so its image-level numbers use the mean error level.
    """
    from helpers.forensics import ela

    level = ela(rgb, quality).mean(axis=2, dtype=np.float32)
    top = float(level.max())
    return level / top if top > 0 else level


def evaluate_manifest(
    manifest: pd.DataFrame,
    predictors: dict[str, Callable[[np.ndarray], np.ndarray]],
    *,
    image_scorers: dict[str, Callable[[np.ndarray], float]] | None = None,
    threshold: float = 0.5,
    border: int = 0,
    baselines: bool = True,
    progress: bool = True,
) -> pd.DataFrame:
    """Score every image of ``manifest`` under every predictor; one row per (image, predictor).

    ``predictors`` map a name to a function ``rgb -> probability map (H, W)``; with ``baselines`` the
    all-tampered prediction and :func:`ela_baseline` are added. Tampered images with a mask get
    :func:`pixel_metrics`; every image gets an ``image_score``: the ``image_scorers`` entry of the same name when
    given (a classifier), else the map's maximum (for the ELA baseline, its mean error level). Unreadable files
    get one row with ``error`` and are not scored.
    """
    from tqdm.auto import tqdm

    from helpers.imageio import ImageLoadError, load_mask, load_rgb

    all_predictors = dict(predictors)
    if baselines:
        all_predictors[ALL_TAMPERED] = lambda rgb: np.ones(rgb.shape[:2], np.float32)
        all_predictors[ELA_BASELINE] = ela_baseline
    image_scorers = dict(image_scorers or {})
    rows: list[dict] = []
    columns = [c for c in ("dataset", "kind", "group") if c in manifest]
    for entry in tqdm(manifest.itertuples(index=False), total=len(manifest), desc="evaluating", disable=not progress):
        base = {"image_path": entry.image_path, "label": int(entry.label), **{c: getattr(entry, c) for c in columns}}
        try:
            rgb = load_rgb(entry.image_path)
            mask = (load_mask(entry.mask_path, size=(rgb.shape[1], rgb.shape[0])) if entry.mask_path
                    else np.zeros(rgb.shape[:2], bool))
        except ImageLoadError as error:
            rows.append({**base, "predictor": None, "error": str(error)})
            continue
        for name, predict in all_predictors.items():
            probability = np.asarray(predict(rgb), np.float32)
            if name in image_scorers:
                score = float(image_scorers[name](rgb))
            elif name == ELA_BASELINE:
                from helpers.forensics import ela

                score = float(ela(rgb, 90).mean()) / 255.0
            else:
                score = float(probability.max())
            row = {**base, "predictor": name, "image_score": score, "error": ""}
            if entry.label == 1 and mask.any():
                row.update(pixel_metrics(probability, mask, threshold=threshold, border=border))
            rows.append(row)
    return pd.DataFrame(rows)


def results_table(per_image: pd.DataFrame, *, by: str = "dataset", threshold: float = 0.5) -> pd.DataFrame:
    """Per ``by`` value and predictor: localisation means over tampered images and image-level detection.

    Columns: ``images``, ``tampered``, ``pixel_f1`` (at ``threshold``), ``best_f1``, ``permuted_f1``, ``iou``,
    ``mcc``, ``pixel_auc``, ``all_tampered_f1`` (the floor on the same images), ``image_auc``,
    ``image_balanced_accuracy`` and ``image_f1`` (image score at ``threshold``; NaN where only one label
    is present). The all-tampered rows have no image-level numbers (a constant score decides nothing).
    """
    from helpers.metrics import classification_metrics

    scored = per_image[per_image["error"] == ""] if "error" in per_image else per_image
    group_column = by if by in scored else None
    rows = []
    for keys, part in scored.groupby([group_column, "predictor"] if group_column else ["predictor"], sort=False):
        keys = keys if isinstance(keys, tuple) else (keys,)
        tampered = part[part["label"] == 1]
        localised = tampered.dropna(subset=["f1"]) if "f1" in tampered else tampered.iloc[0:0]
        row = {**({by: keys[0]} if group_column else {}), "predictor": keys[-1], "images": int(len(part)),
               "tampered": int(len(tampered))}
        for column, name in (("f1", "pixel_f1"), ("best_f1", "best_f1"), ("permuted_f1", "permuted_f1"),
                             ("iou", "iou"), ("mcc", "mcc"), ("auc", "pixel_auc"), ("all_tampered_f1", "all_tampered_f1")):
            row[name] = float(localised[column].mean()) if len(localised) and column in localised else float("nan")
        if keys[-1] != ALL_TAMPERED and part["label"].nunique() == 2:
            detection = classification_metrics(part["label"].to_numpy(), part["image_score"].to_numpy(), threshold)
            row.update(image_auc=detection["roc_auc"], image_balanced_accuracy=detection["balanced_accuracy"],
                       image_f1=detection["f1"])
        else:
            row.update(image_auc=float("nan"), image_balanced_accuracy=float("nan"), image_f1=float("nan"))
        rows.append(row)
    return pd.DataFrame(rows)


def register_cli(subparsers: Any) -> None:
    """Add ``evaluate --manifest M [--model MASK_MODEL] [--classifier CLF] --out report.json``."""
    parser = subparsers.add_parser(
        "evaluate", help="evaluate models and training-free baselines on a manifest by the field's protocol",
        description="Pixel F1 at 0.5 averaged over tampered images, best-threshold and permuted F1 (borders "
        "excluded), IoU, MCC, pixel AUC; image-level AUC, balanced accuracy and F1; beside the models, the "
        "all-tampered floor and thresholded ELA on the same images.")
    parser.add_argument("--manifest", type=Path, required=True)
    parser.add_argument("--model", type=Path, default=None, help="mask model folder or .keras (notebook 06)")
    parser.add_argument("--classifier", type=Path, default=None, help="classifier folder or .keras (notebook 05)")
    parser.add_argument("--out", type=Path, default=Path("report.json"))
    parser.add_argument("--threshold", type=float, default=0.5)
    parser.add_argument("--border", type=int, default=3, help="ground-truth border band (pixels) excluded from best/permuted F1")
    parser.add_argument("--quiet", action="store_true")
    parser.set_defaults(func=_run_cli)


def _run_cli(args: argparse.Namespace) -> int:
    from helpers.atomic import atomic_write_json
    from helpers.datasets.manifest import ManifestError, load_manifest

    try:
        manifest = load_manifest(args.manifest)
        predictors, scorers = load_predictors(mask_model=args.model, classifier=args.classifier)
    except (ManifestError, OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    per_image = evaluate_manifest(manifest, predictors, image_scorers=scorers, threshold=args.threshold,
                                  border=args.border, progress=not args.quiet)
    table = results_table(per_image, threshold=args.threshold)
    unreadable = per_image[per_image["error"] != ""]["image_path"].tolist() if "error" in per_image else []
    report = {
        "manifest": str(args.manifest.resolve()),
        "mask_model": str(args.model) if args.model else None,
        "classifier": str(args.classifier) if args.classifier else None,
        "threshold": args.threshold,
        "border": args.border,
        "protocol": "pixel metrics averaged over tampered images; image metrics over all images",
        "results": json.loads(table.to_json(orient="records")),
        "unreadable": unreadable,
    }
    atomic_write_json(args.out, report)
    with pd.option_context("display.width", 200, "display.max_columns", 30, "display.float_format", "{:.3f}".format):
        print(table.to_string(index=False))
    for path in unreadable:
        print(f"warning: unreadable, skipped: {path}", file=sys.stderr)
    print(f"wrote {args.out}")
    return 0


def load_predictors(
    *, mask_model: str | os.PathLike[str] | None = None, classifier: str | os.PathLike[str] | None = None,
) -> tuple[dict[str, Callable[[np.ndarray], np.ndarray]], dict[str, Callable[[np.ndarray], float]]]:
    """Predictors for :func:`evaluate_manifest` from saved models: the mask model's tiled prediction, scored at
    image level by the classifier when one is given (else by the map's maximum)."""
    predictors: dict[str, Callable[[np.ndarray], np.ndarray]] = {}
    scorers: dict[str, Callable[[np.ndarray], float]] = {}
    classifier_score = None
    if classifier is not None:
        from helpers.analyze import classifier_image_score
        from helpers.models.classifier import load_classifier

        path = Path(classifier)
        model_c, info_c = load_classifier(path if path.is_dir() else path.parent,
                                          stem=path.stem if path.suffix else "classifier")
        classifier_score = lambda rgb: classifier_image_score(model_c, info_c, rgb)[0]  # noqa: E731
    if mask_model is not None:
        from helpers.inference import load_mask_model, predict_mask

        model_m, info_m = load_mask_model(mask_model)
        name = f"mask model ({info_m.get('model', Path(mask_model).name)})"
        if classifier_score is not None:
            name += " + classifier"  # the classifier gives this row's image-level scores
        predictors[name] = lambda rgb: predict_mask(model_m, rgb, tile=int(info_m.get("tile", 256)),  # noqa: E731
                                                    overlap=info_m.get("overlap", 0.25),
                                                    ela_quality=int(info_m.get("ela_quality", 90)))
        if classifier_score is not None:
            scorers[name] = classifier_score
    elif classifier_score is not None:
        # A classifier alone: no map of its own, so localisation columns stay empty for it.
        name = "classifier"
        predictors[name] = lambda rgb: np.full(rgb.shape[:2], np.nan, np.float32)  # noqa: E731
        scorers[name] = classifier_score
    return predictors, scorers
