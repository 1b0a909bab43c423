"""Mask models: a dual-stream U-Net on segmentation-models backbones and a small U-Net from scratch.

Why localisation. A classifier says *whether* an image was edited; an investigator needs *where*. A mask model
predicts, for every pixel, the probability that it was tampered with, and its output can be read, checked
against the image and thresholded.

:func:`dual_stream_unet` follows the best mask model of the Medium seed: one U-Net per input stream (the image
and its error level analysis; SRM noise residuals as an optional third stream), each a segmentation-models
``Unet`` with its own encoder, their per-pixel outputs concatenated and fused by a 1x1 convolution with a
sigmoid (here fused as logits, which lets the streams learn: see :func:`dual_stream_unet`). Separate
encoders let each stream learn its own filters: ELA and noise residuals look nothing like
photographs, so sharing the image encoder's filters (or stacking all channels into one encoder, whose ImageNet
weights expect RGB) would waste them.

:func:`unet_scratch` is the seed notebook's baseline: a plain U-Net (16 base filters, batch normalisation,
dropout) on ELA alone, learnt from nothing. It is small and fast, and says how much the pretrained, multi-stream
model adds.

Both models are fully convolutional (inputs ``(None, None, C)`` unless ``input_size`` is given): trained on
crops, they predict tiles of any side that is a multiple of 32 (:func:`helpers.inference.predict_mask`). Their
inputs are ``keras.Input(name=stream)``, the keys of :class:`helpers.pipeline.ForgeryBatches`' ``x``, so
``model.fit(ForgeryBatches(..., task="segment"))`` works as is, and their output is float32 even under a
``mixed_float16`` policy (the losses and metrics want full precision).

segmentation-models is built on Keras 3 through :mod:`helpers.models.sm_compat` (any backend).
"""

from __future__ import annotations

import math
import statistics
import time
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import keras

from helpers.models.sm_compat import import_segmentation_models, keras_submodules, resolve_encoder_weights
from helpers.streams import STREAMS

__all__ = [
    "STREAM_CHANNELS",
    "BN_MOMENTUM",
    "TAMPERED_PRIOR",
    "prior_bias",
    "stream_channels",
    "sm_unet",
    "dual_stream_unet",
    "ProbabilityLogit",
    "unet_scratch",
    "EpochTimer",
]

STREAM_CHANNELS: dict[str, int] = {name: stream.channels for name, stream in STREAMS.items()}
"""Channels of each stream as the one stream table (:mod:`helpers.streams`) serves it to batches and inference
(SRM: the 3-filter bank; the 30-filter bank has 30). Besides ``rgb``, ``ela`` and ``srm`` the U-Nets can read the
noise level and the compression traces (``noise``, ``dq``, ``ghost``), as notebook 06's forensic network does."""

_SRM_BANK_CHANNELS = {"zhou3": 3, "full30": 30}

BN_MOMENTUM: float = 0.9
"""Batch-normalisation momentum of both models (Keras' default is 0.99).

Why: at inference a BN layer normalises with its *moving* statistics, which start at mean 0 and variance 1 and
move towards the data's by ``1 - momentum`` per step. The forensic inputs are far from that (raw ELA / 255 is
mostly below 0.06), so with 0.99 a run of a few dozen steps (the smoke profile, small real datasets) still
predicts with statistics that are mostly the initial ones, and outputs a nearly constant map. 0.9 (PyTorch's
default, 0.1 in its convention) forgets the initial values within some 40 steps, and costs nothing on long runs."""
_DIVISOR = 32  # five stride-2 stages in segmentation-models' encoders

TAMPERED_PRIOR: float = 0.05
"""The tampered share of pixels a mask model's output starts at (its last bias is this prior's logit).

Why: with a zero bias a sigmoid head starts at 0.5 everywhere, and the first steps are spent learning that most
pixels are authentic (a few percent are tampered in the embedded set and the online forgeries). Starting at the
prior (Lin et al.'s focal-loss initialisation) leaves them for the evidence. Measured with the seeds' recipe
(:data:`helpers.models.recipes.SEED_MODEL_TRAINING`; scratch U-Net, smoke split, 240 s, 37 held-out images): held-out
pixel F1 at 0.5 of 0.296 with the prior, 0.244 without. ``None`` keeps the zero bias."""


