"""Pixel F1 (Dice) and IoU of thresholded masks while training: stateful Keras metrics in ``keras.ops`` (notebook 06).

Localisation is scored per pixel, on the prediction thresholded at ``threshold`` (0.5; a pixel is predicted
tampered when its probability is *above* it, the convention of :mod:`helpers.evaluation.pixel`): true positives
are tampered pixels predicted tampered, and so on. ``F1 = 2 TP / (2 TP + FP + FN)`` (equal to the Dice coefficient of the
binary masks), ``IoU = TP / (TP + FP + FN)`` (Jaccard).

Two ways to average over many images, and they answer different questions:

* ``average="micro"`` (default): TP, FP and FN are summed over **every pixel of every image seen** in the epoch
  and the score is computed once at the end. Large tampered regions weigh more; this is the standard "pixel
  F1" of the CASIA/Columbia literature when computed over a dataset.
* ``average="per_image"``: the score of each image, then their mean. Every image counts the same, whatever the
  size of its region; a small splice that is missed costs as much as a large one.

Empty masks. A crop with nothing tampered *and* nothing predicted has no TP, FP or FN: while training its score
is defined as **1** (the model is right; many training crops are legitimately empty). With ``per_image`` this
rewards quiet predictions on authentic crops; with ``micro`` such crops only add FP when the model raises a false
alarm. The evaluation protocol (:mod:`helpers.evaluation`) does not score such images by F1 at all: it averages
pixel F1 over tampered images and scores authentic ones by their false alarms. :func:`pixel_scores` is the NumPy
twin of these metrics (same counts, from :func:`helpers.evaluation.pixel.confusion_counts`, same empty rule).

The Keras metrics accumulate over the epoch (Keras resets them at the start of each epoch and of ``evaluate``)
rather than averaging batch scores, which would depend on how images fall into batches. Their counters are
float32 variables: exact up to 2**24 pixels, within 1e-7 relative beyond. Both metrics are registered for
``.keras`` files (package ``forgery_workbook``).
"""

from __future__ import annotations

from typing import Any, Literal

import keras
import numpy as np
from keras import ops

from helpers.evaluation.pixel import confusion_counts

__all__ = ["PixelF1", "PixelIoU", "pixel_scores"]

_PACKAGE = "forgery_workbook"
Average = Literal["micro", "per_image"]


class _PixelOverlap(keras.metrics.Metric):
    """Accumulates thresholded TP/FP/FN (micro) or per-image scores (per_image); subclasses pick the score."""

    def __init__(
        self, threshold: float = 0.5, average: Average = "micro", name: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(name=name, **kwargs)
        if average not in ("micro", "per_image"):
            raise ValueError(f"average must be 'micro' or 'per_image', not {average!r}")
        if not 0.0 < float(threshold) < 1.0:
            raise ValueError(f"threshold must lie strictly between 0 and 1, not {threshold!r}")
        self.threshold = float(threshold)
        self.average: Average = average
        self.tp = self.add_variable(shape=(), initializer="zeros", dtype="float32", name="tp")
        self.fp = self.add_variable(shape=(), initializer="zeros", dtype="float32", name="fp")
        self.fn = self.add_variable(shape=(), initializer="zeros", dtype="float32", name="fn")
        self.total = self.add_variable(shape=(), initializer="zeros", dtype="float32", name="total")
        self.count = self.add_variable(shape=(), initializer="zeros", dtype="float32", name="count")

    @staticmethod
    def _score(tp: Any, fp: Any, fn: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        """Add a batch. ``sample_weight`` is not supported (``None`` only): pixel scores weigh pixels alike."""
        if sample_weight is not None:
            raise ValueError("pixel F1/IoU do not take sample weights")
        truth = ops.cast(ops.cast(y_true, "float32") >= 0.5, "float32")
        pred = ops.cast(ops.cast(y_pred, "float32") > self.threshold, "float32")
        axes = list(range(1, len(pred.shape)))
        tp = ops.sum(truth * pred, axis=axes)
        fp = ops.sum((1.0 - truth) * pred, axis=axes)
        fn = ops.sum(truth * (1.0 - pred), axis=axes)
        self.tp.assign_add(ops.sum(tp))
        self.fp.assign_add(ops.sum(fp))
        self.fn.assign_add(ops.sum(fn))
        self.total.assign_add(ops.sum(self._score(tp, fp, fn)))
        self.count.assign_add(ops.cast(ops.shape(tp)[0], "float32"))

    def result(self) -> Any:
        if self.average == "micro":
            return self._score(self.tp, self.fp, self.fn)
        return ops.where(self.count > 0, self.total / ops.maximum(self.count, 1.0), 0.0)

    def reset_state(self) -> None:
        for variable in (self.tp, self.fp, self.fn, self.total, self.count):
            variable.assign(ops.zeros((), dtype="float32"))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "threshold": self.threshold, "average": self.average}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class PixelF1(_PixelOverlap):
    """Pixel F1 (= Dice of the thresholded masks), accumulated over the epoch (see the module docstring)."""

    def __init__(
        self, threshold: float = 0.5, average: Average = "micro", name: str = "pixel_f1", **kwargs: Any
    ) -> None:
        super().__init__(threshold=threshold, average=average, name=name, **kwargs)

    @staticmethod
    def _score(tp: Any, fp: Any, fn: Any) -> Any:
        denominator = 2.0 * tp + fp + fn
        return ops.where(denominator > 0, 2.0 * tp / ops.maximum(denominator, 1.0), 1.0)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class PixelIoU(_PixelOverlap):
    """Pixel IoU (Jaccard index of the thresholded masks), accumulated over the epoch."""

    def __init__(
        self, threshold: float = 0.5, average: Average = "micro", name: str = "pixel_iou", **kwargs: Any
    ) -> None:
        super().__init__(threshold=threshold, average=average, name=name, **kwargs)

    @staticmethod
    def _score(tp: Any, fp: Any, fn: Any) -> Any:
        denominator = tp + fp + fn
        return ops.where(denominator > 0, tp / ops.maximum(denominator, 1.0), 1.0)


# ----------------------------------------------------------------------------------------------------------------
# NumPy twin
# ----------------------------------------------------------------------------------------------------------------
def pixel_scores(mask: np.ndarray, probability: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    """Pixel F1 and IoU of ``probability > threshold`` against ``mask``, as :class:`PixelF1` and :class:`PixelIoU`
    score one image (an empty mask with an empty prediction scores 1), plus the counts ``tp``, ``fp``, ``fn``."""
    truth = np.asarray(mask)
    truth = truth > (127 if truth.dtype == np.uint8 and truth.max(initial=0) > 1 else 0.5)
    tp, fp, fn, _ = confusion_counts(np.asarray(probability) > threshold, truth)
    f1 = 1.0 if 2 * tp + fp + fn == 0 else 2.0 * tp / (2 * tp + fp + fn)
    iou = 1.0 if tp + fp + fn == 0 else tp / (tp + fp + fn)
    return {"f1": f1, "iou": iou, "tp": tp, "fp": fp, "fn": fn}
