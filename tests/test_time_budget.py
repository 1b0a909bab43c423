"""TimeBudget and FORGERY_TIME_BUDGET_S: training stops when its share of the run's time is spent, best weights kept."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from helpers import training

BATCHES_PER_EPOCH = 4


@pytest.fixture(autouse=True)
def _no_budget_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(training.TIME_BUDGET_ENV, raising=False)


class _Batches(keras.utils.PyDataset):
    """Random inputs with a learnable label, BATCHES_PER_EPOCH batches of 4."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        rng = np.random.default_rng(seed)
        self.x = rng.normal(size=(4 * BATCHES_PER_EPOCH, 4)).astype("float32")
        self.y = (self.x[:, 0] > 0).astype("float32")

    def __len__(self) -> int:
        return BATCHES_PER_EPOCH

    def __getitem__(self, index: int):
        rows = slice(4 * index, 4 * index + 4)
        return {"ela": self.x[rows]}, self.y[rows]


def _tiny_model() -> keras.Model:
    training.set_seeds(0)
    inputs = keras.Input(shape=(4,), name="ela")
    outputs = keras.layers.Dense(1, activation="sigmoid")(keras.layers.Dense(8, activation="relu")(inputs))
    model = keras.Model({"ela": inputs}, outputs)
    # A large step: every batch moves the weights, so each epoch ends with different ones.
    model.compile(optimizer=keras.optimizers.SGD(0.5), loss="binary_crossentropy", jit_compile=False)
    return model


class _Script(keras.callbacks.Callback):
    """Advances a fake clock one second per training batch, logs a scripted ``val_score`` at each epoch's end
    and keeps a copy of the weights each epoch ended with. Listed before TimeBudget, so it sees both first."""

    def __init__(self, scores: list[float]) -> None:
        super().__init__()
        self.now = 0.0
        self.batches = 0
        self.scores = scores
        self.weights: list[list[np.ndarray]] = []

    def clock(self) -> float:
        return self.now

    def on_train_batch_end(self, batch, logs=None) -> None:
        self.now += 1.0
        self.batches += 1

    def on_epoch_end(self, epoch, logs=None) -> None:
        logs["val_score"] = self.scores[epoch]
        self.weights.append([w.copy() for w in self.model.get_weights()])


def _same(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(a, b))


def test_budget_spent_mid_epoch_stops_within_a_batch_and_restores_the_best_epoch() -> None:
    script = _Script([0.5, 0.9, 0.3, 0.95, 0.99])
    budget = training.TimeBudget(10, monitor="val_score", mode="max", clock=script.clock, verbose=0)
    model = _tiny_model()
    history = model.fit(_Batches(), epochs=5, callbacks=[script, budget], shuffle=False, verbose=0)
    # Batch 10 (epoch 3, second batch) spends the 10 s: nothing runs after it but that epoch's bookkeeping.
    assert script.batches == 10 and len(history.history["loss"]) == 3
    assert budget.exhausted and (budget.stopped_epoch, budget.stopped_batch) == (2, 1)
    assert budget.elapsed_seconds == pytest.approx(10.0)
    assert budget.best_epoch == 1 and budget.restored_epoch == 1 and budget.best == pytest.approx(0.9)
    assert not _same(script.weights[1], script.weights[2])
    assert _same(model.get_weights(), script.weights[1]), "the best epoch's weights were not restored"


def test_budget_spent_at_an_epoch_end_starts_no_new_epoch() -> None:
    script = _Script([0.1, 0.2, 0.0, 0.0])
    budget = training.TimeBudget(2 * BATCHES_PER_EPOCH + 0.5, monitor="val_score", mode="min", clock=script.clock,
                                 verbose=0)
    model = _tiny_model()

    class _AfterBatches(keras.callbacks.Callback):  # the clock passes the budget between epochs
        def on_epoch_end(self, epoch, logs=None) -> None:
            script.now += 0.25

    history = model.fit(_Batches(), epochs=4, callbacks=[script, _AfterBatches(), budget], shuffle=False, verbose=0)
    assert len(history.history["loss"]) == 2 and script.batches == 2 * BATCHES_PER_EPOCH
    assert (budget.stopped_epoch, budget.stopped_batch) == (1, None)
    assert budget.restored_epoch == 0 and _same(model.get_weights(), script.weights[0])


