"""The record of a workbook run: ``summary.json`` (everything) and ``summary.md`` (one page a person reads).

Serves ``python -m helpers workbook`` (the runner rewrites both files after every notebook, so even a crash
leaves one behind) and :mod:`helpers.workbook.report`, which rebuilds the run from ``summary.json``.

``summary.md`` holds per notebook its status, time and at most :data:`MAX_HEADLINES` headline figures (the
notebook's own ``headline`` dict, else the keys :data:`DEFAULT_HEADLINES` names for it), then the environment on
one line and the results table; every other number stays in ``summary.json`` and ``metrics/``.
"""

from __future__ import annotations

import fnmatch
import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from helpers.atomic import atomic_write_json, atomic_write_text
from helpers.workbook.metrics import HEADLINE_KEY, RESULTS_TABLE_KEY

__all__ = [
    "Status",
    "NotebookResult",
    "WorkbookResult",
    "MAX_HEADLINES",
    "DEFAULT_HEADLINES",
    "SUMMARY_JSON",
    "SUMMARY_MD",
    "flatten_metrics",
    "headline_figures",
    "results_table",
    "render_summary_markdown",
    "render_results_table",
    "table_columns",
    "table_cell",
    "fmt_value",
    "verdict",
    "environment_line",
    "write_summary",
    "read_summary",
    "format_table",
    "format_bytes",
    "status_line",
]

Status = Literal["ok", "failed", "skipped"]

SUMMARY_JSON = "summary.json"
SUMMARY_MD = "summary.md"

MAX_HEADLINES = 12
"""At most this many figures per notebook in ``summary.md`` and ``index.html``."""

DEFAULT_HEADLINES: dict[str, tuple[str, ...]] = {
    "01_datasets": ("samples", "groups", "per_kind.*", "validation_errors", "mean_mask_fraction",
                    "fixtures.rows", "fixtures.errors", "metadata_leakage_auc.*"),
    "02_eda": ("images", "unreadable", "datasets.*.images", "datasets.*.tampered", "datasets.*.mean_mask_fraction",
               "datasets.*.all_tampered_f1"),
    "03_augmentation": ("split.*.images", "leakage_1nn_accuracy.augment_then_split",
                        "leakage_1nn_accuracy.split_then_augment", "leakage_1nn_accuracy.majority_class",
                        "off_grid_crop_ela_ratio", "offline_variants_written", "pipeline_images_per_s.*"),
    "04_ela_srm": ("images_scored", "unreadable", "quality_estimate_exact", "mean_direction_free_auc.*.ela",
                   "mean_direction_free_auc.*.srm", "mean_direction_free_auc.*.noise",
                   "feature_cache.first_seconds", "feature_cache.second_seconds"),
    "05_classifier": ("device", "best_by_val_auc", "saved_model", "models.*.test.roc_auc",
                      "models.*.fixtures.roc_auc"),
    "06_mask_model": ("device", "saved_model", "models.*.test_pixel_f1", "models.*.test_all_tampered_f1",
                      "models.*.fixtures_pixel_f1", "models.*.fixtures_all_tampered_f1",
                      "models.*.train_images_per_s"),
    "07_evaluate_and_analyze": ("images", "unreadable", "datasets"),
}
"""Headline keys per notebook that records no ``headline`` dict: dotted paths into its metrics, where ``*``
stands for one level (``models.*.test.roc_auc``: every model's test AUC), shown in this order. A notebook
missing from here shows its first top-level numbers and words."""


# --------------------------------------------------------------------------------------------------------------
# Records
# --------------------------------------------------------------------------------------------------------------


@dataclass
class NotebookResult:
    """How one notebook went."""

    name: str
    """Notebook stem, e.g. ``"01_datasets"``."""
    status: Status
    wall_seconds: float = 0.0
    metrics: dict[str, Any] = field(default_factory=dict)
    """What the notebook passed to ``save_metrics`` (empty unless it succeeded)."""
    output: str = ""
    """Path of the executed notebook (empty for a skipped notebook, which has none from this run)."""
    error: str | None = None
    """One line, ``"<ename>: <evalue>"``; the full traceback is in the executed notebook."""
    failed_cell: int | None = None
    """0-based index of the failing cell in the notebook *as committed* (what an editor shows)."""
    executed_cell: int | None = None
    """The same cell's index as papermill counts it, i.e. including its injected-parameters cell."""


