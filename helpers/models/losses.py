"""Losses for mask models in ``keras.ops``: BCE, Dice, BCE + Dice and focal loss (any Keras backend).

Why more than binary cross-entropy. Tampered pixels are a minority (a few percent of an image; none in an
authentic one), so per-pixel BCE is dominated by the easy authentic background and a model can score well by
predicting "authentic" everywhere. **Dice** measures overlap of the predicted and true regions, so it does not
care how large the background is; on its own its gradients are noisy when the region is small, which is why the
seeds' best runs used **BCE + Dice**. **Focal loss** (Lin et al., 2017) down-weights pixels the model already
gets right, ``(1 - p_t)^gamma``, to the same end.

Conventions: ``y_true`` and ``y_pred`` are ``(B, H, W, 1)`` (any shape with a batch axis first works),
``y_pred`` a probability (the models end in a sigmoid). Every loss returns one value per image (the mean or
overlap over that image's pixels) and Keras averages them over the batch. Computation is in float32 whatever
the inputs (mixed precision), and probabilities are clipped to ``[epsilon, 1 - epsilon]`` before any logarithm.
Dice is computed per image with additive smoothing ``smooth``: an authentic image predicted empty scores a loss
of 0, not 0/0.

Every class is registered with ``keras.saving.register_keras_serializable(package="forgery_workbook")``, so a
model compiled with it reloads from a ``.keras`` file.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

__all__ = [
    "binary_crossentropy",
    "dice_loss",
    "focal_loss",
    "BCELoss",
    "DiceLoss",
    "BCEDiceLoss",
    "FocalLoss",
    "LOSSES",
    "get_loss",
]

_PACKAGE = "forgery_workbook"
EPSILON = 1e-7


def _prepare(y_true: Any, y_pred: Any) -> tuple[Any, Any, list[int]]:
    y_true = ops.cast(y_true, "float32")
    y_pred = ops.cast(y_pred, "float32")
    axes = list(range(1, len(y_pred.shape)))
    return y_true, y_pred, axes


def binary_crossentropy(y_true: Any, y_pred: Any, *, epsilon: float = EPSILON) -> Any:
    """Per-image mean of ``-(y log p + (1 - y) log(1 - p))``, with ``p`` clipped to ``[eps, 1 - eps]``."""
    y_true, y_pred, axes = _prepare(y_true, y_pred)
    p = ops.clip(y_pred, epsilon, 1.0 - epsilon)
    loss = -(y_true * ops.log(p) + (1.0 - y_true) * ops.log(1.0 - p))
    return ops.mean(loss, axis=axes)


def dice_loss(y_true: Any, y_pred: Any, *, smooth: float = 1.0) -> Any:
    """Per-image soft Dice loss ``1 - (2 sum(y p) + s) / (sum(y) + sum(p) + s)``.

    Soft: uses the probabilities, not thresholded masks, so it has a gradient. ``smooth`` (``s``) keeps empty
    masks defined (empty truth and empty prediction: loss 0) and damps the loss of tiny regions.
    """
    y_true, y_pred, axes = _prepare(y_true, y_pred)
    intersection = ops.sum(y_true * y_pred, axis=axes)
    total = ops.sum(y_true, axis=axes) + ops.sum(y_pred, axis=axes)
    return 1.0 - (2.0 * intersection + smooth) / (total + smooth)


def focal_loss(
    y_true: Any, y_pred: Any, *, alpha: float | None = 0.25, gamma: float = 2.0, epsilon: float = EPSILON
) -> Any:
    """Per-image mean of the binary focal loss ``-alpha_t (1 - p_t)^gamma log(p_t)`` (Lin et al., 2017).

    ``p_t`` is the probability given to the true class; ``alpha_t = alpha`` for tampered pixels and
    ``1 - alpha`` for authentic ones (``alpha=None``: no class weighting). ``gamma=0, alpha=None`` is BCE.
    """
    y_true, y_pred, axes = _prepare(y_true, y_pred)
    p = ops.clip(y_pred, epsilon, 1.0 - epsilon)
    p_t = y_true * p + (1.0 - y_true) * (1.0 - p)
    loss = -ops.power(1.0 - p_t, gamma) * ops.log(p_t)
    if alpha is not None:
        loss = (y_true * alpha + (1.0 - y_true) * (1.0 - alpha)) * loss
    return ops.mean(loss, axis=axes)


class _MaskLoss(keras.losses.Loss):
    """Common ``__init__``/``get_config`` of the losses below (Keras averages the per-image values)."""

    _params: tuple[str, ...] = ()

    def __init__(self, name: str, reduction: str = "sum_over_batch_size", dtype: Any = None, **params: Any) -> None:
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        for key in self._params:
            setattr(self, key, params[key])

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({key: getattr(self, key) for key in self._params})
        return config


@keras.saving.register_keras_serializable(package=_PACKAGE)
class BCELoss(_MaskLoss):
    """Pixel-wise binary cross-entropy (:func:`binary_crossentropy`)."""

    _params = ("epsilon",)

    def __init__(self, epsilon: float = EPSILON, name: str = "bce", **kwargs: Any) -> None:
        super().__init__(name=name, epsilon=float(epsilon), **kwargs)

    def call(self, y_true: Any, y_pred: Any) -> Any:
        return binary_crossentropy(y_true, y_pred, epsilon=self.epsilon)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class DiceLoss(_MaskLoss):
    """Per-image soft Dice loss (:func:`dice_loss`)."""

    _params = ("smooth",)

    def __init__(self, smooth: float = 1.0, name: str = "dice", **kwargs: Any) -> None:
        super().__init__(name=name, smooth=float(smooth), **kwargs)

    def call(self, y_true: Any, y_pred: Any) -> Any:
        return dice_loss(y_true, y_pred, smooth=self.smooth)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class BCEDiceLoss(_MaskLoss):
    """``bce_weight * BCE + dice_weight * Dice``: BCE's stable per-pixel gradients, Dice's indifference to the
    size of the background."""

    _params = ("bce_weight", "dice_weight", "smooth", "epsilon")

    def __init__(
        self,
        bce_weight: float = 1.0,
        dice_weight: float = 1.0,
        smooth: float = 1.0,
        epsilon: float = EPSILON,
        name: str = "bce_dice",
        **kwargs: Any,
    ) -> None:
        super().__init__(
            name=name,
            bce_weight=float(bce_weight),
            dice_weight=float(dice_weight),
            smooth=float(smooth),
            epsilon=float(epsilon),
            **kwargs,
        )

    def call(self, y_true: Any, y_pred: Any) -> Any:
        return self.bce_weight * binary_crossentropy(y_true, y_pred, epsilon=self.epsilon) + (
            self.dice_weight * dice_loss(y_true, y_pred, smooth=self.smooth)
        )


@keras.saving.register_keras_serializable(package=_PACKAGE)
class FocalLoss(_MaskLoss):
    """Binary focal loss (:func:`focal_loss`)."""

    _params = ("alpha", "gamma", "epsilon")

    def __init__(
        self,
        alpha: float | None = 0.25,
        gamma: float = 2.0,
        epsilon: float = EPSILON,
        name: str = "focal",
        **kwargs: Any,
    ) -> None:
        super().__init__(
            name=name,
            alpha=None if alpha is None else float(alpha),
            gamma=float(gamma),
            epsilon=float(epsilon),
            **kwargs,
        )

    def call(self, y_true: Any, y_pred: Any) -> Any:
        return focal_loss(y_true, y_pred, alpha=self.alpha, gamma=self.gamma, epsilon=self.epsilon)


LOSSES: dict[str, type[_MaskLoss]] = {"bce": BCELoss, "dice": DiceLoss, "bce_dice": BCEDiceLoss, "focal": FocalLoss}
"""Loss classes by the names notebooks use as parameters."""


def get_loss(name: str, **kwargs: Any) -> keras.losses.Loss:
    """The loss called ``name`` (one of :data:`LOSSES`), built with ``kwargs``."""
    try:
        return LOSSES[name](**kwargs)
    except KeyError:
        raise ValueError(f"unknown loss {name!r}; choose one of {sorted(LOSSES)}") from None