def prior_bias(prior: float | None) -> keras.initializers.Initializer:
    """The bias initialiser of a sigmoid head that starts at ``prior`` (zeros when ``prior`` is None)."""
    if prior is None:
        return keras.initializers.Zeros()
    if not 0.0 < float(prior) < 1.0:
        raise ValueError(f"prior must lie in (0, 1), not {prior!r}")
    return keras.initializers.Constant(math.log(float(prior) / (1.0 - float(prior))))


@keras.saving.register_keras_serializable(package="forgery_workbook")
class ProbabilityLogit(keras.layers.Layer):
    """``log(p / (1 - p))`` of probabilities ``p`` (clipped to ``[epsilon, 1 - epsilon]``), in float32.

    Why: the dual-stream U-Net's streams end in a sigmoid (each map is a probability, as in the seed). Fusing
    those probabilities with a 1x1 convolution puts a second sigmoid behind the first, and while the maps sit
    near a small prior the gradient that reaches each stream is scaled by the first sigmoid's slope there
    (0.05 x 0.95 at a 5 % prior) times the fusion's small initial weights: the streams hardly move. Fusing
    their logits instead cancels that slope (a product of experts: the fused logit is a weighted sum of theirs).
    """

    def __init__(self, epsilon: float = 1e-6, **kwargs: Any) -> None:
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.epsilon = float(epsilon)

    def call(self, inputs: Any) -> Any:
        p = keras.ops.clip(keras.ops.cast(inputs, "float32"), self.epsilon, 1.0 - self.epsilon)
        return keras.ops.log(p) - keras.ops.log1p(-p)

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "epsilon": self.epsilon}


def stream_channels(streams: Sequence[str], srm_bank: str = "zhou3") -> dict[str, int]:
    """``{stream: channels}`` for ``streams`` (validated: distinct names of the stream table)."""
    streams = tuple(streams)
    if not streams or len(set(streams)) != len(streams) or not set(streams) <= set(STREAM_CHANNELS):
        raise ValueError(f"streams must be distinct names from {tuple(STREAM_CHANNELS)}, not {streams!r}")
    if srm_bank not in _SRM_BANK_CHANNELS:
        raise ValueError(f"srm_bank must be one of {tuple(_SRM_BANK_CHANNELS)}, not {srm_bank!r}")
    channels = dict(STREAM_CHANNELS, srm=_SRM_BANK_CHANNELS[srm_bank])
    return {stream: channels[stream] for stream in streams}


def _spatial(input_size: int | None, divisor: int) -> tuple[int | None, int | None]:
    if input_size is None:
        return (None, None)
    if isinstance(input_size, bool) or int(input_size) != input_size or input_size < divisor or input_size % divisor:
        raise ValueError(f"input_size must be None or a positive multiple of {divisor}, not {input_size!r}")
    return (int(input_size), int(input_size))


