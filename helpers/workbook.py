"""Run the workbook's notebooks in order with papermill and summarise what each one measured.

The notebooks are the product; this module is the harness that proves they run end to end, the same way on a
laptop, in CI and on a GPU box. Each notebook gets the same four parameters (``profile``, ``data_root``,
``seed``, ``run_dir``) injected by papermill, and its last cell calls :func:`save_metrics`, so a run leaves:

``<run_dir>/NN_name.ipynb``
    the executed copy of every notebook (open it to see where and why something failed);
``<run_dir>/metrics/NN_name.json``
    what each notebook measured;
``<run_dir>/summary.json`` and ``<run_dir>/summary.md``
    one record of the whole run, rewritten after every notebook so that even a crash leaves one behind.

Notebooks depend on the outputs of earlier ones, so the first failure stops the run and the rest are marked
``skipped`` rather than run against missing or stale inputs.

This module imports papermill and jupyter_client lazily: notebooks import it for :func:`save_metrics`, and a
notebook kernel should not pay for loading the execution machinery it never uses.
"""

from __future__ import annotations

import argparse
import enum
import importlib.metadata
import json
import math
import os
import platform
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from helpers import config
from helpers.atomic import atomic_write_json, atomic_write_text

if TYPE_CHECKING:  # pragma: no cover - typing only
    import nbformat

__all__ = [
    "KERNEL_NAME",
    "NOTEBOOK_PATTERN",
    "ENVIRONMENT_PACKAGES",
    "NotebookResult",
    "WorkbookResult",
    "discover_notebooks",
    "save_metrics",
    "load_metrics",
    "metrics_path",
    "run_workbook",
    "write_summary",
    "register_cli",
    "RESULTS_TABLE_KEY",
    "render_results_table",
]

KERNEL_NAME = "python3"
"""The kernel every notebook's metadata names; the environment running the workbook must provide it."""

NOTEBOOK_PATTERN = "[0-9][0-9]_*.ipynb"
"""Glob for workbook notebooks inside ``notebooks/``; the two-digit prefix fixes the run order."""

ENVIRONMENT_PACKAGES: tuple[str, ...] = (
    "tensorflow",
    "keras",
    "jax",
    "numpy",
    "pillow",
    "opencv-python-headless",
    "scikit-image",
    "albumentations",
    "papermill",
)
"""Distributions whose versions each summary records, so results can be tied to the stack that made them."""

Status = Literal["ok", "failed", "skipped"]

RESULTS_TABLE_KEY = "results_table"
"""A notebook that records ``{RESULTS_TABLE_KEY: [row, ...]}`` (rows: dicts of column -> value) in its metrics
gets that table at the very end of ``summary.md``, under "Results" (the last such notebook wins): the
evaluation notebook puts the workbook's results, with their baselines, where a reader looks first and last."""

_BASE_PARAMETERS = ("profile", "data_root", "seed", "run_dir")
# Papermill tags: the cell it adds with our parameters, and the markdown cells it adds around a failure.
_INJECTED_TAG = "injected-parameters"
_PARAMETERS_TAG = "parameters"
_ERROR_MARKER_TAG = "papermill-error-cell-tag"


class _Default(enum.Enum):
    """Sentinel for "use the profile's value", distinct from ``None`` (which means "no limit")."""

    PROFILE = "profile"


# --------------------------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------------------------


@dataclass
class NotebookResult:
    """How one notebook went."""

    name: str
    """Notebook stem, e.g. ``"01_datasets"``."""
    status: Status
    wall_seconds: float = 0.0
    metrics: dict[str, Any] = field(default_factory=dict)
    """What the notebook passed to :func:`save_metrics` (empty unless it succeeded)."""
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
    """The record of one workbook run; ``summary.json`` is ``asdict`` of this (plus ``ok``)."""

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

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["ok"] = self.ok
        return data


# --------------------------------------------------------------------------------------------------------------
# Discovery and metrics
# --------------------------------------------------------------------------------------------------------------


