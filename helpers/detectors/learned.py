"""Learned models behind the detector contract: saved mask models and classifiers (notebooks 05-07).

* :class:`MaskModelDetector` (``mask_model``): a mask model of notebook 06 over the whole image by overlapping
  tiles (:func:`helpers.inference.predict_mask`). Heatmap: the predicted probability; mask: heatmap above the
  model's saved threshold; score: the mean of the top 1 % of the heatmap's pixels (a confident small region
  counts; one hot pixel does not), unless the model's description records another rule, possibly calibrated
  (``image_score``, see :data:`helpers.models.artifact.IMAGE_SCORE_RULES`). A copy-move matching branch runs
  beside the network unless ``matching=False`` (:mod:`helpers.detectors.mask_map` says why and what it adds).

  **Large images** are read through a working copy: an image of more than ``working_pixels`` pixels
  (:data:`DEFAULT_MASK_WORKING_PIXELS`, 2 MP, as ``copy_move``) is reduced by area averaging to that many pixels,
  keeping its aspect ratio; the model predicts the copy and the map is scaled back up linearly (the mask is the
  full-size map above the threshold; the score is read from the copy's map). Why: the forensic network costs
  about 2-3 s per megapixel on two CPU cores, so a 12 MP photo took most of ``analyze``'s time, and a whole-image
  model sees the whole photo in one pass instead of in windows (its head compares each region with the rest of
  the image). The effect: the models were trained on native-resolution crops of images under 1 MP, and reducing a
  photo averages away the 8x8 JPEG blocking and the sensor noise of the original, so on a large photo the map
  answers at the copy's resolution (a 12 MP photo: 2.4 original pixels per copy pixel) and mostly from what
  survives the reduction (region boundaries, noise-level differences, lighting) rather than compression traces.
  An edit that spans fewer than about 10 copy pixels (25 px of a 12 MP photo) is below what it can show. Images
  up to 2 MP (every CASIA, Columbia or fixture image) are read as they are, so evaluations do not change;
  ``working_pixels=None`` reads every image at full size.
* :class:`ClassifierDetector` (``classifier``): a classifier of notebook 05 on tiles of its training crop
  (:func:`helpers.inference.classify_tiles`). Score: the maximum tile probability; heatmap: each tile's
  probability painted over its tile; mask: empty unless the score is above the saved threshold, then the tiles
  above it. The threshold was chosen on one central crop per validation image and a maximum over many tiles runs
  higher, so on large images the verdict leans towards "tampered": read the score, not only the mask.

Both are built from a saved model (``path=``: the folder, ``.keras`` or ``.json``, see
:mod:`helpers.models.artifact`) or from a model in memory (``model=``, with its description as ``info=`` or the
settings as keywords), so a notebook can evaluate a model before saving it. :func:`learned_detectors` turns every
saved model in a folder (notebook 05's classifier and notebook 06's mask model share ``runs/<profile>/models``)
into its detector.
"""

from __future__ import annotations

import os
from typing import Any

import keras
import numpy as np

from helpers.detectors.base import Detector, Prediction, register_detector
from helpers.detectors.copy_move import CopyMoveDetector
from helpers.detectors.mask_map import (
    DEFAULT_IMAGE_SCORE,
    DEFAULT_MASK_WORKING_PIXELS,
    MaskMapDetector,
    image_score_from_map,
)
from helpers.imageio import LoadedImage
from helpers.inference import classify_tiles, predict_mask
from helpers.models.artifact import describe_model, list_artifacts, load_model_artifact

__all__ = ["MaskModelDetector", "ClassifierDetector", "learned_detectors", "image_score_from_map",
           "DEFAULT_IMAGE_SCORE", "DEFAULT_MASK_WORKING_PIXELS"]

def _model_and_info(
    task: str, path: str | os.PathLike[str] | None, model: keras.Model | None, info: dict[str, Any] | None,
    settings: dict[str, Any],
) -> tuple[keras.Model, dict[str, Any]]:
    if (path is None) == (model is None):
        raise ValueError("give either path= (a saved model) or model= (a model in memory), not both or neither")
    chosen = {key: value for key, value in settings.items() if value is not None}
    if "threshold" in chosen and not 0.0 <= float(chosen["threshold"]) <= 1.0:  # also refuses NaN
        raise ValueError(f"threshold must lie in [0, 1], not {chosen['threshold']!r}")
    if path is not None:
        model, info = load_model_artifact(path, task=task)
        info = {**info, **chosen}
    else:
        written = ("format", "name", "model_file", "keras_version", "backend")  # what saving adds to a description
        stored = {k: v for k, v in (info or {}).items() if k not in written}
        info = {**{k: v for k, v in (info or {}).items() if k in written},
                **describe_model(model, {**stored, "task": stored.get("task", task), **chosen})}
    if info["task"] != task:
        raise ValueError(f"a {info['task']} model cannot be used as a {task} detector")
    return model, info


