"""Training recipes: the compact forensic network on online forgeries, under a time budget (notebook 06 and
``python -m helpers train``).

One recipe, used by notebook 06, the benchmark and the command that made the shipped model:

* data: :class:`helpers.datasets.online.OnlineForgeries` from the training split's source photos only, mixed with
  crops of the embedded set's training-split forgeries (``examples``, :mod:`helpers.datasets.crops`; the
  profile's ``mask_example_share`` of each batch): the online families teach traces that transfer, the crops the
  compression history and edit sizes of the set the model is tested on; the last ``finetune_share`` of the time
  on those crops alone, at a lower rate (in-domain fine-tuning; :func:`profile_mixing` gives a profile's settings);
* loss BCE + Dice, Adam with a cosine learning-rate decay over the time budget;
* about eight times over the budget, pixel F1 on the *whole images* of the validation split (the protocol of the
  test split) at the map threshold that split prefers (:func:`choose_map_threshold`: 0.5 unless another
  threshold is clearly better), and the weights of the best check are kept with their threshold; a learning
  curve (F1 against samples seen) is recorded;
* the run ends when its time budget is spent (checked after every batch), so a laptop and a GPU run the same
  code for as long as they are given;
* the image-level score (the mean of the top 1 % of the heatmap) gets its decision threshold on validation.

:func:`train_classifier` is the same recipe for notebook 05's image classifiers: online forgeries with image
labels (or edit kinds), the same time-based schedule, and after every epoch the ROC AUC on the validation
split's crops, the best epoch kept. Classifiers trained on the fixed embedded set saw a few hundred crops of
17 photographs and stayed at chance; fresh forgeries every batch are what let them learn.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from tqdm.auto import tqdm

from helpers.datasets.crops import ManifestCrops, MixedBatches
from helpers.datasets.families import FamilyConfig
from helpers.datasets.online import OnlineForgeries, PhotoPool
from helpers.imageio import check_rgb, load_mask, load_rgb
from helpers.models.classifier import input_streams
from helpers.models.forensic_net import forensic_net
from helpers.models.losses import get_loss
from helpers.models.portable import top_mean
from helpers.inference import predict_whole
from helpers.models.portable import FLIP_VIEWS
from helpers.training import predict_scores

__all__ = [
    "DEFAULT_FLIP_VIEWS",
    "DEFAULT_STREAMS",
    "MAP_THRESHOLDS",
    "MAP_THRESHOLD_MARGIN",
    "SEED_MODEL_TRAINING",
    "choose_map_threshold",
    "ClassifierTraining",
    "MaskTraining",
    "forensic_heatmap",
    "image_score",
    "platt_calibration",
    "profile_mixing",
    "train_classifier",
    "train_forensic_net",
    "train_mask_model",
    "validation_scores",
]

DEFAULT_STREAMS: tuple[str, ...] = ("rgb", "ela", "srm", "noise", "ghost", "dq")
TOP_FRACTION = 0.01
"""Image-level score of a mask model: the mean of its top 1 % of pixel probabilities (one confident region
makes an image suspicious, however small; the mean of the whole map would dilute it)."""

SEED_MODEL_TRAINING: dict[str, Any] = {"learning_rate": 3e-3, "batch_size": 8}
""":func:`train_mask_model` keywords for the seeds' U-Nets beside the forensic network (notebook 06, the benchmark).

Why not the forensic network's (2e-3, 16): on their share of a CPU budget the U-Nets take a few hundred steps, and a
2-million-weight U-Net from random weights needs every one. Measured on the smoke split (scratch U-Net on ``ela,
noise, ghost, dq``, 240 s, 128-pixel crops, 37 held-out images, held-out pixel F1 at 0.5; all-tampered floor 0.097):

========================================================  =======  ========  =======  =========
recipe                                                    samples  held-out  best F1  image AUC
========================================================  =======  ========  =======  =========
the seed's: rate 1e-3, batches of 16, zero-bias head      1,552    0.093     0.165    0.521
rate 1e-3, batches of 16, head at the prior               1,440    0.001     0.215    0.597
rate 3e-3, batches of 8, zero-bias head                   1,560    0.244     0.426    0.812
rate 3e-3, batches of 8, head at the prior (these)        1,456    0.296     0.456    0.879
========================================================  =======  ========  =======  =========

