"""Benchmark: the pretraining loader's CPU work per sample on one thread, beside the official loader's (#15, #27).

For the sample K400 clips as they are and for `svt reencode` copies of them (each --short-side x --gop setting),
one thread, interleaved:
- ours: what PretrainDataset does: the paper's 10 views planned, the union of their frames decoded once (with the
  backend the index chooses: decord for the clips as they are, the GOP reader for the copies), each view
  cropped and resized at uint8; time per stage (decode / crop-resize), plus the augmentation if it ran in the
  loader (augment_on: loader; with augment_on: device it leaves the loader's CPU work altogether), and for the
  copies the same frames by decord for comparison;
- official-style: what the official loader does, written here from its description (the official code itself is
  not copied): PyAV seek with a 1024-pts margin, every frame of a 256-frame window (8 x 32 at 30 fps) decoded and
  converted to RGB, frames sampled per view from the window as float tensors, then per view a random resized
  crop, flip, colour jitter, grey, blur and solarize on the CPU (torchvision);
Prints samples/s per thread, the ratio to the official-style loader timed in the same run, and the cores per GPU
needed at a given step rate (--gpu-clips-per-s, default 95: 40% MFU on an H200, issue #27).

Usage: python bench/bench_loader.py [--clips DIR] [--samples 2] [--short-side 256 224] [--gop 16 8 4 1]
(defaults: the config's re-encode, svt.settings.Reencode)
"""

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from svt import augment
from svt.data import crop_resize_uint8
from svt.reencode import CONTAINERS, reencode_video
from svt.settings import Reencode
from svt.video import DecodeError, probe, read_frames
from svt.views import ViewConfig, sample_views, union_indices

OFFICIAL_WINDOW = 8 * 32  # NUM_FRAMES x SAMPLING_RATE frames at TARGET_FPS 30, the official training config


