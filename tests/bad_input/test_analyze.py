"""``python -m helpers analyze`` given bad input on purpose: --out checked first, no report lost or half written.

Each test is named after its case; the command runs in-process so the tiny detector registered here runs.
"""

from __future__ import annotations

import errno
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from helpers import analyze as analyze_module
from helpers.__main__ import main
from helpers.analyze import analyze, report_paths, save_analysis
from helpers.detectors import Detector, Prediction

CALLS: list[str] = []


class Left(Detector):
    """Flags the left third; records every image it sees."""

    def predict(self, image):
        CALLS.append(str(image.path))
        heatmap = np.zeros(image.shape, np.float32)
        heatmap[:, : image.shape[1] // 3] = 1.0
        return Prediction.from_heatmap(heatmap, score=0.6)


@pytest.fixture(autouse=True)
def only_left(clean_registry):
    CALLS.clear()
    learned = {name: cls for name, cls in clean_registry._REGISTRY.items() if getattr(cls, "trained", False)}
    clean_registry._REGISTRY.clear()
    clean_registry._REGISTRY.update(learned)
    clean_registry.register_detector("left")(Left)
    return clean_registry


def image_at(path: Path, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (30, 45, 3), dtype=np.uint8)).save(path)
    return path


def run(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str, str]:
    code = main(["analyze", *args, "--no-search"])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_out_is_a_file(capsys, tmp_path: Path) -> None:
    photo = image_at(tmp_path / "photo.png")
    taken = tmp_path / "taken"
    taken.write_text("a file")
    code, _, err = run(capsys, str(photo), "--out", str(taken))
    assert code == 2 and err.strip().splitlines()[-1].startswith("error: --out") and "is a file" in err
    assert CALLS == [], "nothing is analysed before --out is known to be writable"


def test_out_cannot_be_written(capsys, tmp_path: Path) -> None:
    photo = image_at(tmp_path / "photo.png")
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where a folder should go")
    code, _, err = run(capsys, str(photo), "--out", str(blocker / "reports"))
    assert code == 2 and "cannot write" in err and CALLS == []


def test_model_is_not_a_saved_model(capsys, tmp_path: Path) -> None:
    photo = image_at(tmp_path / "photo.png")
    code, _, err = run(capsys, str(photo), "--out", str(tmp_path / "out"), "--mask-model", str(tmp_path))
    assert code == 2 and "expected a folder holding NAME.keras and NAME.json, or a .keras file" in err
    assert CALLS == []


def test_two_images_sharing_a_file_stem_keep_both_reports(capsys, tmp_path: Path) -> None:
    first, second = image_at(tmp_path / "a" / "photo.png", 1), image_at(tmp_path / "b" / "photo.png", 2)
    out = tmp_path / "out"
    assert run(capsys, str(first), "--out", str(out))[0] == 0
    assert run(capsys, str(second), "--out", str(out))[0] == 0
    reports = sorted(out.glob("photo-*_analysis.json"))
    assert len(reports) == 2 and len(list(out.glob("photo-*_analysis.png"))) == 2
    assert {json.loads(p.read_text())["path"] for p in reports} == {str(first.resolve()), str(second.resolve())}


def test_full_disk_while_drawing_leaves_neither_file(monkeypatch, tmp_path: Path) -> None:
    photo = image_at(tmp_path / "photo.png")
    out = tmp_path / "out"
    json_path, png_path = save_analysis(analyze(photo, search_runs=False), out)
    before = (json_path.read_bytes(), png_path.read_bytes())

    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("matplotlib.figure.Figure.savefig", no_space)
    with pytest.raises(OSError, match="No space"):
        save_analysis(analyze(photo, search_runs=False), out)
    assert (json_path.read_bytes(), png_path.read_bytes()) == before, "the earlier report stays whole"
    assert sorted(p.name for p in out.iterdir()) == sorted([json_path.name, png_path.name]), "no temporary left"
    fresh = tmp_path / "fresh"
    with pytest.raises(OSError):
        save_analysis(analyze(photo, search_runs=False), fresh)
    assert not any(fresh.iterdir()), "a failed first write leaves neither file"


def test_full_disk_while_writing_json_leaves_neither_file(monkeypatch, tmp_path: Path) -> None:
    photo = image_at(tmp_path / "photo.png")
    analysis = analyze(photo, search_runs=False)

    def no_space(descriptor):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(analyze_module.os, "fsync", no_space)
    with pytest.raises(OSError, match="No space"):
        save_analysis(analysis, tmp_path / "out")
    json_path, png_path = report_paths(photo, tmp_path / "out")
    assert not json_path.exists() and not png_path.exists()
    assert not list((tmp_path / "out").iterdir())


def test_a_second_analyze_into_the_same_folder_is_refused(tmp_path):
    """Concurrent writers: while one run holds the output folder, another is refused naming its PID."""
    import os
    import subprocess
    import sys

    import numpy as np
    from PIL import Image

    from helpers.locks import folder_lock

    image = tmp_path / "photo.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(image)
    out = tmp_path / "analysis"
    with folder_lock(out):
        done = subprocess.run([sys.executable, "-m", "helpers", "analyze", str(image), "--out", str(out),
                               "--detectors", "ela", "--no-search"], capture_output=True, text=True)
    assert done.returncode == 1
    assert "being written by another process" in done.stderr and str(os.getpid()) in done.stderr
    assert not list(out.glob("*_analysis.json"))