With the seed's settings the validation F1 fell from 0.10 to 0.003 as the model went from "all tampered" to "all
authentic" without finding an edit; with these it was still rising at the end. On the ``full`` split (160-pixel
crops, 375 s, the full profile's share; 450 held-out images, floor 0.088): 0.148 against 0.121 (best-threshold F1
0.343 against 0.226) after 1,128 samples, still rising, and below the best training-free detector there (0.26).
The prior is :data:`helpers.models.segmentation.TAMPERED_PRIOR`, the default of both U-Nets."""


def profile_mixing(
    profile: Any, examples: pd.DataFrame | None, *, example_share: float | None = None,
    finetune_share: float | None = None,
) -> dict[str, Any]:
    """:func:`train_mask_model`'s data keywords for a run profile (:class:`helpers.config.Profile`): crops of
    ``examples`` (the training split) in ``example_share`` of each batch, at most the profile's
    ``mask_max_examples`` images, and ``finetune_share`` of the time on them alone; ``None`` takes the profile's.
    Notebook 06, ``python -m helpers train`` and the benchmarks train with these."""
    return {"examples": examples,
            "example_share": profile.mask_example_share if example_share is None else float(example_share),
            "max_examples": profile.mask_max_examples,
            "finetune_share": profile.mask_finetune_share if finetune_share is None else float(finetune_share)}


def forensic_heatmap(model: keras.Model, rgb: np.ndarray, streams: Sequence[str], flip_views: int = 1) -> np.ndarray:
    """Per-pixel tamper probability ``float32 (H, W)`` of a mask model on a whole image in one pass
    (:func:`helpers.inference.predict_whole`: the anomaly head compares every region with the whole image),
    averaged over ``flip_views`` mirror views (:func:`helpers.models.portable.flip_average`)."""
    return predict_whole(model, check_rgb(rgb, "predict"), streams, flip_views=flip_views)


def image_score(heatmap: np.ndarray, top_fraction: float = TOP_FRACTION) -> float:
    """The mean of the top ``top_fraction`` of a heatmap's values: a mask model's image-level score."""
    return top_mean(heatmap, top_fraction)


MAP_THRESHOLDS: tuple[float, ...] = tuple(round(0.05 * step, 2) for step in range(1, 20))
"""Map thresholds :func:`validation_scores` tries (0.05, 0.10, ..., 0.95)."""

DEFAULT_FLIP_VIEWS = 4
"""Mirror views a trained mask model's maps are averaged over (:func:`helpers.models.portable.flip_average`,
whose docstring has the measurement): all four, the best on validation (0.491 against 0.475 with two and 0.462
with one, for a `full` network), at four times the inference time of one view."""

MAP_THRESHOLD_MARGIN = 0.02
"""How much mean validation F1 another threshold must add over 0.5 before :func:`choose_map_threshold` takes it.

Why a threshold at all: trained from random weights on a CPU budget, the seeds' U-Nets rank pixels well (pixel and
image AUC 0.8-0.9) but put their edits below 0.5, so F1 at 0.5 reads a fraction of what they find. Why the margin:
the validation split is small (15 tampered images in the smoke profile), and a flat curve's maximum is noise.
Measured on the smoke split (120 s each as in ``bench_detection.py``; 17 tampered held-out images; pixel F1 of
the network alone, without the matching branch; the threshold the validation curve picks, then read on the other
sets):

==================================  ==========  ==========  ==============  ==============
model (threshold validation chose)  validation  validation  held-out        fixtures
                                    at 0.5      at chosen   at 0.5, chosen  at 0.5, chosen
==================================  ==========  ==========  ==============  ==============
scratch U-Net (0.15)                0.183       0.226       0.302, 0.332    0.128, 0.215
dual-stream U-Net (0.35)            0.199       0.254       0.132, 0.227    0.103, 0.156
==================================  ==========  ==========  ==============  ==============

