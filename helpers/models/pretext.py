"""A manipulation-family pretext task for the forensic network's trunk (notebook 06, ``bench_pretext.py``).

ManTraNet (Wu et al. 2019) first trained its trace extractor to *name* the manipulation applied to a patch (385
types), then trained localisation on top of it. The same idea here, at workbook scale: the forensic network's
layers up to its anomaly features (:func:`helpers.models.forensic_net.forensic_net`, layer ``anomaly``) get a
small classification head (global average and max pooling, one softmax layer) that names the family of an online
forgery (:data:`PRETEXT_CLASSES`: authentic or one of the nine local families of
:mod:`helpers.datasets.families`, drawn evenly, every compression history on both sides). The head shares the
mask model's layers, so training it moves the mask model's weights; the mask model then trains as usual
(:func:`helpers.models.recipes.train_mask_model`), starting from that trunk.

Whether it pays is measured, not assumed: ``benchmarks/bench_pretext.py`` trains the network with and without
the pretext under the same total time budget and scores both on the same held-out images. On two CPU cores it
does not pay (``bench_pretext.py --profile full --budget-s 480``: 450 held-out images, 81 fixtures):

=========================================  ========  =======  =========  ========  =========
run (480 s each)                           held-out  best F1  image AUC  fixtures  image AUC
                                           F1@0.5                        F1@0.5
=========================================  ========  =======  =========  ========  =========
masks only (1,696 samples)                 0.380     0.481    0.715      0.198     0.464
160 s pretext (800), then masks (896)      0.348     0.434    0.647      0.207     0.533
=========================================  ========  =======  =========  ========  =========

After 800 samples the head named the family of 12.5 % of held-out forgeries (chance: 10 %): nine families whose
traces are subtle at 160 pixels take far more samples than a CPU budget holds (ManTraNet trained on millions),
and the time they take comes out of the mask task, which learns the same traces from denser supervision. So the
recipes do not use it; on a GPU budget it is worth measuring again.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import keras
import numpy as np
from keras import layers

from helpers.datasets.families import LOCAL_FAMILIES, FamilyConfig
from helpers.datasets.online import OnlineForgeries, PhotoPool
from helpers.models.recipes import Training, _train_for

__all__ = ["PRETEXT_CLASSES", "PretextTraining", "family_pretext_model", "pretrain_families"]

PRETEXT_CLASSES: tuple[str, ...] = ("authentic", *LOCAL_FAMILIES)
"""What the pretext head names: an untouched sample or the family of the local edit in it."""


@dataclass
class PretextTraining(Training):
    """What :func:`pretrain_families` returns; ``model`` is the classifier (its trunk is the mask model's)."""

    classes: tuple[str, ...] = PRETEXT_CLASSES
    best_val_accuracy: float | None = None
    """Family accuracy on a fixed set of online forgeries from other seeds (chance: ``1 / len(classes)``)."""

    def summary(self) -> dict[str, object]:
        return {**super().summary(), "classes": list(self.classes), "best_val_accuracy": self.best_val_accuracy}


def family_pretext_model(model: keras.Model, classes: Sequence[str] = PRETEXT_CLASSES,
                         features: str = "anomaly") -> keras.Model:
    """A classifier of ``classes`` on ``model``'s inputs that *shares* its layers up to the layer ``features``.

    Training the classifier trains those shared layers of ``model`` in place; its own head is two poolings and
    one softmax layer, discarded afterwards.
    """
    try:
        trunk = model.get_layer(features).output
    except ValueError:
        raise ValueError(f"model {model.name!r} has no layer {features!r} to put the pretext head on") from None
    pooled = layers.Concatenate(name="pretext_pool")([layers.GlobalAveragePooling2D(name="pretext_mean")(trunk),
                                                      layers.GlobalMaxPooling2D(name="pretext_max")(trunk)])
    output = layers.Dense(len(classes), activation="softmax", dtype="float32", name="pretext_family")(pooled)
    return keras.Model(model.inputs, output, name=f"{model.name}_families")


def pretrain_families(
    model: keras.Model,
    photos: PhotoPool,
    *,
    streams: Sequence[str],
    budget_s: float,
    size: int = 128,
    batch_size: int = 16,
    batches_per_epoch: int = 25,
    learning_rate: float = 2e-3,
    seed: int = 0,
    threads: int = 2,
    validation_batches: int = 4,
    progress: bool = True,
) -> PretextTraining:
    """Train ``model``'s trunk to name the manipulation family of online forgeries of ``photos`` for
    ``budget_s`` seconds (the same time-budgeted loop, cosine schedule and best-epoch restore as the mask
    recipe; the validation metric is family accuracy on ``validation_batches`` fixed batches)."""
    if budget_s <= 0:
        raise ValueError(f"budget_s must be positive, not {budget_s!r}")
    started = time.perf_counter()  # the budget covers building the model and the fixed validation batches too
    streams = tuple(streams)
    classifier = family_pretext_model(model)
    classifier.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="sparse_categorical_crossentropy")
    config = FamilyConfig(authentic_fraction=1.0 / len(PRETEXT_CLASSES), family_weights=(1.0,) * len(LOCAL_FAMILIES))
    data = OnlineForgeries(photos, streams=streams, size=size, batch_size=batch_size, batches=batches_per_epoch,
                           seed=seed + 101, threads=threads, config=config, task="kind", classes=PRETEXT_CLASSES)
    # Other seeds than training's: the check never scores a sample the head was trained on.
    held = OnlineForgeries(photos, streams=streams, size=size, batch_size=batch_size, batches=validation_batches,
                           seed=seed + 202, threads=threads, config=config, task="kind", classes=PRETEXT_CLASSES,
                           fixed=True)
    batches = [held[index] for index in range(len(held))]

    def check(final: bool) -> float:
        right = sum(int(np.sum(np.argmax(classifier.predict_on_batch(x), axis=-1) == y)) for x, y in batches)
        return right / sum(len(y) for _, y in batches)

    result = PretextTraining(model=classifier, streams=streams)
    result.curve, result.samples_seen, result.seconds, result.best_val_accuracy = _train_for(
        classifier, data, budget_s=max(1.0, float(budget_s) - (time.perf_counter() - started)),
        learning_rate=learning_rate, batch_size=batch_size, metric="val_accuracy", check=check,
        desc="pretext: families", progress=progress)
    result.seconds = time.perf_counter() - started
    return result
