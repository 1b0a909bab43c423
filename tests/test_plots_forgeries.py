"""The families gallery of notebook 01: one edited sample per family, its region outlined."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from helpers.datasets.online import packaged_photos  # noqa: E402
from helpers.plots import TRUTH_COLOUR  # noqa: E402
from helpers.plots.forgeries import show_families  # noqa: E402


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
