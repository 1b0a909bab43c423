"""Run the workbook's notebooks in order with papermill: discovery, kernels, execution, failures.

Serves ``python -m helpers workbook`` (and ``make workbook``). The notebooks are the product; this is the
harness that proves they run end to end, the same way on a laptop, in CI and on a GPU box. Each notebook gets
the same four parameters (``profile``, ``data_root``, ``seed``, ``run_dir``) injected by papermill, and its last
cell calls :func:`helpers.workbook.metrics.save_metrics`, so a run leaves:

``<run_dir>/NN_name.ipynb`` and ``NN_name.html``
    every notebook as executed (open it to see where and why something failed), and rendered;
``<run_dir>/metrics/NN_name.json``
    what each notebook measured;
``<run_dir>/summary.json``, ``summary.md`` and ``index.html``
    one record of the whole run (:mod:`helpers.workbook.summary`, :mod:`helpers.workbook.report`), rewritten
    after every notebook so that even a crash leaves one behind.

Notebooks depend on the outputs of earlier ones, so the first failure stops the run and the rest are marked
``skipped`` rather than run against missing or stale inputs. Kernels start with the quiet environment of
:mod:`helpers.quiet` (no CUDA probing without a GPU, no TensorFlow start-up lines), and the terminal shows one
progress bar per notebook.

papermill, nbformat and jupyter_client are imported inside the functions that run notebooks: notebooks import
:mod:`helpers.workbook` for ``save_metrics``, and a kernel should not load the machinery it never uses.
"""

from __future__ import annotations

import enum
import importlib.metadata
import os
import platform
import shutil
import sys
import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tqdm import tqdm

from helpers import config, quiet
from helpers.workbook.metrics import load_metrics, metrics_path
from helpers.workbook.report import INDEX_FILE, build_index
from helpers.workbook.summary import (
    SUMMARY_JSON,
    SUMMARY_MD,
    NotebookResult,
    WorkbookResult,
    format_bytes,
    status_line,
    write_summary,
)

if TYPE_CHECKING:  # pragma: no cover - typing only
    import nbformat

__all__ = [
    "KERNEL_NAME",
    "NOTEBOOK_PATTERN",
    "ENVIRONMENT_PACKAGES",
    "discover_notebooks",
    "collect_environment",
    "committed_cell_index",
    "files_written_since",
    "run_workbook",
]

KERNEL_NAME = "python3"
"""The kernel every notebook's metadata names; the environment running the workbook must provide it."""

NOTEBOOK_PATTERN = "[0-9][0-9]_*.ipynb"
"""Glob for workbook notebooks inside ``notebooks/``; the two-digit prefix fixes the run order."""

SCORE_CACHE = "scores"
"""Folder of the run where notebooks 04, 06 and 07 keep training-free detectors' rows (``evaluate(cache=...)``)."""

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

_BASE_PARAMETERS = ("profile", "data_root", "seed", "run_dir")
# Papermill tags: the cell it adds with our parameters, and the markdown cells it adds around a failure.
_INJECTED_TAG = "injected-parameters"
_PARAMETERS_TAG = "parameters"
_ERROR_MARKER_TAG = "papermill-error-cell-tag"


class Default(enum.Enum):
    """Sentinel for "use the profile's value", distinct from ``None`` (which means "no limit")."""

    PROFILE = "profile"


# --------------------------------------------------------------------------------------------------------------
# Discovery
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


def files_written_since(folders: Sequence[str | os.PathLike[str]], since: float) -> dict[Path, int]:
    """``{path: bytes}`` of the regular files under ``folders`` modified at or after ``since`` (epoch seconds).

    A folder inside another is walked once; links are not followed, so a linked dataset is not counted.
    """
    roots = sorted({Path(folder).resolve() for folder in folders if Path(folder).is_dir()}, key=lambda p: len(p.parts))
    kept: list[Path] = []
    for root in roots:
        if not any(root.is_relative_to(outer) for outer in kept):
            kept.append(root)
    written: dict[Path, int] = {}
    for root in kept:
        for folder, _, names in os.walk(root):
            for name in names:
                path = Path(folder) / name
                try:
                    info = path.lstat()
                except OSError:  # removed while we looked: it is no longer part of what the run left
                    continue
                if path.is_symlink() or info.st_mtime < since:
                    continue
                written[path] = info.st_size
    return written


