"""Online training forgeries: fresh samples for every batch, from source photos of the training split only
(notebook 06; the families are shown in notebook 01).

:class:`OnlineForgeries` is a ``keras.utils.PyDataset``: batch ``i`` of epoch ``e`` draws from
``numpy.random.default_rng([seed, e, i])``, so a run repeats exactly while every epoch sees new forgeries. Its
source photos come from one of three places:

* :func:`packaged_photos`: the photographs shipped inside scikit-image and scikit-learn (the default), filtered
  to the source groups of a split so that photos of the validation and test splits never reach training;
* :func:`manifest_photos`: the authentic images of any manifest (CASIA v2 alone has about 7,400), again
  restricted to a split;
* :func:`folder_photos`: a folder of the user's own photographs (``python -m helpers synth --from DIR``).

Each batch is ``({stream: float32 (B, S, S, C)}, y)``, streams computed by
:func:`helpers.streams.compute_streams` on each whole sample, exactly as inference computes them. ``y`` depends
on ``task``: ``"segment"`` (notebook 06) the masks ``float32 (B, S, S, 1)``; ``"classify"`` (notebook 05) the
labels ``float32 (B, 1)``, 1 when the sample was edited; ``"kind"`` the index of the sample's family in
``classes`` (``int32 (B,)``, 0 = authentic), for a softmax over edit kinds, sampling only those families.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import keras
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from helpers.datasets.families import FamilyConfig, Forgery, make_forgery
from helpers.datasets.manifest import load_manifest, write_manifest
from helpers.datasets.synthetic import SOURCE_PHOTOS, load_source
from helpers.imageio import load_rgb, save_png
from helpers.locks import folder_lock
from helpers.streams import compute_streams

__all__ = [
    "OnlineForgeries",
    "packaged_photos",
    "manifest_photos",
    "folder_photos",
    "PhotoPool",
]

TASKS: tuple[str, ...] = ("segment", "classify", "kind")
"""What a batch's targets are: masks, edited-or-not labels, or edit kinds."""

_IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp"})


class PhotoPool:
    """Source photos loaded on first use and kept (photos are read-only inputs of every sample)."""

    def __init__(self, loaders: Sequence[tuple[str, object]]) -> None:
        if not loaders:
            raise ValueError("no source photos: the pool is empty")
        self.names = [name for name, _ in loaders]
        self._loaders = [loader for _, loader in loaders]
        self._cache: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self._loaders)

    def __add__(self, other: PhotoPool) -> PhotoPool:
        """Both pools' photos in one (e.g. the packaged photos and a folder of one's own)."""
        return PhotoPool(list(zip(self.names, self._loaders)) + list(zip(other.names, other._loaders)))

    def __call__(self, index: int) -> np.ndarray:
        photo = self._cache.get(index)
        if photo is None:
            loader = self._loaders[index]
            photo = loader() if callable(loader) else load_rgb(loader)  # type: ignore[arg-type]
            self._cache[index] = photo
        return photo


def packaged_photos(groups: Iterable[str] | None = None) -> PhotoPool:
    """The packaged photographs, optionally only those whose source group is in ``groups``."""
    wanted = None if groups is None else set(groups)
    chosen = [p for p in SOURCE_PHOTOS if wanted is None or p.group in wanted]
    return PhotoPool([(p.name, (lambda name=p.name: load_source(name))) for p in chosen])


def manifest_photos(manifest: pd.DataFrame, *, split: pd.DataFrame | None = None, part: str = "train") -> PhotoPool:
    """The authentic images of ``manifest`` (those of split ``part`` when a split frame is given)."""
    frame = manifest
    if split is not None:
        frame = split[split["split"] == part]
    authentic = frame[frame["label"] == 0]
    paths = [str(p) for p in authentic["image_path"]] if "image_path" in authentic else list(authentic["image"])
    return PhotoPool([(Path(p).name, p) for p in paths])


def folder_photos(folder: str | os.PathLike[str]) -> PhotoPool:
    """Every image file below ``folder`` (sorted, so the pool and hence the samples repeat)."""
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: not a folder of photographs")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in _IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise ValueError(f"{root}: no image files (looked for {', '.join(sorted(_IMAGE_SUFFIXES))})")
    return PhotoPool([(str(p.relative_to(root)), p) for p in files])


