"""Classifier models: named inputs, output shapes, a training step on real batches, .keras round trips,
the ImageNet fallback, and kind labels for the multi-class variant."""

from __future__ import annotations

import socket
import warnings

import keras
import numpy as np
import pandas as pd
import pytest

from helpers.models import classifier
from helpers.models.artifact import load_model_artifact, save_model_artifact
from helpers.pipeline import ForgeryBatches

SIZE, BATCH = 64, 4


@pytest.fixture(scope="module")
def tiny(synthetic_set: pd.DataFrame) -> pd.DataFrame:
    """Two batches of four, both labels and every kind present."""
    picks = [synthetic_set[synthetic_set["kind"] == kind].head(n) for kind, n in
             (("authentic", 3), ("splice", 2), ("copy-move", 2), ("removal", 1))]
    return pd.concat(picks).reset_index(drop=True)


def _batches(frame: pd.DataFrame, model: keras.Model, **kwargs) -> ForgeryBatches:
    return ForgeryBatches(frame, streams=classifier.input_streams(model), batch_size=BATCH, size=SIZE, seed=0, **kwargs)


def _roundtrip(model: keras.Model, x: dict, tmp_path) -> None:
    path = tmp_path / f"{model.name}.keras"
    model.save(path)
    reloaded = keras.saving.load_model(path)
    np.testing.assert_allclose(reloaded.predict_on_batch(x), model.predict_on_batch(x), rtol=1e-5, atol=1e-6)


BUILDERS = {
    "compact": lambda: classifier.compact_ela_cnn(SIZE),
    "multi_bayar": lambda: classifier.multi_stream_classifier(("rgb", "ela", "srm"), input_size=SIZE, front="bayar",
                                                             widths=(16, 32)),
    "multi_amten_kinds": lambda: classifier.multi_stream_classifier(
        ("rgb", "ela"), input_size=SIZE, front="amten", classes=classifier.KIND_CLASSES, widths=(16, 32)),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_model_builds_trains_and_round_trips(name: str, tiny: pd.DataFrame, tmp_path) -> None:
    keras.utils.set_random_seed(0)
    model = BUILDERS[name]()
    streams = classifier.input_streams(model)
    assert isinstance(model.input, dict) and set(model.input) == set(streams) <= {"rgb", "ela", "srm"}
    outputs = len(classifier.KIND_CLASSES) if name.endswith("kinds") else 1
    assert model.output_shape == (None, outputs)
    data = (classifier.KindBatches(tiny, streams=streams, batch_size=BATCH, size=SIZE, seed=0) if outputs > 1
            else _batches(tiny, model))
    assert len(data) == 2
    history = model.fit(data, epochs=1, shuffle=False, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    x, _ = _batches(tiny, model, augment=False, shuffle=False)[0]
    probabilities = np.asarray(model.predict_on_batch(x))
    assert probabilities.shape == (BATCH, outputs) and np.all((probabilities >= 0) & (probabilities <= 1))
    if outputs > 1:
        np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    _roundtrip(model, x, tmp_path)


def test_compact_cnn_is_the_midterm_architecture_with_global_pooling() -> None:
    model = classifier.compact_ela_cnn(128, compile=False)
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert [(c.filters, c.kernel_size) for c in convs] == [(32, (5, 5)), (32, (5, 5))]
    assert model.get_layer("global_pool").output.shape[-1] == 2 * 32  # average and maximum of each filter
    assert model.get_layer("dense").units == 256
    assert classifier.input_streams(model) == ("ela",)
    assert not any(isinstance(layer, keras.layers.Flatten) for layer in model.layers)
    # the weights no longer grow with the crop: the seed's flattened head had about 30 M at 128 px
    assert model.count_params() == classifier.compact_ela_cnn(256, compile=False).count_params() < 60_000


def test_compact_cnn_saves_in_a_few_hundred_kilobytes_without_optimizer_state(tmp_path) -> None:
    import io
    import zipfile

    import h5py

    model = classifier.compact_ela_cnn(128)  # the smoke profile's crop, compiled with Adam as in training
    x = {"ela": np.random.default_rng(0).random((2, 128, 128, 3), dtype=np.float32) * 0.05}
    model.train_on_batch(x, np.array([0.0, 1.0], dtype=np.float32))  # creates the optimizer's state
    keras_path, _ = save_model_artifact(model, tmp_path, "classifier", {"task": "classify", "crop": 128})
    assert keras_path.stat().st_size < 1_000_000, f"{keras_path.stat().st_size} bytes"

    def stored_groups(path) -> set[str]:
        with zipfile.ZipFile(path) as archive, h5py.File(io.BytesIO(archive.read("model.weights.h5")), "r") as h5:
            return set(h5.keys())

    assert "optimizer" not in stored_groups(keras_path)
    full_path = tmp_path / "resumable.keras"
    model.save(full_path)  # what the artifact leaves out: Adam's two copies of the weights
    assert "optimizer" in stored_groups(full_path)
    assert full_path.stat().st_size > 2 * keras_path.stat().st_size


def test_resnet50_head_and_named_input() -> None:
    model = classifier.resnet50_ela(SIZE, weights=None)
    assert classifier.input_streams(model) == ("ela",)
    assert model.output_shape == (None, 1)
    assert [model.get_layer(f"head_dense{i}").units for i in range(1, 5)] == [256, 128, 64, 32]
    assert model.get_layer("resnet50_scratch").trainable  # no pretrained weights: everything learns
    x = {"ela": np.random.default_rng(0).uniform(0, 0.05, (2, SIZE, SIZE, 3)).astype("float32")}
    assert np.isfinite(np.asarray(model.predict_on_batch(x))).all()


def test_resnet50_falls_back_quickly_without_network(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))  # nothing cached

    def offline(*args, **kwargs):
        raise OSError("network unreachable (test)")

    monkeypatch.setattr(socket, "create_connection", offline)
    assert not classifier.imagenet_weights_available("resnet50", timeout=0.1)
    with pytest.warns(classifier.WeightsFallbackWarning, match="random weights"):
        model = classifier.resnet50_ela(SIZE, weights="imagenet", compile=False)
    assert "resnet50_scratch" in [layer.name for layer in model.layers]


def test_resnet50_falls_back_when_loading_fails(monkeypatch) -> None:
    monkeypatch.setattr(classifier, "imagenet_weights_available", lambda *a, **k: True)
    original = keras.applications.ResNet50

    def failing(*args, weights=None, **kwargs):
        if weights == "imagenet":
            raise ValueError("download interrupted (test)")
        return original(*args, weights=weights, **kwargs)

    monkeypatch.setattr(keras.applications, "ResNet50", failing)
    with pytest.warns(classifier.WeightsFallbackWarning, match="download interrupted"):
        model = classifier.resnet50_ela(SIZE, weights="imagenet", compile=False)
    assert "resnet50_scratch" in [layer.name for layer in model.layers]


def test_invalid_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="front"):
        classifier.multi_stream_classifier(("ela",), front="bayar", input_size=SIZE)
    with pytest.raises(ValueError, match="backbone"):
        classifier.multi_stream_classifier(("ela",), backbone="vgg99", input_size=SIZE)
    with pytest.raises(ValueError, match="stream"):
        classifier.multi_stream_classifier(("ela", "exif"), input_size=SIZE)
    with pytest.raises(ValueError, match="weights"):
        classifier.resnet50_ela(SIZE, weights="places365")  # type: ignore[arg-type]