def sm_unet(
    backbone: str = "resnet18",
    *,
    channels: int = 3,
    input_size: int | None = None,
    encoder_weights: str | None = "imagenet",
    decoder_filters: Sequence[int] = (256, 128, 64, 32, 16),
    activation: str = "sigmoid",
    bn_momentum: float | None = BN_MOMENTUM,
    prior: float | None = TAMPERED_PRIOR,
    name: str = "unet",
) -> keras.Model:
    """One segmentation-models ``Unet`` (1 class) on Keras 3, as a model called ``name``.

    Why the renaming: segmentation-models names every layer after its place in the network (``conv0``,
    ``stage1_unit1_conv1``, ``decoder_stage0a_conv``, ...), so two of them cannot be *layers of one model*.
    Wrapped as sub-models with distinct names, each keeps its names in its own scope (``rgb_unet/conv0``,
    ``ela_unet/conv0``): the outer model sees one layer per stream, and ``.keras`` files store each under its
    own path.

    ``encoder_weights="imagenet"`` falls back to ``None`` with a warning when the weights cannot be had now
    (:func:`helpers.models.sm_compat.resolve_encoder_weights`) or the download fails. ``bn_momentum`` replaces
    segmentation-models' 0.99 in every batch-normalisation layer (:data:`BN_MOMENTUM`; ``None`` keeps it).
    With a sigmoid ``activation`` the last convolution's bias starts at ``prior``'s logit (:data:`TAMPERED_PRIOR`).
    """
    sm = import_segmentation_models()
    if backbone not in sm.get_available_backbone_names():
        known = sm.get_available_backbone_names()
        raise ValueError(f"unknown backbone {backbone!r}; segmentation-models offers {known}")
    weights = resolve_encoder_weights(backbone, encoder_weights, channels=channels)
    kwargs: dict[str, Any] = {
        "input_shape": (*_spatial(input_size, _DIVISOR), int(channels)),
        "classes": 1,
        "activation": activation,
        "decoder_filters": tuple(int(f) for f in decoder_filters),
        **keras_submodules(),
    }
    # The name scope prefixes the new variables' paths ("rgb_unet/conv0/kernel"), so paths are unique across
    # streams too (JAX's state trees and layout maps key variables by path). Models reloaded from a .keras file
    # get unscoped paths again; weights are restored by position in the layer tree, which the names keep unique.
    with keras.name_scope(name):
        try:
            inner = sm.models.unet.Unet(backbone, encoder_weights=weights, **kwargs)
        except Exception as error:  # noqa: BLE001 - any download or file error: fall back, say so
            if weights is None:
                raise
            warnings.warn(
                f"loading {weights!r} weights for {backbone!r} failed ({type(error).__name__}: {error}); "
                "the encoder starts from random weights",
                UserWarning,
                stacklevel=2,
            )
            inner = sm.models.unet.Unet(backbone, encoder_weights=None, **kwargs)
    if bn_momentum is not None:
        for layer in inner.layers:
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.momentum = float(bn_momentum)  # read at every call, and saved in the layer's config
    if activation == "sigmoid" and prior is not None:
        head = inner.get_layer("final_conv")
        head.bias.assign(keras.ops.convert_to_tensor(prior_bias(prior)(head.bias.shape), dtype=head.bias.dtype))
    return keras.Model(inner.inputs[0], inner.outputs[0], name=name)


