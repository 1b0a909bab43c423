"""Tests of the papermill runner (helpers.workbook) on tiny throwaway notebooks.

These start real kernels (the environment's "python3" ipykernel), about 2-3 s each, so the notebooks are
minimal and each test runs as few of them as it can.
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import io
import json
import math
import os
import sys
from pathlib import Path

import nbformat
import pytest
from PIL import Image

from helpers import config, workbook
from helpers.quiet import INLINE_FIGURE_DPI
from helpers.workbook import (
    KERNEL_NAME,
    MAX_HEADLINES,
    NotebookResult,
    WorkbookResult,
    committed_cell_index,
    discover_notebooks,
    files_written_since,
    flatten_metrics,
    headline_figures,
    load_metrics,
    render_summary_markdown,
    run_workbook,
    save_metrics,
)

PARAMETERS = 'profile = "smoke"\ndata_root = "."\nseed = 0\nrun_dir = "."'


def _parameters_cell() -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell(PARAMETERS)
    cell.metadata["tags"] = ["parameters"]
    return cell


def _metrics_cell(name: str, extra: str = "") -> nbformat.NotebookNode:
    return nbformat.v4.new_code_cell(
        "from helpers.workbook import save_metrics\n"
        f'save_metrics(run_dir, "{name}", {{"answer": 42, "nested": {{"x": 1.5}}, '
        f'"seed": seed, "profile": profile, "data_root": data_root{extra}}})'
    )


def write_notebook(folder: Path, name: str, cells: list[nbformat.NotebookNode]) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": KERNEL_NAME, "display_name": "Python 3", "language": "python"}
    nb.cells = cells
    path = folder / f"{name}.ipynb"
    nbformat.write(nb, str(path))
    return path


def ok_notebook(folder: Path, name: str) -> Path:
    return write_notebook(folder, name, [_parameters_cell(), _metrics_cell(name)])


@pytest.fixture
def nb_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "notebooks"
    folder.mkdir()
    return folder


def _summary(out: Path) -> dict:
    return json.loads((out / "summary.json").read_text(encoding="utf-8"))


# ----------------------------------------------------------------------------------------------------------------
# Without kernels
# ----------------------------------------------------------------------------------------------------------------


def test_discover_notebooks_orders_and_filters(nb_dir: Path) -> None:
    for name in ["02_b", "01_a", "10_c"]:
        ok_notebook(nb_dir, name)
    (nb_dir / "README.ipynb").write_text("{}")
    (nb_dir / "1_bad.ipynb").write_text("{}")
    (nb_dir / "03_notes.txt").write_text("")
    (nb_dir / ".ipynb_checkpoints").mkdir()
    (nb_dir / ".ipynb_checkpoints" / "01_a-checkpoint.ipynb").write_text("{}")

    assert [p.name for p in discover_notebooks(nb_dir)] == ["01_a.ipynb", "02_b.ipynb", "10_c.ipynb"]
    assert [p.stem for p in discover_notebooks(nb_dir, ["10", "01"])] == ["01_a", "10_c"]
    assert [p.stem for p in discover_notebooks(nb_dir, ["02_b"])] == ["02_b"]
    assert [p.stem for p in discover_notebooks(nb_dir, ["2", "02_b.ipynb"])] == ["02_b"]

    with pytest.raises(ValueError, match=r"'07'.*available: 01_a, 02_b, 10_c"):
        discover_notebooks(nb_dir, ["01", "07"])
    with pytest.raises(ValueError, match="empty"):
        discover_notebooks(nb_dir, [])
    with pytest.raises(FileNotFoundError):
        discover_notebooks(nb_dir / "missing")


def test_save_and_load_metrics_roundtrip(tmp_path: Path) -> None:
    import numpy as np
    path = save_metrics(tmp_path, "01_datasets", {"acc": np.float32(0.5), "n": np.int64(3), "arr": np.arange(3)})
    assert path == tmp_path / "metrics" / "01_datasets.json"
    assert load_metrics(tmp_path, "01_datasets") == {"acc": 0.5, "n": 3, "arr": [0, 1, 2]}
    save_metrics(tmp_path, "01_datasets", {"auc": float("nan"), "per": {"x": np.float32("inf")}, "v": [1.0, math.nan]})
    assert "NaN" not in path.read_text() and "Infinity" not in path.read_text()
    assert load_metrics(tmp_path, "01_datasets") == {"auc": None, "per": {"x": None}, "v": [1.0, None]}
    assert load_metrics(tmp_path, "02_missing") is None
    assert save_metrics(tmp_path, "01_datasets.ipynb", {"a": 1}) == path
    with pytest.raises(TypeError):
        save_metrics(tmp_path, "01_datasets", {"bad": object()})
    assert load_metrics(tmp_path, "01_datasets") == {"a": 1}  # a failed write leaves the old file intact
    with pytest.raises(ValueError):
        save_metrics(tmp_path, "../escape", {})
    (tmp_path / "metrics" / "03_broken.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="not a JSON object"):
        load_metrics(tmp_path, "03_broken")


def test_committed_cell_index_replays_papermill_injection() -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# t"), _parameters_cell(), nbformat.v4.new_code_cell("x")]
    # executed: 0 markdown, 1 parameters, 2 injected, 3 "x"
    assert [committed_cell_index(nb, i) for i in range(4)] == [0, 1, None, 2]
    no_params = nbformat.v4.new_notebook()
    no_params.cells = [nbformat.v4.new_code_cell("a"), nbformat.v4.new_code_cell("b")]
    assert [committed_cell_index(no_params, i) for i in range(3)] == [None, 0, 1]
    already = nbformat.v4.new_notebook()
    injected = nbformat.v4.new_code_cell("seed = 1")
    injected.metadata["tags"] = ["injected-parameters"]
    already.cells = [_parameters_cell(), injected, nbformat.v4.new_code_cell("c")]
    assert [committed_cell_index(already, i) for i in range(3)] == [0, None, 2]


def _result(notebooks: list[NotebookResult], **extra) -> WorkbookResult:
    values = dict(profile="smoke", seed=3, data_root="/data", out_dir="/runs/smoke", notebooks=notebooks,
                  started="2024-01-02T03:04:05+00:00", wall_seconds=2.0,
                  environment={"python": "3.11", "packages": {"numpy": "2.0", "jax": None}},
                  planned=[nb.name for nb in notebooks])
    values.update(extra)
    return WorkbookResult(**values)


def test_summary_markdown_is_one_page_of_headline_figures() -> None:
    assert flatten_metrics({"b": {"y": 2, "x": {"z": 1}}, "a": 1}) == [("a", 1), ("b.x.z", 1), ("b.y", 2)]
    many = {f"m{i:02d}": {"test": {"roc_auc": i / 100}, "loss": 1.0, "curve": list(range(50))} for i in range(30)}
    result = _result(
        [
            NotebookResult("01_a", "ok", 1.25, {"loss": 0.123456789, "hist": list(range(50)), "n": {"k": 2}}),
            NotebookResult("05_classifier", "ok", 3.0, {"device": "cpu", "best_by_val_auc": "m03", "models": many}),
            NotebookResult("06_b", "ok", 2.0, {"headline": {"f1": 0.5, "per": {"x": 1}}, "noise": 7}),
            NotebookResult("07_c", "failed", 0.5, {}, "/runs/smoke/07_c.ipynb", "ValueError: a|b", 4, 5),
            NotebookResult("08_d", "skipped"),
        ],
        bytes_written=12_345_678, bytes_written_in={"run folder": 2_345_678, "data root": 10_000_000},
        write_budget_bytes=100_000_000,
    )
    md = render_summary_markdown(result)
    assert "profile `smoke`, seed 3" in md
    assert "wrote 12.3 MB (run folder 2.3 MB; data root 10.0 MB; budget 100.0 MB)" in md
    assert "| 01_a | ok | 1.2 | loss 0.1235 |" in md  # long lists and nested values stay in summary.json
    assert "| 06_b | ok | 2.0 | f1 0.5 · per.x 1 |" in md  # the notebook's own headline wins
    assert "| 07_c | failed | 0.5 | cell 4: ValueError: a\\|b |" in md
    assert "| 08_d | skipped |" in md and "07_c.ipynb" in md
    row = next(line for line in md.splitlines() if line.startswith("| 05_classifier |"))
    assert row.count(" · ") == MAX_HEADLINES - 1  # 2 named keys + 10 of the 30 models' test AUCs, no more
    assert "device cpu" in row and "best_by_val_auc m03" in row
    assert "jax (not installed)" in md
    assert len(md.splitlines()) < 40  # one page, however many metrics the notebooks record
    assert not result.ok and result.failure is result.notebooks[3]


def test_headline_figures_follow_the_documented_keys() -> None:
    metrics = {"device": "cpu", "saved_model": "a", "best_by_val_auc": "b",
               "models": {"a": {"test": {"roc_auc": 0.7, "f1": 0.1}, "fixtures": {"roc_auc": 0.6}},
                          "b": {"test": {"roc_auc": 0.8}}}}
    assert headline_figures("05_classifier", metrics) == [
        ("device", "cpu"), ("best_by_val_auc", "b"), ("saved_model", "a"), ("models.a.test.roc_auc", 0.7),
        ("models.b.test.roc_auc", 0.8), ("models.a.fixtures.roc_auc", 0.6)]
    assert headline_figures("05_classifier", {**metrics, "headline": {"auc": 0.9}}) == [("auc", 0.9)]
    table = {"results_table": [{"a": 1}], "images": 3}
    assert headline_figures("99_new", table) == [("images", 3)]
    assert headline_figures("99_new", {f"k{i}": i for i in range(20)}, limit=5) == [(f"k{i}", i) for i in range(5)]


def test_summary_round_trips_through_json(tmp_path: Path) -> None:
    result = _result([NotebookResult("01_a", "ok", 1.5, {"x": 1}, "/o/01_a.ipynb")], bytes_written=10,
                     warnings=["too big"], largest_writes=[{"path": "a.bin", "bytes": 10}])
    workbook.write_summary(result, tmp_path)
    data = _summary(tmp_path)
    assert data["notebook_seconds"] == 1.5 and data["ok"] is True and data["bytes_written"] == 10
    back = workbook.read_summary(tmp_path)
    assert back.to_dict() == result.to_dict()
    (tmp_path / "summary.json").write_text("[]")
    with pytest.raises(ValueError, match="not a workbook summary"):
        workbook.read_summary(tmp_path)
    with pytest.raises(FileNotFoundError, match="workbook run folder"):
        workbook.read_summary(tmp_path / "nowhere")


def test_files_written_since_counts_new_files_once(tmp_path: Path) -> None:
    run = tmp_path / "run"
    (run / "models").mkdir(parents=True)
    (run / "models" / "model.keras").write_bytes(b"x" * 1000)
    old = run / "old.txt"
    old.write_bytes(b"y" * 50)
    os.utime(old, (1_000_000, 1_000_000))
    (run / "link").symlink_to(run / "models" / "model.keras")
    data = run / "data"  # a data root inside the run folder is not counted twice
    data.mkdir()
    (data / "image.png").write_bytes(b"z" * 10)
    written = files_written_since([run, data, tmp_path / "missing"], since=2_000_000)
    assert {path.relative_to(run).as_posix(): size for path, size in written.items()} == {
        "models/model.keras": 1000, "data/image.png": 10}


# ----------------------------------------------------------------------------------------------------------------
# With kernels
# ----------------------------------------------------------------------------------------------------------------


def test_two_notebooks_succeed_and_receive_parameters(
    nb_dir: Path, tmp_path: Path, fake_tensorflow, monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    ok_notebook(nb_dir, "01_ok")
    # The second notebook reads a file relative to its working directory (the notebooks folder) and the first
    # notebook's metrics, as real notebooks do, and imports "tensorflow" (a stand-in with its start-up lines)
    # before anything from helpers, as notebook 06 imports keras first.
    (nb_dir / "input.txt").write_text("hello")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(fake_tensorflow.path), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.setitem(config.PROFILES, "smoke", dataclasses.replace(config.PROFILES["smoke"], write_budget_bytes=1000))
    write_notebook(
        nb_dir,
        "02_ok",
        [
            _parameters_cell(),
            nbformat.v4.new_code_cell("import tensorflow"),
            nbformat.v4.new_code_cell(  # a cache in the data root, as notebook 04 writes one
                "from pathlib import Path\ncache = Path(data_root, 'features', 'ela')\n"
                "cache.mkdir(parents=True)\nfor n in range(2):\n    (cache / f'{n}.npy').write_bytes(bytes(400_000))"
            ),
            nbformat.v4.new_code_cell(
                "import sys\nfrom helpers.workbook import load_metrics\ntext = open('input.txt').read()"
            ),
            nbformat.v4.new_code_cell(  # a 4 x 2 inch figure, shown inline
                "import matplotlib.pyplot as plt\nimport numpy as np\nfigure = plt.figure(figsize=(4, 2))\n"
                "axes = figure.add_axes([0, 0, 1, 1])\naxes.imshow(np.zeros((2, 4)))\naxes.axis('off')\nplt.show()"
            ),
            _metrics_cell(
                "02_ok",
                ', "text": text, "previous": load_metrics(run_dir, "01_ok")["answer"], "prefix": sys.prefix',
            ),
        ],
    )
    out = tmp_path / "run"
    result = run_workbook(notebooks_dir=nb_dir, out_dir=out, data_root=tmp_path / "data", seed=7, progress=True)

    assert result.ok, result.notebooks
    terminal = capfd.readouterr().err
    assert "01_ok: ok (" in terminal and "02_ok: ok (" in terminal, terminal
    for noise in (*fake_tensorflow.noise, "IPKernelApp", "Executing"):  # "Executing": papermill's per-cell bar
        assert noise not in terminal, terminal
    streams = "".join(output.get("text", "") for cell in nbformat.read(str(out / "02_ok.ipynb"), as_version=4).cells
                      if cell.cell_type == "code" for output in cell.outputs)
    assert fake_tensorflow.message in streams  # what is not noise still shows, in the notebook
    shown = [output["data"]["image/png"] for cell in nbformat.read(str(out / "02_ok.ipynb"), as_version=4).cells
             if cell.cell_type == "code" for output in cell.outputs if "image/png" in output.get("data", {})]
    (figure,) = shown
    width = Image.open(io.BytesIO(base64.b64decode(figure))).width
    # 4 inches at the workbook's 72 dpi (plus the tight box's padding), not at matplotlib's 100
    assert 4 * INLINE_FIGURE_DPI <= width <= 4 * INLINE_FIGURE_DPI + 20, width
    assert not any(noise in streams for noise in fake_tensorflow.noise), streams
    assert [(nb.name, nb.status) for nb in result.notebooks] == [("01_ok", "ok"), ("02_ok", "ok")]
    summary = _summary(out)
    assert summary["ok"] is True
    assert summary["seed"] == 7 and summary["profile"] == "smoke"
    assert summary["cell_timeout"] == 1200  # the smoke profile's limit
    first, second = summary["notebooks"]
    assert first["metrics"] == {
        "answer": 42,
        "nested": {"x": 1.5},
        "seed": 7,
        "profile": "smoke",
        "data_root": str((tmp_path / "data").resolve()),
    }
    assert second["metrics"]["text"] == "hello" and second["metrics"]["previous"] == 42
    assert second["metrics"]["prefix"] == sys.prefix  # the kernel runs in this environment, not a user-level one
    assert all(nb["status"] == "ok" and nb["error"] is None and nb["wall_seconds"] > 0 for nb in summary["notebooks"])
    assert Path(first["output"]) == out.resolve() / "01_ok.ipynb" and Path(first["output"]).is_file()
    env = summary["environment"]
    assert env["packages"]["papermill"] and "numpy" in env["packages"] and "jax" in env["packages"]
    assert summary["notebook_seconds"] == pytest.approx(sum(nb["wall_seconds"] for nb in summary["notebooks"]))
    rendered = (out / "02_ok.ipynb").stat().st_size + (out / "02_ok.html").stat().st_size
    assert summary["bytes_written"] == sum(summary["bytes_written_in"].values()) >= rendered
    assert summary["bytes_written_in"]["data root"] == 800_000
    # exactly what the run left in its folder, less its own record, which is rewritten after the measure
    record = {"summary.json", "summary.md", "index.html"}
    left = sum(p.stat().st_size for p in out.rglob("*") if p.is_file() and p.relative_to(out).as_posix() not in record)
    assert summary["bytes_written_in"]["run folder"] == left
    assert summary["write_budget_bytes"] == 1000
    (warning,) = summary["warnings"]
    assert "over the smoke profile's budget of 1.0 kB; most went to <data>/features/ela (800.0 kB in 2 files), " \
           "<run>/0" in warning
    md = (out / "summary.md").read_text(encoding="utf-8")
    assert "seed 7" in md and "| 01_ok | ok |" in md and "answer 42 · seed 7 · profile smoke" in md
    assert "**Warning:** the run wrote" in md
    index = (out / "index.html").read_text(encoding="utf-8")
    assert "href='01_ok.html'" in index and "href='02_ok.html'" in index
    assert fake_tensorflow.message in (out / "02_ok.html").read_text(encoding="utf-8")


def test_failing_notebook_stops_the_run(nb_dir: Path, tmp_path: Path) -> None:
    ok_notebook(nb_dir, "01_ok")
    failing = write_notebook(
        nb_dir,
        "02_fail",
        [
            _parameters_cell(),
            nbformat.v4.new_markdown_cell("Markdown cells count too."),
            nbformat.v4.new_code_cell('raise ValueError("boom")'),
            _metrics_cell("02_fail"),
        ],
    )
    ok_notebook(nb_dir, "03_later")
    out = tmp_path / "run"
    save_metrics(out, "03_later", {"stale": True})

    result = run_workbook(notebooks_dir=nb_dir, out_dir=out, progress=False)

    assert not result.ok
    statuses = [(nb.name, nb.status) for nb in result.notebooks]
    assert statuses == [("01_ok", "ok"), ("02_fail", "failed"), ("03_later", "skipped")]
    failed = result.notebooks[1]
    assert failed.error == "ValueError: boom"
    assert failed.failed_cell == 2 and failed.executed_cell == 3
    assert "boom" in nbformat.read(str(failing), as_version=4).cells[failed.failed_cell].source
    assert Path(failed.output).is_file() and failed.metrics == {}
    assert load_metrics(out, "03_later") is None  # a skipped notebook keeps no metrics from an older run

    summary = _summary(out)
    assert summary["ok"] is False
    assert [nb["status"] for nb in summary["notebooks"]] == ["ok", "failed", "skipped"]
    assert summary["notebooks"][1]["failed_cell"] == 2
    md = (out / "summary.md").read_text(encoding="utf-8")
    assert "FAILED" in md and "02_fail" in md and "cell 2: ValueError: boom" in md
    assert "| 03_later | skipped |" in md


def test_cli_reports_failure(nb_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_notebook(
        nb_dir,
        "01_fail",
        [_parameters_cell(), nbformat.v4.new_code_cell("x = 1"), nbformat.v4.new_code_cell("1 / 0")],
    )
    parser = argparse.ArgumentParser(prog="python -m helpers")
    sub = parser.add_subparsers(dest="command", required=True)
    workbook.register_cli(sub)
    out = tmp_path / "cli-run"
    args = parser.parse_args(
        ["workbook", "--notebooks", str(nb_dir), "--out", str(out), "--seed", "3", "--cell-timeout", "60"]
    )
    assert args.profile == "smoke" and args.only is None

    code = args.func(args)

    captured = capsys.readouterr()
    assert code == 1
    assert "workbook failed: 01_fail.ipynb, cell 2: ZeroDivisionError: division by zero" in captured.err
    assert str(out.resolve() / "01_fail.ipynb") in captured.err
    assert "01_fail" in captured.out and "failed" in captured.out
    summary = _summary(out)
    assert summary["seed"] == 3 and summary["cell_timeout"] == 60

    bad = parser.parse_args(["workbook", "--notebooks", str(nb_dir), "--out", str(out), "--only", "09"])
    assert bad.func(bad) == 2
    assert "available: 01_fail" in capsys.readouterr().err


def test_missing_metrics_fail_and_stale_metrics_do_not_count(nb_dir: Path, tmp_path: Path) -> None:
    write_notebook(nb_dir, "01_silent", [_parameters_cell(), nbformat.v4.new_code_cell("x = 1")])
    out = tmp_path / "run"
    stale = save_metrics(out, "01_silent", {"from": "an older run"})

    result = run_workbook(notebooks_dir=nb_dir, out_dir=out, progress=False)

    (nb,) = result.notebooks
    assert nb.status == "failed" and not result.ok
    assert nb.error == f"wrote no metrics to {out.resolve() / 'metrics' / '01_silent.json'}"
    assert nb.failed_cell is None and nb.metrics == {}
    assert not stale.exists()
    assert _summary(out)["notebooks"][0]["status"] == "failed"


def test_only_runs_the_selection(nb_dir: Path, tmp_path: Path) -> None:
    ok_notebook(nb_dir, "01_first")
    ok_notebook(nb_dir, "02_second")
    out = tmp_path / "run"

    with pytest.raises(ValueError, match="available: 01_first, 02_second"):
        run_workbook(notebooks_dir=nb_dir, out_dir=out, only=["03"], progress=False)
    assert not (out / "summary.json").exists()  # set-up errors happen before anything runs

    result = run_workbook(notebooks_dir=nb_dir, out_dir=out, only=["02"], progress=False)
    assert result.ok and [nb.name for nb in result.notebooks] == ["02_second"]
    assert _summary(out)["planned"] == ["02_second"]
    assert not (out / "01_first.ipynb").exists()


def test_cell_timeout_fails_the_notebook(nb_dir: Path, tmp_path: Path) -> None:
    write_notebook(
        nb_dir,
        "01_slow",
        [_parameters_cell(), nbformat.v4.new_code_cell("import time\ntime.sleep(30)"), _metrics_cell("01_slow")],
    )
    ok_notebook(nb_dir, "02_after")
    out = tmp_path / "run"

    result = run_workbook(notebooks_dir=nb_dir, out_dir=out, cell_timeout=3, progress=False)

    slow, after = result.notebooks
    assert slow.status == "failed" and after.status == "skipped"
    assert slow.error is not None and "timed out" in slow.error.lower()
    assert slow.failed_cell == 1
    assert slow.wall_seconds < 25
    assert _summary(out)["cell_timeout"] == 3


def test_unknown_kernel_is_a_clear_error(nb_dir: Path, tmp_path: Path) -> None:
    ok_notebook(nb_dir, "01_ok")
    with pytest.raises(RuntimeError, match="no-such-kernel.*ipykernel install"):
        run_workbook(notebooks_dir=nb_dir, out_dir=tmp_path / "run", kernel_name="no-such-kernel", progress=False)


def test_extra_parameters_may_not_override_base_ones(nb_dir: Path, tmp_path: Path) -> None:
    ok_notebook(nb_dir, "01_ok")
    with pytest.raises(ValueError, match="seed"):
        run_workbook(notebooks_dir=nb_dir, out_dir=tmp_path / "run", extra_parameters={"seed": 1}, progress=False)


def test_summary_ends_with_the_last_results_table() -> None:
    from helpers.workbook import NotebookResult, WorkbookResult, render_summary_markdown

    table = [{"dataset": "fixtures", "model": "mask", "pixel F1": 0.41234, "note": "a|b"},
             {"dataset": "fixtures", "model": "all tampered", "pixel F1": 0.3, "AUC": float("nan")}]
    result = WorkbookResult(
        profile="smoke", seed=0, data_root="/d", out_dir="/o",
        notebooks=[NotebookResult(name="07_x", status="ok", wall_seconds=1.0, metrics={"results_table": table, "n": 2},
                                  output="/o/07_x.ipynb", error=None, failed_cell=None)],
        started="2026-01-01T00:00:00", wall_seconds=1.0, environment={},
    )
    text = render_summary_markdown(result)
    tail = text.rstrip().splitlines()[-4:]
    assert tail[0] == "| dataset | model | pixel F1 | note | AUC |"
    assert tail[2] == "| fixtures | mask | 0.412 | a\\|b |  |"
    assert tail[3] == "| fixtures | all tampered | 0.300 |  |  |"
    assert "| 07_x | ok | 1.0 | n 2 |" in text  # the table is not a headline figure: it has its own section