def discover_notebooks(notebooks_dir: Path, only: Sequence[str] | None = None) -> list[Path]:
    """The workbook notebooks in ``notebooks_dir``, in run (name) order, optionally narrowed by ``only``.

    ``only`` holds two-digit prefixes (``"01"``; ``"1"`` is read as ``"01"``), stems (``"01_datasets"``) or file
    names. A selection matching nothing raises ``ValueError`` naming what exists, because silently running fewer
    notebooks than asked for would make a green run mean less than it seems.
    """
    notebooks_dir = Path(notebooks_dir)
    if not notebooks_dir.is_dir():
        raise FileNotFoundError(f"notebooks folder not found: {notebooks_dir}")
    found = sorted(
        (p for p in notebooks_dir.glob(NOTEBOOK_PATTERN) if p.is_file() and not p.name.startswith(".")),
        key=lambda p: p.name,
    )
    if only is None:
        return found
    wanted = [str(item).strip() for item in only]
    wanted = [item for item in wanted if item]
    if not wanted:
        raise ValueError("empty notebook selection; give prefixes such as '01' or stems such as '01_datasets'")
    available = ", ".join(p.stem for p in found) or "(none)"
    selected: set[Path] = set()
    for item in wanted:
        key = item[: -len(".ipynb")] if item.endswith(".ipynb") else item
        if key.isdigit() and len(key) == 1:
            key = key.zfill(2)
        if key.isdigit() and len(key) == 2:
            matches = [p for p in found if p.name[:2] == key]
        else:
            matches = [p for p in found if p.stem == key]
        if not matches:
            raise ValueError(f"no notebook matches {item!r} in {notebooks_dir}; available: {available}")
        selected.update(matches)
    return [p for p in found if p in selected]


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
    JSON-serialisable; NumPy scalars and arrays are converted. The file is written atomically, so the runner
    never reads half of it, and keys keep the notebook's order (a results table's columns read as written).
    Returns the path written.
    """
    if not isinstance(metrics, Mapping):
        raise TypeError(f"metrics must be a mapping, got {type(metrics).__name__}")
    path = metrics_path(run_dir, notebook)
    return atomic_write_json(path, {str(key): value for key, value in metrics.items()}, sort_keys=False)


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


# --------------------------------------------------------------------------------------------------------------
# Environment and kernel
# --------------------------------------------------------------------------------------------------------------


def _package_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def collect_environment(kernel_name: str = KERNEL_NAME) -> dict[str, Any]:
    """Python, platform and key package versions of the environment the notebooks run in."""
    env: dict[str, Any] = {
        "python": platform.python_version(),
        "python_executable": sys.executable,
        "platform": platform.platform(),
        "kernel_name": kernel_name,
    }
    env["packages"] = {name: _package_version(name) for name in ENVIRONMENT_PACKAGES}
    return env


def _check_kernel(kernel_name: str) -> None:
    """Fail early, with a fix, if ``kernel_name`` is not installed where Jupyter will look first.

    ``JUPYTER_PREFER_ENV_PATH=1`` makes the running environment's (the venv's) kernelspecs win over user-level
    ones in ``~/.local/share/jupyter``, which may point at some other Python without this project's packages.
    """
    os.environ["JUPYTER_PREFER_ENV_PATH"] = "1"
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        KernelSpecManager().get_kernel_spec(kernel_name)
    except NoSuchKernel:
        raise RuntimeError(
            f"Jupyter kernel {kernel_name!r} not found for {sys.executable}; install ipykernel in this "
            f"environment and register it with: {sys.executable} -m ipykernel install --sys-prefix "
            f"--name {kernel_name}"
        ) from None


# --------------------------------------------------------------------------------------------------------------
# Failures
# --------------------------------------------------------------------------------------------------------------


def _cell_tags(cell: Mapping[str, Any]) -> list[str]:
    metadata = cell.get("metadata") or {}
    return list(metadata.get("tags") or [])


def committed_cell_index(committed: nbformat.NotebookNode, executed_index: int) -> int | None:
    """Map a cell index in papermill's executed notebook back to the notebook as committed.

    Papermill adds an ``injected-parameters`` cell right after the ``parameters`` cell (or at the top, or in
    place of an existing injected cell) and drops stale error-marker cells; this replays those edits. Returns
    ``None`` when ``executed_index`` is the injected cell itself, which has no committed counterpart.
    """
    cells = committed.get("cells", [])
    order: list[int | None] = list(range(len(cells)))
    injected = next((i for i, c in enumerate(cells) if _INJECTED_TAG in _cell_tags(c)), -1)
    params = next((i for i, c in enumerate(cells) if _PARAMETERS_TAG in _cell_tags(c)), -1)
    if injected >= 0:
        order = order[:injected] + [None] + order[injected + 1 :]
    elif params >= 0:
        order = order[: params + 1] + [None] + order[params + 1 :]
    else:
        order = [None, *order]
    order = [i for i in order if i is None or _ERROR_MARKER_TAG not in _cell_tags(cells[i])]
    if 0 <= executed_index < len(order):
        return order[executed_index]
    return None


def _last_started_cell(executed_path: Path) -> int | None:
    """Index (papermill's count) of the last cell that started running, read from the executed notebook.

    Used for failures papermill does not attribute to a cell (timeouts, a dead kernel): execution stops in the
    cell that was running, and only cells that started carry a ``start_time``.
    """
    import nbformat

    try:
        nb = nbformat.read(str(executed_path), as_version=4)
    except Exception:  # noqa: BLE001 - a missing or unreadable output just means "unknown cell"
        return None
    cells = [c for c in nb.cells if _ERROR_MARKER_TAG not in _cell_tags(c)]
    started = [i for i, c in enumerate(cells) if (c.get("metadata", {}).get("papermill") or {}).get("start_time")]
    return started[-1] if started else None


def _one_line(text: str, limit: int = 300) -> str:
    """First non-blank line of ``text``, with "…" marking anything dropped (the notebook has the rest)."""
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    line = lines[0] if lines else ""
    if len(line) > limit:
        return line[: limit - 1] + "…"
    return f"{line} …" if len(lines) > 1 else line


def _describe_failure(exc: BaseException, source: Path, output: Path) -> tuple[str, int | None, int | None]:
    """``(error line, committed cell, executed cell)`` for an exception raised while running a notebook."""
    import nbformat
    from papermill.exceptions import PapermillExecutionError

    executed: int | None
    if isinstance(exc, PapermillExecutionError):
        error = f"{exc.ename}: {_one_line(exc.evalue)}" if exc.evalue else str(exc.ename)
        executed = exc.cell_index
    else:
        message = _one_line(str(exc))
        error = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
        executed = _last_started_cell(output)
    committed: int | None = None
    if executed is not None:
        try:
            committed = committed_cell_index(nbformat.read(str(source), as_version=4), executed)
        except Exception:  # noqa: BLE001 - keep the executed index if the source cannot be re-read
            committed = None
    return error, committed, executed


# --------------------------------------------------------------------------------------------------------------
# Running
# --------------------------------------------------------------------------------------------------------------


def _default_notebooks_dir() -> Path:
    root = config.repo_root()
    if root is None:
        raise FileNotFoundError(
            "cannot find the workbook's notebooks/ folder (helpers is not installed from a checkout); "
            "pass notebooks_dir (CLI: --notebooks DIR)"
        )
    return root / "notebooks"


def _default_out_dir(profile: str) -> Path:
    root = config.repo_root()
    return (root if root is not None else Path.cwd()) / "runs" / profile


def run_workbook(
    *,
    profile: str = "smoke",
    out_dir: str | os.PathLike[str] | None = None,
    notebooks_dir: str | os.PathLike[str] | None = None,
    data_root: str | os.PathLike[str] | None = None,
    seed: int = config.DEFAULT_SEED,
    only: Sequence[str] | None = None,
    cell_timeout: int | None | _Default = _Default.PROFILE,
    kernel_name: str = KERNEL_NAME,
    extra_parameters: Mapping[str, Any] | None = None,
    progress: bool = True,
) -> WorkbookResult:
    """Execute the workbook's notebooks in order and return (and write) a summary of the run.

    Defaults: ``notebooks_dir`` is ``<checkout>/notebooks``; ``out_dir`` is ``<checkout or cwd>/runs/<profile>``;
    ``data_root`` is :func:`helpers.config.data_root`; ``cell_timeout`` is the profile's ``cell_timeout_s``
    (``None`` means no limit). Every notebook receives ``profile``, ``data_root``, ``seed`` and ``run_dir``
    (absolute paths) plus ``extra_parameters``, and runs with ``notebooks_dir`` as its working directory so
    relative paths behave as they do interactively.

    A notebook fails if it raises, times out, or ends without having called :func:`save_metrics`; the run
    then stops and later notebooks are ``skipped``. Set-up problems (unknown profile or selection, missing
    kernel or folder) raise before anything runs. Failures inside notebooks never raise: inspect the result.
    """
    profile_cfg = config.get_profile(profile)
    timeout: int | None = profile_cfg.cell_timeout_s if isinstance(cell_timeout, _Default) else cell_timeout
    if timeout is not None and timeout <= 0:
        timeout = None
    extra = dict(extra_parameters or {})
    clashing = sorted(set(extra) & set(_BASE_PARAMETERS))
    if clashing:
        raise ValueError(f"extra_parameters may not override {', '.join(clashing)}; use the dedicated arguments")

    nb_dir = (Path(notebooks_dir) if notebooks_dir is not None else _default_notebooks_dir()).expanduser().resolve()
    notebooks = discover_notebooks(nb_dir, only)
    if not notebooks:
        raise FileNotFoundError(f"no notebooks matching {NOTEBOOK_PATTERN} in {nb_dir}")
    run_dir = (Path(out_dir) if out_dir is not None else _default_out_dir(profile)).expanduser().resolve()
    data_dir = config.data_root(data_root)

    _check_kernel(kernel_name)
    import papermill

    run_dir.mkdir(parents=True, exist_ok=True)
    parameters: dict[str, Any] = {
        "profile": profile_cfg.name,
        "data_root": str(data_dir),
        "seed": int(seed),
        "run_dir": str(run_dir),
        **extra,
    }
    result = WorkbookResult(
        profile=profile_cfg.name,
        seed=int(seed),
        data_root=str(data_dir),
        out_dir=str(run_dir),
        notebooks=[],
        started=datetime.now().astimezone().isoformat(timespec="seconds"),
        wall_seconds=0.0,
        environment=collect_environment(kernel_name),
        cell_timeout=timeout,
        planned=[p.stem for p in notebooks],
    )
    run_start = time.perf_counter()

    def checkpoint() -> None:
        result.wall_seconds = round(time.perf_counter() - run_start, 3)
        write_summary(result, run_dir)

    checkpoint()
    failed: NotebookResult | None = None
    for position, source in enumerate(notebooks, start=1):
        name = source.stem
        stale = metrics_path(run_dir, name)
        stale.unlink(missing_ok=True)  # old metrics must never make a failed notebook look finished
        if failed is not None:
            result.notebooks.append(NotebookResult(name=name, status="skipped"))
            continue
        output = run_dir / source.name
        if progress:
            print(f"[{position}/{len(notebooks)}] {source.name}", file=sys.stderr, flush=True)
        started = time.perf_counter()
        nb_result = NotebookResult(name=name, status="ok", output=str(output))
        try:
            papermill.execute_notebook(
                str(source),
                str(output),
                parameters=parameters,
                kernel_name=kernel_name,
                execution_timeout=timeout,
                cwd=str(nb_dir),
                progress_bar=progress,
                log_output=False,
                report_mode=False,
            )
        except Exception as exc:  # noqa: BLE001 - any failure of a notebook is recorded, not raised
            nb_result.status = "failed"
            nb_result.error, nb_result.failed_cell, nb_result.executed_cell = _describe_failure(exc, source, output)
        except BaseException as exc:  # Ctrl-C: record it so the summary says where the run stopped
            nb_result.status = "failed"
            nb_result.error, nb_result.failed_cell, nb_result.executed_cell = _describe_failure(exc, source, output)
            nb_result.wall_seconds = round(time.perf_counter() - started, 3)
            result.notebooks.append(nb_result)
            checkpoint()
            raise
        nb_result.wall_seconds = round(time.perf_counter() - started, 3)
        if nb_result.status == "ok":
            try:
                metrics = load_metrics(run_dir, name)
            except ValueError as exc:
                nb_result.status, nb_result.error = "failed", f"ValueError: {exc}"
            else:
                if metrics is None:
                    nb_result.status, nb_result.error = "failed", f"wrote no metrics to {metrics_path(run_dir, name)}"
                else:
                    nb_result.metrics = metrics
        if nb_result.status == "failed":
            failed = nb_result
        result.notebooks.append(nb_result)
        checkpoint()
        if progress:
            print(f"    {_status_line(nb_result)}", file=sys.stderr, flush=True)
    checkpoint()
    return result


# --------------------------------------------------------------------------------------------------------------
# Summaries
# --------------------------------------------------------------------------------------------------------------


def _fmt_scalar(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, float):
        return str(value) if not math.isfinite(value) else f"{value:.4g}"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return value if len(value) <= 120 else value[:119] + "…"
    return _fmt_scalar(json.dumps(value, sort_keys=True))


def _fmt_value(value: Any, max_items: int = 6) -> str:
    if isinstance(value, (list, tuple)):
        items = list(value)
        if len(items) <= max_items:
            shown = [_fmt_value(v, max_items) for v in items]
        else:
            head = [_fmt_value(v, max_items) for v in items[: max_items - 2]]
            shown = [*head, "…", _fmt_value(items[-1], max_items)]
        text = "[" + ", ".join(shown) + "]"
        return text if len(items) <= max_items else f"{text} ({len(items)} items)"
    if isinstance(value, Mapping):
        return _fmt_scalar(json.dumps(value, sort_keys=True))
    return _fmt_scalar(value)


def flatten_metrics(metrics: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """Nested dictionaries as ``(dotted.key, value)`` pairs, in key order."""
    rows: list[tuple[str, Any]] = []
    for key in sorted(metrics, key=str):
        value = metrics[key]
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            rows.extend(flatten_metrics(value, prefix=f"{dotted}."))
        else:
            rows.append((dotted, value))
    return rows


def _note(nb: NotebookResult) -> str:
    if nb.status == "ok":
        count = len(flatten_metrics(nb.metrics))
        return f"{count} metric{'s' if count != 1 else ''}"
    if nb.status == "skipped":
        return "not run: an earlier notebook failed"
    where = f"cell {nb.failed_cell}: " if nb.failed_cell is not None else ""
    return f"{where}{nb.error or 'failed'}"


def _status_line(nb: NotebookResult) -> str:
    return f"{nb.name}: {nb.status} ({nb.wall_seconds:.1f} s) {_note(nb)}".rstrip()


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_summary_markdown(result: WorkbookResult) -> str:
    """The human-readable ``summary.md``: a status table, each notebook's metrics, then the environment."""
    when = result.started.replace("T", " ")
    lines = [f"# Workbook run: profile `{result.profile}`, seed {result.seed}, {when}", ""]
    done = len(result.notebooks)
    planned = len(result.planned) or done
    failure = result.failure
    if result.ok:
        verdict = f"**OK**: {done} of {planned} notebooks succeeded in {result.wall_seconds:.1f} s."
    elif failure is not None:
        cell = f", cell {failure.failed_cell}" if failure.failed_cell is not None else ""
        verdict = f"**FAILED** in `{failure.name}`{cell}: {failure.error}. Executed notebook: `{failure.output}`."
    else:
        verdict = f"**In progress** (or interrupted): {done} of {planned} notebooks finished."
    lines += [verdict, ""]
    timeout = f"{result.cell_timeout} s" if result.cell_timeout is not None else "none"
    lines += [
        f"- data root: `{result.data_root}`",
        f"- run dir: `{result.out_dir}`",
        f"- per-cell timeout: {timeout}",
        "",
        "| notebook | status | wall s | note |",
        "|---|---|---:|---|",
    ]
    for nb in result.notebooks:
        lines.append(f"| {nb.name} | {nb.status} | {nb.wall_seconds:.1f} | {_md_cell(_note(nb))} |")
    finished = {nb.name for nb in result.notebooks}
    for name in result.planned:
        if name not in finished:
            lines.append(f"| {name} | pending | | |")
    lines.append("")
    for nb in result.notebooks:
        if nb.status == "skipped":
            continue
        lines += [f"## {nb.name}", ""]
        if nb.status == "failed":
            cell = f" in cell {nb.failed_cell} (as committed)" if nb.failed_cell is not None else ""
            lines += [f"Failed{cell}: `{nb.error}`", "", f"Executed notebook: `{nb.output}`", ""]
        rows = flatten_metrics({k: v for k, v in nb.metrics.items() if k != RESULTS_TABLE_KEY})
        if RESULTS_TABLE_KEY in nb.metrics:
            lines.append("(results table: see the end of this summary)")
        if rows:
            lines += [f"- `{key}`: {_fmt_value(value)}" for key, value in rows]
        elif nb.status == "ok":
            lines.append("(no metrics)")
        lines.append("")
    lines += ["## Environment", ""]
    env = dict(result.environment)
    packages = env.pop("packages", {}) or {}
    lines += [f"- {key}: `{value}`" for key, value in env.items()]
    lines += [f"- {name}: {version if version is not None else '(not installed)'}" for name, version in packages.items()]
    lines.append("")
    tables = [(nb.name, nb.metrics[RESULTS_TABLE_KEY]) for nb in result.notebooks
              if nb.status == "ok" and isinstance(nb.metrics.get(RESULTS_TABLE_KEY), list)]
    if tables:
        source, table = tables[-1]
        lines += ["## Results", "", f"Recorded by `{source}`.", "", *render_results_table(table), ""]
    return "\n".join(lines)


def render_results_table(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """A markdown table of ``rows`` (columns in first-seen order; floats to 3 decimals; missing cells blank)."""
    columns: list[str] = []
    for row in rows:
        columns += [key for key in row if key not in columns]
    if not columns:
        return ["(empty results table)"]

    def cell(value: Any) -> str:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return ""
        if isinstance(value, float):
            return f"{value:.3f}"
        return _md_cell(str(value))

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row.get(column)) for column in columns) + " |" for row in rows]
    return lines


