"""Profiles, data locations, seeds and forensic constants shared by the notebooks, the CLI and the tests.

Two profiles run the same notebooks: ``smoke`` (CI and laptops: small embedded set, tiny models, minutes on a
CPU) and ``full`` (a GPU run: the larger embedded set or a real dataset, real backbones). Notebooks read their
sizes from here instead of hard-coding them, so both profiles stay in step. The constants every trace and
pipeline agrees on (the ELA re-save quality, the JPEG block and crop grids) live here too, so that a change
reaches the ELA stream, the feature cache, the training crops and the demonstrations of notebooks 03 and 04 at
once.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "DEFAULT_SEED",
    "ELA_QUALITY",
    "JPEG_BLOCK",
    "JPEG_GRID",
    "Profile",
    "PROFILES",
    "get_profile",
    "repo_root",
    "data_root",
    "fixtures_manifest",
]

DEFAULT_SEED = 0
"""Seed used when none is given; every random step takes its seed explicitly from here or a parameter."""

ELA_QUALITY: int = 90
"""JPEG quality of every error-level-analysis re-save (the seed notebooks' choice): the ``ela`` stream, the
feature cache, the classical baselines and the demonstrations. Differences of a quality-90 re-save are mostly
below 17 grey levels."""

JPEG_BLOCK: int = 8
"""Side of a JPEG DCT block: quantisation, blockiness and double-quantisation work on this grid."""

JPEG_GRID: int = 2 * JPEG_BLOCK
"""Crop and tile corners snap to multiples of this: the 16x16 minimum coded unit of 4:2:0 JPEG (8x8 luminance
blocks, 8x8 chroma blocks on the half-resolution chroma planes), so that a crop keeps every block of the last
compression. Off-grid crops raise ELA everywhere (notebook 03)."""


@dataclass(frozen=True)
class Profile:
    """Sizes and limits of one run profile."""

    name: str
    synthetic_samples: int
    """How many samples the embedded synthetic set holds."""
    cell_timeout_s: int | None
    """Per-cell timeout for papermill (``None``: no limit)."""
    crop_size: int = 128
    """Side of the training crops taken at native resolution (and of the inference tiles)."""
    batch_size: int = 8
    backbone: str = "resnet18"
    """segmentation-models / classifier backbone; the dual-stream seed used resnet101."""
    max_images: int | None = None
    """Cap on training images per split (``None``: all); keeps smoke runs within minutes on a CPU."""
    classifier_training_s: float = 60.0
    """Seconds notebook 05's three Keras classifiers train on online forgeries, together."""
    mask_training_s: float = 90.0
    """Seconds the compact forensic network trains on online forgeries (notebook 06, ``python -m helpers train``)."""
    mask_crop_size: int = 128
    """Side of the online training forgeries of the forensic network."""
    mask_example_share: float = 0.5
    """Share of each forensic-network batch cut from the embedded set's training-split forgeries (the rest are
    online forgeries; see :mod:`helpers.datasets.crops`)."""
    mask_max_examples: int | None = 800
    """Most training-split images those crops are cut from (``None``: all). Their streams stay in memory, about
    36 bytes a pixel: all 2,043 training images of the ``full`` set take about 8 GB (a ``full`` notebook 06 with
    all of them peaked at 13.7 GB)."""
    mask_finetune_share: float = 0.0
    """Share of a mask model's training time spent at its end on those crops alone (in-domain fine-tuning,
    :func:`helpers.models.recipes.train_mask_model`; off: inside one run it did not beat the mixed phase, see
    there)."""
    write_budget_bytes: int | None = None
    """Most bytes a workbook run may write (run folder and data root) before its summary warns (``None``: any)."""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


PROFILES: dict[str, Profile] = {
    "smoke": Profile(name="smoke", synthetic_samples=200, cell_timeout_s=1200, crop_size=128, batch_size=8,
                     backbone="resnet18", classifier_training_s=60.0, mask_training_s=90.0, mask_crop_size=128,
                     write_budget_bytes=100 * 1000**2),
    "full": Profile(name="full", synthetic_samples=3000, cell_timeout_s=None, crop_size=256, batch_size=16,
                    backbone="resnet101", classifier_training_s=900.0, mask_training_s=1500.0, mask_crop_size=160),
}


def get_profile(name: str) -> Profile:
    """Return the profile called ``name`` or raise ``ValueError`` listing the known ones."""
    try:
        return PROFILES[name]
    except KeyError:
        known = ", ".join(sorted(PROFILES))
        raise ValueError(f"unknown profile {name!r}; choose one of: {known}") from None


def repo_root() -> Path | None:
    """The checkout this package was installed from (editable install), or ``None`` for a plain install."""
    candidate = Path(__file__).resolve().parent.parent
    if (candidate / "pyproject.toml").is_file() and (candidate / "notebooks").is_dir():
        return candidate
    return None


def data_root(override: str | os.PathLike[str] | None = None) -> Path:
    """Where datasets live: ``override``, else ``$FORGERY_DATA``, else ``<checkout>/data``, else ``./data``."""
    if override is not None:
        return Path(override).expanduser().resolve()
    env = os.environ.get("FORGERY_DATA")
    if env:
        return Path(env).expanduser().resolve()
    root = repo_root()
    return (root / "data") if root is not None else (Path.cwd() / "data").resolve()


def fixtures_manifest() -> Path | None:
    """The real-image fixtures' manifest, if present.

    Looked up at ``$FORGERY_FIXTURES`` (a folder or a manifest path), then at ``shared/fixtures/real`` inside
    the checkout and beside it (or beside any folder above it). Returns ``None`` when none exists (for
    example on Colab), and callers skip that part.
    """
    candidates: list[Path] = []
    env = os.environ.get("FORGERY_FIXTURES")
    if env:
        candidates.append(Path(env).expanduser())
    root = repo_root()
    if root is not None:
        candidates.extend(folder / "shared" / "fixtures" / "real" for folder in (root, *root.parents))
    for candidate in candidates:
        manifest = candidate if candidate.suffix == ".csv" else candidate / "manifest.csv"
        if manifest.is_file():
            return manifest.resolve()
    return None
