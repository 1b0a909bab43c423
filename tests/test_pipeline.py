"""helpers.pipeline.ForgeryBatches: shapes, streams computed after augmentation, determinism (also across
workers), corrupt files replaced with a warning, evaluation crops, and a tiny Keras model that trains on it."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

keras = pytest.importorskip("keras")

from helpers.datasets.synthetic import synthesize  # noqa: E402
from helpers.forensics.ela import ela  # noqa: E402
from helpers.forensics.srm import srm  # noqa: E402
from helpers.imageio import load_mask, load_rgb  # noqa: E402
from helpers.pipeline import ForgeryBatches, measure_throughput  # noqa: E402
from helpers.streams import compute_streams  # noqa: E402

SIZE = 64


@pytest.fixture(scope="module")
def manifest(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    return synthesize(tmp_path_factory.mktemp("pipe_synth"), n=20, seed=5, workers=1, progress=False)


def _batches(dataset: ForgeryBatches) -> list[tuple[dict[str, np.ndarray], np.ndarray]]:
    return [dataset[i] for i in range(len(dataset))]


def _same(a, b) -> bool:
    return all(
        set(xa) == set(xb) and all(np.array_equal(xa[k], xb[k]) for k in xa) and np.array_equal(ya, yb)
        for (xa, ya), (xb, yb) in zip(a, b)
    )


@pytest.mark.parametrize("task", ["classify", "segment"])
@pytest.mark.parametrize(
    ("streams", "bank", "channels"),
    [
        (("rgb",), "zhou3", {"rgb": 3}),
        (("ela",), "zhou3", {"ela": 3}),
        (("rgb", "ela"), "zhou3", {"rgb": 3, "ela": 3}),
        (("rgb", "ela", "srm"), "zhou3", {"rgb": 3, "ela": 3, "srm": 3}),
        (("srm",), "full30", {"srm": 30}),
    ],
)
def test_shapes_and_dtypes(manifest: pd.DataFrame, task: str, streams, bank: str, channels) -> None:
    dataset = ForgeryBatches(manifest, task=task, streams=streams, srm_bank=bank, batch_size=8, size=SIZE)
    assert len(dataset) == math.ceil(len(manifest) / 8) == 3
    assert dataset.input_shapes == {s: (SIZE, SIZE, c) for s, c in channels.items()}
    for index, expected in [(0, 8), (2, len(manifest) - 16)]:
        x, y = dataset[index]
        assert set(x) == set(streams)
        for stream, values in x.items():
            assert values.shape == (expected, SIZE, SIZE, channels[stream]) and values.dtype == np.float32
        if "rgb" in x:
            assert 0.0 <= x["rgb"].min() and x["rgb"].max() <= 1.0
        if "srm" in x:
            assert np.abs(x["srm"]).max() <= 3.0
        if task == "classify":
            assert y.shape == (expected,) and y.dtype == np.float32
        else:
            assert y.shape == (expected, SIZE, SIZE, 1) and y.dtype == np.float32
        assert set(np.unique(y).tolist()) <= {0.0, 1.0}
    with pytest.raises(IndexError):
        dataset[len(dataset)]


def test_streams_are_computed_from_the_augmented_image(manifest: pd.DataFrame) -> None:
    dataset = ForgeryBatches(manifest, streams=("rgb", "ela", "srm"), geometric="strong", size=SIZE, batch_size=10)
    x, _ = dataset[0]
    for rgb, error, residual in zip(x["rgb"], x["ela"], x["srm"]):
        image = np.rint(rgb * 255).astype(np.uint8)
        # the one stream table's values, computed from the augmented crop itself
        expected = compute_streams(image, ("ela", "srm"))
        assert np.array_equal(error, expected["ela"])
        assert np.array_equal(residual, expected["srm"])
        assert np.array_equal(error * 16, np.minimum(ela(image, 90).astype(np.float32), 64.0))
        assert np.allclose(residual * 2, srm(image, truncate=2.0))


def test_classification_labels_follow_the_crop_and_agree_with_the_masks(manifest: pd.DataFrame) -> None:
    common = {"size": SIZE, "batch_size": 10, "seed": 2, "geometric": "strong"}
    classify = ForgeryBatches(manifest, task="classify", **common)
    segment = ForgeryBatches(manifest, task="segment", **common)
    image_labels = ForgeryBatches(manifest, task="classify", crop_labels=False, **common)
    for (xc, yc), (xs, ys), (_, yi) in zip(_batches(classify), _batches(segment), _batches(image_labels)):
        assert all(np.array_equal(xc[k], xs[k]) for k in xc), "both tasks see the same augmented crops"
        assert np.array_equal(yc, ys.reshape(len(ys), -1).max(axis=1))
        assert np.all(yc <= yi)
    order = classify._order
    assert np.array_equal(np.concatenate([y for _, y in _batches(image_labels)]), manifest["label"].to_numpy()[order])


def test_deterministic_for_a_seed_and_different_for_another(manifest: pd.DataFrame) -> None:
    first = _batches(ForgeryBatches(manifest, task="segment", size=SIZE, seed=4))
    second = _batches(ForgeryBatches(manifest, task="segment", size=SIZE, seed=4))
    other = _batches(ForgeryBatches(manifest, task="segment", size=SIZE, seed=5))
    assert _same(first, second)
    assert not _same(first, other)


def test_epochs_reshuffle_and_replay(manifest: pd.DataFrame) -> None:
    dataset = ForgeryBatches(manifest, size=SIZE, seed=1)
    epoch0, order0 = _batches(dataset), dataset._order.copy()
    dataset.on_epoch_end()
    assert dataset.epoch == 1 and not np.array_equal(order0, dataset._order)
    assert not _same(epoch0, _batches(dataset))
    dataset.set_epoch(0)
    assert _same(epoch0, _batches(dataset))


def _via_keras(dataset: ForgeryBatches):
    """Draw one epoch the way fit() does, with the dataset's workers."""
    from keras.src.trainers.data_adapters.py_dataset_adapter import PyDatasetAdapter

    adapter = PyDatasetAdapter(dataset, shuffle=False)
    adapter.on_epoch_begin()
    try:
        return [(dict(x), y) for x, y in adapter.get_numpy_iterator()]
    finally:
        adapter.on_epoch_end()


