"""Figure helpers shared by the notebooks: example grids with mask overlays, counts, distributions (notebooks
01-04), predictions beside the truth (06) and the detectors' comparison beside the floor (07)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from helpers.forensics import ela
from helpers.forensics.maps import trace_maps
from helpers.imageio import ImageLoadError, load_mask, load_rgb

__all__ = ["overlay_mask", "mask_outline", "show_examples", "plot_counts", "show_traces", "show_mask_predictions",
           "plot_detector_comparison"]

TAMPERED_COLOUR = (255, 40, 40)


def mask_outline(mask: np.ndarray) -> np.ndarray:
    """Boundary pixels of a bool mask (4-neighbourhood), for drawing a region without hiding it."""
    mask = mask.astype(bool)
    inner = mask.copy()
    inner[1:, :] &= mask[:-1, :]
    inner[:-1, :] &= mask[1:, :]
    inner[:, 1:] &= mask[:, :-1]
    inner[:, :-1] &= mask[:, 1:]
    return mask & ~inner


def overlay_mask(
    rgb: np.ndarray, mask: np.ndarray | None, alpha: float = 0.35, colour: Sequence[int] = TAMPERED_COLOUR
) -> np.ndarray:
    """The image with the tampered region tinted and outlined (returns a new uint8 array)."""
    out = rgb.astype(np.float32).copy()
    if mask is None or not mask.any():
        return rgb.copy()
    tint = np.asarray(colour, np.float32)
    region = mask.astype(bool)
    out[region] = out[region] * (1 - alpha) + tint * alpha
    edge = mask_outline(region)
    out[edge] = tint
    return np.clip(out, 0, 255).astype(np.uint8)


def show_examples(
    manifest: pd.DataFrame,
    per_group: int = 4,
    by: str = "kind",
    seed: int = 0,
    with_mask_column: bool = True,
    cell_size: float = 2.6,
    title: str | None = None,
) -> plt.Figure:
    """A grid of examples, one row per value of ``by``: each image with its mask outlined, and the mask.

    Rows without a mask (authentic images) show the image alone. Unreadable files are shown as a labelled
    blank instead of failing the figure.
    """
    groups = sorted(manifest[by].astype(str).unique()) if by in manifest else ["all"]
    columns = per_group * (2 if with_mask_column else 1)
    fig, axes = plt.subplots(
        len(groups), columns, figsize=(cell_size * columns, cell_size * len(groups)), squeeze=False
    )
    for row, value in enumerate(groups):
        subset = manifest[manifest[by].astype(str) == value] if by in manifest else manifest
        picks = subset.sample(n=min(per_group, len(subset)), random_state=seed) if len(subset) else subset
        for i in range(per_group):
            ax_img = axes[row, i * 2] if with_mask_column else axes[row, i]
            ax_mask = axes[row, i * 2 + 1] if with_mask_column else None
            for ax in (ax_img, ax_mask):
                if ax is not None:
                    ax.axis("off")
            if i >= len(picks):
                continue
            entry = picks.iloc[i]
            try:
                rgb = load_rgb(entry["image_path"])
                mask = load_mask(entry["mask_path"]) if entry["mask_path"] else None
            except ImageLoadError as exc:
                ax_img.text(0.5, 0.5, f"unreadable\n{exc.reason}", ha="center", va="center", fontsize=7)
                continue
            # Outline only: the forgery itself stays visible, as a student should first try to spot it.
            ax_img.imshow(overlay_mask(rgb, mask, alpha=0.0))
            ax_img.set_title(f"{value} · {rgb.shape[1]}×{rgb.shape[0]}", fontsize=8)
            if ax_mask is not None:
                ax_mask.imshow(mask if mask is not None else np.zeros(rgb.shape[:2], bool), cmap="gray", vmin=0, vmax=1)
                fraction = f"{mask.mean():.1%}" if mask is not None else "no mask"
                ax_mask.set_title(f"mask ({fraction})", fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_counts(manifest: pd.DataFrame, column: str = "kind", hue: str | None = "dataset", ax=None) -> plt.Axes:
    """A bar chart of rows per ``column`` (optionally split by ``hue``), with the count on each bar."""
    import seaborn as sns

    ax = ax or plt.subplots(figsize=(6, 3.2))[1]
    data = manifest.assign(**{column: manifest[column].astype(str)})
    use_hue = hue if hue and hue in data and data[hue].nunique() > 1 else None
    sns.countplot(data=data, x=column, hue=use_hue, ax=ax, order=sorted(data[column].unique()))
    for container in ax.containers:
        ax.bar_label(container, fontsize=8)
    ax.set_ylabel("images")
    ax.set_title(f"images per {column}")
    return ax


def show_traces(
    samples: Sequence[tuple[str, np.ndarray, np.ndarray | None]],
    ela_qualities: Sequence[int] = (75, 85, 95),
    cell_size: float = 2.4,
) -> plt.Figure:
    """One row per ``(title, rgb, mask)``: image | mask | ELA at each quality | SRM | noise level | ghost.

    ELA maps share one scale per row (its 99th percentile), so qualities compare within a row; SRM is shown as
    the magnitude of Zhou et al.'s residuals,
    the noise level per 16x16 block, and the JPEG-ghost map of :func:`helpers.forensics.maps.trace_maps`.
    """
    columns = ["image", "mask", *[f"ELA q{q}" for q in ela_qualities], "SRM |residual|", "noise level", "JPEG ghost"]
    fig, axes = plt.subplots(len(samples), len(columns), figsize=(cell_size * len(columns), cell_size * len(samples)),
                             squeeze=False)
    for row, (title, rgb, mask) in enumerate(samples):
        maps = trace_maps(rgb, maps=("srm", "noise", "ghost"))
        levels = [ela(rgb, q).mean(axis=2) for q in ela_qualities]
        top = float(np.percentile(np.stack(levels), 99)) or 1.0
        panels: list[tuple[np.ndarray, dict]] = [
            (overlay_mask(rgb, mask, alpha=0.0), {}),
            (mask if mask is not None else np.zeros(rgb.shape[:2], bool), {"cmap": "gray", "vmin": 0, "vmax": 1}),
            *[(level, {"cmap": "magma", "vmin": 0, "vmax": top}) for level in levels],
            (maps["srm"], {"cmap": "magma", "vmin": 0, "vmax": float(np.percentile(maps["srm"], 99)) or 1.0}),
            (maps["noise"], {"cmap": "viridis"}),
            (maps["ghost"], {"cmap": "magma"}),
        ]
        for col, (picture, style) in enumerate(panels):
            ax = axes[row, col]
            ax.imshow(picture, **style)
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(columns[col], fontsize=9)
        axes[row, 0].set_ylabel(title, fontsize=8)
    fig.tight_layout()
    return fig


def show_mask_predictions(
    rows: pd.DataFrame,
    results: Mapping[str, Any],
    *,
    threshold: float = 0.5,
    ela_quality: int = 90,
    cell_size: float = 2.5,
    title: str | None = None,
) -> plt.Figure:
    """Predictions beside the truth: image | ELA | ground truth | one heatmap per model, a row per image.

    ``rows`` are manifest rows (``image_path``, ``mask_path``); ``results`` maps a column title to an
    evaluation (:class:`helpers.evaluation.protocol.EvaluationResult`, run with ``keep_heatmaps=True``) holding
    a detector of that name, or exactly one detector. The image carries the true mask's outline; ELA (raw,
    averaged over colours) on a fixed 0-8 grey-level scale, the same for every image so error levels compare;
    each heatmap (0 black .. 1 yellow) has the region above ``threshold`` outlined in cyan and the image's pixel
    F1 (or, on an authentic image, the fraction it flags) in its title.
    """
    names = list(results)
    columns = 3 + len(names)
    fig, axes = plt.subplots(len(rows), columns, figsize=(cell_size * columns, cell_size * 0.8 * len(rows) + 0.6),
                             squeeze=False)
    for r, row in enumerate(rows.itertuples(index=False)):
        rgb = load_rgb(row.image_path)
        mask_path = getattr(row, "mask_path", "")
        has_mask = isinstance(mask_path, str) and mask_path != ""
        mask = load_mask(mask_path, size=(rgb.shape[1], rgb.shape[0])) if has_mask else np.zeros(rgb.shape[:2], bool)
        panels: list[tuple[str, np.ndarray, dict[str, Any]]] = [
            (Path(str(row.image_path)).name[:28], overlay_mask(rgb, mask, alpha=0.0), {}),
            ("ELA (0-8 levels)", ela(rgb, ela_quality).mean(axis=2), {"cmap": "magma", "vmin": 0, "vmax": 8}),
            (f"truth ({mask.mean():.1%} tampered)", mask, {"cmap": "gray", "vmin": 0, "vmax": 1}),
        ]
        for name in names:
            result = results[name]
            detectors = result.detectors
            detector = name if name in detectors else (detectors[0] if len(detectors) == 1 else name)
            heatmap = result.heatmap(detector, str(row.image_path))
            scored = result.rows[(result.rows["detector"] == detector)
                                 & (result.rows["image_path"] == str(row.image_path))]
            f1 = float(scored["f1"].iloc[0]) if len(scored) and pd.notna(scored["f1"].iloc[0]) else float("nan")
            label = (f"{name}\nF1 {f1:.2f}" if mask.any() and np.isfinite(f1)
                     else f"{name}\nflags {np.mean(heatmap > threshold):.1%}")
            panels.append((label, heatmap, {"cmap": "viridis", "vmin": 0, "vmax": 1, "outline": heatmap > threshold}))
        for c, (text, picture, style) in enumerate(panels):
            ax = axes[r, c]
            outline = style.pop("outline", None)
            ax.imshow(picture, **style)
            if outline is not None and outline.any():
                edge = mask_outline(outline)
                ax.imshow(np.ma.masked_where(~edge, edge), cmap="cool", vmin=0, vmax=1, interpolation="nearest")
            ax.set_title(text, fontsize=8)
            ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig


def plot_detector_comparison(
    summary: pd.DataFrame,
    *,
    metrics: Sequence[tuple[str, str]] = (("pixel_f1", "pixel F1 at 0.5"), ("best_f1", "best-threshold F1")),
    datasets: Sequence[str] | None = None,
    height: float = 3.4,
) -> plt.Figure:
    """Bars per detector for each metric and dataset of an evaluation summary, the all-tampered floor of each
    dataset drawn across as a dashed line (the number every detector has to beat).

    ``summary`` is :attr:`helpers.evaluation.protocol.EvaluationResult.summary`; one row of panels per metric,
    one column per dataset (default: every dataset but the whole-manifest ``"(all)"`` when there are several).
    """
    names = list(dict.fromkeys(summary["dataset"]))
    if datasets is None:
        datasets = [d for d in names if d != "(all)"] or names
    detectors = list(dict.fromkeys(summary["detector"]))
    fig, axes = plt.subplots(len(metrics), len(datasets), figsize=(max(4.0, 0.55 * len(detectors) + 1.5) * len(datasets),
                                                                   height * len(metrics)), squeeze=False)
    colours = plt.get_cmap("tab10")
    for c, dataset in enumerate(datasets):
        part = summary[summary["dataset"] == dataset].set_index("detector").reindex(detectors)
        floor = float(part["floor_f1"].dropna().mean()) if part["floor_f1"].notna().any() else float("nan")
        for r, (column, label) in enumerate(metrics):
            ax = axes[r, c]
            values = part[column].astype(float)
            bars = ax.bar(range(len(detectors)), values.fillna(0.0), color=[colours(i % 10) for i in range(len(detectors))])
            for bar, value in zip(bars, values):
                ax.annotate("-" if np.isnan(value) else f"{value:.2f}", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                            ha="center", va="bottom", fontsize=7)
            if np.isfinite(floor) and column.endswith("f1"):
                ax.axhline(floor, color="black", linestyle="--", linewidth=1, label=f"all-tampered floor {floor:.2f}")
                ax.legend(fontsize=7, loc="upper right")
            ax.set_xticks(range(len(detectors)), detectors, rotation=30, ha="right", fontsize=8)
            ax.set_ylim(0, 1.05)
            ax.set_title(f"{dataset}: {label}", fontsize=9)
    fig.tight_layout()
    return fig
