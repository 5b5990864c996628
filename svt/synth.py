"""`svt synth`: deterministic procedural video datasets in the real benchmarks' formats (the embedded demo).

Each video shows one textured, coloured object in front of a grey blocky backdrop; the backdrop undergoes the
object's motion too (camera-like), so motion is visible in every patch rather than in the one or two patches a
small object covers (a micro ViT trained on the old static backdrop never generalised motion). Classes are defined by
- motion: direction of travel, speed, rotation sense, growing / shrinking, periodic oscillation vs one-shot travel;
- appearance: shape and colour.
The object's position, size and angle at the middle frame are drawn independently of the class, so a single
frame says nothing about a motion class: only frame-to-frame change does.

Sets, written as real files in each dataset's container, codec, folder layout and annotation format (so the
same indexer and loaders read them; each benchmark's spec in svt/benchmarks/ gives its codec, classes, file
names and annotation files):
- kinetics400 (mini-K400): h264 .mp4, CVDF-style CSV; appearance-heavy classes (shape x colour), random motion.
- ucf101 (mini-UCF-101): mpeg4 .avi, classInd / trainlist / testlist; classes = motion x shape.
- hmdb51 (mini-HMDB-51): mpeg4 .avi, split files with tags 0/1/2; classes = motion x colour.
- ssv2 (mini-SSv2): VP9 .webm, labels.json / train.json / validation.json; motion-only classes, random appearance.
"""

from __future__ import annotations

import hashlib
import json
import math
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from svt import benchmarks
from svt.io import atomic_write

MOTIONS = ["right", "left", "up", "down", "rotate_cw", "rotate_ccw", "grow", "shrink",
           "oscillate_horizontal", "oscillate_vertical", "right_fast", "pulse"]
SHAPES = ["square", "triangle", "cross", "bar", "disk", "ring"]
COLOURS = {"red": (220, 40, 40), "green": (40, 200, 60), "blue": (50, 80, 230), "yellow": (235, 215, 40),
           "magenta": (210, 50, 200), "cyan": (40, 210, 220)}
TEXTURES = ["solid", "stripes", "checker"]
@dataclass(frozen=True)
class Appearance:
    shape: str
    colour: str
    texture: str


@dataclass(frozen=True)
class SynthConfig:
    classes: int = 6
    train_per_class: int = 8
    val_per_class: int = 3
    width: int = 80
    height: int = 64
    frames: int = 40
    fps: int = 12


def class_specs(dataset: str, n: int) -> list[dict]:
    """The first n classes of a set: each fixes motion and/or appearance attributes (None = random)."""
    if dataset not in benchmarks.names():
        raise ValueError(f"unknown dataset {dataset!r}; known: {', '.join(benchmarks.names())}")
    specs = benchmarks.get(dataset).synthetic.classes
    if n > len(specs):
        raise ValueError(f"synth: {dataset} has at most {len(specs)} classes, config asks for {n}")
    # Interleave so that small n already mixes attributes (e.g. UCF: different motions AND shapes).
    order = sorted(range(len(specs)), key=lambda i: (i % 7, i))
    return [specs[i] for i in order[:n]]


def words(spec: dict) -> list[str]:
    """A class spec's fixed attributes, in the order class names use them."""
    return [spec[k] for k in ("motion", "colour", "shape") if k in spec]


def class_name(dataset: str, spec: dict) -> str:
    return benchmarks.get(dataset).synthetic.class_name(spec)


def _trajectory(motion: str, frames: int, w: int, h: int, rng: np.random.Generator):
    """Per-frame centre x, y, angle and radius; the middle-frame state does not depend on the motion."""
    tau = np.linspace(0, 1, frames) - 0.5
    cx = np.full(frames, rng.uniform(0.3, 0.7) * w)
    cy = np.full(frames, rng.uniform(0.3, 0.7) * h)
    angle = np.full(frames, rng.uniform(0, 2 * math.pi))
    radius = np.full(frames, rng.uniform(0.13, 0.2) * min(w, h))
    travel = rng.uniform(0.3, 0.45)
    turns = rng.uniform(0.5, 1.0)
    phase = rng.uniform(0, 2 * math.pi)
    if motion in ("right", "left", "right_fast"):
        sign = -1 if motion == "left" else 1
        cx = cx + sign * travel * (1.5 if motion == "right_fast" else 1.0) * w * tau
    elif motion in ("up", "down"):
        cy = cy + (1 if motion == "down" else -1) * travel * h * tau
    elif motion in ("rotate_cw", "rotate_ccw"):
        angle = angle + (1 if motion == "rotate_cw" else -1) * 2 * math.pi * turns * tau
    elif motion in ("grow", "shrink"):
        radius = radius * np.exp((1 if motion == "grow" else -1) * math.log(2.2) * tau)
    elif motion == "oscillate_horizontal":
        cx = cx + 0.15 * w * np.sin(4 * math.pi * tau + phase)
    elif motion == "oscillate_vertical":
        cy = cy + 0.15 * h * np.sin(4 * math.pi * tau + phase)
    elif motion == "pulse":
        radius = radius * (1 + 0.35 * np.sin(6 * math.pi * tau + phase))
    else:
        raise ValueError(f"unknown motion {motion!r}")
    return cx, cy, angle, radius


