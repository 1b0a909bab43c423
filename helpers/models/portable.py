"""Saved mask models run with NumPy alone: ``analyze`` without TensorFlow (notebook 07, ``python -m helpers analyze``).

Importing TensorFlow takes about 11 s on a two-core laptop, longer than analysing a 12 MP photo with every
training-free detector, so ``analyze`` with the shipped forensic network would spend most of its time starting
Keras. A saved model is a zip of its architecture (``config.json``) and its weights (``model.weights.h5``); for
the layers the compact forensic network is made of (:mod:`helpers.models.forensic_net`) the computation is small
enough to run here, with BLAS matrix products:

* ``Conv2D`` and ``BayarConv2D`` (the kernel is saved already projected onto Bayar's constraint): "same" padding
  as TensorFlow pads (the extra row and column after, for stride 2), any stride and dilation, as one matrix
  product per kernel tap;
* ``BatchNormalization`` (inference: the moving statistics), ``Activation`` (relu, sigmoid, linear), ``Add``,
  ``Concatenate``;
* the network's own ``LocalAnomaly`` and ``SmoothUpsample``, whose "same" average pooling counts only the pixels
  inside the image (as TensorFlow's and JAX's pooling do), computed with OpenCV's box filter.

:class:`PortableModel` reads the archive and runs the functional graph in its saved order; any other layer
raises :class:`UnsupportedModel` when the model is loaded, and the caller falls back to Keras. A test checks
that it agrees with Keras on the shipped model and on a freshly built network to 1e-4.
"""

from __future__ import annotations

import functools
import io
import json
import os
import re
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import cv2
import h5py
import numpy as np

__all__ = ["PortableModel", "UnsupportedModel", "SUPPORTED_LAYERS", "WHOLE_IMAGE_DIVISOR", "WHOLE_IMAGE_MAX_SIDE",
           "FLIP_VIEWS", "flip_average", "predict_in_windows", "top_mean"]

WHOLE_IMAGE_DIVISOR = 32
"""Whole images are padded to a multiple of 32: every mask model here accepts it (the forensic network needs 4,
the U-Nets' five stride-2 stages 32)."""

WHOLE_IMAGE_MAX_SIDE = 2048
"""Above this side, whole-image prediction runs on overlapping windows of this side (bounded memory)."""


class UnsupportedModel(ValueError):
    """The saved model holds a layer (or a setting) this module does not compute."""


def top_mean(values: np.ndarray, fraction: float) -> float:
    """The mean of the top ``fraction`` of ``values``: a mask model's image score (at least one value)."""
    flat = np.asarray(values, dtype=np.float32).ravel()
    count = max(1, int(np.ceil(flat.size * fraction)))
    return float(np.partition(flat, flat.size - count)[flat.size - count:].mean())


def predict_in_windows(
    predict: Callable[[dict[str, np.ndarray], int, int], np.ndarray], values: Mapping[str, np.ndarray], *,
    max_side: int,
) -> np.ndarray:
    """A whole-image map from ``predict(streams, rows, cols)``: in one call when the image's sides are at most
    ``max_side``, else in overlapping windows of that side (a quarter overlap), averaged where they overlap, so
    memory stays bounded. Keras (:func:`helpers.inference.predict_whole`) and NumPy paths share it."""
    height, width = next(iter(values.values())).shape[:2]
    if max(height, width) <= max_side:
        return predict(dict(values), height, width)
    out = np.zeros((height, width), np.float32)
    weight = np.zeros((height, width), np.float32)
    step = max_side * 3 // 4
    tops = sorted({*range(0, max(1, height - max_side + 1), step), max(0, height - max_side)})
    lefts = sorted({*range(0, max(1, width - max_side + 1), step), max(0, width - max_side)})
    for top in tops:
        for left in lefts:
            bottom, right = min(height, top + max_side), min(width, left + max_side)
            window = {k: v[top:bottom, left:right] for k, v in values.items()}
            out[top:bottom, left:right] += predict(window, bottom - top, right - left)
            weight[top:bottom, left:right] += 1.0
    return out / np.maximum(weight, 1.0)