def _measure_writes(result: WorkbookResult, since: float, largest: int = 5) -> None:
    """Record in ``result`` the bytes the run wrote so far, by place, and where most of them went.

    The run's own record (``summary.json``, ``summary.md``, ``index.html``) is left out: it is rewritten right
    after this measure, so counting its previous size would make the total disagree with what the run leaves
    behind (by a byte when a timing gains or loses a digit). It is a few kilobytes.
    """
    places = {"run folder": ("<run>", Path(result.out_dir).resolve()),
              "data root": ("<data>", Path(result.data_root).resolve())}
    run_dir = Path(result.out_dir).resolve()
    record = {run_dir / name for name in (SUMMARY_JSON, SUMMARY_MD, INDEX_FILE)}
    written = {path: size for path, size in files_written_since([root for _, root in places.values()], since).items()
               if path not in record}
    totals = dict.fromkeys(places, 0)
    groups: dict[str, list[int]] = {}
    # the deeper root first, so a data root inside the run folder is reported as the data root
    ordered = sorted(places.items(), key=lambda item: len(item[1][1].parts), reverse=True)
    for path, size in written.items():
        place, (label, root) = next((p, v) for p, v in ordered if path.is_relative_to(v[1]))
        totals[place] += size
        parts = path.relative_to(root).parts
        key = "/".join((label, *parts[:2])) if len(parts) > 2 else "/".join((label, *parts))
        entry = groups.setdefault(key, [0, 0])
        entry[0] += size
        entry[1] += 1
    result.bytes_written = int(sum(totals.values()))
    result.bytes_written_in = totals
    top = sorted(groups.items(), key=lambda item: item[1][0], reverse=True)[:largest]
    result.largest_writes = [{"path": key, "bytes": size, "files": files} for key, (size, files) in top]


def _budget_warning(result: WorkbookResult) -> str | None:
    """A plain sentence when the run wrote more than its profile allows, naming where the bytes went."""
    budget = result.write_budget_bytes
    if budget is None or result.bytes_written <= budget:
        return None
    largest = ", ".join(f"{item['path']} ({format_bytes(item['bytes'])} in {item['files']} file"
                        f"{'s' if item['files'] != 1 else ''})" for item in result.largest_writes[:3])
    return (f"the run wrote {format_bytes(result.bytes_written)}, over the {result.profile} profile's budget of "
            f"{format_bytes(budget)}; most went to {largest}")


class _NotebookProgress:
    """One progress bar per notebook, advanced cell by cell through nbclient's ``on_cell_start`` hook.

    With ``enabled=False`` it prints nothing; where stderr is not a terminal (CI logs) tqdm draws no bar and
    the notebook's status line alone marks its end.
    """

    def __init__(self, enabled: bool, position: int, count: int, source: Path) -> None:
        self.enabled = enabled
        self.bar: Any = None
        if not enabled:
            return
        import nbformat

        try:
            cells = len(nbformat.read(str(source), as_version=4).cells) + 1  # papermill adds the parameters cell
        except Exception:  # noqa: BLE001 - papermill reports an unreadable notebook itself, with its path
            cells = None
        self.bar = tqdm(total=cells, desc=f"[{position}/{count}] {source.stem}", unit="cell", file=sys.stderr,
                        leave=True, dynamic_ncols=True, disable=None)

    def on_cell_start(self, cell: Any = None, cell_index: int = 0, **_: Any) -> None:
        if self.bar is not None:
            self.bar.n = int(cell_index)
            self.bar.refresh()

    def close(self, nb_result: NotebookResult) -> None:
        if not self.enabled:
            return
        if self.bar is not None:
            if nb_result.status == "ok" and self.bar.total is not None:
                self.bar.n = self.bar.total
            self.bar.set_postfix_str(nb_result.status, refresh=True)
            self.bar.close()
        tqdm.write(f"    {status_line(nb_result)}", file=sys.stderr)


