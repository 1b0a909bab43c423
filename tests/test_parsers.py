"""Tests for helpers.datasets.parsers on miniature replicas of each dataset (real file names and polarity).

Every replica is built in tmp_path: a handful of 32x24 random images, masks with known boxes, and the quirks
the parsers must handle (transposed or rescaled masks, an unfixable mask, a corrupt image, inverted and colour
masks). The user-folder parser also runs on the real fixtures in shared/, read-only.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from helpers.datasets.manifest import load_manifest, validate_manifest, write_manifest
from helpers.datasets.parsers import (
    PARSERS,
    DatasetWarning,
    casia_sources,
    edge_mask_to_binary,
    fit_mask_to_image,
    parse_casia1,
    parse_casia2,
    parse_columbia,
    parse_coverage,
    parse_folder,
    parse_ifs_tc,
)

W, H = 32, 24


# ----------------------------------------------------------------------------------------------------------------
# Builders


def _image(path: Path, size: tuple[int, int] = (W, H), seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([seed, len(path.name)])
    pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)  # format from the extension: JPEG, TIFF, PNG, BMP
    return path


def _box(size: tuple[int, int], box: tuple[int, int, int, int], inside: int = 255, outside: int = 0) -> np.ndarray:
    """A (H, W) uint8 array: ``inside`` in x0:x1, y0:y1, ``outside`` elsewhere."""
    pixels = np.full((size[1], size[0]), outside, np.uint8)
    x0, y0, x1, y1 = box
    pixels[y0:y1, x0:x1] = inside
    return pixels


def _save(path: Path, pixels: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return path


def _corrupt(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(np.random.default_rng(7).integers(0, 256, 500, dtype=np.uint8).tobytes())
    return path


def _read(path: str | Path) -> np.ndarray:
    with Image.open(path) as img:
        assert img.mode == "L", f"{path}: mode {img.mode}"
        return np.asarray(img)


def _by_name(frame: pd.DataFrame) -> dict[str, dict]:
    return {Path(row["image"]).name: row for row in frame.to_dict("records")}


def _check_masks(frame: pd.DataFrame) -> None:
    """Every written mask: single-channel, values in {0, 255}, exactly its image's size."""
    for row in frame.to_dict("records"):
        if not row["mask"]:
            continue
        pixels = _read(row["mask"])
        assert set(np.unique(pixels).tolist()) <= {0, 255}
        with Image.open(row["image"]) as img:
            assert img.size == (pixels.shape[1], pixels.shape[0]) == (row["width"], row["height"])


def _write_and_validate(frame: pd.DataFrame, out: Path) -> pd.DataFrame:
    manifest = write_manifest(frame, out / "manifest.csv")
    report = validate_manifest(manifest, strict=True)
    assert report.ok
    return load_manifest(manifest)


CASIA2_SPLICE = "Tp_D_CND_M_N_ani00018_sec00096_00138"
CASIA2_COPYMOVE = "Tp_S_NRN_S_N_cha00011_cha00011_10167"
CASIA2_CHAIN = "Tp_D_NNN_M_N_sec00096_art00014_00231"  # shares sec00096 with the splice
CASIA2_BAD = "Tp_D_CRN_S_N_nat00033_cha00086_11502"
CASIA2_NO_GT = "Tp_D_NRN_S_N_txt00001_txt00002_10500"


def build_casia2(root: Path) -> Path:
    """CASIA2/{Au,Tp,CASIA 2 Groundtruth} with one grey GT, one transposed, one 2x, one unfixable, one corrupt."""
    top = root / "CASIA2"
    for i, name in enumerate(["Au_ani_00018", "Au_sec_00096", "Au_cha_00011", "Au_art_00014", "Au_nat_00001"]):
        _image(top / "Au" / f"{name}.jpg", seed=i)
    _corrupt(top / "Au" / "Au_txt_00003.jpg")
    _image(top / "Tp" / f"{CASIA2_SPLICE}.tif", seed=10)
    _image(top / "Tp" / f"{CASIA2_COPYMOVE}.jpg", seed=11)
    _image(top / "Tp" / f"{CASIA2_CHAIN}.jpg", seed=12)
    _image(top / "Tp" / f"{CASIA2_BAD}.jpg", seed=13)
    _image(top / "Tp" / f"{CASIA2_NO_GT}.jpg", seed=14)
    gt = top / "CASIA 2 Groundtruth"
    grey = _box((W, H), (4, 4, 12, 10))
    grey[10, 4:12] = 200  # anti-aliased edge: light grey counts as tampered
    grey[11, 4:12] = 100  # dark grey does not
    _save(gt / f"{CASIA2_SPLICE}_gt.png", grey)
    _save(gt / f"{CASIA2_COPYMOVE}_gt.png", _box((W, H), (2, 3, 9, 20)).T.copy())  # stored 24x32: transposed
    _save(gt / f"{CASIA2_CHAIN}_gt.png", _box((2 * W, 2 * H), (8, 8, 24, 20)))  # 64x48: same aspect ratio
    _save(gt / f"{CASIA2_BAD}_gt.png", _box((40, 40), (1, 1, 9, 9)))  # 40x40: unfixable
    return top


