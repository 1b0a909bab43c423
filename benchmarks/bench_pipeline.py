"""Throughput of the Keras input pipeline: one worker against all cores, side by side in one run.

    python benchmarks/bench_pipeline.py [--n 200] [--size 256] [--batch-size 8] [--repeats 3]

Builds the embedded set (``--n`` samples) in a temporary folder, then draws full epochs of
:class:`helpers.pipeline.ForgeryBatches` (online augmentation, ``"mild"`` geometry plus photometry, streams RGB and
ELA, grid-aligned random crops) for both tasks, the way ``fit`` draws them (Keras' own adapter and workers):

* ``workers=1``: batches made one after another;
* ``workers=<cores>`` threads (``use_multiprocessing=False``, the default of the workbook);
* ``workers=<cores>`` processes (``use_multiprocessing=True``: Keras forks a pool; see helpers/pipeline.py).

Prints batches/s and images/s (best of ``--repeats``, interleaved so drift on a noisy machine hits every
configuration alike) and each parallel configuration's speed-up over one worker.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=200, help="samples in the embedded set")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--streams", default="rgb,ela", help="comma-separated streams (rgb, ela, srm)")
    args = parser.parse_args()

    from helpers.datasets.synthetic import synthesize
    from helpers.parallel import default_workers
    from helpers.pipeline import ForgeryBatches, measure_throughput

    cores = default_workers()
    streams = tuple(s.strip() for s in args.streams.split(",") if s.strip())
    configs = {"1 worker": (1, False), f"{cores} threads": (cores, False), f"{cores} processes": (cores, True)}
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        manifest = synthesize(folder, n=args.n, seed=0, progress=False)
        print(f"embedded set: {len(manifest)} images in {time.perf_counter() - started:.1f} s; {cores} cores "
              f"(os.cpu_count()={os.cpu_count()})")
        print(f"ForgeryBatches: size {args.size}, batch {args.batch_size}, streams {'+'.join(streams)}, "
              f"augment mild+photometric, crop; best of {args.repeats} epochs")
        for task in ("segment", "classify"):
            best: dict[str, dict] = {}
            for repeat in range(args.repeats):
                for name, (workers, processes) in configs.items():
                    dataset = ForgeryBatches(
                        manifest, task=task, streams=streams, batch_size=args.batch_size, size=args.size,
                        seed=repeat, workers=workers, use_multiprocessing=processes,
                    )
                    result = measure_throughput(dataset)
                    if name not in best or result["images_per_s"] > best[name]["images_per_s"]:
                        best[name] = result
            baseline = best["1 worker"]["images_per_s"]
            print(f"\ntask={task}")
            print(f"  {'configuration':<14s} {'batches/s':>10s} {'images/s':>10s} {'vs 1 worker':>12s}")
            for name, result in best.items():
                ratio = result["images_per_s"] / baseline
                print(f"  {name:<14s} {result['batches_per_s']:>10.2f} {result['images_per_s']:>10.1f} {ratio:>11.2f}x")


if __name__ == "__main__":
    main()