The forensic network of a `full` run (245 validation images) has a flat curve: 0.370 at 0.5 and 0.384 at its
maximum, 0.75, where the held-out split reads 0.405 against 0.417 at 0.5; within the margin, it keeps 0.5."""


def choose_map_threshold(mean_f1: Sequence[float], thresholds: Sequence[float] = MAP_THRESHOLDS,
                         margin: float = MAP_THRESHOLD_MARGIN) -> float:
    """The threshold of ``thresholds`` (which hold 0.5) with the best mean validation F1 ``mean_f1``, unless 0.5
    comes within ``margin`` of it: then 0.5 (ties go to the threshold nearer 0.5)."""
    values, cuts = np.asarray(mean_f1, float), np.asarray(thresholds, float)
    if values.shape != cuts.shape or not np.isclose(cuts, 0.5).any():
        raise ValueError("mean_f1 needs one value per threshold, and the thresholds must hold 0.5")
    half = int(np.argmin(np.abs(cuts - 0.5)))
    order = np.lexsort((np.abs(cuts - 0.5), -values))  # best F1 first, then nearest 0.5
    best = int(order[0])
    return 0.5 if values[half] >= values[best] - float(margin) else float(cuts[best])


def validation_scores(
    model: keras.Model, frame: pd.DataFrame, streams: Sequence[str],
    thresholds: Sequence[float] = MAP_THRESHOLDS, flip_views: int = 1,
) -> dict[str, Any]:
    """Pixel F1 of a validation manifest's tampered images (mean over images) at each of ``thresholds``, the
    threshold :func:`choose_map_threshold` picks from them, and image scores (on the raw map), the maps read
    over ``flip_views`` mirror views.

    Returns ``pixel_f1`` (at the chosen threshold), ``map_threshold``, ``pixel_f1_at_half``, ``f1_by_threshold``,
    ``scores`` and ``labels``."""
    cuts = np.asarray(thresholds, np.float32)
    f1s, scores, labels = [], [], []
    for row in frame.itertuples(index=False):
        heatmap = forensic_heatmap(model, load_rgb(row.image_path), streams, flip_views)
        scores.append(image_score(heatmap))
        labels.append(int(row.label))
        if int(row.label) == 1 and isinstance(row.mask_path, str) and row.mask_path:
            truth = load_mask(row.mask_path).ravel()
            # F1 at every threshold from one sort: the pixels above t are a suffix of the sorted map.
            order = np.argsort(heatmap.ravel(), kind="stable")
            values, hits = heatmap.ravel()[order], truth[order]
            first = np.searchsorted(values, cuts, side="right")  # first index strictly above each threshold
            hits_above = np.concatenate([np.cumsum(hits[::-1])[::-1], [0]])[first]
            flagged = values.size - first
            tp = hits_above.astype(float)
            wrong = (flagged - tp) + (np.count_nonzero(truth) - tp)
            f1s.append(2 * tp / np.maximum(1.0, 2 * tp + wrong))
    curve = np.mean(f1s, axis=0) if f1s else np.zeros(len(cuts))
    chosen = choose_map_threshold(curve, [float(t) for t in thresholds])
    at = lambda t: float(curve[int(np.argmin(np.abs(cuts - t)))])  # noqa: E731
    return {"pixel_f1": at(chosen), "map_threshold": chosen, "pixel_f1_at_half": at(0.5),
            "f1_by_threshold": [float(v) for v in curve], "scores": scores, "labels": labels}


def platt_calibration(scores: Sequence[float], labels: Sequence[int]) -> list[float] | None:
    """``[a, b]`` such that ``sigmoid(a * score + b)`` estimates P(tampered) on validation images (Platt
    scaling, a one-feature logistic regression); ``None`` when one class is missing. A monotone map: it keeps
    every ranking (ROC AUC) and makes 0.5 a meaningful decision threshold for the image-level verdict."""
    s, y = np.asarray(scores, float).reshape(-1, 1), np.asarray(labels, int)
    if len(set(y.tolist())) < 2:
        return None
    fitted = LogisticRegression(C=100.0).fit(s, y)
    return [float(fitted.coef_[0, 0]), float(fitted.intercept_[0])]


def _image_threshold(scores: Sequence[float], labels: Sequence[int]) -> float:
    """The score threshold with the best balanced accuracy on validation (0.5 when one class is missing)."""
    s, y = np.asarray(scores, float), np.asarray(labels, int)
    if len(set(y.tolist())) < 2:
        return 0.5
    best, chosen = -1.0, 0.5
    for t in np.unique(s):
        predicted = s >= t
        accuracy = 0.5 * (predicted[y == 1].mean() + (~predicted[y == 0]).mean())
        if accuracy > best:
            best, chosen = accuracy, float(t)
    return chosen


@dataclass
class Training:
    """What a recipe returns: the model (best checkpoint) and how it got there."""

    model: keras.Model
    streams: tuple[str, ...]
    curve: list[dict[str, float]] = field(default_factory=list)
    """One row per epoch: samples seen, seconds, training loss and, when scored, the validation metric."""
    samples_seen: int = 0
    seconds: float = 0.0

    @property
    def images_per_s(self) -> float:
        return self.samples_seen / self.seconds if self.seconds else 0.0

    def summary(self) -> dict[str, Any]:
        return {"samples_seen": self.samples_seen, "training_seconds": round(self.seconds, 1),
                "train_images_per_s": round(self.images_per_s, 1), "epochs": len(self.curve),
                "parameters": int(self.model.count_params())}


@dataclass
class MaskTraining(Training):
    """What :func:`train_mask_model` returns (validation metric: pixel F1 on whole images at the map threshold
    each check chose)."""

    best_val_pixel_f1: float | None = None
    """The best check's validation pixel F1, at its :attr:`map_threshold`."""
    map_threshold: float = 0.5
    """The map threshold validation chose with the kept weights (:func:`choose_map_threshold`); saved as the
    model's ``map_threshold``, the detector maps it to 0.5 (:func:`helpers.detectors.decision.threshold_to_half`)."""
    image_threshold: float = 0.5
    image_calibration: list[float] | None = None
    """Platt ``[a, b]`` of the image score on validation (:func:`platt_calibration`), for the model's
    ``image_score`` rule."""
    flip_views: int = 1
    """Mirror views the model's maps are averaged over at inference (:func:`helpers.models.portable.flip_average`);
    saved as the model's ``flip_views``. The checks read one view; the final choice reads these."""
    calibration_images: int = 0
    """Validation images the map threshold and image calibration were finally chosen on, read over
    :attr:`flip_views` (0: the checks' own images and single view kept them)."""
    calibration_pixel_f1: float | None = None
    """Validation pixel F1 of that final choice, at its map threshold."""
    calibration_seconds: float = 0.0
    """Seconds that final choice took (after the training budget)."""
    example_images: int = 0
    """Images of the ``examples`` manifest cropped for training (0: online forgeries only)."""
    example_share: float = 0.0
    """Share of every batch cut from those images."""
    example_seconds: float = 0.0
    """Seconds spent computing their streams (part of the time budget)."""
    finetune_share: float = 0.0
    """Share of the training time spent at the end on those crops alone (in-domain fine-tuning)."""
    finetune_samples: int = 0
    """Samples seen in that phase (part of ``samples_seen``)."""

    @property
    def image_score_rule(self) -> dict[str, Any]:
        """The image-score rule to save with the model: top-1 % mean, calibrated on validation when possible."""
        rule: dict[str, Any] = {"rule": "top_mean", "fraction": TOP_FRACTION}
        if self.image_calibration is not None:
            rule["platt"] = list(self.image_calibration)
        return rule

    @property
    def map_info(self) -> dict[str, Any]:
        """What a detector needs besides the model and its streams: the image-score rule and the map threshold
        (``info={"streams": ..., "tile": 0, **result.map_info}``)."""
        return {"image_score": self.image_score_rule, "map_threshold": self.map_threshold,
                "flip_views": self.flip_views}

    def summary(self) -> dict[str, Any]:
        return {**super().summary(), "best_val_pixel_f1": self.best_val_pixel_f1, "map_threshold": self.map_threshold,
                "flip_views": self.flip_views, "calibration_images": self.calibration_images,
                "calibration_pixel_f1": self.calibration_pixel_f1,
                "calibration_seconds": round(self.calibration_seconds, 1), "image_threshold": self.image_threshold,
                "image_calibration": self.image_calibration,
                "example_images": self.example_images, "example_share": self.example_share,
                "example_seconds": round(self.example_seconds, 1), "finetune_share": self.finetune_share,
                "finetune_samples": self.finetune_samples}


