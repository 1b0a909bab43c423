"""Forgery detectors behind one contract (notebooks 04 and 07).

Every method, training-free (``ela``, ``noise``, ``dq``, ``ghost``, ``grid``, ``splicebuster``, ``copy_move``) or
learned (mask models, classifiers, the per-pixel fusion), is a :class:`Detector` built by name:
``get_detector(name, **params).predict(image) -> Prediction(heatmap, mask, score)``. See :mod:`.base`.
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
from helpers.detectors.copy_move import CopyMoveDetector
from helpers.detectors.fusion import FusionDetector, fit_fusion, load_fusion
from helpers.detectors.splicebuster import SplicebusterDetector

__all__ = [
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
