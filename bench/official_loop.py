"""Bug or regime? The official code's own training loop beside ours, on the same data, views, settings, initial
weights and number of iterations (issue #34).

The official repository (github.com/kahnchana/svt, MIT) is not part of this project: pass a checkout with
--official (its imports need fvcore, simplejson, kornia and opencv-python-headless, e.g. in a venv made with
--system-site-packages). Its modules are imported from there and run as they are: models/timesformer.py's
VisionTransformer and vision_transformer.py's DINOHead (built at the micro size, then given our initial weights:
the state-dict keys are the same), utils.MultiCropWrapper, train_ssl.DINOLoss and train_ssl.train_one_epoch
(its schedules from utils.cosine_scheduler). On this CPU-only machine `.cuda()` and torch.cuda.synchronize are
no-ops and DDP runs on gloo with one process (its metric logger, which syncs through a CUDA tensor, is told there is
no process group). Both loops read batches of svt's PretrainDataset (the official regime: `views.sampler: official`,
every view 8 frames, both globals to the teacher, the teacher's stochastic
depth on), so the loops are all that differs.

Printed for each loop: the teacher's mutual information between clip and prototype (svt.pretrain.teacher_stats:
0 = collapse) and the loss over the first and last tenth of the run, and k-NN / linear top-1 of its teacher on a
motion benchmark (mini-SSv2 here) with their 95% intervals.
Usage (a venv with the official imports and this project importable; measured table: docs/demo-findings.md):
    PYTHONPATH=. python bench/official_loop.py --official ~/src/svt --index ssv2.parquet --root DIR \\
        --work /tmp/official --epochs 40
"""

from __future__ import annotations

import argparse
import json
import sys
import types
from pathlib import Path

import numpy as np
import torch
from torch import nn

from svt import linear, pretrain
from svt import settings as settings_mod
from svt.checkpoint import export_official
from svt.data import make_loader
from svt.model import VisionTransformer as OurViT
from svt.model import backbone_config

MODEL = {"preset": "vit_micro_patch8", "num_frames": 16, "img_size": 48, "drop_path_rate": 0.1}
HEAD = {"out_dim": 1024, "hidden_dim": 128, "bottleneck_dim": 64}
REGIME = {  # the official train.sh regime at the micro size (views at 48 / 24 px, 8 frames each)
    "model": MODEL, "head": HEAD,
    "views": {"sampler": "official", "global_views": {"frames": [8, 8], "size": 48, "temporal_fraction": 1.0},
              "local_views": {"frames": [8] * 8, "size": 24, "scale": [0.05, 0.4]}},
    "augment": {"flip": False, "hue": 0.0, "blur_prob": [0, 0, 0], "solarize_prob": [0, 0, 0]},
    "teacher_views": "official", "teacher_drop_path": True,
    "optim": {"epochs": 20, "batch_size": 32, "lr": 5.0e-4, "lr_reference_batch": 256, "warmup_epochs": 2,
              "weight_decay_end": 0.4},
    "loss": {"center_momentum": 0.9, "teacher_temp": 0.04},
    "data": {"workers": 1}, "checkpoint_every": 10_000,
}
EVALUATION = {"model": {k: v for k, v in MODEL.items() if k != "drop_path_rate"}, "flip": False,
              "slow_clip": {"frames": 8, "size": 48}, "fast_clip": {"frames": 16, "size": 32}, "crops": 3,
              "batch_size": 16, "data": {"workers": 0}, "linear": {"epochs": 100, "lr": 0.05, "feature_copies": 2}}


def import_official(path: Path):
    """The official modules, on a CPU: tensors' .cuda() and cuda.synchronize do nothing."""
    sys.path.insert(0, str(path))
    torch.Tensor.cuda = lambda self, *a, **k: self
    torch.cuda.synchronize = lambda *a, **k: None
    sys.argv = sys.argv[:1]
    import train_ssl
    import vision_transformer
    from models.timesformer import VisionTransformer
    from utils import utils
    utils.is_dist_avail_and_initialized = lambda: False  # its metric logger would sync through a CUDA tensor
    return train_ssl, vision_transformer, VisionTransformer, utils


