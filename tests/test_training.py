"""Training plumbing: seeds, hardware defaults, distribution, callbacks, class weights, fit and predict order."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import h5py
import keras
import numpy as np
import pandas as pd
import pytest

from helpers import training

ON_CPU = training.accelerator() == "cpu"


@pytest.fixture(autouse=True)
def _no_budget_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """A FORGERY_TIME_BUDGET_S in the developer's shell must not add callbacks to these tests."""
    monkeypatch.delenv(training.TIME_BUDGET_ENV, raising=False)


def _tiny_model(seed: int | None = None) -> keras.Model:
    if seed is not None:
        training.set_seeds(seed)
    inputs = keras.Input(shape=(4,), name="ela")
    hidden = keras.layers.Dense(8, activation="relu")(inputs)
    outputs = keras.layers.Dense(1, activation="sigmoid")(hidden)
    model = keras.Model({"ela": inputs}, outputs)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="binary_crossentropy", jit_compile=False)
    return model


class _Recording(keras.utils.PyDataset):
    """Batches i of a fixed table; remembers which batch indices were requested, in order."""

    def __init__(self, n: int = 12, batch_size: int = 3, shuffle: bool = False) -> None:
        super().__init__()
        rng = np.random.default_rng(0)
        self.x = rng.normal(size=(n, 4)).astype("float32")
        self.y = (self.x[:, 0] > 0).astype("float32")
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.requested: list[int] = []

    def __len__(self) -> int:
        return len(self.x) // self.batch_size

    def __getitem__(self, index: int):
        self.requested.append(index)
        rows = slice(index * self.batch_size, (index + 1) * self.batch_size)
        return {"ela": self.x[rows]}, self.y[rows]


def test_set_seeds_repeats_weights_and_draws() -> None:
    first = [w.copy() for w in _tiny_model(seed=5).get_weights()]
    draw = np.random.rand(3)
    second = _tiny_model(seed=5).get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(first, second))
    training.set_seeds(5)
    _tiny_model()
    assert np.array_equal(np.random.rand(3), draw)
    other = _tiny_model(seed=6).get_weights()
    assert not all(np.array_equal(a, b) for a, b in zip(first, other))


def test_hardware_defaults() -> None:
    assert training.accelerator() in ("cpu", "gpu", "tpu")
    assert training.device_count() >= 1
    if not ON_CPU:
        pytest.skip("CPU defaults only")
    try:
        assert training.configure_precision() == "float32"
        assert keras.mixed_precision.global_policy().name == "float32"
        assert training.configure_precision(True) == "mixed_float16"
        assert keras.mixed_precision.global_policy().name == "mixed_float16"
        assert training.configure_precision(False) == "float32"
    finally:
        keras.mixed_precision.set_global_policy("float32")
    expected = "auto" if keras.backend.backend() == "jax" else False
    assert training.jit_compile_setting() == expected


@pytest.mark.parametrize("kind, capability, mixed, policy", [
    ("cpu", None, None, "float32"),
    ("cpu", None, True, "mixed_float16"),
    ("gpu", (9, 0), None, "mixed_bfloat16"),  # H100, H200
    ("gpu", (8, 0), None, "mixed_bfloat16"),  # A100
    ("gpu", (8, 6), None, "mixed_bfloat16"),  # RTX 30xx, A10
    ("gpu", (7, 5), None, "mixed_float16"),  # T4 (Colab's free GPU)
    ("gpu", (7, 0), None, "mixed_float16"),  # V100
    ("gpu", None, None, "mixed_float16"),  # capability unknown (ROCm)
    ("gpu", (9, 0), False, "float32"),
    ("gpu", (7, 5), True, "mixed_float16"),
    ("tpu", None, None, "mixed_bfloat16"),
    ("tpu", None, False, "float32"),
])
def test_precision_policy_follows_the_device(kind, capability, mixed, policy) -> None:
    assert training.precision_policy(kind, capability, mixed) == policy


def test_precision_policy_refuses_an_unknown_kind() -> None:
    with pytest.raises(ValueError, match="accelerator kind"):
        training.precision_policy("npu", None, None)


@pytest.mark.parametrize("capability, policy", [((9, 0), "mixed_bfloat16"), ((7, 5), "mixed_float16"),
                                                (None, "mixed_float16")])
