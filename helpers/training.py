"""Training plumbing shared by the classifier (notebook 05) and the mask models (notebook 06).

Everything here goes through ``keras`` and ``keras.ops``, so the same code trains on TensorFlow, JAX (and
PyTorch) backends; the backend is chosen by ``KERAS_BACKEND`` before Keras is first imported. The one place that
touches TensorFlow itself is the multi-GPU branch of :func:`distribution_scope` on the TensorFlow backend
(``tf.distribute.MirroredStrategy``, imported only there), because Keras 3 offers no backend-neutral
data-parallel strategy for TensorFlow.

What each helper decides, and why:

* :func:`set_seeds` -- Python, NumPy and the backend's generators from one seed (``keras.utils.set_random_seed``),
  so two runs with the same seed start from the same weights and the same dropout draws;
* :func:`accelerator` / :func:`configure_precision` / :func:`jit_compile_setting` -- mixed precision and XLA
  pay off on a GPU and cost time (or accuracy) on a CPU, so the default follows the hardware: bfloat16 where the
  GPU computes it natively (compute capability 8.0 and up: A100, H100/H200, RTX 30xx and later), float16 with
  loss scaling on older GPUs (T4, V100), float32 on a CPU;
* :func:`distribution_scope` -- data parallelism over several GPUs; under JAX :func:`fit_model` re-enters it for
  a model built inside the scope but fitted outside it;
* :func:`standard_callbacks` / :func:`fit_model` -- one training recipe (early stopping that restores the best
  weights, learning-rate decay on plateaus, a CSV log, on request a weights-only checkpoint of the
  best epoch, and a
  :class:`TimeBudget` when ``FORGERY_TIME_BUDGET_S`` is set) for every model, and ``fit(shuffle=False)`` because
  :class:`helpers.pipeline.ForgeryBatches` shuffles itself deterministically;
* :class:`TimeBudget` / :func:`time_budget_seconds` -- a run given a fixed amount of machine time (a rented GPU,
  a CI job) splits it between its models, and each stops cleanly when its share is spent, keeping its best
  weights, instead of being killed halfway with nothing saved;
* :func:`predict_scores` -- scores in dataset order with the labels that go with them, for the metrics.
"""

from __future__ import annotations

import contextlib
import importlib.util
import math
import os
import random
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import keras
import numpy as np

__all__ = [
    "set_seeds",
    "accelerator",
    "device_count",
    "gpu_compute_capability",
    "precision_policy",
    "configure_precision",
    "jit_compile_setting",
    "distribution_scope",
    "TIME_BUDGET_ENV",
    "BUDGET_SHARES",
    "time_budget_seconds",
    "budget_share",
    "TimeBudget",
    "standard_callbacks",
    "BestWeightsCheckpoint",
    "class_weights",
    "fit_model",
    "predict_scores",
    "HISTORY_CSV",
]

Accelerator = Literal["gpu", "tpu", "cpu"]

HISTORY_CSV = "history.csv"
"""File name of the per-epoch log :func:`standard_callbacks` writes in ``run_dir``."""


