"""Datasets and loaders: every view of a sample is cut from ONE decode of the union of its frame indices.

Deterministic given (seed, epoch, index): each sample draws from its own numpy Generator, so worker count and
order do not change what a sample is. A video that fails to decode is replaced by another one (drawn from the
same Generator) and reported in the batch's `failed` list, which the training loop counts and logs; an epoch
never ends because of a broken file. At evaluation time a broken video is skipped and counted instead.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from svt import augment
from svt.video import DecodeError, read_frames
from svt.views import ViewConfig, eval_test_views, eval_train_views, sample_views, union_indices

log = logging.getLogger("svt.data")


def ok_rows(index: pd.DataFrame, split: str | None = None) -> pd.DataFrame:
    rows = index[index["status"] == "ok"]
    if split is not None:
        rows = rows[rows["split"] == split]
    return rows.reset_index(drop=True)


def crop_resize_uint8(frames: np.ndarray, crop: tuple[int, int, int, int], size: int) -> torch.Tensor:
    """uint8 (N, H, W, 3) -> uint8 (N, 3, size, size), channels-last in memory, one interpolate call for all frames.

    Resized while still uint8 (torch's channels-last uint8 antialiased bilinear kernel: ~9x the float path on one
    core, within 1 grey level of it)."""
    top, left, h, w = crop
    x = torch.from_numpy(np.ascontiguousarray(frames[:, top:top + h, left:left + w])).permute(0, 3, 1, 2)
    if (h, w) != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return x


def crop_resize(frames: np.ndarray, crop: tuple[int, int, int, int], size: int) -> torch.Tensor:
    """uint8 (N, H, W, 3) -> float (N, 3, size, size) in [0, 1]: the float tensor is only ever the small one."""
    return crop_resize_uint8(frames, crop, size).float().div_(255)


class VideoDataset(Dataset):
    """Shared machinery: the table of usable videos, per-sample generators, decode-once view cutting."""

    def __init__(self, index: pd.DataFrame, root: str | Path, split: str | None, seed: int = 0,
                 num_threads: int = 1, max_retries: int = 10):
        self.rows = ok_rows(index, split)
        if not len(self.rows):
            raise ValueError(f"no usable videos for split {split!r} under {root}")
        self.root = Path(root)
        self.seed = seed
        self.epoch = 0
        self.num_threads = num_threads
        self.max_retries = max_retries

    def __len__(self):
        return len(self.rows)

    def set_epoch(self, epoch: int):
        self.epoch = epoch

    def rng(self, i: int, attempt: int = 0) -> np.random.Generator:
        return np.random.default_rng([self.seed, self.epoch, i, attempt])

    def load(self, i: int, plan, replace: bool):
        """Plan the views of video i (plan(row, rng) -> views) and decode them once.

        On a decode error the video is replaced by a random other one (replace=True, training) or given up
        (frames None, evaluation). Returns (row position, rng, views, frames per view, failed paths).
        """
        failed, j = [], i
        for attempt in range(self.max_retries + 1):
            rng = self.rng(i, attempt)
            row = self.rows.iloc[j]
            views = plan(row, rng)
            try:
                return j, rng, views, self.decode_views(row, views), failed
            except DecodeError as e:
                log.warning("%s: %s", "replacing sample" if replace else "skipping", e)
                failed.append(str(row.path))
                if not replace:
                    return j, rng, views, None, failed
                j = int(rng.integers(len(self.rows)))
        raise RuntimeError(f"{self.max_retries + 1} videos in a row failed to decode; last: {failed[-1]}")

    def decode_views(self, row, views) -> list[np.ndarray]:
        union, positions = union_indices(views)
        frames = read_frames(self.root / row.path, union, num_frames=int(row.frames), num_threads=self.num_threads,
                             backend=row.backend)
        return [frames[pos] for pos in positions]


class PretrainDataset(VideoDataset):
    """Returns {"views": [2 global + 8 local tensors (3, T, S, S)], "index", "failed": [paths]}.

    augment_in_loader=False: the views are returned cropped and resized only, as uint8 (T, S, S, 3) (a quarter of
    the bytes through the workers' shared memory, no float pass on the loader's cores), with "params": each
    view's augmentation parameters, drawn here from the sample's generator exactly as the loader path draws
    them, for augment.apply_batch(augment.from_uint8(views)) on the training device."""

    def __init__(self, index, root, view_cfg: ViewConfig, aug_cfg: augment.AugmentConfig, split="train",
                 augment_in_loader: bool = True, **kw):
        super().__init__(index, root, split, **kw)
        self.view_cfg = view_cfg
        self.aug_cfg = aug_cfg
        self.augment_in_loader = augment_in_loader

    def plan(self, row, rng):
        return sample_views(int(row.frames), int(row.height), int(row.width), self.view_cfg, rng)

    def __getitem__(self, i):
        j, rng, views, clips, failed = self.load(i, self.plan, replace=True)
        out, params = [], []
        n_global = 0
        for view, frames in zip(views, clips):
            slot = min(n_global, 1) if view.kind == "global" else 2
            n_global += view.kind == "global"
            x = crop_resize_uint8(frames, view.crop, view.size)
            p = augment.sample_params(self.aug_cfg, len(frames), slot, rng)
            params.append(p)
            if self.augment_in_loader:
                out.append(augment.apply(x.float().div_(255), p).transpose(0, 1).contiguous())  # (3, T, S, S)
            else:
                out.append(x.permute(0, 2, 3, 1).contiguous())  # (T, S, S, 3): already this layout in memory
        sample = {"views": out, "index": j, "failed": failed}
        return sample if self.augment_in_loader else {**sample, "params": params}


class EvalDataset(VideoDataset):
    """Clips for linear / fine-tune evaluation.

    mode "train": one randomly placed and cropped clip per (T, size) spec, flip if allowed;
    mode "test": each spec uniformly over the whole video at `crops` spatial crops -> (crops, 3, T, S, S).
    Returns {"clips": [...], "label", "index", "failed"}; in test mode a broken video gives label -1 and is
    skipped by the evaluator (counted), in train mode it is replaced.
    """

    def __init__(self, index, root, split: str, mode: str, clips: list[tuple[int, int]], crops: int = 3,
                 flip: bool = True, **kw):
        super().__init__(index, root, split, **kw)
        if mode not in ("train", "test"):
            raise ValueError(f"mode must be train or test, got {mode!r}")
        self.mode, self.clips, self.crops, self.flip = mode, [tuple(c) for c in clips], crops, flip

    def _views(self, row, rng):
        n, h, w = int(row.frames), int(row.height), int(row.width)
        if self.mode == "test":
            return eval_test_views(n, h, w, self.clips, self.crops)
        return eval_train_views(n, h, w, self.clips, rng)

    def __getitem__(self, i):
        j, rng, views, frames, failed = self.load(i, self._views, replace=self.mode == "train")
        if frames is None:
            return {"clips": [torch.zeros(self.crops, 3, t, s, s) for t, s in self.clips],
                    "label": -1, "index": i, "failed": failed}
        tensors = []
        for view, fr in zip(views, frames):
            x = crop_resize(fr, view.crop, view.size)
            if self.mode == "train" and self.flip and rng.uniform() < 0.5:
                x = x.flip(-1)
            tensors.append(augment.normalize(x).transpose(0, 1))  # (3, T, S, S)
        if self.mode == "test":
            per_clip = [torch.stack(tensors[k * self.crops:(k + 1) * self.crops]) for k in range(len(self.clips))]
        else:
            per_clip = tensors
        return {"clips": per_clip, "label": int(self.rows.label.iat[j]), "index": j, "failed": failed}


def collate(samples: list[dict]) -> dict:
    """Stack view k of every sample into one tensor; concatenate the failure lists."""
    key = "views" if "views" in samples[0] else "clips"
    out = {key: [torch.stack(group) for group in zip(*(s[key] for s in samples))],
           "index": torch.tensor([s["index"] for s in samples]),
           "failed": [p for s in samples for p in s["failed"]]}
    if "label" in samples[0]:
        out["label"] = torch.tensor([s["label"] for s in samples])
    if "params" in samples[0]:  # per view: every sample's augmentation parameters
        out["params"] = [list(group) for group in zip(*(s["params"] for s in samples))]
    return out


def make_loader(dataset: Dataset, batch_size: int, workers: int, shuffle: bool, seed: int,
                sampler=None, drop_last: bool = False) -> DataLoader:
    g = torch.Generator().manual_seed(seed)
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle and sampler is None, sampler=sampler,
                      num_workers=workers, collate_fn=collate, drop_last=drop_last, generator=g,
                      persistent_workers=False, pin_memory=torch.cuda.is_available())
