"""What every mask model shares as a detector, and the shipped network computed without Keras (notebook 07).

:class:`MaskMapDetector` holds a mask model's decision rules: the threshold, the map threshold chosen on
validation (``map_threshold``, mapped to 0.5 by :func:`helpers.detectors.decision.threshold_to_half`, as the
fusion's is), the image score read from the raw map (:func:`image_score_from_map`) and the working copy of a
large image (see :mod:`helpers.detectors.learned`, whose :class:`~helpers.detectors.learned.MaskModelDetector`
runs any saved model with Keras). :class:`PortableMaskDetector` is the same detector for a saved model whose
layers :mod:`helpers.models.portable` computes with NumPy (the compact forensic network, the shipped one
included): ``analyze`` uses it so that a photo is analysed without TensorFlow's start-up, about 11 s on two
cores. Neither module imports the other's dependencies: this one needs no Keras.

**The matching branch (copy-move).** A copy-move forgery copies a region within one photo, so its noise and
compression agree with the rest and a trace network has nothing to find: the compact forensic network of the
`full` profile scores pixel F1 0.29 on the held-out copy-moves against 0.67 on splices. What gives a copy away
is that two places look alike, which is what BusterNet (Wu et al., ECCV 2018) adds as a second, similarity
branch beside its manipulation branch. Here that branch is the ``copy_move`` detector's keypoint matching with
dense verification (:mod:`helpers.detectors.copy_move`), tuned to fire more often (:data:`MATCHING_BRANCH`),
and the network decides what the geometry cannot: which region of a matched pair is the copy (the one its
map holds more suspicious; the copy is the one that was pasted, so it carries the blend's edges and the
interpolation). On an image where the branch verifies a copy the map is the branch's: the chosen regions at
``max(network, 0.5 + score / 2)`` and the rest at most the threshold, so the mask is exactly the copies (the
network's map elsewhere on such an image is mostly the source region and texture); the image score is the
larger of the network's and the branch's, which lifts an image when the network's score is calibrated on
validation, as notebook 06 and ``train`` save it (a raw top-1 % mean may already sit above the branch's). An image
without a verified copy keeps the network's map untouched.

Measured with the `full` profile's saved forensic network (held-out 0.417 alone), pixel F1 at 0.5, mean over
tampered images; the settings and the rule were chosen on the validation split, then read once on the held-out
split and the fixtures:

| matching branch                                     | validation | held-out  | held-out copy-moves | fixtures  |
|-----------------------------------------------------|------------|-----------|---------------------|-----------|
| none (the network alone)                            | 0.370      | 0.417     | 0.293               | 0.274     |
| ``copy_move``'s defaults, union with the network    | 0.375      | 0.427     | 0.321               |           |
| :data:`MATCHING_BRANCH`, union with the network     | 0.387      | 0.458     | 0.409               |           |
| :data:`MATCHING_BRANCH`, copy picked by smoothness  | 0.416      | 0.457     | 0.434               |           |
| :data:`MATCHING_BRANCH`, copy picked by the network | **0.431**  | **0.453** | 0.423               | **0.453** |

A fresh `full` run of notebook 06 (the same recipe, another draw of the time-budgeted training: its network alone
scores lower) measured the same gain: held-out 0.381 alone, 0.405 with the branch; fixtures 0.266 and 0.456
(image AUC 0.56 and 0.79).

The branch fired on 57 % of the validation copy-moves, on none of the validation split's authentic images or
other edits, on 3 % of the held-out authentic images and 5 % of its other edits, and on none of the 36 authentic
fixtures. It costs little: the shipped network on two cores takes 0.5 s on a 0.27 MP photo either way, and on a
12 MP photo 8.1 s instead of 5.1 s (the branch reads the same 2 MP working copy). ``matching=False`` turns it off.
"""

from __future__ import annotations

import os
from typing import Any

import cv2
import numpy as np

from helpers.detectors.base import Detector, Prediction
from helpers.detectors.copy_move import CopyMoveDetector
from helpers.imageio import LoadedImage, as_loaded_image
from helpers.detectors.decision import threshold_to_half
from helpers.models.artifact_files import (
    ModelArtifactError,
    check_flip_views,
    check_image_score_rule,
    check_map_threshold,
    find_artifact,
    read_info,
)
from helpers.models.portable import (
    WHOLE_IMAGE_DIVISOR,
    WHOLE_IMAGE_MAX_SIDE,
    PortableModel,
    UnsupportedModel,
    flip_average,
    predict_in_windows,
    top_mean,
)
from helpers.streams import compute_streams

__all__ = ["DEFAULT_IMAGE_SCORE", "DEFAULT_MASK_WORKING_PIXELS", "MATCHING_BRANCH", "MaskMapDetector",
           "PortableMaskDetector", "image_score_from_map", "UnsupportedModel"]