class _TimeSchedule:
    """Cosine learning-rate decay over the *time* budget, and a stop once the budget is spent.

    A step-based schedule needs the number of steps in advance, which a time budget does not give (a laptop and
    a GPU differ a hundredfold): here the rate follows the fraction of the budget already used, from
    ``learning_rate`` down to ``floor`` times it, so every run ends its budget with a small, settling rate.
    """

    def __init__(self, started: float, budget_s: float, learning_rate: float, floor: float = 0.05) -> None:
        self.started, self.budget_s = started, max(float(budget_s), 1e-9)
        self.learning_rate, self.floor = float(learning_rate), float(floor)

    def rate(self, now: float) -> float:
        used = min(1.0, (now - self.started) / self.budget_s)
        return self.learning_rate * (self.floor + (1.0 - self.floor) * 0.5 * (1.0 + np.cos(np.pi * used)))

    def spent(self, now: float) -> bool:
        return now >= self.started + self.budget_s


def _train_epoch(model: keras.Model, data: keras.utils.PyDataset, schedule: _TimeSchedule,
                 class_weight: dict[int, float] | None) -> tuple[int, float]:
    """One pass over ``data``'s batches with ``train_on_batch``, the rate set before each batch, stopping early
    once the budget is spent. Returns the batches trained and the epoch's mean loss.

    Why not ``model.fit``: a time budget turns every second into samples seen, and on two cores ``fit`` (one call
    per epoch, as the recipes need) cost more of them. The forensic network's 120-s recipe on the smoke split saw
    704 samples with ``fit`` and 1,040 with this loop (held-out pixel F1 0.384 and 0.421); in steady epochs a
    batch through ``fit`` took about 1.1 times as long (``benchmarks/bench_training.py``), partly because
    TensorFlow's generator op behind ``fit`` lowers glibc's trim threshold for the rest of the process.
    """
    model.reset_metrics()  # as fit does at each epoch: the loss reported is this epoch's mean
    batches, loss = 0, float("nan")
    for index in range(len(data)):
        model.optimizer.learning_rate.assign(schedule.rate(time.perf_counter()))
        x, y = data[index]
        logs = model.train_on_batch(x, y, class_weight=class_weight, return_dict=True)
        batches, loss = batches + 1, float(logs["loss"])
        if schedule.spent(time.perf_counter()):
            break
    return batches, loss


