"""Mask models: the dual-stream U-Net on segmentation-models (via the Keras 3 shim) and the scratch U-Net."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import keras
import numpy as np
import pytest

from helpers.models import sm_compat
from helpers.models.losses import get_loss
from helpers.models.metrics import PixelF1, PixelIoU
from helpers.models.segmentation import (
    TAMPERED_PRIOR,
    EpochTimer,
    ProbabilityLogit,
    dual_stream_unet,
    prior_bias,
    sm_unet,
    stream_channels,
    unet_scratch,
)
from helpers.pipeline import ForgeryBatches


@pytest.fixture(scope="module")
def segment_batches(synthetic_set):
    """A tiny training set: 4 images (tampered first), 64-pixel crops, batches of 2."""
    rows = synthetic_set.sort_values("label", ascending=False, kind="stable").head(4)

    def make(streams):
        return ForgeryBatches(rows, task="segment", streams=streams, batch_size=2, size=64, seed=0)

    return make


def compile_for_masks(model: keras.Model) -> keras.Model:
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=get_loss("bce_dice"), metrics=[PixelF1(), PixelIoU()])
    return model


def random_inputs(model: keras.Model, batch: int, side: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {t.name: rng.random((batch, side, side, int(t.shape[-1])), dtype=np.float32) for t in model.inputs}


def test_segmentation_models_imports_without_tensorflow_keras_paths() -> None:
    sm = sm_compat.import_segmentation_models()
    assert sm.__version__ == "1.0.1"
    # The stand-in for efficientnet.keras is gone after the import, and Keras was not patched.
    assert "efficientnet.keras" not in sys.modules
    assert not hasattr(keras.utils, "generic_utils")
    backend = sm_compat.keras_submodules()["backend"]
    assert backend.int_shape(keras.Input((None, 7, 3))) == (None, None, 7, 3)
    assert backend.image_data_format() == keras.backend.image_data_format()


@pytest.mark.parametrize("streams", [("rgb", "ela"), ("rgb", "ela", "srm")])
def test_dual_stream_unet_builds_with_named_inputs_and_scoped_layers(streams) -> None:
    model = dual_stream_unet("resnet18", streams, encoder_weights=None)
    assert {t.name for t in model.inputs} == set(streams)
    assert all(t.shape[1:3] == (None, None) for t in model.inputs)  # fully convolutional
    names = [layer.name for layer in model.layers]
    assert len(names) == len(set(names))
    assert {f"{s}_unet" for s in streams} <= set(names)
    # segmentation-models names its layers identically in every U-Net: the sub-models keep them apart ...
    inner = [{layer.name for layer in model.get_layer(f"{s}_unet").layers} for s in streams]
    shared = inner[0] & inner[1]
    assert {"conv0", "bn_data", "stage4_unit1_relu1", "decoder_stage0a_conv", "final_conv"} <= shared
    # ... and so do the variable paths of a freshly built model.
    paths = [v.path for v in model.weights]
    assert len(paths) == len(set(paths))
    for side in (64, 96)[: 3 - len(streams)]:  # any multiple of 32 (a direct call: no graph to trace per size)
        out = keras.ops.convert_to_numpy(model(random_inputs(model, 2, side), training=False))
        assert out.shape == (2, side, side, 1) and out.dtype == np.float32
        assert 0.0 <= out.min() and out.max() <= 1.0


@pytest.mark.slow
def test_dual_stream_unet_trains_saves_and_reloads(segment_batches, tmp_path: Path) -> None:
    keras.utils.set_random_seed(0)
    model = compile_for_masks(dual_stream_unet("resnet18", ("rgb", "ela"), encoder_weights=None))
    before = [w.copy() for w in model.get_layer("fusion").get_weights()]
    data = segment_batches(("rgb", "ela"))
    timer = EpochTimer(data.rows)
    history = model.fit(data, epochs=1, steps_per_epoch=2, shuffle=False, verbose=0, callbacks=[timer])
    assert np.isfinite(history.history["loss"]).all() and {"pixel_f1", "pixel_iou"} <= set(history.history)
    assert any(not np.allclose(a, b) for a, b in zip(before, model.get_layer("fusion").get_weights()))
    assert timer.summary()["train_images_per_s"] > 0
    path = tmp_path / "dual.keras"
    model.save(path)
    reloaded = keras.saving.load_model(path)  # safe mode: no Lambda, every custom object registered
    x = data[0][0]
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(reloaded.predict_on_batch(x)), keras.ops.convert_to_numpy(model.predict_on_batch(x)),
        rtol=0, atol=1e-6,
    )
    assert type(reloaded.loss).__name__ == "BCEDiceLoss"


@pytest.mark.slow
def test_unet_scratch_builds_trains_saves_and_reloads(segment_batches, tmp_path: Path) -> None:
    keras.utils.set_random_seed(0)
    model = compile_for_masks(unet_scratch(("ela",)))
    assert [t.name for t in model.inputs] == ["ela"]
    assert model.get_layer("enc1_conv1").filters == 16
    assert any(isinstance(layer, keras.layers.BatchNormalization) for layer in model.layers)
    assert any(isinstance(layer, keras.layers.Dropout) for layer in model.layers)
    data = segment_batches(("ela",))
    history = model.fit(data, epochs=1, steps_per_epoch=2, shuffle=False, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    out = keras.ops.convert_to_numpy(model.predict_on_batch(random_inputs(model, 3, 96)))
    assert out.shape == (3, 96, 96, 1) and 0.0 <= out.min() and out.max() <= 1.0
    model.save(tmp_path / "scratch.keras")
    reloaded = keras.saving.load_model(tmp_path / "scratch.keras")
    x = data[1][0]
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(reloaded.predict_on_batch(x)), keras.ops.convert_to_numpy(model.predict_on_batch(x)),
        rtol=0, atol=1e-6,
    )
    two = unet_scratch(("rgb", "ela"), input_size=64)
    assert {t.name for t in two.inputs} == {"rgb", "ela"} and two.inputs[0].shape[1:3] == (64, 64)


def test_imagenet_weights_fall_back_to_random_when_unreachable(monkeypatch) -> None:
    monkeypatch.setattr(sm_compat, "_host_reachable", lambda url, timeout: False)
    monkeypatch.setattr(sm_compat, "_cached", lambda entry: False)
    with pytest.warns(UserWarning, match="random weights"):
        assert sm_compat.resolve_encoder_weights("resnet18", "imagenet") is None
    with pytest.warns(UserWarning, match="random weights"):
        model = sm_unet("resnet18", encoder_weights="imagenet", input_size=64, name="offline")
    assert model.output.shape == (None, 64, 64, 1)


def test_a_failing_download_falls_back_too(monkeypatch) -> None:
    monkeypatch.setattr(sm_compat, "_host_reachable", lambda url, timeout: True)

    def no_download(*args, **kwargs):
        raise OSError("simulated: connection reset")

    monkeypatch.setattr(keras.utils, "get_file", no_download)
    with pytest.warns(UserWarning, match="simulated"):
        model = sm_unet("resnet18", encoder_weights="imagenet", name="failed_download")
    assert model.name == "failed_download"


def test_imagenet_weights_need_three_channels_and_none_stays_none() -> None:
    with pytest.warns(UserWarning, match="3 input channels"):
        assert sm_compat.resolve_encoder_weights("resnet18", "imagenet", channels=30) is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert sm_compat.resolve_encoder_weights("resnet18", None) is None
        assert sm_compat.resolve_encoder_weights("resnet18", "/some/weights.h5") == "/some/weights.h5"


def test_lambda_layers_of_se_resnets_become_registered_layers(tmp_path: Path) -> None:
    model = sm_unet("seresnet18", encoder_weights=None, decoder_filters=(32, 16, 8, 8, 8), name="se")
    kinds = {type(layer).__name__ for layer in model.layers}
    assert "ExpandSpatial" in kinds and "Lambda" not in kinds
    model.save(tmp_path / "se.keras")
    keras.saving.load_model(tmp_path / "se.keras")  # safe_mode=True would refuse a Lambda


@pytest.mark.parametrize(
    "call",
    [
        lambda: dual_stream_unet("resnet18", ("rgb", "rgb"), encoder_weights=None),
        lambda: dual_stream_unet("resnet18", ("rgb", "exif"), encoder_weights=None),
        lambda: dual_stream_unet("resnet18", ("rgb", "ela"), input_size=100, encoder_weights=None),
        lambda: dual_stream_unet("resnet7", ("rgb", "ela"), encoder_weights=None),
        lambda: unet_scratch(("ela",), input_size=24),
        lambda: unet_scratch(("ela",), dropout=1.0),
        lambda: unet_scratch(("ela",), prior=1.0),
        lambda: dual_stream_unet("resnet18", ("rgb", "ela"), encoder_weights=None, prior=0.0),
        lambda: stream_channels(("srm",), srm_bank="full31"),
    ],
)
def test_invalid_arguments_are_refused(call) -> None:
    with pytest.raises(ValueError):
        call()


def test_srm_bank_sets_the_srm_channels() -> None:
    assert stream_channels(("rgb", "srm"), srm_bank="full30") == {"rgb": 3, "srm": 30}
    model = unet_scratch(("srm",), srm_bank="full30", base_filters=4, depth=2)
    assert model.inputs[0].shape[-1] == 30


def test_outputs_stay_float32_under_mixed_precision() -> None:
    """The losses want full precision: both models end in float32 layers whatever the global policy."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        models = [unet_scratch(("ela",), base_filters=4, depth=2),
                  dual_stream_unet("resnet18", ("rgb", "ela"), encoder_weights=None, decoder_filters=(8, 8, 8, 8, 8))]
        for model in models:
            assert keras.backend.standardize_dtype(model.output.dtype) == "float32", model.name
            out = model.predict_on_batch(random_inputs(model, 1, 32))
            assert keras.ops.convert_to_numpy(out).dtype == np.float32
    finally:
        keras.config.set_dtype_policy(previous)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def test_every_sigmoid_head_starts_at_the_tampered_prior(tmp_path: Path) -> None:
    """The last bias of each U-Net is the prior's logit, so an untrained model starts near "few pixels tampered"
    (not 0.5 everywhere), and the saved model keeps it."""
    small = dict(encoder_weights=None, decoder_filters=(8, 8, 8, 8, 8))
    scratch = unet_scratch(("ela",), base_filters=4, depth=2)
    dual = dual_stream_unet("resnet18", ("rgb", "ela"), **small)
    by_probabilities = dual_stream_unet("resnet18", ("rgb", "ela"), fuse="probabilities", **small)
    heads = [scratch.get_layer("mask"), by_probabilities.get_layer("fusion"),
             *(dual.get_layer(f"{stream}_unet").get_layer("final_conv") for stream in ("rgb", "ela"))]
    for head in heads:
        bias = keras.ops.convert_to_numpy(head.bias)
        np.testing.assert_allclose(_sigmoid(bias), TAMPERED_PRIOR, rtol=1e-5, err_msg=head.name)
    # fusing the streams' logits starts as their mean: no bias of its own, the prior comes from the streams
    kernel, bias = (keras.ops.convert_to_numpy(w) for w in (dual.get_layer("fusion").kernel,
                                                               dual.get_layer("fusion").bias))
    assert np.allclose(kernel, 0.5) and np.all(bias == 0.0)
    for model in (scratch, dual, by_probabilities):
        out = keras.ops.convert_to_numpy(model.predict_on_batch(random_inputs(model, 2, 32)))
        assert float(np.median(out)) < 0.25, model.name  # a zero bias starts at about 0.5
    scratch.save(tmp_path / "scratch.keras")
    reloaded = keras.saving.load_model(tmp_path / "scratch.keras")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(reloaded.get_layer("mask").bias),
                               keras.ops.convert_to_numpy(heads[0].bias))