def _mask(shape: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    au, av = np.abs(u), np.abs(v)
    if shape == "square":
        return np.maximum(au, av) <= 0.8
    if shape == "triangle":
        return (v <= 0.7) & (v >= 2.0 * au - 1.0)
    if shape == "cross":
        return ((au < 0.3) & (av < 1)) | ((av < 0.3) & (au < 1))
    if shape == "bar":
        return (au < 1) & (av < 0.35)
    r2 = u * u + v * v
    if shape == "disk":
        return r2 <= 0.8
    if shape == "ring":
        return (r2 <= 1.0) & (r2 >= 0.35)
    raise ValueError(f"unknown shape {shape!r}")


def _backdrop(dx, dy, cx, cy, angle, radius, W: int, H: int, rng: np.random.Generator) -> np.ndarray:
    """(T, H, W, 3) grey blocky texture that undergoes the object's motion (translation, rotation and scaling about
    the object); dx, dy: (T, H, W) pixel offsets from the object's centre."""
    T = len(cx)
    cell = 8.0
    gh, gw = int(3 * H / cell) + 2, int(3 * W / cell) + 2  # covers the frame's neighbourhood the motion can reach
    # Grey, so that no backdrop colour identifies a video across views: the shared cues are motion and the object.
    coarse = np.repeat(rng.uniform(50, 210, size=(gh, gw, 1)), 3, axis=2)
    m = T // 2
    c, s = np.cos(angle - angle[m])[:, None, None], np.sin(angle - angle[m])[:, None, None]
    scale = (radius / radius[m])[:, None, None]
    # Where each pixel of frame t was at the middle frame; the texture is fixed in that frame.
    u = (c * dx + s * dy) / scale + cx[m]
    v = (-s * dx + c * dy) / scale + cy[m]
    gx = np.clip((u + W) / cell, 0, gw - 1.001)
    gy = np.clip((v + H) / cell, 0, gh - 1.001)
    x0, y0 = gx.astype(int), gy.astype(int)
    fx, fy = (gx - x0)[..., None], (gy - y0)[..., None]
    return ((1 - fy) * (1 - fx) * coarse[y0, x0] + (1 - fy) * fx * coarse[y0, x0 + 1]
            + fy * (1 - fx) * coarse[y0 + 1, x0] + fy * fx * coarse[y0 + 1, x0 + 1])


def render(motion: str, look: Appearance, cfg: SynthConfig, rng: np.random.Generator) -> np.ndarray:
    """uint8 (T, H, W, 3), vectorised over frames and pixels."""
    T, H, W = cfg.frames, cfg.height, cfg.width
    cx, cy, angle, radius = _trajectory(motion, T, W, H, rng)
    ys, xs = np.mgrid[0:H, 0:W].astype(np.float64)
    dx = xs[None] - cx[:, None, None]
    dy = ys[None] - cy[:, None, None]
    bg = _backdrop(dx, dy, cx, cy, angle, radius, W, H, rng)
    c, s = np.cos(angle)[:, None, None], np.sin(angle)[:, None, None]
    u = (c * dx + s * dy) / radius[:, None, None]
    v = (-s * dx + c * dy) / radius[:, None, None]
    mask = _mask(look.shape, u, v)
    colour = np.array(COLOURS[look.colour], dtype=np.float64)
    if look.texture == "stripes":
        shade = np.where(np.sin(5 * u) > 0, 1.0, 0.55)
    elif look.texture == "checker":
        shade = np.where((np.floor(2.5 * u) + np.floor(2.5 * v)) % 2 == 0, 1.0, 0.6)
    else:
        shade = np.ones_like(u)
    obj = shade[..., None] * colour
    video = np.where(mask[..., None], obj, bg)
    return np.clip(video, 0, 255).astype(np.uint8)


def encode(frames: np.ndarray, path: Path, codec: str, fps: int) -> None:
    """Write frames with PyAV so that the same frames give the same bytes (measured: 8 of 30 x264 encodings of the
    same frames differed before): explicit timestamps, yuv420p frames built from arrays, single-threaded encoders,
    libvpx in `good` mode (not the clock-driven `realtime`), and bitexact muxing (no random Matroska UID)."""
    import av

    def write(tmp):
        container_format = {".mp4": "mp4", ".avi": "avi", ".webm": "webm"}[path.suffix]
        with av.open(tmp, "w", format=container_format, options={"fflags": "+bitexact"}) as out:
            stream = out.add_stream(codec, rate=fps)
            stream.width, stream.height = frames.shape[2], frames.shape[1]
            stream.pix_fmt = "yuv420p"
            stream.thread_count = 1
            if codec == "libx264":
                # mbtree=0: x264's MB-tree lookahead gave 2 different encodings of the same frames in 300
                stream.options = {"preset": "veryfast", "crf": "18", "g": "16", "threads": "1",
                                  "x264-params": "mbtree=0"}
            elif codec == "libvpx-vp9":
                stream.options = {"deadline": "good", "cpu-used": "5", "crf": "20", "b": "0", "threads": "1",
                                  "row-mt": "0"}
            else:
                stream.bit_rate = 1_500_000
                stream.options = {"g": "12"}
            for i, img in enumerate(frames):
                # converted to yuv420p and copied into a fresh frame: the encoder then reads no stale row padding
                yuv = av.VideoFrame.from_ndarray(img, format="rgb24").reformat(format="yuv420p").to_ndarray()
                frame = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
                frame.pts = i
                out.mux(stream.encode(frame))
            out.mux(stream.encode())

    atomic_write(path, write)


def _video_job(job) -> None:
    dataset, seed, k, spec, cfg, path = job
    synthetic = benchmarks.get(dataset).synthetic
    rng = np.random.default_rng([seed, synthetic.stream, k])
    look = Appearance(spec.get("shape") or SHAPES[rng.integers(len(SHAPES))],
                      spec.get("colour") or list(COLOURS)[rng.integers(len(COLOURS))],
                      TEXTURES[rng.integers(len(TEXTURES))])
    motion = spec.get("motion") or MOTIONS[rng.integers(len(MOTIONS))]
    encode(render(motion, look, cfg, rng), Path(path), synthetic.codec, cfg.fps)


def _plan(dataset: str, cfg: SynthConfig, seed: int) -> list[dict]:
    """One record per video: class, split, file name (relative), in a fixed order."""
    records = []
    specs = class_specs(dataset, cfg.classes)
    for label, spec in enumerate(specs):
        name = class_name(dataset, spec)
        for split, count in (("train", cfg.train_per_class), ("val", cfg.val_per_class)):
            for j in range(count):
                k = len(records)
                records.append({"label": label, "name": name, "spec": spec, "split": split, "k": k, "j": j})
    place = benchmarks.get(dataset).synthetic.place
    for r in records:
        r.update(place(r, hashlib.sha1(f"{seed}:{dataset}:{r['k']}".encode()).hexdigest()))
    return records


def write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def synthesize(dataset: str, root: str | Path, cfg: SynthConfig, seed: int = 0, workers: int = 1) -> list[dict]:
    root = Path(root)
    records = _plan(dataset, cfg, seed)
    jobs = [(dataset, seed, r["k"], r["spec"], cfg, str(root / r["path"])) for r in records]
    desc = f"synth {dataset}"
    if workers > 1:
        # forkserver: a worker forked from a parent that already used libav (e.g. indexed a set) fails to open
        # libvpx-vp9 ("Invalid argument")
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("forkserver")) as pool:
            list(tqdm(pool.map(_video_job, jobs, chunksize=4), total=len(jobs), desc=desc, unit="video"))
    else:
        for job in tqdm(jobs, desc=desc, unit="video"):
            _video_job(job)
    benchmarks.get(dataset).synthetic.write_annotations(root, records)
    return records


def add_synth_arguments(p):
    p.add_argument("--dataset", required=True, choices=benchmarks.names())
    p.add_argument("--out", required=True, help="dataset root to write")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=1)
    for f, default in SynthConfig().__dict__.items():
        p.add_argument("--" + f.replace("_", "-"), type=int, default=default)


def run_synth(args) -> int:
    cfg = SynthConfig(**{f: getattr(args, f) for f in SynthConfig().__dict__})
    records = synthesize(args.dataset, args.out, cfg, args.seed, args.workers)
    print(json.dumps({"dataset": args.dataset, "videos": len(records), "classes": cfg.classes}))
    return 0
