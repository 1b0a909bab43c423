"""What each notebook measured: the last cell of every notebook calls :func:`save_metrics`.

Serves every notebook (``from helpers.workbook import save_metrics``) and the runner, which counts a notebook as
finished only when its metrics file exists. Kept free of the execution machinery (papermill, nbconvert), so a
notebook kernel that imports it loads nothing it does not use.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from helpers.atomic import atomic_write_json

__all__ = ["HEADLINE_KEY", "RESULTS_TABLE_KEY", "metrics_path", "save_metrics", "load_metrics"]

HEADLINE_KEY = "headline"
"""A notebook that records ``{HEADLINE_KEY: {name: value, ...}}`` in its metrics chooses the figures (at most a
dozen) that ``summary.md`` and ``index.html`` show for it; without one, the summary picks documented keys
(:data:`helpers.workbook.summary.DEFAULT_HEADLINES`)."""

RESULTS_TABLE_KEY = "results_table"
"""A notebook that records ``{RESULTS_TABLE_KEY: [row, ...]}`` (rows: dicts of column -> value) in its metrics
gets that table at the very end of ``summary.md`` and in ``index.html``, under "Results" (the last such
notebook wins): the evaluation notebook puts the workbook's results, with their baselines, where a reader looks
first and last."""


def _notebook_stem(notebook: str) -> str:
    stem = notebook[: -len(".ipynb")] if notebook.endswith(".ipynb") else notebook
    if not stem or "/" in stem or "\\" in stem or stem in {".", ".."}:
        raise ValueError(f"notebook must be a notebook stem such as '01_datasets', got {notebook!r}")
    return stem


def metrics_path(run_dir: str | os.PathLike[str], notebook: str) -> Path:
    """Where ``notebook``'s metrics live inside ``run_dir``."""
    return Path(run_dir) / "metrics" / f"{_notebook_stem(notebook)}.json"


def save_metrics(run_dir: str | os.PathLike[str], notebook: str, metrics: Mapping[str, Any]) -> Path:
    """Record what a notebook measured; its last cell calls this, and the runner counts a run only if it did.

    ``notebook`` is the notebook's stem (``"01_datasets"``; a trailing ``.ipynb`` is dropped). Values must be
    JSON-serialisable; NumPy scalars and arrays are converted, and NaN or infinite numbers are stored as
    ``null`` (strict JSON has no NaN, and a metric that could not be computed is missing, not a number).
    The file is written atomically, so the runner never reads half of it, and keys keep the notebook's order
    (a results table's columns read as written). Returns the path written.
    """
    if not isinstance(metrics, Mapping):
        raise TypeError(f"metrics must be a mapping, got {type(metrics).__name__}")
    path = metrics_path(run_dir, notebook)
    return atomic_write_json(path, _strict_json(metrics), sort_keys=False)


def _strict_json(value: Any) -> Any:
    """``value`` with non-finite floats as ``None`` and NumPy values as Python ones; anything else unchanged."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(key): _strict_json(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_strict_json(item) for item in value]
    if hasattr(value, "tolist") and hasattr(value, "dtype"):  # NumPy scalars and arrays
        return _strict_json(value.tolist())
    return value


def load_metrics(run_dir: str | os.PathLike[str], notebook: str) -> dict[str, Any] | None:
    """The metrics ``notebook`` saved in ``run_dir``, or ``None`` if it saved none.

    Raises ``ValueError`` if the file exists but is not a JSON object (it was written by something else).
    """
    path = metrics_path(run_dir, notebook)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"metrics file {path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError(f"metrics file {path} holds a {type(data).__name__}, not a JSON object")
    return data
