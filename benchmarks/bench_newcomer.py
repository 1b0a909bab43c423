"""A newcomer's targets on a 2-core CPU: analyze a 12 MP photo, evaluate speed per detector, the smoke run's writes
and minutes, each beside its limit.

    python benchmarks/bench_newcomer.py [--run runs/smoke] [--skip analyze,evaluate,run] [--images N]

Prints one table ``target | measured | limit | ok``:

* **analyze 12 MP**: wall seconds of ``python -m helpers analyze PHOTO --no-search`` in a fresh interpreter (the
  imports are part of what a newcomer waits for), with the defaults: on a photo this large the quick set of
  training-free detectors and the shipped forensic network computed with NumPy (:mod:`helpers.analyze`).
  ``PHOTO`` is a 4000 x 3000 quality-90 JPEG made from the packaged ``coffee`` photo, upscaled (nothing is
  downloaded). Limit: 10 s. The same photo with ``--detectors all`` (every detector) is timed beside it, without a
  limit. The seconds each detector took (from the reports) are printed below the table.
* **evaluate, per detector**: images scored per second by :func:`helpers.evaluation.evaluate` (the function behind
  ``python -m helpers evaluate``: loading, the detector, the pixel and image metrics) on the CASIA-sized images
  (384 x 256, either way up) of the real fixtures (:func:`helpers.config.fixtures_manifest`; left out, with a
  note, where there are none), for every
  training-free detector and the shipped model, each after one warm-up image. ``--images N`` scores the first N
  of them (default: all 77). Limit: at least 2 images per second.
* **smoke writes** (``--run DIR``: a smoke run's folder): every byte under the run folder and under the data root
  its ``summary.json`` names, beside the smoke profile's budget (``write_budget_bytes``, 100 MB).
* **smoke notebook seconds** (``--run DIR``): the sum of the notebooks' wall seconds in ``summary.json``; limit
  600 s.

Timings are wall time on whatever else the machine runs: compare them on a quiet machine, or read ratios from one
run. The exit status is 1 when a measured target is missed, 0 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from helpers import config
from helpers.datasets.manifest import load_manifest
from helpers.datasets.synthetic import load_source
from helpers.detectors import get_detector, list_detectors
from helpers.evaluation.protocol import evaluate
from helpers.imageio import save_jpeg
from helpers.shipped import shipped_mask_detector

REPO = Path(__file__).resolve().parent.parent
ANALYZE_LIMIT_S = 10.0
EVALUATE_LIMIT_PER_S = 2.0
SMOKE_SECONDS_LIMIT = 600.0
CASIA_SHAPES = {(384, 256), (256, 384)}
PARTS = ("analyze", "evaluate", "run")


def make_photo(path: Path, width: int = 4000, height: int = 3000) -> Path:
    """The packaged ``coffee`` photo upscaled (bicubic) to ``width`` x ``height``, saved as a quality-90 JPEG."""
    photo = np.ascontiguousarray(load_source("coffee"))
    big = cv2.resize(photo, (width, height), interpolation=cv2.INTER_CUBIC)
    return save_jpeg(path, big, 90)


def measure_analyze(folder: Path, *extra: str) -> tuple[float, dict[str, float]]:
    """Wall seconds of ``python -m helpers analyze`` (with ``extra`` arguments) on a 12 MP photo, and each
    detector's seconds in its report."""
    photo = folder / "photo-12mp.jpg"
    if not photo.is_file():
        make_photo(photo)
    out = folder / ("reports" + "".join(extra).replace("-", "_"))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "helpers", "analyze", str(photo), "--out", str(out), "--no-search",
                           *extra],
                          cwd=REPO, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"analyze failed ({done.returncode}):\n{done.stderr[-2000:]}")
    (report,) = out.glob("*_analysis.json")
    detectors = json.loads(report.read_text())["detectors"]
    return seconds, {name: float(entry["seconds"]) for name, entry in detectors.items()}


def measure_evaluate(images: int | None) -> dict[str, tuple[float, int]] | None:
    """``{detector: (images per second, images)}`` of :func:`helpers.evaluation.evaluate` on the CASIA-sized
    fixtures; ``None`` without the fixtures."""
    manifest = config.fixtures_manifest()
    if manifest is None:
        return None
    frame = load_manifest(manifest)
    sizes = [tuple(int(n) for n in cv2.imread(str(p), cv2.IMREAD_UNCHANGED).shape[1::-1])
             for p in frame["image_path"]]
    casia = frame[[size in CASIA_SHAPES for size in sizes]].reset_index(drop=True)
    if images is not None:
        casia = casia.iloc[:images]
    chosen = {name: get_detector(name) for name in list_detectors(trained=False)}
    shipped = shipped_mask_detector()
    if shipped is not None:
        chosen["shipped mask model"] = shipped
    rates = {}
    for name, detector in chosen.items():
        evaluate({name: detector}, casia.iloc[:1], progress=False)  # warm-up: imports, caches, first graph
        started = time.perf_counter()
        evaluate({name: detector}, casia, progress=False)
        rates[name] = (len(casia) / (time.perf_counter() - started), len(casia))
    return rates


