"""Figure helpers shared by the notebooks: example grids with mask overlays, counts, distributions."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from helpers.imageio import ImageLoadError, load_mask, load_rgb

__all__ = ["overlay_mask", "mask_outline", "show_examples", "plot_counts", "show_traces"]

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
    the noise level per 16x16 block, and the JPEG-ghost map of :func:`helpers.forensics.separability.trace_maps`.
    """
    from helpers.forensics import ela
    from helpers.forensics.separability import trace_maps

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
