"""Training crops of a manifest's own forgeries, mixed into the online batches (helpers.datasets.crops)."""

from __future__ import annotations

import numpy as np
import pytest

from helpers.datasets.crops import CROP_GRID, ManifestCrops, MixedBatches
from helpers.imageio import load_mask


@pytest.fixture(scope="module")
def few(synthetic_set):
    tampered = synthetic_set[synthetic_set["label"] == 1].head(4)
    authentic = synthetic_set[synthetic_set["label"] == 0].head(2)
    import pandas as pd

    return pd.concat([tampered, authentic])


def test_crops_cut_the_precomputed_streams_and_masks_in_step(few):
    import pandas as pd

    rows = pd.concat([few[few["label"] == 1].head(3), few[few["label"] == 0].head(1)])
    crops = ManifestCrops(rows, streams=("rgb", "ela"), size=64, batch_size=6, batches=3, seed=1, threads=1,
                          progress=False)
    x, y = crops[0]
    assert x["rgb"].shape == (6, 64, 64, 3) and x["ela"].shape == (6, 64, 64, 3) and y.shape == (6, 64, 64, 1)
    assert x["rgb"].dtype == np.float32 and y.dtype == np.float32
    # Every crop is a window of one image: find it, on the 8-pixel grid, with its mask.
    rgbs = [values["rgb"].astype(np.float32) for values, _ in crops.items]
    masks = [mask for _, mask in crops.items]
    for sample, target in zip(x["rgb"], y[..., 0]):
        found = False
        for rgb, mask in zip(rgbs, masks):
            for top in range(0, rgb.shape[0] - 63, CROP_GRID):
                for left in range(0, rgb.shape[1] - 63, CROP_GRID):
                    if np.array_equal(rgb[top:top + 64, left:left + 64], sample):
                        assert np.array_equal(mask[top:top + 64, left:left + 64], target.astype(bool))
                        found = True
        assert found
    # The stored masks are the files' masks; authentic rows have none.
    first = rows.iloc[0]
    assert np.array_equal(masks[0], load_mask(first["mask_path"]))
    assert not masks[-1].any() and crops.tampered == 3


def test_crops_repeat_per_seed_and_change_per_epoch(few):
    a = ManifestCrops(few, streams=("ela",), size=48, batch_size=4, batches=2, seed=5, threads=1, progress=False)
    b = ManifestCrops(few, streams=("ela",), size=48, batch_size=4, batches=2, seed=5, threads=1, progress=False)
    assert np.array_equal(a[1][0]["ela"], b[1][0]["ela"])
    before = a[1][0]["ela"].copy()
    a.on_epoch_end()
    assert not np.array_equal(a[1][0]["ela"], before)
    with pytest.raises(IndexError):
        a[2]


def test_small_images_are_reflected_up_to_the_crop(few):
    crops = ManifestCrops(few.head(1), streams=("noise",), size=1024, batch_size=1, batches=1, threads=1,
                          progress=False)
    x, y = crops[0]
    assert x["noise"].shape == (1, 1024, 1024, 1) and y.shape == (1, 1024, 1024, 1)


def test_crops_refuse_an_unloaded_manifest_and_cap_the_images(few):
    with pytest.raises(ValueError, match="image_path"):
        ManifestCrops(few[["image", "mask", "label"]], streams=("ela",), progress=False)
    capped = ManifestCrops(few, streams=("ela",), size=32, max_images=2, threads=1, progress=False)
    assert len(capped.items) == 2


def test_mixed_batches_concatenate_their_parts(few):
    from helpers.datasets.online import OnlineForgeries, packaged_photos

    online = OnlineForgeries(packaged_photos({"coffee"}), streams=("ela",), size=48, batch_size=3, batches=4,
                             threads=1)
    crops = ManifestCrops(few, streams=("ela",), size=48, batch_size=2, batches=2, threads=1, progress=False)
    mixed = MixedBatches([online, crops])
    assert len(mixed) == 2 and mixed.batch_size == 5
    x, y = mixed[1]
    assert x["ela"].shape == (5, 48, 48, 3) and y.shape == (5, 48, 48, 1)
    assert np.array_equal(x["ela"][3:], crops[1][0]["ela"])
    mixed.on_epoch_end()
    assert online.epoch == 1 and crops.epoch == 1


