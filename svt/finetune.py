"""`svt finetune`: end-to-end fine-tuning (paper §4.1) on 1..N processes under torchrun, then slow-fast testing.

Read top to bottom: the pretrained backbone + a randomly initialised linear layer (the projection head is
dropped) -> SGD lr 5e-3, momentum 0.9, weight decay 1e-4, x0.1 at epochs 11 and 14, 15 epochs, global batch 32;
each training video gives a slow and a fast clip whose CLS features are averaged -> test with 3 crops per clip.
Checkpoints and exact resume work as in `svt pretrain` (work folder outside Snakemake's outputs).
"""

from __future__ import annotations

import logging
import time

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from svt import engine, schedules
from svt import settings as settings_mod
from svt.config import load_settings
from svt.device import autocast, autocast_dtype
from svt.evaluate import (add_common_arguments, class_names, eval_datasets, extract, fused_features, load_backbone,
                          metrics, write_metrics)
from svt.index import read_index
from svt.settings import Evaluation

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


class Finetuner(engine.Task):
    """The classifier, SGD with momentum and the step-decayed lr."""

    name = "finetune"

    def __init__(self, s: Evaluation, model: VideoClassifier, d, iters_per_epoch: int):
        f = s.finetune
        self.d, self.model = d, model
        self.ddp = DistributedDataParallel(model) if d.enabled else model
        self.optimizer = torch.optim.SGD(schedules.param_groups(model), lr=f.lr, momentum=f.momentum,
                                         weight_decay=f.weight_decay)
        self.lr = schedules.step_schedule(f.lr, f.lr_steps, f.lr_step_factor, f.epochs, iters_per_epoch)
        self.amp = autocast_dtype(d.device, s.precision)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp == torch.float16)

    def state(self) -> dict:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scaler": self.scaler.state_dict()}

    def load(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])

    def step(self, batch: dict, it: int, epoch: int) -> dict:
        clips = [c.to(self.d.device, non_blocking=True) for c in batch["clips"]]
        schedules.set_lr(self.optimizer, float(self.lr[it]))
        with autocast(self.d.device, self.amp):
            logits = self.ddp(clips)
        labels = batch["label"].to(self.d.device)
        loss = F.cross_entropy(logits.float(), labels)
        engine.check_finite(loss, it, epoch)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        accuracy = (logits.argmax(1) == labels).float().mean().item()  # this rank's batch: for the curves only
        return {"loss": loss.item(), "accuracy": accuracy, "lr": float(self.lr[it])}


def run(cfg: Evaluation | dict, checkpoint: str, index_path: str, root: str, dataset: str, model_name: str,
        work: str, out: str) -> dict:
    t0 = time.time()
    s = settings_mod.evaluation(cfg)
    d = engine.distributed()
    index = read_index(index_path)
    names = class_names(index)
    train_set, test_set = eval_datasets(index, root, s)
    loop = engine.Loop(d, train_set, s.batch_size, "batch_size", s.finetune.epochs, s.seed, s.data.workers, work,
                       s.finetune.checkpoint_every, s.finetune.keep_checkpoints)

    # model: identical on every rank (load_backbone seeds); the engine then gives each rank its own random stream
    backbone, source = load_backbone(checkpoint, s, d.device)
    model = VideoClassifier(backbone, len(names), s.finetune.dropout).to(d.device)
    task = Finetuner(s, model, d, loop.iters_per_epoch)
    summary = engine.train(loop, task, s, (index_path, checkpoint), outputs=(out,))

    result = None
    if d.is_main:
        model.eval()
        test = extract(model.backbone, test_set, s, d.device, task.amp, "test")
        with torch.no_grad():
            probs = model.head(test["features"].to(d.device)).float().softmax(-1).mean(1).cpu()
        finetune = {"iterations": summary["iterations"], "final_train_loss": summary["final"].get("loss"),
                    "world_size": d.world_size, "replica_sha256": summary["replica_sha256"]}
        result = write_metrics(out, {**metrics(probs, test["labels"], names), "finetune": finetune},
                               model=model_name, protocol="finetune", dataset=dataset, cfg=s, source=source,
                               skipped=test["skipped"], num_classes=len(names), seconds=time.time() - t0)
        log.info("%s fine-tune top-1 %.2f (chance %.2f)", dataset, result["top1"], result["chance_top1"])
    engine.finish(d)
    return result


def add_finetune_arguments(p):
    add_common_arguments(p)


def run_finetune(args) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    s = settings_mod.evaluation(load_settings(args.config, "evaluation"))
    run(s, args.checkpoint, args.index, args.root, args.dataset, args.model, args.work, args.out)
    return 0