def test_configure_precision_on_a_gpu_sets_the_policy(monkeypatch: pytest.MonkeyPatch, capability, policy) -> None:
    monkeypatch.setattr(training, "accelerator", lambda: "gpu")
    monkeypatch.setattr(training, "gpu_compute_capability", lambda: capability)
    try:
        assert training.configure_precision() == policy
        assert keras.mixed_precision.global_policy().name == policy
        assert training.configure_precision(False) == "float32"
        assert keras.mixed_precision.global_policy().name == "float32"
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_jit_compile_is_on_for_an_accelerator(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(training, "accelerator", lambda: "gpu")
    assert training.jit_compile_setting() == "auto"  # XLA for every backend: Keras resolves "auto" to jit under JAX


def test_compute_capability_parsing_and_cpu() -> None:
    parse = training._parse_capability
    assert parse("9.0") == (9, 0) and parse("8.6") == (8, 6) and parse((7, 5)) == (7, 5) and parse([8]) == (8, 0)
    assert parse(None) is None and parse("gfx90a") is None and parse(9.0) is None
    if ON_CPU:
        assert training.gpu_compute_capability() is None


DATA_PARALLEL = """
import json
import keras
import numpy as np
from helpers import training

training.accelerator = lambda: "gpu"  # two host devices stand in for two GPUs
training.device_count = lambda: len(keras.distribution.list_devices())

class Seen(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.during_fit = []
    def on_train_batch_begin(self, batch, logs=None):
        current = keras.distribution.distribution()
        self.during_fit.append(None if current is None else len(current.device_mesh.devices.reshape(-1)))

def model():
    inputs = keras.Input((4,), name="ela")
    out = keras.layers.Dense(1, activation="sigmoid")(keras.layers.Dense(8, activation="relu")(inputs))
    built = keras.Model({"ela": inputs}, out)
    built.compile(optimizer="adam", loss="binary_crossentropy", jit_compile=training.jit_compile_setting())
    return built

x = np.random.default_rng(0).normal(size=(16, 4)).astype("float32")
y = (x[:, 0] > 0).astype("float32")
data = [({"ela": x[i:i + 8]}, y[i:i + 8]) for i in (0, 8)]

class Batches(keras.utils.PyDataset):
    def __len__(self):
        return 2
    def __getitem__(self, index):
        return data[index]

inside, outside = Seen(), Seen()
with training.distribution_scope(multi_gpu=True) as used:
    kind = type(used).__name__
    first = model()
    training.fit_model(first, Batches(), None, epochs=1, run_dir=WORK, callbacks=[inside], verbose=0)
    second = model()
after_scope = keras.distribution.distribution()
history = training.fit_model(second, Batches(), None, epochs=1, run_dir=WORK, callbacks=[outside], verbose=0)
print("RESULT " + json.dumps({
    "devices": len(keras.distribution.list_devices()), "kind": kind, "inside": inside.during_fit,
    "outside": outside.during_fit, "after_scope": after_scope is None,
    "after_fit": keras.distribution.distribution() is None,
    "replicated_on": len(second.variables[0].value.sharding.device_set),
    "loss": float(history.history["loss"][-1])}))
"""


def test_jax_data_parallel_spreads_batches_over_devices(tmp_path) -> None:
    """multi_gpu under JAX, on two host devices standing in for GPUs (XLA's forced device count)."""
    if importlib.util.find_spec("jax") is None:
        pytest.skip("jax is not installed")
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu", "CUDA_VISIBLE_DEVICES": "",
           "XLA_FLAGS": "--xla_force_host_platform_device_count=2", "TF_CPP_MIN_LOG_LEVEL": "3"}
    code = f"WORK = {str(tmp_path)!r}\n" + textwrap.dedent(DATA_PARALLEL)
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300,
                          cwd=Path(__file__).resolve().parent.parent)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert done.returncode == 0 and lines, f"exit {done.returncode}\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    result = json.loads(lines[-1][len("RESULT "):])
    assert result["devices"] == 2 and result["kind"] == "DataParallel"
    assert result["inside"] == [2, 2], "fit inside the scope did not run under DataParallel"
    assert result["replicated_on"] == 2, "a model built in the scope must hold its variables on both devices"
    assert result["outside"] == [2, 2], "fit_model after the scope closed trained without DataParallel"
    assert result["after_scope"] and result["after_fit"], "the distribution leaked out of the scope or fit_model"
    assert np.isfinite(result["loss"])


def test_distribution_scope_on_one_device_is_a_no_op() -> None:
    if training.device_count() > 1:
        pytest.skip("needs a single device")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with training.distribution_scope() as used:
            assert used is None
            model = _tiny_model()
    assert model.predict_on_batch({"ela": np.zeros((2, 4), "float32")}).shape == (2, 1)
    with pytest.warns(RuntimeWarning, match="multi_gpu=True but Keras sees 1"):
        with training.distribution_scope(multi_gpu=True) as used:
            assert used is None
    assert keras.distribution.distribution() is None