def set_seeds(seed: int) -> None:
    """Seed Python's ``random``, NumPy's global generator and the Keras backend's from one integer.

    Why all three: layer initialisers and dropout draw from the backend's generator, Keras' ``fit`` shuffles
    with Python's ``random``, and older code draws from ``np.random``. ``PYTHONHASHSEED`` is set for child
    processes (it cannot change the hashing of this one). Under JAX (or torch) TensorFlow's seed is left alone
    unless TensorFlow is already loaded, so that seeding does not import it. GPU kernels may still be non-deterministic; call
    ``keras.config.enable_unsafe_deterministic_mode`` too if bit-identical GPU runs matter more than speed.
    """
    seed = int(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
    if keras.backend.backend() == "tensorflow" or "tensorflow" in sys.modules:
        keras.utils.set_random_seed(seed)
        return
    # Other backends: what keras.utils.set_random_seed does, minus tf.random.set_seed. Keras would import
    # TensorFlow for that alone (seconds and hundreds of MB under JAX), and only tf.data pipelines read it.
    try:
        from keras.src.backend.common import global_state
        from keras.src.random import seed_generator
    except ImportError:  # pragma: no cover - Keras moved its internals: fall back to the public call
        keras.utils.set_random_seed(seed)
        return
    global_state.set_global_attribute("global_random_seed", seed)
    global_state.set_global_attribute(seed_generator.GLOBAL_SEED_GENERATOR, None)
    random.seed(seed)
    np.random.seed(seed)
    if keras.backend.backend() == "torch":  # pragma: no cover - torch is not a workbook dependency
        import torch

        torch.manual_seed(seed)


def _devices() -> list[str]:
    try:
        return [str(d).lower() for d in keras.distribution.list_devices()]
    except Exception:  # noqa: BLE001 - a backend without a device listing (torch on some builds) counts as CPU
        return ["cpu:0"]


def accelerator() -> Accelerator:
    """``"tpu"``, ``"gpu"`` or ``"cpu"``: the kind of device Keras' backend will compute on.

    Backend-neutral (``keras.distribution.list_devices``): the same answer under TensorFlow and JAX.
    """
    kinds = {device.split(":")[0] for device in _devices()}
    if "tpu" in kinds:
        return "tpu"
    if "gpu" in kinds or "cuda" in kinds:
        return "gpu"
    return "cpu"


def device_count() -> int:
    """How many devices of :func:`accelerator`'s kind there are (1 on a CPU)."""
    kind = accelerator()
    if kind == "cpu":
        return 1
    return sum(1 for device in _devices() if device.split(":")[0] in (kind, "cuda"))


def gpu_compute_capability() -> tuple[int, int] | None:
    """``(major, minor)`` CUDA compute capability of the first GPU the backend computes on, or ``None``.

    ``None`` when there is no GPU or the backend does not say (a ROCm GPU, an unknown backend). Asks the backend
    Keras runs on: JAX's device (``compute_capability``, e.g. ``"9.0"`` on an H200), TensorFlow's device details
    (only when TensorFlow is already loaded, as it is under its own backend: never imported for this), or torch.
    """
    backend = keras.backend.backend()
    try:
        if backend == "jax":
            import jax

            for device in jax.devices():
                if device.platform == "gpu":
                    return _parse_capability(getattr(device, "compute_capability", None))
            return None
        if backend == "tensorflow" and "tensorflow" in sys.modules:
            tf = sys.modules["tensorflow"]
            gpus = tf.config.list_physical_devices("GPU")
            if not gpus:
                return None
            return _parse_capability(tf.config.experimental.get_device_details(gpus[0]).get("compute_capability"))
        if backend == "torch":  # pragma: no cover - torch is not a workbook dependency
            import torch

            return tuple(torch.cuda.get_device_capability(0)) if torch.cuda.is_available() else None
    except Exception:  # noqa: BLE001 - a capability we cannot read is an unknown one, never a failed run
        return None
    return None


def _parse_capability(value: Any) -> tuple[int, int] | None:
    """``"9.0"``, ``(8, 6)`` or ``[7, 5]`` as ``(major, minor)``; ``None`` for anything else."""
    if isinstance(value, str):
        parts = value.strip().split(".")
    elif isinstance(value, (tuple, list)):
        parts = list(value)
    else:
        return None
    try:
        major, minor = (int(part) for part in (list(parts) + [0])[:2])
    except (TypeError, ValueError):
        return None
    return major, minor


BFLOAT16_MIN_CAPABILITY = (8, 0)
"""First CUDA compute capability with native bfloat16 tensor cores (Ampere: A100, RTX 30xx)."""


def precision_policy(kind: Accelerator, compute_capability: tuple[int, int] | None, mixed: bool | None) -> str:
    """The dtype policy :func:`configure_precision` sets, from the device kind and the GPU's compute capability.

    * ``mixed=False``, or ``None`` on a CPU: ``"float32"`` (a CPU has no fast half-precision arithmetic);
    * a TPU: ``"mixed_bfloat16"`` (its native format);
    * a GPU of compute capability 8.0 or more: ``"mixed_bfloat16"``: as fast as float16 there, with float32's
      exponent range, so no loss scaling and no overflow in a loss or a large logit;
    * an older GPU (T4, V100) or one whose capability is unknown: ``"mixed_float16"`` (Keras adds loss scaling);
    * ``mixed=True`` on a CPU: ``"mixed_float16"``, to test the mixed code path on any machine.
    """
    if kind not in ("cpu", "gpu", "tpu"):
        raise ValueError(f"unknown accelerator kind {kind!r}; expected 'cpu', 'gpu' or 'tpu'")
    if mixed is None:
        mixed = kind != "cpu"
    if not mixed:
        return "float32"
    if kind == "tpu":
        return "mixed_bfloat16"
    if kind == "gpu" and compute_capability is not None and tuple(compute_capability) >= BFLOAT16_MIN_CAPABILITY:
        return "mixed_bfloat16"
    return "mixed_float16"


def configure_precision(mixed: bool | None = None) -> str:
    """Set Keras' global dtype policy for this hardware (see :func:`precision_policy`) and return its name.

    ``None`` picks for the hardware (mixed precision on an accelerator, bfloat16 where the GPU supports it),
    ``True`` forces the accelerator's mixed policy (``mixed_float16`` on a CPU, for testing), ``False`` forces
    ``float32``. Models of :mod:`helpers.models.classifier` keep their last activation in float32, as mixed
    precision needs. Call this *before* building a model: the policy applies to layers created afterwards.
    """
    kind = accelerator()
    capability = gpu_compute_capability() if kind == "gpu" else None
    policy = precision_policy(kind, capability, mixed)
    keras.mixed_precision.set_global_policy(policy)
    return policy


def jit_compile_setting() -> bool | str:
    """The ``jit_compile`` to pass to ``model.compile``: ``"auto"`` on an accelerator, ``False`` on a CPU.

    On a GPU or TPU, XLA fuses kernels and pays for its compilation within an epoch. On a CPU with the
    TensorFlow backend the compilation of a ResNet costs more than it saves in a short run, and plain
    ``tf.function`` graphs are as fast. Exception: the JAX backend gets ``"auto"`` everywhere, because JAX
    without ``jit`` runs operation by operation, many times slower.
    """
    if accelerator() != "cpu" or keras.backend.backend() == "jax":
        return "auto"
    return False


@contextlib.contextmanager
def distribution_scope(multi_gpu: bool = False) -> Iterator[Any]:
    """Context in which to *build and compile* a model so that ``fit`` spreads batches over all GPUs.

    ``multi_gpu=False`` (or a single device): nothing happens, the model trains on the default device. With
    several GPUs: on TensorFlow a ``tf.distribute.MirroredStrategy`` scope (the one TensorFlow import of the
    workbook), on JAX ``keras.distribution.DataParallel`` over every device, undone when the context exits.
    Asking for ``multi_gpu`` on one device warns and trains on that device; the batch size is the *global*
    one, split across devices, so scale it with the device count. Yields the strategy or distribution used
    (``None`` when none).
    """
    count = device_count()
    if not multi_gpu:
        yield None
        return
    if accelerator() == "cpu" or count < 2:
        warnings.warn(
            f"multi_gpu=True but Keras sees {count} {accelerator()} device(s): training on one device",
            RuntimeWarning,
            stacklevel=3,
        )
        yield None
        return
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf  # the documented exception: Keras 3 has no data-parallel strategy for TF

        strategy = tf.distribute.MirroredStrategy()
        with strategy.scope():
            yield strategy
        return
    if backend == "jax":
        previous = keras.distribution.distribution()
        devices = keras.distribution.list_devices()
        distribution = keras.distribution.DataParallel(devices=devices)
        keras.distribution.set_distribution(distribution)
        try:
            yield distribution
        finally:
            keras.distribution.set_distribution(previous)
        return
    warnings.warn(f"multi_gpu is not supported on the {backend} backend here: training on one device",
                  RuntimeWarning, stacklevel=3)
    yield None


class BestWeightsCheckpoint(keras.callbacks.Callback):
    """Write the model's weights, and nothing else, to a ``.weights.h5`` file whenever ``monitor`` improves.

    Why not ``ModelCheckpoint(save_weights_only=True)``: Keras 3's ``save_weights`` stores every variable the
    model tracks, the optimizer's included (with Adam, three times the weights). This copies the weights into an
    uncompiled twin of the model, built once, and saves the twin. ``model.load_weights(path)`` reads the file
    back into the model; the optimizer starts afresh (Keras says so in a warning when the model is compiled).
    The file is replaced by a rename, never half-written.
    """

    def __init__(self, filepath: str | os.PathLike[str], *, monitor: str = "val_loss",
                 mode: Literal["min", "max"] = "min") -> None:
        super().__init__()
        path = Path(filepath)
        if not path.name.endswith(".weights.h5"):
            raise ValueError(f"checkpoint must name a weights file ending in .weights.h5, not {path.name!r}: "
                             "a full .keras checkpoint carries the optimizer's state too")
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', not {mode!r}")
        self.filepath = path
        self.monitor = monitor
        self.mode = mode
        self.best: float | None = None
        self._twin: keras.Model | None = None

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        value = (logs or {}).get(self.monitor)
        if value is None:
            warnings.warn(f"BestWeightsCheckpoint: {self.monitor!r} is not among the logged metrics "
                          f"{sorted(logs or {})}: nothing saved", RuntimeWarning, stacklevel=2)
            return
        value = float(value)
        if self.best is not None and not (value < self.best if self.mode == "min" else value > self.best):
            return
        self.best = value
        if self._twin is None:
            self._twin = type(self.model).from_config(self.model.get_config())
        self._twin.set_weights(self.model.get_weights())
        self.filepath.parent.mkdir(parents=True, exist_ok=True)
        partial = self.filepath.with_name(f".{self.filepath.name[: -len('.weights.h5')]}.partial.weights.h5")
        self._twin.save_weights(partial)
        os.replace(partial, self.filepath)


TIME_BUDGET_ENV = "FORGERY_TIME_BUDGET_S"
"""Environment variable holding a run's total training-time budget in seconds (unset: no budget)."""

BUDGET_SHARES: Mapping[str, float] = {
    "05_compact_ela_cnn": 0.06,
    "05_resnet50_ela": 0.14,
    "05_multiclass_stream": 0.10,
    "06_unet_scratch": 0.10,
    "06_dual_stream": 0.20,
}
"""Share of :data:`TIME_BUDGET_ENV` each workbook model gets, by the name of its ``run_dir`` folder.

The notebooks train into ``<run>/checkpoints/<name>``, so :func:`standard_callbacks` finds a model's share from
its folder without the notebook passing one. The shares add up to 0.6: the other 40% pays for what is not
training (building the data set, features, tiled evaluation, notebook 07), and larger models get more. A folder
not listed (a model trained outside the notebooks) gets the whole budget."""


def time_budget_seconds(share: float = 1.0, default: float | None = None) -> float | None:
    """The seconds of training a model gets: ``share`` of ``$FORGERY_TIME_BUDGET_S``, or ``None`` for no limit.

    ``FORGERY_TIME_BUDGET_S`` is the total for a whole run (``benchmarks/gpu/run.sh`` sets it); each model
    takes its ``share`` (in ``(0, 1]``). When the variable is unset or empty, ``default`` stands for the total
    (``None``: no budget, and this returns ``None``). A value that is not a finite positive number of seconds is
    an error naming the variable, never silently "no limit".
    """
    share = float(share)
    if not (0.0 < share <= 1.0):
        raise ValueError(f"share must be in (0, 1], got {share!r}")
    text = os.environ.get(TIME_BUDGET_ENV, "").strip()
    if text:
        try:
            total = float(text)
        except ValueError:
            raise ValueError(f"{TIME_BUDGET_ENV} must be a number of seconds, got {text!r}") from None
        where = f"{TIME_BUDGET_ENV}={text!r}"
    elif default is not None:
        total = float(default)
        where = f"default={default!r}"
    else:
        return None
    if not math.isfinite(total) or total <= 0:
        raise ValueError(f"{where}: a time budget must be a positive number of seconds (unset it for no limit)")
    return total * share


def budget_share(run_dir: str | os.PathLike[str]) -> float:
    """The share of the run's budget for the model training into ``run_dir`` (:data:`BUDGET_SHARES`; else 1)."""
    return float(BUDGET_SHARES.get(Path(run_dir).name, 1.0))


def _resolve_mode(monitor: str, mode: str) -> Literal["min", "max"]:
    if mode in ("min", "max"):
        return mode  # type: ignore[return-value]
    if mode != "auto":
        raise ValueError(f"mode must be 'min', 'max' or 'auto', got {mode!r}")
    scores = ("acc", "auc", "f1", "iou", "precision", "recall")
    return "max" if any(word in monitor.lower() for word in scores) else "min"


class TimeBudget(keras.callbacks.Callback):
    """Stop training once ``seconds`` have passed since ``fit`` began, and end with the best weights seen.

    The clock is read after every batch, so training stops within one batch of the budget; Keras then finishes
    the epoch's bookkeeping (the validation pass of the shortened epoch runs, the other callbacks see its end)
    and ``fit`` returns normally: checkpoints, CSV logs and early stopping behave as after any last epoch. When
    the budget stopped training (:attr:`exhausted`), the weights of the best epoch by ``monitor`` are restored,
    from an ``EarlyStopping(restore_best_weights=True)`` given as ``best_weights_from`` (no second copy in
    memory), else from this callback's own copy (``restore_best_weights=True``). A budget spent between epochs
    stops training before the next one starts. Compilation, the first (traced) batch and data loading count.

    ``monitor``/``mode`` as in ``EarlyStopping`` (``"auto"``: ``max`` for accuracy, AUC, F1, IoU, precision and
    recall, ``min`` otherwise). ``clock`` returns seconds (default :func:`time.monotonic`); tests pass a fake one.
    After ``fit``: :attr:`exhausted`, :attr:`elapsed_seconds`, :attr:`stopped_epoch` and :attr:`stopped_batch`
    (0-based; ``None`` for a stop at an epoch's end), :attr:`best_epoch` and :attr:`restored_epoch`.
    """

    def __init__(
        self,
        seconds: float,
        *,
        monitor: str = "val_loss",
        mode: Literal["min", "max", "auto"] = "auto",
        restore_best_weights: bool = True,
        best_weights_from: keras.callbacks.EarlyStopping | None = None,
        verbose: int = 1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        seconds = float(seconds)
        if not math.isfinite(seconds) or seconds <= 0:
            raise ValueError(f"TimeBudget needs a positive, finite number of seconds, got {seconds!r}")
        if best_weights_from is not None:
            if not isinstance(best_weights_from, keras.callbacks.EarlyStopping):
                raise TypeError("best_weights_from must be a keras.callbacks.EarlyStopping, got "
                                f"{type(best_weights_from).__name__}")
            if not best_weights_from.restore_best_weights:
                raise ValueError("best_weights_from needs an EarlyStopping built with restore_best_weights=True")
        self.seconds = seconds
        self.monitor = monitor
        self.mode = _resolve_mode(monitor, mode)
        self.restore_best_weights = bool(restore_best_weights)
        self.best_weights_from = best_weights_from
        self.verbose = int(verbose)
        self._clock = clock
        self._reset()

    def _reset(self) -> None:
        self._started: float | None = None
        self._epoch = 0
        self.exhausted = False
        self.elapsed_seconds = 0.0
        self.stopped_epoch: int | None = None
        self.stopped_batch: int | None = None
        self.best: float | None = None
        self.best_epoch: int | None = None
        self.best_weights: list[np.ndarray] | None = None
        self.restored_epoch: int | None = None
        self._missing_monitor_warned = False

    def elapsed(self) -> float:
        """Seconds since ``fit`` began (0 before it has)."""
        return 0.0 if self._started is None else self._clock() - self._started

    def _spend(self, epoch: int, batch: int | None) -> None:
        if not self.exhausted and self.elapsed() >= self.seconds:
            self.exhausted = True
            self.stopped_epoch, self.stopped_batch = epoch, batch
            self.model.stop_training = True

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self._reset()  # one instance may serve several fit calls, each with the whole budget
        self._started = self._clock()

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._epoch = epoch

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self._spend(self._epoch, batch)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        current = (logs or {}).get(self.monitor)
        value = None
        if current is not None:
            try:
                value = float(np.asarray(keras.ops.convert_to_numpy(current)))
            except (TypeError, ValueError):
                value = None
        if value is None or not math.isfinite(value):
            if current is None and not self._missing_monitor_warned:
                self._missing_monitor_warned = True
                warnings.warn(f"TimeBudget: {self.monitor!r} is not among the logged values "
                              f"({', '.join(sorted(logs or {})) or 'none'}); best weights are not tracked",
                              RuntimeWarning, stacklevel=2)
        elif self.best is None or (value < self.best if self.mode == "min" else value > self.best):
            self.best, self.best_epoch = value, epoch
            if self.restore_best_weights and self.best_weights_from is None:
                self.best_weights = self.model.get_weights()
        self._spend(epoch, None)

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        self.elapsed_seconds = round(self.elapsed(), 3)
        if not self.exhausted:
            return
        weights, epoch = self.best_weights, self.best_epoch
        if self.best_weights_from is not None:
            weights = self.best_weights_from.best_weights
            epoch = getattr(self.best_weights_from, "best_epoch", epoch)
        if self.restore_best_weights and weights is not None:
            self.model.set_weights(weights)
            self.restored_epoch = epoch
        if self.verbose:
            where = (f"epoch {self.stopped_epoch + 1}, batch {self.stopped_batch + 1}"
                     if self.stopped_batch is not None else f"the end of epoch {self.stopped_epoch + 1}")
            kept = (f"restored the weights of epoch {self.restored_epoch + 1} (best {self.monitor})"
                    if self.restored_epoch is not None else "kept the last weights")
            print(f"TimeBudget: {self.seconds:.0f} s spent at {where} ({self.elapsed_seconds:.0f} s): "
                  f"stopped training; {kept}", flush=True)


def standard_callbacks(
    run_dir: str | os.PathLike[str],
    *,
    monitor: str = "val_loss",
    mode: Literal["min", "max", "auto"] = "min",
    patience: int = 2,
    reduce_lr_patience: int = 1,
    checkpoint: str | None = None,
    tensorboard: bool = False,
    time_budget: float | None | Literal["auto"] = "auto",
) -> list[keras.callbacks.Callback]:
    """The workbook's training recipe as callbacks, writing into ``run_dir``.

    * ``EarlyStopping(restore_best_weights=True)``: stop after ``patience`` epochs without improvement of
      ``monitor`` and end with the best epoch's weights, not the last (small forensic sets overfit fast);
    * ``ReduceLROnPlateau``: halve the learning rate after ``reduce_lr_patience`` flat epochs (down to 1e-6);
    * with ``checkpoint`` (a file name ending in ``.weights.h5``), :class:`BestWeightsCheckpoint`: the best
      epoch's weights in ``run_dir/checkpoint``, for a run that may be killed before it ends. None by default:
      early stopping already ends with the best weights in memory, and the caller saves the model once.
      Weights only, because a full ``.keras`` checkpoint also stores the optimizer's state (with Adam, twice the
      weights again: 354 MB for the seed's compact CNN) and is rewritten at every improvement;
    * ``CSVLogger`` to ``run_dir/history.csv``, which :func:`helpers.training_plots.plot_history` reads;
    * ``TensorBoard`` logs in ``run_dir/logs`` when ``tensorboard`` (and the ``tensorboard`` package is
      installed; a warning otherwise);
    * :class:`TimeBudget` (last) when there is a budget: ``time_budget`` seconds, or with ``"auto"`` this
      model's share of ``$FORGERY_TIME_BUDGET_S`` (:func:`budget_share` of ``run_dir``; none when the variable
      is unset). It restores the best weights from the ``EarlyStopping`` above, so they are held once.

    ``monitor="val_auc"`` needs ``mode="max"``.
    """
    folder = Path(run_dir)
    folder.mkdir(parents=True, exist_ok=True)
    budget = time_budget_seconds(budget_share(folder)) if time_budget == "auto" else time_budget
    early_stopping = keras.callbacks.EarlyStopping(monitor=monitor, mode=mode, patience=patience,
                                                   restore_best_weights=True, verbose=0)
    callbacks: list[keras.callbacks.Callback] = [
        early_stopping,
        keras.callbacks.ReduceLROnPlateau(monitor=monitor, mode=mode, factor=0.5, patience=reduce_lr_patience,
                                          min_lr=1e-6, verbose=0),
    ]
    if checkpoint:
        best_mode: Literal["min", "max"] = mode if mode != "auto" else ("max" if "auc" in monitor or "acc" in monitor
                                                                         else "min")
        callbacks.append(BestWeightsCheckpoint(folder / checkpoint, monitor=monitor, mode=best_mode))
    callbacks.append(keras.callbacks.CSVLogger(str(folder / HISTORY_CSV)))
    if tensorboard:
        if importlib.util.find_spec("tensorboard") is None:
            warnings.warn("tensorboard=True but the tensorboard package is not installed: no TensorBoard logs "
                          "(pip install tensorboard)", RuntimeWarning, stacklevel=2)
        else:
            callbacks.append(keras.callbacks.TensorBoard(log_dir=str(folder / "logs")))
    if budget is not None:
        callbacks.append(TimeBudget(budget, monitor=monitor, mode=mode, best_weights_from=early_stopping))
    return callbacks


def class_weights(labels: Sequence[int] | np.ndarray) -> dict[int, float]:
    """Balanced class weights ``n / (k * count_c)`` for ``fit(class_weight=...)`` (scikit-learn's formula).

    Why: crop labels make the tampered class rarer than the image labels suggest (a crop beside the edit is
    authentic), and an unweighted loss then favours "authentic". Every class present gets a weight; the
    weighted counts are equal.
    """
    values = np.asarray(labels).reshape(-1)
    if values.size == 0:
        raise ValueError("cannot weight classes of an empty label set")
    rounded = np.rint(values).astype(np.int64)
    classes, counts = np.unique(rounded, return_counts=True)
    return {int(c): float(values.size / (len(classes) * n)) for c, n in zip(classes, counts)}


def fit_model(
    model: keras.Model,
    train: Any,
    val: Any,
    *,
    epochs: int,
    run_dir: str | os.PathLike[str],
    callbacks: list[keras.callbacks.Callback] | None = None,
    class_weight: dict[int, float] | None = None,
    verbose: int | str = 2,
) -> keras.callbacks.History:
    """``model.fit(train, validation_data=val, ...)`` with :func:`standard_callbacks` unless ``callbacks`` are given.

    ``shuffle=False``: the datasets of the workbook shuffle themselves, seeded per epoch, and Keras' own batch
    shuffling would draw from Python's global generator (see :mod:`helpers.pipeline`). The model must be
    compiled. Returns Keras' ``History`` (``history.history`` holds the per-epoch values).

    Under JAX, a model built in :func:`distribution_scope` but fitted after the scope closed still trains data
    parallel: its variables are replicated over several devices, and ``fit`` runs under a ``DataParallel``
    over those devices, so each batch is split between them rather than computed whole on every one.
    """
    if callbacks is None:
        callbacks = standard_callbacks(run_dir)
    Path(run_dir).mkdir(parents=True, exist_ok=True)
    with _jax_data_parallel_for(model):
        return model.fit(
            train,
            validation_data=val,
            epochs=int(epochs),
            callbacks=callbacks,
            class_weight=class_weight,
            shuffle=False,
            verbose=verbose,
        )


@contextlib.contextmanager
def _jax_data_parallel_for(model: keras.Model) -> Iterator[Any]:
    """Under JAX with no distribution set: ``DataParallel`` over the devices holding ``model``'s variables.

    A no-op on other backends, when a distribution is already set, or when the model lives on one device.
    """
    if keras.backend.backend() != "jax" or keras.distribution.distribution() is not None or not model.variables:
        yield None
        return
    sharding = getattr(model.variables[0].value, "sharding", None)
    held = {(device.platform, device.id) for device in getattr(sharding, "device_set", ())}
    if len(held) < 2:
        yield None
        return
    devices = [name for name in keras.distribution.list_devices()
               if (name.split(":")[0], int(name.split(":")[1])) in held]
    distribution = keras.distribution.DataParallel(devices=devices)
    keras.distribution.set_distribution(distribution)
    try:
        yield distribution
    finally:
        keras.distribution.set_distribution(None)


def predict_scores(model: keras.Model, dataset: Any) -> tuple[np.ndarray, np.ndarray]:
    """``(scores, labels)`` of every batch of ``dataset``, in dataset order.

    ``scores`` is ``(N,)`` for a one-output (sigmoid) model and ``(N, K)`` for a softmax; ``labels`` are the
    dataset's targets. The dataset must not shuffle (``shuffle=False``): otherwise scores and labels would
    still match each other but not the manifest's rows. Batches are run one by one
    (``predict_on_batch``), so no batch is dropped or reordered by Keras' prefetching.
    """
    if getattr(dataset, "shuffle", False):
        raise ValueError("predict_scores needs a dataset built with shuffle=False (rows in manifest order)")
    scores: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    for index in range(len(dataset)):
        x, y = dataset[index][:2]
        out = np.asarray(keras.ops.convert_to_numpy(model.predict_on_batch(x)), dtype=np.float32)
        scores.append(out.reshape(len(out), -1))
        labels.append(np.asarray(y))
    stacked = np.concatenate(scores, axis=0)
    if stacked.shape[1] == 1:
        stacked = stacked[:, 0]
    return stacked, np.concatenate(labels, axis=0)