def folder_bytes(folder: Path) -> int:
    """Bytes of every regular file under ``folder`` (links not followed)."""
    return sum(path.lstat().st_size for path in folder.rglob("*") if path.is_file() and not path.is_symlink())


def measure_run(run: Path) -> tuple[int, int, float]:
    """``(bytes under the run folder and data root, the smoke budget, notebook seconds)`` of a smoke run."""
    summary_path = run / "summary.json"
    if not summary_path.is_file():
        raise FileNotFoundError(f"{summary_path}: no summary.json; give --run a workbook run's folder")
    summary = json.loads(summary_path.read_text())
    data_root = Path(summary["data_root"])
    total = folder_bytes(run)
    if data_root.is_dir() and not data_root.resolve().is_relative_to(run.resolve()):
        total += folder_bytes(data_root)
    budget = config.get_profile("smoke").write_budget_bytes or 0
    return total, int(budget), float(summary["notebook_seconds"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, default=None, help="a smoke run's folder (holding summary.json)")
    parser.add_argument("--skip", default="", help=f"comma-separated parts to leave out: {', '.join(PARTS)}")
    parser.add_argument("--images", type=int, default=None, help="score only the first N CASIA-sized fixtures")
    args = parser.parse_args()
    skip = {part.strip() for part in args.skip.split(",") if part.strip()}
    unknown = skip - set(PARTS)
    if unknown:
        parser.error(f"unknown parts to skip: {', '.join(sorted(unknown))} (choose from {', '.join(PARTS)})")
    if args.images is not None and args.images < 1:
        parser.error("--images must be at least 1")

    rows: list[tuple[str, str, str, bool]] = []
    details: list[str] = []
    if "analyze" not in skip:
        with tempfile.TemporaryDirectory(prefix="bench-newcomer-") as folder:
            seconds, per_detector = measure_analyze(Path(folder))
            every_seconds, every_detector = measure_analyze(Path(folder), "--detectors", "all")
        rows.append(("analyze 12 MP photo (s)", f"{seconds:.1f}", f"<= {ANALYZE_LIMIT_S:g}", seconds <= ANALYZE_LIMIT_S))
        rows.append(("analyze 12 MP, --detectors all (s)", f"{every_seconds:.1f}", "-", True))
        for label, measured in (("analyze", per_detector), ("analyze --detectors all", every_detector)):
            details.append(f"{label}, seconds per detector (overlapping, two at a time): "
                           + ", ".join(f"{name} {value:.1f}" for name, value in measured.items()))
    rates = measure_evaluate(args.images) if "evaluate" not in skip else {}
    if rates is None:
        details.append("evaluate: no real fixtures found (set FORGERY_FIXTURES to their folder), not measured")
    else:
        for name, (rate, count) in rates.items():
            rows.append((f"evaluate {name} (images/s, {count} CASIA)", f"{rate:.2f}", f">= {EVALUATE_LIMIT_PER_S:g}",
                         rate >= EVALUATE_LIMIT_PER_S))
    if "run" not in skip:
        if args.run is None:
            details.append("smoke writes and seconds: no --run given (a smoke run's folder), not measured")
        else:
            total, budget, notebook_seconds = measure_run(args.run)
            rows.append(("smoke run writes (MB)", f"{total / 1e6:.1f}", f"<= {budget / 1e6:g}", total <= budget))
            rows.append(("smoke notebook seconds", f"{notebook_seconds:.0f}", f"<= {SMOKE_SECONDS_LIMIT:g}",
                         notebook_seconds <= SMOKE_SECONDS_LIMIT))

    width = max([len("target"), *(len(row[0]) for row in rows)])
    print(f"{'target':<{width}} | {'measured':>8} | {'limit':>8} | ok")
    print(f"{'-' * width}-|-{'-' * 8}-|-{'-' * 8}-|---")
    for target, measured, limit, ok in rows:
        print(f"{target:<{width}} | {measured:>8} | {limit:>8} | {'yes' if ok else 'NO'}")
    for line in details:
        print(line)
    return 0 if all(row[3] for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
