"""Mask losses and pixel metrics against values computed by hand on tiny tensors."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest

from helpers.models.losses import (
    LOSSES,
    BCEDiceLoss,
    BCELoss,
    DiceLoss,
    FocalLoss,
    binary_crossentropy,
    dice_loss,
    focal_loss,
    get_loss,
)
from helpers.models.metrics import PixelF1, PixelIoU, pixel_scores


def image(values, shape=(1, 1, -1, 1)) -> np.ndarray:
    """One image (batch of 1) of the given pixel values, shaped (1, 1, N, 1)."""
    return np.asarray(values, dtype="float32").reshape(shape)


def value(tensor) -> np.ndarray:
    return np.asarray(keras.ops.convert_to_numpy(tensor), dtype=np.float64)


# -------------------------------------------------------------------------------------------------------------
# Losses: hand-computed values
# -------------------------------------------------------------------------------------------------------------
Y2, P2 = image([1, 0]), image([0.8, 0.4])
Y4, P4 = image([1, 1, 0, 0]), image([0.9, 0.6, 0.2, 0.0])


def test_bce_by_hand() -> None:
    expected = -(math.log(0.8) + math.log(0.6)) / 2  # 0.366985...
    assert value(binary_crossentropy(Y2, P2)) == pytest.approx([expected], rel=1e-5)
    assert float(value(BCELoss()(Y2, P2))) == pytest.approx(expected, rel=1e-5)


def test_dice_by_hand() -> None:
    # intersection 0.9 + 0.6 = 1.5, sum(y) = 2, sum(p) = 1.7
    assert value(dice_loss(Y4, P4, smooth=1.0)) == pytest.approx([1 - (2 * 1.5 + 1) / (3.7 + 1)], rel=1e-5)
    assert value(dice_loss(Y4, P4, smooth=0.0)) == pytest.approx([1 - 3.0 / 3.7], rel=1e-5)
    assert float(value(DiceLoss()(Y4, P4))) == pytest.approx(1 - 4 / 4.7, rel=1e-5)


def test_focal_by_hand() -> None:
    tampered = 0.25 * (1 - 0.8) ** 2 * -math.log(0.8)  # alpha for y = 1
    authentic = 0.75 * (1 - 0.6) ** 2 * -math.log(0.6)  # 1 - alpha for y = 0, p_t = 0.6
    assert value(focal_loss(Y2, P2)) == pytest.approx([(tampered + authentic) / 2], rel=1e-5)
    # gamma = 0 and no alpha is plain BCE
    bce = value(binary_crossentropy(Y2, P2))
    assert value(focal_loss(Y2, P2, alpha=None, gamma=0.0)) == pytest.approx(bce, rel=1e-6)
    assert float(value(FocalLoss(alpha=None, gamma=0.0)(Y2, P2))) == pytest.approx(float(bce[0]), rel=1e-6)


def test_bce_dice_is_the_weighted_sum() -> None:
    bce = float(value(binary_crossentropy(Y4, P4))[0])
    dice = float(value(dice_loss(Y4, P4))[0])
    assert float(value(BCEDiceLoss()(Y4, P4))) == pytest.approx(bce + dice, rel=1e-5)
    weighted = BCEDiceLoss(bce_weight=0.5, dice_weight=2.0)
    assert float(value(weighted(Y4, P4))) == pytest.approx(0.5 * bce + 2 * dice, rel=1e-5)


def test_losses_are_per_image_and_averaged_over_the_batch() -> None:
    y = np.concatenate([Y4, image([0, 0, 0, 0])])
    p = np.concatenate([P4, image([0.5, 0.5, 0.5, 0.5])])
    per_image = value(dice_loss(y, p))
    assert per_image.shape == (2,)
    assert per_image[1] == pytest.approx(1 - 1 / (2.0 + 1), rel=1e-5)  # empty truth: 1 - s / (sum(p) + s)
    assert float(value(DiceLoss()(y, p))) == pytest.approx(per_image.mean(), rel=1e-5)


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_perfect_prediction_costs_nothing(name: str) -> None:
    y = image([1, 1, 0, 0, 1, 0])
    assert float(value(get_loss(name)(y, y))) == pytest.approx(0.0, abs=1e-5)
    assert float(value(get_loss(name)(y, 1 - y))) > 0.2  # and the worst one costs something


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_empty_masks_are_finite(name: str) -> None:
    empty = image([0, 0, 0, 0])
    assert float(value(get_loss(name)(empty, empty))) == pytest.approx(0.0, abs=1e-5)
    alarm = float(value(get_loss(name)(empty, image([1, 1, 1, 1]))))
    assert math.isfinite(alarm) and alarm > 0  # clipped logarithms: no inf or nan


def test_losses_accept_float16_predictions_and_compute_in_float32() -> None:
    result = BCEDiceLoss()(Y4, P4.astype("float16"))
    assert keras.backend.standardize_dtype(result.dtype) == "float32"


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_losses_serialise(name: str) -> None:
    loss = get_loss(name)
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(loss))
    assert type(restored) is type(loss) and restored.get_config() == loss.get_config()


def test_unknown_loss_names_the_choices() -> None:
    with pytest.raises(ValueError, match="bce_dice"):
        get_loss("hinge")


# -------------------------------------------------------------------------------------------------------------
# Metrics
# -------------------------------------------------------------------------------------------------------------
def test_f1_and_iou_by_hand() -> None:
    y, p = image([1, 1, 0, 0]), image([0.9, 0.4, 0.6, 0.1])  # at 0.5: TP 1, FP 1, FN 1
    f1, iou = PixelF1(), PixelIoU()
    f1.update_state(y, p)
    iou.update_state(y, p)
    assert float(value(f1.result())) == pytest.approx(0.5)
    assert float(value(iou.result())) == pytest.approx(1 / 3)
    assert pixel_scores(y[0, 0, :, 0], p[0, 0, :, 0]) == pytest.approx({"f1": 0.5, "iou": 1 / 3, "tp": 1, "fp": 1,
                                                                       "fn": 1})
    assert pixel_scores(np.zeros(4), np.zeros(4)) == pytest.approx({"f1": 1.0, "iou": 1.0, "tp": 0, "fp": 0, "fn": 0})


def test_accumulation_micro_versus_per_image() -> None:
    batches = [
        (image([1, 1, 0, 0]), image([0.9, 0.4, 0.6, 0.1])),  # TP 1, FP 1, FN 1: F1 1/2, IoU 1/3
        (image([1, 1, 1, 1]), image([0.7, 0.8, 0.9, 0.6])),  # TP 4: F1 1, IoU 1
    ]
    metrics = {
        ("f1", "micro"): (PixelF1(), 2 * 5 / (2 * 5 + 1 + 1)),
        ("iou", "micro"): (PixelIoU(), 5 / 7),
        ("f1", "per_image"): (PixelF1(average="per_image"), (0.5 + 1) / 2),
        ("iou", "per_image"): (PixelIoU(average="per_image"), (1 / 3 + 1) / 2),
    }
    for key, (metric, expected) in metrics.items():
        for y, p in batches:
            metric.update_state(y, p)
        assert float(value(metric.result())) == pytest.approx(expected, rel=1e-6), key
        metric.reset_state()
        metric.update_state(*batches[1])
        assert float(value(metric.result())) == pytest.approx(1.0), f"{key} after reset"


@pytest.mark.parametrize("average", ["micro", "per_image"])
def test_perfect_and_empty_masks_score_one(average: str) -> None:
    y = image([1, 0, 1, 0, 0, 0])
    for metric in (PixelF1(average=average), PixelIoU(average=average)):
        metric.update_state(y, y)
        assert float(value(metric.result())) == pytest.approx(1.0)
    empty = image([0, 0, 0, 0])
    for metric in (PixelF1(average=average), PixelIoU(average=average)):
        metric.update_state(empty, empty)
        assert float(value(metric.result())) == pytest.approx(1.0)
        metric.update_state(empty, image([0.9, 0, 0, 0]))  # a false alarm on an authentic image
        assert float(value(metric.result())) < 1.0


def test_threshold_is_applied() -> None:
    y, p = image([1, 0]), image([0.7, 0.2])
    strict = PixelF1(threshold=0.8)
    strict.update_state(y, p)
    assert float(value(strict.result())) == pytest.approx(0.0)


def test_keras_metrics_match_numpy_scores_on_random_masks() -> None:
    rng = np.random.default_rng(0)
    y = (rng.random((3, 16, 16, 1)) < 0.3).astype("float32")
    p = rng.random((3, 16, 16, 1)).astype("float32")
    f1, iou = PixelF1(), PixelIoU()
    f1.update_state(y, p)
    iou.update_state(y, p)
    expected = pixel_scores(y.astype(bool), p)
    assert float(value(f1.result())) == pytest.approx(expected["f1"], rel=1e-6)
    assert float(value(iou.result())) == pytest.approx(expected["iou"], rel=1e-6)


def test_metric_validation_and_serialisation() -> None:
    with pytest.raises(ValueError):
        PixelF1(average="macro")
    with pytest.raises(ValueError):
        PixelIoU(threshold=1.0)
    with pytest.raises(ValueError):
        PixelF1().update_state(Y2, P2, sample_weight=np.ones(1))
    for metric in (PixelF1(threshold=0.3, average="per_image"), PixelIoU()):
        restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(metric))
        assert type(restored) is type(metric)
        assert (restored.threshold, restored.average, restored.name) == (metric.threshold, metric.average, metric.name)