DEFAULT_IMAGE_SCORE: dict[str, Any] = {"rule": "top_mean", "fraction": 0.01}
"""A mask model's image score unless its description says otherwise: the mean of the top 1 % of its map."""

DEFAULT_MASK_WORKING_PIXELS = 2_000_000
"""Pixels of the working copy a mask model reads of a larger image (see :mod:`helpers.detectors.learned`)."""

MATCHING_BRANCH: dict[str, Any] = {"ratio": 0.6, "min_inliers": 4, "correlation": 0.7, "contrast_threshold": 0.005}
"""The ``copy_move`` settings of a mask model's matching branch (see the module docstring): looser than the
detector's own defaults (ratio 0.5, 8 inliers, correlation 0.8, SIFT contrast 0.02), since the network, not the
geometry, then picks the copy. On the validation split's copy-moves the detector alone scores F1 0.39 with them
and 0.17 with its defaults."""


def image_score_from_map(heatmap: np.ndarray, rule: dict[str, Any] = DEFAULT_IMAGE_SCORE) -> float:
    """An image score in ``[0, 1]`` from a probability map by ``rule`` (top-fraction mean, max or mean,
    optionally through a Platt calibration ``sigmoid(a * value + b)``)."""
    values = np.asarray(heatmap, np.float32).ravel()
    if values.size == 0:
        raise ValueError("cannot score an empty map")
    kind = rule.get("rule", "top_mean")
    if kind == "max":
        value = float(values.max())
    elif kind == "mean":
        value = float(values.mean())
    else:
        value = top_mean(values, float(rule.get("fraction", 0.01)))
    platt = rule.get("platt")
    if platt is not None:
        value = float(1.0 / (1.0 + np.exp(-(float(platt[0]) * value + float(platt[1])))))
    return float(np.clip(value, 0.0, 1.0))