class OnlineForgeries(keras.utils.PyDataset):
    """Fresh forgeries for every batch: ``batches`` batches of ``batch_size`` samples of ``size`` pixels."""

    def __init__(
        self,
        photos: PhotoPool,
        *,
        streams: Sequence[str] = ("rgb", "ela"),
        size: int = 128,
        batch_size: int = 16,
        batches: int = 50,
        seed: int = 0,
        config: FamilyConfig = FamilyConfig(),
        threads: int = 2,
        fixed: bool = False,
        task: str = "segment",
        classes: Sequence[str] = ("authentic", "splice", "copy-move", "removal"),
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        if size < 32 or batch_size < 1 or batches < 1:
            raise ValueError("size must be >= 32 and batch_size, batches >= 1")
        if task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, not {task!r}")
        self.task = task
        self.classes = tuple(classes)
        if task == "kind":
            if not self.classes or self.classes[0] != "authentic":
                raise ValueError(f"classes must start with 'authentic', got {self.classes}")
            unknown = set(config.families) - set(self.classes)
            if unknown:
                raise ValueError(f"task='kind' samples only the families among classes {self.classes}; "
                                 f"the config also has {sorted(unknown)}: pass FamilyConfig(families=...)")
        self.photos = photos
        self.streams = tuple(streams)
        self.size = int(size)
        self.batch_size = int(batch_size)
        self.batches = int(batches)
        self.seed = int(seed)
        self.config = config
        self.fixed = fixed
        """``True``: every epoch shows the same samples (a fixed validation set)."""
        self.epoch = 0
        self._pool = ThreadPoolExecutor(max(1, threads)) if threads > 1 else None
        # Load every photo once up front: loaders are not thread-safe on first use.
        for index in range(len(photos)):
            photos(index)

    def __len__(self) -> int:
        return self.batches

    def on_epoch_end(self) -> None:
        if not self.fixed:
            self.epoch += 1

    def sample(self, index: int, item: int) -> Forgery:
        """Sample ``item`` of batch ``index`` in the current epoch."""
        rng = np.random.default_rng([self.seed, 0 if self.fixed else self.epoch, index, item])
        return make_forgery(rng, self.photos, self.size, self.config, photo_count=len(self.photos))

    def _one(self, args: tuple[int, int]) -> tuple[dict[str, np.ndarray], np.ndarray]:
        forgery = self.sample(*args)
        if self.task == "classify":
            target = np.float32([forgery.label])
        elif self.task == "kind":
            target = np.int32(self.classes.index(forgery.family))
        else:
            target = forgery.mask
        return compute_streams(forgery.image, self.streams), target

    def __getitem__(self, index: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
        if not 0 <= index < self.batches:
            raise IndexError(index)
        jobs = [(index, item) for item in range(self.batch_size)]
        results = list(self._pool.map(self._one, jobs)) if self._pool else [self._one(j) for j in jobs]
        x = {name: np.stack([r[0][name] for r in results]) for name in self.streams}
        if self.task == "kind":
            return x, np.stack([r[1] for r in results]).astype(np.int32)
        if self.task == "classify":
            return x, np.stack([r[1] for r in results]).astype(np.float32)
        return x, np.stack([r[1] for r in results]).astype(np.float32)[..., None]


def write_online_set(
    out: str | os.PathLike[str],
    photos: PhotoPool,
    *,
    n: int,
    seed: int = 0,
    size: int = 256,
    config: FamilyConfig = FamilyConfig(),
    progress: bool = True,
) -> pd.DataFrame:
    """Write ``n`` online forgeries made from ``photos`` into ``out`` as a manifest (``python -m helpers synth
    --from DIR``), for inspection, EDA or a fixed validation set of one's own photographs.

    Images are saved as PNG, losslessly: the sample's compression history (its JPEG passes, chosen per sample,
    authentic or not) is already in its pixels, and a final JPEG of our own would add one more. The folder is
    locked while it is written (a second writer is refused) and the manifest is written last.
    """
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    root = Path(out)
    root.mkdir(parents=True, exist_ok=True)
    rows = []
    with folder_lock(root):
        for index in tqdm(range(n), desc="synthesizing", unit="img", disable=not progress):
            rng = np.random.default_rng([seed, index])
            forgery = make_forgery(rng, photos, size, config, photo_count=len(photos))
            stem = f"online_{index:05d}"
            save_png(root / "images" / f"{stem}.png", forgery.image)
            mask = ""
            if forgery.label:
                mask = f"masks/{stem}.png"
                save_png(root / mask, forgery.mask)
            photo = photos.names[forgery.details["photo"]]
            rows.append({"image": f"images/{stem}.png", "mask": mask, "label": forgery.label, "dataset": "online",
                         "group": photo, "kind": forgery.family, "compression": forgery.compression,
                         "width": size, "height": size})
        write_manifest(pd.DataFrame(rows), root / "manifest.csv")
    return load_manifest(root / "manifest.csv")