def test_standard_callbacks_write_csv_and_on_request_a_weights_only_checkpoint(tmp_path) -> None:
    callbacks = training.standard_callbacks(tmp_path / "run", patience=5, checkpoint="best.weights.h5")
    kinds = [type(c).__name__ for c in callbacks]
    assert kinds == ["EarlyStopping", "ReduceLROnPlateau", "BestWeightsCheckpoint", "CSVLogger"]
    assert callbacks[0].restore_best_weights and callbacks[0].patience == 5
    model = _tiny_model(seed=0)
    history = training.fit_model(model, _Recording(), _Recording(6), epochs=3, run_dir=tmp_path / "run",
                                 callbacks=callbacks, verbose=0)
    assert len(history.history["loss"]) == 3
    best = tmp_path / "run" / "best.weights.h5"
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["best.weights.h5", training.HISTORY_CSV]
    with h5py.File(best, "r") as stored:
        assert "optimizer" not in stored  # weights only: Keras' own save_weights would store Adam's state too
    restored = _tiny_model(seed=1)
    restored.load_weights(best)
    x = {"ela": np.ones((1, 4), "float32")}
    assert np.allclose(restored.predict_on_batch(x), model.predict_on_batch(x))  # early stopping kept the best
    log = pd.read_csv(tmp_path / "run" / training.HISTORY_CSV)
    assert list(log["epoch"]) == [0, 1, 2] and {"loss", "val_loss", "learning_rate"} <= set(log.columns)
    assert [type(c).__name__ for c in training.standard_callbacks(tmp_path / "b")] == [
        "EarlyStopping", "ReduceLROnPlateau", "CSVLogger"]  # no checkpoint unless asked for
    with pytest.raises(ValueError, match="optimizer"):
        training.standard_callbacks(tmp_path, checkpoint="best.keras")


def test_tensorboard_is_optional(tmp_path) -> None:
    if importlib.util.find_spec("tensorboard") is None:
        with pytest.warns(RuntimeWarning, match="tensorboard"):
            callbacks = training.standard_callbacks(tmp_path, tensorboard=True)
        assert "TensorBoard" not in [type(c).__name__ for c in callbacks]
    else:
        callbacks = training.standard_callbacks(tmp_path, tensorboard=True)
        assert type(callbacks[-1]).__name__ == "TensorBoard" and callbacks[-1].log_dir == str(tmp_path / "logs")


def test_class_weights_balance_the_classes() -> None:
    weights = training.class_weights([0, 0, 0, 1])
    assert weights == pytest.approx({0: 4 / 6, 1: 2.0})
    assert 3 * weights[0] == pytest.approx(1 * weights[1])
    assert training.class_weights(np.array([0.0, 1.0, 1.0, 2.0])) == pytest.approx({0: 4 / 3, 1: 2 / 3, 2: 4 / 3})
    with pytest.raises(ValueError):
        training.class_weights([])


def test_fit_model_keeps_the_dataset_order_and_uses_default_callbacks(tmp_path) -> None:
    data = _Recording(12, 3)
    training.fit_model(_tiny_model(seed=0), data, None, epochs=2, run_dir=tmp_path, verbose=0,
                       callbacks=training.standard_callbacks(tmp_path, monitor="loss"),
                       class_weight={0: 1.0, 1: 2.0})
    # Keras' own shuffling would permute batch indices; fit_model passes shuffle=False. (Keras peeks at the
    # first batches before training, hence the last eight requests.)
    assert data.requested[-8:] == [0, 1, 2, 3, 0, 1, 2, 3]
    assert (tmp_path / training.HISTORY_CSV).is_file() and not list(tmp_path.glob("*.keras"))


def test_predict_scores_in_dataset_order() -> None:
    model = _tiny_model(seed=0)
    data = _Recording(12, 3)
    scores, labels = training.predict_scores(model, data)
    assert scores.shape == (12,) and np.array_equal(labels, data.y)
    direct = model.predict_on_batch({"ela": data.x}).reshape(-1)
    assert np.allclose(scores, direct, atol=1e-6)
    with pytest.raises(ValueError, match="shuffle=False"):
        training.predict_scores(model, _Recording(shuffle=True))
    inputs = keras.Input(shape=(4,), name="ela")
    softmax = keras.Model({"ela": inputs}, keras.layers.Dense(3, activation="softmax")(inputs))
    proba, _ = training.predict_scores(softmax, data)
    assert proba.shape == (12, 3) and np.allclose(proba.sum(axis=1), 1, atol=1e-5)
