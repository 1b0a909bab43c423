"""The prepared GPU check, run on a CPU: benchmarks/gpu/run.sh end to end, and the wheel plan of build_wheels.sh.

run.sh is what a GPU machine will run with a budget and no network; here it runs the smallest notebook with
the smoke profile under JAX on the CPU (FORGERY_GPU_NOTEBOOKS, FORGERY_GPU_PROFILE), so a broken step shows up
before any GPU time is spent on it. The wheel plan (benchmarks/gpu/wheel_plan.py) is checked on a hand-made pip
report: what it ships, what it leaves to the machine, and what Python 3.12 needs beyond the report.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
RUN_SH = REPO / "benchmarks" / "gpu" / "run.sh"
WHEEL_PLAN = REPO / "benchmarks" / "gpu" / "wheel_plan.py"

needs_jax = pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="jax is not installed")


def _run(args: list[str], tmp_path: Path, timeout: float = 900, **extra: str) -> subprocess.CompletedProcess:
    """run.sh with this interpreter, on the CPU, with the data, kernels and home under ``tmp_path``."""
    env = {
        **os.environ,
        "PYTHON": sys.executable,
        "FORGERY_GPU_NOTEBOOKS": "01",
        "FORGERY_GPU_PROFILE": "smoke",
        "FORGERY_GPU_REQUIRE_GPU": "0",
        "FORGERY_GPU_WHEELS": str(tmp_path / "no-wheels"),
        "FORGERY_DATA": str(tmp_path / "data"),
        "HOME": str(tmp_path / "home"),
        "JAX_PLATFORMS": "cpu",
        "CUDA_VISIBLE_DEVICES": "",
        "OMP_NUM_THREADS": "1",
        **extra,
    }
    env.pop("FORGERY_TIME_BUDGET_S", None)
    return subprocess.run(["bash", str(RUN_SH), *args], env=env, capture_output=True, text=True, timeout=timeout,
                          cwd=tmp_path)


@pytest.mark.parametrize("args", [[], ["abc"], ["0"], ["-2"], ["1e3"], ["5", "out", "extra"]])
def test_bad_budget_is_refused_before_anything_runs(args: list[str], tmp_path: Path) -> None:
    done = _run(args, tmp_path, timeout=60)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "usage: benchmarks/gpu/run.sh BUDGET_MINUTES [OUT]" in done.stderr
    if args and len(args) == 1:
        assert "BUDGET_MINUTES must be a positive number of minutes" in done.stderr and repr(args[0]) in done.stderr
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob("runs")), "nothing may be written"


@pytest.mark.slow
@needs_jax
def test_one_notebook_on_the_cpu_leaves_notebook_summary_metrics_and_log(tmp_path: Path) -> None:
    out = tmp_path / "out"
    done = _run(["1", str(out)], tmp_path)
    log = (out / "run.log").read_text(encoding="utf-8") if (out / "run.log").is_file() else "(no run.log)"
    assert done.returncode == 0, f"exit {done.returncode}\n{log[-6000:]}\n{done.stderr[-3000:]}"
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["ok"] and summary["profile"] == "smoke" and summary["planned"] == ["01_datasets"]
    assert (out / "01_datasets.ipynb").is_file() and (out / "summary.md").is_file()
    assert json.loads((out / "metrics" / "01_datasets.json").read_text(encoding="utf-8"))
    executed = json.loads((out / "01_datasets.ipynb").read_text(encoding="utf-8"))
    injected = [c for c in executed["cells"] if "injected-parameters" in c["metadata"].get("tags", [])]
    assert injected and "profile = \"smoke\"" in "".join(injected[0]["source"])
    for line in ("FORGERY_TIME_BUDGET_S=60", "KERAS_BACKEND=jax", "step wheels: skipped", "step kernel: ok",
                 "keras 3", "backend jax", "step imports: ok", "step workbook: ok", "OK: results in"):
        assert line in log, f"run.log lacks {line!r}"
    assert not (tmp_path / "home" / ".local" / "share" / "jupyter").exists(), "the kernel went into the user's home"
    assert (tmp_path / "data" / "synthetic").is_dir(), "FORGERY_DATA did not reach the notebook"


def _wheel(folder: Path, name: str = "gpu_probe", version: str = "1.0") -> Path:
    """A minimal pure-Python wheel holding one module that records it was imported."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}-{version}-py3-none-any.whl"
    info = f"{name}-{version}.dist-info"
    files = {
        f"{name}/__init__.py": "IMPORTED = True\n",
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    with zipfile.ZipFile(path, "w") as archive:
        for member, text in files.items():
            data = text.encode()
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            archive.writestr(member, data)
            record.append(f"{member},sha256={digest},{len(data)}")
        archive.writestr(f"{info}/RECORD", "\n".join([*record, f"{info}/RECORD,,"]) + "\n")
    (folder / ".left-out.txt").write_text("# what the machine has\nnumpy\n", encoding="utf-8")
    return path


@pytest.mark.slow
@needs_jax
def test_hard_limit_interrupts_the_workbook_and_still_collects(tmp_path: Path) -> None:
    """Wheels from FORGERY_GPU_WHEELS installed on PYTHONPATH; the workbook interrupted at the hard limit, the
    summary it wrote at the start still collected, the exit status saying why."""
    out, site = tmp_path / "out", tmp_path / "site"
    _wheel(tmp_path / "wheels")
    # 01 then 06: under a one-minute budget notebook 06 alone trains its forensic network for 48 s, so the
    # pair cannot finish inside 40 s on any machine, however fast (01 alone did, on an idle CI runner).
    done = _run(["1", str(out)], tmp_path, FORGERY_GPU_WHEELS=str(tmp_path / "wheels"), FORGERY_GPU_SITE=str(site),
                FORGERY_GPU_HARD_LIMIT_S="40", FORGERY_GPU_NOTEBOOKS="01,06")
    log = (out / "run.log").read_text(encoding="utf-8")
    assert done.returncode == 124, f"exit {done.returncode}\n{log[-6000:]}"
    assert (site / "gpu_probe" / "__init__.py").is_file(), "the wheel was not installed into FORGERY_GPU_SITE"
    assert "installed 1 wheels into" in log and "left to the machine: numpy" in log
    assert f"PYTHONPATH={REPO}:{site}" in log, "the checkout must come first, then the wheels"
    assert "hard limit of 40 s" in log and "FAILED at step workbook" in log
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["planned"] == ["01_datasets", "06_mask_model"] and not summary["ok"]


# --------------------------------------------------------------------------------------------------------------
# build_wheels.sh's plan
# --------------------------------------------------------------------------------------------------------------


def _item(name: str, version: str, requires: list[str], requested: bool = False, extras: list[str] | None = None):
    item = {"metadata": {"name": name, "version": version, "requires_dist": requires}, "requested": requested}
    if extras:
        item["requested_extras"] = extras
    return item


def _plan(tmp_path: Path, items: list[dict], provided: str, python: str = "3.12") -> tuple[int, str, str, str]:
    (tmp_path / "report.json").write_text(json.dumps({"version": "1", "install": items}), encoding="utf-8")
    (tmp_path / "provided.txt").write_text(provided, encoding="utf-8")
    (tmp_path / "skip.txt").write_text("Skipped_Dist  # never imported\n", encoding="utf-8")
    done = subprocess.run([sys.executable, str(WHEEL_PLAN), str(tmp_path / "report.json"),
                           "--provided", str(tmp_path / "provided.txt"), "--provided", str(tmp_path / "skip.txt"),
                           "--python", python, "--out", str(tmp_path / "plan.txt"),
                           "--missing", str(tmp_path / "missing.txt")],
                          capture_output=True, text=True, timeout=60)
    plan = (tmp_path / "plan.txt").read_text(encoding="utf-8") if (tmp_path / "plan.txt").exists() else ""
    missing = (tmp_path / "missing.txt").read_text(encoding="utf-8") if (tmp_path / "missing.txt").exists() else ""
    return done.returncode, plan, missing, done.stderr


REPORT = [
    _item("Workbook_App", "1.0", ["keras-like>=2", "numpy", "papermill_like"], requested=True, extras=["gpu"]),
    _item("keras-like", "2.1", ["h5py-like", "numpy", "backport; python_version < '3.12'",
                                "gpu-extra; extra == 'gpu'", "docs-tool; extra == 'docs'"]),
    _item("numpy", "2.0", []),
    _item("matplotlib", "3.9", ["kiwisolver", "numpy"], requested=True),
    _item("kiwisolver", "1.4", []),
    _item("h5py-like", "3.0", ["numpy"]),
    _item("backport", "1.0", []),
    _item("papermill_like", "2.6", ["aiohttp-like>=3.9; python_version == '3.12'", "skipped-dist"]),
    _item("skipped-dist", "1.0", ["only-for-skipped"]),
    _item("only-for-skipped", "1.0", []),
]


def test_wheel_plan_names_what_python_312_needs_beyond_the_report(tmp_path: Path) -> None:
    status, plan, missing, stderr = _plan(tmp_path, REPORT, "numpy\nMatplotlib\n")
    assert status == 3, stderr
    assert missing == "aiohttp-like>=3.9\n" and plan == ""
    assert "aiohttp-like>=3.9" in stderr


def test_wheel_plan_ships_what_the_machine_lacks_and_nothing_reached_only_through_what_it_has(tmp_path) -> None:
    # keras-like asks for gpu-extra only under the extra the workbook requested: the walk follows extras.
    items = [*REPORT, _item("aiohttp-like", "3.10", ["multidict-like"], requested=True),
             _item("multidict-like", "6.0", []), _item("gpu-extra", "0.1", [])]
    items[0]["metadata"]["requires_dist"][0] = "keras-like[gpu]>=2"
    status, plan, missing, stderr = _plan(tmp_path, items, "numpy\nMatplotlib\n")
    assert status == 0, stderr
    assert plan.splitlines() == ["aiohttp-like==3.10", "gpu-extra==0.1", "h5py-like==3.0", "keras-like==2.1",
                                 "multidict-like==6.0", "papermill-like==2.6", "workbook-app==1.0"]
    assert missing == ""
    # kiwisolver: only through the machine's matplotlib; backport: only on Python < 3.12; skipped-dist and its
    # dependency: never imported; docs-tool: an extra nobody asked for.
    for absent in ("kiwisolver", "backport", "skipped-dist", "only-for-skipped", "docs-tool", "numpy", "matplotlib"):
        assert f"{absent}==" not in plan
    status, plan, _, _ = _plan(tmp_path, items, "numpy\nMatplotlib\n", python="3.11")
    assert status == 0 and "backport==1.0" in plan.splitlines(), "markers must be read for the target Python"


def test_wheel_plan_refuses_bad_input(tmp_path: Path) -> None:
    status, _, _, stderr = _plan(tmp_path, [], "numpy\n")
    assert status == 2 and "resolves nothing" in stderr
    status, _, _, stderr = _plan(tmp_path, REPORT, "numpy>=2\n")
    assert status == 2 and "provided.txt:1: expected one distribution name" in stderr
    status, _, _, stderr = _plan(tmp_path, REPORT, "numpy\n", python="three")
    assert status == 2 and "--python must look like 3.12" in stderr
