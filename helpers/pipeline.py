"""Keras input pipeline: a ``keras.utils.PyDataset`` of augmented images and their forensic streams.

:class:`ForgeryBatches` serves both tasks of the workbook from one manifest:

* ``task="classify"``: ``x`` is ``{stream: float32 (B, S, S, C)}`` and ``y`` the image labels ``(B,)``;
* ``task="segment"``: the same ``x`` and ``y`` the masks ``(B, S, S, 1)``.

Streams are computed per item *after* augmentation, from the augmented image, by the one stream table
:mod:`helpers.streams` (channels and scaling of ``rgb``, ``ela``, ``srm``, ``noise``, ``ghost``, ``dq``), the same
function inference and the online forgeries of notebook 06 use.

Determinism. The epoch order is ``default_rng([seed, epoch]).permutation`` (identity when ``shuffle=False``)
and every item draws its augmentation from the seed ``[seed, epoch, row]``, so a batch depends only on
``(seed, epoch, index)``: not on which worker made it, in which order, or what ran before. Keras' ``fit``
reorders whole batches with Python's global ``random`` when ``fit(shuffle=True)`` (its default); this dataset
shuffles itself, so pass ``shuffle=False`` to ``fit`` (or call ``keras.utils.set_random_seed``) for runs that
repeat exactly.

Workers. ``workers=N`` with ``use_multiprocessing=False`` (the default) makes Keras prepare batches in a
thread pool; JPEG decoding and encoding (Pillow) and the OpenCV warps release the GIL, so threads help on the
part that costs. ``use_multiprocessing=True`` makes Keras 3 start a ``multiprocessing.Pool`` with the
platform's default start method, *fork* on Linux, anew for every epoch: the children are copies of a process
whose TensorFlow (and OpenCV) thread pools were running at the fork, the classic recipe for a deadlock (see
:mod:`helpers.parallel`), and every batch is pickled back (8 crops of 256 pixels with RGB and ELA: 12 MB).
Measured with ``benchmarks/bench_pipeline.py`` on a 2-core machine (TensorFlow 2.21, Keras 3.15): 2 threads
drew 1.2-1.7x the images per second of one worker, 2 forked processes 0.4-0.65x; forking during ``fit`` did not
hang in our runs, but it is slower and riskier, so threads are the way to use more cores here and processes
are never the default.

Unreadable images never stop a training run: the first failure of a file is reported with
``warnings.warn`` naming it, the file joins :attr:`ForgeryBatches.failed`, and a readable image of the same
label (chosen deterministically) takes its place. With ``use_multiprocessing=True`` failures seen in worker
processes are reported there and do not reach the parent's ``failed`` set.

This module imports Keras (and so its backend) at import time; :mod:`helpers` itself never imports it.
"""

from __future__ import annotations

import math
import threading
import time
import warnings
from collections.abc import Sequence
from typing import Any, Literal

import keras
import numpy as np
import pandas as pd

from helpers.augment import augment, build_pipeline
from helpers.config import ELA_QUALITY
from helpers.streams import STREAMS, compute_streams
from helpers.imageio import ImageLoadError, load_mask, load_rgb

__all__ = ["ForgeryBatches", "measure_throughput"]

Task = Literal["classify", "segment"]
Mode = Literal["crop", "resize"]

_SRM_CHANNELS = {"zhou3": 3, "full30": 30}