def official_models(s, ours: nn.Module, modules):
    """The official student and teacher at our size, both starting from our student's weights."""
    _, vits, ViT, utils = modules
    cfg = backbone_config(s.model.preset, num_frames=s.model.num_frames, img_size=s.model.img_size)

    def build():
        backbone = ViT(img_size=cfg.img_size, patch_size=cfg.patch_size, num_classes=0, embed_dim=cfg.embed_dim,
                       depth=cfg.depth, num_heads=cfg.num_heads, mlp_ratio=cfg.mlp_ratio, qkv_bias=True,
                       norm_layer=lambda d: nn.LayerNorm(d, eps=1e-6), drop_path_rate=s.model.drop_path_rate,
                       num_frames=cfg.num_frames, attention_type="divided_space_time")
        backbone.head = None
        head = vits.DINOHead(cfg.embed_dim, s.head.out_dim, hidden_dim=s.head.hidden_dim,
                             bottleneck_dim=s.head.bottleneck_dim, norm_last_layer=s.head.norm_last_layer)
        net = utils.MultiCropWrapper(backbone, head)
        missing, unexpected = net.load_state_dict(ours.state_dict(), strict=False)
        assert not unexpected and all("weight_g" in k or "weight_v" in k for k in missing), (missing, unexpected)
        return net

    return build(), build()


class Batches:
    """The official loop's view of svt's loader: (views, _, _, meta) tuples and a length."""

    def __init__(self, dataset, batch, seed):
        self.dataset, self.batch, self.seed, self.epoch = dataset, batch, seed, 0
        self.sampler = types.SimpleNamespace(set_epoch=self.set_epoch)

    def set_epoch(self, epoch):
        self.epoch = epoch
        self.dataset.set_epoch(epoch)

    def __len__(self):
        return len(self.dataset) // self.batch

    def __iter__(self):
        loader = make_loader(self.dataset, self.batch, 1, shuffle=True, seed=self.seed + self.epoch, drop_last=True)
        for b in loader:
            yield b["views"], None, None, {}


def run_official(s, index: str, root: str, work: Path, official: Path) -> list[dict]:
    modules = import_official(official)
    train_ssl, _, _, utils = modules
    torch.distributed.init_process_group("gloo", init_method=f"file://{work / 'rendezvous'}", rank=0, world_size=1)
    torch.manual_seed(s.seed)
    ours, _ = pretrain.build_models(s, torch.device("cpu"))
    student, teacher = official_models(s, ours, modules)
    student = nn.parallel.DistributedDataParallel(student)
    teacher.load_state_dict(student.module.state_dict())
    for p in teacher.parameters():
        p.requires_grad = False
    log: list[dict] = []

    class Loss(train_ssl.DINOLoss):  # the official loss, recording the teacher's MI before each update
        def forward(self, student_output, teacher_output, epoch):
            temp = float(self.teacher_temp_schedule[epoch])
            stats = pretrain.teacher_stats(teacher_output, teacher_output, self.center, temp)
            out = super().forward(student_output, teacher_output, epoch)
            log.append({"loss": float(out), "teacher_mutual_information": stats["teacher_mutual_information"]})
            return out

    o, n_views = s.optim, 2 + s.views.local_views.count
    data = Batches(pretrain.build_dataset(s, index, root), o.batch_size, s.seed)
    loss = Loss(s.head.out_dim, n_views, s.loss.warmup_teacher_temp, s.loss.teacher_temp,
                s.loss.warmup_teacher_temp_epochs, o.epochs, student_temp=s.loss.student_temp,
                center_momentum=s.loss.center_momentum)
    optimizer = torch.optim.AdamW(utils.get_params_groups(student))
    lr = utils.cosine_scheduler(o.lr * o.batch_size / o.lr_reference_batch, o.min_lr, o.epochs, len(data),
                                warmup_epochs=o.warmup_epochs)
    wd = utils.cosine_scheduler(o.weight_decay, o.weight_decay_end, o.epochs, len(data))
    momentum = utils.cosine_scheduler(o.momentum_teacher, 1, o.epochs, len(data))
    args = types.SimpleNamespace(epochs=o.epochs, clip_grad=o.clip_grad, freeze_last_layer=o.freeze_last_layer)
    cfg = types.SimpleNamespace(MODEL=types.SimpleNamespace(TWO_STREAM=False, TWO_TOKEN=False))
    for epoch in range(o.epochs):
        data.set_epoch(epoch)
        train_ssl.train_one_epoch(student, teacher, teacher, loss, data, optimizer, lr, wd, momentum, epoch, None,
                                  args, cfg=cfg)
    backbone = OurViT(backbone_config(s.model.preset, num_frames=s.model.num_frames, img_size=s.model.img_size))
    backbone.load_state_dict(teacher.backbone.state_dict())
    export_official(work / "official_teacher.pth", backbone, meta={"config": settings_mod.to_dict(s)})
    torch.distributed.destroy_process_group()
    return log


