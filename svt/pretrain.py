"""`svt pretrain`: SVT self-distillation (paper §3.2-3.3, §4.1) on 1..N processes under torchrun.

Read top to bottom: config -> data -> student / teacher -> schedules (plain arrays, one entry per iteration) ->
resume -> train loop -> final teacher in the official flat format.

The work folder (checkpoints, metrics.jsonl) lies outside Snakemake's declared outputs, so a failed or
preempted job keeps it: rerunning the same command resumes bit-exactly from the newest valid checkpoint.
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from pathlib import Path

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from svt import augment
from svt.checkpoint import (export_official, last_logged, load_checkpoint, resume, save_training_state,
                            set_rng_state)
from svt.config import load_settings, merge
from svt.data import PretrainDataset, make_loader
from svt.device import autocast, autocast_dtype, compile_blocks, init_distributed, replica_digests
from svt.index import read_index
from svt.io import fingerprint, remove_stale_temps
from svt.loss import SVTLoss, view_pairs
from svt.model import MultiCropWrapper, VisionTransformer, backbone_config, build_head
from svt.sampler import rank_sampler
from svt.views import ViewConfig

log = logging.getLogger("svt.pretrain")

DEFAULTS = {
    "model": {"preset": "vit_base_patch16", "num_frames": 16, "drop_path_rate": 0.1},
    "head": {"out_dim": 65536, "hidden_dim": 2048, "bottleneck_dim": 256, "norm_last_layer": True},
    "views": {},
    "augment": {},
    "correspondences": {"local_to_global": True, "global_to_global": True,
                        "local_to_local": False, "global_to_local": False},
    "teacher_views": "paper",
    "teacher_drop_path": False,
    "optim": {"epochs": 20, "batch_size": 32, "lr": 5.0e-4, "lr_reference_batch": 256, "min_lr": 1.0e-6,
              "warmup_epochs": 5, "weight_decay": 0.04, "weight_decay_end": 0.1, "momentum_teacher": 0.996,
              "clip_grad": 3.0, "freeze_last_layer": 1},
    "loss": {"student_temp": 0.1, "teacher_temp": 0.04, "warmup_teacher_temp": 0.04,
             "warmup_teacher_temp_epochs": 0, "center_momentum": 0.9},
    "precision": "auto",
    "compile": False,
    "data": {"workers": 2, "decode_threads": 1, "augment_on": "auto"},
    "checkpoint_every": 50,
    "keep_checkpoints": 2,
    "seed": 0,
}


# ---------------------------------------------------------------- schedules (DINO: plain arrays)

def cosine_schedule(base: float, final: float, epochs: int, iters_per_epoch: int, warmup_epochs: int = 0,
                    warmup_start: float = 0.0) -> np.ndarray:
    # DINO's cosine_scheduler (the official code): the warm-up reaches `base` at its last iteration.
    warmup = np.linspace(warmup_start, base, warmup_epochs * iters_per_epoch)
    steps = np.arange(epochs * iters_per_epoch - len(warmup))
    cosine = final + 0.5 * (base - final) * (1 + np.cos(np.pi * steps / max(len(steps), 1)))
    return np.concatenate([warmup, cosine])


def teacher_temp_schedule(loss_cfg: dict, epochs: int) -> np.ndarray:
    w = loss_cfg["warmup_teacher_temp_epochs"]
    return np.concatenate([np.linspace(loss_cfg["warmup_teacher_temp"], loss_cfg["teacher_temp"], w),
                           np.full(max(epochs - w, 0), loss_cfg["teacher_temp"])])


def param_groups(model: torch.nn.Module) -> list[dict]:
    """No weight decay on biases and norm parameters (all 1-D tensors)."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (no_decay if p.ndim <= 1 or name.endswith(".bias") else decay).append(p)
    return [{"params": decay}, {"params": no_decay, "weight_decay": 0.0}]


def make_optimizer(model: torch.nn.Module, device: torch.device) -> torch.optim.AdamW:
    """AdamW over param_groups; on GPU the fused kernel (one launch for every tensor instead of several per tensor)."""
    return torch.optim.AdamW(param_groups(model), fused=device.type == "cuda")


