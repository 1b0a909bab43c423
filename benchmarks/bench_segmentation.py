"""Speed of the mask models: training images/s and whole-image inference milliseconds per megapixel.

    python benchmarks/bench_segmentation.py [--profiles smoke,full] [--steps 6] [--image 1536x1024]
                                            [--models scratch,dual] [--streams rgb,ela]

For each profile (its crop size, batch size and backbone, from :mod:`helpers.config`) and each model (the scratch
U-Net on ELA, the dual-stream U-Net on ``--streams``):

* **training images/s**: ``train_on_batch`` on in-memory random batches of the profile's crop and batch size,
  with the loss and metrics of notebook 06, after two warm-up steps (tracing/compilation excluded); the model
  alone, without the input pipeline (``benchmarks/bench_pipeline.py`` measures that);
* **inference ms per megapixel**: :func:`helpers.inference.predict_mask` on a synthetic JPEG of ``--image``
  pixels, tiles of the crop size with 25 % overlap, streams included, best of ``--repeats`` after one warm-up.

Precision and XLA follow :mod:`helpers.training` (float32 and no XLA on a CPU; mixed float16 and XLA on a GPU).
Runs on whichever backend ``KERAS_BACKEND`` selects.
"""

from __future__ import annotations

import argparse
import io
import os
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profiles", default="smoke,full")
    parser.add_argument("--models", default="scratch,dual")
    parser.add_argument("--streams", default="rgb,ela")
    parser.add_argument("--steps", type=int, default=6, help="timed training steps after 2 warm-up steps")
    parser.add_argument("--image", default="1536x1024", help="WIDTHxHEIGHT of the inference image")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    import keras
    import numpy as np
    from PIL import Image

    from helpers import config, training
    from helpers.inference import predict_mask
    from helpers.models.losses import get_loss
    from helpers.models.metrics import PixelF1, PixelIoU
    from helpers.models.segmentation import dual_stream_unet, unet_scratch

    width, height = (int(v) for v in args.image.lower().split("x"))
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:height, 0:width]
    base = np.stack([xx * 200 / width, yy * 200 / height, (xx + yy) % 91], -1) + rng.normal(0, 10, (height, width, 3))
    buffer = io.BytesIO()
    Image.fromarray(np.clip(base, 0, 255).astype(np.uint8)).save(buffer, format="JPEG", quality=90)
    buffer.seek(0)
    image = np.asarray(Image.open(buffer).convert("RGB"))
    megapixels = width * height / 1e6

    device = training.accelerator()
    precision = training.configure_precision()
    jit = training.jit_compile_setting()
    streams = tuple(s.strip() for s in args.streams.split(",") if s.strip())
    print(f"backend {keras.backend.backend()} on {device} ({precision}, jit_compile={jit}); "
          f"{os.cpu_count()} CPUs; inference image {width}x{height} ({megapixels:.2f} MP)")
    print(f"{'profile':8s} {'model':22s} {'backbone':10s} {'crop':>5s} {'batch':>5s} {'params':>11s} "
          f"{'train img/s':>11s} {'infer ms/MP':>11s}")
    for profile_name in (p.strip() for p in args.profiles.split(",") if p.strip()):
        settings = config.get_profile(profile_name)
        crop, batch = settings.crop_size, settings.batch_size
        for model_name in (m.strip() for m in args.models.split(",") if m.strip()):
            training.set_seeds(0)
            if model_name == "scratch":
                model, backbone = unet_scratch(("ela",)), "-"
            elif model_name == "dual":
                model = dual_stream_unet(settings.backbone, streams, encoder_weights=None)
                backbone = settings.backbone
            else:
                raise SystemExit(f"unknown model {model_name!r}: use scratch and/or dual")
            model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=get_loss("bce_dice"),
                          metrics=[PixelF1(), PixelIoU()], jit_compile=jit)
            x = {t.name: rng.random((batch, crop, crop, int(t.shape[-1])), dtype=np.float32) for t in model.inputs}
            y = (rng.random((batch, crop, crop, 1)) < 0.1).astype(np.float32)
            for _ in range(2):
                model.train_on_batch(x, y)
            started = time.perf_counter()
            for _ in range(args.steps):
                model.train_on_batch(x, y)
            train_rate = args.steps * batch / (time.perf_counter() - started)

            predict_mask(model, image[:crop * 2, :crop * 2], tile=crop, overlap=0.25, batch_size=batch)  # warm-up
            best = float("inf")
            for _ in range(max(1, args.repeats)):
                started = time.perf_counter()
                predict_mask(model, image, tile=crop, overlap=0.25, batch_size=batch)
                best = min(best, time.perf_counter() - started)
            label = model_name if model_name == "scratch" else f"dual ({'+'.join(streams)})"
            print(f"{profile_name:8s} {label:22s} {backbone:10s} {crop:5d} {batch:5d} {model.count_params():11,d} "
                  f"{train_rate:11.2f} {best * 1000 / megapixels:11.0f}", flush=True)
            del model
            keras.backend.clear_session()


if __name__ == "__main__":
    main()
