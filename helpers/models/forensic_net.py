"""A compact forensic network for the CPU: trace front-end, dilated context, anomaly head (notebook 06).

The seeds' U-Nets read RGB (and ELA) with encoders made for photographs, and on a laptop they learn content
before they learn traces. This network is built the other way round, after ManTraNet (Wu et al. 2019) and
MVSS-Net's noise branch:

1. **Trace front-end.** ``rgb`` goes through Bayar's constrained convolution (a learned prediction-error
   filter, :class:`~helpers.models.layers.BayarConv2D`), so the network sees residuals, not objects; every other
   stream (ELA, SRM, noise level, the JPEG ghost curve: :mod:`helpers.streams`) is already a trace and gets a
   plain 3x3 convolution.
2. **Context at a quarter of the resolution.** Two stride-2 convolutions bring the traces to the scale of JPEG
   blocks, where dilated residual blocks (dilations 1, 2, 4, 8) see about 250 pixels of context: enough to
   compare a region with its surroundings, and about 16 times cheaper than full resolution.
3. **Anomaly head.** ManTraNet's insight: a forgery is a region whose traces *differ from the rest of the
   image*, not a region that has some absolute trace value. :class:`LocalAnomaly` turns each feature into
   its deviation from the image's own statistics (a Z-score against the whole image and against a large local
   window), and a 1x1 head reads the deviations. Upsampling (bilinear, x4) gives a per-pixel probability.

About 0.1 M weights; fully convolutional (any size that is a multiple of 4; inference pads to it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import keras
from keras import layers, ops

from helpers.models.layers import BayarConv2D
from helpers.streams import stream_channels

__all__ = ["LocalAnomaly", "SmoothUpsample", "forensic_net", "FORENSIC_NET_DIVISOR"]

_PACKAGE = "forgery_workbook"
FORENSIC_NET_DIVISOR = 4
"""Input sides must be multiples of this (two stride-2 stages)."""


@keras.saving.register_keras_serializable(package=_PACKAGE)
class LocalAnomaly(layers.Layer):
    """Features -> ``[features, global Z-score, local Z-score]`` (ManTraNet's local anomaly idea).

    The global Z-score compares each position with the mean and spread of the whole input (per sample and
    channel); the local one with a ``window`` x ``window`` neighbourhood (average pooling, "same" padding).
    """

    def __init__(self, window: int = 15, epsilon: float = 1e-3, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.window = int(window)
        self.epsilon = float(epsilon)

    def call(self, x: Any) -> Any:
        mean = ops.mean(x, axis=(1, 2), keepdims=True)
        var = ops.mean(ops.square(x - mean), axis=(1, 2), keepdims=True)
        global_z = (x - mean) / ops.sqrt(var + self.epsilon)
        local_mean = ops.average_pool(x, self.window, strides=1, padding="same")
        local_var = ops.average_pool(ops.square(x - local_mean), self.window, strides=1, padding="same")
        local_z = (x - local_mean) / ops.sqrt(local_var + self.epsilon)
        return ops.concatenate([x, global_z, local_z], axis=-1)

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return (*input_shape[:-1], None if input_shape[-1] is None else 3 * input_shape[-1])

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "window": self.window, "epsilon": self.epsilon}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class SmoothUpsample(layers.Layer):
    """Upsample by an integer ``factor``: repeat each value, then a ``factor`` x ``factor`` moving average.

    Close to bilinear interpolation, and unlike ``UpSampling2D(interpolation="bilinear")`` it works on inputs
    of unknown size under every backend (TensorFlow's graph mode cannot resize to a symbolic size there).
    """

    def __init__(self, factor: int = 4, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.factor = int(factor)

    def call(self, x: Any) -> Any:
        x = ops.repeat(ops.repeat(x, self.factor, axis=1), self.factor, axis=2)
        return ops.average_pool(x, self.factor, strides=1, padding="same")

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        batch, height, width, channels = input_shape
        scale = lambda side: None if side is None else side * self.factor  # noqa: E731
        return (batch, scale(height), scale(width), channels)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "factor": self.factor}


def _conv(x: Any, filters: int, name: str, *, kernel: int = 3, strides: int = 1, dilation: int = 1) -> Any:
    x = layers.Conv2D(filters, kernel, strides=strides, dilation_rate=dilation, padding="same", use_bias=False,
                      name=f"{name}_conv")(x)
    x = layers.BatchNormalization(momentum=0.9, name=f"{name}_bn")(x)
    return layers.Activation("relu", name=f"{name}_relu")(x)


def forensic_net(
    streams: Sequence[str] = ("rgb", "ela", "srm", "noise", "ghost"),
    *,
    width: int = 48,
    dilations: Sequence[int] = (1, 2, 4, 8),
    front_filters: int = 8,
    anomaly_window: int = 15,
    name: str = "forensic_net",
) -> keras.Model:
    """Build the compact forensic network on the named ``streams`` (inputs named after them)."""
    channels: Mapping[str, int] = stream_channels(streams)
    inputs = {s: keras.Input(shape=(None, None, c), name=s) for s, c in channels.items()}
    fronts = []
    for stream, tensor in inputs.items():
        if stream == "rgb":
            # Bayar filters expect 0..255 values: the stream is 0..1, and the constraint makes them scale-free.
            front = BayarConv2D(front_filters, 5, name="rgb_bayar")(tensor)
            front = layers.BatchNormalization(momentum=0.9, name="rgb_bayar_bn")(front)
        else:
            front = layers.Conv2D(front_filters, 3, padding="same", name=f"{stream}_front")(tensor)
        fronts.append(front)
    x = layers.Concatenate(name="traces")(fronts) if len(fronts) > 1 else fronts[0]
    x = _conv(x, width // 2, "stem1", strides=2)
    x = _conv(x, width, "stem2", strides=2)
    for index, dilation in enumerate(dilations):
        shortcut = x
        y = _conv(x, width, f"context{index}a", dilation=dilation)
        y = layers.Conv2D(width, 3, padding="same", dilation_rate=dilation, use_bias=False,
                          name=f"context{index}b_conv")(y)
        y = layers.BatchNormalization(momentum=0.9, name=f"context{index}b_bn")(y)
        x = layers.Activation("relu", name=f"context{index}_out")(layers.Add(name=f"context{index}_add")([shortcut, y]))
    x = LocalAnomaly(anomaly_window, name="anomaly")(x)
    x = _conv(x, width, "head", kernel=1)
    x = layers.Conv2D(1, 1, name="logits")(x)
    x = SmoothUpsample(FORENSIC_NET_DIVISOR, name="upsample")(x)
    output = layers.Activation("sigmoid", dtype="float32", name="mask")(x)
    return keras.Model(inputs, output, name=name)
