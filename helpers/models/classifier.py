"""Image-level forgery classifiers in Keras 3: the seeds' two CNNs and a multi-stream model, binary or by kind.

Three families, all with *named* inputs that match :class:`helpers.pipeline.ForgeryBatches`' streams (``rgb``,
``ela``, ``srm``), so ``model.fit(ForgeryBatches(..., streams=input_streams(model)))`` works as it is:

* :func:`compact_ela_cnn` -- the midterm report's small CNN on ELA: two 5x5 convolutions, max-pooling,
  dropout, global pooling, a 256-unit dense layer. Cheap (tens of thousands of weights), and a fair test of
  "is ELA alone enough?";
* :func:`resnet50_ela` -- ResNet50 transfer learning on ELA with the seeds' dense head (256-128-64-32 with
  dropout). ImageNet weights when they can be had, otherwise a warning and random initialisation;
* :func:`multi_stream_classifier` -- any of the streams, each through its own small stem, fused by
  concatenation, then a backbone; optionally a Bayar constrained convolution or an AMTEN trace module in
  front of the RGB stream (:mod:`helpers.models.layers`).

Every builder takes ``classes``: ``1`` (default) gives one sigmoid output, P(tampered); a number ``K >= 2`` or
a sequence of class names gives a ``K``-way softmax, e.g. :data:`KIND_CLASSES` (authentic / splice /
copy-move / removal) -- the AMTENnet framing, which asks *what* was done, not only *whether*.
:class:`KindBatches` supplies those labels from the manifest's ``kind`` column.

Input scaling: every stream arrives as the one stream table scales it (:mod:`helpers.streams`: ``ela`` is the
raw difference / 16, ``srm`` about -1..1, ``noise`` a log ratio, ``dq`` and ``ghost`` already normalised), and
the models add only what their layers need: ``ela`` is clipped at 1 (16 grey levels, where real error levels
saturate), the same fixed scale for every image (a per-image "max" stretch, as the ResNet50 seed used, would
make error levels incomparable between images), and spread over 0..255 for ResNet50; ``rgb`` (0..1) goes to the
front layers on the 0..255 scale they expect. Besides ``rgb``, ``ela`` and ``srm`` the multi-stream model reads
the compression and noise traces (``noise``, ``dq``, ``ghost``), the cues that let notebook 06's forensic
network find edits.

Final activations are float32 so that the models train under a ``mixed_float16`` policy
(:func:`helpers.training.configure_precision`).
"""

from __future__ import annotations

import math
import os
import socket
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import keras
import numpy as np
import pandas as pd

from helpers.models.layers import AMTENModule, BayarConv2D
from helpers.pipeline import ForgeryBatches
from helpers.streams import STREAMS, stream_channels
from helpers.training import jit_compile_setting

__all__ = [
    "KIND_CLASSES",
    "STREAM_CHANNELS",
    "ELA_INPUT_GAIN",
    "BN_MOMENTUM",
    "BACKBONES",
    "WeightsFallbackWarning",
    "kind_labels",
    "KindBatches",
    "compile_classifier",
    "compact_ela_cnn",
    "resnet50_ela",
    "imagenet_weights_available",
    "multi_stream_classifier",
    "input_streams",
    "batches_for",
]

KIND_CLASSES: tuple[str, ...] = ("authentic", "splice", "copy-move", "removal")
"""Class names of the multi-class variant, in output order; index 0 is authentic."""

STREAM_CHANNELS: dict[str, int] = stream_channels(tuple(STREAMS))
"""Channels of each stream as batches yield it (``srm`` with the default ``zhou3`` bank): the stream table's."""

ELA_INPUT_GAIN: float = 1.0
"""Gain on the ``ela`` stream (raw difference / 16) before clipping at 1: error levels up to 16 grey levels
span 0..1, the range where re-saved and untouched regions differ (larger ones are edges in any image)."""

BACKBONES: tuple[str, ...] = ("compact", "resnet50", "resnet101", "mobilenetv2")
"""Backbones :func:`multi_stream_classifier` accepts (the keras.applications ones without pretrained weights)."""