def run_workbook(
    *,
    profile: str = "smoke",
    out_dir: str | os.PathLike[str] | None = None,
    notebooks_dir: str | os.PathLike[str] | None = None,
    data_root: str | os.PathLike[str] | None = None,
    seed: int = config.DEFAULT_SEED,
    only: Sequence[str] | None = None,
    cell_timeout: int | None | Default = Default.PROFILE,
    kernel_name: str = KERNEL_NAME,
    extra_parameters: Mapping[str, Any] | None = None,
    progress: bool = True,
    report: bool = True,
) -> WorkbookResult:
    """Execute the workbook's notebooks in order and return (and write) a summary of the run.

    Defaults: ``notebooks_dir`` is ``<checkout>/notebooks``; ``out_dir`` is ``<checkout or cwd>/runs/<profile>``;
    ``data_root`` is :func:`helpers.config.data_root`; ``cell_timeout`` is the profile's ``cell_timeout_s``
    (``None`` means no limit). Every notebook receives ``profile``, ``data_root``, ``seed`` and ``run_dir``
    (absolute paths) plus ``extra_parameters``, and runs with ``notebooks_dir`` as its working directory so
    relative paths behave as they do interactively.

    A notebook fails if it raises, times out, or ends without having called ``save_metrics``; the run then
    stops and later notebooks are ``skipped``. Set-up problems (unknown profile or selection, missing kernel
    or folder) raise before anything runs. Failures inside notebooks never raise: inspect the result.

    After every notebook the summary is rewritten with the bytes the run has written so far (files created or
    changed under ``out_dir`` and the data root); over the profile's ``write_budget_bytes`` the summary gets a
    warning naming the largest files. With ``report`` the executed notebooks are rendered to HTML and
    ``index.html`` is rebuilt (:func:`helpers.workbook.report.build_index`). ``progress`` draws one bar per
    notebook on stderr.
    """
    profile_cfg = config.get_profile(profile)
    timeout: int | None = profile_cfg.cell_timeout_s if isinstance(cell_timeout, Default) else cell_timeout
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

    # Kernels inherit this process's environment: the quiet settings reach every notebook from here.
    quiet.quiet_environment()
    run_dir.mkdir(parents=True, exist_ok=True)
    if only is None:
        # Notebooks 04, 06 and 07 share training-free detectors' rows through this cache (evaluate(cache=...));
        # a whole run scores them afresh, so no row outlives a change to the forensics code, and `--only` reruns
        # reuse the run's rows.
        shutil.rmtree(run_dir / SCORE_CACHE, ignore_errors=True)
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
        write_budget_bytes=profile_cfg.write_budget_bytes,
    )
    run_start = time.perf_counter()
    # Files with a modification time from here on count as written by this run (minus a second of clock
    # granularity on some filesystems).
    written_since = time.time() - 1.0
    note = quiet.device_note()
    if progress and note:
        print(f"workbook: {note}", file=sys.stderr, flush=True)

    def checkpoint(*, final: bool = False) -> None:
        result.wall_seconds = round(time.perf_counter() - run_start, 3)
        _measure_writes(result, written_since)
        if final:
            warning = _budget_warning(result)
            if warning is not None:
                result.warnings.append(warning)
                if progress:
                    print(f"workbook: warning: {warning}", file=sys.stderr, flush=True)
        write_summary(result, run_dir)
        if report and result.notebooks:
            try:
                build_index(run_dir)
            except Exception as exc:  # noqa: BLE001 - a page that cannot be drawn must not lose the run's record
                message = f"index.html not written: {type(exc).__name__}: {exc}"
                if final and message not in result.warnings:
                    result.warnings.append(message)
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
        bar = _NotebookProgress(progress, position, len(notebooks), source)
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
                progress_bar=False,  # papermill's bar counts cells of one notebook; ours is one per notebook
                log_output=False,
                report_mode=False,
                # nbclient options, passed through papermill to the kernel and the execution loop
                extra_arguments=list(quiet.KERNEL_ARGUMENTS),
                on_cell_start=bar.on_cell_start,
            )
        except Exception as exc:  # noqa: BLE001 - any failure of a notebook is recorded, not raised
            nb_result.status = "failed"
            nb_result.error, nb_result.failed_cell, nb_result.executed_cell = _describe_failure(exc, source, output)
        except BaseException as exc:  # Ctrl-C: record it so the summary says where the run stopped
            nb_result.status = "failed"
            nb_result.error, nb_result.failed_cell, nb_result.executed_cell = _describe_failure(exc, source, output)
            nb_result.wall_seconds = round(time.perf_counter() - started, 3)
            bar.close(nb_result)
            result.notebooks.append(nb_result)
            checkpoint(final=True)
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
        bar.close(nb_result)
        result.notebooks.append(nb_result)
        checkpoint()
    checkpoint(final=True)
    return result
