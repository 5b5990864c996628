"""Training math every stage imports (DINO's utils.py): per-iteration schedules as plain arrays, parameter groups,
gradient clipping, the teacher's EMA."""

from __future__ import annotations

import numpy as np
import torch


def cosine_schedule(base: float, final: float, epochs: int, iters_per_epoch: int, warmup_epochs: int = 0,
                    warmup_start: float = 0.0) -> np.ndarray:
    # DINO's cosine_scheduler (the official code): the warm-up reaches `base` at its last iteration.
    warmup = np.linspace(warmup_start, base, warmup_epochs * iters_per_epoch)
    steps = np.arange(epochs * iters_per_epoch - len(warmup))
    cosine = final + 0.5 * (base - final) * (1 + np.cos(np.pi * steps / max(len(steps), 1)))
    return np.concatenate([warmup, cosine])


def teacher_temp_schedule(warmup_temp: float, temp: float, warmup_epochs: int, epochs: int) -> np.ndarray:
    """One teacher temperature per epoch: a linear warm-up, then constant (DINO)."""
    return np.concatenate([np.linspace(warmup_temp, temp, warmup_epochs),
                           np.full(max(epochs - warmup_epochs, 0), temp)])


def step_schedule(lr: float, steps: tuple[int, ...], factor: float, epochs: int, iters_per_epoch: int) -> np.ndarray:
    """lr x factor^(number of step epochs passed), one entry per iteration (TimeSformer's steps_with_relative_lrs)."""
    epoch = np.arange(epochs * iters_per_epoch) // iters_per_epoch
    return lr * factor ** np.searchsorted(np.asarray(steps), epoch, side="right")


def param_groups(model: torch.nn.Module) -> list[dict]:
    """No weight decay on biases and norm parameters (all 1-D tensors)."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (no_decay if p.ndim <= 1 or name.endswith(".bias") else decay).append(p)
    return [{"params": decay}, {"params": no_decay, "weight_decay": 0.0}]


def set_lr(optimizer: torch.optim.Optimizer, lr: float, weight_decay: float | None = None) -> None:
    """This iteration's lr on every group; weight decay on the first (the decayed) group when given."""
    for g in optimizer.param_groups:
        g["lr"] = lr
    if weight_decay is not None:
        optimizer.param_groups[0]["weight_decay"] = weight_decay


def make_adamw(model: torch.nn.Module, device: torch.device) -> torch.optim.AdamW:
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


def cancel_last_layer_gradients(model: torch.nn.Module) -> None:
    """DINO's freeze_last_layer: the prototype layer keeps its initialisation in the first epoch(s)."""
    for name, p in model.named_parameters():
        if "last_layer" in name:
            p.grad = None


@torch.no_grad()
def ema_update(teacher: torch.nn.Module, student: torch.nn.Module, momentum: float) -> None:
    """teacher = momentum * teacher + (1 - momentum) * student, over all tensors at once."""
    t = list(teacher.parameters())
    torch._foreach_mul_(t, momentum)
    torch._foreach_add_(t, [p.detach() for p in student.parameters()], alpha=1 - momentum)