def summary(name: str, log: list[dict], top1: dict) -> str:
    q = max(len(log) // 10, 1)

    def mean(key, rows):
        return float(np.mean([r[key] for r in rows]))

    mi = f"{mean('teacher_mutual_information', log[:q]):.3f} -> {mean('teacher_mutual_information', log[-q:]):.3f}"
    loss = f"{mean('loss', log[:q]):.2f} -> {mean('loss', log[-q:]):.2f}"
    cells = [f"{top1[p]['top1']:.1f} [{top1[p]['top1_interval']['low']:.1f}-{top1[p]['top1_interval']['high']:.1f}]"
             for p in ("knn", "linear")]
    return f"| {name} | {len(log)} | {mi} | {loss} | {cells[0]} | {cells[1]} |"


def evaluate(checkpoint: str, index: str, root: str, work: Path, name: str) -> dict:
    out = work / "eval" / name
    lin = linear.run(EVALUATION, checkpoint, index, root, "ssv2", name, str(out), str(out / "linear.json"),
                     str(out / "knn.json"))
    return {"linear": lin, "knn": json.loads((out / "knn.json").read_text())}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--official", required=True, type=Path, help="a checkout of github.com/kahnchana/svt")
    p.add_argument("--index", required=True, help="svt index of the pretraining and evaluation set (mini-SSv2)")
    p.add_argument("--root", required=True)
    p.add_argument("--work", required=True, type=Path)
    p.add_argument("--epochs", type=int, default=REGIME["optim"]["epochs"])
    a = p.parse_args()
    a.work.mkdir(parents=True, exist_ok=True)
    s = settings_mod.pretraining({**REGIME, "optim": {**REGIME["optim"], "epochs": a.epochs}})
    torch.set_num_threads(2)
    pretrain.run(s, a.index, a.root, str(a.work / "ours"), str(a.work / "ours_teacher.pth"))
    ours = [json.loads(line) for line in (a.work / "ours" / "metrics.jsonl").read_text().splitlines()]
    theirs = run_official(s, a.index, a.root, a.work, a.official)
    rows = [summary("svt (this project)", ours, evaluate(str(a.work / "ours_teacher.pth"), a.index, a.root, a.work,
                                                         "ours")),
            summary("official train_one_epoch", theirs, evaluate(str(a.work / "official_teacher.pth"), a.index,
                                                                 a.root, a.work, "official")),
            summary("random init (no training)", [{"loss": np.nan, "teacher_mutual_information": np.nan}],
                    evaluate("random", a.index, a.root, a.work, "random"))]
    print("| loop | iterations | teacher MI, first -> last tenth (nats) | loss | k-NN top-1 | linear top-1 |")
    print("|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
