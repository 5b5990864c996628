"""Benchmark: the pretraining loader's CPU work per sample on one core, beside a whole-clip decode (issue #15).

For the sample K400 clips as they are and for `svt reencode` copies of them (short side 256, keyframe every
`--gop` frames), one thread, interleaved:
- ours: the paper's 10 views planned, the union of their frames decoded once (the index's backend), each view
  cropped and resized at uint8; time per stage (decode / crop-resize), plus the augmentation if it ran in the
  loader (augment_on: loader) and the same augmentation batched over 8 samples (augment_on: device, here on this
  CPU; on a GPU it leaves the loader's CPU work altogether);
- whole clip: every frame decoded to RGB with PyAV, what the official loader does before it cuts views (a lower
  bound of its work; its measured 1.4-1.7 samples/s on one thread here is the anchor).
Prints samples/s per core, the breakdown, the ratio to the whole-clip decode and to the anchor, and the cores per
GPU needed at a given step rate (--gpu-clips-per-s, default the H200's 33.7 clips/s at batch 8).

Usage: python bench/bench_loader.py [--clips DIR] [--samples 3] [--gop 16]
"""

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from svt import augment
from svt.data import crop_resize
from svt.reencode import reencode_video
from svt.video import DecodeError, _pyav_frames, probe, read_frames
from svt.views import ViewConfig, sample_views, union_indices

ANCHOR = (1.4, 1.7)  # the official loader's samples/s on one thread, measured on this machine kind (issue #15)


def our_sample(path: Path, info, rng, aug_cfg, cfg) -> dict:
    t = {}
    t0 = time.perf_counter()
    views = sample_views(info.frames, info.height, info.width, cfg, rng)
    union, positions = union_indices(views)
    frames = read_frames(path, union, num_frames=info.frames, backend=info.backend)
    t["decode"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    clips = [crop_resize(frames[pos], v.crop, v.size) for v, pos in zip(views, positions)]
    t["crop_resize"] = time.perf_counter() - t0
    params = [augment.sample_params(aug_cfg, len(x), min(k, 2), rng) for k, x in enumerate(clips)]
    t0 = time.perf_counter()
    for x, p in zip(clips, params):
        augment.apply(x, p)
    t["augment in loader"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    for x, p in zip(clips, params):  # a batch of 8 copies of this sample's view: the batched pass, per sample
        augment.apply_batch(x.transpose(0, 1)[None].expand(8, -1, -1, -1, -1), [p] * 8)
    t["augment batched"] = (time.perf_counter() - t0) / 8
    return t


def whole_clip(path: Path, frames: int) -> float:
    t0 = time.perf_counter()
    _pyav_frames(path, np.arange(frames))
    return time.perf_counter() - t0


def measure(name: str, root: Path, samples: int, gpu_rate: float) -> None:
    infos = []
    for f in sorted(p for p in root.rglob("*") if p.suffix in (".mp4", ".mkv")):
        try:
            infos.append((f, probe(f, deep=True)))
        except DecodeError:
            continue
    cfg, aug_cfg = ViewConfig(), augment.AugmentConfig()
    stages, whole = {"decode": [], "crop_resize": [], "augment in loader": [], "augment batched": []}, []
    for s in range(samples):
        for k, (f, info) in enumerate(infos):
            for key, v in our_sample(f, info, np.random.default_rng([s, k]), aug_cfg, cfg).items():
                stages[key].append(v)
            whole.append(whole_clip(f, info.frames))
    per = {k: float(np.mean(v)) for k, v in stages.items()}
    ours = per["decode"] + per["crop_resize"]  # the loader's CPU work with augment_on: device (the default)
    loader_aug = ours + per["augment in loader"]
    w = float(np.mean(whole))
    print(f"\n{name}: {len(infos)} clips x {samples} samples, one thread "
          f"({', '.join(sorted({i.backend for _, i in infos}))})")
    print("  per sample: " + ", ".join(f"{k} {v * 1e3:.0f} ms" for k, v in per.items()))
    for label, t in (("augment_on device", ours), ("augment_on loader", loader_aug)):
        print(f"  loader CPU work, {label}: {t * 1e3:.0f} ms -> {1 / t:.2f} samples/s per core; "
              f"{w / t:.2f}x the whole-clip decode ({w * 1e3:.0f} ms, the official loader's floor); "
              f"{1 / t / ANCHOR[1]:.2f}-{1 / t / ANCHOR[0]:.2f}x the official loader ({ANCHOR[0]}-{ANCHOR[1]} "
              f"samples/s); cores per GPU at {gpu_rate} clips/s: {gpu_rate * t:.1f}")


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--clips", default=str(Path(__file__).resolve().parents[2] / "shared" / "sample_videos"
                                          / "kinetics400"))
    p.add_argument("--samples", type=int, default=3)
    p.add_argument("--gop", type=int, default=16)
    p.add_argument("--gpu-clips-per-s", type=float, default=33.7)
    args = p.parse_args()
    torch.set_num_threads(1)
    root = Path(args.clips)
    measure(f"{root} as they are", root, args.samples, args.gpu_clips_per_s)
    with tempfile.TemporaryDirectory() as tmp:
        for f in sorted(p for p in root.rglob("*") if p.suffix in (".mp4", ".mkv")):
            dst = Path(tmp) / f.relative_to(root)
            dst.parent.mkdir(parents=True, exist_ok=True)
            reencode_video((str(f), str(dst), 256, args.gop))
        measure(f"svt reencode copies (short side 256, gop {args.gop})", Path(tmp), args.samples,
                args.gpu_clips_per_s)


if __name__ == "__main__":
    main()