class ForgeryBatches(keras.utils.PyDataset):
    """Batches of augmented images with ELA/SRM streams and labels or masks, from a manifest.

    ``manifest`` needs ``image_path`` (or ``image``), ``mask_path`` (or ``mask``; ``""`` when there is none) and
    ``label``. ``size`` is the side of every output; ``mode="crop"`` takes a grid-aligned ``size`` crop at
    native resolution (random when ``augment``, central otherwise; small images padded), ``mode="resize"``
    resizes the whole image. ``augment`` adds the ``geometric`` (``"mild"``, ``"strong"``, ``None``) and
    ``photometric`` transforms of :mod:`helpers.augment`. Validation and test: ``augment=False,
    shuffle=False``.

    ``crop_labels`` (classification in crop mode): the label of a tampered image whose mask is known becomes
    1 only if the crop, after augmentation, contains a tampered pixel, since a crop beside the edit shows no
    edit; set it to ``False`` to keep the image label.

    ``srm_bank`` picks the SRM filters (3 or 30 channels). ``workers``, ``use_multiprocessing`` and
    ``max_queue_size`` are Keras' (see the module docstring).
    """

    def __init__(
        self,
        manifest: pd.DataFrame,
        *,
        task: Task = "classify",
        streams: Sequence[str] = ("rgb", "ela"),
        batch_size: int = 8,
        size: int = 256,
        mode: Mode = "crop",
        augment: bool = True,
        geometric: Literal["mild", "strong"] | None = "mild",
        photometric: bool = True,
        shuffle: bool = True,
        seed: int = 0,
        ela_quality: int = ELA_QUALITY,
        srm_bank: str = "zhou3",
        crop_labels: bool = True,
        workers: int = 1,
        use_multiprocessing: bool = False,
        max_queue_size: int = 10,
    ) -> None:
        super().__init__(workers=workers, use_multiprocessing=use_multiprocessing, max_queue_size=max_queue_size)
        if task not in ("classify", "segment"):
            raise ValueError(f"task must be 'classify' or 'segment', not {task!r}")
        if mode not in ("crop", "resize"):
            raise ValueError(f"mode must be 'crop' or 'resize', not {mode!r}")
        streams = tuple(streams)
        if not streams or len(set(streams)) != len(streams) or not set(streams) <= set(STREAMS):
            raise ValueError(f"streams must be distinct names from {tuple(STREAMS)}, not {streams!r}")
        if srm_bank not in _SRM_CHANNELS:
            raise ValueError(f"srm_bank must be one of {tuple(_SRM_CHANNELS)}, not {srm_bank!r}")
        if batch_size < 1 or size < 8:
            raise ValueError(f"need batch_size >= 1 and size >= 8, got {batch_size} and {size}")
        if len(manifest) == 0:
            raise ValueError("cannot make batches from an empty manifest")
        self.task: Task = task
        self.streams: tuple[str, ...] = streams
        self.batch_size = int(batch_size)
        self.size = int(size)
        self.mode: Mode = mode
        self.augment = bool(augment)
        self.shuffle = bool(shuffle)
        self.seed = int(seed)
        self.ela_quality = int(ela_quality)
        self.srm_bank = srm_bank
        self.crop_labels = bool(crop_labels)
        self._pipeline_kwargs: dict[str, Any] = {
            "crop": size if mode == "crop" else None,
            "resize": size if mode == "resize" else None,
            "geometric": geometric if augment else None,
            "photometric": bool(photometric and augment),
            "centre": not augment,
        }
        build_pipeline(**self._pipeline_kwargs)  # invalid settings fail here, not in a worker

        images = manifest["image_path"] if "image_path" in manifest else manifest["image"]
        masks = manifest["mask_path"] if "mask_path" in manifest else manifest.get("mask")
        self._images: list[str] = [str(p) for p in images]
        self._masks: list[str] = [
            "" if m is None or (isinstance(m, float) and math.isnan(m)) else str(m)
            for m in (masks if masks is not None else [""] * len(self._images))
        ]
        self._labels = np.asarray(manifest["label"], dtype=np.int64)
        self._by_label = {int(v): np.flatnonzero(self._labels == v) for v in np.unique(self._labels)}
        self.failed: set[str] = set()
        """Files (images or masks) that could not be read so far, in this process."""
        self.epoch = 0
        self._order = self._epoch_order(0)
        self._lock = threading.Lock()
        self._local = threading.local()

    # ----------------------------------------------------------------------------------------------------------
    # Keras' PyDataset protocol
    def __len__(self) -> int:
        return math.ceil(len(self._images) / self.batch_size)

    def __getitem__(self, index: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
        if not 0 <= index < len(self):
            raise IndexError(f"batch {index} out of range for {len(self)} batches")
        rows = self._order[index * self.batch_size : (index + 1) * self.batch_size]
        items = [self._item(int(row)) for row in rows]
        x = {stream: np.stack([item[0][stream] for item in items]) for stream in self.streams}
        y = np.stack([item[1] for item in items])
        return x, y

    def on_epoch_end(self) -> None:
        """Advance to the next epoch: a new order (when shuffling) and new augmentations.

        The new state is set here rather than at the next ``on_epoch_begin`` because Keras forks its worker
        processes (``use_multiprocessing=True``) before it calls ``on_epoch_begin``. Note that Keras 3's
        ``fit`` also calls this once before its first epoch (``EpochIterator.reset``), so during ``fit`` the
        dataset's epoch is Keras' epoch + 1; deterministic all the same. To resume a run at Keras epoch ``e``,
        call ``set_epoch(e)`` and then ``fit(..., initial_epoch=e)``.
        """
        self.set_epoch(self.epoch + 1)

    # ----------------------------------------------------------------------------------------------------------
    def set_epoch(self, epoch: int) -> None:
        """Jump to ``epoch`` (to resume a run, or to replay one exactly)."""
        self.epoch = int(epoch)
        self._order = self._epoch_order(self.epoch)

    @property
    def input_shapes(self) -> dict[str, tuple[int, int, int]]:
        """``{stream: (size, size, channels)}``, for building a model's inputs."""
        channels = {name: stream.channels for name, stream in STREAMS.items()} | {"srm": _SRM_CHANNELS[self.srm_bank]}
        return {stream: (self.size, self.size, channels[stream]) for stream in self.streams}

    @property
    def rows(self) -> int:
        return len(self._images)

    def _epoch_order(self, epoch: int) -> np.ndarray:
        if not self.shuffle:
            return np.arange(len(self._images))
        return np.random.default_rng([self.seed, epoch]).permutation(len(self._images))

    def _pipeline(self):
        # One pipeline per thread: reseeding a shared one from two threads would mix their random streams.
        pipeline = getattr(self._local, "pipeline", None)
        if pipeline is None:
            pipeline = self._local.pipeline = build_pipeline(**self._pipeline_kwargs)
        return pipeline

    def _needs_mask(self) -> bool:
        return self.task == "segment" or (self.crop_labels and self.mode == "crop")

    def _load(self, row: int) -> tuple[np.ndarray, np.ndarray | None]:
        rgb = load_rgb(self._images[row])
        mask_path = self._masks[row]
        if mask_path and self._needs_mask():
            return rgb, load_mask(mask_path, size=(rgb.shape[1], rgb.shape[0]))
        if self.task == "segment":
            return rgb, np.zeros(rgb.shape[:2], dtype=bool)
        return rgb, None

    def _report(self, error: ImageLoadError) -> None:
        path = str(error.path)
        with self._lock:
            first = path not in self.failed
            self.failed.add(path)
        if first:
            warnings.warn(
                f"ForgeryBatches: skipping unreadable {error}; a readable image of the same label takes its place",
                RuntimeWarning,
                stacklevel=3,
            )

    def _load_or_replace(self, row: int, rng: np.random.Generator) -> tuple[int, np.ndarray, np.ndarray | None]:
        try:
            return (row, *self._load(row))
        except ImageLoadError as error:
            self._report(error)
        label = int(self._labels[row])
        for candidate in rng.permutation(self._by_label[label]):
            candidate = int(candidate)
            if candidate == row or self._images[candidate] in self.failed or self._masks[candidate] in self.failed:
                continue  # a shortcut only: a failed file fails again, so skipping it changes no result
            try:
                return (candidate, *self._load(candidate))
            except ImageLoadError as error:
                self._report(error)
        raise RuntimeError(f"no readable image with label {label} left (failed: {len(self.failed)} files)")

    def _item(self, row: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
        item_seed = [self.seed, self.epoch, row]
        source, rgb, mask = self._load_or_replace(row, np.random.default_rng(item_seed + [1]))
        image, mask = augment(rgb, mask, self._pipeline(), seed=item_seed)
        # The one stream table (helpers.streams): the same values inference and online batches compute.
        x = compute_streams(image, self.streams, ela_quality=self.ela_quality, srm_bank=self.srm_bank)
        if self.task == "segment":
            assert mask is not None
            return x, mask.astype(np.float32)[:, :, None]
        label = float(self._labels[source])
        if label == 1 and mask is not None and self.crop_labels and self.mode == "crop":
            label = float(mask.any())
        return x, np.float32(label)

    def __getstate__(self) -> dict[str, Any]:
        # Locks and thread-locals cannot be pickled (spawned workers); each process makes its own.
        state = self.__dict__.copy()
        state.pop("_lock", None)
        state.pop("_local", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()
        self._local = threading.local()


def measure_throughput(
    dataset: ForgeryBatches, *, max_batches: int | None = None, repeats: int = 1
) -> dict[str, Any]:
    """Batches and images per second of ``dataset`` as Keras' ``fit`` would draw them (its workers included).

    Draws ``max_batches`` (default: all) batches ``repeats`` times and keeps the fastest run (start-up of the
    worker pool included, as in every epoch of ``fit``). Uses the adapter ``fit`` itself uses
    (``keras.src...PyDatasetAdapter``, a private module: if a future Keras moves it, batches are drawn one by
    one in this thread instead and ``"keras_adapter"`` says so). The dataset's epoch is restored afterwards, so
    measuring does not change what training sees.
    """
    try:  # a private Keras module that may move: optional, so imported here, where its absence is handled
        from keras.src.trainers.data_adapters.py_dataset_adapter import PyDatasetAdapter
    except ImportError:  # pragma: no cover - depends on Keras internals
        PyDatasetAdapter = None  # noqa: N806
    epoch = dataset.epoch
    count = len(dataset) if max_batches is None else max(1, min(len(dataset), int(max_batches)))
    best_seconds, images = math.inf, 0
    for _ in range(max(1, int(repeats))):
        images = 0
        started = time.perf_counter()
        if PyDatasetAdapter is not None:
            adapter = PyDatasetAdapter(dataset, shuffle=False)
            adapter.on_epoch_begin()
            try:
                for done, (_, y) in enumerate(adapter.get_numpy_iterator(), start=1):
                    images += len(y)
                    if done >= count:
                        break
                seconds = time.perf_counter() - started
            finally:
                adapter.on_epoch_end()  # stops the workers (and advances the epoch, undone below)
        else:  # pragma: no cover
            for index in range(count):
                images += len(dataset[index][1])
            seconds = time.perf_counter() - started
        dataset.set_epoch(epoch)
        best_seconds = min(best_seconds, seconds)
    return {
        "batches": count,
        "images": images,
        "seconds": round(best_seconds, 3),
        "batches_per_s": round(count / best_seconds, 2),
        "images_per_s": round(images / best_seconds, 1),
        "workers": dataset.workers,
        "use_multiprocessing": dataset.use_multiprocessing,
        "keras_adapter": PyDatasetAdapter is not None,
    }
