from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from helpers.datasets.manifest import combine_manifests, find_manifests, load_manifest
from helpers.datasets.stats import file_stats, mask_fractions


def test_file_stats_reads_format_mode_and_quality(tmp_path: Path) -> None:
    rgb = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "a.jpg", quality=77)
    Image.fromarray(rgb).convert("RGBA").save(tmp_path / "b.png")
    Image.fromarray(rgb[..., 0]).save(tmp_path / "c.tif")
    (tmp_path / "d.jpg").write_bytes(b"not an image")
    manifest = pd.DataFrame({"image_path": [str(tmp_path / n) for n in ("a.jpg", "b.png", "c.tif", "d.jpg")],
                             "label": [0, 1, 0, 1]})
    stats = file_stats(manifest)
    assert stats["format"].tolist() == ["JPEG", "PNG", "TIFF", "unreadable"]
    assert stats["mode"].tolist()[:3] == ["RGB", "RGBA", "L"]
    assert stats["channels"].tolist()[:3] == [3, 4, 1]
    assert stats["jpeg_quality"].iloc[0] == 77 and np.isnan(stats["jpeg_quality"].iloc[1])
    assert stats["readable"].tolist() == [True, True, True, False]
    assert stats["bytes_per_pixel"].iloc[0] == (tmp_path / "a.jpg").stat().st_size / 600


def test_mask_fractions_use_recorded_values_and_read_the_rest(tmp_path: Path) -> None:
    mask = np.zeros((10, 10), np.uint8)
    mask[:5, :2] = 255
    Image.fromarray(mask).save(tmp_path / "m.png")
    manifest = pd.DataFrame({
        "mask_path": [str(tmp_path / "m.png"), "", str(tmp_path / "m.png")],
        "mask_fraction": [np.nan, np.nan, 0.25],
    })
    assert mask_fractions(manifest).tolist() == [0.1, 0.0, 0.25]


def test_find_and_combine_manifests(tmp_path: Path, fixtures_manifest: Path) -> None:
    for name in ("zeta", "synthetic"):
        folder = tmp_path / name
        folder.mkdir()
        Image.new("RGB", (4, 4)).save(folder / "x.png")
        (folder / "manifest.csv").write_text("image,mask,label\nx.png,,0\n")
    found = find_manifests(tmp_path)
    assert list(found) == ["synthetic", "zeta", "fixtures"]
    assert found["fixtures"] == fixtures_manifest
    combined = combine_manifests(found)
    assert len(combined) == 2 + len(load_manifest(fixtures_manifest))
    assert set(combined.loc[combined["source_manifest"] == "zeta", "dataset"]) == {"zeta"}
    assert all(Path(p).is_file() for p in combined["image_path"])
