"""SVT's spatiotemporal views (paper §3.2.1-3.2.2, Fig. 2) and the evaluation clips (§3.4, §4.1).

A view is planned as frame indices + a crop box + an output size; all views of a video are then cut from ONE
decode of the union of their indices (svt/data.py). Samplers:
- `svt` (paper, default): 2 global views, each uniformly sampled over its own random 90% of the video, T = 16 and
  8, 224 px; 8 local views, each from its own random 1/8 of the video and ~40% of each spatial side,
  T in {2, 4, 8, 16}, 96 px.
- `tis` (Table 6): the global views are two clips of equal length and frame count whose start gap is drawn from
  the linearly decreasing distribution of CVRL's temporal interval sampler; local views as `svt`.
- `official` (kahnchana/svt train.sh): every view 8 frames; globals over [0, L-5] and [5, L]; locals over
  windows of L // 8; floor of linspace as in its `temporal_sampling`.
Ablation switches (Table 5): spatial_variation=False -> no cropping, every view is the full frame at the global
size; temporal_variation=False -> every view is sampled from one shared window of the video.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class ViewFamily:
    frames: tuple[int, ...]  # T of each view; its length is the number of views
    size: int
    temporal_fraction: float  # window length / video length
    scale: tuple[float, float]  # crop area / frame area

    @property
    def count(self) -> int:
        return len(self.frames)


@dataclass(frozen=True)
class ViewConfig:
    sampler: str = "svt"
    global_views: ViewFamily = ViewFamily((16, 8), 224, 0.9, (0.4, 1.0))
    # ~40% of each side (paper) = 16% of the area; the official code's RandomResizedCrop uses (0.05, 0.4).
    local_views: ViewFamily = ViewFamily((2, 2, 4, 4, 8, 8, 16, 16), 96, 1 / 8, (0.12, 0.2))
    spatial_variation: bool = True
    temporal_variation: bool = True
    aspect_ratio: tuple[float, float] = (3 / 4, 4 / 3)
    tis_clip_fraction: float = 0.5

    def __post_init__(self):
        if self.sampler not in ("svt", "tis", "official"):
            raise ValueError(f"views.sampler must be svt, tis or official, got {self.sampler!r}")
        if self.sampler == "tis" and len(set(self.global_views.frames)) != 1:
            raise ValueError("views.sampler tis needs equal global_views.frames (TIS clips share a frame rate)")


OFFICIAL_VIEWS = ViewConfig(
    sampler="official",
    global_views=ViewFamily((8, 8), 224, 1.0, (0.4, 1.0)),
    local_views=ViewFamily((8,) * 8, 96, 1 / 8, (0.05, 0.4)),
)


@dataclass
class View:
    kind: str  # "global" | "local" | "clip"
    indices: np.ndarray  # frame indices into the video
    crop: tuple[int, int, int, int]  # top, left, height, width in the decoded frame
    size: int  # output is size x size
    extra: dict = field(default_factory=dict)


def uniform_indices(start: float, length: float, t: int, n_frames: int) -> np.ndarray:
    """t indices spread uniformly over [start, start + length - 1], rounded and clamped to the video."""
    idx = np.linspace(start, start + max(length, 1) - 1, t).round().astype(np.int64)
    return np.clip(idx, 0, n_frames - 1)


def random_window(n_frames: int, fraction: float, rng: np.random.Generator) -> tuple[int, int]:
    length = max(1, int(round(fraction * n_frames)))
    return int(rng.integers(0, n_frames - length + 1)), length


def random_resized_crop(h: int, w: int, scale, ratio, rng: np.random.Generator) -> tuple[int, int, int, int]:
    """torchvision's RandomResizedCrop box: area ~ U(scale), log-uniform aspect ratio, 10 trials."""
    area = h * w
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target = area * rng.uniform(*scale)
        ar = math.exp(rng.uniform(*log_ratio))
        cw, ch = int(round(math.sqrt(target * ar))), int(round(math.sqrt(target / ar)))
        if 0 < cw <= w and 0 < ch <= h:
            return int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1)), ch, cw
    # Fallback: the central crop with the aspect ratio clamped into range.
    in_ratio = w / h
    if in_ratio < ratio[0]:
        cw, ch = w, int(round(w / ratio[0]))
    elif in_ratio > ratio[1]:
        ch, cw = h, int(round(h * ratio[1]))
    else:
        cw, ch = w, h
    return (h - ch) // 2, (w - cw) // 2, ch, cw


def tis_gap(max_gap: int, rng: np.random.Generator) -> int:
    """CVRL's temporal interval: density decreasing linearly from 0 to max_gap (inverse-CDF sampling)."""
    return int(round(max_gap * (1.0 - math.sqrt(1.0 - rng.uniform()))))


