"""The detector contract: every method, training-free or learned, behind one interface (notebooks 04 and 07).

After PhotoHolmes and IMDL-BenCo: a method is a :class:`Detector` built by name from a registry, and every
detector answers :meth:`Detector.predict` with the same :class:`Prediction`:

* ``heatmap``: ``float32`` array ``(H, W)`` in ``[0, 1]``, higher = more likely tampered, the same size as the
  image;
* ``mask``: ``bool`` array ``(H, W)``, the detector's own decision (its documented threshold or rule);
* ``score``: an image-level score in ``[0, 1]`` (higher = more likely tampered), or ``None`` when the method
  has none.

Evaluation (:mod:`helpers.evaluation`), ``analyze`` and notebook 07 only ever call ``predict``, so any two
methods compare on one protocol and none is special-cased.

The input is a :class:`helpers.imageio.LoadedImage`: uint8 RGB pixels plus, for a file, its format, its bytes
and, for a JPEG, its quantisation tables and DCT coefficients (read lazily), since compression-domain methods
(``dq``, ``grid``) read those rather than pixels.

Registering a method::

    @register_detector("noise")
    class NoiseDetector(Detector):
        description = "local noise-level inconsistency (Mahdian & Saic 2009)"
        def predict(self, image): ...

``get_detector("noise", block=16)`` builds it with parameters; ``list_detectors()`` lists every name.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

import numpy as np

from helpers.imageio import LoadedImage, as_loaded_image

__all__ = [
    "Prediction",
    "Detector",
    "register_detector",
    "register_deferred",
    "get_detector",
    "list_detectors",
    "describe_detectors",
    "normalise_map",
    "resolve_detectors",
    "detector_identity",
    "detector_params",
]


@dataclass(frozen=True)
class Prediction:
    """What every detector returns: a heatmap, a binary mask and an optional image-level score."""

    heatmap: np.ndarray
    """``float32`` ``(H, W)`` in ``[0, 1]``; higher means more likely tampered."""
    mask: np.ndarray
    """``bool`` ``(H, W)``: the pixels the detector calls tampered."""
    score: float | None = None
    """Image-level probability-like score in ``[0, 1]`` (``None``: the method gives none)."""

    def __post_init__(self) -> None:
        heatmap = np.asarray(self.heatmap)
        mask = np.asarray(self.mask)
        if heatmap.ndim != 2:
            raise ValueError(f"Prediction.heatmap must be (H, W), got shape {heatmap.shape}")
        if mask.shape != heatmap.shape:
            raise ValueError(f"Prediction.mask shape {mask.shape} differs from heatmap shape {heatmap.shape}")
        heatmap = heatmap.astype(np.float32, copy=False)
        if heatmap.size and not (0.0 <= float(heatmap.min()) and float(heatmap.max()) <= 1.0):
            # NaN fails both comparisons. A clean float32 map (the usual case) is kept as given: on a large image
            # each full-size copy costs 4 bytes per pixel.
            heatmap = np.clip(np.nan_to_num(heatmap, nan=0.0, posinf=1.0, neginf=0.0), 0.0, 1.0)
        object.__setattr__(self, "heatmap", heatmap)
        object.__setattr__(self, "mask", mask.astype(bool, copy=False))
        if self.score is not None:
            score = float(self.score)
            object.__setattr__(self, "score", float(np.clip(score, 0.0, 1.0)) if np.isfinite(score) else None)

    @classmethod
    def from_heatmap(cls, heatmap: np.ndarray, threshold: float = 0.5, score: float | None = None) -> Prediction:
        """A prediction whose mask is ``heatmap > threshold``."""
        heatmap = np.asarray(heatmap, dtype=np.float32)
        return cls(heatmap=heatmap, mask=heatmap > threshold, score=score)


class Detector:
    """Base class of every method. Subclasses set ``name`` (by registration) and ``description``.

    ``predict`` takes a :class:`LoadedImage` (or a path or an RGB array, which are wrapped) and returns a
    :class:`Prediction` of the image's size.
    """

    name: ClassVar[str] = "detector"
    description: ClassVar[str] = ""
    trained: ClassVar[bool] = False
    """Whether the method learns from data (learned models, fusion); training-free methods leave it False."""
    whole_image: ClassVar[bool] = False
    """Whether the method must see the whole image at once (``copy_move`` matches regions across it), so it is
    never cut into tiles (:mod:`helpers.detectors.tiled`); such a method bounds its memory itself, on a working
    copy of limited size (:meth:`predict_working`)."""

    @property
    def artifact_digest(self) -> str | None:
        """For a learned method loaded from saved files, a digest of their bytes; ``None`` for every other.

        The same files give the same answers, so :func:`helpers.evaluation.protocol.evaluate`'s score cache may
        reuse a learned method's rows under it (notebook 07 reuses the rows notebook 04 scored with the fusion it
        saved). A model held in memory has none: it may be trained further between two calls."""
        return getattr(self, "_artifact_digest", None)

    def predict(self, image: LoadedImage) -> Prediction:  # pragma: no cover - abstract
        raise NotImplementedError

    def predict_working(self, image: LoadedImage | Any) -> Prediction:
        """The prediction at the size the method works at: the image's own, unless the method reads a reduced
        working copy of a large image (then the maps cover the whole image at that copy's size, and
        :meth:`predict` scales them up). Lets a caller summarise a large image without the full-size maps."""
        return self(image)

    def __call__(self, image: LoadedImage | Any) -> Prediction:
        loaded = as_loaded_image(image)
        memo = loaded.predictions  # None unless the caller asked for it (LoadedImage.predictions)
        identity = detector_identity(self) if memo is not None else None
        kept = memo.get(identity) if memo is not None and identity is not None else None
        if kept is not None:
            return _copied(kept)
        prediction = self.predict(loaded)
        expected = loaded.rgb.shape[:2]
        if prediction.heatmap.shape != expected:
            raise RuntimeError(
                f"detector {self.name!r} returned a {prediction.heatmap.shape} map for a {expected} image")
        if memo is not None and identity is not None:
            # A copy is kept, so a caller that edits its maps in place cannot change what the next one gets.
            memo[identity] = _copied(prediction)
        return prediction

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


def detector_params(detector: Detector) -> dict[str, Any]:
    """A detector's public parameters: its attributes not starting with ``_``."""
    return {name: value for name, value in vars(detector).items() if not name.startswith("_")}


