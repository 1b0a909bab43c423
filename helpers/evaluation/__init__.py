"""One evaluation for every detector (notebook 07; ``python -m helpers evaluate``).

* :mod:`.pixel`: localisation metrics of one image and the workbook's one convention for thresholds and empty
  masks (pixel F1/IoU/MCC at 0.5 per tampered image, best-threshold and permuted F1 with the border band, pixel
  AUC, the all-tampered floor);
* :mod:`.image`: detection metrics over images (image AUC, balanced accuracy, false-alarm rate);
* :mod:`.protocol`: ``evaluate(detectors, manifest) -> EvaluationResult``, every detector through the detector
  contract on every image, per-image rows and summary tables per dataset beside the floor;
* :mod:`.cli`: the ``evaluate`` command.

Only the metric modules are imported here: they are NumPy and scikit-learn, so a forensic trace or a Keras
metric may score a map with them without loading the detectors (and Keras) that the protocol runs. Import the
protocol as ``from helpers.evaluation.protocol import evaluate``.
"""

from __future__ import annotations

from helpers.evaluation.image import balanced_accuracy, detection_metrics, false_alarm_rate, image_auc
from helpers.evaluation.pixel import (
    THRESHOLDS,
    all_tampered_f1,
    best_threshold_f1,
    border_band,
    confusion_counts,
    f1_from_counts,
    iou_from_counts,
    mcc_from_counts,
    pixel_auc,
    pixel_metrics,
)

__all__ = [
    "THRESHOLDS",
    "all_tampered_f1",
    "balanced_accuracy",
    "best_threshold_f1",
    "border_band",
    "confusion_counts",
    "detection_metrics",
    "f1_from_counts",
    "false_alarm_rate",
    "image_auc",
    "iou_from_counts",
    "mcc_from_counts",
    "pixel_auc",
    "pixel_metrics",
]