@dataclass
class WorkbookResult:
    """The record of one workbook run; ``summary.json`` is :meth:`to_dict` of this."""

    profile: str
    seed: int
    data_root: str
    out_dir: str
    notebooks: list[NotebookResult]
    started: str
    """Local start time, ISO 8601 with UTC offset."""
    wall_seconds: float
    environment: dict[str, Any]
    cell_timeout: int | None = None
    """Per-cell limit the run used, in seconds (``None``: none)."""
    planned: list[str] = field(default_factory=list)
    """Stems of every notebook selected for this run, so a partial summary shows what never finished."""
    bytes_written: int = 0
    """Bytes of the files the run created or rewrote, under the run folder and the data root together."""
    bytes_written_in: dict[str, int] = field(default_factory=dict)
    """:attr:`bytes_written` by place: ``{"run folder": ..., "data root": ...}``."""
    write_budget_bytes: int | None = None
    """The profile's limit on :attr:`bytes_written` (``None``: none); going over adds a warning."""
    largest_writes: list[dict[str, Any]] = field(default_factory=list)
    """Where most bytes went, largest first: ``{"path", "bytes", "files"}`` per folder two levels down (a
    checkpoint folder, a feature cache) or per file above that, ``path`` starting with ``<run>`` or ``<data>``."""
    warnings: list[str] = field(default_factory=list)
    """Plain sentences about the run itself (over the write budget, a report that could not be built)."""

    @property
    def ok(self) -> bool:
        """True when every planned notebook ran and succeeded."""
        names = [nb.name for nb in self.notebooks]
        complete = not self.planned or names == list(self.planned)
        return bool(self.notebooks) and complete and all(nb.status == "ok" for nb in self.notebooks)

    @property
    def failure(self) -> NotebookResult | None:
        """The notebook that stopped the run, if any."""
        return next((nb for nb in self.notebooks if nb.status == "failed"), None)

    @property
    def notebook_seconds(self) -> float:
        """Seconds spent inside notebooks, all together (the rest of :attr:`wall_seconds` is the runner's)."""
        return round(sum(nb.wall_seconds for nb in self.notebooks), 3)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["ok"] = self.ok
        data["notebook_seconds"] = self.notebook_seconds
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> WorkbookResult:
        """The inverse of :meth:`to_dict` (derived keys such as ``ok`` are recomputed, unknown keys ignored)."""
        known = {f.name for f in fields(cls)}
        values = {key: value for key, value in data.items() if key in known}
        note_fields = {f.name for f in fields(NotebookResult)}
        values["notebooks"] = [
            NotebookResult(**{k: v for k, v in nb.items() if k in note_fields}) for nb in data.get("notebooks", [])
        ]
        return cls(**values)


# --------------------------------------------------------------------------------------------------------------
# Headline figures
# --------------------------------------------------------------------------------------------------------------