def _train_for(
    model: keras.Model,
    data: OnlineForgeries,
    *,
    budget_s: float,
    learning_rate: float,
    batch_size: int,
    metric: str,
    check: Callable[[bool], float | None],
    on_best: Callable[[], None] | None = None,
    on_epoch: Callable[[dict[str, float]], None] | None = None,
    details: Callable[[], dict[str, float]] | None = None,
    desc: str = "training",
    progress: bool = True,
    class_weight: dict[int, float] | None = None,
    best: float | None = None,
    best_weights: list[Any] | None = None,
    offset: tuple[int, float] = (0, 0.0),
) -> tuple[list[dict[str, float]], int, float, float | None]:
    """The loop both recipes share: one epoch of ``data`` at a time under :class:`_TimeSchedule` until
    ``budget_s`` is spent (at least one epoch when it is positive). After each epoch ``check(final)`` may score
    the model on validation (``None``: not this time; ``final`` is true once the budget is spent, and the epoch
    it is true for is the last); the weights of the best score are restored at the end, and ``on_best`` runs
    whenever a score is the best so far. Returns the learning curve (one row per epoch: samples seen, seconds,
    training loss, ``metric`` when scored, with ``details()``'s fields), the samples seen, the seconds and the
    best score.

    A second phase of one run passes the first phase's ``best`` score and ``best_weights`` (so it keeps them
    unless it beats them) and ``offset``, the samples and seconds before it (so the curve runs on)."""
    started = time.perf_counter()
    deadline = started + float(budget_s)
    curve: list[dict[str, float]] = []
    seen = 0
    start_seen, start_seconds = int(offset[0]), float(offset[1])
    bar = tqdm(total=int(budget_s), desc=desc, unit="s", disable=not progress)
    schedule = _TimeSchedule(started, budget_s, learning_rate)
    # One clock reading decides both "the last check" and "the last epoch": with a second reading in the loop's
    # condition, an epoch ending a hair before the deadline went unscored and training still stopped. A positive
    # budget always trains (and scores) at least one epoch.
    final = float(budget_s) <= 0
    while not final:
        batches, loss = _train_epoch(model, data, schedule, class_weight)
        seen += batches * batch_size
        data.on_epoch_end()
        now = time.perf_counter()
        final = now >= deadline
        row: dict[str, float] = {"samples_seen": start_seen + seen, "seconds": round(start_seconds + now - started, 1),
                                 "loss": loss}
        value = check(final)
        if value is not None:
            row[metric] = value
            if details is not None:
                row.update(details())
            if best is None or value > best:
                best, best_weights = value, model.get_weights()
                if on_best is not None:
                    on_best()
        curve.append(row)
        if on_epoch is not None:
            on_epoch(row)
        bar.n = min(int(budget_s), int(now - started))
        bar.set_postfix(loss=f"{row['loss']:.3f}", **{metric: f"{row.get(metric, float('nan')):.3f}"})
        bar.refresh()
    bar.close()
    if best_weights is not None:
        model.set_weights(best_weights)
    return curve, seen, time.perf_counter() - started, best


