"""Benchmark: SVT views cut from ONE decode of the union of their frame indices vs one decode per view.

Runs both strategies side by side over the same clips and view plans and prints samples/s and the ratio.
Clips: ../shared/sample_videos (research-only reference data) or any folder given with --clips.
Usage: python bench/bench_decode.py [--clips DIR] [--repeats 2]
"""

import argparse
import time
from pathlib import Path

import numpy as np

from svt.video import DecodeError, probe, read_frames
from svt.views import ViewConfig, sample_views, union_indices


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--clips", default=str(Path(__file__).resolve().parents[1].parent / "shared" / "sample_videos"))
    p.add_argument("--repeats", type=int, default=2)
    args = p.parse_args()
    files = sorted(f for f in Path(args.clips).rglob("*") if f.suffix in (".mp4", ".avi", ".webm", ".mkv"))
    clips = []
    for f in files:
        try:
            clips.append((f, probe(f)))
        except DecodeError:
            continue
    cfg = ViewConfig()
    plans = [sample_views(info.frames, info.height, info.width, cfg, np.random.default_rng(i))
             for i, (_, info) in enumerate(clips)]
    timings = {"union": [], "per_view": []}
    for _ in range(args.repeats):
        for name in ("per_view", "union"):
            t0 = time.perf_counter()
            for (f, info), views in zip(clips, plans):
                try:
                    if name == "union":
                        union, pos = union_indices(views)
                        frames = read_frames(f, union, num_frames=info.frames)
                        [frames[p] for p in pos]
                    else:
                        [read_frames(f, v.indices, num_frames=info.frames) for v in views]
                except DecodeError:
                    pass
            timings[name].append(time.perf_counter() - t0)
    best = {k: min(v) for k, v in timings.items()}
    n = len(clips)
    print(f"{n} clips from {args.clips}, 10 SVT views each (2 global + 8 local), best of {args.repeats}")
    print(f"{'strategy':<10} {'seconds':>8} {'samples/s':>10}")
    for k in ("per_view", "union"):
        print(f"{k:<10} {best[k]:>8.2f} {n / best[k]:>10.2f}")
    print(f"union / per_view speed-up: {best['per_view'] / best['union']:.2f}x")


if __name__ == "__main__":
    main()
