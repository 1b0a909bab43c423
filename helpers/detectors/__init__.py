"""Forgery detectors behind one contract (notebooks 04 and 07).

Every method, training-free (``ela``, ``noise``, ``dq``, ``ghost``, ``grid``, ``splicebuster``, ``copy_move``) or
learned (mask models, classifiers, the per-pixel fusion), is a :class:`Detector` built by name:
``get_detector(name, **params).predict(image) -> Prediction(heatmap, mask, score)``. See :mod:`.base`; the
training-free methods share one rule from trace map to decision, :mod:`.decision`.


Importing this package registers every method, the learned ones (:mod:`.learned`: ``mask_model``,
``classifier``) included, so ``list_detectors()`` is complete whatever was imported first.
"""

from __future__ import annotations

from helpers.detectors.base import (
    Detector,
    Prediction,
    describe_detectors,
    get_detector,
    list_detectors,
    normalise_map,
    register_detector,
)
from helpers.detectors.learned import ClassifierDetector, MaskModelDetector

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