def train_mask_model(
    model: keras.Model,
    photos: PhotoPool,
    *,
    streams: Sequence[str],
    budget_s: float,
    validation: pd.DataFrame | None = None,
    size: int = 128,
    batch_size: int = 16,
    batches_per_epoch: int = 25,
    learning_rate: float = 2e-3,
    seed: int = 0,
    threads: int = 2,
    config: FamilyConfig = FamilyConfig(),
    jit_compile: bool | str = "auto",
    max_validation_images: int = 80,
    validations: int = 8,
    examples: pd.DataFrame | None = None,
    example_share: float = 0.5,
    max_examples: int | None = 800,
    finetune_share: float = 0.0,
    finetune_rate: float | None = None,
    flip_views: int = DEFAULT_FLIP_VIEWS,
    on_epoch: Callable[[dict[str, float]], None] | None = None,
    progress: bool = True,
    desc: str = "training",
) -> MaskTraining:
    """Train any mask model whose inputs are named after ``streams`` on online forgeries of ``photos`` for
    ``budget_s`` seconds (the compact forensic network, or the seeds' U-Nets on the same data).

    ``validation`` (a manifest of whole images with masks, e.g. the embedded validation split; at most
    ``max_validation_images`` of them, a fixed random subset) is scored after every epoch; the best epoch's
    weights are restored at the end, and when the subset left images out, the kept weights' map threshold and
    image calibration are chosen again on all of them, read as inference will read the model: averaged over
    ``flip_views`` mirror views (the checks read one, which ranks checkpoints as well at half the cost). Why the
    whole split: in a `full` run (507 validation images, 245
    tampered) the 80-image subset chose map threshold 0.85 for the forensic network (0.317 against 0.293 at 0.5),
    where the whole split prefers 0.5 (0.344 against 0.353), and the held-out split read 0.373 at 0.85 against
    0.391 at 0.5 (the network alone). Checkpoints are scored at most about ``validations`` times, evenly over
    the budget, and always at the end: scoring whole images costs as much as training on hundreds of crops,
    and on a long run every epoch would spend a third of the budget on it. The learning rate decays on a cosine
    over the time budget (:class:`_TimeSchedule`), so it ends small however many steps the machine managed.

    ``examples`` (a manifest with masks: the embedded set's *training* split, never its validation or test rows)
    adds crops of those forgeries to every batch (:class:`~helpers.datasets.crops.ManifestCrops`, at most
    ``max_examples`` images, ``None``: all): ``example_share`` of each batch, the rest online forgeries. Their
    streams are computed once, inside the time budget.

    ``finetune_share`` of the training time, at its end, goes to those crops alone (in-domain fine-tuning): the
    learning rate restarts at ``finetune_rate`` (default a quarter of ``learning_rate``) and decays over that
    phase; its checkpoints compete with the first phase's, so it is kept only if validation says it helps.
    Why try it: once the mixed run has flattened, the traces it learned from online forgeries transfer, and a short
    phase on the set's own forgeries could tune the decision to their edit sizes and compression. Measured on the
    ``full`` split (two CPU cores, 160-pixel crops; held-out: 450 images, fixtures: 81; F1 at 0.5), first as 300 s
    more, at a quarter of the rate, for the network a finished ``full`` run saved (1,500 s of mixed batches on 800
    training images), then inside one run:

    ================================================================  ==========  ========  =======  ========
    run                                                               validation  held-out  best F1  fixtures
    ================================================================  ==========  ========  =======  ========
    1,500 s mixed, 800 images (the finished run)                      0.305       0.417     0.540    0.274
    then 300 s on crops of the same 800 images alone                  0.365       0.407     0.525    0.308
    then 300 s on crops of all 2,043 training images alone            0.380       0.440     0.569    0.260
    then 300 s on 256-pixel crops of all 2,043 images alone           0.448       0.428     0.573    0.223
    one run: 1,160 s mixed, then 290 s crops alone, all 2,043 images  0.299       0.407     0.527    0.247
    ================================================================  ==========  ========  =======  ========

    In the one run the second phase's checkpoints (validation 0.287, 0.294) lost to the first phase's best (0.299
    at 34,672 samples), so that is the model kept. Validation (80 images of a few photos) and the held-out split
    rank models differently (second row: 0.365 against 0.305 on validation, 0.407 against 0.417 held out), so the
    selection cannot tell a gain of this size from noise. The phase is off in both
    profiles (:attr:`helpers.config.Profile.mask_finetune_share`); distinct training images, not more passes
    over the same ones, are what the one gain came from.
    """
    streams = tuple(streams)
    if not 0.0 <= float(example_share) <= 1.0:
        raise ValueError(f"example_share must lie in [0, 1], not {example_share!r}")
    if not 0.0 <= float(finetune_share) < 1.0:
        raise ValueError(f"finetune_share must lie in [0, 1), not {finetune_share!r}")
    if isinstance(flip_views, bool) or not isinstance(flip_views, int) or flip_views not in FLIP_VIEWS:
        raise ValueError(f"flip_views must be one of {sorted(FLIP_VIEWS)}, not {flip_views!r}")
    has_examples = examples is not None and len(examples) > 0
    if float(finetune_share) > 0 and not has_examples:
        raise ValueError("finetune_share > 0 fine-tunes on crops of examples=: give a manifest with masks "
                         "(the training split), or set finetune_share=0")
    started = time.perf_counter()
    whole_validation = validation
    if validation is not None and len(validation) > max_validation_images:
        # A fixed random subset keeps the per-epoch check a small share of the budget on large sets.
        validation = validation.sample(n=max_validation_images, random_state=seed).sort_index()
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=get_loss("bce_dice"), jit_compile=jit_compile)
    cropped = int(round(batch_size * float(example_share))) if has_examples else 0
    parts: list[keras.utils.PyDataset] = []
    if cropped < batch_size:
        parts.append(OnlineForgeries(photos, streams=streams, size=size, batch_size=batch_size - cropped,
                                     batches=batches_per_epoch, seed=seed, threads=threads, config=config))
    crops = None
    if cropped or float(finetune_share) > 0:
        crops = ManifestCrops(examples, streams=streams, size=size, batch_size=max(1, cropped),
                              batches=batches_per_epoch, seed=seed, max_images=max_examples, threads=threads,
                              progress=progress)
        if cropped:
            parts.append(crops)
    data = parts[0] if len(parts) == 1 else MixedBatches(parts)
    result = MaskTraining(model=model, streams=streams)
    if crops is not None:
        result.example_images, result.example_share = len(crops.items), cropped / batch_size
        result.example_seconds = time.perf_counter() - started
    every_s, last_check = float(budget_s) / max(1, int(validations)), time.perf_counter()
    scored: dict[str, Any] = {}

    def check(final: bool) -> float | None:
        nonlocal last_check, scored
        now = time.perf_counter()
        if validation is None or not len(validation) or (now - last_check < every_s and not final):
            return None
        last_check = now
        scored = validation_scores(model, validation, streams)
        return float(scored["pixel_f1"])

    def details() -> dict[str, float]:  # beside each check's F1 in the learning curve
        return {"val_map_threshold": float(scored["map_threshold"]),
                "val_pixel_f1_at_half": float(scored["pixel_f1_at_half"])}

    def on_best() -> None:
        result.map_threshold = float(scored["map_threshold"])
        result.image_threshold = _image_threshold(scored["scores"], scored["labels"])
        result.image_calibration = platt_calibration(scored["scores"], scored["labels"])

    remaining = max(1.0, float(budget_s) - (time.perf_counter() - started))
    tuning_s = remaining * float(finetune_share)
    result.curve, result.samples_seen, result.seconds, result.best_val_pixel_f1 = _train_for(
        model, data, budget_s=remaining - tuning_s, learning_rate=learning_rate,
        batch_size=batch_size, metric="val_pixel_f1", check=check, on_best=on_best, details=details,
        on_epoch=on_epoch, desc=desc, progress=progress)
    if crops is not None and tuning_s > 0:
        result.finetune_share = float(finetune_share)
        best = result.best_val_pixel_f1
        curve, seen, seconds, result.best_val_pixel_f1 = _train_for(
            model, crops.with_batch_size(batch_size), budget_s=tuning_s,
            learning_rate=float(learning_rate) / 4 if finetune_rate is None else float(finetune_rate),
            batch_size=batch_size, metric="val_pixel_f1", check=check, on_best=on_best, details=details,
            on_epoch=on_epoch, desc=f"{desc} (fine-tuning)", progress=progress, best=best,
            best_weights=None if best is None else model.get_weights(),
            offset=(result.samples_seen, result.seconds))
        result.curve += curve
        result.samples_seen += seen
        result.finetune_samples = seen
        result.seconds += seconds
    result.seconds += result.example_seconds  # the budget covers the streams of the examples too
    result.flip_views = int(flip_views)
    if whole_validation is not None and validation is not None and len(whole_validation) \
            and (len(whole_validation) > len(validation) or result.flip_views != 1):
        # The kept weights' map threshold and image calibration, chosen again on the whole validation split and
        # over the mirror views inference will read: a subset picks checkpoints well enough, but one scalar read
        # off 80 images is noise (see the docstring), and averaged maps are smoother than one view's.
        calibrating = time.perf_counter()
        scored = validation_scores(model, whole_validation, streams, flip_views=result.flip_views)
        on_best()
        result.calibration_images = len(whole_validation)
        result.calibration_pixel_f1 = float(scored["pixel_f1"])
        result.calibration_seconds = time.perf_counter() - calibrating
    return result


