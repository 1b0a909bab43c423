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
this module registers the workbook's custom layers and losses, so every saved model deserialises.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import keras

import helpers.models.layers  # noqa: F401 - registers the custom layers saved models refer to
import helpers.models.losses  # noqa: F401 - registers the custom losses
import helpers.models.sm_compat  # noqa: F401 - registers segmentation-models' layers under Keras 3
from helpers import config
from helpers.atomic import atomic_write_json
from helpers.metrics import json_safe

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

FORMAT = 1
TASKS: tuple[str, ...] = ("segment", "classify")

INFO_KEYS: dict[str, str] = {
    "task": "segment or classify",
    "streams": "the model's input streams, in order",
    "srm_bank": "zhou3 or full30",
    "ela_quality": "JPEG quality of the ELA stream",
    "crop": "training crop side (a classifier's input size)",
    "tile": "inference tile side (a multiple of 32)",
    "overlap": "tile overlap (fraction or pixels)",
    "threshold": "decision threshold in [0, 1]",
    "classes": "a classifier's output classes",
    "image_score": "how a mask model's map becomes an image score",
    "architecture": "the builder that made the model",
    "provenance": "profile, seed, data, metrics",
    "details": "anything else, free-form",
}
"""The keys a caller may put in ``info``; the file adds ``format``, ``name``, ``model_file``, versions."""

_WRITTEN_KEYS = frozenset({"format", "name", "model_file", "keras_version", "backend"})
_PROVENANCE_KEYS = frozenset({"profile", "seed", "data", "metrics"})
_EXPECTED = "a folder holding NAME.keras and NAME.json, or a .keras file"

IMAGE_SCORE_RULES: dict[str, str] = {
    "top_mean": "mean of the top `fraction` of the map's pixels (default 0.01)",
    "max": "the map's maximum",
    "mean": "the map's mean",
}
"""Rules a mask model's ``image_score`` may name: ``{"rule": "top_mean", "fraction": 0.01}``, optionally
calibrated with ``"platt": [a, b]`` (score = sigmoid(a * value + b), fitted on validation images)."""


class ModelArtifactError(ValueError):
    """A path that is not a saved model, or a description that does not follow the format."""


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
    for key in ("classes", "image_score", "architecture", "details"):
        if given.get(key) is not None:
            description[key] = given[key]
    if "image_score" in description:
        check_image_score_rule(description["image_score"])
    provenance = dict(given.get("provenance") or {})
    extra = sorted(set(provenance) - _PROVENANCE_KEYS)
    if extra:
        raise ModelArtifactError(f"provenance keys {extra} are not part of the format; use {sorted(_PROVENANCE_KEYS)}")
    description["provenance"] = {key: provenance.get(key) for key in sorted(_PROVENANCE_KEYS)}
    return description


def check_image_score_rule(rule: Any) -> dict[str, Any]:
    """Check a mask model's ``image_score`` rule (see :data:`IMAGE_SCORE_RULES`); returns it as a dict."""
    if not isinstance(rule, Mapping) or rule.get("rule") not in IMAGE_SCORE_RULES:
        raise ModelArtifactError(f"image_score must be a dict whose 'rule' is one of {sorted(IMAGE_SCORE_RULES)}, "
                                 f"not {rule!r}")
    fraction = rule.get("fraction", 0.01)
    if not (isinstance(fraction, (int, float)) and 0.0 < float(fraction) <= 1.0):
        raise ModelArtifactError(f"image_score fraction must lie in (0, 1], not {fraction!r}")
    platt = rule.get("platt")
    if platt is not None and not (isinstance(platt, (list, tuple)) and len(platt) == 2
                                  and all(isinstance(v, (int, float)) and math.isfinite(v) for v in platt)):
        raise ModelArtifactError(f"image_score platt must be two finite numbers [a, b], not {platt!r}")
    return dict(rule)


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


