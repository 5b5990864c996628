"""`svt reencode`: a copy of a dataset with every video resized (short side 256 or 320) and dense keyframes.

Decoding dominates training cost, and random access into long GOPs dominates decoding (decord seeks to the
previous keyframe): the official authors and mmaction2 both train from pre-resized copies with a keyframe every
16 frames. The copy keeps the dataset's layout, file names and containers (annotation files are copied as they
are), so the same index and loaders read it. Each file is written atomically; existing outputs are kept, so an
interrupted run resumes.
"""

from __future__ import annotations

import itertools
import json
import logging
import shutil
from concurrent.futures import ProcessPoolExecutor
from fractions import Fraction
from pathlib import Path

from tqdm import tqdm

from svt.io import atomic_write
from svt.settings import Reencode
from svt.video import rotate, to_rgb

log = logging.getLogger("svt.reencode")
CONTAINERS = {".mp4": "mp4", ".avi": "avi", ".mkv": "matroska", ".webm": "webm", ".mov": "mov"}


def target_size(width: int, height: int, short_side: int) -> tuple[int, int]:
    """Scaled so the shorter side is short_side (never upscaled), both sides even (yuv420p)."""
    scale = min(1.0, short_side / min(width, height))
    return max(2, int(round(width * scale / 2)) * 2), max(2, int(round(height * scale / 2)) * 2)


def encoder_options(codec: str, gop: int) -> dict:
    """Keyframes every `gop` frames and no frame reordering (B-frames off), so that packet i is frame i and the
    index chooses the GOP reader (svt.video), which decodes only the GOPs holding a sample's frames."""
    if codec == "libx264":
        # fastdecode (no CABAC, no deblocking): 1.6x faster decoding for ~10% more bytes, measured
        # (bench/bench_loader.py); training decodes every clip many times, so decoding is what counts.
        return {"g": str(gop), "bf": "0", "crf": "23", "preset": "veryfast", "tune": "fastdecode"}
    # VP9 (webm): realtime encoding makes no hidden alt-ref frames, so packets are frames here too.
    return {"g": str(gop), "crf": "32", "b": "0", "deadline": "realtime", "cpu-used": "8"}


def reencode_video(job: tuple[str, str, int, int]) -> str | None:
    """Returns None, or the error of a file that could not be re-encoded (it is then copied unchanged)."""
    import av

    src, dst, short_side, gop = job
    src, dst = Path(src), Path(dst)
    codec = "libvpx-vp9" if dst.suffix == ".webm" else "libx264"
    try:
        def write(tmp):
            with (av.open(str(src), metadata_errors="ignore") as inp,
                  av.open(tmp, "w", format=CONTAINERS[dst.suffix.lower()]) as out):
                stream_in = inp.streams.video[0]
                frames = inp.decode(stream_in)
                first = next(frames)
                # Rotation metadata is applied to the pixels: the copy shows what decord shows of the original.
                rotation = getattr(first, "rotation", 0) or 0
                turned = rotation % 180 != 0
                rate = stream_in.average_rate or stream_in.guessed_rate or 25
                w, h = target_size(*((first.height, first.width) if turned else (first.width, first.height)),
                                   short_side)
                stream = out.add_stream(codec, rate=rate)
                stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
                # Frame-numbered timestamps: left to the encoder (pts None), the muxer rejected real K400 clips
                # ("Invalid argument" near their end) and they were kept unencoded.
                stream.codec_context.time_base = 1 / Fraction(rate)
                stream.options = encoder_options(codec, gop)
                for n, frame in enumerate(itertools.chain([first], frames)):
                    if rotation % 360:
                        frame = av.VideoFrame.from_ndarray(rotate(to_rgb(frame)[None], rotation)[0], format="rgb24")
                    img = frame.reformat(width=w, height=h, format="yuv420p")
                    img.pts, img.time_base = n, stream.codec_context.time_base
                    out.mux(stream.encode(img))
                out.mux(stream.encode())
        atomic_write(dst, write)
        return None
    except Exception as e:  # noqa: BLE001 - reported and the original kept, the index decides what is usable
        shutil.copy(src, dst)
        return f"{src}: {e}"


def reencode_dataset(root: Path, out: Path, short_side: int = Reencode().short_side, gop: int = Reencode().gop,
                     workers: int = 1) -> dict:
    root, out = Path(root), Path(out)
    if not root.is_dir():
        raise FileNotFoundError(f"--root {root}: no such folder")
    jobs, copied = [], 0
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        dst = out / path.relative_to(root)
        if dst.exists():
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix.lower() in CONTAINERS:
            jobs.append((str(path), str(dst), short_side, gop))
        else:
            shutil.copy(path, dst)
            copied += 1
    with ProcessPoolExecutor(max(1, workers)) as pool:
        errors = [e for e in tqdm(pool.map(reencode_video, jobs, chunksize=4), total=len(jobs),
                                  desc="reencode", unit="video") if e]
    for e in errors:
        log.warning("kept unchanged: %s", e)
    return {"videos": len(jobs), "other_files": copied, "kept_unchanged": errors, "short_side": short_side,
            "gop": gop}


def add_reencode_arguments(p):
    p.add_argument("--root", required=True, help="dataset root (any svt layout)")
    p.add_argument("--out", required=True, help="root of the re-encoded copy (same layout)")
    p.add_argument("--short-side", type=int, default=Reencode().short_side,
                   help="target short side in pixels (256 or 320)")
    p.add_argument("--gop", type=int, default=Reencode().gop, help="frames between keyframes")
    p.add_argument("--workers", type=int, default=1)


def run_reencode(args) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    summary = reencode_dataset(Path(args.root), Path(args.out), args.short_side, args.gop, args.workers)
    print(json.dumps({k: v for k, v in summary.items() if k != "kept_unchanged"}
                     | {"kept_unchanged": len(summary["kept_unchanged"])}))
    return 0
