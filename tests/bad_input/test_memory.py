"""A very large photo given to ``analyze`` on purpose: memory stays under the documented budget.

The case: a 50 MP JPEG (half the largest image the loaders accept). ``analyze`` runs its training-free detectors
in a fresh interpreter, whose peak resident memory (``VmHWM``; Linux carries ``ru_maxrss`` over from the forking
parent, here the test process itself) must stay under
:data:`helpers.analyze.MEMORY_BUDGET_MB`, the budget documented for any image up to 100 MP. Run whole, the same
photo needs several gigabytes (``ghost`` alone about 2.7 GB, ``copy_move`` about 11 GB). Resident memory is
measured, not address space: TensorFlow reserves gigabytes of virtual memory it never touches. An address-space
limit a few gigabytes above what the imports reserve still guards the machine should the bound break.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from skimage import data as skdata

from helpers.analyze import MEMORY_BUDGET_MB, PREVIEW_SIDE
from helpers.detectors import list_detectors
from helpers.imageio import save_jpeg

REPO = Path(__file__).resolve().parents[2]
WIDTH, HEIGHT = 8660, 5774  # 50.0 MP

_CHILD = textwrap.dedent("""
    import json, resource, sys, time
    image, out = sys.argv[1], sys.argv[2]
    import helpers.analyze as analyze_module
    from helpers.detectors import list_detectors

    def status(field):  # bytes
        with open("/proc/self/status") as lines:
            return next(int(line.split()[1]) * 1024 for line in lines if line.startswith(field + ":"))

    # A guard, not the measure: the address space may grow 4 GB beyond what the imports reserved.
    resource.setrlimit(resource.RLIMIT_AS, (status("VmSize") + 4 * 2**30, resource.RLIM_INFINITY))
    analyze_module.shipped_model_path = lambda: None  # training-free detectors only, whatever this checkout ships
    imported = status("VmHWM") / 2**20
    began = time.perf_counter()
    analysis = analyze_module.analyze(image, detectors=list_detectors(trained=False), search_runs=False)
    json_path, png_path = analyze_module.save_analysis(analysis, out)
    print(json.dumps({
        "imported_mb": imported, "peak_mb": status("VmHWM") / 2**20,
        "seconds": time.perf_counter() - began, "report": str(json_path), "figure": str(png_path),
        "maps": {name: list(values.shape) for name, values in analysis.maps.items()},
    }))
""")


def _fifty_megapixel_jpeg(path: Path) -> Path:
    """scikit-image's astronaut repeated, mirrored every other time (a photo's texture, cheaply), JPEG 90."""
    photo = skdata.astronaut()
    pair = np.concatenate([photo, photo[:, ::-1]], axis=1)
    rows, cols = -(-HEIGHT // pair.shape[0]), -(-WIDTH // pair.shape[1])
    rgb = np.tile(pair, (rows, cols, 1))[:HEIGHT, :WIDTH]
    return save_jpeg(path, rgb, 90)


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc and resource limits (Linux)")
def test_a_50_megapixel_photo_is_analysed_under_the_memory_budget(tmp_path: Path) -> None:
    image = _fifty_megapixel_jpeg(tmp_path / "fifty.jpg")
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-c", _CHILD, str(image), str(tmp_path / "out")], capture_output=True,
                          text=True, cwd=REPO, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    measured = json.loads(done.stdout.strip().splitlines()[-1])
    assert measured["peak_mb"] < MEMORY_BUDGET_MB, (
        f"analyze of a 50 MP photo peaked at {measured['peak_mb']:.0f} MB (imports: {measured['imported_mb']:.0f} "
        f"MB), over the budget of {MEMORY_BUDGET_MB} MB")
    report = json.loads(Path(measured["report"]).read_text())
    assert (report["width"], report["height"]) == (WIDTH, HEIGHT) and report["tiles"] > 1
    assert set(report["detectors"]) == set(list_detectors(trained=False))
    assert all(entry["error"] is None for entry in report["detectors"].values()), report["notes"]
    assert any("copy of the image" in note for note in report["notes"])  # copy_move read a working copy
    # the maps kept for the figure are preview-sized, never full-size copies
    assert all(max(shape) <= PREVIEW_SIDE for shape in measured["maps"].values())
    assert Path(measured["figure"]).stat().st_size > 0
