"""Build segmentation-models 1.0.1 U-Nets on Keras 3, whatever the backend (TensorFlow, JAX, PyTorch).

Why a shim. ``segmentation_models`` (qubvel, 2019) was written for Keras 2 and ``tf.keras``. It does not call
Keras itself: every builder takes the Keras submodules as keyword arguments (``backend=, layers=, models=,
utils=``, the ``keras_applications`` convention) and calls only what it finds there. Keras 3 still has almost
all of it; what it lacks, or what breaks, is small:

1. **Import.** ``import segmentation_models`` immediately calls ``set_framework(os.environ["SM_FRAMEWORK"])``:
   ``"keras"`` imports ``efficientnet.keras``, which calls ``keras.utils.generic_utils.get_custom_objects()``
   (gone in Keras 3: ``AttributeError``); ``"tf.keras"`` imports TensorFlow, which a JAX run must not need.
   :func:`import_segmentation_models` imports the package with ``SM_FRAMEWORK=keras`` and, for the duration of
   the import only, an empty stand-in for ``efficientnet.keras``. That module merely registers EfficientNet's
   ``swish`` and ``FixedDropout`` as *global* Keras custom objects, for loading Keras 2 ``.h5`` files; in
   Keras 3 a global ``"swish"`` would shadow Keras' own activation on deserialisation, so skipping it is safer,
   not just simpler. Nothing of Keras is patched.
2. **Submodules.** :func:`keras_submodules` hands the builders ``keras.layers``, ``keras.models`` and
   ``keras.utils`` as they are, and a ``backend`` namespace that forwards to ``keras.backend`` and adds what
   Keras 3 dropped, written with ``keras.ops``: ``int_shape`` (static shape of a symbolic tensor),
   ``sigmoid`` and ``shape`` (EfficientNet's swish and dropout). Its ``backend()`` names the real backend.
3. **Lambda layers.** SE-ResNets and ResNeXts slice channels and broadcast with ``layers.Lambda`` around two
   module-level functions. A ``Lambda`` is Python bytecode in a ``.keras`` file, which ``keras.saving.
   load_model`` refuses in its default safe mode (and which does not survive a change of Python version).
   The ``layers`` namespace given to the builders replaces exactly those two Lambdas by registered layers
   written in ``keras.ops`` (:class:`SliceChannels`, :class:`ExpandSpatial`), so the saved model reloads.
   Any other ``Lambda`` is built as a ``Lambda`` (and such a model needs ``safe_mode=False`` to reload).

The builders are then called directly (``segmentation_models.models.unet.Unet(..., **keras_submodules())``),
not through ``segmentation_models.Unet``, so the package's global framework setting plays no part.

Weights. :func:`resolve_encoder_weights` checks, before building, whether ImageNet weights for a backbone can
be had: already in Keras' cache (``~/.keras/models``), or their host answers within a few seconds. If not, it
warns once and returns ``None`` (random initialisation), so an offline machine never hangs on a download and
never fails a notebook over it. A download that starts but fails falls back the same way
(:func:`helpers.models.segmentation.sm_unet`).

Backbones checked to build and run forward on Keras 3 under TensorFlow and JAX: :data:`CHECKED_BACKBONES`.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import types
import warnings
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import keras
from keras import ops

__all__ = [
    "CHECKED_BACKBONES",
    "SliceChannels",
    "ExpandSpatial",
    "import_segmentation_models",
    "keras_submodules",
    "imagenet_weights_info",
    "resolve_encoder_weights",
]

_PACKAGE = "forgery_workbook"

CHECKED_BACKBONES: tuple[str, ...] = (
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet101",
    "resnet152",
    "seresnet18",
    "seresnet34",
    "resnext50",
    "vgg16",
    "vgg19",
    "mobilenetv2",
    "efficientnetb0",
)
"""Backbones whose U-Net builds and runs on Keras 3 through this shim, under TensorFlow and JAX
(``tests/test_segmentation.py`` checks ResNet18 and SE-ResNet18; ``python -m helpers.models.sm_compat`` checks them
all). Not among them: the DenseNets, whose keras-applications layer names contain ``/``, which Keras 3 refuses.
EfficientNet U-Nets build and train, but their ``FixedDropout`` layers are local classes that a ``.keras`` file
cannot name; reload such a model with ``custom_objects={"FixedDropout": keras.layers.Dropout}``."""


# ----------------------------------------------------------------------------------------------------------------
# Layers that replace segmentation-models' Lambda layers
# ----------------------------------------------------------------------------------------------------------------
@keras.saving.register_keras_serializable(package=_PACKAGE)
class SliceChannels(keras.layers.Layer):
    """``x[..., start:stop]`` along ``axis`` (1 or 3): classification-models' grouped-convolution slice."""

    def __init__(self, start: int, stop: int, axis: int = 3, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if axis not in (1, 3):
            raise ValueError(f"axis must be 1 or 3, not {axis}")
        self.start, self.stop, self.axis = int(start), int(stop), int(axis)

    def call(self, inputs: Any) -> Any:
        if self.axis == 3:
            return inputs[:, :, :, self.start : self.stop]
        return inputs[:, self.start : self.stop, :, :]

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        shape = list(input_shape)
        shape[self.axis] = self.stop - self.start
        return tuple(shape)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "start": self.start, "stop": self.stop, "axis": self.axis}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class ExpandSpatial(keras.layers.Layer):
    """``(B, C) -> (B, 1, 1, C)`` (or ``(B, C, 1, 1)``): the squeeze-and-excitation broadcast of SE-ResNets."""

    def __init__(self, channels_axis: int = 3, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if channels_axis not in (1, 3):
            raise ValueError(f"channels_axis must be 1 or 3, not {channels_axis}")
        self.channels_axis = int(channels_axis)

    def call(self, inputs: Any) -> Any:
        if self.channels_axis == 3:
            return ops.expand_dims(ops.expand_dims(inputs, 1), 1)
        return ops.expand_dims(ops.expand_dims(inputs, -1), -1)

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        batch, channels = input_shape[0], input_shape[-1]
        return (batch, 1, 1, channels) if self.channels_axis == 3 else (batch, channels, 1, 1)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "channels_axis": self.channels_axis}