def dual_stream_unet(
    backbone: str = "resnet18",
    streams: Sequence[str] = ("rgb", "ela"),
    *,
    input_size: int | None = None,
    encoder_weights: str | None = "imagenet",
    decoder_filters: Sequence[int] = (256, 128, 64, 32, 16),
    srm_bank: str = "zhou3",
    channels: Mapping[str, int] | None = None,
    bn_momentum: float | None = BN_MOMENTUM,
    prior: float | None = TAMPERED_PRIOR,
    fuse: str = "logits",
    name: str = "dual_stream_unet",
) -> keras.Model:
    """One U-Net per stream, outputs concatenated and fused by a 1x1 convolution with a sigmoid.

    Inputs: ``keras.Input(shape=(input_size, input_size, C), name=stream)`` for each of ``streams`` (two or
    three of ``"rgb"``, ``"ela"``, ``"srm"``; ``channels`` overrides :func:`stream_channels`); output
    ``(B, H, W, 1)`` float32 in [0, 1]. Each stream's U-Net is :func:`sm_unet` named ``"{stream}_unet"``
    (sigmoid output, as in the seed, so each stream's map is a probability in its own right and the fusion
    learns how much to trust each). ImageNet weights go to every 3-channel encoder; ELA and SRM are not
    photographs, but pretrained low-level filters (edges, blobs) still train faster than random ones.
    ``input_size=None`` (default) accepts any side that is a multiple of 32. Each stream's head starts at
    ``prior`` (:data:`TAMPERED_PRIOR`).

    ``fuse="logits"`` (default) turns each stream's probability back into its logit (:class:`ProbabilityLogit`)
    before the 1x1 convolution, which starts as their mean, so the fused map starts at the prior as well;
    ``"probabilities"`` fuses the probabilities themselves, as the seed did, with the fusion's bias at the prior.
    Measured with notebook 06's call (random weights, resnet18, :data:`~helpers.models.recipes.SEED_MODEL_TRAINING`,
    240 s on two CPU cores, about 2,000 online forgeries and training crops of the smoke split; F1 at 0.5 on its
    37 held-out images, floor 0.097):

    ==================  ==============  =====================  ===========  ========  =========
    streams             fuse            validation F1 (last)   held-out F1  best F1   image AUC
    ==================  ==============  =====================  ===========  ========  =========
    rgb, ela (seed's)   probabilities   0.000                  0.000        0.131     0.656
    rgb, ela            logits          0.021                  0.000        0.148     0.629
    ela, dq             probabilities   0.000                  0.000        0.087     0.738
    ela, dq             logits          0.172                  **0.279**    0.445     0.803
    ==================  ==============  =====================  ===========  ========  =========

    Both are needed: behind a second sigmoid the streams hardly receive a gradient, and with the image in
    place of the compression trace there is nothing a few thousand samples teach a random ResNet encoder.
    """
    if fuse not in ("logits", "probabilities"):
        raise ValueError(f"fuse must be 'logits' or 'probabilities', not {fuse!r}")
    shapes = dict(stream_channels(streams, srm_bank))
    if channels is not None:
        shapes.update({k: int(v) for k, v in channels.items() if k in shapes})
    spatial = _spatial(input_size, _DIVISOR)
    inputs = {stream: keras.Input(shape=(*spatial, c), name=stream) for stream, c in shapes.items()}
    maps = []
    for stream, tensor in inputs.items():
        unet = sm_unet(
            backbone,
            channels=shapes[stream],
            input_size=input_size,
            encoder_weights=encoder_weights,
            decoder_filters=decoder_filters,
            bn_momentum=bn_momentum,
            prior=prior,
            name=f"{stream}_unet",
        )
        maps.append(unet(tensor))
    fused = keras.layers.Concatenate(axis=-1, name="stream_maps", dtype="float32")(maps) if len(maps) > 1 else maps[0]
    if fuse == "logits":
        # starts as the mean of the streams' logits, so the fused map starts at the prior too
        fused = ProbabilityLogit(name="stream_logits")(fused)
        kernel: Any = keras.initializers.Constant(1.0 / len(maps))
        bias: Any = keras.initializers.Zeros()
    else:
        kernel, bias = "glorot_uniform", prior_bias(prior)
    # float32 output under mixed precision: the loss of a float16 sigmoid saturates at 0 and 1.
    mask = keras.layers.Conv2D(1, 1, activation="sigmoid", kernel_initializer=kernel, bias_initializer=bias,
                               name="fusion", dtype="float32")(fused)
    return keras.Model(inputs, mask, name=name)


def _conv_block(x: Any, filters: int, *, batchnorm: bool, momentum: float, name: str) -> Any:
    """Two 3x3 convolutions, each followed by batch normalisation (optional) and ReLU: the seed's block."""
    for i in (1, 2):
        x = keras.layers.Conv2D(
            filters, 3, padding="same", kernel_initializer="he_normal", use_bias=not batchnorm, name=f"{name}_conv{i}"
        )(x)
        if batchnorm:
            x = keras.layers.BatchNormalization(momentum=momentum, name=f"{name}_bn{i}")(x)
        x = keras.layers.Activation("relu", name=f"{name}_relu{i}")(x)
    return x