def flatten_metrics(metrics: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """Nested dictionaries as ``(dotted.key, value)`` pairs, keys sorted at every level."""
    rows: list[tuple[str, Any]] = []
    for key in sorted(metrics, key=str):
        value = metrics[key]
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            rows.extend(flatten_metrics(value, prefix=f"{dotted}."))
        else:
            rows.append((dotted, value))
    return rows


def _leaves(metrics: Mapping[str, Any], path: tuple[str, ...] = ()) -> Iterable[tuple[tuple[str, ...], Any]]:
    """``(key path, value)`` of every non-mapping value, in the notebook's own key order."""
    for key, value in metrics.items():
        here = (*path, str(key))
        if isinstance(value, Mapping) and value:
            yield from _leaves(value, here)
        else:
            yield here, value


def _matches(pattern: str, path: tuple[str, ...]) -> bool:
    parts = pattern.split(".")
    return len(parts) == len(path) and all(fnmatch.fnmatchcase(key, part) for key, part in zip(path, parts))


def _is_short(value: Any) -> bool:
    """A number, a word or a short flat list: something a summary line can hold."""
    if isinstance(value, (bool, int, float, str)):
        return True
    return isinstance(value, list) and len(value) <= 6 and not any(isinstance(v, (Mapping, list)) for v in value)


def headline_figures(name: str, metrics: Mapping[str, Any], limit: int = MAX_HEADLINES) -> list[tuple[str, Any]]:
    """The at most ``limit`` ``(label, value)`` pairs that stand for a notebook's metrics on the summary page.

    In order of preference: the notebook's ``headline`` dict (flattened, in its order); the keys
    :data:`DEFAULT_HEADLINES` documents for ``name``; the first top-level values that are numbers, words or
    short lists. The results table is never a headline (it has a section of its own).
    """
    headline = metrics.get(HEADLINE_KEY)
    if isinstance(headline, Mapping) and headline:
        return [(".".join(path), value) for path, value in _leaves(headline)][:limit]
    leaves = [(path, value) for path, value in _leaves(metrics) if path[0] not in (RESULTS_TABLE_KEY, HEADLINE_KEY)]
    patterns = DEFAULT_HEADLINES.get(name)
    chosen: list[tuple[str, Any]] = []
    if patterns is not None:
        seen: set[tuple[str, ...]] = set()
        for pattern in patterns:
            for path, value in leaves:
                if path not in seen and _matches(pattern, path):
                    seen.add(path)
                    chosen.append((".".join(path), value))
    else:
        for key, value in metrics.items():
            if key not in (RESULTS_TABLE_KEY, HEADLINE_KEY) and _is_short(value):
                chosen.append((str(key), value))
    return chosen[:limit]


def results_table(result: WorkbookResult) -> tuple[str, list[Mapping[str, Any]]] | None:
    """``(notebook, rows)`` of the last successful notebook that recorded a results table, if any."""
    tables = [(nb.name, nb.metrics[RESULTS_TABLE_KEY]) for nb in result.notebooks
              if nb.status == "ok" and isinstance(nb.metrics.get(RESULTS_TABLE_KEY), list)]
    return tables[-1] if tables else None


# --------------------------------------------------------------------------------------------------------------
# Formatting
# --------------------------------------------------------------------------------------------------------------


def _fmt_scalar(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, float):
        return str(value) if not math.isfinite(value) else f"{value:.4g}"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return value if len(value) <= 80 else value[:79] + "…"
    return _fmt_scalar(json.dumps(value, sort_keys=True))


def fmt_value(value: Any, max_items: int = 6) -> str:
    """A value in a few characters: floats to 4 significant digits, long lists cut with "…" and counted."""
    if isinstance(value, (list, tuple)):
        items = list(value)
        if len(items) <= max_items:
            shown = [fmt_value(v, max_items) for v in items]
        else:
            head = [fmt_value(v, max_items) for v in items[: max_items - 2]]
            shown = [*head, "…", fmt_value(items[-1], max_items)]
        text = "[" + ", ".join(shown) + "]"
        return text if len(items) <= max_items else f"{text} ({len(items)} items)"
    if isinstance(value, Mapping):
        return _fmt_scalar(json.dumps(value, sort_keys=True))
    return _fmt_scalar(value)


def format_bytes(count: int | float) -> str:
    """``123456789`` -> ``"123.5 MB"`` (decimal units, as disks and budgets are quoted)."""
    value = float(count)
    for unit in ("B", "kB", "MB", "GB"):
        if abs(value) < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")  # pragma: no cover


def _note(nb: NotebookResult) -> str:
    """Why a notebook did not finish, in one line; empty for a notebook that did."""
    if nb.status == "skipped":
        return "not run: an earlier notebook failed"
    if nb.status == "failed":
        where = f"cell {nb.failed_cell}: " if nb.failed_cell is not None else ""
        return f"{where}{nb.error or 'failed'}"
    return ""


def status_line(nb: NotebookResult) -> str:
    """``"01_datasets: ok (41.2 s)"``, plus the failure for a notebook that failed."""
    note = _note(nb)
    return f"{nb.name}: {nb.status} ({nb.wall_seconds:.1f} s){' ' + note if note else ''}"


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _headline_text(nb: NotebookResult) -> str:
    if nb.status != "ok":
        return _note(nb)
    figures = headline_figures(nb.name, nb.metrics)
    if not figures:
        return "(no metrics)"
    return " · ".join(f"{label} {fmt_value(value)}" for label, value in figures)


def verdict(result: WorkbookResult) -> str:
    """One sentence: did the run succeed, how long did it take, how much did it write."""
    done = len(result.notebooks)
    planned = len(result.planned) or done
    failure = result.failure
    details = [f"{place} {format_bytes(size)}" for place, size in result.bytes_written_in.items() if size]
    if result.write_budget_bytes:
        details.append(f"budget {format_bytes(result.write_budget_bytes)}")
    size = f"wrote {format_bytes(result.bytes_written)}" + (f" ({'; '.join(details)})" if details else "")
    if result.ok:
        return (f"OK: {done} of {planned} notebooks succeeded in {result.wall_seconds:.1f} s "
                f"({result.notebook_seconds:.1f} s in notebooks); {size}.")
    if failure is not None:
        cell = f", cell {failure.failed_cell}" if failure.failed_cell is not None else ""
        return f"FAILED in {failure.name}{cell}: {failure.error}; {size}."
    return f"In progress (or interrupted): {done} of {planned} notebooks finished; {size}."


def environment_line(environment: Mapping[str, Any]) -> str:
    """Python, platform and package versions on one line."""
    env = dict(environment)
    packages = env.pop("packages", {}) or {}
    parts = [f"Python {env['python']}" if "python" in env else "", str(env.get("platform", ""))]
    parts += [f"{name} {version if version is not None else '(not installed)'}" for name, version in packages.items()]
    return "; ".join(part for part in parts if part)


def render_results_table(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """A markdown table of ``rows`` (columns in first-seen order; floats to 3 decimals; missing cells blank)."""
    columns = table_columns(rows)
    if not columns:
        return ["(empty results table)"]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_md_cell(table_cell(row.get(column))) for column in columns) + " |" for row in rows]
    return lines


