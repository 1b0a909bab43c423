"""Saved models' files and descriptions, without Keras: finding, listing and reading them (notebook 07).

The format itself is described in :mod:`helpers.models.artifact`, which loads and saves models and re-exports
everything here. This half imports no Keras, so ``analyze`` can find a saved model, read its description and
run it with NumPy (:mod:`helpers.models.portable`) without paying TensorFlow's start-up.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from helpers import config
from helpers.models.portable import FLIP_VIEWS

__all__ = [
    "FORMAT",
    "TASKS",
    "INFO_KEYS",
    "IMAGE_SCORE_RULES",
    "ModelArtifactError",
    "check_image_score_rule",
    "check_flip_views",
    "check_map_threshold",
    "list_artifacts",
    "find_artifact",
    "find_model_artifacts",
    "read_info",
    "SHIPPED_MODEL",
    "shipped_model_path",
]

SHIPPED_MODEL = Path(__file__).resolve().parent / "pretrained" / "forensic_net.json"
"""Where the shipped model's description lies (its weights are ``forensic_net.keras`` beside it; see
:mod:`helpers.shipped`)."""


def shipped_model_path() -> Path | None:
    """The shipped model's JSON, or ``None`` when this installation has none."""
    return SHIPPED_MODEL if SHIPPED_MODEL.is_file() and SHIPPED_MODEL.with_suffix(".keras").is_file() else None


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
    "map_threshold": "a mask model's map threshold chosen on validation, in (0, 1); the detector maps it to 0.5",
    "flip_views": "mirror views a whole-image mask model's map is averaged over: 1, 2 or 4 (absent: 1)",
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


def check_map_threshold(value: Any) -> float:
    """``value`` as a mask model's ``map_threshold`` (a float in (0, 1)), or :class:`ModelArtifactError`."""
    try:
        threshold = float(value)
    except (TypeError, ValueError):
        threshold = float("nan")
    if isinstance(value, bool) or not 0.0 < threshold < 1.0:  # also refuses NaN
        raise ModelArtifactError(f"map_threshold must lie in (0, 1), not {value!r}")
    return threshold


def check_flip_views(value: Any) -> int:
    """``value`` as a mask model's ``flip_views`` (1, 2 or 4, :data:`helpers.models.portable.FLIP_VIEWS`), or
    :class:`ModelArtifactError`."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or int(value) not in FLIP_VIEWS:
        raise ModelArtifactError(f"flip_views must be one of {sorted(FLIP_VIEWS)}, not {value!r}")
    return int(value)


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
        info = read_info(source)
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
        pairs = [pair for pair in pairs if pair[1] is not None and read_info(pair[1]).get("task") == task]
        if not pairs:
            raise ModelArtifactError(f"{path}: holds no saved {task} model")
    if len(pairs) > 1:
        names = ", ".join(pair[0].stem for pair in pairs)
        raise ModelArtifactError(f"{path}: holds several saved models ({names}); pass the .keras file of one")
    return pairs[0]


def read_info(json_path: Path) -> dict[str, Any]:
    try:
        info = json.loads(json_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ModelArtifactError(f"{json_path}: not a readable model description ({error})") from None
    if not isinstance(info, dict):
        raise ModelArtifactError(f"{json_path}: not a model description (a JSON object)")
    return info


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
            info = read_info(json_path)
        except ModelArtifactError:
            continue
        task = info.get("task")
        if info.get("format") != FORMAT or task not in TASKS:
            continue
        stamp = keras_path.stat().st_mtime
        if task not in newest or stamp > newest[task][0]:
            newest[task] = (stamp, keras_path)
    return {task: path for task, (_, path) in sorted(newest.items())}
