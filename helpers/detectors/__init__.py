"""Forgery detectors behind one contract (notebooks 04 and 07).

Every method, training-free (``ela``, ``noise``, ``dq``, ``ghost``, ``grid``, ``splicebuster``, ``copy_move``) or
learned (mask models, classifiers, the per-pixel fusion), is a :class:`Detector` built by name:
``get_detector(name, **params).predict(image) -> Prediction(heatmap, mask, score)``. See :mod:`.base`; the
training-free methods share one rule from trace map to decision, :mod:`.decision`.


Importing this package registers every method, the learned ones (:mod:`.learned`: ``mask_model``,
``classifier``) included, so ``list_detectors()`` is complete whatever was imported first; the learned ones'
module, which starts Keras, is imported when one of them is first built (``register_deferred``).
"""

from __future__ import annotations

from typing import Any

from helpers.detectors.base import (
    Detector,
    Prediction,
    describe_detectors,
    get_detector,
    list_detectors,
    normalise_map,
    register_detector,
)
from helpers.detectors.base import register_deferred
from helpers.detectors.mask_map import MaskMapDetector, PortableMaskDetector

# The learned detectors' module starts Keras and TensorFlow (about 11 s on two cores): it is named here and
# imported when one of them is first built or named (``get_detector("mask_model", ...)``, or the attributes
# below), so the training-free methods and ``analyze`` with the shipped model start without it.
register_deferred(
    "mask_model", "helpers.detectors.learned", trained=True,
    description="a mask model of notebook 06, tiled over the whole image (score: mean of its top 1 % pixels)")
register_deferred(
    "classifier", "helpers.detectors.learned", trained=True,
    description="a classifier of notebook 05 on tiles of its training crop (score: the most suspicious tile)")
_LEARNED_NAMES = ("ClassifierDetector", "MaskModelDetector", "learned_detectors")

# Importing a method's module registers it; one line per training-free method.
from helpers.detectors import dq  # noqa: E402,F401  (registers "dq")
from helpers.detectors import ela  # noqa: E402,F401  (registers "ela")
from helpers.detectors import ghost  # noqa: E402,F401  (registers "ghost")
from helpers.detectors import grid  # noqa: E402,F401  (registers "grid")
from helpers.detectors import noise  # noqa: E402,F401  (registers "noise")
from helpers.detectors.copy_move import CopyMoveDetector
from helpers.detectors.fusion import FusionDetector, fit_fusion, load_fusion
from helpers.detectors.splicebuster import SplicebusterDetector

__all__ = [
    "ClassifierDetector",
    "MaskModelDetector",
    "MaskMapDetector",
    "PortableMaskDetector",
    "Detector",
    "Prediction",
    "describe_detectors",
    "get_detector",
    "list_detectors",
    "normalise_map",
    "register_detector",
    "CopyMoveDetector",
    "FusionDetector",
    "SplicebusterDetector",
    "fit_fusion",
    "load_fusion",
]


def __getattr__(name: str) -> Any:
    """``ClassifierDetector``, ``MaskModelDetector`` and ``learned_detectors`` load Keras on first use (PEP 562)."""
    if name in _LEARNED_NAMES:
        from helpers.detectors import learned

        return getattr(learned, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
