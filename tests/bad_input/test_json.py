"""Every JSON file the workbook writes is strict JSON: ``null`` where a value is undefined, never the ``NaN`` or
``Infinity`` tokens that Python's ``json`` writes by default and browsers, ``jq`` and most languages reject."""

from __future__ import annotations

import io
import json
import math
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import helpers.atomic
import helpers.metrics
from bad_input.conftest import Reply, Site
from helpers.atomic import atomic_write_json
from helpers.datasets.download import download, extract_archive
from helpers.datasets.synthetic import synthesize
from helpers.forensics.cache import compute_features
from helpers.workbook import NotebookResult, WorkbookResult, save_metrics, write_summary

UNDEFINED = {"roc_auc": math.nan, "ratio": math.inf, "floor": -math.inf, "f32": np.float32("nan"),
             "per_class": [np.float64("nan"), 0.5], "nested": {"iou": float("nan")}, "count": np.int64(3)}


def _strict(path: Path) -> Any:
    def refuse(token: str) -> None:
        raise ValueError(f"{path}: non-JSON token {token}")

    return json.loads(path.read_text(encoding="utf-8"), parse_constant=refuse)


def test_metrics_holding_nan_or_infinity_are_written_as_null(tmp_path: Path) -> None:
    path = save_metrics(tmp_path, "05_classifier", UNDEFINED)

    assert _strict(path) == {"roc_auc": None, "ratio": None, "floor": None, "f32": None, "per_class": [None, 0.5],
                             "nested": {"iou": None}, "count": 3}
    assert list(_strict(path)) == list(UNDEFINED), "keys keep the notebook's order"


def test_every_json_the_workbook_writes_parses_strictly(site: Site, tmp_path: Path) -> None:
    written: list[Path] = []
    synthesize(tmp_path / "synthetic", n=2, seed=0, workers=1, progress=False)
    written.append(tmp_path / "synthetic" / "synth_info.json")
    compute_features(tmp_path / "synthetic" / "manifest.csv", ["ela"], tmp_path / "features", workers=1, progress=False)
    written += sorted((tmp_path / "features" / "ela").glob("params-*.json"))
    written.append(save_metrics(tmp_path / "run", "07_evaluate_and_analyze", UNDEFINED))
    result = WorkbookResult(
        profile="smoke", seed=0, data_root=str(tmp_path), out_dir=str(tmp_path / "run"),
        notebooks=[NotebookResult("07_evaluate_and_analyze", "ok", wall_seconds=math.nan,
                                  metrics={"pixel_auc": math.nan, "images": 3})],
        started="2024-01-01T00:00:00+00:00", wall_seconds=math.inf, environment={"gpu": None},
    )
    written.append(write_summary(result)[0])
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("a.txt", "a")
    archive = download(site.serve("/set.zip", Reply(buffer.getvalue())), tmp_path / "raw", progress=False,
                       checksums=tmp_path / "raw" / "checksums.json")
    extract_archive(archive, tmp_path / "raw" / "set")
    written += [tmp_path / "raw" / "checksums.json", tmp_path / "raw" / ".downloads.json", tmp_path / "raw" / "set" / ".extracted"]

    everything = sorted({*tmp_path.rglob("*.json"), *written})
    assert len(everything) == len(set(written)) == 7
    for path in everything:
        _strict(path)


def test_there_is_one_json_sanitiser_and_the_writer_refuses_what_json_cannot_hold(tmp_path: Path) -> None:
    assert helpers.metrics.json_safe is helpers.atomic.json_safe
    with pytest.raises(TypeError, match="cannot store object as JSON"):
        atomic_write_json(tmp_path / "x.json", {"value": object()})
    assert list(tmp_path.iterdir()) == [], "nothing written, not even a temporary file"
