"""``analyze`` on large photos: peak resident memory and seconds beside the memory budget.

    OMP_NUM_THREADS=1 python benchmarks/bench_memory.py [--sizes 12,50] [--detectors copy_move,ghost]

For each size (megapixels: 12 is 4000 x 3000, 50 is 8660 x 5774, 100 is 10000 x 10000) a JPEG of quality 90 is
made from scikit-image's astronaut, repeated and mirrored, and analysed by ``helpers.analyze.analyze`` with the
training-free detectors (no saved model, not the shipped one) in a fresh interpreter, one per size, so each
peak (``VmHWM``: Linux only) is that image's alone. The table gives the memory after the imports (the libraries,
TensorFlow included), the peak during ``analyze`` and writing the report, the budget
(:data:`helpers.analyze.MEMORY_BUDGET_MB`, for any image up to 100 MP), the seconds ``analyze`` took (wall time;
the machine may be shared) and the number of tiles each detector ran on.
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

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
from skimage import data as skdata  # noqa: E402

from helpers.analyze import MEMORY_BUDGET_MB  # noqa: E402
from helpers.imageio import save_jpeg  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
SIZES = {12: (4000, 3000), 50: (8660, 5774), 100: (10000, 10000)}


def make_photo(path: Path, width: int, height: int) -> Path:
    """scikit-image's astronaut, mirrored every other time and repeated to ``width`` x ``height``, JPEG 90."""
    photo = skdata.astronaut()
    pair = np.concatenate([photo, photo[:, ::-1]], axis=1)
    rows, cols = -(-height // pair.shape[0]), -(-width // pair.shape[1])
    return save_jpeg(path, np.tile(pair, (rows, cols, 1))[:height, :width], 90)


def peak_resident_mb() -> float:
    """This process's peak resident memory in MB: ``VmHWM``, which starts afresh at ``exec`` (where Linux carries
    ``ru_maxrss`` over from the parent that forked the process)."""
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024


def child(image: str, out: str, detectors: str | None) -> None:
    """Runs in the fresh interpreter: imports, analyze, the report; prints the measures as one JSON line."""
    import helpers.analyze as analyze_module
    from helpers.detectors import list_detectors

    analyze_module.shipped_model_path = lambda: None  # the training-free detectors only
    imported = peak_resident_mb()
    chosen = detectors.split(",") if detectors else list_detectors(trained=False)
    began = time.perf_counter()
    analysis = analyze_module.analyze(image, detectors=chosen, search_runs=False)
    seconds = time.perf_counter() - began
    analyze_module.save_analysis(analysis, out)
    failed = {name: entry["error"] for name, entry in analysis.detectors.items() if entry["error"]}
    print(json.dumps({"imported_mb": imported, "peak_mb": peak_resident_mb(),
                      "seconds": seconds, "tiles": analysis.tiles, "failed": failed}))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="12,50", help="megapixels, among " + ", ".join(map(str, SIZES)))
    parser.add_argument("--detectors", default=None, help="comma-separated names (default: every training-free one)")
    parser.add_argument("--child", nargs=2, metavar=("IMAGE", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child, args.detectors)
        return 0
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    unknown = [s for s in sizes if s not in SIZES]
    if unknown:
        parser.error(f"unknown sizes {unknown}; choose from {sorted(SIZES)}")
    print(f"{'size':>6} {'pixels':>12} {'imports MB':>10} {'peak MB':>8} {'budget MB':>9} {'seconds':>8} {'tiles':>5}  "
          "within budget")
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as folder:
        for size in sizes:
            width, height = SIZES[size]
            image = make_photo(Path(folder) / f"photo_{size}mp.jpg", width, height)
            command = [sys.executable, __file__, "--child", str(image), str(Path(folder) / "out")]
            if args.detectors:
                command += ["--detectors", args.detectors]
            env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
            done = subprocess.run(command, capture_output=True, text=True, env=env)
            if done.returncode != 0:
                print(f"{size:>4} MP failed:\n{done.stderr[-2000:]}")
                return 1
            row = json.loads(done.stdout.strip().splitlines()[-1])
            within = row["peak_mb"] < MEMORY_BUDGET_MB and not row["failed"]
            print(f"{size:>3} MP {width * height:>12,} {row['imported_mb']:>10.0f} {row['peak_mb']:>8.0f} "
                  f"{MEMORY_BUDGET_MB:>9} {row['seconds']:>8.1f} {row['tiles']:>5}  {'yes' if within else 'NO'}"
                  + (f"  failed: {row['failed']}" if row["failed"] else ""))
            image.unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main())