@pytest.mark.slow
def test_train_mask_model_mixes_training_crops_into_its_batches(synthetic_set):
    import keras

    from helpers.datasets.online import packaged_photos
    from helpers.models.forensic_net import forensic_net
    from helpers.models.recipes import train_mask_model

    keras.utils.set_random_seed(0)
    examples = synthetic_set.head(6)
    result = train_mask_model(forensic_net(("ela", "noise"), width=8), packaged_photos({"coffee"}),
                              streams=("ela", "noise"), budget_s=6, size=64, batch_size=4, batches_per_epoch=1,
                              threads=1, examples=examples, example_share=0.5, progress=False)
    summary = result.summary()
    assert summary["example_images"] == 6 and summary["example_share"] == 0.5
    assert 0 < result.example_seconds <= result.seconds and result.samples_seen >= 4
    with pytest.raises(ValueError, match="example_share"):
        train_mask_model(forensic_net(("ela",), width=8), packaged_photos({"coffee"}), streams=("ela",),
                         budget_s=1, examples=examples, example_share=1.5, progress=False)


def test_with_batch_size_shares_the_streams_and_keeps_the_epoch(few):
    crops = ManifestCrops(few, streams=("ela",), size=64, batch_size=2, batches=3, seed=0, threads=1, progress=False)
    crops.on_epoch_end()
    resized = crops.with_batch_size(5)
    assert resized.items is crops.items and resized.epoch == 1 and crops.batch_size == 2
    x, y = resized[0]
    assert x["ela"].shape == (5, 64, 64, 3) and y.shape == (5, 64, 64, 1)
    with pytest.raises(ValueError, match="batch_size"):
        crops.with_batch_size(0)


@pytest.mark.slow
def test_train_mask_model_fine_tunes_on_the_crops_alone_at_the_end(synthetic_set):
    import keras

    from helpers.datasets.online import packaged_photos
    from helpers.models.forensic_net import forensic_net
    from helpers.models.recipes import train_mask_model

    keras.utils.set_random_seed(0)
    examples = synthetic_set.head(6)
    validation = synthetic_set[synthetic_set["label"] == 1].tail(2)
    result = train_mask_model(forensic_net(("ela",), width=8), packaged_photos({"coffee"}), streams=("ela",),
                              budget_s=8, size=64, batch_size=4, batches_per_epoch=1, threads=1, examples=examples,
                              example_share=0.0, finetune_share=0.5, validation=validation, progress=False)
    summary = result.summary()
    assert summary["finetune_share"] == 0.5 and 0 < result.finetune_samples < result.samples_seen
    assert summary["example_images"] == 6 and summary["example_share"] == 0.0  # crops only in the second phase
    seen = [row["samples_seen"] for row in result.curve]
    seconds = [row["seconds"] for row in result.curve]
    assert seen == sorted(seen) and seconds == sorted(seconds) and seen[-1] == result.samples_seen
    assert sum("val_pixel_f1" in row for row in result.curve) >= 2  # each phase is scored at its end
    assert result.best_val_pixel_f1 == max(row.get("val_pixel_f1", -1.0) for row in result.curve)
    photos = packaged_photos({"coffee"})
    with pytest.raises(ValueError, match="finetune_share"):
        train_mask_model(forensic_net(("ela",), width=8), photos, streams=("ela",), budget_s=1,
                         finetune_share=0.2, progress=False)  # nothing to fine-tune on
    with pytest.raises(ValueError, match="finetune_share"):
        train_mask_model(forensic_net(("ela",), width=8), photos, streams=("ela",), budget_s=1,
                         examples=examples, finetune_share=1.0, progress=False)
