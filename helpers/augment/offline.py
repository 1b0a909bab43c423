"""Offline augmentation (notebook 03): a fixed set of augmented training variants written to disk with a manifest.

For loaders that cannot augment on the fly, or a set to share. The workbook itself augments online
(:class:`helpers.pipeline.ForgeryBatches`), with new variants every epoch. :func:`augment_offline` refuses rows
outside the training split (augment only after splitting) and re-saves each variant at its source's estimated
JPEG quality, so the compression levels that ELA reads keep their distribution.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from helpers.augment.transforms import Strength, augment, build_pipeline
from helpers.datasets.manifest import load_manifest, write_manifest
from helpers.forensics.jpeg import estimate_jpeg_quality
from helpers.imageio import ImageLoadError, load_mask, load_rgb, save_jpeg, save_png
from helpers.parallel import process_map

__all__ = ["augment_offline"]

_FALLBACK_QUALITY = 95
"""Re-save quality of variants of sources without quantisation tables (PNG, TIFF): high, so little is lost."""
_REPLACED_COLUMNS = ("image", "mask", "image_path", "mask_path")


def _source_quality(path: str, quality: int | str) -> int:
    if quality != "source":
        return int(quality)
    try:
        estimated = estimate_jpeg_quality(path).quality
    except ImageLoadError:
        estimated = None
    return int(estimated) if estimated is not None else _FALLBACK_QUALITY


def _offline_task(task: dict[str, Any]) -> dict[str, Any]:
    """Make and write the variants of one manifest row (module level, so spawned workers can run it)."""
    row: dict[str, Any] = task["row"]
    out = Path(task["out_dir"])
    try:
        rgb = load_rgb(row["image_path"])
        mask = load_mask(row["mask_path"], size=(rgb.shape[1], rgb.shape[0])) if row["mask_path"] else None
        quality = _source_quality(row["image_path"], task["quality"])
    except ImageLoadError as exc:
        return {"error": str(exc)}
    pipeline = build_pipeline(**task["pipeline"])
    stem = Path(row["image_path"]).stem
    rows = []
    for variant in range(task["k"]):
        image, new_mask = augment(rgb, mask, pipeline, seed=[task["seed"], task["index"], variant])
        name = f"{task['index']:05d}_{stem}_v{variant}"
        image_path = out / "images" / f"{name}.jpg"
        save_jpeg(image_path, image, quality)
        mask_path = ""
        if new_mask is not None:
            mask_path = str(out / "masks" / f"{name}.png")
            save_png(mask_path, new_mask)
        entry = {key: value for key, value in row.items() if key not in _REPLACED_COLUMNS}
        entry.update(
            image=str(image_path),
            mask=mask_path,
            image_path=str(image_path),
            mask_path=mask_path,
            augmented_from=os.path.relpath(row["image_path"], out),
            variant=variant,
            width=int(image.shape[1]),
            height=int(image.shape[0]),
            jpeg_quality=quality,
            mask_fraction=round(float(new_mask.mean()), 5) if new_mask is not None else 0.0,
        )
        rows.append(entry)
    return {"rows": rows}


def augment_offline(
    manifest: pd.DataFrame,
    out_dir: str | os.PathLike[str],
    k: int,
    *,
    crop: int | None = None,
    resize: int | None = None,
    geometric: Strength | None = "mild",
    photometric: bool = True,
    quality: int | Literal["source"] = "source",
    seed: int = 0,
    workers: int = 1,
    progress: bool = True,
) -> pd.DataFrame:
    """Write ``k`` augmented variants of every training image to ``out_dir`` and return their manifest.

    Offline augmentation trades disk for speed: a fixed set of variants, made once, for loaders that cannot
    augment on the fly. Online augmentation (:class:`helpers.pipeline.ForgeryBatches`) sees new variants every
    epoch and is the default of the workbook.

    * Only training rows: with a ``split`` column, any row not in ``"train"`` raises ``ValueError`` (augment
      after splitting, never before). Without one, the caller vouches that the rows are training data.
    * Output: ``out_dir/images/NNNNN_<stem>_vJ.jpg`` and ``out_dir/masks/....png`` (single-channel, 255 =
      tampered), and ``out_dir/manifest.csv`` written by :func:`helpers.datasets.manifest.write_manifest`.
      Each variant keeps its source's columns (``label``, ``group``, ``kind``, ``split``, ...), so group-aware
      code keeps variants with their source; ``augmented_from`` (the source image, relative to ``out_dir``),
      ``variant``, ``width``, ``height``, ``mask_fraction`` and ``jpeg_quality`` are added or updated.
    * JPEG quality: ``"source"`` (default) re-saves each variant at the quality estimated from its source's
      quantisation tables (95 for non-JPEG sources), so the compression levels of the training set, which ELA
      reads, keep their distribution; an int fixes one quality for all.
    * Size: ``crop``/``resize`` as in :func:`build_pipeline`; by default the full image is kept so that the
      online loader can still crop. Variant ``j`` of row ``i`` uses the seed ``[seed, i, j]``: the output is
      the same for any ``workers`` (spawned processes via :func:`helpers.parallel.process_map`).
    * Unreadable images (or masks) are reported with a warning naming the file and skipped.
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, not {k!r}")
    if "split" in manifest.columns:
        outside = int((manifest["split"].astype(str) != "train").sum())
        if outside:
            raise ValueError(
                f"{outside} of {len(manifest)} rows are not in the training split; augment only the training "
                "split, after splitting (pass manifest[manifest['split'] == 'train'])"
            )
    build_pipeline(crop=crop, resize=resize, geometric=geometric, photometric=photometric)  # fail early
    if quality != "source" and not (isinstance(quality, int) and 1 <= quality <= 100):
        raise ValueError(f"quality must be 'source' or an integer 1..100, not {quality!r}")
    out = Path(out_dir).resolve()
    frame = manifest.reset_index(drop=True).copy()
    if "image_path" not in frame:
        frame["image_path"] = frame["image"]
    if "mask_path" not in frame:
        frame["mask_path"] = frame["mask"] if "mask" in frame else ""
    frame["mask_path"] = frame["mask_path"].fillna("").astype(str)
    records = frame.to_dict("records")
    pipeline_kwargs = {"crop": crop, "resize": resize, "geometric": geometric, "photometric": photometric}
    tasks = [
        {"row": record, "index": index, "k": k, "seed": seed, "out_dir": str(out), "quality": quality,
         "pipeline": pipeline_kwargs}
        for index, record in enumerate(records)
    ]
    rows: list[dict[str, Any]] = []
    for result in process_map(_offline_task, tasks, workers=workers, desc="augmenting", unit="img",
                              progress=progress):
        if "error" in result:
            warnings.warn(f"augment_offline: skipped unreadable {result['error']}", stacklevel=2)
        else:
            rows.extend(result["rows"])
    if not rows:
        raise ValueError("no readable training image to augment")
    result_frame = pd.DataFrame(rows)
    result_frame["label"] = result_frame["label"].astype(int)
    write_manifest(result_frame, out / "manifest.csv")
    return load_manifest(out / "manifest.csv")