BN_MOMENTUM: float = 0.9
"""Momentum of the batch-normalisation layers trained here (Keras' default is 0.99).

Why lower: at 0.99 the moving statistics that evaluation uses take several hundred steps to leave their initial
values (mean 0, variance 1); a short run (the smoke profile trains for ~50 steps) then trains well and
evaluates with the wrong normalisation. 0.9 settles within a few dozen steps."""


# ImageNet channel means of Keras' "caffe" preprocessing (BGR order there; listed here in RGB order).
_CAFFE_MEANS_RGB = (123.68, 116.779, 103.939)
_KIND_ALIASES = {
    "authentic": "authentic", "au": "authentic", "original": "authentic", "pristine": "authentic",
    "splice": "splice", "splicing": "splice", "spliced": "splice", "sp": "splice",
    "copy-move": "copy-move", "copymove": "copy-move", "cm": "copy-move", "copy": "copy-move",
    "removal": "removal", "removed": "removal", "inpainting": "removal", "inpaint": "removal",
}
_WEIGHTS_HOST = ("storage.googleapis.com", 443)


class WeightsFallbackWarning(UserWarning):
    """Pretrained weights were asked for but could not be had; the model starts from random weights."""


# --------------------------------------------------------------------------------------------------------------
# Labels by kind
# --------------------------------------------------------------------------------------------------------------
def _canonical_kind(kind: Any) -> str:
    text = str(kind).strip().lower().replace("_", "-").replace(" ", "-")
    return _KIND_ALIASES.get(text, _KIND_ALIASES.get(text.replace("-", ""), text))


def kind_labels(
    manifest: pd.DataFrame,
    classes: Sequence[str] = KIND_CLASSES,
    *,
    unknown: Literal["raise", "ignore"] = "raise",
) -> np.ndarray:
    """Class indices into ``classes`` from a manifest's ``label`` and ``kind`` columns (``int64``, one per row).

    Authentic rows (``label`` 0) are class 0 whatever their kind says. A tampered row's kind is matched after
    normalising case and separators and common spellings (``splicing``, ``copy_move``, ``inpainting``...). A
    tampered row whose kind is not a class (CASIA's ``splice/cm``, a demo set's ``demo``) raises ``ValueError``,
    or gives ``-1`` with ``unknown="ignore"`` so the caller can drop it; so does a tampered row of kind
    ``authentic``, which is a contradiction in the manifest.
    """
    names = [_canonical_kind(c) for c in classes]
    if not names or names[0] != "authentic":
        raise ValueError(f"the first class must be 'authentic', got {list(classes)}")
    if "kind" not in manifest.columns and (np.asarray(manifest["label"]) == 1).any():
        raise ValueError("the manifest has no 'kind' column: tampered rows cannot be given a class")
    kinds = manifest["kind"] if "kind" in manifest.columns else pd.Series([""] * len(manifest))
    out = np.zeros(len(manifest), dtype=np.int64)
    bad: list[str] = []
    for i, (label, kind) in enumerate(zip(np.asarray(manifest["label"]), kinds)):
        if int(label) == 0:
            continue
        canonical = _canonical_kind(kind)
        index = names.index(canonical) if canonical in names[1:] else -1
        out[i] = index
        if index < 0:
            bad.append(str(kind))
    if bad and unknown == "raise":
        shown = sorted(set(bad))[:5]
        raise ValueError(f"{len(bad)} tampered rows have kinds outside {list(classes)[1:]}: {shown}; "
                         "pass unknown='ignore' to mark them -1 and drop them")
    return out