FLIP_VIEWS: dict[int, tuple[tuple[bool, bool], ...]] = {
    1: ((False, False),),
    2: ((False, False), (False, True)),
    4: ((False, False), (False, True), (True, False), (True, True)),
}
"""The mirror views a whole-image map may be averaged over (a mask model's ``flip_views``), as ``(top-bottom,
left-right)`` flips: 1, the image alone; 2, also its left-right mirror; 4, also the top-bottom and both mirrors."""


def flip_average(predict_map: Callable[[dict[str, np.ndarray]], np.ndarray], values: Mapping[str, np.ndarray],
                 views: int = 1) -> np.ndarray:
    """The mean of ``predict_map(streams)`` over ``views`` mirror images of the streams (:data:`FLIP_VIEWS`),
    each map flipped back: test-time augmentation for the whole-image mask models, Keras and NumPy alike.

    The streams are mirrored after they were computed, so every trace (the JPEG grid of ``dq`` included) stays
    where it was found; the network, which never saw a mirrored batch, reads the same evidence through filters
    that are not symmetric, and the views' errors partly cancel. Measured on a saved ``full`` forensic network
    (two CPU cores; mean pixel F1 at 0.5 with the matching branch, the network alone in brackets; validation:
    507 images, held-out: 450, fixtures: 81; the time is the held-out split's, matching included):

    =====  ===============  ===============  ===============  ===============
    views  validation       held-out         fixtures         held-out time
    =====  ===============  ===============  ===============  ===============
    1      0.462 (0.406)    0.447 (0.420)    0.466 (0.270)    98 s
    2      0.475 (0.419)    0.468 (0.429)    0.469 (0.273)    126 s
    4      0.491 (0.437)    0.470 (0.433)    0.491 (0.278)    198 s
    =====  ===============  ===============  ===============  ===============
    """
    if isinstance(views, bool) or not isinstance(views, (int, np.integer)) or int(views) not in FLIP_VIEWS:
        raise ValueError(f"views must be one of {sorted(FLIP_VIEWS)}, not {views!r}")
    total: np.ndarray | None = None
    for vertical, horizontal in FLIP_VIEWS[int(views)]:
        def mirror(array: np.ndarray, vertical: bool = vertical, horizontal: bool = horizontal) -> np.ndarray:
            return array[::-1 if vertical else 1, ::-1 if horizontal else 1]

        view = mirror(np.asarray(predict_map({name: mirror(value) for name, value in values.items()}), np.float32))
        total = view.copy() if total is None else total + view
    assert total is not None
    return total / np.float32(len(FLIP_VIEWS[int(views)]))


