"""Spatial augmentations of a view (paper §3.2.2), vectorised over its frames.

Colour jitter, grayscale, Gaussian blur, solarisation and horizontal flip with DINO's per-view probabilities
(first global: blur 1.0; second global: blur 0.1, solarise 0.2; locals: blur 0.5). Temporally consistent (TCA,
default): one draw of every parameter per view, applied to all its frames. Per-frame mode (Table 7, "w/o TCA"):
an independent draw per frame; the crop stays per view and the jitter order is drawn once per view.
Horizontal flip is off for flip-sensitive datasets (SSv2: "pushing left to right").
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from svt.settings import AugmentConfig  # the settings own it, so that reading a config never imports torch

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_GRAY = torch.tensor([0.299, 0.587, 0.114])


def sample_params(cfg: AugmentConfig, frames: int, slot: int, rng: np.random.Generator) -> dict:
    """Parameters for one view; slot 0/1 = first/second global view, 2 = local. Arrays have one entry per
    frame; under TCA all entries are equal."""
    n = 1 if cfg.temporally_consistent else frames

    def draw(p):
        return rng.uniform(size=n) < p

    def factor(v):
        return rng.uniform(max(0.0, 1 - v), 1 + v, size=n)

    p = {
        "flip": draw(0.5) if cfg.flip else np.zeros(n, bool),
        "jitter": draw(cfg.jitter_prob),
        "brightness": factor(cfg.brightness),
        "contrast": factor(cfg.contrast),
        "saturation": factor(cfg.saturation),
        "hue": rng.uniform(-cfg.hue, cfg.hue, size=n),
        "order": rng.permutation(4),
        "gray": draw(cfg.grayscale_prob),
        "blur": draw(cfg.blur_prob[slot]),
        "sigma": rng.uniform(*cfg.blur_sigma, size=n),
        "solarize": draw(cfg.solarize_prob[slot]),
    }
    if n != frames:
        p = {k: (np.repeat(v, frames) if k != "order" else v) for k, v in p.items()}
    return p


def _gray(x):  # (T, 3, H, W) -> (T, 1, H, W)
    return (x * _GRAY.to(x).view(1, 3, 1, 1)).sum(1, keepdim=True)


def _blend(a, b, f):  # f * a + (1 - f) * b with per-frame f
    return (f * a + (1 - f) * b).clamp_(0, 1)


def _hue(x, shift):
    """Hue rotation by `shift` turns in YIQ space (a linear map per frame)."""
    theta = shift * 2 * math.pi
    c, s = torch.cos(theta), torch.sin(theta)
    to_yiq = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]]).to(x)
    rot = torch.zeros(len(theta), 3, 3).to(x)
    rot[:, 0, 0] = 1
    rot[:, 1, 1], rot[:, 1, 2], rot[:, 2, 1], rot[:, 2, 2] = c, -s, s, c
    m = torch.linalg.inv(to_yiq) @ rot @ to_yiq  # (T, 3, 3)
    return torch.einsum("tij,tjhw->tihw", m, x).clamp_(0, 1)


def _blur(x, sigma, apply):
    """Separable Gaussian blur with a per-frame sigma, each kernel cut at its own 3 sigma (zeros beyond, so frames
    blurred together equal frames blurred alone); frames with apply=False keep a delta kernel."""
    T, C, H, W = x.shape
    radius = int(math.ceil(3 * float(sigma.max())))
    r = torch.arange(-radius, radius + 1).to(x)
    k = torch.exp(-(r[None] ** 2) / (2 * sigma[:, None] ** 2))
    k = torch.where(r[None].abs() <= torch.ceil(3 * sigma[:, None]), k, torch.zeros_like(k))
    k = k / k.sum(1, keepdim=True)
    delta = (r == 0).to(x).expand_as(k)
    k = torch.where(apply[:, None], k, delta).repeat_interleave(C, 0)  # (T*C, K)
    y = x.reshape(1, T * C, H, W)
    y = F.conv2d(F.pad(y, (radius, radius, 0, 0), mode="reflect" if W > radius else "replicate"),
                 k.view(T * C, 1, 1, -1), groups=T * C)
    y = F.conv2d(F.pad(y, (0, 0, radius, radius), mode="reflect" if H > radius else "replicate"),
                 k.view(T * C, 1, -1, 1), groups=T * C)
    return y.view(T, C, H, W)


def _jitter(y, op: int, p: dict, frames) -> torch.Tensor:
    """Colour-jitter op (0 brightness, 1 contrast, 2 saturation, 3 hue) on the frames `frames` of p."""
    def col(name):
        return p[name][frames].view(-1, 1, 1, 1)

    if op == 0:
        return (y * col("brightness")).clamp_(0, 1)
    if op == 1:
        return _blend(y, _gray(y).mean(dim=(-1, -2), keepdim=True), col("contrast"))
    if op == 2:
        return _blend(y, _gray(y), col("saturation"))
    return _hue(y, p["hue"][frames])


def apply(x: torch.Tensor, p: dict) -> torch.Tensor:
    """x: (N, 3, H, W) float in [0, 1] -> augmented and ImageNet-normalised, same shape, on x's device.

    p holds one entry per frame (sample_params of one view, or of many views concatenated: apply_batch); the
    jitter order is one permutation, or one per frame (N, 4). Which ops run and on which frames is decided from
    p on the host, so a GPU pass never waits on a device-to-host read."""
    N = x.shape[0]
    host = {k: np.asarray(v) for k, v in p.items()}
    t = {k: torch.as_tensor(v).to(x.device) for k, v in host.items() if k != "order"}
    t = {k: v.to(x.dtype) if v.is_floating_point() else v for k, v in t.items()}
    order = np.broadcast_to(host["order"], (N, 4))

    def col(name):
        return t[name].view(N, 1, 1, 1)

    if host["flip"].any():
        x = torch.where(col("flip"), x.flip(-1), x)
    if host["jitter"].any():
        y = x
        for k in range(4):
            for op in range(4):
                rows = order[:, k] == op
                if rows.all():
                    y = _jitter(y, op, t, slice(None))
                elif rows.any():
                    idx = torch.as_tensor(np.flatnonzero(rows), device=x.device)
                    y = y.index_copy(0, idx, _jitter(y[idx], op, t, idx))
        x = torch.where(col("jitter"), y, x)
    if host["gray"].any():
        x = torch.where(col("gray"), _gray(x).expand_as(x), x)
    if host["blur"].any():
        x = _blur(x, t["sigma"], t["blur"])
    if host["solarize"].any():
        x = torch.where(col("solarize") & (x >= 0.5), 1 - x, x)
    return normalize(x)


def apply_batch(views: torch.Tensor, params: list[dict]) -> torch.Tensor:
    """One view of a batch on the training device: views (B, 3, T, S, S) in [0, 1], params[b] from sample_params
    for sample b -> augmented and normalised, (B, 3, T, S, S). The same result as apply() per sample, in one pass."""
    B, C, T, S, _ = views.shape
    x = views.transpose(1, 2).reshape(B * T, C, S, S)
    p = {k: np.concatenate([np.broadcast_to(q[k], (T,)) for q in params]) for k in params[0] if k != "order"}
    p["order"] = np.repeat(np.stack([q["order"] for q in params]), T, axis=0)
    return apply(x, p).reshape(B, T, C, S, S).transpose(1, 2).contiguous()


def from_uint8(views: torch.Tensor) -> torch.Tensor:
    """Views as the loader sends them for augmentation on the device, uint8 (B, T, S, S, 3), -> float (B, 3, T, S, S)
    in [0, 1], the values crop_resize gives in the loader."""
    return views.permute(0, 4, 1, 2, 3).float().div_(255)


def normalize(x: torch.Tensor) -> torch.Tensor:
    mean = torch.tensor(IMAGENET_MEAN).to(x).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).to(x).view(1, 3, 1, 1)
    return (x - mean) / std
