"""Training crops of a manifest's own forgeries, and batches that mix them with online forgeries (notebook 06).

:class:`OnlineForgeries` teaches the traces every forgery leaves, from fresh samples; a manifest with masks (the
embedded set's *training* split, or a real dataset's) shows what one particular kind of forgery looks like: its
compression history, its edit sizes, its cameras. Training on both is how a model learns the general traces
without ignoring the forgeries it will be tested on.

:class:`ManifestCrops` reads every image of a manifest once, computes its streams once on the **whole image**
(the traces depend on the 8x8 JPEG grid and on image-wide statistics, which a crop would change: see
:mod:`helpers.streams`), keeps them in memory as float16 and cuts a random crop for every sample. Crops start on
the 8-pixel grid, so a crop keeps the phase of the JPEG blocks. Their value is the data, not speed: on two cores a
batch of eight 128-pixel online forgeries with the six default streams takes 0.10 s and a batch of eight crops
0.02 s, while the forensic network's training step on a batch of 16 takes seconds.

:class:`MixedBatches` concatenates the batches of several ``PyDataset`` s of the same streams along the batch
axis: ``MixedBatches([online, crops])`` with batch sizes 8 and 8 gives batches of 16, half of each.

Memory: the default streams take 18 float16 channels, 36 bytes per pixel: the 800 training images of the
``full`` embedded set (about 350 x 300 pixels) hold about 3 GB. ``max_images`` caps it.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import keras
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from helpers.imageio import load_mask, load_rgb
from helpers.streams import compute_streams

__all__ = ["CROP_GRID", "ManifestCrops", "MixedBatches"]

CROP_GRID = 8
"""Crops start at multiples of this many pixels: the JPEG block size, so a crop keeps the block phase."""


def _image_and_mask(row: object, streams: Sequence[str]) -> tuple[dict[str, np.ndarray], np.ndarray]:
    rgb = load_rgb(row.image_path)  # type: ignore[attr-defined]
    values = {name: value.astype(np.float16) for name, value in compute_streams(rgb, streams).items()}
    mask_path = getattr(row, "mask_path", "")
    if int(row.label) == 1 and isinstance(mask_path, str) and mask_path:  # type: ignore[attr-defined]
        mask = load_mask(mask_path, size=(rgb.shape[1], rgb.shape[0]))
    else:
        mask = np.zeros(rgb.shape[:2], bool)
    return values, mask


class ManifestCrops(keras.utils.PyDataset):
    """Random ``size``-pixel crops of a manifest's images and masks, streams computed once per whole image.

    ``manifest``: rows with ``image_path``, ``mask_path`` and ``label`` (authentic rows give empty masks); at most
    ``max_images`` of them, a fixed random subset. Batch ``i`` of epoch ``e`` draws from
    ``numpy.random.default_rng([seed, e, i])``, as :class:`~helpers.datasets.online.OnlineForgeries` does. Images
    smaller than ``size`` are reflected up to it. ``threads`` compute the streams when the dataset is built.
    """

    def __init__(
        self,
        manifest: pd.DataFrame,
        *,
        streams: Sequence[str],
        size: int = 128,
        batch_size: int = 16,
        batches: int = 50,
        seed: int = 0,
        max_images: int | None = None,
        threads: int = 2,
        progress: bool = True,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        if size < 32 or batch_size < 1 or batches < 1:
            raise ValueError("size must be >= 32 and batch_size, batches >= 1")
        missing = [c for c in ("image_path", "mask_path", "label") if c not in manifest.columns]
        if missing:
            raise ValueError(f"the manifest lacks the columns {missing} (load it with load_manifest)")
        if not len(manifest):
            raise ValueError("no images to crop: the manifest is empty")
        if max_images is not None and len(manifest) > max_images:
            manifest = manifest.sample(n=int(max_images), random_state=seed).sort_index()
        self.streams = tuple(streams)
        self.size, self.batch_size, self.batches, self.seed = int(size), int(batch_size), int(batches), int(seed)
        self.epoch = 0
        rows = list(manifest.itertuples(index=False))
        with ThreadPoolExecutor(max(1, threads)) as pool:
            jobs = pool.map(lambda row: _image_and_mask(row, self.streams), rows)
            self.items = list(tqdm(jobs, total=len(rows), desc="streams of the training images", unit="img",
                                   disable=not progress))
        self.tampered = int(sum(int(r.label) == 1 for r in rows))

    def __len__(self) -> int:
        return self.batches

    def on_epoch_end(self) -> None:
        self.epoch += 1

    def with_batch_size(self, batch_size: int) -> "ManifestCrops":
        """The same images and streams (shared, not copied) in batches of ``batch_size`` crops: a mixed run's crops
        become a crops-only one without computing the streams again."""
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be >= 1, not {batch_size!r}")
        resized = copy.copy(self)
        resized.batch_size = int(batch_size)
        return resized

    def crop(self, rng: np.random.Generator) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """One random crop: ``({stream: float32 (S, S, C)}, float32 (S, S))``."""
        values, mask = self.items[int(rng.integers(len(self.items)))]
        size = self.size
        height, width = mask.shape
        pad_rows, pad_cols = max(0, size - height), max(0, size - width)
        if pad_rows or pad_cols:
            pad = ((0, pad_rows), (0, pad_cols))
            values = {k: np.pad(v, pad + ((0, 0),), mode="reflect") for k, v in values.items()}
            mask = np.pad(mask, pad, mode="reflect")
            height, width = mask.shape
        top = int(rng.integers(0, (height - size) // CROP_GRID + 1)) * CROP_GRID
        left = int(rng.integers(0, (width - size) // CROP_GRID + 1)) * CROP_GRID
        window = (slice(top, top + size), slice(left, left + size))
        return ({k: v[window].astype(np.float32) for k, v in values.items()},
                mask[window].astype(np.float32))

    def __getitem__(self, index: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
        if not 0 <= index < self.batches:
            raise IndexError(index)
        rng = np.random.default_rng([self.seed, self.epoch, index])
        crops = [self.crop(rng) for _ in range(self.batch_size)]
        x = {name: np.stack([c[0][name] for c in crops]) for name in self.streams}
        return x, np.stack([c[1] for c in crops])[..., None]


class MixedBatches(keras.utils.PyDataset):
    """Batch ``i`` is batch ``i`` of every part, concatenated (parts of the same streams and target shape)."""

    def __init__(self, parts: Sequence[keras.utils.PyDataset], **kwargs) -> None:
        super().__init__(**kwargs)
        if not parts:
            raise ValueError("no datasets to mix")
        self.parts = list(parts)
        self.batches = min(len(p) for p in self.parts)
        self.batch_size = sum(int(getattr(p, "batch_size")) for p in self.parts)

    def __len__(self) -> int:
        return self.batches

    def on_epoch_end(self) -> None:
        for part in self.parts:
            part.on_epoch_end()

    def __getitem__(self, index: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
        batches = [part[index] for part in self.parts]
        names = batches[0][0].keys()
        x = {name: np.concatenate([b[0][name] for b in batches]) for name in names}
        return x, np.concatenate([b[1] for b in batches])