@register_detector("mask_model")
class MaskModelDetector(MaskMapDetector):
    """A saved (or in-memory) mask model run with Keras, over the whole image or by tiles; see the module
    docstring (the working copy, threshold and image score are :class:`MaskMapDetector`'s)."""

    description = "a mask model of notebook 06, tiled over the whole image (score: mean of its top 1 % pixels)"

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        model: keras.Model | None = None,
        info: dict[str, Any] | None = None,
        threshold: float | None = None,
        tile: int | None = None,
        overlap: float | int | None = None,
        image_score: dict[str, Any] | None = None,
        batch_size: int = 8,
        working_pixels: int | None = DEFAULT_MASK_WORKING_PIXELS,
        matching: bool | CopyMoveDetector = True,
    ) -> None:
        self.model, info = _model_and_info(
            "segment", path, model, info, {"threshold": threshold, "tile": tile, "overlap": overlap,
                                           "image_score": image_score})
        super().__init__(info, working_pixels=working_pixels, matching=matching)
        self.path = str(path) if path is not None else None
        self.batch_size = int(batch_size)

    def working_heatmap(self, rgb: np.ndarray) -> np.ndarray:
        return predict_mask(
            self.model, rgb, tile=int(self.info["tile"]), overlap=self.info["overlap"],
            streams=self.info["streams"], batch_size=self.batch_size, ela_quality=int(self.info["ela_quality"]),
            srm_bank=str(self.info["srm_bank"]), flip_views=self.flip_views,
        )


@register_detector("classifier")
class ClassifierDetector(Detector):
    """A saved (or in-memory) image classifier on tiles of its crop size; see the module docstring."""

    description = "a classifier of notebook 05 on tiles of its training crop (score: the most suspicious tile)"
    trained = True

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        model: keras.Model | None = None,
        info: dict[str, Any] | None = None,
        threshold: float | None = None,
        batch_size: int = 16,
    ) -> None:
        self.model, self.info = _model_and_info("classify", path, model, info, {"threshold": threshold})
        self.path = str(path) if path is not None else None
        self.threshold = float(self.info["threshold"])
        self.batch_size = int(batch_size)

    def predict(self, image: LoadedImage) -> Prediction:
        tiles = classify_tiles(
            self.model, image.rgb, size=int(self.info["crop"]), streams=self.info["streams"],
            ela_quality=int(self.info["ela_quality"]), srm_bank=str(self.info["srm_bank"]),
            batch_size=self.batch_size,
        )
        heatmap = tiles.upsample()
        score = tiles.image_score
        mask = heatmap > self.threshold if score > self.threshold else np.zeros(heatmap.shape, bool)
        return Prediction(heatmap=heatmap, mask=mask, score=score)


_DETECTOR_FOR_TASK: dict[str, type[Detector]] = {"segment": MaskModelDetector, "classify": ClassifierDetector}


def learned_detectors(path: str | os.PathLike[str], *, threshold: float | None = None) -> dict[str, Detector]:
    """One detector per saved model at ``path`` (a folder, ``.keras`` or ``.json``), each model loaded once.

    Named by the registry (``mask_model``, ``classifier``); when a folder holds two models of one task, each is
    named ``registry-name:artifact-name``. ``threshold`` overrides the saved thresholds. Raises
    :class:`helpers.models.artifact.ModelArtifactError` when ``path`` holds no saved model.
    """
    loaded = []
    for keras_path, _ in list_artifacts(path):
        model, info = load_model_artifact(keras_path)
        cls = _DETECTOR_FOR_TASK[info["task"]]
        loaded.append((cls.name, info["name"], cls(model=model, info=info, threshold=threshold)))
    counts: dict[str, int] = {}
    for registry_name, _, _ in loaded:
        counts[registry_name] = counts.get(registry_name, 0) + 1
    return {(registry_name if counts[registry_name] == 1 else f"{registry_name}:{artifact}"): detector
            for registry_name, artifact, detector in loaded}