def write_summary(result: WorkbookResult, out_dir: str | os.PathLike[str] | None = None) -> tuple[Path, Path]:
    """Write ``summary.json`` and ``summary.md`` (atomically) into ``out_dir`` (default: the run's folder)."""
    target = Path(out_dir) if out_dir is not None else Path(result.out_dir)
    json_path = atomic_write_json(target / "summary.json", result.to_dict())
    md_path = atomic_write_text(target / "summary.md", render_summary_markdown(result))
    return json_path, md_path


# --------------------------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------------------------


def format_table(result: WorkbookResult) -> str:
    """A compact plain-text status table for a terminal."""
    width = max([len("notebook"), *(len(nb.name) for nb in result.notebooks)])
    rows = [f"{'notebook':<{width}}  {'status':<7}  {'wall s':>7}  note"]
    for nb in result.notebooks:
        note = _note(nb)
        note = note if len(note) <= 100 else note[:99] + "…"
        rows.append(f"{nb.name:<{width}}  {nb.status:<7}  {nb.wall_seconds:>7.1f}  {note}")
    return "\n".join(rows)


def _split_only(text: str | None) -> list[str] | None:
    if text is None:
        return None
    return [item.strip() for item in text.split(",") if item.strip()]


def _cli_workbook(args: argparse.Namespace) -> int:
    """The ``workbook`` subcommand: 0 when every notebook succeeded, 1 when one failed, 2 on a set-up error."""
    cell_timeout: int | None | _Default = _Default.PROFILE
    if args.cell_timeout is not None:
        cell_timeout = args.cell_timeout if args.cell_timeout > 0 else None
    try:
        result = run_workbook(
            profile=args.profile,
            out_dir=args.out,
            notebooks_dir=args.notebooks,
            data_root=args.data_root,
            seed=args.seed,
            only=_split_only(args.only),
            cell_timeout=cell_timeout,
        )
    except (ValueError, FileNotFoundError, RuntimeError) as exc:
        print(f"workbook: error: {exc}", file=sys.stderr)
        return 2
    print(format_table(result))
    print(f"summary: {Path(result.out_dir) / 'summary.md'}")
    failure = result.failure
    if failure is None and result.ok:
        return 0
    if failure is not None:
        cell = f", cell {failure.failed_cell}" if failure.failed_cell is not None else ""
        print(f"workbook failed: {failure.name}.ipynb{cell}: {failure.error}", file=sys.stderr)
        print(f"open the executed notebook: {failure.output}", file=sys.stderr)
    else:
        print("workbook failed: not every notebook ran", file=sys.stderr)
    return 1