def test_casia2_replica(tmp_path: Path) -> None:
    top = build_casia2(tmp_path / "raw")
    out = tmp_path / "out"
    with pytest.warns(DatasetWarning) as record:
        frame = parse_casia2(tmp_path / "raw", out, progress=False)
    messages = [str(w.message) for w in record]
    # The unfixable mask is excluded with a warning naming both files and both sizes.
    bad = [m for m in messages if CASIA2_BAD in m and "excluded" in m]
    assert len(bad) == 1 and f"{CASIA2_BAD}_gt.png" in bad[0] and "40x40" in bad[0] and "32x24" in bad[0]
    # The corrupt image is skipped with a warning naming it.
    assert any("Au_txt_00003.jpg" in m and "unreadable" in m for m in messages)
    assert any("no ground-truth mask" in m for m in messages)

    rows = _by_name(frame)
    assert set(rows) == {
        "Au_ani_00018.jpg", "Au_sec_00096.jpg", "Au_cha_00011.jpg", "Au_art_00014.jpg", "Au_nat_00001.jpg",
        f"{CASIA2_SPLICE}.tif", f"{CASIA2_COPYMOVE}.jpg", f"{CASIA2_CHAIN}.jpg", f"{CASIA2_NO_GT}.jpg",
    }
    assert list(frame.columns[:9]) == ["image", "mask", "label", "dataset", "group", "kind", "width", "height",
                                       "note"]
    assert (frame["dataset"] == "casia2").all()
    for name, row in rows.items():
        assert row["label"] == (0 if name.startswith("Au_") else 1)
        assert (row["width"], row["height"]) == (W, H)
        assert Path(row["image"]).is_absolute() and Path(row["image"]).is_file()
        assert row["image"].startswith(str(top.resolve()))
    assert rows[f"{CASIA2_SPLICE}.tif"]["kind"] == "splice"
    assert rows[f"{CASIA2_COPYMOVE}.jpg"]["kind"] == "copy-move"
    assert rows["Au_ani_00018.jpg"]["kind"] == "authentic"
    assert rows[f"{CASIA2_NO_GT}.jpg"]["mask"] == ""
    _check_masks(frame)

    # Masks: normalised into out/masks, grey edge binarised at >127, transposed and resized masks fixed.
    splice = _read(rows[f"{CASIA2_SPLICE}.tif"]["mask"])
    assert Path(rows[f"{CASIA2_SPLICE}.tif"]["mask"]).parent == (out / "masks").resolve()
    expected = _box((W, H), (4, 4, 12, 11))
    np.testing.assert_array_equal(splice, expected)
    copymove = _read(rows[f"{CASIA2_COPYMOVE}.jpg"]["mask"])
    np.testing.assert_array_equal(copymove, _box((W, H), (2, 3, 9, 20)))
    assert "transposed" in rows[f"{CASIA2_COPYMOVE}.jpg"]["note"]
    chain = _read(rows[f"{CASIA2_CHAIN}.jpg"]["mask"])
    np.testing.assert_array_equal(chain, _box((W, H), (4, 4, 12, 10)))
    assert "resized" in rows[f"{CASIA2_CHAIN}.jpg"]["note"]

    # Groups: union-find over {tampered, sources}; the chain links art00014 to the splice's component.
    group = {name: row["group"] for name, row in rows.items()}
    spliced_component = {"Au_ani_00018.jpg", "Au_sec_00096.jpg", "Au_art_00014.jpg", f"{CASIA2_SPLICE}.tif",
                         f"{CASIA2_CHAIN}.jpg"}
    assert {group[n] for n in spliced_component} == {"Au_ani_00018"}
    assert group[f"{CASIA2_COPYMOVE}.jpg"] == group["Au_cha_00011.jpg"] == "Au_cha_00011"
    assert group["Au_nat_00001.jpg"] == "Au_nat_00001"
    assert group[f"{CASIA2_NO_GT}.jpg"] == "Au_txt_00001"  # sources known by name even without the photos
    assert len({group[n] for n in rows}) == 4

    loaded = _write_and_validate(frame, out)
    assert (loaded["mask"].str.startswith("masks/") | (loaded["mask"] == "")).all()