def train_forensic_net(
    photos: PhotoPool,
    *,
    budget_s: float,
    streams: Sequence[str] = DEFAULT_STREAMS,
    width: int = 48,
    seed: int = 0,
    **kwargs: Any,
) -> MaskTraining:
    """Build the compact forensic network (:func:`helpers.models.forensic_net.forensic_net`) on ``streams`` and
    train it with :func:`train_mask_model` (same keywords)."""
    keras.utils.set_random_seed(seed)
    model = forensic_net(streams, width=width)
    return train_mask_model(model, photos, streams=streams, budget_s=budget_s, seed=seed, **kwargs)


@dataclass
class ClassifierTraining(Training):
    """What :func:`train_classifier` returns (validation metric: ROC AUC of P(tampered) on fixed crops)."""

    task: str = "classify"
    best_val_auc: float | None = None

    def summary(self) -> dict[str, Any]:
        return {**super().summary(), "best_val_auc": self.best_val_auc}


def tampered_scores(model: keras.Model, data: keras.utils.PyDataset) -> tuple[np.ndarray, np.ndarray]:
    """``(P(tampered), tampered or not)`` of every item of ``data`` (not shuffled): a softmax over edit kinds
    scores ``1 - P(authentic)`` and its class targets count as tampered when not 0."""
    scores, labels = predict_scores(model, data)
    if scores.ndim == 2:
        return 1.0 - scores[:, 0], (np.asarray(labels) > 0).astype(int)
    return scores, np.asarray(labels).astype(int).ravel()


