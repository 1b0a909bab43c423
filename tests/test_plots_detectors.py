"""The per-detector figure of notebook 04: what it draws is the detector's own prediction, beside the truth."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from helpers.detectors import Detector, Prediction  # noqa: E402
from helpers.imageio import LoadedImage  # noqa: E402
from helpers.plots import TRUTH_COLOUR  # noqa: E402
from helpers.plots.detectors import panel_titles, show_detector  # noqa: E402


class LeftHalf(Detector):
    """Flags the left half of every image, with a horizontal ramp as its heatmap."""

    description = "left half, for the figure's tests"

    def predict(self, image: LoadedImage) -> Prediction:
        h, w = image.shape
        heatmap = np.tile(np.linspace(1.0, 0.0, w, dtype=np.float32), (h, 1))
        return Prediction(heatmap=heatmap, mask=heatmap > 0.5, score=0.75)


def test_figure_shows_each_images_prediction_and_truth() -> None:
    rng = np.random.default_rng(0)
    images = [LoadedImage(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)),
              LoadedImage(rng.integers(0, 256, (40, 20, 3), dtype=np.uint8))]
    truth = np.zeros((24, 32), bool)
    truth[:, :8] = True  # a quarter of the width, inside the flagged left half
    fig = show_detector(LeftHalf(), images, [truth, None], ["forgery", "authentic"])
    axes = fig.axes
    assert len(axes) == 6
    assert fig._suptitle.get_text() == "detector: left half, for the figure's tests"
    assert [ax.get_title() for ax in axes] == [
        "forgery", "heatmap, score 0.75", "mask, F1 0.67",  # 2TP/(2TP+FP+FN) = 16/(16+8) with TP 8, FP 8 columns
        "authentic", "heatmap, score 0.75", "mask, 50% flagged"]
    heatmap = axes[1].images[0]
    np.testing.assert_allclose(heatmap.get_array(), LeftHalf().predict(images[0]).heatmap)
    assert heatmap.get_clim() == (0.0, 1.0)
    np.testing.assert_array_equal(axes[2].images[0].get_array(), LeftHalf().predict(images[0]).mask)
    # The truth is outlined on the image and on the mask, in the workbook's red; the authentic image has none.
    for ax in (axes[0], axes[2]):
        (contour,) = ax.collections
        np.testing.assert_allclose(contour.get_edgecolor()[0][:3], TRUTH_COLOUR)
        vertices = np.concatenate([path.vertices for path in contour.get_paths()])
        assert vertices[:, 0].max() == pytest.approx(7.5) and vertices[:, 0].min() >= -0.5  # columns 0..7
    assert not axes[3].collections and not axes[5].collections
    assert axes[4].images[0].get_array().shape == (40, 20)
    plt.close(fig)


def test_titles_without_score_or_truth() -> None:
    heatmap = np.zeros((4, 4), np.float32)
    heatmap[0, :] = 1.0
    prediction = Prediction.from_heatmap(heatmap)
    assert panel_titles("x", prediction, None) == ("x", "heatmap, no image score", "mask, 25% flagged")
    assert panel_titles("x", prediction, np.zeros((4, 4), bool))[2] == "mask, 25% flagged"


def test_bad_input_names_the_problem() -> None:
    image = LoadedImage(np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(ValueError, match="as many masks and titles as images"):
        show_detector(LeftHalf(), [image], [None, None], ["a"])
    with pytest.raises(ValueError, match=r"splice: mask is \(4, 8\) \(w, h\) but the image is \(8, 8\)"):
        show_detector(LeftHalf(), [image], [np.zeros((8, 4), bool)], ["splice"])
    with pytest.raises(ValueError, match="unknown detector 'nope'"):
        show_detector("nope", [image], [None], ["a"])
    with pytest.raises(TypeError, match="not a type"):
        show_detector(LeftHalf, [image], [None], ["a"])  # the class, not an instance
    plt.close("all")


def test_detector_example_loads_the_named_row_or_stands_in(make_forgery_set) -> None:
    from helpers.datasets import load_manifest
    from helpers.plots.detectors import detector_example

    manifest = load_manifest(make_forgery_set(tampered=2, authentic=1))
    image, truth, title = detector_example(manifest, "images/img01.png")
    assert image.shape == (40, 48) and image.format == "PNG" and title == "forged: splice"
    assert truth.dtype == bool and truth.sum() == 12 * 14  # img01's mask: rows 4:16, columns 6:20
    image, truth, title = detector_example(manifest, "images/img02.png")
    assert truth is None and title == "pristine: authentic"
    with pytest.warns(UserWarning, match=r"'images/gone.png' is not in .*manifest.csv; showing 'images/img00.png'"):
        _, truth, _ = detector_example(manifest, "images/gone.png")
    assert truth.sum() == 8 * 10
    with pytest.raises(ValueError, match="no row 'images/gone.png' and no tampered image with a mask"):
        detector_example(manifest[manifest["label"] == 0], "images/gone.png")
