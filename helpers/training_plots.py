"""Figures of notebook 05 (and 06): ROC curves of several models, a confusion matrix, training curves.

Why separate from :mod:`helpers.viz`: these draw *results* (scores, histories), not images, and take the
outputs of :mod:`helpers.metrics` and :mod:`helpers.training` as they are. Every function returns the
matplotlib ``Figure`` (the notebook shows it), uses no global state beyond matplotlib's, and needs no Keras:
a history may be a Keras ``History``, its ``.history`` dict, a DataFrame or the ``history.csv`` that
:func:`helpers.training.standard_callbacks` writes.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FormatStrFormatter

from helpers.metrics import roc_points

__all__ = ["plot_roc_curves", "plot_confusion", "history_frame", "plot_history"]


def plot_roc_curves(
    results: Mapping[str, tuple[Any, Any]], *, title: str = "ROC curves", ax: plt.Axes | None = None
) -> Figure:
    """All models' ROC curves on one axes, sorted by AUC in the legend; ``results`` is ``{name: (y_true, scores)}``.

    A model's colour follows its position in ``results``, so two figures made from dicts in the same order
    colour each model alike. Models whose labels hold one class (no ROC curve) are listed as ``AUC n/a``. The
    dotted diagonal is chance. Neural networks (names containing ``"cnn"``, ``"resnet"`` or ``"stream"``) are
    drawn solid and thicker, every other model dashed, so the two families stay apart among many curves.
    """
    if ax is None:
        fig, ax = plt.subplots(figsize=(6.4, 5.6))
    else:
        fig = ax.figure
    curves = []
    for i, (name, (y_true, scores)) in enumerate(results.items()):
        fpr, tpr, auc = roc_points(y_true, scores)
        curves.append((i, name, fpr, tpr, auc))
    curves.sort(key=lambda c: -c[4] if not math.isnan(c[4]) else math.inf)
    colours = plt.get_cmap("tab10" if len(curves) <= 10 else "tab20")
    for i, name, fpr, tpr, auc in curves:  # colour by position in ``results``: the same model, the same colour
        deep = any(key in name.lower() for key in ("cnn", "resnet", "stream"))
        label = f"{name} (AUC {auc:.3f})" if not math.isnan(auc) else f"{name} (AUC n/a)"
        if len(fpr):
            ax.plot(fpr, tpr, color=colours(i % colours.N), lw=2.2 if deep else 1.4, ls="-" if deep else "--",
                    label=label)
        else:
            ax.plot([], [], color=colours(i % colours.N), label=label)
    ax.plot([0, 1], [0, 1], color="grey", lw=1, ls=":", label="chance (AUC 0.5)")
    ax.set(xlim=(0, 1), ylim=(0, 1.01), xlabel="false positive rate", ylabel="true positive rate", title=title)
    ax.set_aspect("equal")
    ax.legend(loc="lower right", fontsize=8, framealpha=0.9)
    fig.tight_layout()
    return fig


def plot_confusion(
    cm: Sequence[Sequence[int]] | np.ndarray,
    class_names: Sequence[str],
    *,
    title: str = "confusion matrix",
    normalize: bool = True,
    ax: plt.Axes | None = None,
) -> Figure:
    """A confusion matrix (rows: truth, columns: prediction) with counts, and row shares as colour.

    Colouring by the share of each true class (``normalize``) keeps a rare class readable next to a common one;
    the cells still print the counts.
    """
    matrix = np.asarray(cm, dtype=np.int64)
    names = list(class_names)
    if matrix.shape != (len(names), len(names)):
        raise ValueError(f"confusion matrix {matrix.shape} does not fit {len(names)} class names")
    if ax is None:
        side = 1.1 + 0.9 * len(names)
        fig, ax = plt.subplots(figsize=(side + 1.0, side))
    else:
        fig = ax.figure
    totals = matrix.sum(axis=1, keepdims=True)
    shares = np.divide(matrix, totals, out=np.zeros(matrix.shape), where=totals > 0) if normalize else matrix
    image = ax.imshow(shares, cmap="Blues", vmin=0, vmax=1 if normalize else max(1, matrix.max()))
    for (i, j), count in np.ndenumerate(matrix):
        share = shares[i, j]
        text = f"{count}\n{share:.0%}" if normalize else f"{count}"
        ax.text(j, i, text, ha="center", va="center", fontsize=9,
                color="white" if (share if normalize else count / max(1, matrix.max())) > 0.55 else "black")
    ax.set_xticks(range(len(names)), names, rotation=30, ha="right")
    ax.set_yticks(range(len(names)), names)
    ax.set(xlabel="predicted", ylabel="true", title=title)
    ax.grid(False)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of the true class" if normalize else "count")
    fig.tight_layout()
    return fig


def history_frame(history: Any) -> pd.DataFrame:
    """A per-epoch DataFrame from a Keras ``History``, its dict, a DataFrame or a CSV path (``epoch`` column)."""
    if isinstance(history, (str, os.PathLike)):
        frame = pd.read_csv(Path(history))
    elif isinstance(history, pd.DataFrame):
        frame = history.copy()
    elif hasattr(history, "history") and isinstance(history.history, Mapping):
        frame = pd.DataFrame(dict(history.history))
    elif isinstance(history, Mapping):
        frame = pd.DataFrame(dict(history))
    else:
        raise TypeError(f"cannot read a training history from {type(history).__name__}")
    if "epoch" not in frame:
        frame.insert(0, "epoch", np.arange(len(frame)))
    frame["epoch"] = frame["epoch"].astype(int) + (1 if frame["epoch"].min() == 0 else 0)
    return frame


def _is_history(value: Any) -> bool:
    return isinstance(value, (str, os.PathLike, pd.DataFrame)) or hasattr(value, "history") or (
        isinstance(value, Mapping) and all(isinstance(v, (list, tuple, np.ndarray)) for v in value.values())
    )


def plot_history(
    history_or_csv: Any,
    *,
    metrics: Sequence[str] = ("loss", "auc", "accuracy"),
    title: str | None = None,
) -> Figure:
    """Training curves: one panel per metric in ``metrics`` that the history has, training solid, validation dashed.

    ``history_or_csv`` is one history (any form :func:`history_frame` reads) or a mapping ``{model name:
    history}`` to compare several models, one colour each. Epochs start at 1. A validation curve below the
    training one early on is dropout's doing (it is off at validation), not a leak.
    """
    histories = (
        {"": history_or_csv} if _is_history(history_or_csv) else dict(history_or_csv)
    )
    frames = {name: history_frame(h) for name, h in histories.items()}
    shown = [m for m in metrics if any(m in f or f"val_{m}" in f for f in frames.values())]
    if not shown:
        raise ValueError(f"none of {list(metrics)} is in the history")
    fig, axes = plt.subplots(1, len(shown), figsize=(4.6 * len(shown), 3.6), squeeze=False)
    colours = plt.get_cmap("tab10")
    for ax, metric in zip(axes[0], shown):
        for i, (name, frame) in enumerate(frames.items()):
            prefix = f"{name}: " if name else ""
            if metric in frame:
                ax.plot(frame["epoch"], frame[metric], color=colours(i % 10), marker="o", ms=3,
                        label=f"{prefix}train")
            if f"val_{metric}" in frame:
                ax.plot(frame["epoch"], frame[f"val_{metric}"], color=colours(i % 10), ls="--", marker="o", ms=3,
                        label=f"{prefix}validation")
        ax.set(xlabel="epoch", ylabel=metric, title=metric)
        if metric == "loss":
            values = pd.concat([f[c] for f in frames.values() for c in (metric, f"val_{metric}") if c in f])
            if values.min() > 0 and values.max() / values.min() > 5:
                ax.set_yscale("log")  # one diverging validation loss would flatten every other curve
                ax.yaxis.set_major_formatter(FormatStrFormatter("%.2g"))
                ax.yaxis.set_minor_formatter(FormatStrFormatter("%.2g"))
        epochs = max(int(f["epoch"].max()) for f in frames.values())
        ax.set_xticks(range(1, epochs + 1, max(1, epochs // 10)))
        if metric in ("auc", "accuracy"):
            ax.set_ylim(0, 1.02)
    handles, labels = axes[0][0].get_legend_handles_labels()
    if len(frames) > 1:  # one legend for the figure, beside the panels rather than over the curves
        fig.legend(handles, labels, loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8, frameon=False)
    else:
        axes[0][0].legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