def register_cli(subparsers: Any) -> None:
    """Add the ``workbook`` subcommand to an ``argparse`` subparsers object (``args.func(args)`` runs it)."""
    parser = subparsers.add_parser(
        "workbook",
        help="run the notebooks in order with papermill and summarise their metrics",
        description=(
            "Execute notebooks/NN_*.ipynb in order with papermill. Executed copies, metrics and "
            "summary.json/summary.md go to the output folder. Stops at the first failing notebook."
        ),
    )
    parser.add_argument("--profile", choices=sorted(config.PROFILES), default="smoke", help="run profile (default: smoke)")
    parser.add_argument("--only", metavar="01,02", default=None, help="comma-separated notebook prefixes or stems to run")
    parser.add_argument("--out", metavar="DIR", default=None, help="output folder (default: runs/<profile>)")
    parser.add_argument("--data-root", metavar="DIR", default=None, help="dataset folder (default: $FORGERY_DATA or data/)")
    parser.add_argument("--seed", metavar="N", type=int, default=config.DEFAULT_SEED, help="random seed passed to every notebook")
    parser.add_argument(
        "--cell-timeout",
        metavar="SECONDS",
        type=int,
        default=None,
        help="per-cell time limit (default: the profile's; 0: no limit)",
    )
    parser.add_argument("--notebooks", metavar="DIR", default=None, help="notebooks folder (default: <checkout>/notebooks)")
    parser.set_defaults(func=_cli_workbook)
