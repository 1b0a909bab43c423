"""Keras front-end layers: SRM equals the NumPy features, Bayar's constraint holds after training, saving works."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from helpers.datasets.manifest import load_manifest  # noqa: E402
from helpers.forensics import srm  # noqa: E402
from helpers.imageio import load_rgb  # noqa: E402
from helpers.models.layers import AMTENModule, BayarConstraint, BayarConv2D, SRMLayer  # noqa: E402


@pytest.fixture(scope="module")
def real_image(fixtures_manifest: Path) -> np.ndarray:
    path = load_manifest(fixtures_manifest)["image_path"].iloc[0]
    return load_rgb(path)[:96, :128]


@pytest.mark.parametrize("bank", ["zhou3", "full30"])
@pytest.mark.parametrize("truncate", [3.0, None])
def test_srm_layer_equals_numpy_function(bank: str, truncate: float | None, real_image: np.ndarray) -> None:
    rng = np.random.default_rng(1)
    random_images = rng.integers(0, 256, size=(2, 40, 52, 3), dtype=np.uint8)
    layer = SRMLayer(bank, truncate=truncate)
    for batch in (random_images, real_image[None]):
        got = keras.ops.convert_to_numpy(layer(batch.astype("float32")))
        assert got.shape == (*batch.shape[:3], 30 if bank == "full30" else 3)
        for image, out in zip(batch, got):
            np.testing.assert_allclose(out, srm(image, bank, truncate=truncate), rtol=0, atol=1e-4)


def test_srm_layer_is_fixed_and_checks_input() -> None:
    layer = SRMLayer()
    assert layer.trainable is False
    assert layer.compute_output_shape((None, 32, 32, 3)) == (None, 32, 32, 3)
    assert SRMLayer("full30").compute_output_shape((None, 32, 32, 3)) == (None, 32, 32, 30)
    layer(np.zeros((1, 8, 8, 3), "float32"))
    assert layer.weights == []
    with pytest.raises(ValueError):
        SRMLayer()(np.zeros((1, 8, 8, 1), "float32"))
    with pytest.raises(ValueError):
        SRMLayer("nope")  # type: ignore[arg-type]
    config = SRMLayer("full30", truncate=2.0).get_config()
    assert config["bank"] == "full30" and config["truncate"] == 2.0
    assert SRMLayer.from_config(config).bank == "full30"


def _assert_bayar(kernel: np.ndarray, atol: float = 1e-5) -> None:
    kernel = kernel.astype(np.float64)  # check the stored float32 values, not float32 summation error
    kh, kw = kernel.shape[:2]
    np.testing.assert_allclose(kernel[kh // 2, kw // 2], -1.0, atol=atol)
    off = kernel.copy()
    off[kh // 2, kw // 2] = 0.0
    np.testing.assert_allclose(off.sum(axis=(0, 1)), 1.0, atol=atol)


def test_bayar_constraint_projection() -> None:
    rng = np.random.default_rng(2)
    w = rng.normal(size=(5, 5, 3, 4)).astype("float32") + 0.2
    projected = keras.ops.convert_to_numpy(BayarConstraint()(keras.ops.convert_to_tensor(w)))
    _assert_bayar(projected)
    again = keras.ops.convert_to_numpy(BayarConstraint()(keras.ops.convert_to_tensor(projected)))
    np.testing.assert_allclose(again, projected, atol=1e-6)  # a projection: idempotent


def test_bayar_kernel_satisfies_constraint_after_fit() -> None:
    keras.utils.set_random_seed(0)
    inputs = keras.Input((16, 16, 3))
    conv = BayarConv2D(4, 5, name="bayar")
    x = conv(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(1)(x)
    model = keras.Model(inputs, outputs)
    _assert_bayar(keras.ops.convert_to_numpy(conv.kernel))  # projected when built
    before = keras.ops.convert_to_numpy(conv.kernel).copy()
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.5), loss="mse")
    rng = np.random.default_rng(3)
    images = rng.uniform(0, 255, size=(16, 16, 16, 3)).astype("float32")
    targets = rng.normal(size=(16, 1)).astype("float32")
    model.fit(images, targets, batch_size=4, epochs=1, verbose=0)  # 4 optimizer steps
    after = keras.ops.convert_to_numpy(conv.kernel)
    assert np.abs(after - before).max() > 1e-3  # training moved the kernel ...
    _assert_bayar(after)  # ... and the constraint pulled it back


def test_bayar_conv_requires_odd_kernel() -> None:
    with pytest.raises(ValueError, match="odd"):
        BayarConv2D(3, 4)


def test_amten_module_shapes_and_traces() -> None:
    module = AMTENModule(filters=8, depth=2)
    x = np.random.default_rng(4).uniform(0, 255, size=(2, 16, 20, 3)).astype("float32")
    y = keras.ops.convert_to_numpy(module(x))
    assert y.shape == (2, 16, 20, 3 + 2 * 8)
    assert module.compute_output_shape((None, 16, 20, 3)) == (None, 16, 20, 19)
    predicted = keras.ops.convert_to_numpy(module.predictor(x))
    np.testing.assert_allclose(y[..., :3], x - predicted, rtol=1e-5, atol=1e-3)
    assert module.predictor.kernel.shape == (3, 3, 3, 3)
    assert AMTENModule(depth=0)(x).shape == (2, 16, 20, 3)


@pytest.mark.parametrize(
    "make_layer",
    [lambda: SRMLayer("full30"), lambda: BayarConv2D(3, 5), lambda: AMTENModule(filters=4, depth=2)],
    ids=["srm", "bayar", "amten"],
)
def test_model_with_layer_saves_and_reloads(make_layer, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    keras.utils.set_random_seed(5)
    inputs = keras.Input((24, 24, 3))
    layer = make_layer()
    x = layer(inputs)
    outputs = keras.layers.Conv2D(2, 1, name="head")(x)
    model = keras.Model(inputs, outputs)
    batch = np.random.default_rng(6).uniform(0, 255, size=(2, 24, 24, 3)).astype("float32")
    expected = keras.ops.convert_to_numpy(model(batch))
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    reloaded_layer = loaded.get_layer(layer.name)
    assert type(reloaded_layer) is type(layer)
    assert reloaded_layer.get_config() == layer.get_config()
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(loaded(batch)), expected)