@pytest.mark.timeout(120)
@pytest.mark.parametrize("use_multiprocessing", [False, True], ids=["threads", "processes"])
def test_batches_do_not_depend_on_workers(manifest: pd.DataFrame, use_multiprocessing: bool) -> None:
    kwargs = {"task": "segment", "size": SIZE, "batch_size": 4, "seed": 3, "streams": ("rgb", "ela")}
    sequential = _batches(ForgeryBatches(manifest, **kwargs))
    parallel = _via_keras(
        ForgeryBatches(manifest, workers=2, use_multiprocessing=use_multiprocessing, max_queue_size=4, **kwargs)
    )
    assert len(parallel) == len(sequential) and _same(sequential, parallel)


def test_evaluation_uses_a_deterministic_centre_crop(manifest: pd.DataFrame) -> None:
    dataset = ForgeryBatches(manifest, task="segment", size=SIZE, augment=False, shuffle=False, batch_size=4)
    x, y = dataset[0]
    for i in range(4):
        rgb = load_rgb(manifest["image_path"].iloc[i])
        height, width = rgb.shape[:2]
        top, left = ((height - SIZE) // 16 // 2) * 16, ((width - SIZE) // 16 // 2) * 16
        assert np.array_equal(np.rint(x["rgb"][i] * 255).astype(np.uint8), rgb[top : top + SIZE, left : left + SIZE])
        mask_path = manifest["mask_path"].iloc[i]
        mask = load_mask(mask_path) if mask_path else np.zeros(rgb.shape[:2], bool)
        assert np.array_equal(y[i, :, :, 0].astype(bool), mask[top : top + SIZE, left : left + SIZE])
    dataset.on_epoch_end()
    again, _ = dataset[0]
    assert all(np.array_equal(x[k], again[k]) for k in x), "evaluation batches must not change between epochs"


def test_resize_mode_shows_the_whole_image(manifest: pd.DataFrame) -> None:
    dataset = ForgeryBatches(manifest, task="segment", size=SIZE, mode="resize", augment=False, shuffle=False)
    x, y = dataset[0]
    assert x["rgb"].shape == (8, SIZE, SIZE, 3)
    fractions = manifest["mask_fraction"].to_numpy()[:8]
    assert np.allclose(y.reshape(8, -1).mean(axis=1), fractions, atol=0.03)


def test_corrupt_images_are_replaced_with_a_warning(manifest: pd.DataFrame, tmp_path: Path) -> None:
    broken = manifest.copy()
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(Path(broken["image_path"].iloc[0]).read_bytes()[:200])
    broken.loc[0, "image_path"] = str(truncated)
    broken.loc[1, "image_path"] = str(tmp_path / "missing.jpg")
    dataset = ForgeryBatches(broken, size=SIZE, batch_size=len(broken), shuffle=False, crop_labels=False)
    with pytest.warns(RuntimeWarning) as record:
        x, y = dataset[0]
    messages = " ".join(str(w.message) for w in record)
    assert "truncated.jpg" in messages and "missing.jpg" in messages
    assert x["rgb"].shape[0] == len(broken)
    assert np.array_equal(y, broken["label"].to_numpy(np.float32)), "replacements keep the label"
    assert dataset.failed == {str(truncated), str(tmp_path / "missing.jpg")}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # reported once per file, not once per epoch
        dataset.on_epoch_end()
        again, _ = dataset[0]
    assert again["rgb"].shape[0] == len(broken)


def test_invalid_arguments(manifest: pd.DataFrame) -> None:
    with pytest.raises(ValueError):
        ForgeryBatches(manifest, task="detect")
    with pytest.raises(ValueError, match="streams"):
        ForgeryBatches(manifest, streams=("rgb", "sift"))
    with pytest.raises(ValueError):
        ForgeryBatches(manifest, mode="tile")
    with pytest.raises(ValueError):
        ForgeryBatches(manifest.iloc[:0])


@pytest.mark.parametrize("task", ["classify", "segment"])
def test_a_tiny_model_fits_one_epoch(manifest: pd.DataFrame, task: str) -> None:
    dataset = ForgeryBatches(manifest.iloc[:16], task=task, size=SIZE, batch_size=8, streams=("rgb", "ela"))
    inputs = {name: keras.Input(shape, name=name) for name, shape in dataset.input_shapes.items()}
    merged = keras.layers.Concatenate()(list(inputs.values()))
    features = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(merged)
    if task == "classify":
        outputs = keras.layers.Dense(1, activation="sigmoid")(keras.layers.GlobalAveragePooling2D()(features))
        outputs = keras.layers.Reshape(())(outputs)
    else:
        outputs = keras.layers.Conv2D(1, 1, activation="sigmoid")(features)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer="adam", loss="binary_crossentropy")
    history = model.fit(dataset, epochs=1, shuffle=False, verbose=0)
    assert len(dataset) == 2 and np.isfinite(history.history["loss"][0])
    assert dataset.epoch >= 1, "fit ends the epoch, which reshuffles"


def test_measure_throughput_restores_the_epoch(manifest: pd.DataFrame) -> None:
    dataset = ForgeryBatches(manifest, size=SIZE, batch_size=4, workers=2)
    stats = measure_throughput(dataset, max_batches=3)
    assert stats["batches"] == 3 and stats["images"] == 12 and stats["images_per_s"] > 0
    assert dataset.epoch == 0