def test_unspent_budget_changes_nothing() -> None:
    script = _Script([0.9, 0.1, 0.2])
    budget = training.TimeBudget(1000, monitor="val_score", mode="max", clock=script.clock, verbose=0)
    model = _tiny_model()
    model.fit(_Batches(), epochs=3, callbacks=[script, budget], shuffle=False, verbose=0)
    assert not budget.exhausted and budget.restored_epoch is None and budget.stopped_epoch is None
    assert _same(model.get_weights(), script.weights[-1]), "weights must be the last epoch's when time remained"


def test_budget_on_the_real_clock_stops_after_the_first_batch_and_validates(capsys) -> None:
    counter = _Script([0.0])
    budget = training.TimeBudget(1e-9)  # spent by the time the first batch ends
    model = _tiny_model()
    history = model.fit(_Batches(), validation_data=_Batches(1), epochs=3, callbacks=[counter, budget],
                        shuffle=False, verbose=0)
    assert counter.batches == 1 and len(history.history["loss"]) == 1
    assert "val_loss" in history.history, "the shortened epoch still gets its validation pass"
    assert budget.exhausted and (budget.stopped_epoch, budget.stopped_batch) == (0, 0)
    assert budget.restored_epoch == 0 and budget.elapsed_seconds > 0
    printed = capsys.readouterr().out
    assert "TimeBudget: " in printed and "stopped training" in printed


def test_budget_restores_from_early_stopping_without_a_copy_of_its_own() -> None:
    script = _Script([0.4, 0.8, 0.6, 0.7])
    stopping = keras.callbacks.EarlyStopping(monitor="val_score", mode="max", patience=50, restore_best_weights=True)
    budget = training.TimeBudget(3 * BATCHES_PER_EPOCH, monitor="val_score", best_weights_from=stopping,
                                 clock=script.clock, verbose=0)
    model = _tiny_model()
    model.fit(_Batches(), epochs=4, callbacks=[script, stopping, budget], shuffle=False, verbose=0)
    assert budget.exhausted and budget.best_weights is None, "the budget copied weights EarlyStopping already holds"
    assert budget.restored_epoch == 1 and _same(model.get_weights(), script.weights[1])
    with pytest.raises(ValueError, match="restore_best_weights=True"):
        training.TimeBudget(5, best_weights_from=keras.callbacks.EarlyStopping())
    with pytest.raises(TypeError, match="EarlyStopping"):
        training.TimeBudget(5, best_weights_from=keras.callbacks.CSVLogger("x.csv"))


def test_missing_monitor_warns_and_keeps_the_last_weights() -> None:
    script = _Script([0.1, 0.2])
    budget = training.TimeBudget(BATCHES_PER_EPOCH + 1, monitor="val_auc", clock=script.clock, verbose=0)
    model = _tiny_model()
    with pytest.warns(RuntimeWarning, match="'val_auc' is not among the logged values"):
        model.fit(_Batches(), epochs=3, callbacks=[script, budget], shuffle=False, verbose=0)
    assert budget.exhausted and budget.restored_epoch is None
    assert _same(model.get_weights(), script.weights[-1])


@pytest.mark.parametrize("seconds", [0, -1, float("nan"), float("inf")])
def test_budget_seconds_must_be_positive_and_finite(seconds: float) -> None:
    with pytest.raises(ValueError, match="positive, finite"):
        training.TimeBudget(seconds)


def test_mode_follows_the_monitor_name() -> None:
    assert training.TimeBudget(1, monitor="val_loss").mode == "min"
    assert training.TimeBudget(1, monitor="val_pixel_f1").mode == "max"
    assert training.TimeBudget(1, monitor="val_auc").mode == "max"
    assert training.TimeBudget(1, monitor="val_auc", mode="min").mode == "min"
    with pytest.raises(ValueError, match="mode"):
        training.TimeBudget(1, mode="largest")