def table_columns(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    columns: list[str] = []
    for row in rows:
        columns += [key for key in row if key not in columns]
    return columns


def table_cell(value: Any) -> str:
    """A results-table value as text: blank for missing or NaN, floats to 3 decimals."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def render_summary_markdown(result: WorkbookResult) -> str:
    """``summary.md``: the verdict, one table row per notebook with its headline figures, the environment on one
    line, and the results table last."""
    when = result.started.replace("T", " ")
    lines = [f"# Workbook run: profile `{result.profile}`, seed {result.seed}, {when}", ""]
    lines += [f"**{verdict(result)}**", ""]
    lines += [f"> **Warning:** {warning}" for warning in result.warnings]
    if result.warnings:
        lines.append("")
    failure = result.failure
    if failure is not None and failure.output:
        lines += [f"The traceback is in the executed notebook `{Path(failure.output).name}`.", ""]
    lines += [
        "Every notebook rendered with its figures: `index.html`. All metrics: `summary.json` and `metrics/`.",
        "",
        "| notebook | status | wall s | headline figures |",
        "|---|---|---:|---|",
    ]
    for nb in result.notebooks:
        lines.append(f"| {nb.name} | {nb.status} | {nb.wall_seconds:.1f} | {_md_cell(_headline_text(nb))} |")
    finished = {nb.name for nb in result.notebooks}
    lines += [f"| {name} | pending | | |" for name in result.planned if name not in finished]
    timeout = f"{result.cell_timeout} s" if result.cell_timeout is not None else "none"
    lines += [
        "",
        f"Data root `{result.data_root}`; run folder `{result.out_dir}`; per-cell timeout {timeout}.",
        "",
        f"Environment: {environment_line(result.environment)}.",
        "",
    ]
    table = results_table(result)
    if table is not None:
        source, rows = table
        lines += ["## Results", "", f"Recorded by `{source}`.", "", *render_results_table(rows), ""]
    return "\n".join(lines)


def format_table(result: WorkbookResult) -> str:
    """A compact plain-text status table for a terminal."""
    width = max([len("notebook"), *(len(nb.name) for nb in result.notebooks)])
    rows = [f"{'notebook':<{width}}  {'status':<7}  {'wall s':>7}  note"]
    for nb in result.notebooks:
        note = _note(nb)
        note = note if len(note) <= 100 else note[:99] + "…"
        rows.append(f"{nb.name:<{width}}  {nb.status:<7}  {nb.wall_seconds:>7.1f}  {note}".rstrip())
    return "\n".join(rows)


# --------------------------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------------------------


def write_summary(result: WorkbookResult, out_dir: str | os.PathLike[str] | None = None) -> tuple[Path, Path]:
    """Write ``summary.json`` and ``summary.md`` (atomically) into ``out_dir`` (default: the run's folder)."""
    target = Path(out_dir) if out_dir is not None else Path(result.out_dir)
    json_path = atomic_write_json(target / SUMMARY_JSON, result.to_dict())
    md_path = atomic_write_text(target / SUMMARY_MD, render_summary_markdown(result))
    return json_path, md_path


def read_summary(run_dir: str | os.PathLike[str]) -> WorkbookResult:
    """The run recorded in ``run_dir/summary.json``; a clear error when it is missing or not a summary."""
    path = Path(run_dir) / SUMMARY_JSON
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"{path} not found: is {run_dir} a workbook run folder?") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("notebooks"), list):
        raise ValueError(f"{path} is not a workbook summary (no 'notebooks' list)")
    try:
        return WorkbookResult.from_dict(data)
    except TypeError as exc:
        raise ValueError(f"{path} is not a workbook summary: {exc}") from None
