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
  pay off on a GPU and cost time (or accuracy) on a CPU, so the default follows the hardware;
* :func:`standard_callbacks` / :func:`fit_model` -- one training recipe (early stopping that restores the best
  weights, learning-rate decay on plateaus, a CSV log, and on request a weights-only checkpoint of the best
  epoch) for every model, and ``fit(shuffle=False)`` because :class:`helpers.pipeline.ForgeryBatches`
  shuffles itself deterministically;
* :func:`predict_scores` -- scores in dataset order with the labels that go with them, for the metrics.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import random
import sys
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

import keras
import numpy as np

__all__ = [
    "set_seeds",
    "accelerator",
    "device_count",
    "configure_precision",
    "jit_compile_setting",
    "distribution_scope",
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


def configure_precision(mixed: bool | None = None) -> str:
    """Set Keras' global dtype policy and return its name.

    ``None`` picks for the hardware: ``mixed_float16`` on a GPU (tensor cores roughly double the throughput and
    halve the activation memory), ``mixed_bfloat16`` on a TPU (its native format), ``float32`` on a CPU (which
    has no fast float16 arithmetic: mixed precision would only lose accuracy). ``True`` forces the mixed
    policy of the accelerator (``mixed_float16`` on a CPU too, for testing), ``False`` forces ``float32``.
    Models of :mod:`helpers.models.classifier` keep their last activation in float32, as mixed precision needs.
    Call this *before* building a model: the policy applies to layers created afterwards.
    """
    kind = accelerator()
    if mixed is None:
        mixed = kind != "cpu"
    policy = ("mixed_bfloat16" if kind == "tpu" else "mixed_float16") if mixed else "float32"
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


def standard_callbacks(
    run_dir: str | os.PathLike[str],
    *,
    monitor: str = "val_loss",
    mode: Literal["min", "max", "auto"] = "min",
    patience: int = 2,
    reduce_lr_patience: int = 1,
    checkpoint: str | None = None,
    tensorboard: bool = False,
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
      installed; a warning otherwise).

    ``monitor="val_auc"`` needs ``mode="max"``.
    """
    folder = Path(run_dir)
    folder.mkdir(parents=True, exist_ok=True)
    callbacks: list[keras.callbacks.Callback] = [
        keras.callbacks.EarlyStopping(monitor=monitor, mode=mode, patience=patience, restore_best_weights=True,
                                      verbose=0),
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
    """
    if callbacks is None:
        callbacks = standard_callbacks(run_dir)
    Path(run_dir).mkdir(parents=True, exist_ok=True)
    return model.fit(
        train,
        validation_data=val,
        epochs=int(epochs),
        callbacks=callbacks,
        class_weight=class_weight,
        shuffle=False,
        verbose=verbose,
    )


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