# ----------------------------------------------------------------------------------------------------------------
# Keras submodules for the builders
# ----------------------------------------------------------------------------------------------------------------
def _int_shape(x: Any) -> tuple[int | None, ...]:
    """Keras 2's ``backend.int_shape``: the static shape, ``None`` where unknown."""
    return tuple(None if d is None else int(d) for d in x.shape)


class _Namespace(types.ModuleType):
    """A module-like object: its own attributes first, then those of ``base``."""

    def __init__(self, name: str, base: Any, **extra: Any) -> None:
        super().__init__(name)
        self._base = base
        self.__dict__.update(extra)

    def __getattr__(self, item: str) -> Any:  # only called when normal lookup fails
        return getattr(self._base, item)


def _compat_lambda(function: Any, *args: Any, arguments: dict[str, Any] | None = None, **kwargs: Any) -> Any:
    """``layers.Lambda`` for the builders: known classification-models functions become registered layers."""
    name = getattr(function, "__name__", "")
    module = getattr(function, "__module__", "") or ""
    arguments = dict(arguments or {})
    if module.startswith("classification_models") and name == "slice_tensor" and not args:
        return SliceChannels(**arguments, **kwargs)
    if module.startswith("classification_models") and name == "expand_dims" and not args:
        return ExpandSpatial(**arguments, **kwargs)
    return keras.layers.Lambda(function, *args, arguments=arguments, **kwargs)


@lru_cache(maxsize=1)
def keras_submodules() -> dict[str, Any]:
    """``{"backend", "layers", "models", "utils"}`` for segmentation-models' builders, on Keras 3.

    ``backend`` forwards to ``keras.backend`` plus ``int_shape``, ``sigmoid`` and ``shape`` (``keras.ops``);
    ``layers`` forwards to ``keras.layers`` with ``Lambda`` replaced by :func:`_compat_lambda`.
    """
    backend = _Namespace(
        "helpers.models.sm_compat.backend",
        keras.backend,
        int_shape=_int_shape,
        sigmoid=ops.sigmoid,
        shape=ops.shape,
    )
    layers = _Namespace("helpers.models.sm_compat.layers", keras.layers, Lambda=_compat_lambda)
    return {"backend": backend, "layers": layers, "models": keras.models, "utils": keras.utils}


@contextlib.contextmanager
def _import_environment() -> Iterator[None]:
    """``SM_FRAMEWORK=keras`` and a stand-in ``efficientnet.keras`` for the duration of the import only."""
    previous_env = os.environ.get("SM_FRAMEWORK")
    stub_name = "efficientnet.keras"
    previous_module = sys.modules.get(stub_name)
    os.environ["SM_FRAMEWORK"] = "keras"
    sys.modules[stub_name] = types.ModuleType(stub_name)
    try:
        yield
    finally:
        if previous_env is None:
            os.environ.pop("SM_FRAMEWORK", None)
        else:
            os.environ["SM_FRAMEWORK"] = previous_env
        if previous_module is None:
            sys.modules.pop(stub_name, None)
        else:
            sys.modules[stub_name] = previous_module