def list_artifacts(path: str | os.PathLike[str]) -> list[tuple[Path, Path | None]]:
    """Every saved model at ``path`` as ``(keras_path, json_path or None)``, without loading any.

    ``path`` is a folder holding ``NAME.keras`` and ``NAME.json`` pairs (or one lone ``.keras`` file), a
    ``.keras`` file (its JSON beside it when there is one) or a ``.json`` file. Anything else raises
    :class:`ModelArtifactError` saying what was expected.
    """
    source = Path(path)
    if source.is_dir():
        pairs: list[tuple[Path, Path | None]] = [(p.with_suffix(".keras"), p) for p in sorted(source.glob("*.json"))
                                                 if p.with_suffix(".keras").is_file()]
        if not pairs:
            lone = sorted(source.glob("*.keras"))
            if len(lone) != 1:
                raise ModelArtifactError(f"{source}: not a saved model: expected {_EXPECTED}")
            pairs = [(lone[0], None)]
        return pairs
    if source.suffix == ".keras" and source.is_file():
        beside = source.with_suffix(".json")
        return [(source, beside if beside.is_file() else None)]
    if source.suffix == ".json" and source.is_file():
        info = _read_info(source)
        model_file = source.parent / str(info.get("model_file", f"{source.stem}.keras"))
        if not model_file.is_file():
            raise ModelArtifactError(f"{source}: the model it describes, {model_file.name}, is missing")
        return [(model_file, source)]
    what = "not found" if not source.exists() else "not a saved model"
    raise ModelArtifactError(f"{source}: {what}: expected {_EXPECTED}")


def find_artifact(path: str | os.PathLike[str], *, task: str | None = None) -> tuple[Path, Path | None]:
    """The one saved model at ``path`` (see :func:`list_artifacts`); with several in a folder, ``task`` picks
    the one saved for it, else :class:`ModelArtifactError` names them."""
    pairs = list_artifacts(path)
    if task is not None and len(pairs) > 1:
        pairs = [pair for pair in pairs if pair[1] is not None and _read_info(pair[1]).get("task") == task]
        if not pairs:
            raise ModelArtifactError(f"{path}: holds no saved {task} model")
    if len(pairs) > 1:
        names = ", ".join(pair[0].stem for pair in pairs)
        raise ModelArtifactError(f"{path}: holds several saved models ({names}); pass the .keras file of one")
    return pairs[0]


def _read_info(json_path: Path) -> dict[str, Any]:
    try:
        info = json.loads(json_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ModelArtifactError(f"{json_path}: not a readable model description ({error})") from None
    if not isinstance(info, dict):
        raise ModelArtifactError(f"{json_path}: not a model description (a JSON object)")
    return info


def load_model_artifact(
    path: str | os.PathLike[str], *, task: str | None = None,
) -> tuple[keras.Model, dict[str, Any]]:
    """Load a saved model and its description: ``path`` is the folder, the ``.keras`` or the ``.json``.

    Returns ``(model, info)`` with ``info`` complete (a ``.keras`` file without JSON gets the defaults of
    :func:`describe_model`). ``task`` picks among several models in one folder and must match the model's.
    """
    keras_path, json_path = find_artifact(path, task=task)
    stored = _read_info(json_path) if json_path is not None else {}
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


def find_model_artifacts(search: str | os.PathLike[str] | None = None) -> dict[str, Path]:
    """The newest saved model per task under ``search`` (default: ``<checkout>/runs``): ``{task: .keras path}``.

    Only complete artifacts count (a JSON of this format whose model file exists); missing tasks are absent.
    """
    root = Path(search) if search is not None else ((config.repo_root() or Path.cwd()) / "runs")
    if not root.is_dir():
        return {}
    newest: dict[str, tuple[float, Path]] = {}
    for json_path in root.rglob("*.json"):
        keras_path = json_path.with_suffix(".keras")
        if not keras_path.is_file():
            continue
        try:
            info = _read_info(json_path)
        except ModelArtifactError:
            continue
        task = info.get("task")
        if info.get("format") != FORMAT or task not in TASKS:
            continue
        stamp = keras_path.stat().st_mtime
        if task not in newest or stamp > newest[task][0]:
            newest[task] = (stamp, keras_path)
    return {task: path for task, (_, path) in sorted(newest.items())}
