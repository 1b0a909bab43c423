"""The families gallery of notebook 01 (one edited sample per family, its region outlined) and notebook 06's
maps side by side."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from helpers.datasets.online import packaged_photos  # noqa: E402
from helpers.plots import TRUTH_COLOUR  # noqa: E402
from helpers.plots import DISPLAY_SIDE  # noqa: E402
from helpers.plots.forgeries import show_families, show_heatmaps  # noqa: E402


def test_one_outlined_forgery_per_family() -> None:
    families = ("splice", "blur", "colour")
    fig = show_families(packaged_photos(["coffee", "astronaut"]), families=families, size=64, columns=2)
    axes = fig.axes
    assert len(axes) == 4 and not axes[3].images  # 2 x 2 grid, the spare panel left empty
    for ax, family in zip(axes, families):
        assert ax.get_title().splitlines()[0] == family
        assert ax.images[0].get_array().shape == (64, 64, 3)
        (contour,) = ax.collections  # every sample is a forgery, so every panel outlines a region
        assert tuple(contour.get_edgecolor()[0][:3]) == TRUTH_COLOUR
    plt.close(fig)


def test_heatmaps_of_a_large_image_are_drawn_at_display_size(tmp_path) -> None:
    import numpy as np
    import pandas as pd

    from helpers.imageio import save_png

    rgb = np.full((1200, 1600, 3), 120, np.uint8)
    mask = np.zeros((1200, 1600), np.uint8)
    mask[300:600, 400:800] = 255
    save_png(tmp_path / "big.png", rgb)
    save_png(tmp_path / "big_mask.png", mask)
    frame = pd.DataFrame({"image_path": [str(tmp_path / "big.png")], "mask_path": [str(tmp_path / "big_mask.png")],
                          "label": [1]})
    heatmap = (mask > 0).astype(np.float32)

    class Result:
        detectors = ["dq"]

        def heatmap(self, name: str, path: str) -> np.ndarray:
            return heatmap

    fig = show_heatmaps(Result(), frame, n=1)
    image_panel, map_panel = fig.axes
    assert image_panel.images[0].get_array().shape == (288, DISPLAY_SIDE, 3)
    shown = np.asarray(map_panel.images[0].get_array())
    assert shown.shape == (288, DISPLAY_SIDE)
    assert shown[72:144, 96:192].min() == 1.0 and shown[:60].max() == 0.0  # the region stays where it was
    plt.close(fig)
