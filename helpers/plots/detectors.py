"""One detector's heatmap and mask on a few images, beside the truth (notebook 04).

Notebook 04 shows every training-free detector on the same images, so the methods compare at a glance: per image
three panels, the image with the true region outlined, the heatmap on a fixed ``[0, 1]`` scale (so a dark map
means weak evidence, not a rescaled one), and the detector's own mask with the truth's outline over it.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from helpers.detectors import Detector, Prediction, get_detector
from helpers.evaluation.pixel import confusion_counts, f1_from_counts
from helpers.imageio import LoadedImage, as_loaded_image, load_image, load_mask
from helpers.plots import outline_truth

__all__ = ["show_detector", "detector_example", "panel_titles"]

HEATMAP_CMAP = "inferno"


def detector_example(manifest: pd.DataFrame, image: str) -> tuple[LoadedImage, np.ndarray | None, str]:
    """The manifest row whose ``image`` entry is ``image``, loaded for :func:`show_detector`: the image, its mask
    (``None`` for an authentic row) and a title, ``"<dataset>: <kind>"``.

    A manifest without that row (another fixture set) lends its first tampered image with a mask instead, with
    a warning naming both, so a notebook still shows something comparable.
    """
    rows = manifest[manifest["image"].astype(str) == str(image)]
    if rows.empty:
        has_mask = manifest["mask_path"].fillna("").astype(str).str.len() > 0
        rows = manifest[(manifest["label"] == 1) & has_mask]
        if rows.empty:
            source = manifest.attrs.get("manifest", "the manifest")
            raise ValueError(f"{source}: no row {image!r} and no tampered image with a mask to show instead")
        warnings.warn(f"{image!r} is not in {manifest.attrs.get('manifest', 'the manifest')}; showing "
                      f"{rows.iloc[0]['image']!r} instead", stacklevel=2)
    row = rows.iloc[0]
    mask_path = row["mask_path"]
    truth = load_mask(mask_path) if isinstance(mask_path, str) and mask_path else None
    return load_image(row["image_path"]), truth, f"{row['dataset']}: {row['kind']}"


def panel_titles(title: str, prediction: Prediction, truth: np.ndarray | None) -> tuple[str, str, str]:
    """Titles of one image's three panels: its name, the image score, and the mask's F1 against the truth (or,
    without a truth, the share of pixels the mask flags)."""
    score = "no image score" if prediction.score is None else f"score {prediction.score:.2f}"
    if truth is not None and truth.any():
        tp, fp, fn, _ = confusion_counts(prediction.mask, truth)
        verdict = f"mask, F1 {f1_from_counts(tp, fp, fn):.2f}"
    else:
        verdict = f"mask, {prediction.mask.mean():.0%} flagged"
    return title, f"heatmap, {score}", verdict


def show_detector(detector: Detector | str, images: Sequence[LoadedImage | Any],
                  masks: Sequence[np.ndarray | None], titles: Sequence[str], *, panel_size: float = 2.6) -> plt.Figure:
    """``detector`` (an instance or a registered name) on ``images``: per image, side by side, the image with
    its true region outlined in red, the heatmap (``inferno``, 0 to 1) and the detector's mask (white) under the
    same outline. ``masks`` holds one truth per image (``None``: authentic or unknown); ``titles``
    names each image. Returns the figure, titled with the detector's name and description."""
    built = get_detector(detector) if isinstance(detector, str) else detector
    if not isinstance(built, Detector):
        raise TypeError(f"show_detector needs a Detector or a detector name, not a {type(built).__name__}")
    if not (len(images) == len(masks) == len(titles)) or not images:
        raise ValueError(f"show_detector needs as many masks and titles as images, at least one: got "
                         f"{len(images)} images, {len(masks)} masks, {len(titles)} titles")
    loaded = [as_loaded_image(image) for image in images]
    truths: list[np.ndarray | None] = []
    for image, truth, title in zip(loaded, masks, titles):
        if truth is not None:
            truth = np.asarray(truth).astype(bool)
            if truth.shape != image.shape:
                raise ValueError(f"{title}: mask is {truth.shape[1::-1]} (w, h) but the image is "
                                 f"{image.shape[::-1]}")
        truths.append(truth)
    fig, axes = plt.subplots(1, 3 * len(loaded), figsize=(3 * panel_size * len(loaded), panel_size + 0.6),
                             squeeze=False)
    for index, (image, truth, title) in enumerate(zip(loaded, truths, titles)):
        prediction = built(image)
        shown_image, shown_heatmap, shown_mask = axes[0, 3 * index: 3 * index + 3]
        shown_image.imshow(image.rgb)
        shown_heatmap.imshow(prediction.heatmap, cmap=HEATMAP_CMAP, vmin=0.0, vmax=1.0, interpolation="nearest")
        shown_mask.imshow(prediction.mask, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        outline_truth(shown_image, truth)
        outline_truth(shown_mask, truth)
        for ax, text in zip((shown_image, shown_heatmap, shown_mask), panel_titles(title, prediction, truth)):
            ax.set_title(text, fontsize=9)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.grid(False)  # a notebook's seaborn theme would draw its grid over the pictures
    fig.suptitle(f"{built.name}: {built.description}" if built.description else built.name, fontsize=11)
    fig.tight_layout()
    return fig