def unet_scratch(
    streams: Sequence[str] = ("ela",),
    *,
    input_size: int | None = None,
    base_filters: int = 16,
    depth: int = 4,
    dropout: float = 0.1,
    batchnorm: bool = True,
    srm_bank: str = "zhou3",
    bn_momentum: float = BN_MOMENTUM,
    prior: float | None = TAMPERED_PRIOR,
    name: str = "unet_scratch",
) -> keras.Model:
    """The seed notebook's U-Net from scratch: ``depth`` down/up stages from ``base_filters`` filters.

    Encoder: per stage a double 3x3 convolution (batch norm, ReLU), 2x2 max pooling and dropout (half the rate
    on the first stage, as in the seed); a bottleneck of ``base_filters * 2**depth`` filters; decoder: 3x3
    transposed convolutions (stride 2), skip concatenation, dropout, double convolution; a 1x1 sigmoid head
    starting at ``prior`` (:data:`TAMPERED_PRIOR`).
    With the defaults (16 filters, depth 4) it has about 2 million weights. Several streams are concatenated
    along the channels. Inputs need a side that is a multiple of ``2**depth``; ``input_size`` fixes it.
    """
    shapes = stream_channels(streams, srm_bank)
    if base_filters < 1 or depth < 1 or not 0.0 <= dropout < 1.0:
        raise ValueError(
            f"need base_filters >= 1, depth >= 1 and 0 <= dropout < 1; got {base_filters}, {depth}, {dropout}"
        )
    spatial = _spatial(input_size, 2**depth)
    inputs = {stream: keras.Input(shape=(*spatial, c), name=stream) for stream, c in shapes.items()}
    tensors = list(inputs.values())
    x = keras.layers.Concatenate(axis=-1, name="streams")(tensors) if len(tensors) > 1 else tensors[0]
    skips = []
    for level in range(depth):
        x = _conv_block(x, base_filters * 2**level, batchnorm=batchnorm, momentum=bn_momentum, name=f"enc{level + 1}")
        skips.append(x)
        x = keras.layers.MaxPooling2D(2, name=f"pool{level + 1}")(x)
        x = keras.layers.Dropout(dropout * 0.5 if level == 0 else dropout, name=f"drop{level + 1}")(x)
    x = _conv_block(x, base_filters * 2**depth, batchnorm=batchnorm, momentum=bn_momentum, name="bottleneck")
    for level in reversed(range(depth)):
        filters = base_filters * 2**level
        x = keras.layers.Conv2DTranspose(filters, 3, strides=2, padding="same", name=f"up{level + 1}")(x)
        x = keras.layers.Concatenate(axis=-1, name=f"skip{level + 1}")([x, skips[level]])
        x = keras.layers.Dropout(dropout, name=f"updrop{level + 1}")(x)
        x = _conv_block(x, filters, batchnorm=batchnorm, momentum=bn_momentum, name=f"dec{level + 1}")
    mask = keras.layers.Conv2D(1, 1, activation="sigmoid", bias_initializer=prior_bias(prior), name="mask",
                               dtype="float32")(x)
    return keras.Model(inputs, mask, name=name)


class EpochTimer(keras.callbacks.Callback):
    """Wall time of every epoch, split into training and validation, and training images per second.

    Why a callback: ``fit``'s total time mixes compilation (first epoch), training and validation; speed
    comparisons need the training part of steady epochs. ``images_per_epoch`` is the number of training
    images one epoch sees (``ForgeryBatches.rows``). :meth:`summary` reports medians over the epochs after the
    first (which pays for tracing and compilation) when there are several.
    """

    def __init__(self, images_per_epoch: int) -> None:
        super().__init__()
        self.images_per_epoch = int(images_per_epoch)
        self.epochs: list[dict[str, float]] = []
        self._epoch_start = self._test_start = 0.0
        self._validation = 0.0

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._epoch_start = time.perf_counter()
        self._validation = 0.0

    def on_test_begin(self, logs: dict[str, Any] | None = None) -> None:
        self._test_start = time.perf_counter()

    def on_test_end(self, logs: dict[str, Any] | None = None) -> None:
        self._validation += time.perf_counter() - self._test_start

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        total = time.perf_counter() - self._epoch_start
        train = max(total - self._validation, 1e-9)
        self.epochs.append({"epoch_seconds": total, "train_seconds": train, "validation_seconds": self._validation,
                            "train_images_per_s": self.images_per_epoch / train})

    def summary(self) -> dict[str, Any]:
        """``{"epochs", "epoch_seconds", "train_images_per_s", "first_epoch_seconds", "total_seconds"}``."""
        if not self.epochs:
            return {"epochs": 0}
        steady = self.epochs[1:] if len(self.epochs) > 1 else self.epochs
        return {
            "epochs": len(self.epochs),
            "epoch_seconds": round(statistics.median(e["epoch_seconds"] for e in steady), 2),
            "train_images_per_s": round(statistics.median(e["train_images_per_s"] for e in steady), 2),
            "first_epoch_seconds": round(self.epochs[0]["epoch_seconds"], 2),
            "total_seconds": round(sum(e["epoch_seconds"] for e in self.epochs), 2),
        }
