"""`svt linear`: linear probe and k-NN on the frozen backbone (paper §4.1), with slow-fast inference.

Read top to bottom: features (cached in the work folder, one atomic file per pass, so an interrupted run
resumes and a rerun with other classifier settings reuses them) -> linear classifier, SGD lr 8e-3, momentum 0.9,
cosine decay, 20 epochs, batch 32 -> test: per-crop probabilities averaged -> metrics JSON. The k-NN metric
(official eval_knn: cosine similarity, k = 5, weights exp(sim / 0.07)) reads the same features.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from svt.checkpoint import save_checkpoint, torch_load
from svt import settings as settings_mod
from svt.config import load_settings
from svt.device import autocast_dtype, init_distributed
from svt.evaluate import (add_common_arguments, class_names, eval_datasets, extract, load_backbone, metrics,
                          write_metrics)
from svt.index import read_index
from svt.io import fingerprint, storage_error, write_error
from svt.schedules import cosine_schedule, set_lr
from svt.settings import Evaluation
from svt.tracking import Tracker

log = logging.getLogger("svt.linear")


def feature_key(cfg: Evaluation, checkpoint: str, index_path: str) -> str:
    """Cache folder name: changes with anything that changes the features (weights, data, clips, seed)."""
    plain = settings_mod.to_dict(cfg)
    what = {k: plain[k] for k in ("model", "slow_fast", "slow_clip", "fast_clip", "crops", "flip", "seed")}
    return fingerprint(what, index_path, checkpoint)


def cached(path: Path, compute) -> dict:
    if path.exists():
        return torch_load(path)
    out = compute()
    save_checkpoint(path, out)
    return out


def train_linear(train: list[dict], num_classes: int, cfg: Evaluation, log_step=None) -> tuple[torch.nn.Linear, float]:
    """Linear layer on cached features; epoch e uses feature copy e % len(train). `log_step(record)` receives
    each iteration's loss and lr (metrics.jsonl)."""
    lcfg = cfg.linear
    torch.manual_seed(cfg.seed)
    dim = train[0]["features"].shape[-1]
    head = torch.nn.Linear(dim, num_classes)
    torch.nn.init.normal_(head.weight, std=0.01)  # official eval_linear init
    torch.nn.init.zeros_(head.bias)
    optimizer = torch.optim.SGD(head.parameters(), lr=lcfg.lr, momentum=lcfg.momentum,
                                weight_decay=lcfg.weight_decay)
    n = len(train[0]["labels"])
    batch = cfg.batch_size
    iters = -(-n // batch)
    lr_s = cosine_schedule(lcfg.lr, 0.0, lcfg.epochs, iters)
    rng = np.random.default_rng(cfg.seed)
    it, loss = 0, float("nan")
    for epoch in range(lcfg.epochs):
        copy = train[epoch % len(train)]
        perm = torch.from_numpy(rng.permutation(n))
        for b in range(iters):
            idx = perm[b * batch:(b + 1) * batch]
            set_lr(optimizer, float(lr_s[it]))
            out = F.cross_entropy(head(copy["features"][idx]), copy["labels"][idx])
            optimizer.zero_grad(set_to_none=True)
            out.backward()
            optimizer.step()
            loss, it = out.item(), it + 1
            if log_step is not None:
                log_step({"iteration": it, "epoch": epoch, "loss": loss, "lr": float(lr_s[it - 1])})
    return head, loss


def knn_probs(train: dict, test: dict, num_classes: int, k: int, temperature: float) -> torch.Tensor:
    """Weighted k-NN vote (DINO / official eval_knn) on L2-normalised features; test crops averaged first."""
    bank = F.normalize(train["features"], dim=-1)
    query = test["features"]
    query = F.normalize(query.mean(1) if query.ndim == 3 else query, dim=-1)
    sim, idx = (query @ bank.T).topk(min(k, len(bank)), dim=1)
    votes = torch.zeros(len(query), num_classes)
    votes.scatter_add_(1, train["labels"][idx], (sim / temperature).exp())
    return votes / votes.sum(1, keepdim=True)


class MetricsLog:
    """The probe's metrics.jsonl in its work folder (rewritten by every run: the probe retrains from the cached
    features) and its live mirror (svt.tracking)."""

    def __init__(self, work: Path, cfg: Evaluation, key: str, name: str):
        self.path = work / "metrics.jsonl"
        self.path.write_text("")
        run = fingerprint(settings_mod.to_dict(cfg.linear), key)
        self.tracker = Tracker(work, cfg.tracking, run, name, settings_mod.to_dict(cfg))
        self.file = open(self.path, "a")

    def log(self, record: dict) -> None:
        line = json.dumps(record) + "\n"
        try:
            self.file.write(line)
        except OSError as e:
            storage = storage_error(e)
            if storage is None:
                raise
            raise write_error(self.path, storage, len(line)) from None
        self.tracker.log(record)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.file.close()
        self.tracker.close()


def run(cfg: Evaluation | dict, checkpoint: str, index_path: str, root: str, dataset: str, model_name: str, work: str,
        out: str, knn_out: str | None = None) -> dict:
    t0 = time.time()
    cfg = settings_mod.evaluation(cfg)
    d = init_distributed()
    if d.enabled:
        raise ValueError("svt linear runs in one process (the backbone is frozen); launch it without torchrun")
    index = read_index(index_path)
    names = class_names(index)
    backbone, source = load_backbone(checkpoint, cfg, d.device)  # bad inputs fail here, before anything is written
    work_dir = Path(work) / f"features-{feature_key(cfg, checkpoint, index_path)}"
    work_dir.mkdir(parents=True, exist_ok=True)
    amp = autocast_dtype(d.device, cfg.precision)
    train_set, test_set = eval_datasets(index, root, cfg)

    test = cached(work_dir / "features_test.pt", lambda: extract(backbone, test_set, cfg, d.device, amp, "test"))
    train = []
    copies = cfg.linear.feature_copies
    for c in range(copies):
        def compute(c=c):
            train_set.set_epoch(c)
            return extract(backbone, train_set, cfg, d.device, amp, f"train {c + 1}/{copies}")
        train.append(cached(work_dir / f"features_train_{c:03d}.pt", compute))

    with MetricsLog(Path(work), cfg, feature_key(cfg, checkpoint, index_path), f"linear {model_name} {dataset}") as m:
        head, loss = train_linear(train, len(names), cfg, m.log)
    with torch.no_grad():
        probs = head(test["features"]).softmax(-1).mean(1)  # average the crops' class probabilities
    common = dict(model=model_name, dataset=dataset, cfg=cfg, source=source, skipped=test["skipped"],
                  num_classes=len(names))
    result = write_metrics(out, {**metrics(probs, test["labels"], names),
                                 "linear": {"final_train_loss": loss, "feature_copies": len(train)}},
                           protocol="linear", seconds=time.time() - t0, **common)
    log.info("%s linear top-1 %.2f (chance %.2f)", dataset, result["top1"], result["chance_top1"])
    if knn_out:
        k, temp = cfg.knn.k, cfg.knn.temperature
        knn = metrics(knn_probs(train[0], test, len(names), k, temp), test["labels"], names)
        write_metrics(knn_out, {**knn, "knn": {"k": k, "temperature": temp}}, protocol="knn",
                      seconds=time.time() - t0, **common)
    return result


def add_linear_arguments(p):
    add_common_arguments(p)
    p.add_argument("--knn-out", help="also write the k-NN metrics JSON (same features)")


def run_linear(args) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    cfg = settings_mod.evaluation(load_settings(args.config, "evaluation"))
    run(cfg, args.checkpoint, args.index, args.root, args.dataset, args.model, args.work, args.out, args.knn_out)
    return 0