def _svt_windows(n: int, cfg: ViewConfig, rng) -> list[tuple[str, int, float, float]]:
    """(kind, T, start, length) of every view, globals first."""
    out = []
    shared = random_window(n, cfg.global_views.temporal_fraction, rng) if not cfg.temporal_variation else None
    if cfg.sampler == "tis":
        length = max(1, int(round(cfg.tis_clip_fraction * n)))
        s1 = int(rng.integers(0, n - length + 1))
        gap = tis_gap(n - length, rng)
        later = s1 + gap <= n - length
        earlier = s1 - gap >= 0
        s2 = s1 + gap if later and (not earlier or rng.uniform() < 0.5) else (s1 - gap if earlier else s1)
        starts = [(s1, length), (s2, length)] if shared is None else [shared, shared]
        out += [("global", t, s, ln) for t, (s, ln) in zip(cfg.global_views.frames, starts)]
    else:
        for t in cfg.global_views.frames:
            s, ln = shared or random_window(n, cfg.global_views.temporal_fraction, rng)
            out.append(("global", t, s, ln))
    for t in cfg.local_views.frames:
        s, ln = shared or random_window(n, cfg.local_views.temporal_fraction, rng)
        out.append(("local", t, s, ln))
    return out


def _official_indices(n: int, cfg: ViewConfig, rng) -> list[tuple[str, np.ndarray]]:
    def floor_linspace(s, e, t):
        return np.clip(np.linspace(s, e, t), 0, n - 1).astype(np.int64)

    g = cfg.global_views.frames
    out = [("global", floor_linspace(0, n - 5, g[0])), ("global", floor_linspace(5, n, g[1]))]
    width = max(1, n // 8)
    for t in cfg.local_views.frames:
        start = int(rng.integers(0, max(1, n - width - 1)))
        out.append(("local", floor_linspace(start, start + width, t)))
    return out


def sample_views(n_frames: int, height: int, width: int, cfg: ViewConfig, rng: np.random.Generator) -> list[View]:
    """Plan the 2 + 8 views of one video: globals first, then locals."""
    if cfg.sampler == "official":
        temporal = _official_indices(n_frames, cfg, rng)
    else:
        temporal = [(kind, uniform_indices(s, ln, t, n_frames)) for kind, t, s, ln in _svt_windows(n_frames, cfg, rng)]
    views = []
    for kind, idx in temporal:
        fam = cfg.global_views if kind == "global" else cfg.local_views
        if cfg.spatial_variation:
            crop = random_resized_crop(height, width, fam.scale, cfg.aspect_ratio, rng)
            size = fam.size
        else:
            crop, size = (0, 0, height, width), cfg.global_views.size
        views.append(View(kind, idx, crop, size))
    return views


def square_crops(height: int, width: int, crops: int) -> list[tuple[int, int, int, int]]:
    """`crops` squares of the short side spread along the long side (3: left / centre / right)."""
    side = min(height, width)
    if crops == 1:
        return [((height - side) // 2, (width - side) // 2, side, side)]
    offsets = np.linspace(0, max(height, width) - side, crops).round().astype(int)
    if width >= height:
        return [(0, int(o), side, side) for o in offsets]
    return [(int(o), 0, side, side) for o in offsets]


def eval_test_views(n_frames: int, height: int, width: int, clips: list[tuple[int, int]], crops: int) -> list[View]:
    """Slow-fast testing: each (T, size) clip uniformly over the whole video, at `crops` spatial crops."""
    views = []
    for t, size in clips:
        idx = uniform_indices(0, n_frames, t, n_frames)
        views += [View("clip", idx, box, size, {"clip": (t, size), "crop": c})
                  for c, box in enumerate(square_crops(height, width, crops))]
    return views


def eval_train_views(n_frames: int, height: int, width: int, clips: list[tuple[int, int]],
                     rng: np.random.Generator, temporal_fraction: float = 0.9,
                     scale_jitter: tuple[float, float] = (256, 320)) -> list[View]:
    """Training clips for linear / fine-tune: one per (T, size), each from its own random window, with the
    TimeSformer recipe's spatial jitter (short side rescaled to U[256, 320], random crop of the output size)."""
    views = []
    short = min(height, width)
    for t, size in clips:
        s, ln = random_window(n_frames, temporal_fraction, rng)
        # Crop side in source pixels equivalent to a `size` crop after rescaling the short side to U(jitter).
        side = min(short, max(1, int(round(short * 224 / rng.uniform(*scale_jitter)))))
        top, left = int(rng.integers(0, height - side + 1)), int(rng.integers(0, width - side + 1))
        views.append(View("clip", uniform_indices(s, ln, t, n_frames), (top, left, side, side), size,
                          {"clip": (t, size)}))
    return views


def union_indices(views: list[View]) -> tuple[np.ndarray, list[np.ndarray]]:
    """Distinct frame indices of all views, and each view's positions into that union."""
    union = np.unique(np.concatenate([v.indices for v in views]))
    return union, [np.searchsorted(union, v.indices) for v in views]
