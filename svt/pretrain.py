"""`svt pretrain`: SVT self-distillation (paper §3.2-3.3, §4.1) on 1..N processes under torchrun.

Read top to bottom: settings -> data -> student / teacher -> schedules (plain arrays, one entry per iteration) ->
one training step (DINO's train_one_epoch body) -> the engine's loop (svt.engine: resume, checkpoints, metrics)
-> final teacher in the official flat format.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel

from svt import augment, engine, schedules
from svt import settings as settings_mod
from svt.checkpoint import export_official, load_checkpoint
from svt.config import load_settings
from svt.data import PretrainDataset
from svt.device import Dist, autocast, autocast_dtype, compile_blocks
from svt.index import read_index
from svt.io import WriteError
from svt.loss import SINGLE, SVTLoss, view_pairs
from svt.model import MultiCropWrapper, VisionTransformer, backbone_config, build_head
from svt.settings import Pretraining

log = logging.getLogger("svt.pretrain")


def entropy(probs: torch.Tensor) -> torch.Tensor:
    """Entropy (nats) of distributions along the last dimension."""
    return -(probs * probs.clamp_min(1e-12).log()).sum(-1)


def collapse_std(features: torch.Tensor) -> float:
    """Std over the batch of L2-normalised features, times sqrt(dim): ~1 for spread-out features, 0 when every
    clip maps to the same point (the collapse DINO's centering and sharpening prevent)."""
    f = torch.nn.functional.normalize(features.float(), dim=-1)
    return float(f.std(0).mean() * math.sqrt(f.shape[-1])) if len(f) > 1 else float("nan")


@torch.no_grad()
def teacher_stats(t_logits: torch.Tensor, t_feats: torch.Tensor, center: torch.Tensor, temp: float) -> dict:
    """Collapse diagnostics of the teacher's output for one batch."""
    probs = torch.softmax((t_logits.float() - center) / temp, -1)
    per_clip = float(entropy(probs).mean())
    # Entropy of the batch-mean prediction minus the mean per-clip entropy = mutual information between clip and
    # prototype: 0 when the teacher's output does not depend on its input (both the uniform and the one-prototype
    # collapse), up to log(rows) when each clip picks its own prototypes.
    marginal = float(entropy(probs.mean(0)))
    return {"teacher_entropy": per_clip, "teacher_marginal_entropy": marginal,
            "teacher_mutual_information": marginal - per_clip, "teacher_entropy_max": math.log(t_logits.shape[-1]),
            "feature_std": collapse_std(t_feats)}


def build_models(s: Pretraining, device) -> tuple[MultiCropWrapper, MultiCropWrapper]:
    m = s.model
    shape = dict(num_frames=m.num_frames, img_size=m.img_size, temporal_init=m.temporal_init)
    bcfg = backbone_config(m.preset, drop_path_rate=m.drop_path_rate, **shape)
    teacher_bcfg = bcfg if s.teacher_drop_path else backbone_config(m.preset, drop_path_rate=0.0, **shape)
    student = MultiCropWrapper(VisionTransformer(bcfg), build_head(bcfg.embed_dim, **vars(s.head)))
    teacher = MultiCropWrapper(VisionTransformer(teacher_bcfg), build_head(bcfg.embed_dim, **vars(s.head)))
    return student.to(device), teacher.to(device)


def svt_loss(student, teacher, criterion: SVTLoss, views: list[torch.Tensor], pairs: list[tuple[int, int]],
             teacher_temp: float, n_global: int, amp, d: Dist = SINGLE):
    """Eq. 3 for one batch: the teacher sees its target views, the student the views it predicts them from
    (one backbone pass per distinct view shape). Returns loss, per-kind terms, teacher logits, teacher features."""
    t_ids = sorted({t for t, _ in pairs})
    s_ids = sorted({s for _, s in pairs})
    koleo = criterion.koleo_weight > 0
    with autocast(views[0].device, amp):
        with torch.no_grad():
            t_logits, t_feats = teacher([views[i] for i in t_ids], return_features=True)
        s_out = student([views[i] for i in s_ids], return_bottleneck=koleo)
    bottleneck = None
    if koleo:
        s_out, s_z = s_out
        bottleneck = dict(zip(s_ids, s_z.chunk(len(s_ids))))
    loss, terms = criterion(dict(zip(s_ids, s_out.chunk(len(s_ids)))), dict(zip(t_ids, t_logits.chunk(len(t_ids)))),
                            pairs, teacher_temp, n_global, bottleneck, d)
    return loss, terms, t_logits, t_feats


def build_dataset(s: Pretraining | dict, index_path: str, root: str,
                  device: torch.device | None = None) -> PretrainDataset:
    """The training set with the run's view sampler (Tables 5-6) and augmentations (Table 7); augment_on auto:
    on the training device when that is a GPU, else in the loader workers."""
    s = settings_mod.pretraining(s)
    where = s.data.augment_on
    if where == "auto":
        where = "device" if device is not None and device.type == "cuda" else "loader"
    return PretrainDataset(read_index(index_path), root, s.views, s.augment, split="train", seed=s.seed,
                           num_threads=s.data.decode_threads, augment_in_loader=where == "loader")


class Pretrainer(engine.Task):
    """Student, EMA teacher, loss (with its centre), optimiser and the per-iteration schedules."""

    name = "train"  # checkpoint format svt-train, as the official training checkpoints are read

    def __init__(self, s: Pretraining, student, teacher, d, iters_per_epoch: int):
        self.s, self.d, self.model, self.teacher = s, d, student, teacher
        for p in teacher.parameters():
            p.requires_grad_(False)
        teacher.train(s.teacher_drop_path)
        self.student = DistributedDataParallel(student) if d.enabled else student
        compile_blocks(student, s.compile)
        compile_blocks(teacher, s.compile)
        self.n_global, self.n_local = s.views.global_views.count, s.views.local_views.count
        self.criterion = SVTLoss(s.head.out_dim, s.loss.student_temp, s.loss.center_momentum, s.loss.centering,
                                 s.loss.koleo_weight).to(d.device)
        self.optimizer = schedules.make_adamw(student, d.device)
        o, n = s.optim, iters_per_epoch
        self.lr = schedules.cosine_schedule(o.lr * o.batch_size / o.lr_reference_batch, o.min_lr, o.epochs, n,
                                            o.warmup_epochs)
        self.wd = schedules.cosine_schedule(o.weight_decay, o.weight_decay_end, o.epochs, n)
        self.momentum = schedules.cosine_schedule(o.momentum_teacher, 1.0, o.epochs, n)
        self.temp = schedules.teacher_temp_schedule(s.loss.warmup_teacher_temp, s.loss.teacher_temp,
                                                    s.loss.warmup_teacher_temp_epochs, o.epochs)
        self.amp = autocast_dtype(d.device, s.precision)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp == torch.float16)

    def state(self) -> dict:
        return {"student": self.model.state_dict(), "teacher": self.teacher.state_dict(),
                "optimizer": self.optimizer.state_dict(), "scaler": self.scaler.state_dict(),
                "center": self.criterion.center}

    def load(self, state: dict) -> None:
        self.model.load_state_dict(state["student"])
        self.teacher.load_state_dict(state["teacher"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])
        self.criterion.center.copy_(state["center"].to(self.d.device))

    def train_mode(self) -> None:  # the student trains from construction; the teacher's mode is set once
        pass

    def teacher_globals(self, it: int) -> list[int]:
        """The teacher's target view(s): paper = one global view drawn per iteration; official = both."""
        if self.s.teacher_views == "paper":
            return [int(np.random.default_rng([self.s.seed, it]).integers(self.n_global))]
        return list(range(self.n_global))

    def step(self, batch: dict, it: int, epoch: int) -> dict:
        views = [v.to(self.d.device, non_blocking=True) for v in batch["views"]]
        if "params" in batch:  # augment_on: device
            views = [augment.apply_batch(augment.from_uint8(v), ps) for v, ps in zip(views, batch["params"])]
        if self.s.compile == "reduce-overhead":  # the last step's CUDA-graph outputs may be overwritten now
            torch.compiler.cudagraph_mark_step_begin()
        schedules.set_lr(self.optimizer, float(self.lr[it]), float(self.wd[it]))
        temp = float(self.temp[epoch])

        pairs = view_pairs(vars(self.s.correspondences), self.n_global, self.n_local, self.teacher_globals(it))
        loss, terms, t_logits, t_feats = svt_loss(self.student, self.teacher, self.criterion, views, pairs, temp,
                                                  self.n_global, self.amp, self.d)
        engine.check_finite(loss, it, epoch, terms)

        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.s.optim.clip_grad:
            self.scaler.unscale_(self.optimizer)
            schedules.clip_gradients(self.model, self.s.optim.clip_grad)
        if epoch < self.s.optim.freeze_last_layer:
            schedules.cancel_last_layer_gradients(self.model)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        schedules.ema_update(self.teacher, self.model, float(self.momentum[it]))
        self.criterion.update_center(t_logits, self.d)

        patch = self.model.backbone.cfg.patch_size
        return {"loss": loss.item(), **{k: float(v) for k, v in terms.items()}, "lr": float(self.lr[it]),
                "wd": float(self.wd[it]), "momentum": float(self.momentum[it]), "teacher_temp": temp,
                **teacher_stats(t_logits, t_feats, self.criterion.center, temp),
                "tokens": sum(v.shape[0] * v.shape[2] * (v.shape[3] // patch) ** 2 for v in views)}


def run(cfg: Pretraining | dict, index_path: str, root: str, work: str, out: str, init: str | None = None) -> dict:
    s = settings_mod.pretraining(cfg)
    d = engine.distributed()
    dataset = build_dataset(s, index_path, root, d.device)
    loop = engine.Loop(d, dataset, s.optim.batch_size, "optim.batch_size", s.optim.epochs, s.seed, s.data.workers,
                       work, s.checkpoint_every, s.keep_checkpoints)

    # models: initialised identically on every rank; the engine then gives each rank its own random stream
    torch.manual_seed(s.seed)
    student, teacher = build_models(s, d.device)
    if init:
        report = load_checkpoint(student.backbone, init)
        if d.is_main:
            log.info("initialisation: %s", report)
    teacher.load_state_dict(student.state_dict())

    task = Pretrainer(s, student, teacher, d, loop.iters_per_epoch)
    summary = engine.train(loop, task, s, (index_path, init), outputs=(out, f"{out}.json"))
    summary.update(epochs=s.optim.epochs, config=settings_mod.to_dict(s), init=init,
                   precision=str(task.amp).replace("torch.", "") if task.amp else "fp32")
    if d.is_main:
        try:
            export_official(out, teacher.backbone, teacher.head, meta=summary)
        except WriteError as e:
            raise engine.kept(e, work) from None
    engine.finish(d)
    return summary


def add_pretrain_arguments(p):
    p.add_argument("--config", required=True, help="YAML with the pretraining settings (see config/README.md)")
    p.add_argument("--index", required=True, help="video index of the pretraining set (svt index)")
    p.add_argument("--root", required=True, help="dataset root the index paths are relative to")
    p.add_argument("--work", required=True, help="work folder: checkpoints and metrics (resumed from)")
    p.add_argument("--out", required=True, help="final teacher, official flat format (+ .json metadata)")
    p.add_argument("--init", help="checkpoint for the spatial initialisation (DINO ImageNet ViT)")


def run_pretrain(args) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    s = settings_mod.pretraining(load_settings(args.config, "pretraining"))
    run(s, args.index, args.root, args.work, args.out, args.init)
    return 0