def test_dual_stream_fuses_the_logits_of_its_streams() -> None:
    """The fused map is the sigmoid of a weighted sum of the streams' logits (their probabilities inverted)."""
    model = dual_stream_unet("resnet18", ("rgb", "ela"), encoder_weights=None, decoder_filters=(8, 8, 8, 8, 8))
    x = random_inputs(model, 2, 32)
    maps = [keras.ops.convert_to_numpy(model.get_layer(f"{s}_unet")(x[s], training=False)) for s in ("rgb", "ela")]
    logits = [np.log(np.clip(m, 1e-6, 1 - 1e-6)) - np.log1p(-np.clip(m, 1e-6, 1 - 1e-6)) for m in maps]
    out = keras.ops.convert_to_numpy(model(x, training=False))
    np.testing.assert_allclose(out, _sigmoid(0.5 * (logits[0] + logits[1])), rtol=1e-4, atol=1e-6)
    layer = ProbabilityLogit(epsilon=1e-3)
    edges = keras.ops.convert_to_numpy(layer(np.array([0.0, 0.5, 1.0], dtype="float32")))
    np.testing.assert_allclose(edges, [-np.log(999.0), 0.0, np.log(999.0)], rtol=1e-4)
    with pytest.raises(ValueError, match="fuse must be"):
        dual_stream_unet("resnet18", ("rgb", "ela"), encoder_weights=None, fuse="mean")


def test_prior_none_keeps_the_zero_bias() -> None:
    model = unet_scratch(("ela",), base_filters=4, depth=2, prior=None)
    assert np.all(keras.ops.convert_to_numpy(model.get_layer("mask").bias) == 0.0)
    unet = sm_unet("resnet18", encoder_weights=None, decoder_filters=(8, 8, 8, 8, 8), prior=None, name="zero")
    assert np.all(keras.ops.convert_to_numpy(unet.get_layer("final_conv").bias) == 0.0)
    assert float(keras.ops.convert_to_numpy(prior_bias(0.5)((1,)))[0]) == 0.0