def test_kind_labels_map_spellings_and_refuse_unknown_kinds() -> None:
    frame = pd.DataFrame({
        "label": [0, 1, 1, 1, 1, 0, 1],
        "kind": ["authentic", "splice", "Copy_Move", "inpainting", "removal", "splice", "splicing"],
    })
    assert classifier.kind_labels(frame).tolist() == [0, 1, 2, 3, 3, 0, 1]  # label 0 wins over kind
    odd = pd.DataFrame({"label": [1, 1, 0], "kind": ["splice/cm", "splice", "authentic"]})
    with pytest.raises(ValueError, match="splice/cm"):
        classifier.kind_labels(odd)
    assert classifier.kind_labels(odd, unknown="ignore").tolist() == [-1, 1, 0]
    with pytest.raises(ValueError, match="authentic"):
        classifier.kind_labels(frame, classes=("splice", "authentic"))


def test_kind_batches_follow_forgery_batches_exactly(tiny: pd.DataFrame) -> None:
    kinds = classifier.KindBatches(tiny, streams=("ela",), batch_size=BATCH, size=SIZE, seed=4)
    binary = ForgeryBatches(tiny, streams=("ela",), batch_size=BATCH, size=SIZE, seed=4)
    expected_kind = classifier.kind_labels(tiny)
    for epoch in range(2):
        for index in range(len(kinds)):
            (xk, yk), (xb, yb) = kinds[index], binary[index]
            np.testing.assert_array_equal(xk["ela"], xb["ela"])  # same rows, same augmentation
            assert np.array_equal(yk > 0, yb > 0.5)
            assert set(yk[yk > 0]) <= set(expected_kind[expected_kind > 0])
        kinds.on_epoch_end()
        binary.on_epoch_end()
    assert kinds.epoch == 2 and kinds.items.epoch == 2


def test_batches_for_picks_labels_and_augmentation(tiny: pd.DataFrame, fixtures_manifest) -> None:
    from helpers.datasets import load_manifest

    fixtures = load_manifest(fixtures_manifest).head(6)
    model = classifier.multi_stream_classifier(("ela",), input_size=SIZE, classes=classifier.KIND_CLASSES,
                                               widths=(8,), compile=False)
    data = classifier.batches_for(model, {"train": tiny, "val": tiny, "test": tiny, "fixtures": fixtures},
                                  size=SIZE, batch_size=BATCH, seed=1)
    assert isinstance(data["train"], classifier.KindBatches) and data["train"].shuffle
    assert isinstance(data["test"], classifier.KindBatches) and not data["test"].shuffle
    assert isinstance(data["fixtures"], ForgeryBatches) and not data["fixtures"].augment  # kinds unknown
    binary = classifier.batches_for(classifier.compact_ela_cnn(SIZE, compile=False), {"train": tiny, "val": tiny},
                                    size=SIZE, batch_size=BATCH)
    assert binary["train"].augment and not binary["val"].augment and binary["val"].streams == ("ela",)


def test_a_saved_classifier_reloads_with_its_description(tiny: pd.DataFrame, tmp_path) -> None:
    model = classifier.multi_stream_classifier(("rgb", "ela"), input_size=SIZE, front="bayar", widths=(8,))
    keras_path, json_path = save_model_artifact(model, tmp_path / "models", "classifier",
                                                {"architecture": "multi", "crop": SIZE, "threshold": 0.4})
    assert keras_path.name == "classifier.keras" and json_path.name == "classifier.json"
    loaded, info = load_model_artifact(tmp_path / "models")
    assert info["streams"] == ["ela", "rgb"] and info["threshold"] == 0.4 and info["task"] == "classify"
    x, _ = _batches(tiny, model, augment=False, shuffle=False)[0]
    np.testing.assert_allclose(loaded.predict_on_batch(x), model.predict_on_batch(x), rtol=1e-5, atol=1e-6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert not getattr(loaded, "optimizer", None)  # saved uncompiled, without optimizer state