def test_casia_names_give_sources_and_kinds() -> None:
    assert casia_sources(CASIA2_SPLICE) == ("Au_ani_00018", "Au_sec_00096")
    assert casia_sources(CASIA2_COPYMOVE) == ("Au_cha_00011",)
    assert casia_sources("Sp_D_CND_A_pla0005_pla0023_0281") == ("Au_pla_0005", "Au_pla_0023")
    assert casia_sources("Au_ani_00018") == ()


def test_casia1_replica(tmp_path: Path) -> None:
    root = tmp_path / "casia1"
    for i, name in enumerate(["Au_pla_0005", "Au_pla_0023", "Au_ani_0001", "Au_art_0010"]):
        _image(root / "CASIA 1.0 dataset" / "Au" / f"{name}.jpg", size=(W, H), seed=i)
    splice = "Sp_D_CND_A_pla0005_pla0023_0281"
    copymove = "Sp_S_CND_A_ani0001_ani0001_0196"
    orphan = "Sp_D_NRN_A_art0010_cha0002_0300"
    tp = root / "CASIA 1.0 dataset" / "Modified Tp" / "Tp"
    _image(tp / "Sp" / f"{splice}.jpg", seed=5)
    _image(tp / "CM" / f"{copymove}.jpg", seed=6)
    _image(tp / "Sp" / f"{orphan}.jpg", seed=7)
    gt = root / "CASIA 1.0 groundtruth"
    _save(gt / "Sp" / f"{splice}_gt.png", _box((W, H), (0, 0, 10, 10)))
    _save(gt / "CM" / f"{copymove}_gt.png", _box((W, H), (20, 5, 30, 15)))
    # macOS debris must be ignored, not reported as a corrupt image.
    _corrupt(root / "__MACOSX" / "Au" / "._Au_pla_0005.jpg")
    _corrupt(root / "CASIA 1.0 dataset" / "Au" / "._Au_ani_0001.jpg")

    with pytest.warns(DatasetWarning, match="1 of 3 tampered images have no ground-truth mask"):
        frame = parse_casia1(root, tmp_path / "out", progress=False)
    rows = _by_name(frame)
    assert len(rows) == 7
    assert rows[f"{splice}.jpg"]["kind"] == "splice" and rows[f"{splice}.jpg"]["label"] == 1
    assert rows[f"{copymove}.jpg"]["kind"] == "copy-move"
    assert rows["Au_pla_0023.jpg"]["kind"] == "authentic" and rows["Au_pla_0023.jpg"]["label"] == 0
    np.testing.assert_array_equal(_read(rows[f"{splice}.jpg"]["mask"]), _box((W, H), (0, 0, 10, 10)))
    np.testing.assert_array_equal(_read(rows[f"{copymove}.jpg"]["mask"]), _box((W, H), (20, 5, 30, 15)))
    assert rows[f"{orphan}.jpg"]["mask"] == ""
    assert rows[f"{splice}.jpg"]["group"] == rows["Au_pla_0005.jpg"]["group"] == rows["Au_pla_0023.jpg"]["group"]
    assert rows[f"{splice}.jpg"]["group"] == "Au_pla_0005"
    assert rows[f"{copymove}.jpg"]["group"] == rows["Au_ani_0001.jpg"]["group"] == "Au_ani_0001"
    assert rows[f"{orphan}.jpg"]["group"] == rows["Au_art_0010.jpg"]["group"] == "Au_art_0010"
    _check_masks(frame)
    _write_and_validate(frame, tmp_path / "out")


