"""A gallery of the online manipulation families (notebook 01) and of training batches (notebook 06)."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np

from helpers.datasets.families import LOCAL_FAMILIES, FamilyConfig, make_forgery
from helpers.datasets.online import PhotoPool
from helpers.imageio import load_mask, load_rgb
from helpers.plots import for_display, outline_truth
from helpers.viz import overlay_mask

__all__ = ["show_families"]


def show_families(photos: PhotoPool, *, families: Sequence[str] = LOCAL_FAMILIES, size: int = 192, seed: int = 0,
                  columns: int = 5) -> plt.Figure:
    """One online forgery per family: the image with its mask outlined, titled with the family and the
    compression chain the sample went through."""
    samples = []
    for index, family in enumerate(families):
        config = FamilyConfig(authentic_fraction=0.0, families=(family,))
        for attempt in range(20):  # an edit on a flat crop can change nothing; draw again
            sample = make_forgery(np.random.default_rng([seed, index, attempt]), photos, size, config,
                                  photo_count=len(photos))
            if sample.label:
                break
        samples.append(sample)
    rows = -(-len(samples) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(2.6 * columns, 3.0 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.set_axis_off()
    for ax, sample in zip(axes.ravel(), samples):
        ax.imshow(sample.image)
        outline_truth(ax, sample.mask)
        ax.set_title(f"{sample.family}\n{sample.compression}, {sample.mask.mean():.0%} edited", fontsize=9)
    fig.tight_layout()
    return fig


def show_batch(data, *, shown: Sequence[str] = ("ela", "ghost", "dq"), index: int = 0, columns: int = 6) -> plt.Figure:
    """One batch of :class:`~helpers.datasets.online.OnlineForgeries`: each sample with its mask outlined, then
    the first channel (or the magnitude) of each stream in ``shown`` (notebook 06)."""
    x, y = data[index]
    count = min(columns, len(y))
    rows = 1 + len(shown)
    fig, axes = plt.subplots(rows, count, figsize=(2.2 * count, 2.3 * rows), squeeze=False)
    for i in range(count):
        forgery = data.sample(index, i)
        axes[0, i].imshow(overlay_mask(forgery.image, forgery.mask, alpha=0.0))
        axes[0, i].set_title(f"{forgery.family}\n{forgery.compression}", fontsize=8)
        for row, stream in enumerate(shown, start=1):
            values = x[stream][i]
            plane = np.abs(values).mean(axis=-1) if stream in ("ela", "srm") else values[..., -1]
            axes[row, i].imshow(plane, cmap="magma")
    for ax, label in zip(axes[:, 0], ("sample", *shown)):
        ax.set_ylabel(label)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return fig


_CURVE_LABELS = {"val_pixel_f1": "validation pixel F1 (at its map threshold)", "val_auc": "validation ROC AUC"}


def plot_learning_curves(curves: dict[str, list[dict]], ax=None, *, metric: str = "val_pixel_f1") -> plt.Axes:
    """A validation ``metric`` against training samples seen, one line per model: pixel F1 of the mask models
    (notebook 06) or ROC AUC of the classifiers (``metric="val_auc"``, notebook 05)."""
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.5))
    for name, curve in curves.items():
        points = [(row["samples_seen"], row[metric]) for row in curve if metric in row]
        if points:
            seen, f1 = zip(*points)
            ax.plot(seen, f1, marker="o", label=name)
    ax.set_xlabel("training forgeries seen")
    ax.set_ylabel(_CURVE_LABELS.get(metric, metric.replace("_", " ")))
    ax.grid(alpha=0.3)
    ax.legend()
    return ax


def plot_scores(scores, *, column: str = "pixel_f1", floor: str = "floor_f1") -> plt.Figure:
    """Bars of ``column`` per method for each part (``scores``: columns ``(part, metric)``, index methods),
    with the all-tampered floor of each part as a dashed line (notebooks 06 and 07)."""
    parts = list(dict.fromkeys(part for part, _ in scores.columns))
    fig, axes = plt.subplots(1, len(parts), figsize=(5.5 * len(parts), 3.6), squeeze=False)
    for ax, part in zip(axes[0], parts):
        values = scores[(part, column)].astype(float)
        colours = ["tab:blue" if np.isfinite(v) else "lightgrey" for v in values]
        ax.barh(values.index, np.nan_to_num(values.to_numpy()), color=colours)
        ax.axvline(float(scores[(part, floor)].astype(float).max()), color="black", linestyle="--",
                   label="all-tampered floor")
        ax.set_title(part)
        ax.set_xlabel(column.replace("_", " "))
        ax.invert_yaxis()
        ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return fig


def show_heatmaps(result, frame, *, n: int = 4, seed: int = 0, title: str = "") -> plt.Figure:
    """Tampered images of ``frame`` (true region outlined) beside every method's heatmap, from an evaluation
    run with ``keep_heatmaps=True`` (notebook 06)."""
    tampered = frame[frame["label"] == 1]
    tampered = tampered[tampered["mask_path"].astype(str).str.len() > 0]
    picks = tampered.sample(n=min(n, len(tampered)), random_state=seed) if len(tampered) else tampered
    methods = result.detectors
    fig, axes = plt.subplots(len(picks), 1 + len(methods), figsize=(2.2 * (1 + len(methods)), 2.3 * max(1, len(picks))),
                             squeeze=False)
    for row, item in enumerate(picks.itertuples(index=False)):
        image, truth = for_display(load_rgb(item.image_path)), for_display(load_mask(item.mask_path), nearest=True)
        axes[row, 0].imshow(overlay_mask(image, truth, alpha=0.0))
        for col, name in enumerate(methods, start=1):
            heatmap = for_display(np.asarray(result.heatmap(name, str(item.image_path)), np.float32))
            axes[row, col].imshow(heatmap, cmap="inferno", vmin=0, vmax=1)
            if row == 0:
                axes[row, col].set_title(name, fontsize=9)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