def our_sample(path: Path, info, rng, aug_cfg, cfg) -> dict:
    """Seconds per stage of one sample the way PretrainDataset makes it (the index's backend, uint8 crop-resize)."""
    t = {}
    t0 = time.perf_counter()
    views = sample_views(info.frames, info.height, info.width, cfg, rng)
    union, positions = union_indices(views)
    frames = read_frames(path, union, num_frames=info.frames, backend=info.backend)
    t["decode"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    clips = [crop_resize_uint8(frames[pos], v.crop, v.size) for v, pos in zip(views, positions)]
    [x.permute(0, 2, 3, 1).contiguous() for x in clips]  # what the loader sends with augment_on: device
    t["crop_resize"] = time.perf_counter() - t0
    params = [augment.sample_params(aug_cfg, len(x), min(k, 2), rng) for k, x in enumerate(clips)]
    t0 = time.perf_counter()
    for x, p in zip(clips, params):
        augment.apply(x.float().div_(255), p).transpose(0, 1).contiguous()
    t["augment in loader"] = time.perf_counter() - t0
    if info.backend != "decord":  # the same frames by decord's random access, for comparison
        t0 = time.perf_counter()
        read_frames(path, union, num_frames=info.frames, backend="decord")
        t["decode by decord"] = time.perf_counter() - t0
    return t


def official_style_sample(path: Path, rng, cfg) -> float:
    """Seconds for one sample the way the official loader makes it (see the module docstring)."""
    import av
    from torchvision.transforms import v2

    t0 = time.perf_counter()
    with av.open(str(path), metadata_errors="ignore") as container:
        stream = container.streams.video[0]
        fps, n = float(stream.average_rate), stream.frames or 300
        per_frame = (stream.duration or n) / n
        start = rng.uniform(0, max(n - OFFICIAL_WINDOW * fps / 30, 0))
        first, last = int(start * per_frame), int((start + OFFICIAL_WINDOW * fps / 30 - 1) * per_frame)
        container.seek(max(first - 1024, 0), any_frame=False, backward=True, stream=stream)
        frames = []
        for frame in container.decode(video=0):
            if frame.pts is None or frame.pts < first:
                continue
            if frame.pts > last:
                break
            frames.append(frame.to_rgb().to_ndarray())
    video = torch.as_tensor(np.stack(frames)).permute(0, 3, 1, 2).float() / 255  # T C H W
    views = [(t, cfg.global_views.size, (0.4, 1.0)) for t in cfg.global_views.frames] + \
            [(t, cfg.local_views.size, (0.05, 0.4)) for t in cfg.local_views.frames]
    for t, size, scale in views:
        clip = video[torch.linspace(0, len(video) - 1, t).long()]
        aug = v2.Compose([v2.RandomResizedCrop(size, scale=scale, antialias=True), v2.RandomHorizontalFlip(),
                          v2.RandomApply([v2.ColorJitter(0.4, 0.4, 0.2, 0.1)], p=0.8), v2.RandomGrayscale(0.2),
                          v2.RandomApply([v2.GaussianBlur(9, (0.1, 2.0))], p=0.5), v2.RandomSolarize(0.5, p=0.2)])
        aug(clip)
    return time.perf_counter() - t0


def measure(name: str, root: Path, samples: int, gpu_rate: float) -> dict:
    infos = []
    for f in sorted(p for p in root.rglob("*") if p.suffix in CONTAINERS):
        try:
            infos.append((f, probe(f, deep=True)))
        except DecodeError:
            continue
    cfg, aug_cfg = ViewConfig(), augment.AugmentConfig()
    stages, official = {}, []
    for s in range(samples):
        for k, (f, info) in enumerate(infos):
            for key, v in our_sample(f, info, np.random.default_rng([s, k]), aug_cfg, cfg).items():
                stages.setdefault(key, []).append(v)
            official.append(official_style_sample(f, np.random.default_rng([s, k, 1]), cfg))
    per = {k: float(np.mean(v)) for k, v in stages.items()}
    ours = per["decode"] + per["crop_resize"]  # the loader's CPU work with augment_on: device (the default)
    off = float(np.mean(official))
    print(f"\n{name}: {len(infos)} clips x {samples} samples, one thread "
          f"({', '.join(sorted({i.backend for _, i in infos}))})")
    print("  per sample: " + ", ".join(f"{k} {v * 1e3:.0f} ms" for k, v in per.items()) +
          f"; official-style loader {off * 1e3:.0f} ms = {1 / off:.2f} samples/s")
    for label, t in (("augment on the GPU", ours), ("augment in the loader", ours + per["augment in loader"])):
        print(f"  ours, {label}: {t * 1e3:.0f} ms -> {1 / t:.2f} samples/s per thread = {off / t:.2f}x the "
              f"official-style loader; cores per GPU at {gpu_rate:g} clips/s: {gpu_rate * t:.1f}")
    return {"ours": ours, "official": off}


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--clips", default=str(Path(__file__).resolve().parents[2] / "shared" / "sample_videos"
                                          / "kinetics400"))
    p.add_argument("--samples", type=int, default=2)
    p.add_argument("--short-side", type=int, nargs="+", default=[Reencode().short_side])
    p.add_argument("--gop", type=int, nargs="+", default=[Reencode().gop])
    p.add_argument("--gpu-clips-per-s", type=float, default=95.0)
    args = p.parse_args()
    torch.set_num_threads(1)
    root = Path(args.clips)
    clips = sorted(p for p in root.rglob("*") if p.suffix in CONTAINERS)
    size = sum(f.stat().st_size for f in clips) / 2**20
    rows = [("as they are", measure(f"{root} as they are", root, args.samples, args.gpu_clips_per_s), size)]
    for short_side in args.short_side:
        for gop in args.gop:
            with tempfile.TemporaryDirectory() as tmp:
                t0 = time.perf_counter()
                for f in clips:
                    dst = Path(tmp) / f.relative_to(root)
                    dst.parent.mkdir(parents=True, exist_ok=True)
                    reencode_video((str(f), str(dst), short_side, gop))
                size = sum(f.stat().st_size for f in Path(tmp).rglob("*") if f.is_file()) / 2**20
                print(f"\nre-encoded (short side {short_side}, gop {gop}) in {time.perf_counter() - t0:.1f} s, "
                      f"{size:.1f} MiB")
                name = f"svt reencode {short_side}, gop {gop}"
                rows.append((name, measure(name, Path(tmp), args.samples, args.gpu_clips_per_s), size))
    print(f"\n| clips | samples/s per thread, augment on the GPU | official-style | ratio | cores per GPU at "
          f"{args.gpu_clips_per_s:g} clips/s | size |\n|---|---|---|---|---|---|")
    for name, r, size in rows:
        print(f"| {name} | {1 / r['ours']:.2f} | {1 / r['official']:.2f} | {r['official'] / r['ours']:.1f}x | "
              f"{args.gpu_clips_per_s * r['ours']:.1f} | {size:.1f} MiB |")


if __name__ == "__main__":
    main()