@lru_cache(maxsize=1)
def import_segmentation_models() -> types.ModuleType:
    """Import ``segmentation_models`` on Keras 3 without TensorFlow-only paths (see the module docstring).

    Returns the package. Its import-time banner ("Segmentation Models: using `keras` framework.") is kept off
    stdout.
    """
    if "segmentation_models" in sys.modules:
        return sys.modules["segmentation_models"]
    with _import_environment(), contextlib.redirect_stdout(open(os.devnull, "w")):  # noqa: SIM115
        import segmentation_models  # noqa: PLC0415
        import segmentation_models.models.unet  # noqa: F401,PLC0415
    return segmentation_models


# ----------------------------------------------------------------------------------------------------------------
# Pretrained weights
# ----------------------------------------------------------------------------------------------------------------
def imagenet_weights_info(backbone: str) -> dict[str, Any] | None:
    """The ``WEIGHTS_COLLECTION`` entry of ``backbone``'s encoder (no top) on ImageNet, or ``None``.

    Only classification-models' backbones (ResNets, SE-ResNets, ResNeXts, SENet) are listed there; the
    keras-applications ones (VGG, DenseNet, MobileNet, ...) and EfficientNets fetch their own.
    """
    import_segmentation_models()
    from classification_models.weights import WEIGHTS_COLLECTION  # noqa: PLC0415

    for entry in WEIGHTS_COLLECTION:
        if entry["model"] == backbone and entry["dataset"] == "imagenet" and not entry["include_top"]:
            return dict(entry)
    return None


def _cached(entry: dict[str, Any]) -> bool:
    cache = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "models" / entry["name"]
    return cache.is_file()


@lru_cache(maxsize=32)
def _host_reachable(url: str, timeout: float) -> bool:
    parsed = urlparse(url)
    host, port = parsed.hostname, parsed.port or (443 if parsed.scheme == "https" else 80)
    if not host:
        return False
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def resolve_encoder_weights(
    backbone: str, encoder_weights: str | None, *, channels: int = 3, timeout: float = 3.0
) -> str | None:
    """``encoder_weights`` if they can be used for this encoder now, else ``None`` with a ``UserWarning``.

    ``"imagenet"`` is kept when the encoder has 3 input channels (ImageNet filters expect RGB-like input) and
    the weights file is in Keras' cache or its host accepts a connection within ``timeout`` seconds. A path to a
    weights file is kept as given. Why check first: Keras' ``get_file`` retries a dead host for minutes.
    """
    if encoder_weights is None:
        return None
    if encoder_weights != "imagenet":
        return encoder_weights
    if channels != 3:
        warnings.warn(
            f"encoder_weights='imagenet' needs 3 input channels; the {backbone} encoder of a {channels}-channel "
            "stream starts from random weights",
            UserWarning,
            stacklevel=3,
        )
        return None
    entry = imagenet_weights_info(backbone)
    if entry is not None:
        url = entry["url"]
        if _cached(entry) or _host_reachable(url, timeout):
            return "imagenet"
    elif _host_reachable("https://storage.googleapis.com", timeout):
        return "imagenet"  # keras-applications and EfficientNet weights live on Google storage / GitHub
    else:
        url = "https://storage.googleapis.com"
    warnings.warn(
        f"ImageNet weights for {backbone!r} cannot be downloaded now ({urlparse(url).hostname} unreachable "
        f"within {timeout:g} s and not in Keras' cache): the encoder starts from random weights "
        "(encoder_weights=None). Training from scratch needs more epochs and data.",
        UserWarning,
        stacklevel=3,
    )
    return None


def _check_all() -> None:  # pragma: no cover - a manual check: python -m helpers.models.sm_compat
    import numpy as np  # noqa: PLC0415

    sm = import_segmentation_models()
    for name in CHECKED_BACKBONES:
        model = sm.models.unet.Unet(name, input_shape=(None, None, 3), encoder_weights=None, **keras_submodules())
        out = model.predict_on_batch(np.zeros((1, 64, 64, 3), "float32"))
        print(f"{keras.backend.backend():10s} {name:16s} params={model.count_params():>11,d} out={out.shape}")


if __name__ == "__main__":  # pragma: no cover
    _check_all()