def detector_identity(detector: Detector) -> str | None:
    """``detector``'s class and parameters as one string, for the per-image memo of :meth:`Detector.__call__`
    (:attr:`helpers.imageio.LoadedImage.predictions`);
    ``None`` (no memo) for a learned detector (its model may change between calls) or one whose parameters are
    not plain values (arrays, models, wrapped detectors), which no string can stand for."""
    if getattr(detector, "trained", False):
        return None
    try:
        # Plain values only (nested tuples too): json refuses arrays, models and other objects.
        return json.dumps({"class": f"{type(detector).__module__}.{type(detector).__qualname__}",
                           "params": detector_params(detector)}, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError):
        return None


def _copied(prediction: Prediction) -> Prediction:
    return Prediction(heatmap=prediction.heatmap.copy(), mask=prediction.mask.copy(), score=prediction.score)


_D = TypeVar("_D", bound=type[Detector])
_REGISTRY: dict[str, Callable[..., Detector]] = {}


def register_detector(name: str) -> Callable[[_D], _D]:
    """Class decorator: make a detector class buildable as ``get_detector(name, **params)``."""

    def decorate(cls: _D) -> _D:
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"a detector named {name!r} is already registered ({_REGISTRY[name]!r})")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return decorate


@dataclass(frozen=True)
class _Deferred:
    """A detector named before its module is imported (see :func:`register_deferred`)."""

    module: str
    trained: bool
    description: str


_DEFERRED: dict[str, _Deferred] = {}


def register_deferred(name: str, module: str, *, trained: bool, description: str) -> None:
    """Name a detector whose module is imported only when it is first built: the learned detectors, whose
    module starts Keras and TensorFlow (about 11 s on two cores), so that the training-free methods and
    ``analyze`` with the NumPy-computed shipped model start without it. The module must register ``name``."""
    _DEFERRED[name] = _Deferred(module, trained, description)


def _registered(name: str) -> Callable[..., Detector]:
    if name not in _REGISTRY and name in _DEFERRED:
        importlib.import_module(_DEFERRED[name].module)  # registers it
    return _REGISTRY[name]


def list_detectors(*, trained: bool | None = None) -> list[str]:
    """Names of the registered detectors, sorted; ``trained=False`` keeps the training-free ones only."""
    names = sorted(set(_REGISTRY) | set(_DEFERRED))
    if trained is None:
        return names

    def learns(name: str) -> bool:
        if name in _REGISTRY:
            return bool(getattr(_REGISTRY[name], "trained", False))
        return _DEFERRED[name].trained

    return [n for n in names if learns(n) == trained]


def get_detector(name: str, **params: Any) -> Detector:
    """Build the detector registered as ``name`` with ``params``; an unknown name lists the known ones."""
    try:
        factory = _registered(name)
    except KeyError:
        raise ValueError(f"unknown detector {name!r}; choose from: {', '.join(list_detectors())}") from None
    return factory(**params)


def resolve_detectors(detectors: Any) -> dict[str, Detector]:
    """``{name: Detector}`` from detector names, :class:`Detector` objects, or a ``{name: name or Detector}`` dict."""
    if isinstance(detectors, (str, Detector)):
        detectors = [detectors]
    items: Iterable[tuple[str, Any]]
    if isinstance(detectors, Mapping):
        items = detectors.items()
    else:
        items = [(d if isinstance(d, str) else getattr(d, "name", type(d).__name__), d) for d in detectors]
    resolved: dict[str, Detector] = {}
    for name, detector in items:
        built = get_detector(detector) if isinstance(detector, str) else detector
        if not isinstance(built, Detector):
            raise TypeError(f"{name!r} is a {type(built).__name__}, not a Detector")
        if name in resolved:
            raise ValueError(f"two detectors are named {name!r}; pass a dict {{name: detector}} to tell them apart")
        resolved[str(name)] = built
    if not resolved:
        raise ValueError("no detectors to evaluate")
    return resolved


def describe_detectors() -> dict[str, str]:
    """``{name: one-line description}`` of every registered detector."""
    return {name: str(getattr(_REGISTRY[name], "description", "")) if name in _REGISTRY
            else _DEFERRED[name].description for name in list_detectors()}


def normalise_map(values: np.ndarray, *, low: float = 1.0, high: float = 99.0) -> np.ndarray:
    """Scale a raw trace map to ``[0, 1]`` by its own ``low``/``high`` percentiles (robust min-max).

    A flat map (no spread) becomes all zeros: nothing stands out, so nothing is flagged.
    """
    values = np.asarray(values, dtype=np.float32)
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return np.zeros(values.shape, np.float32)
    lo, hi = np.percentile(finite, [low, high])
    if not hi > lo:
        return np.zeros(values.shape, np.float32)
    return np.clip((np.nan_to_num(values, nan=lo) - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)
