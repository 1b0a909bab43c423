"""Forensic front-end layers for Keras 3: fixed SRM filters, Bayar's constrained convolution, an AMTEN module.

CNNs trained on RGB learn content (faces, objects) first and manipulation traces hardly at all. Each layer here
turns the image into a residual, the prediction error of a pixel from its neighbours, so the network that
follows sees noise and traces instead of content:

* :class:`SRMLayer` -- hand-designed, fixed rich-model filters (the same as :func:`helpers.forensics.srm`);
* :class:`BayarConv2D` -- a *learned* prediction-error filter, kept a prediction-error filter by
  :class:`BayarConstraint` after every optimizer step;
* :class:`AMTENModule` -- a learned predictor whose error is reused alongside deeper features.

Only ``keras`` and ``keras.ops`` are used (no TensorFlow calls), so the layers run on any Keras backend.
Every class is registered for ``.keras`` serialisation under the package name ``forgery_workbook``.
Inputs are channels-last images on the **0..255** scale.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops

from helpers.forensics.srm import DEFAULT_TRUNCATE, SRMBank, srm_kernels

__all__ = ["SRMLayer", "BayarConstraint", "BayarConv2D", "AMTENModule"]

_PACKAGE = "forgery_workbook"


@keras.saving.register_keras_serializable(package=_PACKAGE)
class SRMLayer(keras.layers.Layer):
    """Fixed SRM high-pass filters: ``(B, H, W, 3)`` in 0..255 -> ``(B, H, W, C)`` float32 residuals.

    Equal to :func:`helpers.forensics.srm` with the same ``bank`` and ``truncate`` (within 1e-6 for
    integer-valued input: integer kernels, reflect-101 padding, division by ``q`` afterwards, the same clipping;
    see that module for the conventions and sources). The layer has no weights: kernels are rebuilt from
    ``bank``, so a saved model cannot drift from the NumPy features.

    The layer computes in float32 whatever the global dtype policy: filter sums reach about 7e4, beyond
    float16's range, so under ``mixed_float16`` cast its output to float16 afterwards if you need to.
    """

    def __init__(self, bank: SRMBank = "zhou3", truncate: float | None = DEFAULT_TRUNCATE, **kwargs: Any) -> None:
        kwargs["dtype"] = kwargs.get("dtype") or "float32"
        kwargs["trainable"] = False
        super().__init__(**kwargs)
        kernels = srm_kernels(bank)  # validates bank
        if truncate is not None and not float(truncate) > 0:
            raise ValueError(f"truncate must be a positive number or None, not {truncate!r}")
        self.bank = bank
        self.truncate = None if truncate is None else float(truncate)
        self.channels = kernels.channels
        self._kernel = kernels.conv_kernel()
        self._divisors = kernels.divisors

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        if input_shape[-1] != 3:
            raise ValueError(f"SRMLayer expects 3 input channels (RGB, channels last), not {input_shape[-1]}")
        super().build(input_shape)

    def call(self, inputs: Any) -> Any:
        x = ops.cast(inputs, "float32")
        x = ops.pad(x, [[0, 0], [2, 2], [2, 2], [0, 0]], mode="reflect")
        # Constants are made inside call so that each traced graph owns its copy.
        kernel = ops.convert_to_tensor(self._kernel, dtype="float32")
        y = ops.conv(x, kernel, strides=1, padding="valid", data_format="channels_last")
        y = y / ops.convert_to_tensor(self._divisors, dtype="float32")
        if self.truncate is not None:
            y = ops.clip(y, -self.truncate, self.truncate)
        return y

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return (*tuple(input_shape)[:-1], self.channels)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({"bank": self.bank, "truncate": self.truncate})
        return config


@keras.saving.register_keras_serializable(package=_PACKAGE)
class BayarConstraint(keras.constraints.Constraint):
    """Bayar & Stamm's constraint: per (input, output) channel pair, centre weight -1, the others summing to 1.

    Such a filter computes ``(weighted mean of the neighbours) - (centre pixel)``: a prediction error, which
    cannot represent image content, so the convolution is forced to learn manipulation traces (Bayar & Stamm,
    "A Deep Learning Approach to Universal Image Manipulation Detection Using a New Convolutional Layer",
    IH&MMSec 2016; "Constrained convolutional neural networks", IEEE TIFS 2018). Keras applies a variable's
    constraint after every optimizer update, which is exactly the projection step of the paper.

    A pair whose off-centre weights sum to (almost) zero is divided by ``±epsilon`` instead, so that one
    degenerate filter cannot produce infinities.
    """

    def __init__(self, epsilon: float = 1e-7) -> None:
        self.epsilon = float(epsilon)

    def __call__(self, w: Any) -> Any:
        kh, kw = int(w.shape[0]), int(w.shape[1])
        centre = np.zeros((kh, kw, 1, 1), dtype="float32")
        centre[kh // 2, kw // 2] = 1.0
        centre_t = ops.cast(ops.convert_to_tensor(centre), w.dtype)
        off = w * (1.0 - centre_t)
        total = ops.sum(off, axis=(0, 1), keepdims=True)
        eps = ops.cast(self.epsilon, w.dtype)
        safe = ops.where(ops.abs(total) < eps, ops.where(total >= 0, eps, -eps), total)
        return off / safe - centre_t

    def get_config(self) -> dict[str, Any]:
        return {"epsilon": self.epsilon}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class BayarConv2D(keras.layers.Conv2D):
    """A ``Conv2D`` whose kernel always satisfies :class:`BayarConstraint` (odd kernel sizes only).

    Defaults follow Bayar & Stamm: 3 filters of 5x5, no bias; ``padding="same"`` (the paper used "valid") so
    the output keeps the image size for dense prediction. The kernel is projected once when built, so even an
    untrained layer computes prediction errors, and after every training step by the optimizer.

    The default initializer draws the weights from U(0, 1), so the first projection starts from a smoothing
    predictor (positive neighbour weights summing to 1). A zero-mean initializer (Keras' Glorot default) makes
    some off-centre sums nearly zero, and dividing by them blows those filters up to huge weights.
    """

    def __init__(
        self,
        filters: int = 3,
        kernel_size: int | tuple[int, int] = 5,
        *,
        padding: str = "same",
        use_bias: bool = False,
        epsilon: float = 1e-7,
        **kwargs: Any,
    ) -> None:
        kwargs.pop("kernel_constraint", None)  # fixed; present in configs saved by get_config's parent
        kwargs.setdefault("kernel_initializer", keras.initializers.RandomUniform(0.0, 1.0))
        super().__init__(
            filters,
            kernel_size,
            padding=padding,
            use_bias=use_bias,
            kernel_constraint=BayarConstraint(epsilon),
            **kwargs,
        )
        if any(size % 2 == 0 for size in self.kernel_size):
            raise ValueError(f"BayarConv2D needs odd kernel sizes (a centre tap), not {self.kernel_size}")
        self.epsilon = float(epsilon)

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        super().build(input_shape)
        self.kernel.assign(self.kernel_constraint(self.kernel))

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.pop("kernel_constraint", None)
        config["epsilon"] = self.epsilon
        return config


@keras.saving.register_keras_serializable(package=_PACKAGE)
class AMTENModule(keras.layers.Layer):
    """An AMTEN-style trace extractor: ``(B, H, W, C)`` -> ``(B, H, W, C + depth * filters)``.

    Our reading of AMTEN (Guo, Yang, Chen, Sun, "Fake face detection via adaptive manipulation traces
    extraction network", CVIU 2021): a first convolution with as many output channels as the input (3 for RGB),
    'same' padding and no bias learns to *predict* the image; the input minus that prediction is the
    manipulation-trace map ``T = x - conv(x)``. Unlike Bayar's layer nothing constrains the predictor: it adapts
    freely, and ``T`` is kept and reused. Then ``depth`` convolutions (``filters`` channels, ReLU, 'same')
    follow, each reading the concatenation of ``T`` and all earlier outputs (dense reuse, so the low-level traces
    reach every later layer undiluted); the module returns ``[T, f1, ..., f_depth]`` concatenated. The paper's
    own network continues with ordinary conv/pool blocks; those belong to the model, not to this module.
    """

    def __init__(self, filters: int = 16, kernel_size: int = 3, depth: int = 2, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if filters < 1 or depth < 0 or kernel_size < 1:
            raise ValueError(f"need filters >= 1, depth >= 0, kernel_size >= 1; got {filters}, {depth}, {kernel_size}")
        self.filters = int(filters)
        self.kernel_size = int(kernel_size)
        self.depth = int(depth)
        self.convs = [
            keras.layers.Conv2D(self.filters, self.kernel_size, padding="same", activation="relu", name=f"reuse_{i}")
            for i in range(self.depth)
        ]
        self.predictor: keras.layers.Conv2D | None = None

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        channels = int(input_shape[-1])
        self.predictor = keras.layers.Conv2D(
            channels, self.kernel_size, padding="same", use_bias=False, name="predictor"
        )
        self.predictor.build(input_shape)
        width = channels
        for conv in self.convs:
            conv.build((*tuple(input_shape)[:-1], width))
            width += self.filters
        super().build(input_shape)

    def call(self, inputs: Any) -> Any:
        assert self.predictor is not None
        traces = inputs - self.predictor(inputs)
        features = [traces]
        for conv in self.convs:
            features.append(conv(ops.concatenate(features, axis=-1) if len(features) > 1 else traces))
        return ops.concatenate(features, axis=-1) if len(features) > 1 else traces

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return (*tuple(input_shape)[:-1], int(input_shape[-1]) + self.depth * self.filters)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({"filters": self.filters, "kernel_size": self.kernel_size, "depth": self.depth})
        return config