# --------------------------------------------------------------------------------------------------------------
# FORGERY_TIME_BUDGET_S
# --------------------------------------------------------------------------------------------------------------


def test_time_budget_seconds_reads_the_share_of_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert training.time_budget_seconds() is None
    assert training.time_budget_seconds(0.5) is None
    assert training.time_budget_seconds(0.5, default=100) == pytest.approx(50)
    monkeypatch.setenv(training.TIME_BUDGET_ENV, "600")
    assert training.time_budget_seconds() == pytest.approx(600)
    assert training.time_budget_seconds(0.25) == pytest.approx(150)
    assert training.time_budget_seconds(0.25, default=100) == pytest.approx(150), "the variable wins over default"
    monkeypatch.setenv(training.TIME_BUDGET_ENV, " 90.5 ")
    assert training.time_budget_seconds() == pytest.approx(90.5)
    monkeypatch.setenv(training.TIME_BUDGET_ENV, "")
    assert training.time_budget_seconds() is None, "an empty variable is an unset one"


@pytest.mark.parametrize("text, message", [
    ("ten minutes", "must be a number of seconds, got 'ten minutes'"),
    ("-60", "positive number of seconds"),
    ("0", "positive number of seconds"),
    ("nan", "positive number of seconds"),
    ("inf", "positive number of seconds"),
])
def test_time_budget_seconds_refuses_bad_values(monkeypatch: pytest.MonkeyPatch, text: str, message: str) -> None:
    monkeypatch.setenv(training.TIME_BUDGET_ENV, text)
    with pytest.raises(ValueError, match=training.TIME_BUDGET_ENV) as error:
        training.time_budget_seconds()
    assert message in str(error.value)


def test_time_budget_seconds_checks_share_and_default() -> None:
    for share in (0, -0.5, 1.5):
        with pytest.raises(ValueError, match="share"):
            training.time_budget_seconds(share, default=60)
    with pytest.raises(ValueError, match="default=-5"):
        training.time_budget_seconds(default=-5)


def test_standard_callbacks_add_the_models_share_of_the_budget(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    def budgets(run_dir, **kwargs) -> list[training.TimeBudget]:
        return [c for c in training.standard_callbacks(run_dir, **kwargs) if isinstance(c, training.TimeBudget)]

    assert budgets(tmp_path / "06_dual_stream") == [], "no variable, no budget"
    monkeypatch.setenv(training.TIME_BUDGET_ENV, "1000")
    (dual,) = budgets(tmp_path / "06_dual_stream", monitor="val_loss")
    assert dual.seconds == pytest.approx(1000 * training.BUDGET_SHARES["06_dual_stream"])
    assert dual.monitor == "val_loss" and dual.mode == "min"
    assert isinstance(dual.best_weights_from, keras.callbacks.EarlyStopping)
    (own,) = budgets(tmp_path / "my_model")
    assert own.seconds == pytest.approx(1000), "a model outside the notebooks gets the whole budget"
    assert budgets(tmp_path / "06_dual_stream", time_budget=None) == []
    (explicit,) = budgets(tmp_path / "x", time_budget=42, monitor="val_auc", mode="max")
    assert explicit.seconds == 42 and explicit.mode == "max"
    assert 0.0 < sum(training.BUDGET_SHARES.values()) < 1.0, "the shares must leave time for what is not training"
    monkeypatch.setenv(training.TIME_BUDGET_ENV, "soon")
    with pytest.raises(ValueError, match=training.TIME_BUDGET_ENV):
        training.standard_callbacks(tmp_path / "06_dual_stream")


def test_fit_model_obeys_the_budget_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv(training.TIME_BUDGET_ENV, "1e-9")
    history = training.fit_model(_tiny_model(), _Batches(), _Batches(1), epochs=5, run_dir=tmp_path / "run",
                                 verbose=0)
    assert len(history.history["loss"]) == 1, "the default callbacks ignored FORGERY_TIME_BUDGET_S"
    assert (tmp_path / "run" / training.HISTORY_CSV).is_file()
    assert not list((tmp_path / "run").glob("*.keras"))  # no checkpoint unless asked for