def clip_gradients(model: torch.nn.Module, clip: float) -> None:
    """Per-parameter gradient norm clipping (official / DINO): each gradient scaled by min(1, clip / (norm + 1e-6)).
    Batched over all tensors, and never read back to the host, so the GPU is not stalled."""
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    if not grads:
        return
    norms = torch.stack(torch._foreach_norm(grads, 2))
    scale = torch.clamp(clip / (norms + 1e-6), max=1.0)
    torch._foreach_mul_(grads, list(scale.to(grads[0].dtype).unbind()))


@torch.no_grad()
def ema_update(teacher: torch.nn.Module, student: torch.nn.Module, momentum: float) -> None:
    """teacher = momentum * teacher + (1 - momentum) * student, over all tensors at once."""
    t = list(teacher.parameters())
    torch._foreach_mul_(t, momentum)
    torch._foreach_add_(t, [p.detach() for p in student.parameters()], alpha=1 - momentum)


def entropy(probs: torch.Tensor) -> torch.Tensor:
    """Entropy (nats) of distributions along the last dimension."""
    return -(probs * probs.clamp_min(1e-12).log()).sum(-1)


def collapse_std(features: torch.Tensor) -> float:
    """Std over the batch of L2-normalised features, times sqrt(dim): ~1 for spread-out features, 0 when every
    clip maps to the same point (the collapse DINO's centering and sharpening prevent)."""
    f = torch.nn.functional.normalize(features.float(), dim=-1)
    return float(f.std(0).mean() * math.sqrt(f.shape[-1])) if len(f) > 1 else float("nan")


# ---------------------------------------------------------------- checkpoints

# ---------------------------------------------------------------- the run

class NonFiniteLoss(RuntimeError):
    pass


def build_models(cfg: dict, device) -> tuple[MultiCropWrapper, MultiCropWrapper]:
    mcfg = dict(cfg["model"])
    preset = mcfg.pop("preset")
    bcfg = backbone_config(preset, **mcfg)
    hcfg = cfg["head"]
    student = MultiCropWrapper(VisionTransformer(bcfg), build_head(bcfg.embed_dim, **hcfg))
    teacher_bcfg = bcfg if cfg["teacher_drop_path"] else backbone_config(preset, **{**mcfg, "drop_path_rate": 0.0})
    teacher = MultiCropWrapper(VisionTransformer(teacher_bcfg), build_head(bcfg.embed_dim, **hcfg))
    return student.to(device), teacher.to(device)


def svt_loss(student, teacher, criterion: SVTLoss, views: list[torch.Tensor], pairs: list[tuple[int, int]],
             teacher_temp: float, n_global: int, amp):
    """Eq. 3 for one batch: the teacher sees its target views, the student the views it predicts them from
    (one backbone pass per distinct view shape). Returns loss, per-kind terms, teacher logits, teacher features."""
    t_ids = sorted({t for t, _ in pairs})
    s_ids = sorted({s for _, s in pairs})
    with autocast(views[0].device, amp):
        with torch.no_grad():
            t_logits, t_feats = teacher([views[i] for i in t_ids], return_features=True)
        s_out = student([views[i] for i in s_ids]).chunk(len(s_ids))
    loss, terms = criterion(dict(zip(s_ids, s_out)), dict(zip(t_ids, t_logits.chunk(len(t_ids)))), pairs,
                            teacher_temp, n_global)
    return loss, terms, t_logits, t_feats


def build_dataset(cfg: dict, index_path: str, root: str, device: torch.device | None = None) -> PretrainDataset:
    """The training set with the run's view sampler (Tables 5-6) and augmentations (Table 7); augment_on auto:
    on the training device when that is a GPU, else in the loader workers."""
    cfg = merge(DEFAULTS, cfg)
    where = cfg["data"]["augment_on"]
    if where == "auto":
        where = "device" if device is not None and device.type == "cuda" else "loader"
    return PretrainDataset(read_index(index_path), root, ViewConfig.from_dict(cfg["views"]),
                           augment.AugmentConfig.from_dict(cfg["augment"]), split="train", seed=cfg["seed"],
                           num_threads=cfg["data"]["decode_threads"],
                           augment_in_loader=where == "loader")