def test_ifs_tc_black_means_tampered(tmp_path: Path) -> None:
    base = tmp_path / "dataset-dist" / "phase-01" / "training"
    fake = "00a1b2c3d4e5f60718293a4b5c6d7e8f"
    _image(base / "fake" / f"{fake}.png", seed=1)
    source = _box((W, H), (5, 6, 20, 18), inside=0, outside=255)  # black = tampered
    source[0, :] = 100  # dark grey: tampered
    source[1, :] = 200  # light grey: not tampered
    _save(base / "fake" / f"{fake}.mask.png", source)
    for i, stem in enumerate(["1a2b3c4d5e6f708192a3b4c5d6e7f809", "ffeeddccbbaa99887766554433221100"]):
        _image(base / "pristine" / f"{stem}.png", seed=10 + i)

    frame = parse_ifs_tc(tmp_path, tmp_path / "out", progress=False)
    rows = _by_name(frame)
    assert len(rows) == 3
    row = rows[f"{fake}.png"]
    assert (row["label"], row["kind"], row["group"], row["dataset"]) == (1, "unknown", fake, "ifs-tc")
    mask = _read(row["mask"])
    np.testing.assert_array_equal(mask == 255, source <= 127)  # the formerly black pixels, exactly
    assert mask[10, 10] == 255 and mask[2, 2] == 0
    assert {r["label"] for n, r in rows.items() if n != f"{fake}.png"} == {0}
    assert rows["ffeeddccbbaa99887766554433221100.png"]["group"] == "ffeeddccbbaa99887766554433221100"
    assert not any(n.endswith(".mask.png") for n in rows)
    _check_masks(frame)
    _write_and_validate(frame, tmp_path / "out")


def _edgemask(size: tuple[int, int], box: tuple[int, int, int, int]) -> np.ndarray:
    rgb = np.zeros((size[1], size[0], 3), np.uint8)
    rgb[:, :, 0] = 255  # red: one camera
    x0, y0, x1, y1 = box
    rgb[y0:y1, x0:x1] = (0, 255, 0)  # green: the other camera (the spliced region)
    return rgb


def test_columbia_edge_masks(tmp_path: Path) -> None:
    root = tmp_path / "columbia"
    size = (64, 48)
    _image(root / "4cam_auth" / "canong3_02_sub_01.tif", size=size, seed=1)
    _image(root / "4cam_auth" / "nikond70_05_sub_03.bmp", size=size, seed=2)
    _image(root / "4cam_splc" / "canong3_canonxt_sub_01.tif", size=size, seed=3)
    _image(root / "4cam_splc" / "nikond70_kodakdcs330_sub_26.tif", size=size, seed=4)
    box = (10, 8, 40, 30)
    edge = Image.fromarray(_edgemask(size, box))
    (root / "4cam_splc" / "edgemask").mkdir(parents=True)
    edge.save(root / "4cam_splc" / "edgemask" / "canong3_canonxt_sub_01_edgemask.jpg", quality=90)

    _corrupt(root / "4cam_auth" / "._canong3_02_sub_01.tif")  # macOS resource fork: ignored, not "corrupt"

    with pytest.warns(DatasetWarning, match="nikond70_kodakdcs330_sub_26") as record:
        frame = parse_columbia(root, tmp_path / "out", progress=False)
    assert not any("unreadable" in str(w.message) for w in record)
    rows = _by_name(frame)
    assert set(rows) == {"canong3_02_sub_01.tif", "nikond70_05_sub_03.bmp", "canong3_canonxt_sub_01.tif",
                         "nikond70_kodakdcs330_sub_26.tif"}
    spliced = rows["canong3_canonxt_sub_01.tif"]
    assert (spliced["label"], spliced["kind"], spliced["group"]) == (1, "splice", "canong3_canonxt_sub_01")
    assert rows["canong3_02_sub_01.tif"]["group"] == "canong3_02_sub_01"
    assert rows["canong3_02_sub_01.tif"]["label"] == 0
    mask = _read(spliced["mask"]) == 255
    truth = _box(size, box) == 255
    # JPEG blurs the colour boundary: demand exactness away from it, and near-exactness overall.
    inner = _box(size, (box[0] + 2, box[1] + 2, box[2] - 2, box[3] - 2)) == 255
    outer = _box(size, (box[0] - 2, box[1] - 2, box[2] + 2, box[3] + 2)) == 255
    assert mask[inner].all() and not mask[~outer].any()
    assert (mask == truth).mean() > 0.97
    _check_masks(frame)
    _write_and_validate(frame, tmp_path / "out")

    with pytest.warns(DatasetWarning):
        red = parse_columbia(root, tmp_path / "out_red", progress=False, edge_rule="red")
    red_mask = _read(_by_name(red)["canong3_canonxt_sub_01.tif"]["mask"]) == 255
    assert not red_mask[inner].any() and red_mask[~outer].all()
    with pytest.raises(ValueError, match="edge rule"):
        parse_columbia(root, tmp_path / "x", progress=False, edge_rule="blue")