class KindBatches(keras.utils.PyDataset):
    """:class:`~helpers.pipeline.ForgeryBatches` with class indices of :func:`kind_labels` as targets.

    Why a wrapper: ``ForgeryBatches`` yields binary labels. This dataset draws single items from one
    (``batch_size=1, shuffle=False``: item ``i`` is manifest row ``i``), shuffles and batches them itself with
    the same rule (``default_rng([seed, epoch])``), and maps each item's label: a tampered crop gets its row's
    kind class; a crop that the binary pipeline labelled authentic -- an authentic image, or a tampered one whose
    crop misses the edit (``crop_labels``) -- gets class 0. Items, augmentations and order depend only on
    ``(seed, epoch, index)``, as in ``ForgeryBatches``. Rows whose kind is not a class are dropped (with their
    count in :attr:`dropped`). ``batch_kwargs`` go to ``ForgeryBatches`` (``streams``, ``size``, ``augment``...).
    """

    def __init__(
        self,
        manifest: pd.DataFrame,
        *,
        classes: Sequence[str] = KIND_CLASSES,
        batch_size: int = 8,
        shuffle: bool = True,
        seed: int = 0,
        workers: int = 1,
        use_multiprocessing: bool = False,
        max_queue_size: int = 10,
        **batch_kwargs: Any,
    ) -> None:
        super().__init__(workers=workers, use_multiprocessing=use_multiprocessing, max_queue_size=max_queue_size)
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, not {batch_size}")
        kinds = kind_labels(manifest, classes, unknown="ignore")
        keep = kinds >= 0
        self.dropped = int((~keep).sum())
        """Rows left out because their kind is not one of ``classes``."""
        self.classes: tuple[str, ...] = tuple(classes)
        self.manifest = manifest.loc[keep].reset_index(drop=True)
        self.kinds = kinds[keep]
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.seed = int(seed)
        self.items = ForgeryBatches(self.manifest, task="classify", batch_size=1, shuffle=False, seed=seed,
                                    **batch_kwargs)
        self.streams = self.items.streams
        self.epoch = 0
        self._order = self._epoch_order(0)

    def __len__(self) -> int:
        return math.ceil(len(self.kinds) / self.batch_size)

    def __getitem__(self, index: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
        if not 0 <= index < len(self):
            raise IndexError(f"batch {index} out of range for {len(self)} batches")
        rows = self._order[index * self.batch_size : (index + 1) * self.batch_size]
        parts = [self.items[int(row)] for row in rows]
        x = {stream: np.concatenate([part[0][stream] for part in parts]) for stream in self.streams}
        tampered = np.concatenate([part[1] for part in parts]) > 0.5
        return x, np.where(tampered, self.kinds[rows], 0).astype(np.int64)

    def on_epoch_end(self) -> None:
        """Next epoch: new order (when shuffling) and new augmentations (see ``ForgeryBatches.on_epoch_end``)."""
        self.set_epoch(self.epoch + 1)

    def set_epoch(self, epoch: int) -> None:
        """Jump to ``epoch``, for this dataset and the items it draws."""
        self.epoch = int(epoch)
        self.items.set_epoch(self.epoch)
        self._order = self._epoch_order(self.epoch)

    @property
    def input_shapes(self) -> dict[str, tuple[int, int, int]]:
        return self.items.input_shapes

    def _epoch_order(self, epoch: int) -> np.ndarray:
        if not self.shuffle:
            return np.arange(len(self.kinds))
        return np.random.default_rng([self.seed, epoch]).permutation(len(self.kinds))


# --------------------------------------------------------------------------------------------------------------
# Building blocks
# --------------------------------------------------------------------------------------------------------------
def _class_count(classes: int | Sequence[str]) -> int:
    count = int(classes) if isinstance(classes, (int, np.integer)) else len(tuple(classes))
    if count < 1:
        raise ValueError(f"classes must be 1 (binary) or at least 2, not {classes!r}")
    return count


def _head_output(x: Any, classes: int | Sequence[str]) -> Any:
    """One sigmoid unit (P(tampered)) or a K-way softmax, computed in float32 (mixed precision)."""
    count = _class_count(classes)
    units, activation = (1, "sigmoid") if count == 1 else (count, "softmax")
    x = keras.layers.Dense(units, name="logits")(x)
    return keras.layers.Activation(activation, dtype="float32", name="probability")(x)


def _stream_input(stream: str, input_size: int, channels: int | None = None) -> keras.KerasTensor:
    if stream not in STREAM_CHANNELS:
        raise ValueError(f"unknown stream {stream!r}; choose from {tuple(STREAM_CHANNELS)}")
    return keras.Input(shape=(input_size, input_size, channels or STREAM_CHANNELS[stream]), name=stream)


def _ela_unit_range(x: Any, name: str) -> Any:
    """The ``ela`` stream -> fixed gain -> clipped to 0..1 (see the module docstring)."""
    x = keras.layers.Rescaling(ELA_INPUT_GAIN, name=f"{name}_gain")(x)
    return keras.layers.ReLU(max_value=1.0, name=f"{name}_clip")(x)


def compile_classifier(
    model: keras.Model,
    *,
    classes: int | Sequence[str] = 1,
    learning_rate: float = 1e-3,
    jit_compile: bool | str | None = None,
) -> keras.Model:
    """Compile with Adam and the loss and metrics the workbook reports, and return the model.

    Binary: binary cross-entropy, accuracy and ROC-AUC (``val_auc`` can drive early stopping). Multi-class:
    sparse categorical cross-entropy (targets are class indices) and accuracy; per-class scores come from
    :func:`helpers.metrics.multiclass_metrics` after prediction. ``jit_compile=None`` asks
    :func:`helpers.training.jit_compile_setting`.
    """
    if _class_count(classes) == 1:
        loss: Any = keras.losses.BinaryCrossentropy()
        metrics: list[Any] = [keras.metrics.BinaryAccuracy(name="accuracy"), keras.metrics.AUC(name="auc")]
    else:
        loss = keras.losses.SparseCategoricalCrossentropy()
        metrics = [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
        loss=loss,
        metrics=metrics,
        jit_compile=jit_compile_setting() if jit_compile is None else jit_compile,
    )
    return model


# --------------------------------------------------------------------------------------------------------------
# The midterm CNN
# --------------------------------------------------------------------------------------------------------------
def compact_ela_cnn(
    input_size: int = 128,
    *,
    classes: int | Sequence[str] = 1,
    filters: int = 32,
    kernel_size: int = 5,
    dense: int = 256,
    dropout: tuple[float, float] = (0.25, 0.5),
    pool_size: int = 2,
    learning_rate: float = 1e-4,
    compile: bool = True,
    name: str = "compact_ela_cnn",
) -> keras.Model:
    """The midterm report's CNN on ELA, compact: Conv(32,5)-Conv(32,5)-MaxPool-Dropout-GlobalPool-Dense(256)-out.

    Input ``ela`` of ``input_size`` x ``input_size`` (the seed resized to 128x128; here a crop at native
    resolution of that size). The seed flattened the pooled map into the dense layer: about 30 M weights at
    128 px (a 118 MB model, 354 MB with Adam's state), nearly all in that one layer, growing with the square of
    the crop, and quick to overfit small sets. Here the map is pooled globally instead, by average *and* by
    maximum (the mean error level says how much of the crop looks re-saved, the maximum whether any spot does),
    so the dense layer sees ``2 * filters`` numbers: about 45 k weights at any input size, a file of about
    230 kB. Compiled (:func:`compile_classifier`) unless ``compile`` is false; the default learning rate is
    the seed's order of magnitude for this head.
    """
    if input_size < 2 * kernel_size + 2:
        raise ValueError(f"input_size {input_size} is too small for two {kernel_size}x{kernel_size} convolutions")
    inputs = _stream_input("ela", input_size)
    x = _ela_unit_range(inputs, "ela")
    x = keras.layers.Conv2D(filters, kernel_size, activation="relu", name="conv1")(x)
    x = keras.layers.Conv2D(filters, kernel_size, activation="relu", name="conv2")(x)
    x = keras.layers.MaxPooling2D(int(pool_size), name="pool")(x)
    x = keras.layers.Dropout(dropout[0], name="dropout1")(x)
    x = keras.layers.Concatenate(name="global_pool")([
        keras.layers.GlobalAveragePooling2D(name="global_average")(x),
        keras.layers.GlobalMaxPooling2D(name="global_max")(x),
    ])
    x = keras.layers.Dense(dense, activation="relu", name="dense")(x)
    x = keras.layers.Dropout(dropout[1], name="dropout2")(x)
    model = keras.Model({"ela": inputs}, _head_output(x, classes), name=name)
    return compile_classifier(model, classes=classes, learning_rate=learning_rate) if compile else model


# --------------------------------------------------------------------------------------------------------------
# ResNet50 transfer on ELA
# --------------------------------------------------------------------------------------------------------------
def _keras_cache_file(file_name: str) -> Path:
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return Path(home) / "models" / file_name


def imagenet_weights_available(model: str = "resnet50", *, timeout: float = 3.0) -> bool:
    """Whether Keras can load ImageNet weights for ``model`` now: cached already, or their host answers.

    Why check first: ``keras.utils.get_file`` retries a missing network for a long time before failing, and a
    notebook (or a test) without internet should fall back in seconds. Only a TCP connection to the weights'
    host is tried, within ``timeout`` seconds; nothing is downloaded here.
    """
    if _keras_cache_file(f"{model}_weights_tf_dim_ordering_tf_kernels_notop.h5").is_file():
        return True
    try:
        with socket.create_connection(_WEIGHTS_HOST, timeout=timeout):
            return True
    except OSError:
        return False


def _set_bn_momentum(model: keras.Model) -> None:
    """Give a randomly initialised keras.applications backbone :data:`BN_MOMENTUM` (before compiling)."""
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = BN_MOMENTUM


def resnet50_ela(
    input_size: int = 224,
    *,
    weights: Literal["imagenet"] | None = "imagenet",
    classes: int | Sequence[str] = 1,
    head: Sequence[int] = (256, 128, 64, 32),
    dropout: float = 0.3,
    freeze_backbone: bool | None = None,
    learning_rate: float | None = None,
    compile: bool = True,
    name: str = "resnet50_ela",
) -> keras.Model:
    """ResNet50 on ELA with the seeds' dense head (``head`` units, ReLU, ``dropout`` after each).

    ``weights="imagenet"`` loads ImageNet weights when they are cached or downloadable
    (:func:`imagenet_weights_available`); otherwise, or when loading fails, it warns
    (:class:`WeightsFallbackWarning`) and starts from random weights, so a notebook without internet still
    runs. The backbone layer is named ``resnet50_imagenet`` or ``resnet50_scratch`` accordingly, which
    survives saving. ELA is scaled by the fixed gain to 0..255 and centred with ImageNet's channel means
    (Keras' "caffe" preprocessing, without its RGB->BGR flip: ELA's channels are nearly equal).

    ``freeze_backbone=None`` freezes pretrained weights (transfer learning: only the head learns, and batch
    normalisation stays in inference mode) and trains a randomly initialised backbone (with
    :data:`BN_MOMENTUM`). ``learning_rate=None``:
    1e-3 for a frozen backbone, 1e-4 when the whole network learns.
    """
    if weights not in ("imagenet", None):
        raise ValueError(f"weights must be 'imagenet' or None, not {weights!r}")
    if weights == "imagenet" and not imagenet_weights_available("resnet50"):
        warnings.warn("ImageNet weights for ResNet50 are neither cached nor downloadable (no network?): "
                      "building it with random weights (weights=None)", WeightsFallbackWarning, stacklevel=2)
        weights = None
    shape = (input_size, input_size, 3)
    try:
        backbone = keras.applications.ResNet50(include_top=False, weights=weights, input_shape=shape, pooling="avg",
                                               name="resnet50_imagenet" if weights else "resnet50_scratch")
    except Exception as error:  # noqa: BLE001 - any download or file failure means the same: no weights
        if weights is None:
            raise
        warnings.warn(f"could not load ImageNet weights for ResNet50 ({type(error).__name__}: {error}); "
                      "building it with random weights (weights=None)", WeightsFallbackWarning, stacklevel=2)
        weights = None
        backbone = keras.applications.ResNet50(include_top=False, weights=None, input_shape=shape, pooling="avg",
                                               name="resnet50_scratch")
    pretrained = weights == "imagenet"
    frozen = pretrained if freeze_backbone is None else bool(freeze_backbone)
    backbone.trainable = not frozen
    if not pretrained:
        _set_bn_momentum(backbone)

    inputs = _stream_input("ela", input_size)
    x = keras.layers.Rescaling(ELA_INPUT_GAIN * 255.0, name="ela_gain")(inputs)
    x = keras.layers.ReLU(max_value=255.0, name="ela_clip")(x)
    x = keras.layers.Rescaling(1.0, offset=[-m for m in _CAFFE_MEANS_RGB], name="imagenet_centre")(x)
    x = backbone(x, training=False) if frozen else backbone(x)
    for i, units in enumerate(head):
        x = keras.layers.Dense(int(units), activation="relu", name=f"head_dense{i + 1}")(x)
        x = keras.layers.Dropout(dropout, name=f"head_dropout{i + 1}")(x)
    model = keras.Model({"ela": inputs}, _head_output(x, classes), name=name)
    if not compile:
        return model
    rate = learning_rate if learning_rate is not None else (1e-3 if frozen else 1e-4)
    return compile_classifier(model, classes=classes, learning_rate=rate)


# --------------------------------------------------------------------------------------------------------------
# Multi-stream
# --------------------------------------------------------------------------------------------------------------
def _conv_bn(x: Any, filters: int, name: str, strides: int = 1) -> Any:
    x = keras.layers.Conv2D(filters, 3, strides=strides, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = keras.layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_bn")(x)
    return keras.layers.ReLU(name=f"{name}_relu")(x)


def _normalised_stream(stream: str, x: Any, front: str | None) -> Any:
    if stream == "ela":
        return _ela_unit_range(x, "ela")
    if stream == "srm":
        return keras.layers.Rescaling(1.0, name="srm_unit")(x)  # the stream table already scales it to about -1..1
    if front is None:
        return x
    x = keras.layers.Rescaling(255.0, name="rgb_255")(x)  # the forensic layers work on the 0..255 scale
    if front == "bayar":
        x = BayarConv2D(3, 5, name="bayar")(x)
    else:
        x = AMTENModule(filters=16, kernel_size=3, depth=2, name="amten")(x)
    # Prediction errors on the 0..255 scale span tens of grey levels: normalise before the stem.
    return keras.layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{front}_bn")(x)


def _compact_backbone(x: Any, widths: Sequence[int]) -> Any:
    for i, width in enumerate(widths):
        x = _conv_bn(x, width, f"block{i + 1}a")
        x = _conv_bn(x, width, f"block{i + 1}b")
        x = keras.layers.MaxPooling2D(2, name=f"block{i + 1}_pool")(x)
    return keras.layers.GlobalAveragePooling2D(name="gap")(x)


def multi_stream_classifier(
    streams: Sequence[str] = ("rgb", "ela", "srm"),
    *,
    input_size: int = 128,
    backbone: str = "compact",
    front: Literal["bayar", "amten"] | None = None,
    classes: int | Sequence[str] = 1,
    stem_filters: int = 16,
    widths: Sequence[int] = (32, 64, 128),
    dense: int = 128,
    dropout: float = 0.3,
    srm_channels: int = 3,
    learning_rate: float = 1e-3,
    compile: bool = True,
    name: str = "multi_stream",
) -> keras.Model:
    """Several streams, each through its own stem, fused, then one backbone and a small head.

    Each stream is scaled (module docstring) and passes its own stem (two 3x3 conv-BN-ReLU, the second with
    stride 2, ``stem_filters`` channels), so image content, error levels and noise residuals are first read by
    filters of their own; the stems' outputs are concatenated along the channels. ``front`` puts a learned
    forensic layer before the RGB stem: ``"bayar"`` (:class:`~helpers.models.layers.BayarConv2D`, a constrained
    prediction-error filter) or ``"amten"`` (:class:`~helpers.models.layers.AMTENModule`, AMTENnet's trace
    extractor). ``backbone``: ``"compact"`` (conv-BN-ReLU blocks of ``widths`` with max-pooling, then global
    average pooling) or one of Keras' ``resnet50``, ``resnet101``, ``mobilenetv2`` with random weights -- the
    fused features are not photographs, so ImageNet weights would not fit them. ``srm_channels`` is 30 for
    ``ForgeryBatches(srm_bank="full30")``.
    """
    streams = tuple(streams)
    if not streams or len(set(streams)) != len(streams):
        raise ValueError(f"streams must be distinct names from {tuple(STREAM_CHANNELS)}, not {streams!r}")
    if front not in (None, "bayar", "amten"):
        raise ValueError(f"front must be None, 'bayar' or 'amten', not {front!r}")
    if front is not None and "rgb" not in streams:
        raise ValueError(f"front={front!r} works on the rgb stream, which is not among {streams}")
    if backbone not in BACKBONES:
        raise ValueError(f"backbone must be one of {BACKBONES}, not {backbone!r}")
    inputs = {s: _stream_input(s, input_size, srm_channels if s == "srm" else None) for s in streams}
    branches = []
    for stream in streams:
        x = _normalised_stream(stream, inputs[stream], front if stream == "rgb" else None)
        x = _conv_bn(x, stem_filters, f"{stream}_stem1")
        branches.append(_conv_bn(x, stem_filters * 2, f"{stream}_stem2", strides=2))
    x = branches[0] if len(branches) == 1 else keras.layers.Concatenate(name="fuse")(branches)
    if backbone == "compact":
        x = _compact_backbone(x, widths)
    else:
        factory = {"resnet50": keras.applications.ResNet50, "resnet101": keras.applications.ResNet101,
                   "mobilenetv2": keras.applications.MobileNetV2}[backbone]
        net = factory(include_top=False, weights=None, input_shape=tuple(x.shape[1:]), pooling="avg",
                      name=f"{backbone}_scratch")
        _set_bn_momentum(net)
        x = net(x)
    x = keras.layers.Dropout(dropout, name="head_dropout1")(x)
    x = keras.layers.Dense(dense, activation="relu", name="head_dense")(x)
    x = keras.layers.Dropout(dropout, name="head_dropout2")(x)
    model = keras.Model(inputs, _head_output(x, classes), name=name)
    return compile_classifier(model, classes=classes, learning_rate=learning_rate) if compile else model


# --------------------------------------------------------------------------------------------------------------
# Feeding a model its streams (saving: helpers.models.artifact)
# --------------------------------------------------------------------------------------------------------------
def input_streams(model: keras.Model) -> tuple[str, ...]:
    """The stream names a model reads, in its input order: pass them to ``ForgeryBatches(streams=...)``."""
    return tuple(str(name) for name in model.input_names) if hasattr(model, "input_names") else tuple(
        t.name.split(":")[0] for t in keras.tree.flatten(model.inputs)
    )


def batches_for(
    model: keras.Model,
    frames: Mapping[str, pd.DataFrame],
    *,
    size: int,
    batch_size: int,
    seed: int = 0,
    classes: Sequence[str] = KIND_CLASSES,
    **batch_kwargs: Any,
) -> dict[str, keras.utils.PyDataset]:
    """One dataset per manifest frame, fed the way ``model`` reads: its streams, its kind of labels.

    ``frames["train"]`` (when present) is augmented and shuffled; every other frame (``val``, ``test``,
    ``fixtures``...) is a central crop in manifest order (``augment=False, shuffle=False``), as evaluation
    needs. A softmax model gets :class:`KindBatches` (targets: kind classes) for ``train``, ``val`` and every
    frame whose kinds are all known, and binary :class:`~helpers.pipeline.ForgeryBatches` for the others (real
    datasets say ``splice/cm``): score those with ``1 - P(authentic)``. ``classes`` names a softmax model's
    outputs. ``batch_kwargs`` go to both.
    """
    streams = input_streams(model)
    outputs = int(model.output_shape[-1])
    multiclass = outputs > 1
    if multiclass and outputs != len(classes):
        raise ValueError(f"the model has {outputs} outputs but {len(classes)} classes were named: {list(classes)}")
    out: dict[str, keras.utils.PyDataset] = {}
    for name, frame in frames.items():
        training = name == "train"
        options = dict(streams=streams, size=size, batch_size=batch_size, seed=seed, augment=training,
                       shuffle=training, **batch_kwargs)
        known = multiclass and bool((kind_labels(frame, classes, unknown="ignore") >= 0).all())
        if multiclass and (known or name in ("train", "val")):
            out[name] = KindBatches(frame, classes=classes, **options)
        else:
            out[name] = ForgeryBatches(frame, task="classify", **options)
    return out
