"""Figures shared by notebooks (each module names the notebook that shows it), and the one way they mark a true
region: :func:`outline_truth`."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from helpers.viz import TAMPERED_COLOUR

__all__ = ["TRUTH_COLOUR", "outline_truth"]

TRUTH_COLOUR = tuple(channel / 255 for channel in TAMPERED_COLOUR)
"""The workbook's red for a tampered region, as matplotlib's 0-1 RGB."""


def outline_truth(ax: plt.Axes, truth: np.ndarray | None, *, width: float = 1.4) -> None:
    """Draw the true region's boundary on ``ax`` (over an image drawn with ``imshow``) as a red contour: a line,
    not pixels, so it stays visible however small the panel is drawn. Nothing for ``None`` or an empty mask."""
    if truth is not None and np.any(truth):
        ax.contour(np.asarray(truth, dtype=np.float32), levels=[0.5], colors=[TRUTH_COLOUR], linewidths=width)