class MaskMapDetector(Detector):
    """A mask model as a detector: subclasses say how the model maps an RGB image (at most ``working_pixels``)
    to a probability map (:meth:`working_heatmap`); this class reads large images through a working copy and
    turns the map into a mask and a score. ``info`` is the model's description (:mod:`helpers.models.artifact`)."""

    name = "mask_model"
    trained = True

    def __init__(self, info: dict[str, Any], *, working_pixels: int | None = DEFAULT_MASK_WORKING_PIXELS,
                 matching: bool | CopyMoveDetector = True) -> None:
        self.info = info
        threshold = float(info["threshold"])
        if not 0.0 <= threshold <= 1.0:  # also refuses NaN
            raise ValueError(f"threshold must lie in [0, 1], not {info['threshold']!r}")
        self.threshold = threshold
        # The map threshold validation chose (helpers.models.recipes.choose_map_threshold), mapped to 0.5.
        self.map_threshold = check_map_threshold(info.get("map_threshold", 0.5))
        # Mirror views the map is averaged over (helpers.models.portable.flip_average); absent: the image alone.
        self.flip_views = check_flip_views(info.get("flip_views", 1))
        self.score_rule = check_image_score_rule(info.get("image_score") or DEFAULT_IMAGE_SCORE)
        if working_pixels is not None and (isinstance(working_pixels, bool) or int(working_pixels) < 65_536):
            raise ValueError(f"working_pixels must be at least 65536 (a 256 x 256 copy) or None, "
                             f"not {working_pixels!r}")
        self.working_pixels = None if working_pixels is None else int(working_pixels)
        # With a working copy the image is never cut into tiles by analyze: the copy bounds the memory, and the
        # model sees the whole photo at once.
        self.whole_image = self.working_pixels is not None  # type: ignore[misc]
        if not isinstance(matching, (bool, CopyMoveDetector)):
            raise TypeError(f"matching must be True, False or a CopyMoveDetector, not {matching!r}")
        self.matching: CopyMoveDetector | None = (
            matching if isinstance(matching, CopyMoveDetector) else CopyMoveDetector(**MATCHING_BRANCH) if matching
            else None)

    def working_heatmap(self, rgb: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def working_shape(self, height: int, width: int) -> tuple[int, int]:
        """``(height, width)`` of the copy the model reads of an image of this size (its own up to
        ``working_pixels``, else reduced keeping the aspect ratio)."""
        if self.working_pixels is None or height * width <= self.working_pixels:
            return height, width
        scale = float(np.sqrt(self.working_pixels / (height * width)))
        return max(1, int(height * scale)), max(1, int(width * scale))

    def predict_working(self, image: LoadedImage | Any) -> Prediction:
        """The prediction on the working copy (the image itself up to ``working_pixels``)."""
        rgb = as_loaded_image(image).rgb
        height, width = rgb.shape[:2]
        rows, cols = self.working_shape(height, width)
        if (rows, cols) != (height, width):
            rgb = cv2.resize(rgb, (cols, rows), interpolation=cv2.INTER_AREA)
        heatmap = self.working_heatmap(rgb)
        score = image_score_from_map(heatmap, self.score_rule)  # its calibration was fitted on the raw map
        if self.map_threshold != 0.5:
            heatmap = threshold_to_half(heatmap, self.map_threshold)
        if self.matching is not None:
            heatmap, score = self._with_copies(rgb, heatmap, score)
        return Prediction(heatmap=heatmap, mask=heatmap > self.threshold, score=score)

    def _with_copies(self, rgb: np.ndarray, heatmap: np.ndarray, score: float) -> tuple[np.ndarray, float]:
        """The map and score with the matching branch's copies (see the module docstring)."""
        assert self.matching is not None
        pairs, evidence = self.matching.region_pairs(rgb)
        copies = np.zeros(heatmap.shape, bool)
        for first, second in pairs:
            # The network picks the copy: the region of the pair it finds more suspicious.
            copies |= second if _mean_inside(heatmap, second) >= _mean_inside(heatmap, first) else first
        if not copies.any():
            return heatmap, score
        value = 0.5 + 0.5 * evidence
        inside = np.float32(min(1.0, max(value, np.nextafter(self.threshold, 2.0))))
        composed = np.where(copies, np.maximum(heatmap, inside), np.minimum(heatmap, np.float32(self.threshold)))
        return composed.astype(np.float32), max(score, value)

    def predict(self, image: LoadedImage) -> Prediction:
        working = self.predict_working(image)
        height, width = image.shape
        if working.heatmap.shape == (height, width):
            return working
        heatmap = np.clip(cv2.resize(working.heatmap, (width, height), interpolation=cv2.INTER_LINEAR), 0.0, 1.0)
        return Prediction(heatmap=heatmap, mask=heatmap > self.threshold, score=working.score)


def _mean_inside(heatmap: np.ndarray, region: np.ndarray) -> float:
    return float(heatmap[region].mean()) if region.any() else -1.0


class PortableMaskDetector(MaskMapDetector):
    """A saved whole-image mask model (``tile`` 0) computed with NumPy (:mod:`helpers.models.portable`).

    ``path``: the folder, ``.keras`` or ``.json`` of a saved segment model with its description. Raises
    :class:`UnsupportedModel` for a model this path cannot compute (a tiled one, or a layer NumPy does not run
    here), so the caller can load it with Keras instead."""

    description = "a mask model of notebook 06 (or the shipped one) on the whole image, computed with NumPy"

    def __init__(self, path: str | os.PathLike[str], *, threshold: float | None = None,
                 working_pixels: int | None = DEFAULT_MASK_WORKING_PIXELS,
                 matching: bool | CopyMoveDetector = True) -> None:
        keras_path, json_path = find_artifact(path, task="segment")
        if json_path is None:
            raise UnsupportedModel(f"{keras_path}: no description beside it (its streams are unknown without Keras)")
        info = read_info(json_path)
        if info.get("task") != "segment":
            raise ModelArtifactError(f"{keras_path}: a {info.get('task')} model, not a segment model")
        if int(info.get("tile", 0) or 0) != 0 or not info.get("streams"):
            raise UnsupportedModel(f"{keras_path}: a tiled model (tile {info.get('tile')}); load it with Keras")
        if threshold is not None:
            info = {**info, "threshold": threshold}
        super().__init__(info, working_pixels=working_pixels, matching=matching)
        self.path = str(path)
        self.model = PortableModel.load(keras_path)
        self.streams = tuple(info["streams"])

    def working_heatmap(self, rgb: np.ndarray) -> np.ndarray:
        values = compute_streams(rgb, self.streams, ela_quality=int(self.info.get("ela_quality", 90)),
                                 srm_bank=str(self.info.get("srm_bank", "zhou3")))
        return flip_average(lambda view: predict_in_windows(self._predict_padded, view, max_side=WHOLE_IMAGE_MAX_SIDE),
                            values, self.flip_views)

    def _predict_padded(self, values: dict[str, np.ndarray], height: int, width: int) -> np.ndarray:
        pad_h, pad_w = -height % WHOLE_IMAGE_DIVISOR, -width % WHOLE_IMAGE_DIVISOR
        mode = "reflect" if min(height, width) > max(pad_h, pad_w) else "edge"
        padded = {name: np.pad(value, ((0, pad_h), (0, pad_w), (0, 0)), mode=mode) for name, value in values.items()}
        return np.asarray(self.model.predict(padded)[:height, :width, 0], np.float32)
