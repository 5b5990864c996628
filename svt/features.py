"""`svt features`: the slow-fast CLS feature of every video in a folder or a CSV, for your own analyses.

Each video gets exactly the evaluation's test-time feature (svt.evaluate: slow and fast clip at `crops` spatial
crops through the one backbone, the two CLS features averaged per crop): `crop_features` holds one vector per crop,
`feature` their mean (what k-NN compares). Written as Parquet, one row per video with its path and label when
known. Videos are probed first as the index probes them (exact frame counts, sequential decoding where random
access is not exact): one that cannot be decoded is listed in the log and the summary, not guessed.

Resumable: rows are written in parts (`OUT.parts/`, atomically) as they are computed; a rerun after an
interruption computes only the videos no part holds, then joins the parts into OUT.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from svt import settings
from svt.config import load_settings
from svt.data import EvalDataset
from svt.datasets import VIDEO_SUFFIXES, videos_in
from svt.device import autocast_dtype, init_distributed
from svt.evaluate import clip_specs, extract, load_backbone
from svt.io import atomic_write, fingerprint
from svt.model import PRESETS
from svt.settings import Evaluation
from svt.video import DecodeError, probe

log = logging.getLogger("svt.features")


def list_videos(videos: str | Path) -> pd.DataFrame:
    """path (absolute) and label name ("" when unknown) of every video: a folder (recursive; the first sub-folder
    names the label when the videos sit in class folders) or a CSV with a `path` column (relative to the CSV's
    folder) and optionally `label`."""
    videos = Path(videos)
    if videos.is_dir():
        files = videos_in(videos)
        if not files:
            raise ValueError(f"{videos}: no video files ({', '.join(VIDEO_SUFFIXES)})")
        labels = [p.relative_to(videos).parts[0] if len(p.relative_to(videos).parts) > 1 else "" for p in files]
        return pd.DataFrame({"path": [str(p) for p in files], "label_name": labels})
    if not videos.is_file():
        raise FileNotFoundError(f"{videos}: no such folder or CSV file")
    with open(videos, newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows or "path" not in rows[0]:
        raise ValueError(f"{videos}: expected a CSV with a header and a `path` column (and optionally `label`)")
    for i, r in enumerate(rows, start=2):
        if not (r.get("path") or "").strip():
            raise ValueError(f"{videos}: row {i} has an empty path")
    return pd.DataFrame({"path": [str((videos.parent / r["path"].strip()).resolve()) for r in rows],
                         "label_name": [(r.get("label") or "").strip() for r in rows]})


def probe_videos(table: pd.DataFrame) -> tuple[pd.DataFrame, list[dict]]:
    """Index rows (what EvalDataset reads) of the decodable videos, and the undecodable ones with the reason."""
    rows, failed = [], []
    for path, label in tqdm(zip(table["path"], table["label_name"]), total=len(table), desc="probe", unit="video"):
        try:
            info = probe(path, deep=True).to_dict()  # as the index probes: exact counts and access
        except DecodeError as e:
            failed.append({"path": path, "reason": e.reason})
            continue
        rows.append({"path": path, "label_name": label, "split": "all", "status": "ok", **info})
    index = pd.DataFrame(rows)
    if len(index):
        names = sorted(set(index["label_name"]))
        index["label"] = index["label_name"].map({n: i for i, n in enumerate(names)})
    return index, failed


def read_parts(parts: Path) -> pd.DataFrame:
    files = sorted(parts.glob("part-*.parquet"))
    if not files:
        return pd.DataFrame(columns=["path", "label", "feature", "crop_features"])
    return pd.concat([pd.read_parquet(p) for p in files])


def compute_features(checkpoint: str, videos: str | Path, out: str | Path, cfg: Evaluation | dict,
                     batch: int = 16) -> dict:
    cfg = settings.evaluation(cfg)
    out = Path(out)
    table = list_videos(videos)
    d = init_distributed()
    backbone, source = load_backbone(checkpoint, cfg, d.device)
    amp = autocast_dtype(d.device, cfg.precision)
    index, failed = probe_videos(table)
    for f in failed:
        log.warning("skipped (cannot be decoded): %s: %s", f["path"], f["reason"])
    # parts of another checkpoint or other clip settings are not reused
    plain = settings.to_dict(cfg)
    what = {k: plain[k] for k in ("model", "slow_fast", "slow_clip", "fast_clip", "crops", "seed")}
    parts = out.with_name(out.name + ".parts") / fingerprint(what, checkpoint)
    parts.mkdir(parents=True, exist_ok=True)
    done = read_parts(parts)
    todo = index[~index["path"].isin(set(done["path"]))].reset_index(drop=True) if len(index) else index
    log.info("%d videos: %d from an earlier run, %d to compute, %d undecodable", len(table), len(done), len(todo),
             len(failed))
    computed = 0
    in_process = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, workers=0))
    for start in range(0, len(todo), batch):
        chunk = todo.iloc[start:start + batch].reset_index(drop=True)
        dataset = EvalDataset(chunk, "/", "all", "test", clips=clip_specs(cfg), crops=cfg.crops,
                              flip=cfg.flip, seed=cfg.seed, num_threads=cfg.data.decode_threads)
        got = extract(backbone, dataset, in_process, d.device, amp,
                      f"features {start // batch + 1}/{-(-len(todo) // batch)}")
        keep = got["labels"] >= 0  # a video that broke after probing is listed, not guessed
        for p in np.asarray(chunk["path"])[~keep.numpy()]:
            failed.append({"path": p, "reason": "decoding failed while extracting"})
        feats = got["features"][keep]
        rows = chunk[keep.numpy()]
        part = pd.DataFrame({"path": rows["path"].to_numpy(), "label": rows["label_name"].to_numpy(),
                             "feature": [f.mean(0).numpy() for f in feats],  # float32
                             "crop_features": [list(f.numpy()) for f in feats]})
        atomic_write(parts / f"part-{len(list(parts.glob('part-*.parquet'))):06d}.parquet",
                     lambda tmp, part=part: part.to_parquet(tmp, index=False))
        computed += len(part)
    every = read_parts(parts)
    order = {p: i for i, p in enumerate(table["path"])}
    every = every.sort_values("path", key=lambda s: s.map(order)).reset_index(drop=True)
    atomic_write(out, lambda tmp: every.to_parquet(tmp, index=False))
    summary = {"videos": len(table), "written": len(every), "computed": computed, "reused": len(every) - computed,
               "skipped": failed, "checkpoint": source, "clips": [list(c) for c in clip_specs(cfg)],
               "crops": cfg.crops}
    atomic_write(Path(f"{out}.json"), lambda tmp: Path(tmp).write_text(json.dumps(summary, indent=2) + "\n"))
    return summary


def add_features_arguments(p):
    p.add_argument("--checkpoint", required=True, help="weights (any format svt reads) or `random`")
    p.add_argument("--videos", required=True, help="a folder of videos (class sub-folders give labels) or a CSV "
                                                   "with path[,label] (paths relative to the CSV)")
    p.add_argument("--out", required=True, help="Parquet: path, label, feature, crop_features (+ OUT.json summary)")
    p.add_argument("--model", default="vit_base_patch16", choices=sorted(PRESETS),
                   help="architecture when the checkpoint has no sidecar JSON (svt pretrain writes one)")
    p.add_argument("--config", help="evaluation settings (clips, crops, precision; default: the paper's)")
    p.add_argument("--batch", type=int, default=16, help="videos per part written (resume granularity)")


def run_features(args) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    cfg = load_settings(args.config, "evaluation") if args.config else {}
    cfg.setdefault("model", {"preset": args.model})
    if not Path(args.videos).exists():
        raise FileNotFoundError(f"--videos {args.videos}: no such folder or CSV file")
    summary = compute_features(args.checkpoint, args.videos, args.out, cfg, args.batch)
    print(json.dumps({k: v for k, v in summary.items() if k != "skipped"} | {"skipped": len(summary["skipped"])}))
    return 0