def test_edge_rules() -> None:
    rgb = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255], [200, 200, 200]]], np.uint8)
    assert edge_mask_to_binary(rgb, "green").tolist() == [[False, True, False, False]]
    assert edge_mask_to_binary(rgb, "red").tolist() == [[True, False, False, False]]
    assert edge_mask_to_binary(rgb, "green-or-blue").tolist() == [[False, True, True, False]]


def test_coverage_replica_with_rescaled_mask(tmp_path: Path) -> None:
    root = tmp_path / "COVERAGE"
    for n in (1, 2, 10):
        _image(root / "image" / f"{n}.tif", seed=n)
        _image(root / "image" / f"{n}t.tif", seed=100 + n)
    _save(root / "mask" / "1forged.tif", _box((W, H), (3, 3, 13, 13)))
    _save(root / "mask" / "1copy.tif", _box((W, H), (18, 3, 28, 13)))
    _save(root / "mask" / "1paste.tif", _box((W, H), (3, 3, 13, 13)))
    _save(root / "mask" / "2forged.tif", _box((3 * W, 3 * H), (30, 15, 60, 45)))  # 96x72 for 32x24
    _save(root / "mask" / "10forged.tif", _box((W + 20, H), (0, 0, 5, 5)))  # 52x24: excluded

    with pytest.warns(DatasetWarning, match=r"10t\.tif.*10forged\.tif"):
        frame = parse_coverage(root, tmp_path / "out", progress=False)
    rows = _by_name(frame)
    assert set(rows) == {"1.tif", "1t.tif", "2.tif", "2t.tif", "10.tif"}
    assert rows["1.tif"]["group"] == rows["1t.tif"]["group"] == "1"
    assert rows["2.tif"]["group"] == rows["2t.tif"]["group"] == "2"
    assert (rows["1t.tif"]["label"], rows["1t.tif"]["kind"]) == (1, "copy-move")
    assert (rows["1.tif"]["label"], rows["1.tif"]["kind"], rows["1.tif"]["mask"]) == (0, "authentic", "")
    np.testing.assert_array_equal(_read(rows["1t.tif"]["mask"]), _box((W, H), (3, 3, 13, 13)))
    np.testing.assert_array_equal(_read(rows["2t.tif"]["mask"]), _box((W, H), (10, 5, 20, 15)))
    assert "resized from 96x72" in rows["2t.tif"]["note"]
    _check_masks(frame)
    _write_and_validate(frame, tmp_path / "out")


def test_fit_mask_rules() -> None:
    mask = np.zeros((24, 32), bool)
    mask[2:5, 3:9] = True
    same, note = fit_mask_to_image(mask, (32, 24))
    assert same is mask and note == ""
    turned, note = fit_mask_to_image(mask.T, (32, 24))
    np.testing.assert_array_equal(turned, mask)
    assert "transposed" in note
    near, note = fit_mask_to_image(np.ones((48, 65), bool), (32, 24))  # 65/48 is within 1.6 % of 4/3: no
    assert near is None and "65x48" in note
    close, note = fit_mask_to_image(np.ones((240, 321), bool), (32, 24))  # within 0.4 %: resized
    assert close is not None and close.shape == (24, 32) and close.all() and "resized" in note


def test_folder_on_real_fixtures(fixtures_manifest: Path, tmp_path: Path) -> None:
    real = fixtures_manifest.parent
    before = sorted(p.name for p in (real / "masks").iterdir())
    out = tmp_path / "out"
    frame = parse_folder(real, out, progress=False)
    reference = load_manifest(fixtures_manifest)
    expected = {Path(p).name: label for p, label in zip(reference["image_path"], reference["label"])}
    got = {Path(p).name: label for p, label in zip(frame["image"], frame["label"])}
    assert got == expected  # every image, same label
    assert set(frame["kind"]) == {"authentic", "tampered"}
    assert (frame["dataset"] == "folder").all()
    assert all(Path(p).resolve().is_relative_to(out.resolve()) for p in frame["mask"] if p)
    _check_masks(frame)
    loaded = _write_and_validate(frame, out)
    assert len(loaded) == len(reference)
    assert sorted(p.name for p in (real / "masks").iterdir()) == before  # nothing written into shared/


