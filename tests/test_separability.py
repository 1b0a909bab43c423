from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from helpers.forensics.separability import (
    TRACE_MAPS,
    ela_robustness,
    pixel_auc,
    trace_maps,
    trace_separability,
)
from helpers.imageio import jpeg_roundtrip


def test_pixel_auc_matches_sklearn_with_ties() -> None:
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 6, (40, 50)).astype(float)
    mask = rng.random((40, 50)) < 0.3
    scores[mask] += rng.integers(0, 2, mask.sum())
    assert pixel_auc(scores, mask) == pytest.approx(roc_auc_score(mask.ravel(), scores.ravel()), abs=1e-12)
    assert pixel_auc(-scores, mask) == pytest.approx(1 - pixel_auc(scores, mask), abs=1e-12)
    assert np.isnan(pixel_auc(scores, np.zeros_like(mask)))
    with pytest.raises(ValueError):
        pixel_auc(scores, mask[:10])


def test_trace_maps_shapes_and_that_ghost_and_ela_find_a_region_with_another_jpeg_history() -> None:
    rng = np.random.default_rng(1)
    texture = np.clip(rng.normal(128, 40, (128, 160, 3)), 0, 255).astype(np.uint8)
    host = jpeg_roundtrip(texture, 90)
    once_at_60 = jpeg_roundtrip(texture, 60)
    mask = np.zeros((128, 160), bool)
    mask[32:96, 40:104] = True  # aligned to the 8x8 grid: a clean quality-60 region inside a quality-90 host
    forged = np.where(mask[..., None], once_at_60, host)
    forged = jpeg_roundtrip(forged, 90)
    maps = trace_maps(forged)
    assert set(maps) == set(TRACE_MAPS)
    assert all(m.shape == (128, 160) and m.dtype == np.float32 for m in maps.values())
    # The JPEG ghost exists for exactly this case: a region once saved at a lower quality (Farid 2009).
    assert pixel_auc(maps["ghost"], mask) > 0.95
    # ELA sees it too, but inverted: the coarsely quantised region is smoother, so it changes less on re-save.
    assert pixel_auc(maps["ela"], mask) < 0.4
    authentic_maps = trace_maps(host, maps=("ela",))
    assert list(authentic_maps) == ["ela"]
    with pytest.raises(ValueError, match="unknown trace maps"):
        trace_maps(host, maps=("ela", "magic"))


def test_separability_table_reports_unreadable_files_and_keeps_going(synthetic_set: pd.DataFrame, tmp_path: Path) -> None:
    subset = synthetic_set[synthetic_set["label"] == 1].head(6).copy()
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    subset.loc[subset.index[0], "image_path"] = str(broken)
    table = trace_separability(subset, workers=1, progress=False)
    errors = table[table["map"].isna()]
    assert len(errors) == 1 and str(broken) in errors["error"].iloc[0]
    scored = table.dropna(subset=["map"])
    assert scored["image_path"].nunique() == 5 and set(scored["map"]) == set(TRACE_MAPS)
    assert ((scored["auc_direction_free"] >= 0.5) & (scored["auc_direction_free"] <= 1)).all()
    assert set(scored["kind"]) <= {"splice", "copy-move", "removal"}


def test_resaving_pulls_ela_towards_chance(synthetic_set: pd.DataFrame) -> None:
    resaved, resized = ela_robustness(synthetic_set, kind="splice", max_images=12, seed=0, resaves=(0, 8))
    medians = resaved.groupby("resaves")["auc_direction_free"].median()
    assert medians[0] > medians[8]
    assert abs(medians[8] - 0.5) < 0.05
    assert set(resized["factor"]) == {1.0, 0.9, 0.75, 0.5}