def _auc(scores: np.ndarray, labels: np.ndarray) -> float | None:
    return float(roc_auc_score(labels, scores)) if len(set(labels.tolist())) == 2 else None


def train_classifier(
    model: keras.Model,
    photos: PhotoPool,
    *,
    budget_s: float,
    validation: keras.utils.PyDataset | None = None,
    classes: Sequence[str] = ("authentic", "splice", "copy-move", "removal"),
    size: int = 128,
    batch_size: int = 16,
    batches_per_epoch: int = 25,
    seed: int = 0,
    threads: int = 2,
    config: FamilyConfig | None = None,
    class_weight: dict[int, float] | None = None,
    progress: bool = True,
    desc: str = "training",
) -> ClassifierTraining:
    """Train a compiled image classifier (notebook 05's builders) on online forgeries of ``photos`` for
    ``budget_s`` seconds.

    A one-output model learns tampered-or-not from every family (``task="classify"``); a softmax over
    ``classes`` learns the edit kind from the families it names (``task="kind"``). The learning rate starts at
    the one the model was compiled with and decays on a cosine over the budget (:class:`_TimeSchedule`).
    ``validation`` (fixed crops, not shuffled, e.g. ``batches_for(model, frames)["val"]``) is scored by ROC AUC
    of P(tampered) after every epoch and the best epoch's weights are restored.
    """
    streams = input_streams(model)
    outputs = int(model.output_shape[-1])
    task = "classify" if outputs == 1 else "kind"
    classes = tuple(classes)
    if task == "kind" and outputs != len(classes):
        raise ValueError(f"the model has {outputs} outputs but {len(classes)} classes were named: {list(classes)}")
    if config is None:
        config = FamilyConfig() if task == "classify" else FamilyConfig(families=tuple(classes[1:]))
    if getattr(model, "optimizer", None) is None or not getattr(model, "compiled", True):
        raise ValueError("compile the classifier first (helpers.models.classifier.compile_classifier)")
    learning_rate = float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))
    data = OnlineForgeries(photos, streams=streams, size=size, batch_size=batch_size, batches=batches_per_epoch,
                           seed=seed, threads=threads, config=config, task=task, classes=classes)
    result = ClassifierTraining(model=model, streams=streams, task=task)

    def check(final: bool) -> float | None:
        return None if validation is None else _auc(*tampered_scores(model, validation))

    result.curve, result.samples_seen, result.seconds, result.best_val_auc = _train_for(
        model, data, budget_s=budget_s, learning_rate=learning_rate, batch_size=batch_size, metric="val_auc",
        check=check, desc=desc, progress=progress, class_weight=class_weight)
    return result