def test_folder_patterns_polarity_labels_and_corrupt_images(tmp_path: Path) -> None:
    root = tmp_path / "mine"
    _image(root / "pics" / "a.png", seed=1)
    _image(root / "pics" / "b.jpg", seed=2)
    _image(root / "pics" / "c.png", seed=3)
    _corrupt(root / "pics" / "broken.jpg")
    _save(root / "gt" / "a_gt.png", _box((W, H), (1, 1, 8, 8), inside=0, outside=255))  # black = tampered
    _save(root / "gt" / "c_gt.tif", np.full((H, W), 255, np.uint8))  # all white in black polarity: empty

    with pytest.warns(DatasetWarning, match=r"broken\.jpg"):
        frame = parse_folder(root, tmp_path / "out", images="pics", masks="gt", pattern="{stem}_gt.*",
                             polarity="black", progress=False)
    rows = _by_name(frame)
    assert set(rows) == {"a.png", "b.jpg", "c.png"}
    assert (rows["a.png"]["label"], rows["b.jpg"]["label"], rows["c.png"]["label"]) == (1, 0, 0)
    np.testing.assert_array_equal(_read(rows["a.png"]["mask"]), _box((W, H), (1, 1, 8, 8)))
    assert rows["b.jpg"]["mask"] == ""
    assert rows["a.png"]["group"] == "a"
    _write_and_validate(frame, tmp_path / "out")

    labels = root / "labels.csv"
    pd.DataFrame({"image": ["a.png", "b", "c.png"], "label": [1, 1, 0], "group": ["g1", "g1", ""]}).to_csv(
        labels, index=False)
    with pytest.warns(DatasetWarning) as record:
        frame = parse_folder(root, tmp_path / "out2", images="pics", masks="gt", pattern="{stem}_gt.*",
                             polarity="black", labels=labels, progress=False)
    messages = " | ".join(str(w.message) for w in record)
    assert "broken.jpg" in messages and "not listed" in messages
    rows = _by_name(frame)
    assert (rows["a.png"]["label"], rows["b.jpg"]["label"], rows["c.png"]["label"]) == (1, 1, 0)
    assert rows["a.png"]["group"] == rows["b.jpg"]["group"] == "g1" and rows["c.png"]["group"] == "c"
    assert rows["b.jpg"]["mask"] == ""  # tampered without a mask: kept (a validation warning, not an error)
    _write_and_validate(frame, tmp_path / "out2")

    with pytest.raises(ValueError, match="placeholder"):
        parse_folder(root, tmp_path / "x", images="pics", pattern="mask.png")
    with pytest.raises(FileNotFoundError, match="image folder not found"):
        parse_folder(root, tmp_path / "x", images="nope")


def test_parsers_say_what_they_expected_when_nothing_is_there(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    for name in ("casia2", "casia1", "ifs-tc", "columbia", "coverage"):
        with pytest.raises(FileNotFoundError, match="no .* images found"):
            PARSERS[name](tmp_path / "empty", tmp_path / "out", progress=False)


def test_worker_processes_give_the_same_rows(fixtures_manifest: Path, tmp_path: Path) -> None:
    real = fixtures_manifest.parent
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the real fixtures are clean: no warning at all
        one = parse_folder(real, tmp_path / "one", progress=False, workers=1)
        two = parse_folder(real, tmp_path / "two", progress=False, workers=2)
    pd.testing.assert_frame_equal(one.drop(columns="mask"), two.drop(columns="mask"))
    for a, b in zip(one["mask"], two["mask"]):
        assert (a == "") == (b == "")
        if a:
            assert Path(a).read_bytes() == Path(b).read_bytes()
    assert os.path.commonpath([p for p in two["mask"] if p]) == str((tmp_path / "two" / "masks").resolve())


def test_every_layout_lives_in_its_own_module_and_keeps_its_old_import_path() -> None:
    from helpers.datasets import parsers, sources

    for name in sources.__all__:
        assert getattr(parsers, name) is getattr(sources, name), name
    modules = {parser.__module__ for parser in sources.PARSERS.values()}
    assert modules == {f"helpers.datasets.sources.{m}" for m in ("casia", "ifs_tc", "columbia", "coverage", "folder")}
