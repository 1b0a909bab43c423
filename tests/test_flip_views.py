"""Mask maps averaged over mirror views (``flip_views``): the average itself, the saved key, both inference
paths, and the training recipe that chooses its threshold on the averaged maps."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest
import skimage.data

from helpers.datasets.online import packaged_photos
from helpers.detectors import MaskModelDetector, PortableMaskDetector
from helpers.detectors.mask_map import MaskMapDetector
from helpers.imageio import LoadedImage
from helpers.inference import predict_mask, predict_whole
from helpers.models.artifact import ModelArtifactError, describe_model, save_model_artifact
from helpers.models.forensic_net import forensic_net
from helpers.models.portable import FLIP_VIEWS, flip_average
from helpers.models.recipes import MaskTraining


def _lopsided(values: dict[str, np.ndarray]) -> np.ndarray:
    """A 'model' that is not mirror-symmetric: each pixel plus a ramp that grows to the right and down."""
    x = values["a"][..., 0]
    rows, cols = np.mgrid[: x.shape[0], : x.shape[1]]
    return (x + 0.01 * cols + 0.001 * rows).astype(np.float32)


class _FixedMap(MaskMapDetector):
    def __init__(self, views: object) -> None:
        super().__init__({"threshold": 0.5, "flip_views": views}, matching=False)


def test_one_view_is_the_map_itself_and_more_views_average_the_mirrored_maps() -> None:
    x = np.random.default_rng(0).uniform(size=(5, 7, 1)).astype(np.float32)
    np.testing.assert_array_equal(flip_average(_lopsided, {"a": x}, 1), _lopsided({"a": x}))
    rows, cols = np.mgrid[:5, :7]
    # Mirrored back, the ramp runs the other way in the mirror view: the average of both is flat along that axis.
    expected_two = x[..., 0] + 0.01 * 3.0 + 0.001 * rows
    np.testing.assert_allclose(flip_average(_lopsided, {"a": x}, 2), expected_two, atol=1e-6)
    expected_four = x[..., 0] + 0.01 * 3.0 + 0.001 * 2.0
    np.testing.assert_allclose(flip_average(_lopsided, {"a": x}, 4), expected_four, atol=1e-6)
    assert set(FLIP_VIEWS) == {1, 2, 4}
    assert not np.allclose(expected_two, _lopsided({"a": x}))  # the views do differ, so the test can fail


def test_every_stream_is_mirrored_together() -> None:
    a = np.arange(12, dtype=np.float32).reshape(3, 4, 1)
    seen: list[tuple[np.ndarray, np.ndarray]] = []

    def record(values: dict[str, np.ndarray]) -> np.ndarray:
        seen.append((values["a"].copy(), values["b"].copy()))
        return values["a"][..., 0] - values["b"][..., 0]

    out = flip_average(record, {"a": a, "b": 2 * a}, 4)
    assert all(np.array_equal(second, 2 * first) for first, second in seen) and len(seen) == 4
    np.testing.assert_allclose(out, -a[..., 0])  # a pixel-wise model is unchanged by mirroring


@pytest.mark.parametrize("bad", [0, 3, 8, True, 2.0, "2", None])
def test_other_view_counts_are_refused(bad: object) -> None:
    with pytest.raises(ValueError, match="views"):
        flip_average(_lopsided, {"a": np.zeros((2, 2, 1), np.float32)}, bad)  # type: ignore[arg-type]
    if bad is not None:  # a description leaves out what is None, as it does every optional key
        model = keras.Sequential([keras.Input((None, None, 3)), keras.layers.Conv2D(1, 1, activation="sigmoid")])
        with pytest.raises(ModelArtifactError, match="flip_views"):
            describe_model(model, {"task": "segment", "streams": ["rgb"], "tile": 0, "flip_views": bad})
    with pytest.raises(ModelArtifactError, match="flip_views"):
        _FixedMap(bad)


def test_a_saved_description_keeps_its_views_and_training_saves_them() -> None:
    model = keras.Sequential([keras.Input((None, None, 3)), keras.layers.Conv2D(1, 1, activation="sigmoid")])
    assert describe_model(model, {"task": "segment", "streams": ["rgb"], "tile": 0, "flip_views": 4})["flip_views"] == 4
    assert "flip_views" not in describe_model(model, {"task": "segment", "streams": ["rgb"], "tile": 0})
    training = MaskTraining(model=model, streams=("rgb",), flip_views=2)
    assert training.map_info["flip_views"] == 2 and training.summary()["flip_views"] == 2


def test_a_tiled_model_takes_one_view() -> None:
    model = keras.Sequential([keras.Input((None, None, 3), name="rgb"), keras.layers.Conv2D(1, 1)])
    with pytest.raises(ValueError, match="tiled model"):
        predict_mask(model, np.zeros((64, 64, 3), np.uint8), tile=32, streams=("rgb",), flip_views=2)


def test_both_detectors_read_the_saved_views(tmp_path: Path) -> None:
    keras.utils.set_random_seed(5)
    streams = ("rgb", "noise")
    model = forensic_net(streams, width=8, dilations=(1, 3))
    photo = np.ascontiguousarray(skimage.data.astronaut()[20:116, 30:158])
    for views in (1, 2, 4):
        path = tmp_path / f"views{views}"
        save_model_artifact(model, path, "net", {"task": "segment", "streams": list(streams), "tile": 0,
                                                  "flip_views": views})
        expected = predict_whole(model, photo, streams, flip_views=views)
        keras_map = MaskModelDetector(path, matching=False).working_heatmap(photo)
        numpy_map = PortableMaskDetector(path, matching=False).working_heatmap(photo)
        assert np.abs(keras_map - expected).max() < 1e-5 and np.abs(numpy_map - expected).max() < 1e-4
        if views > 1:
            assert np.abs(expected - predict_whole(model, photo, streams)).max() > 1e-4  # the views do differ
        assert MaskModelDetector(path, matching=False)(LoadedImage(photo)).heatmap.shape == photo.shape[:2]


def test_training_chooses_the_threshold_on_maps_read_over_its_views(synthetic_set: pd.DataFrame) -> None:
    from helpers.models.recipes import train_mask_model, validation_scores

    keras.utils.set_random_seed(0)
    photos = packaged_photos({"coffee", "chelsea", "astronaut"})
    validation = pd.concat([synthetic_set[synthetic_set["label"] == 1].head(2),
                            synthetic_set[synthetic_set["label"] == 0].head(1)])
    common = {"streams": ("ela",), "budget_s": 3, "validation": validation, "size": 64, "batch_size": 4,
              "batches_per_epoch": 1, "threads": 1, "validations": 1, "progress": False}
    result = train_mask_model(forensic_net(("ela",), width=8), photos, flip_views=2, **common)
    # The checks' subset is the whole split here, yet the final choice runs once more, over both views.
    final = validation_scores(result.model, validation, ("ela",), flip_views=2)
    assert result.flip_views == 2 and result.calibration_images == 3
    assert result.calibration_pixel_f1 == pytest.approx(final["pixel_f1"], abs=1e-6)
    assert result.map_threshold == final["map_threshold"] and result.map_info["flip_views"] == 2
    single = train_mask_model(forensic_net(("ela",), width=8), photos, flip_views=1, **common)
    assert single.calibration_images == 0 and single.calibration_pixel_f1 is None  # nothing left to choose again
    with pytest.raises(ValueError, match="flip_views"):
        train_mask_model(forensic_net(("ela",), width=8), photos, flip_views=3, **common)
