"""The feature cache: computes once, keys by content and parameters, survives bad images, CLI exit codes."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from skimage import data

from helpers.datasets.manifest import load_manifest, write_manifest
from helpers.forensics import ela, median_residual, srm
from helpers.forensics import cache as cache_module
from helpers.forensics.cache import (
    FEATURE_VERSION,
    FEATURES,
    FeatureCacheError,
    compute_features,
    load_feature,
    params_hash,
    register_cli,
)
from helpers.imageio import load_rgb, save_jpeg

N_IMAGES = 12


@pytest.fixture(scope="module")
def small_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """12 small JPEGs cut from real photographs at different qualities, with a manifest."""
    folder = tmp_path_factory.mktemp("cache_set")
    rng = np.random.default_rng(7)
    sources = [data.astronaut(), data.chelsea(), data.coffee(), data.rocket()]
    rows = []
    for index in range(N_IMAGES):
        photo = sources[index % len(sources)]
        top = int(rng.integers(0, photo.shape[0] - 48))
        left = int(rng.integers(0, photo.shape[1] - 64))
        crop = np.ascontiguousarray(photo[top : top + 48, left : left + 64])
        name = f"images/img{index:02d}.jpg"
        save_jpeg(folder / name, crop, int(rng.integers(70, 96)))
        rows.append({"image": name, "mask": "", "label": index % 2})
    write_manifest(pd.DataFrame(rows), folder / "manifest.csv")
    return folder / "manifest.csv"


@pytest.fixture()
def bad_manifest(small_set: Path, tmp_path: Path) -> Path:
    """The small set plus a truncated JPEG, a text file named .jpg and a missing file."""
    folder = small_set.parent
    good = (folder / "images" / "img00.jpg").read_bytes()
    (tmp_path / "truncated.jpg").write_bytes(good[: len(good) // 3])
    (tmp_path / "text.jpg").write_text("this is not an image")
    df = load_manifest(small_set)[["image_path", "label"]]
    extra = pd.DataFrame(
        {"image_path": [str(tmp_path / n) for n in ("truncated.jpg", "text.jpg", "missing.jpg")], "label": 0}
    )
    combined = pd.concat([df.iloc[:4], extra, df.iloc[4:]], ignore_index=True)
    combined["image"] = combined["image_path"]
    combined["mask"] = ""
    path = tmp_path / "manifest.csv"
    write_manifest(combined, path)
    return path


def _files(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in sorted(folder.rglob("*")) if p.is_file()}


def test_compute_then_everything_cached(small_set: Path, tmp_path: Path) -> None:
    out = tmp_path / "cache"
    first = compute_features(small_set, ("ela", "srm"), out, workers=1, progress=False)
    assert list(first.columns) == ["image_path", "kind", "cache_file", "status", "error", "sha256"]
    assert len(first) == 2 * N_IMAGES
    assert (first["status"] == "ok").all()
    paths = load_manifest(small_set)["image_path"].tolist()
    assert first["image_path"].tolist()[::2] == paths  # manifest order, kinds in the order given
    for row in first.itertuples():
        assert Path(row.cache_file).is_file() and row.cache_file.endswith(".npz")
        assert Path(row.cache_file).parent == out / row.kind
        rgb = load_rgb(row.image_path)
        loaded = load_feature(row.cache_file)
        if row.kind == "ela":  # stored as uint8: exactly what ela() returns
            assert loaded.dtype == np.uint8
            np.testing.assert_array_equal(loaded, ela(rgb, 90))
        else:  # stored as int8 twelfths, read back as float32: exactly what srm() returns
            assert loaded.dtype == np.float32
            np.testing.assert_array_equal(loaded, srm(rgb, "zhou3", truncate=3.0))
    written = _files(out)

    second = compute_features(small_set, ("ela", "srm"), out, workers=1, progress=False)
    assert (second["status"] == "cached").all()
    assert second["cache_file"].tolist() == first["cache_file"].tolist()
    assert _files(out) == written  # nothing rewritten, nothing added


def test_changed_params_recompute_only_that_kind(small_set: Path, tmp_path: Path) -> None:
    out = tmp_path / "cache"
    base = compute_features(small_set, ("ela", "srm"), out, workers=1, progress=False)
    changed = compute_features(small_set, ("ela", "srm"), out, workers=1, progress=False, params={"ela": {"quality": 75}})
    ela_rows = changed[changed["kind"] == "ela"]
    srm_rows = changed[changed["kind"] == "srm"]
    assert (ela_rows["status"] == "ok").all() and (srm_rows["status"] == "cached").all()
    assert set(ela_rows["cache_file"]).isdisjoint(base["cache_file"])
    first = ela_rows.iloc[0]
    np.testing.assert_array_equal(load_feature(first["cache_file"]), ela(load_rgb(first["image_path"]), 75))
    assert changed.attrs["params"]["ela"] == {"quality": 75, "mode": "raw"}
    sidecars = sorted(p.name for p in (out / "ela").glob("params-*.json"))
    assert sidecars == sorted(
        f"params-{params_hash('ela', p)}.json" for p in ({"quality": 90, "mode": "raw"}, {"quality": 75, "mode": "raw"})
    )
    with pytest.raises(ValueError, match="unknown feature kind"):
        compute_features(small_set, ("elax",), out, progress=False)
    with pytest.raises(ValueError, match="not computed"):
        compute_features(small_set, ("ela",), out, progress=False, params={"srm": {"bank": "full30"}})


def test_key_is_content_not_name(small_set: Path, tmp_path: Path) -> None:
    df = load_manifest(small_set)
    copy = tmp_path / "renamed.jpg"
    copy.write_bytes(Path(df["image_path"].iloc[0]).read_bytes())
    out = tmp_path / "cache"
    compute_features(df.iloc[:1], ("ela",), out, workers=1, progress=False)
    again = compute_features(pd.DataFrame({"image_path": [str(copy), str(copy)]}), ("ela",), out, workers=1, progress=False)
    assert again["status"].tolist() == ["cached", "skipped"]  # same content; second row repeats the first
    assert again["cache_file"].nunique() == 1


def test_bad_images_are_reported_and_the_rest_computed(bad_manifest: Path, tmp_path: Path) -> None:
    out = tmp_path / "cache"
    with pytest.warns(UserWarning) as record:
        result = compute_features(bad_manifest, ("ela", "srm"), out, workers=1, progress=False)
    warned = " ".join(str(w.message) for w in record)
    assert all(name in warned for name in ("truncated.jpg", "text.jpg", "missing.jpg"))
    errors = result[result["status"] == "error"]
    assert sorted({Path(p).name for p in errors["image_path"]}) == ["missing.jpg", "text.jpg", "truncated.jpg"]
    assert len(errors) == 3 * 2
    for row in errors.itertuples():
        assert Path(row.image_path).name in row.error and row.cache_file == ""
    assert (result.loc[result["status"] != "error", "status"] == "ok").sum() == 2 * N_IMAGES


def test_atomic_writes_leave_no_temporary_files(small_set: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "cache"
    compute_features(small_set, ("ela",), out, workers=1, progress=False)
    assert not [p for p in out.rglob("*") if p.name.startswith(".") or p.suffix == ".tmp"]

    def failing_write(handle, array, allow_pickle=False):  # type: ignore[no-untyped-def]
        handle.write(b"\x93NUMPY partial")
        raise OSError("disk full")

    monkeypatch.setattr(cache_module.np.lib.format, "write_array", failing_write)
    broken = tmp_path / "broken"
    with pytest.warns(UserWarning, match="disk full"):
        result = compute_features(small_set, ("srm",), broken, workers=1, progress=False)
    assert (result["status"] == "error").all()
    leftovers = [p.name for p in (broken / "srm").iterdir() if not p.name.startswith("params-")]
    assert leftovers == []  # neither half-written entries nor temporary files


def test_two_workers_give_identical_arrays(small_set: Path, tmp_path: Path) -> None:
    one = compute_features(small_set, ("ela", "srm"), tmp_path / "one", workers=1, progress=False)
    two = compute_features(small_set, ("ela", "srm"), tmp_path / "two", workers=2, progress=False)
    assert (two["status"] == "ok").all()
    assert [Path(p).name for p in one["cache_file"]] == [Path(p).name for p in two["cache_file"]]
    for a, b in zip(one["cache_file"], two["cache_file"]):
        assert Path(a).read_bytes() == Path(b).read_bytes()


def _cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    register_cli(sub)
    args = parser.parse_args(argv)
    return int(args.func(args))


def test_cli_exit_codes(small_set: Path, bad_manifest: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cache"
    common = ["--workers", "1", "--no-progress"]
    assert _cli(["features", "--manifest", str(small_set), "--kinds", "ela,srm", "--out", str(out), *common]) == 0
    assert f"{2 * N_IMAGES} ok" in capsys.readouterr().out
    assert _cli(["features", "--manifest", str(small_set), "--kinds", "ela", "--out", str(out), *common]) == 0
    assert f"{N_IMAGES} cached" in capsys.readouterr().out
    assert _cli(["features", "--manifest", str(small_set), "--kinds", "ela", "--out", str(out), "--quality", "70", *common]) == 0
    assert f"{N_IMAGES} ok" in capsys.readouterr().out  # another quality, another key
    assert _cli(["features", "--manifest", str(bad_manifest), "--kinds", "ela", "--out", str(out), *common]) == 1
    captured = capsys.readouterr()
    assert "text.jpg" in captured.err and "3 error" in captured.out
    assert _cli(["features", "--manifest", str(tmp_path / "none.csv"), "--out", str(out), *common]) == 2
    assert _cli(["features", "--manifest", str(small_set), "--kinds", "nope", "--out", str(out), *common]) == 2


def test_all_kinds_compute(small_set: Path, tmp_path: Path) -> None:
    df = load_manifest(small_set).iloc[:2]
    result = compute_features(df, tuple(FEATURES), tmp_path / "cache", workers=1, progress=False)
    assert (result["status"] == "ok").all()
    shapes = {row.kind: load_feature(row.cache_file).shape for row in result.itertuples()}
    assert shapes == {"ela": (48, 64, 3), "srm": (48, 64, 3), "noise": (48, 64), "median": (48, 64, 3), "ghosts": (10, 48, 64)}


def test_entries_are_stored_compact_and_compressed(small_set: Path, tmp_path: Path) -> None:
    result = compute_features(small_set, ("ela", "srm", "noise"), tmp_path / "cache", workers=1, progress=False)
    stored_dtypes = {}
    for row in result.itertuples():
        with np.load(row.cache_file) as archive:  # the file as any NumPy reads it
            assert archive.files == (["feature", "divisor"] if row.kind == "srm" else ["feature"])
            stored = archive["feature"]
            if row.kind == "srm":
                assert int(archive["divisor"]) == 12
        stored_dtypes.setdefault(row.kind, set()).add(str(stored.dtype))
        float32_bytes = load_feature(row.cache_file).astype(np.float32).nbytes
        size = Path(row.cache_file).stat().st_size
        if row.kind == "srm":  # whole twelfths deflate far better than float16 does
            as_float16 = tmp_path / "float16.npz"
            cache_module._save(as_float16, load_feature(row.cache_file).astype(np.float16))
            assert size < 0.9 * as_float16.stat().st_size  # about 0.73 on photographs
        else:
            assert size < 0.6 * float32_bytes / (2 if row.kind == "noise" else 4)
    assert stored_dtypes == {"ela": {"uint8"}, "srm": {"int8"}, "noise": {"float16"}}
    for r in result[result["kind"] == "srm"].itertuples():
        np.testing.assert_array_equal(load_feature(r.cache_file), srm(load_rgb(r.image_path), "zhou3", truncate=3.0))


def test_srm_that_is_not_whole_twelfths_falls_back_to_float16() -> None:
    twelfths = np.array([[-3.0, 0.25, 5 / 12, 3.0]], np.float32)
    stored, divisor = cache_module._to_storage(twelfths, "int8", 12)
    assert stored.dtype == np.int8 and divisor == 12 and stored.tolist() == [[-36, 3, 5, 36]]
    for other in (np.array([0.3], np.float32), np.array([20.0], np.float32)):  # not twelfths; beyond 127/12
        stored, divisor = cache_module._to_storage(other, "int8", 12)
        assert stored.dtype == np.float16 and divisor is None


def test_median_residual_is_exact_in_float16(small_set: Path, tmp_path: Path) -> None:
    row = compute_features(load_manifest(small_set).iloc[:1], ("median",), tmp_path / "cache", workers=1,
                           progress=False).iloc[0]
    expected = median_residual(load_rgb(row["image_path"]), 3)
    np.testing.assert_array_equal(load_feature(row["cache_file"]), expected)  # integers |v| <= 255: exact


def test_values_beyond_float16_are_refused_not_stored_as_infinity() -> None:
    with pytest.raises(ValueError, match="float16"):
        cache_module._to_storage(np.array([1.0, 70000.0], dtype=np.float32), "float16")
    with pytest.raises(ValueError, match="uint8"):
        cache_module._to_storage(np.array([1.5], dtype=np.float32), "uint8")
    with pytest.raises(ValueError, match="divisor"):
        cache_module._to_storage(np.array([1.5], dtype=np.float32), "int8")


def test_version_one_entries_and_foreign_files_are_refused_by_name(tmp_path: Path) -> None:
    assert FEATURE_VERSION >= 2
    old = tmp_path / "old.npy"
    np.save(old, np.zeros((4, 4, 3), np.float32))
    with pytest.raises(FeatureCacheError, match=r"old\.npy.*version 1"):
        load_feature(old)
    text = tmp_path / "text.npz"
    text.write_text("not a zip")
    with pytest.raises(FeatureCacheError, match=r"text\.npz"):
        load_feature(text)
    other = tmp_path / "other.npz"
    np.savez(other, something=np.zeros(3))
    with pytest.raises(FeatureCacheError, match="without the array"):
        load_feature(other)