def run(cfg: dict, index_path: str, root: str, work: str, out: str, init: str | None = None) -> dict:
    cfg = merge(DEFAULTS, cfg)
    d = init_distributed()

    # data
    dataset = build_dataset(cfg, index_path, root, d.device)
    view_cfg = dataset.view_cfg
    opt_cfg = cfg["optim"]
    sampler, per_rank, iters_per_epoch = rank_sampler(len(dataset), opt_cfg["batch_size"], d, cfg["seed"],
                                                      "optim.batch_size")

    # models: initialised identically on every rank; then each rank gets its own random stream (drop path)
    torch.manual_seed(cfg["seed"])
    student, teacher = build_models(cfg, d.device)
    if init:
        report = load_checkpoint(student.backbone, init)
        if d.is_main:
            log.info("initialisation: %s", report)
    teacher.load_state_dict(student.state_dict())
    work_dir = Path(work)  # created once the inputs have loaded: bad input leaves nothing behind
    work_dir.mkdir(parents=True, exist_ok=True)
    if d.is_main:
        remove_stale_temps(out, f"{out}.json", folder=work_dir)
    torch.manual_seed(cfg["seed"] + d.rank)
    np.random.seed(cfg["seed"] + d.rank)
    random.seed(cfg["seed"] + d.rank)
    for p in teacher.parameters():
        p.requires_grad_(False)
    teacher.train(cfg["teacher_drop_path"])
    student_ddp = DistributedDataParallel(student) if d.enabled else student
    compile_blocks(student, cfg["compile"])
    compile_blocks(teacher, cfg["compile"])
    n_global, n_local = view_cfg.global_views.count, view_cfg.local_views.count
    criterion = SVTLoss(cfg["head"]["out_dim"], cfg["loss"]["student_temp"], cfg["loss"]["center_momentum"])
    criterion.to(d.device)

    # optimiser and schedules
    epochs = opt_cfg["epochs"]
    optimizer = make_optimizer(student, d.device)
    peak_lr = opt_cfg["lr"] * opt_cfg["batch_size"] / opt_cfg["lr_reference_batch"]
    lr_s = cosine_schedule(peak_lr, opt_cfg["min_lr"], epochs, iters_per_epoch, opt_cfg["warmup_epochs"])
    wd_s = cosine_schedule(opt_cfg["weight_decay"], opt_cfg["weight_decay_end"], epochs, iters_per_epoch)
    mom_s = cosine_schedule(opt_cfg["momentum_teacher"], 1.0, epochs, iters_per_epoch)
    temp_s = teacher_temp_schedule(cfg["loss"], epochs)
    amp = autocast_dtype(d.device, cfg["precision"])
    scaler = torch.amp.GradScaler("cuda", enabled=amp == torch.float16)

    # resume
    start_iter, failures = 0, 0
    # what shapes the trajectory; checkpoint cadence and loader workers do not
    logistics = ("checkpoint_every", "keep_checkpoints", "data")
    run_id = fingerprint({k: v for k, v in cfg.items() if k not in logistics}, index_path, init)
    state = resume(work_dir, run_id, d)
    if state is not None:
        student.load_state_dict(state["student"])
        teacher.load_state_dict(state["teacher"])
        optimizer.load_state_dict(state["optimizer"])
        scaler.load_state_dict(state["scaler"])
        criterion.center.copy_(state["center"].to(d.device))
        start_iter = int(state["iteration"])
        failures = int(state.get("decode_failures", 0))
        set_rng_state(state["rng"][d.rank])
        if d.is_main:
            log.info("resumed from iteration %d", start_iter)

    def save(it: int):
        save_training_state(work_dir, it, d, cfg["keep_checkpoints"], {
            "format": "svt-train", "run": run_id, "student": student.state_dict(), "teacher": teacher.state_dict(),
            "optimizer": optimizer.state_dict(), "scaler": scaler.state_dict(), "center": criterion.center,
            "epoch": it // iters_per_epoch, "decode_failures": failures, "config": json.loads(json.dumps(cfg))})

    total = epochs * iters_per_epoch
    metrics_f = open(work_dir / "metrics.jsonl", "a") if d.is_main else None
    bar = tqdm(total=total, initial=start_iter, desc="pretrain", unit="it", disable=not d.is_main)
    it = start_iter
    while it < total:
        epoch = it // iters_per_epoch
        dataset.set_epoch(epoch)
        sampler.set_epoch(epoch, start_batch=it % iters_per_epoch)
        loader = make_loader(dataset, per_rank, cfg["data"]["workers"], shuffle=False, seed=cfg["seed"],
                             sampler=sampler, drop_last=True)
        t_data = time.perf_counter()
        for batch in loader:
            t_step = time.perf_counter()
            views = [v.to(d.device, non_blocking=True) for v in batch["views"]]
            if "params" in batch:  # augment_on: device
                views = [augment.apply_batch(v, ps) for v, ps in zip(views, batch["params"])]
            if cfg["compile"] == "reduce-overhead":  # the last step's CUDA-graph outputs may be overwritten now
                torch.compiler.cudagraph_mark_step_begin()
            failures += len(batch["failed"])
            for g in range(2):
                optimizer.param_groups[g]["lr"] = float(lr_s[it])
            optimizer.param_groups[0]["weight_decay"] = float(wd_s[it])

            # the teacher's target view(s): paper = one global view drawn per iteration; official = both
            if cfg["teacher_views"] == "paper":
                teacher_globals = [int(np.random.default_rng([cfg["seed"], it]).integers(n_global))]
            else:
                teacher_globals = list(range(n_global))
            pairs = view_pairs(cfg["correspondences"], n_global, n_local, teacher_globals)
            loss, terms, t_logits, t_feats = svt_loss(student_ddp, teacher, criterion, views, pairs,
                                                   float(temp_s[epoch]), n_global, amp)
            if not torch.isfinite(loss):
                bad = {k: float(v) for k, v in terms.items()}
                raise NonFiniteLoss(f"loss is {loss.item()} at iteration {it} (epoch {epoch}); terms {bad}; "
                                    f"the last good checkpoint in {work_dir} is kept")

            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            if opt_cfg["clip_grad"]:
                scaler.unscale_(optimizer)
                clip_gradients(student, opt_cfg["clip_grad"])
            if epoch < opt_cfg["freeze_last_layer"]:
                for name, p in student.named_parameters():
                    if "last_layer" in name:
                        p.grad = None
            scaler.step(optimizer)
            scaler.update()
            m = float(mom_s[it])
            ema_update(teacher, student, m)
            criterion.update_center(t_logits, d)
            it += 1

            now = time.perf_counter()
            clips = per_rank * d.world_size
            tokens = sum(v.shape[0] * v.shape[2] * (v.shape[3] // student.backbone.cfg.patch_size) ** 2
                         for v in views) * d.world_size
            with torch.no_grad():
                centred = t_logits.float() - criterion.center
                probs = torch.softmax(centred / float(temp_s[epoch]), -1)
                per_clip = float(entropy(probs).mean())
                # Entropy of the batch-mean prediction minus the mean per-clip entropy = mutual information between
                # clip and prototype: 0 when the teacher's output does not depend on its input (both the uniform
                # and the one-prototype collapse), up to log(rows) when each clip picks its own prototypes.
                marginal = float(entropy(probs.mean(0)))
                feature_std = collapse_std(t_feats)
            stats = {"iteration": it, "epoch": epoch, "loss": loss.item(), **{k: float(v) for k, v in terms.items()},
                     "lr": float(lr_s[it - 1]), "wd": float(wd_s[it - 1]), "momentum": m,
                     "teacher_temp": float(temp_s[epoch]), "teacher_entropy": per_clip,
                     "teacher_marginal_entropy": marginal,
                     "teacher_mutual_information": marginal - per_clip,
                     "teacher_entropy_max": math.log(cfg["head"]["out_dim"]), "feature_std": feature_std,
                     "clips_per_s": clips / (now - t_data), "tokens_per_s": tokens / (now - t_data),
                     "data_wait": (t_step - t_data) / (now - t_data), "decode_failures": failures}
            if d.is_main:
                metrics_f.write(json.dumps(stats) + "\n")
                metrics_f.flush()
                bar.update(1)
                bar.set_postfix(loss=f"{stats['loss']:.3f}", wait=f"{stats['data_wait']:.2f}")
            if it % cfg["checkpoint_every"] == 0 or it % iters_per_epoch == 0:
                save(it)
            t_data = time.perf_counter()
            if it >= total:
                break
    bar.close()
    digests = replica_digests(student, d)
    summary = {"iterations": total, "epochs": epochs, "world_size": d.world_size, "replica_sha256": digests,
               "final": {},
               "decode_failures": failures, "config": cfg, "init": init,
               "precision": str(amp).replace("torch.", "") if amp else "fp32"}
    if d.is_main:
        metrics_f.close()
        summary["final"] = last_logged(work_dir)  # also when a rerun resumes a run that had already ended
        export_official(out, teacher.backbone, teacher.head, meta=summary)
    if d.enabled:
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
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
    cfg = load_settings(args.config, "pretraining")
    run(cfg, args.index, args.root, args.work, args.out, args.init)
    return 0
