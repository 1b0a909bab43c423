"""How long the embedded set takes to build: one process against all cores, side by side in one run.

    python benchmarks/bench_synth.py [--n 200] [--repeats 2]

Prints seconds per build, samples per second and the speed-up from all cores. The target of the workbook is 200
samples in under a minute on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

from helpers.datasets.synthetic import synthesize


def build_seconds(n: int, workers: int, seed: int) -> float:
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        synthesize(folder, n=n, seed=seed, workers=workers, progress=False)
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    build_seconds(8, 1, seed=99)  # warm the source-photo loaders and imports
    results: dict[int, list[float]] = {1: [], cores: []}
    for repeat in range(args.repeats):  # interleave so drift on a noisy machine hits both alike
        for workers in results:
            results[workers].append(build_seconds(args.n, workers, seed=repeat))
    print(f"synthesize n={args.n}, {cores} cores, best of {args.repeats}")
    best = {workers: min(times) for workers, times in results.items()}
    for workers, seconds in best.items():
        print(f"  workers={workers:<3d} {seconds:7.2f} s  {args.n / seconds:7.1f} samples/s")
    if cores > 1:
        print(f"  speed-up with {cores} workers: {best[1] / best[cores]:.2f}x")
    print(f"  target: 200 samples < 60 s -> {'met' if best[cores] * 200 / args.n < 60 else 'NOT met'}")


if __name__ == "__main__":
    main()
