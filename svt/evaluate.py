"""What `svt linear` and `svt finetune` share: the backbone under evaluation, slow-fast clip features, metrics.

Slow-fast inference (paper §3.4, the authors' procedure in official issues #10 / #18): every video gives a slow
(8 x 224) and a fast (64 x 96) clip through the ONE backbone (positional embeddings resized on the fly); the
fused feature is the mean of the two CLS features. At test time each clip is taken at 3 spatial crops, the
crop's fused feature is classified and the class probabilities are averaged over the crops. With
`slow_fast: false` (Table 8, first row) only the slow clip is used.

Baselines use the same protocol: `--checkpoint random` (random init) and a DINO ImageNet ViT checkpoint
(spatial weights only, temporal attention copied from spatial: what SVT starts from).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from importlib import resources
from pathlib import Path

import jsonschema
import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from svt import stats
from svt.checkpoint import load_checkpoint
from svt.data import EvalDataset, make_loader
from svt.device import autocast
from svt.io import file_digest, save_json
from svt.model import VisionTransformer, backbone_config
from svt.settings import Evaluation, to_dict

log = logging.getLogger("svt.evaluate")

SCHEMA = json.loads(resources.files("svt").joinpath("schemas/metrics.schema.json").read_text())


def clip_specs(cfg: Evaluation) -> list[tuple[int, int]]:
    """(frames, size) of the clips fused per video: slow and fast, or slow alone."""
    slow = (cfg.slow_clip.frames, cfg.slow_clip.size)
    fast = (cfg.fast_clip.frames, cfg.fast_clip.size)
    return [slow, fast] if cfg.slow_fast else [slow]


def config_hash(cfg: Evaluation, checkpoint: str) -> str:
    blob = json.dumps({"config": to_dict(cfg), "checkpoint": str(checkpoint)}, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def load_backbone(checkpoint: str, cfg: Evaluation, device) -> tuple[VisionTransformer, dict]:
    """The backbone to evaluate and where it came from. An SVT checkpoint's sidecar JSON (written by
    `svt pretrain`) fixes the architecture; otherwise `model` in the config does."""
    model_cfg = vars(cfg.model)
    sidecar = Path(str(checkpoint) + ".json")
    if checkpoint != "random" and sidecar.exists():
        model_cfg = json.loads(sidecar.read_text())["config"]["model"]
    model_cfg = dict(model_cfg)
    preset = model_cfg.pop("preset")
    model_cfg.pop("drop_path_rate", None)  # evaluation backbones run without stochastic depth
    torch.manual_seed(cfg.seed)  # so `random` is one fixed network in every protocol and every rerun
    backbone = VisionTransformer(backbone_config(preset, **model_cfg))
    source = {"checkpoint": str(checkpoint), "preset": preset, "format": "random"}
    if checkpoint != "random":
        source["sha256"] = file_digest(checkpoint, "sha256")  # provenance: which bytes these numbers come from
        report = load_checkpoint(backbone, checkpoint)
        if report.missing:
            raise ValueError(f"{checkpoint}: backbone weights missing for {len(report.missing)} keys "
                             f"({', '.join(report.missing[:4])}, ...); is it a checkpoint of a {preset} model?")
        log.info("%s", report)
        source["format"] = report.format
    return backbone.to(device), source


def class_names(index: pd.DataFrame) -> list[str]:
    pairs = index[["label", "label_name"]].drop_duplicates().sort_values("label")
    names = [""] * (int(pairs.label.max()) + 1)
    for label, name in zip(pairs.label, pairs.label_name):
        names[int(label)] = str(name)
    return names


def eval_datasets(index: pd.DataFrame, root: str, cfg: Evaluation, train_split: str = "train",
                  test_split: str = "val"):
    common = dict(clips=clip_specs(cfg), crops=cfg.crops, flip=cfg.flip, seed=cfg.seed,
                  num_threads=cfg.data.decode_threads)
    return (EvalDataset(index, root, train_split, "train", **common),
            EvalDataset(index, root, test_split, "test", **common))


def fused_features(backbone: VisionTransformer, clips: list[torch.Tensor]) -> torch.Tensor:
    """clips: one tensor per clip spec, (B, 3, T, S, S) or (B, crops, 3, T, S, S) -> mean CLS (B[, crops], D)."""
    feats = []
    for x in clips:
        lead = x.shape[:-4]
        feats.append(backbone(x.reshape(-1, *x.shape[-4:])).reshape(*lead, -1))
    return torch.stack(feats).mean(0)


@torch.no_grad()
def extract(backbone: VisionTransformer, dataset: EvalDataset, cfg: Evaluation, device, amp, desc: str) -> dict:
    """Features of every video: {"features": (N[, crops], D) float32, "labels": (N,), "skipped": [paths]}.
    Videos that fail to decode at test time get label -1 and are listed, not guessed."""
    backbone.eval()
    loader = make_loader(dataset, cfg.batch_size, cfg.data.workers, shuffle=False, seed=cfg.seed)
    feats, labels, skipped = [], [], []
    for batch in tqdm(loader, desc=desc, unit="batch"):
        with autocast(device, amp):
            f = fused_features(backbone, [c.to(device, non_blocking=True) for c in batch["clips"]])
        feats.append(f.float().cpu())
        labels.append(batch["label"])
        skipped += batch["failed"] if dataset.mode == "test" else []
    return {"features": torch.cat(feats), "labels": torch.cat(labels), "skipped": skipped}


def metrics(probs: torch.Tensor, labels: torch.Tensor, names: list[str]) -> dict:
    """Top-1 / top-5 (%) and per-class accuracy over the videos with a label (>= 0)."""
    keep = labels >= 0
    probs, labels = probs[keep], labels[keep]
    k = min(5, probs.shape[1])
    top = probs.topk(k, dim=1).indices
    hit1 = top[:, 0] == labels
    hit5 = (top == labels[:, None]).any(1)
    per_class = {}
    for c in labels.unique().tolist():
        per_class[names[c]] = round(100.0 * float(hit1[labels == c].float().mean()), 4)
    return {"top1": 100.0 * float(hit1.float().mean()), "top5": 100.0 * float(hit5.float().mean()),
            "mean_class_accuracy": float(np.mean(list(per_class.values()))), "per_class_accuracy": per_class,
            "videos_evaluated": int(keep.sum())}


def top1_interval(top1: float, videos: int) -> dict:
    k, low, high = stats.top1_interval(top1, videos)
    return {"low": round(low, 4), "high": round(high, 4), "correct": k, "method": stats.METHOD}


def write_metrics(path: str, result: dict, *, model: str, protocol: str, dataset: str, cfg: Evaluation, source: dict,
                  skipped: list[str], num_classes: int, seconds: float) -> dict:
    out = {**result, "top1_interval": top1_interval(result["top1"], result["videos_evaluated"]),
           "model": model, "protocol": protocol, "dataset": dataset, "videos_skipped": len(skipped),
           "skipped": skipped, "num_classes": num_classes, "chance_top1": 100.0 / num_classes,
           "slow_fast": bool(cfg.slow_fast), "clips": [list(c) for c in clip_specs(cfg)], "crops": cfg.crops,
           "checkpoint": source, "config": to_dict(cfg), "config_hash": config_hash(cfg, source["checkpoint"]),
           "seconds": round(seconds, 2), "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    jsonschema.validate(out, SCHEMA)
    save_json(path, out)
    return out


def add_common_arguments(p):
    p.add_argument("--checkpoint", required=True,
                   help="pretrained weights (any format svt reads), or `random` for the random-init baseline")
    p.add_argument("--config", required=True, help="YAML with the evaluation settings (see config/README.md)")
    p.add_argument("--index", required=True, help="video index of the downstream dataset (svt index)")
    p.add_argument("--root", required=True, help="dataset root the index paths are relative to")
    p.add_argument("--dataset", required=True, help="dataset name recorded in the metrics JSON")
    p.add_argument("--model", required=True,
                   help="name of the evaluated model, recorded in the metrics JSON (svt, random, spatial_init, or an "
                        "ablation variant)")
    p.add_argument("--work", required=True, help="work folder (feature cache / checkpoints; resumed from)")
    p.add_argument("--out", required=True, help="metrics JSON")
