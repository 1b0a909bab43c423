"""One format for every saved model: ``NAME.keras`` plus ``NAME.json`` (notebooks 05 and 06 save, 07 loads).

The ``.keras`` file holds the architecture and weights, saved uncompiled (no optimiser state: inference never
uses it, and Adam's two extra copies of every weight would triple the file). The JSON says how to feed the model
and what its output means, with one set of keys for every model:

=================  ==========================================================================================
``format``         1 (this layout)
``name``           ``NAME``; the files are ``NAME.keras`` and ``NAME.json``
``task``           ``"segment"`` (a per-pixel map, notebook 06) or ``"classify"`` (P(tampered), notebook 05)
``model_file``     ``NAME.keras``, beside the JSON
``streams``        the model's inputs in order (``rgb``, ``ela``, ``srm``): what :mod:`helpers.inference` computes
``srm_bank``       ``zhou3`` or ``full30`` (the SRM stream's filters)
``ela_quality``    JPEG quality of the ELA stream
``crop``           side of the training crops (a classifier's input size); models never see resized images
``tile``           side of the inference tiles (a mask model's, a multiple of 32); 0: the whole image at once
``overlap``        overlap of neighbouring tiles (fraction of the tile or pixels)
``threshold``      above it a pixel (segment) or an image (classify) counts as tampered
``classes``        a classifier's output classes (``["authentic", "tampered"]`` or the kind classes)
``image_score``    how a mask model's map becomes an image score (see :data:`IMAGE_SCORE_RULES`); optional
``architecture``   which builder made it (``dual_stream``, ``compact_ela_cnn``, ...)
``provenance``     how it was trained: ``profile``, ``seed``, ``data``, ``metrics`` (validation scores)
``details``        anything else worth keeping (backbone, loss, ...), free-form
``keras_version``  written by :func:`save_model_artifact`, with ``backend``
=================  ==========================================================================================

:func:`save_model_artifact` writes both files atomically, model first, so a JSON never points at a missing or
half-written model. :func:`load_model_artifact` takes the folder, the ``.keras`` or the ``.json``; importing
this module registers the workbook's custom layers and losses, so every saved model deserialises. Finding,
listing and reading saved models needs no Keras: that half lives in :mod:`helpers.models.artifact_files` and is
re-exported here.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import keras

import helpers.models.forensic_net  # noqa: F401 - registers the forensic network's layers (LocalAnomaly, ...)
import helpers.models.layers  # noqa: F401 - registers the custom layers saved models refer to
import helpers.models.losses  # noqa: F401 - registers the custom losses
import helpers.models.sm_compat  # noqa: F401 - registers segmentation-models' layers under Keras 3
from helpers.atomic import atomic_write_json
from helpers.atomic import json_safe
from helpers.models.artifact_files import (
    _PROVENANCE_KEYS,
    _WRITTEN_KEYS,
    FORMAT,
    IMAGE_SCORE_RULES,
    INFO_KEYS,
    TASKS,
    ModelArtifactError,
    check_flip_views,
    check_image_score_rule,
    check_map_threshold,
    find_artifact,
    find_model_artifacts,
    list_artifacts,
    read_info,
)

__all__ = [
    "FORMAT",
    "TASKS",
    "INFO_KEYS",
    "IMAGE_SCORE_RULES",
    "ModelArtifactError",
    "describe_model",
    "check_image_score_rule",
    "save_model_artifact",
    "load_model_artifact",
    "list_artifacts",
    "find_artifact",
    "find_model_artifacts",
]

# ----------------------------------------------------------------------------------------------------------------
# Describing
# ----------------------------------------------------------------------------------------------------------------
def _input_names(model: keras.Model) -> tuple[str, ...]:
    """The stream names a model reads, in its input order (its input layers' names)."""
    return tuple(str(tensor.name).split(":")[0] for tensor in keras.tree.flatten(model.inputs))


def _infer_task(model: keras.Model) -> str:
    rank = len(model.output_shape) if isinstance(model.output_shape, tuple) else 0
    if rank == 4:
        return "segment"
    if rank == 2:
        return "classify"
    raise ModelArtifactError(f"cannot tell the task of a model with output shape {model.output_shape}")


def _srm_bank(model: keras.Model) -> str:
    channels = {str(t.name).split(":")[0]: int(t.shape[-1]) for t in keras.tree.flatten(model.inputs)}
    return {3: "zhou3", 30: "full30"}.get(channels.get("srm", 3), "zhou3")


def describe_model(model: keras.Model, info: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The complete description of ``model``: ``info`` checked and completed with what the model says.

    Defaults: ``task`` from the output's rank, ``streams`` and ``srm_bank`` from the inputs, ``ela_quality`` 90,
    ``crop`` from a fixed input size (else 256), ``tile`` twice the crop (mask models), ``overlap`` 0.25,
    ``threshold`` 0.5. Raises :class:`ModelArtifactError` for an unknown key or a value out of range.
    """
    given = dict(info or {})
    unknown = sorted(set(given) - set(INFO_KEYS) - _WRITTEN_KEYS)
    if unknown:
        raise ModelArtifactError(f"unknown model description key(s) {unknown}; the format knows "
                                 f"{sorted(INFO_KEYS)} (put anything else under 'details')")
    task = given.get("task") or _infer_task(model)
    if task not in TASKS:
        raise ModelArtifactError(f"task must be one of {TASKS}, not {task!r}")
    streams = list(given.get("streams") or _input_names(model))
    size = model.inputs[0].shape[1] if len(model.inputs[0].shape) == 4 else None
    crop = int(given.get("crop") or size or 256)
    description: dict[str, Any] = {
        "task": task,
        "streams": streams,
        "srm_bank": str(given.get("srm_bank") or _srm_bank(model)),
        "ela_quality": int(given.get("ela_quality", 90)),
        "crop": crop,
        # tile 0: the whole image in one pass (fully convolutional models whose anomaly head compares a region
        # with the rest of the image, see helpers.inference.predict_mask)
        "tile": int(given["tile"]) if given.get("tile") is not None else (2 * crop if task == "segment" else crop),
        "overlap": given.get("overlap", 0.25),
        "threshold": float(given.get("threshold", 0.5)),
    }
    if not 0.0 <= description["threshold"] <= 1.0 or not math.isfinite(description["threshold"]):
        raise ModelArtifactError(f"threshold must lie in [0, 1], not {given.get('threshold')!r}")
    for key in ("classes", "image_score", "map_threshold", "flip_views", "architecture", "details"):
        if given.get(key) is not None:
            description[key] = given[key]
    if "image_score" in description:
        check_image_score_rule(description["image_score"])
    if "map_threshold" in description:
        description["map_threshold"] = check_map_threshold(description["map_threshold"])
    if "flip_views" in description:
        description["flip_views"] = check_flip_views(description["flip_views"])
    provenance = dict(given.get("provenance") or {})
    extra = sorted(set(provenance) - _PROVENANCE_KEYS)
    if extra:
        raise ModelArtifactError(f"provenance keys {extra} are not part of the format; use {sorted(_PROVENANCE_KEYS)}")
    description["provenance"] = {key: provenance.get(key) for key in sorted(_PROVENANCE_KEYS)}
    return description


# ----------------------------------------------------------------------------------------------------------------
# Saving and loading
# ----------------------------------------------------------------------------------------------------------------
def save_model_artifact(
    model: keras.Model, folder: str | os.PathLike[str], name: str, info: Mapping[str, Any] | None = None,
) -> tuple[Path, Path]:
    """Write ``folder/name.keras`` (uncompiled: no optimiser state) and ``folder/name.json``; return both paths.

    ``info`` follows :data:`INFO_KEYS` (see the module docstring); missing values come from the model
    (:func:`describe_model`). Both files are written to temporary names and renamed, the model first.
    """
    if not name or Path(name).name != name or name.startswith("."):
        raise ModelArtifactError(f"name must be a plain file stem, not {name!r}")
    description = describe_model(model, info)
    target = Path(folder)
    target.mkdir(parents=True, exist_ok=True)
    keras_path = target / f"{name}.keras"
    # Rebuilt from its config: an uncompiled twin (clone_model would compile the copy, optimiser included).
    bare = type(model).from_config(model.get_config())
    bare.set_weights(model.get_weights())
    handle, temporary = tempfile.mkstemp(prefix=f".{name}.", suffix=".keras", dir=target)  # Keras wants .keras
    os.close(handle)
    os.chmod(temporary, 0o644)  # mkstemp makes it private; a saved model is an ordinary file
    try:
        bare.save(temporary)
        os.replace(temporary, keras_path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    record = {"format": FORMAT, "name": name, "model_file": keras_path.name, **description,
              "keras_version": keras.__version__, "backend": keras.backend.backend()}
    json_path = atomic_write_json(target / f"{name}.json", json_safe(record))  # a NaN metric is stored as null
    return keras_path, Path(json_path)


def load_model_artifact(
    path: str | os.PathLike[str], *, task: str | None = None,
) -> tuple[keras.Model, dict[str, Any]]:
    """Load a saved model and its description: ``path`` is the folder, the ``.keras`` or the ``.json``.

    Returns ``(model, info)`` with ``info`` complete (a ``.keras`` file without JSON gets the defaults of
    :func:`describe_model`). ``task`` picks among several models in one folder and must match the model's.
    """
    keras_path, json_path = find_artifact(path, task=task)
    stored = read_info(json_path) if json_path is not None else {}
    if stored and stored.get("format") != FORMAT:
        raise ModelArtifactError(f"{json_path}: format {stored.get('format')!r} is not {FORMAT} "
                                 f"(expected keys: {sorted(INFO_KEYS)})")
    try:
        model = keras.saving.load_model(keras_path, compile=False)
    except Exception as error:  # noqa: BLE001 - any failure to deserialise is the same finding for the caller
        raise ModelArtifactError(f"{keras_path}: not a loadable Keras model ({type(error).__name__}: {error})") from error
    info = describe_model(model, {k: v for k, v in stored.items() if k not in _WRITTEN_KEYS})
    info = {"format": FORMAT, "name": keras_path.stem, "model_file": keras_path.name, **info,
            **{k: stored[k] for k in ("keras_version", "backend") if k in stored}}
    if task is not None and info["task"] != task:
        raise ModelArtifactError(f"{keras_path}: a {info['task']} model, not a {task} model")
    return model, info