# ----------------------------------------------------------------------------------------------------------------
# Operations on one image, (H, W, C) float32
# ----------------------------------------------------------------------------------------------------------------
def _same_padding(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    """TensorFlow's "same" padding of one axis: the output has ceil(size / stride) positions, and an odd total
    pad puts the extra one after."""
    effective = (kernel - 1) * dilation + 1
    out = -(-size // stride)
    total = max(0, (out - 1) * stride + effective - size)
    return total // 2, total - total // 2


class Channels(list):
    """Arrays that a ``Concatenate`` layer joins along the channels, kept apart: a convolution reads each part
    with its slice of the kernel, so the joined array (hundreds of megabytes for a 2 MP image at the
    network's full-resolution stage) is never written. Any other layer joins them first (:func:`_joined`)."""


def _joined(x: np.ndarray | Channels) -> np.ndarray:
    return np.concatenate(list(x), axis=-1) if isinstance(x, Channels) else x


def conv2d(x: np.ndarray | Channels, kernel: np.ndarray, bias: np.ndarray | None = None, *, stride: int = 1,
           dilation: int = 1) -> np.ndarray:
    """2-D convolution (cross-correlation, as Keras) with "same" padding.

    A convolution with few input and output channels (the trace front-ends: at most 64 filter pairs, stride 1)
    runs as OpenCV filters, one per pair. One with many input channels runs as one matrix product per kernel
    tap, straight on the strided view of the padded input (NumPy hands each row of the view to BLAS without
    copying it), accumulated into the output; one with few, as one product per band of output rows, the band's
    taps gathered side by side. ``x`` may be :class:`Channels`: each part is convolved with its slice of the kernel."""
    if isinstance(x, Channels):
        out: np.ndarray | None = None
        first = 0
        for part in x:
            step = conv2d(part, kernel[:, :, first : first + part.shape[-1]], stride=stride, dilation=dilation)
            first += part.shape[-1]
            out = step if out is None else np.add(out, step, out=out)
        assert out is not None
        return out + bias if bias is not None else out
    height, width, channels = x.shape
    k_rows, k_cols, _, filters = kernel.shape
    if stride == 1 and dilation == 1 and channels * filters <= 64 and k_rows % 2 and k_cols % 2:
        out = np.empty((height, width, filters), np.float32)
        planes = [np.ascontiguousarray(x[..., c]) for c in range(channels)]
        for f in range(filters):
            total = np.zeros((height, width), np.float32)
            for c, plane in enumerate(planes):
                total += cv2.filter2D(plane, cv2.CV_32F, np.ascontiguousarray(kernel[:, :, c, f]),
                                      borderType=cv2.BORDER_CONSTANT)
            out[..., f] = total
        return out + bias if bias is not None else out
    top, bottom = _same_padding(height, k_rows, stride, dilation)
    left, right = _same_padding(width, k_cols, stride, dilation)
    padded = np.pad(x, ((top, bottom), (left, right), (0, 0))) if top or bottom or left or right else x
    out_rows, out_cols = -(-height // stride), -(-width // stride)
    weights = np.ascontiguousarray(kernel, dtype=np.float32)
    if channels < 32:
        # Few channels: one product per tap would be a thin one; gather a band of rows' taps side by side.
        out = np.empty((out_rows, out_cols, filters), np.float32)
        flat = weights.reshape(-1, filters)
        band = max(1, (1 << 15) // max(1, out_cols))
        for first in range(0, out_rows, band):
            rows = min(band, out_rows - first)
            top = first * stride
            taps = [padded[top + i * dilation : top + i * dilation + (rows - 1) * stride + 1 : stride,
                           j * dilation : j * dilation + (out_cols - 1) * stride + 1 : stride]
                    for i in range(k_rows) for j in range(k_cols)]
            np.matmul(np.concatenate(taps, axis=-1), flat, out=out[first : first + rows])
        return out + bias if bias is not None else out
    out = np.zeros((out_rows, out_cols, filters), np.float32)
    step_buffer = np.empty_like(out)
    for i in range(k_rows):
        for j in range(k_cols):
            r, c = i * dilation, j * dilation
            window = padded[r : r + (out_rows - 1) * stride + 1 : stride, c : c + (out_cols - 1) * stride + 1 : stride]
            np.matmul(window, weights[i, j], out=step_buffer)
            out += step_buffer
    return out + bias if bias is not None else out


def _box_sum(x: np.ndarray, window: int) -> np.ndarray:
    """Sum over a ``window`` x ``window`` neighbourhood with "same" padding by zeros: TensorFlow pads an even
    window's extra row and column after, so the window starts ``(window - 1) // 2`` before each pixel."""
    anchor = (window - 1) // 2
    summed = cv2.boxFilter(np.ascontiguousarray(x, dtype=np.float32), -1, (window, window), anchor=(anchor, anchor),
                           normalize=False, borderType=cv2.BORDER_CONSTANT)
    return summed.reshape(x.shape)  # OpenCV drops a single channel's axis


def average_pool_same(x: np.ndarray, window: int) -> np.ndarray:
    """Stride-1 average pooling with "same" padding, each mean over the pixels inside the image only."""
    counts = _box_sum(np.ones(x.shape[:2], np.float32), window)
    sums = _box_sum(x, window)
    return sums / (counts[..., None] if sums.ndim == 3 else counts)


def local_anomaly(x: np.ndarray, window: int, epsilon: float) -> Channels:
    """:class:`helpers.models.forensic_net.LocalAnomaly`: features, their global and their local Z-scores."""
    mean = x.mean(axis=(0, 1), keepdims=True, dtype=np.float64).astype(np.float32)
    var = np.square(x - mean).mean(axis=(0, 1), keepdims=True, dtype=np.float64).astype(np.float32)
    global_z = (x - mean) / np.sqrt(var + epsilon)
    local_mean = average_pool_same(x, window)
    local_var = average_pool_same(np.square(x - local_mean), window)
    local_z = (x - local_mean) / np.sqrt(local_var + epsilon)
    return Channels([x, global_z, local_z])


def smooth_upsample(x: np.ndarray, factor: int) -> np.ndarray:
    """:class:`helpers.models.forensic_net.SmoothUpsample`: repeat each value, then a moving average."""
    repeated = np.repeat(np.repeat(x, factor, axis=0), factor, axis=1)
    return average_pool_same(repeated, factor)


_ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "relu": lambda x: np.maximum(x, 0.0),
    "sigmoid": lambda x: (1.0 / (1.0 + np.exp(-x))).astype(np.float32),
    "linear": lambda x: x,
}


def _activation(name: Any) -> Callable[[np.ndarray], np.ndarray]:
    if not isinstance(name, str) or name not in _ACTIVATIONS:
        raise UnsupportedModel(f"activation {name!r} (supported: {', '.join(_ACTIVATIONS)})")
    return _ACTIVATIONS[name]


# ----------------------------------------------------------------------------------------------------------------
# Layers: config + weights -> a function of its inputs
# ----------------------------------------------------------------------------------------------------------------
def _conv_layer(config: Mapping[str, Any], weights: list[np.ndarray]) -> Callable[..., np.ndarray]:
    strides, dilation = tuple(config.get("strides", (1, 1))), tuple(config.get("dilation_rate", (1, 1)))
    one_by_one = tuple(config.get("kernel_size", (0, 0))) == (1, 1)  # "valid" and "same" agree for 1x1 kernels
    if (config.get("padding") != "same" and not one_by_one) or strides[0] != strides[1] or dilation[0] != dilation[1] \
            or config.get("groups", 1) != 1 or config.get("data_format", "channels_last") != "channels_last":
        raise UnsupportedModel(f"convolution {config.get('name')!r} with padding {config.get('padding')!r}, "
                               f"strides {strides}, dilation {dilation}")
    kernel = weights[0].astype(np.float32)
    bias = weights[1].astype(np.float32) if config.get("use_bias", True) and len(weights) > 1 else None
    act = _activation(config.get("activation", "linear"))
    return lambda x: act(conv2d(x, kernel, bias, stride=int(strides[0]), dilation=int(dilation[0])))


def _batch_norm_layer(config: Mapping[str, Any], weights: list[np.ndarray]) -> Callable[..., np.ndarray]:
    if config.get("axis", -1) not in (-1, 3, [3], [-1]):
        raise UnsupportedModel(f"batch normalisation over axis {config.get('axis')!r}")
    values = list(weights)
    gamma = values.pop(0) if config.get("scale", True) else None
    beta = values.pop(0) if config.get("center", True) else None
    mean, var = values[0], values[1]
    scale = (gamma if gamma is not None else 1.0) / np.sqrt(var + float(config.get("epsilon", 1e-3)))
    shift = (beta if beta is not None else 0.0) - mean * scale
    scale, shift = np.asarray(scale, np.float32), np.asarray(shift, np.float32)
    return lambda x: _joined(x) * scale + shift


def _concatenate_layer(config: Mapping[str, Any], weights: list[np.ndarray]) -> Callable[..., np.ndarray]:
    if config.get("axis", -1) not in (-1, 3):
        raise UnsupportedModel(f"concatenation along axis {config.get('axis')!r}")
    return lambda *xs: Channels(xs)


_BUILDERS: dict[str, Callable[[Mapping[str, Any], list[np.ndarray]], Callable[..., np.ndarray]]] = {
    "Conv2D": _conv_layer,
    "BayarConv2D": _conv_layer,  # saved already projected onto its constraint
    "BatchNormalization": _batch_norm_layer,
    "Activation": lambda config, _: (lambda x, act=_activation(config.get("activation")): act(_joined(x))),
    "Add": lambda config, _: (lambda *xs: functools.reduce(np.add, (_joined(x) for x in xs))),
    "Concatenate": _concatenate_layer,
    "LocalAnomaly": lambda config, _: (lambda x: local_anomaly(_joined(x), int(config["window"]),
                                                               float(config["epsilon"]))),
    "SmoothUpsample": lambda config, _: (lambda x: smooth_upsample(_joined(x), int(config["factor"]))),
}
SUPPORTED_LAYERS: tuple[str, ...] = ("InputLayer", *_BUILDERS)
"""Layer classes :class:`PortableModel` computes."""


def _weights_name(class_name: str, counts: dict[str, int]) -> str:
    """The group Keras saves a layer's weights under: its class in snake case, numbered by order of appearance."""
    snake = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", re.sub(r"\W+", "", class_name))  # Keras' to_snake_case
    snake = re.sub("([a-z])([A-Z])", r"\1_\2", snake).lower()
    index = counts.get(snake, 0)
    counts[snake] = index + 1
    return snake if index == 0 else f"{snake}_{index}"


@dataclass
class _Node:
    name: str
    function: Callable[..., np.ndarray] | None  # None: an input
    inputs: list[str]


class PortableModel:
    """A saved functional mask model (``.keras``), computed with NumPy on one image at a time.

    ``PortableModel.load(path)`` raises :class:`UnsupportedModel` for a layer outside :data:`SUPPORTED_LAYERS`,
    and ``OSError`` / ``KeyError`` / ``ValueError`` for an archive it cannot read. ``predict({stream: (H, W, C)})``
    returns the model's first output for that one image, ``(H, W, channels)`` float32.
    """

    def __init__(self, nodes: list[_Node], inputs: list[str], output: str) -> None:
        self.nodes, self.input_names, self.output = nodes, inputs, output

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> PortableModel:
        with zipfile.ZipFile(path) as archive:
            config = json.loads(archive.read("config.json"))
            weights_file = io.BytesIO(archive.read("model.weights.h5"))
        if config.get("class_name") not in ("Functional", "Model"):
            raise UnsupportedModel(f"{path}: a {config.get('class_name')} model, not a functional one")
        body = config["config"]
        counts: dict[str, int] = {}
        nodes: list[_Node] = []
        with h5py.File(weights_file, "r") as stored:
            groups = stored["layers"]
            for layer in body["layers"]:
                kind, settings = layer["class_name"], layer["config"]
                group_name = _weights_name(kind, counts)
                if kind == "InputLayer":
                    nodes.append(_Node(settings["name"], None, []))
                    continue
                if kind not in _BUILDERS:
                    raise UnsupportedModel(f"{path}: layer {settings.get('name')!r} is a {kind} (computed here: "
                                           f"{', '.join(SUPPORTED_LAYERS)})")
                group = groups[group_name]["vars"] if group_name in groups else {}
                weights = [np.asarray(group[key]) for key in sorted(group, key=int)]
                inbound = layer.get("inbound_nodes") or []
                if len(inbound) != 1:
                    raise UnsupportedModel(f"{path}: layer {settings.get('name')!r} is called {len(inbound)} times")
                nodes.append(_Node(settings["name"], _BUILDERS[kind](settings, weights), _inbound(inbound[0])))
        return cls(nodes, _layer_names(body["input_layers"]), _layer_names(body["output_layers"])[0])

    def predict(self, values: Mapping[str, np.ndarray]) -> np.ndarray:
        missing = [name for name in self.input_names if name not in values]
        if missing:
            raise KeyError(f"the model reads {', '.join(self.input_names)}; missing {', '.join(missing)}")
        computed: dict[str, np.ndarray] = {}
        for node in self.nodes:
            if node.function is None:
                computed[node.name] = np.asarray(values[node.name], np.float32)
            else:
                computed[node.name] = node.function(*(computed[name] for name in node.inputs))
        return _joined(computed[self.output])


def _layer_names(spec: Any) -> list[str]:
    """Layer names of a functional config's ``input_layers`` / ``output_layers``: ``[name, 0, 0]``, a list of
    those, or a dict of them (inputs named by a dict)."""
    if isinstance(spec, dict):
        return [entry[0] for entry in spec.values()]
    if spec and isinstance(spec[0], list):
        return [entry[0] for entry in spec]
    return [spec[0]]


def _inbound(node: Mapping[str, Any]) -> list[str]:
    """The names of the layers feeding one call, from a Keras 3 ``inbound_nodes`` entry."""
    names: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict) and value.get("class_name") == "__keras_tensor__":
            names.append(value["config"]["keras_history"][0])
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(node.get("args", []))
    return names
