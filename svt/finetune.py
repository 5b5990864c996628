"""`svt finetune`: end-to-end fine-tuning (paper §4.1) on 1..N processes under torchrun, then slow-fast testing.

Read top to bottom: the pretrained backbone + a randomly initialised linear layer (the projection head is
dropped) -> SGD lr 5e-3, momentum 0.9, weight decay 1e-4, x0.1 at epochs 11 and 14, 15 epochs, global batch 32;
each training video gives a slow and a fast clip whose CLS features are averaged -> test with 3 crops per clip.
Checkpoints and exact resume work as in `svt pretrain` (work folder outside Snakemake's outputs).
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from svt.checkpoint import last_logged, resume, save_training_state, set_rng_state
from svt.config import load_settings
from svt.data import make_loader
from svt.device import autocast, autocast_dtype, init_distributed, replica_digests
from svt.evaluate import (add_common_arguments, class_names, eval_config, eval_datasets, extract, fused_features,
                          load_backbone, metrics, write_metrics)
from svt.index import read_index
from svt.io import fingerprint, remove_stale_temps
from svt.pretrain import NonFiniteLoss, param_groups
from svt.sampler import rank_sampler

log = logging.getLogger("svt.finetune")


class VideoClassifier(nn.Module):
    """Backbone + dropout + linear layer on the fused slow-fast CLS feature."""

    def __init__(self, backbone: nn.Module, num_classes: int, dropout: float):
        super().__init__()
        self.backbone = backbone
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(backbone.cfg.embed_dim, num_classes)
        nn.init.trunc_normal_(self.head.weight, std=0.02)
        nn.init.zeros_(self.head.bias)

    def forward(self, clips: list[torch.Tensor]) -> torch.Tensor:
        return self.head(self.dropout(fused_features(self.backbone, clips)))


def step_schedule(lr: float, steps: list[int], factor: float, epochs: int, iters_per_epoch: int) -> np.ndarray:
    """lr x factor^(number of step epochs passed), one entry per iteration (TimeSformer's steps_with_relative_lrs)."""
    epoch = np.arange(epochs * iters_per_epoch) // iters_per_epoch
    return lr * factor ** np.searchsorted(np.asarray(steps), epoch, side="right")


def run(cfg: dict, checkpoint: str, index_path: str, root: str, dataset: str, model_name: str, work: str,
        out: str) -> dict:
    t0 = time.time()
    cfg = eval_config(cfg)
    fcfg = cfg["finetune"]
    d = init_distributed()

    # data
    index = read_index(index_path)
    names = class_names(index)
    train_set, test_set = eval_datasets(index, root, cfg)
    sampler, per_rank, iters_per_epoch = rank_sampler(len(train_set), cfg["batch_size"], d, cfg["seed"],
                                                      "batch_size")

    # model: identical on every rank (load_backbone seeds), then per-rank random streams (dropout, drop path)
    backbone, source = load_backbone(checkpoint, cfg, d.device)
    work_dir = Path(work)  # created once the inputs have loaded: bad input leaves nothing behind
    work_dir.mkdir(parents=True, exist_ok=True)
    if d.is_main:
        remove_stale_temps(out, folder=work_dir)
    model = VideoClassifier(backbone, len(names), fcfg["dropout"]).to(d.device)
    torch.manual_seed(cfg["seed"] + d.rank)
    np.random.seed(cfg["seed"] + d.rank)
    model_ddp = DistributedDataParallel(model) if d.enabled else model

    # optimiser and schedule
    epochs = fcfg["epochs"]
    optimizer = torch.optim.SGD(param_groups(model), lr=fcfg["lr"], momentum=fcfg["momentum"],
                                weight_decay=fcfg["weight_decay"])
    lr_s = step_schedule(fcfg["lr"], fcfg["lr_steps"], fcfg["lr_step_factor"], epochs, iters_per_epoch)
    amp = autocast_dtype(d.device, cfg["precision"])
    scaler = torch.amp.GradScaler("cuda", enabled=amp == torch.float16)

    # resume
    it = 0
    trajectory = {k: cfg[k] for k in ("model", "slow_fast", "slow_clip", "fast_clip", "flip", "seed", "batch_size",
                                      "precision")}
    trajectory["finetune"] = {k: v for k, v in fcfg.items() if k not in ("checkpoint_every", "keep_checkpoints")}
    run_id = fingerprint(trajectory, index_path, checkpoint)
    state = resume(work_dir, run_id, d)
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scaler.load_state_dict(state["scaler"])
        it = int(state["iteration"])
        set_rng_state(state["rng"][d.rank])
        if d.is_main:
            log.info("resumed from iteration %d", it)

    def save(it: int):
        save_training_state(work_dir, it, d, fcfg["keep_checkpoints"], {
            "format": "svt-finetune", "run": run_id, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "scaler": scaler.state_dict(), "epoch": it // iters_per_epoch, "config": json.loads(json.dumps(cfg))})

    total = epochs * iters_per_epoch
    metrics_f = open(work_dir / "metrics.jsonl", "a") if d.is_main else None
    bar = tqdm(total=total, initial=it, desc="finetune", unit="it", disable=not d.is_main)
    while it < total:
        epoch = it // iters_per_epoch
        train_set.set_epoch(epoch)
        sampler.set_epoch(epoch, start_batch=it % iters_per_epoch)
        model.train()
        loader = make_loader(train_set, per_rank, cfg["data"]["workers"], shuffle=False, seed=cfg["seed"],
                             sampler=sampler, drop_last=True)
        for batch in loader:
            clips = [c.to(d.device, non_blocking=True) for c in batch["clips"]]
            for g in optimizer.param_groups:
                g["lr"] = float(lr_s[it])
            with autocast(d.device, amp):
                logits = model_ddp(clips)
            loss = F.cross_entropy(logits.float(), batch["label"].to(d.device))
            if not torch.isfinite(loss):
                raise NonFiniteLoss(f"loss is {loss.item()} at iteration {it} (epoch {epoch}); "
                                    f"the last good checkpoint in {work_dir} is kept")
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            it += 1
            if d.is_main:
                metrics_f.write(json.dumps({"iteration": it, "epoch": epoch, "loss": loss.item(),
                                            "lr": float(lr_s[it - 1]), "decode_failures": len(batch["failed"])})
                                + "\n")
                metrics_f.flush()
                bar.update(1)
                bar.set_postfix(loss=f"{loss.item():.3f}")
            if it % fcfg["checkpoint_every"] == 0 or it % iters_per_epoch == 0:
                save(it)
            if it >= total:
                break
    bar.close()
    digests = replica_digests(model, d)

    result = None
    if d.is_main:
        metrics_f.close()
        model.eval()
        test = extract(model.backbone, test_set, cfg, d.device, amp, "test")
        with torch.no_grad():
            probs = model.head(test["features"].to(d.device)).float().softmax(-1).mean(1).cpu()
        result = write_metrics(out, {**metrics(probs, test["labels"], names),
                                     # from the log: also when a rerun resumes a run that had already ended
                                     "finetune": {"iterations": total,
                                                  "final_train_loss": last_logged(work_dir).get("loss"),
                                                  "world_size": d.world_size, "replica_sha256": digests}},
                               model=model_name, protocol="finetune", dataset=dataset, cfg=cfg, source=source,
                               skipped=test["skipped"], num_classes=len(names), seconds=time.time() - t0)
        log.info("%s fine-tune top-1 %.2f (chance %.2f)", dataset, result["top1"], result["chance_top1"])
    if d.enabled:
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
    return result


def add_finetune_arguments(p):
    add_common_arguments(p)


def run_finetune(args) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    cfg = load_settings(args.config, "evaluation")
    run(cfg, args.checkpoint, args.index, args.root, args.dataset, args.model, args.work, args.out)
    return 0
