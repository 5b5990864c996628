"""SVT backbone (TimeSformer divided space-time ViT) and the DINO projection head.

State-dict names and shapes follow the official code (kahnchana/svt, models/timesformer.py and
vision_transformer.py::DINOHead) so that the released checkpoint loads without renaming.

Token layout inside the backbone, as in the official code: x = [CLS, patch tokens ordered (h w t)],
i.e. patch index n = h * W + w is the outer axis and time t the inner one.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from einops import rearrange, reduce
from timm.layers import Mlp, trunc_normal_
from timm.layers.drop import drop_path
from torch import nn

PRESETS: dict[str, dict] = {
    # The paper's backbone (TimeSformer ViT-B/16, divided space-time).
    "vit_base_patch16": dict(embed_dim=768, depth=12, num_heads=12, patch_size=16, img_size=224, num_frames=8),
    # CPU presets for the embedded demo and the tests: same architecture, fewer/smaller blocks.
    "vit_tiny_patch16": dict(embed_dim=192, depth=4, num_heads=3, patch_size=16, img_size=224, num_frames=16),
    "vit_micro_patch8": dict(embed_dim=64, depth=2, num_heads=2, patch_size=8, img_size=64, num_frames=16),
}


TEMPORAL_INITS = ("zero", "random")


@dataclass(frozen=True)
class BackboneConfig:
    embed_dim: int = 768
    depth: int = 12
    num_heads: int = 12
    patch_size: int = 16
    img_size: int = 224  # spatial positional embedding is stored for this size
    num_frames: int = 8  # temporal positional embedding is stored for this many frames
    mlp_ratio: float = 4.0
    drop_path_rate: float = 0.1
    pos_interpolation: str = "nearest"  # "nearest" reproduces the official model exactly
    in_chans: int = 3
    temporal_init: str = "zero"  # zero: the official init (temporal branch a no-op); random: trunc-normal 0.02

    def __post_init__(self):
        if self.embed_dim % self.num_heads:
            raise ValueError(f"embed_dim {self.embed_dim} is not divisible by num_heads {self.num_heads}")
        if self.img_size % self.patch_size:
            raise ValueError(f"img_size {self.img_size} is not a multiple of patch_size {self.patch_size}")
        if self.pos_interpolation not in ("nearest", "bilinear", "bicubic"):
            raise ValueError(f"pos_interpolation must be nearest, bilinear or bicubic, got {self.pos_interpolation!r}")
        if self.temporal_init not in TEMPORAL_INITS:
            raise ValueError(f"model.temporal_init must be {' or '.join(TEMPORAL_INITS)}, got {self.temporal_init!r}")

    @property
    def grid(self) -> int:
        return self.img_size // self.patch_size

    @property
    def mlp_hidden(self) -> int:
        return int(self.embed_dim * self.mlp_ratio)

    def to_dict(self) -> dict:
        return asdict(self)


def backbone_config(preset: str | None = None, **overrides) -> BackboneConfig:
    """A preset (or the ViT-B defaults) with any hyperparameter given explicitly overriding it."""
    if preset is not None and preset not in PRESETS:
        raise ValueError(f"unknown model preset {preset!r}; known: {', '.join(PRESETS)}")
    base = dict(PRESETS[preset]) if preset else {}
    base.update({k: v for k, v in overrides.items() if v is not None})
    return BackboneConfig(**base)


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """torch SDPA. On CPU under bf16 autocast it attends in fp32: there the fused kernel is slower in bf16 than in
    fp32 (bench/bench_cpu_bf16.py), and only the surrounding matmuls gain from bf16."""
    if q.device.type == "cpu" and q.dtype == torch.bfloat16:
        with torch.autocast("cpu", enabled=False):
            return F.scaled_dot_product_attention(q.float(), k.float(), v.float()).to(q.dtype)
    return F.scaled_dot_product_attention(q, k, v)


class Attention(nn.Module):
    """Multi-head self-attention. `fused=True` uses torch SDPA; the explicit path also returns probabilities."""

    fused: bool = True

    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=True)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x, return_attn: bool = False):
        q, k, v = rearrange(self.qkv(x), "b n (qkv h d) -> qkv b h n d", qkv=3, h=self.num_heads)
        attn = None
        if self.fused and not return_attn:
            x = attend(q, k, v)
        else:
            attn = ((q * self.scale) @ k.transpose(-2, -1)).softmax(dim=-1)
            x = attn @ v
        x = self.proj(rearrange(x, "b h n d -> b n (h d)"))
        return (x, attn) if return_attn else x


class DropPath(nn.Module):
    """Stochastic depth per sample. Eager: timm's drop_path (the same random draws). Compiled: the keep
    probability is read from a non-persistent buffer, so a compiled block takes it as an input instead of guarding
    on its value, and all blocks (whose rates rise with depth) share one graph per view shape."""

    def __init__(self, drop_prob: float = 0.0):
        super().__init__()
        self.drop_prob = drop_prob
        self.register_buffer("keep_prob", torch.tensor(1.0 - drop_prob), persistent=False)

    def forward(self, x):
        if not self.training:
            return x
        if torch.compiler.is_compiling():
            mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(self.keep_prob)
            return x * mask.div_(self.keep_prob)
        return drop_path(x, self.drop_prob, True)

    def extra_repr(self):
        return f"drop_prob={self.drop_prob:.3f}"


class Block(nn.Module):
    """Divided space-time block: temporal attention over patch tokens, then spatial attention per frame."""

    def __init__(self, dim: int, num_heads: int, mlp_hidden: int, drop_path: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, num_heads)
        self.temporal_norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.temporal_attn = Attention(dim, num_heads)
        self.temporal_fc = nn.Linear(dim, dim)
        self.drop_path = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, mlp_hidden)  # fc1 -> GELU -> fc2, the official names

    def forward(self, x, T: int, return_attn: bool = False):
        B = x.shape[0]
        cls, patches = x[:, :1], x[:, 1:]

        # Temporal attention: each spatial location attends over its T frames; CLS does not take part.
        xt = rearrange(patches, "b (n t) d -> (b n) t d", t=T)
        res_t = self.drop_path(self.temporal_attn(self.temporal_norm1(xt)))
        xt = patches + self.temporal_fc(rearrange(res_t, "(b n) t d -> b (n t) d", b=B))

        # Spatial attention per frame, with the (pre-block) CLS token replicated into every frame.
        xs = rearrange(xt, "b (n t) d -> (b t) n d", t=T)
        xs = torch.cat([cls.repeat_interleave(T, dim=0), xs], dim=1)
        out = self.attn(self.norm1(xs), return_attn=return_attn)
        res_s, attn = out if return_attn else (out, None)
        res_s = self.drop_path(res_s)
        cls_res = reduce(res_s[:, :1], "(b t) 1 d -> b 1 d", "mean", b=B)
        res_s = rearrange(res_s[:, 1:], "(b t) n d -> b (n t) d", b=B)

        x = torch.cat([cls + cls_res, xt + res_s], dim=1)
        x = x + self.drop_path(self.mlp(self.norm2(x)))
        return (x, attn) if return_attn else x


class PatchEmbed(nn.Module):
    def __init__(self, patch_size: int, in_chans: int, dim: int):
        super().__init__()
        self.proj = nn.Conv2d(in_chans, dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, frames):  # (B*T, C, H, W) -> (B*T, h*w, D)
        return self.proj(frames).flatten(2).transpose(1, 2)


def resize_spatial_pos(pos_grid: torch.Tensor, h: int, w: int, mode: str) -> torch.Tensor:
    """(1, g*g, D) grid embedding -> (1, h*w, D)."""
    g = math.isqrt(pos_grid.shape[1])
    if (g, g) == (h, w):
        return pos_grid
    grid = pos_grid.reshape(1, g, g, -1).permute(0, 3, 1, 2)
    kw = {} if mode == "nearest" else {"align_corners": False}
    grid = F.interpolate(grid.float(), size=(h, w), mode=mode, **kw).to(pos_grid.dtype)
    return grid.permute(0, 2, 3, 1).reshape(1, h * w, -1)


def resize_temporal_pos(time_embed: torch.Tensor, t: int, mode: str) -> torch.Tensor:
    """(1, T0, D) -> (1, t, D)."""
    if time_embed.shape[1] == t:
        return time_embed
    mode_1d = {"nearest": "nearest", "bilinear": "linear", "bicubic": "linear"}[mode]
    kw = {} if mode_1d == "nearest" else {"align_corners": False}
    out = F.interpolate(time_embed.float().transpose(1, 2), size=t, mode=mode_1d, **kw)
    return out.transpose(1, 2).to(time_embed.dtype)


class VisionTransformer(nn.Module):
    """TimeSformer-style video ViT. forward(video (B, 3, T, H, W)) -> final-norm CLS feature (B, embed_dim)."""

    def __init__(self, cfg: BackboneConfig):
        super().__init__()
        self.cfg = cfg
        D = cfg.embed_dim
        self.embed_dim = D
        self.patch_embed = PatchEmbed(cfg.patch_size, cfg.in_chans, D)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, D))
        self.pos_embed = nn.Parameter(torch.zeros(1, cfg.grid * cfg.grid + 1, D))
        self.time_embed = nn.Parameter(torch.zeros(1, cfg.num_frames, D))
        rates = [cfg.drop_path_rate * i / max(cfg.depth - 1, 1) for i in range(cfg.depth)]
        self.blocks = nn.ModuleList(Block(D, cfg.num_heads, cfg.mlp_hidden, r) for r in rates)
        self.norm = nn.LayerNorm(D, eps=1e-6)
        self.init_weights()

    def init_weights(self):
        trunc_normal_(self.pos_embed, std=0.02)
        trunc_normal_(self.cls_token, std=0.02)
        nn.init.zeros_(self.time_embed)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        # zero: temporal_fc zero in every block (the official init, through its loop quirk, zeroes all of them), so
        # at init the temporal branch is a no-op and the model is a per-frame image ViT, blind to frame order.
        # random: time_embed and temporal_fc drawn like every other weight, so the net sees order from the start.
        random = self.cfg.temporal_init == "random"
        if random:
            trunc_normal_(self.time_embed, std=0.02)
        for blk in self.blocks:
            nn.init.zeros_(blk.temporal_fc.bias)
            if random:
                trunc_normal_(blk.temporal_fc.weight, std=0.02)
            else:
                nn.init.zeros_(blk.temporal_fc.weight)

    def set_fused_attention(self, fused: bool):
        """Switch every attention between torch SDPA (True) and the explicit softmax path (False)."""
        for m in self.modules():
            if isinstance(m, Attention):
                m.fused = fused

    def pos_embed_for(self, h: int, w: int) -> torch.Tensor:
        mode = self.cfg.pos_interpolation
        grid = resize_spatial_pos(self.pos_embed[:, 1:], h, w, mode)
        return torch.cat([self.pos_embed[:, :1], grid], dim=1)

    def time_embed_for(self, t: int) -> torch.Tensor:
        return resize_temporal_pos(self.time_embed, t, self.cfg.pos_interpolation)

    def embed(self, video: torch.Tensor):
        B, C, T, H, W = video.shape
        p = self.cfg.patch_size
        if H % p or W % p:
            raise ValueError(f"input size {H}x{W} is not a multiple of the patch size {p}")
        h, w = H // p, W // p
        frames = video.transpose(1, 2).reshape(B * T, C, H, W)
        x = self.patch_embed(frames)  # (B*T, h*w, D)
        cls = self.cls_token + self.pos_embed[:, :1]
        x = x + self.pos_embed_for(h, w)[:, 1:]
        # (B*T, N, D) -> (B, N, T, D): spatial-major, time fastest, then add the temporal embedding.
        x = x.reshape(B, T, h * w, -1).transpose(1, 2) + self.time_embed_for(T).unsqueeze(1)
        x = torch.cat([cls.expand(B, -1, -1), x.reshape(B, h * w * T, -1)], dim=1)
        return x, T, (h, w)

    def forward_features(self, video: torch.Tensor) -> torch.Tensor:
        x, T, _ = self.embed(video)
        for blk in self.blocks:
            x = blk(x, T)
        return self.norm(x)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        return self.forward_features(video)[:, 0]

    @torch.no_grad()
    def last_attention(self, video: torch.Tensor) -> torch.Tensor:
        """Last block's spatial attention from the per-frame CLS to the patches: (B, T, heads, h, w)."""
        x, T, (h, w) = self.embed(video)
        for blk in self.blocks[:-1]:
            x = blk(x, T)
        _, attn = self.blocks[-1](x, T, return_attn=True)  # (B*T, heads, 1+hw, 1+hw)
        B = video.shape[0]
        return attn[:, :, 0, 1:].reshape(B, T, -1, h, w)


class WeightNormLinear(nn.Module):
    """Bias-free linear layer with weight = g * v / ||v|| per output row (torch's legacy weight_norm names)."""

    def __init__(self, in_dim: int, out_dim: int):
        super().__init__()
        self.weight_g = nn.Parameter(torch.ones(out_dim, 1))
        self.weight_v = nn.Parameter(torch.empty(out_dim, in_dim))

    def forward(self, x):
        weight = self.weight_g * self.weight_v / self.weight_v.norm(dim=1, keepdim=True)
        return F.linear(x, weight)


class DINOHead(nn.Module):
    """768 -> 2048 -> 2048 -> 256 MLP, L2-normalise, weight-normalised 65536-way prototype layer."""

    def __init__(self, in_dim=768, out_dim=65536, hidden_dim=2048, bottleneck_dim=256, norm_last_layer=True):
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(in_dim, hidden_dim), nn.GELU(),
            nn.Linear(hidden_dim, hidden_dim), nn.GELU(),
            nn.Linear(hidden_dim, bottleneck_dim),
        )
        self.last_layer = WeightNormLinear(bottleneck_dim, out_dim)
        for m in self.mlp:
            if isinstance(m, nn.Linear):
                trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)
        # nn.Linear's default init for the direction, as in DINO (weight_norm wraps a default-initialised Linear).
        nn.init.kaiming_uniform_(self.last_layer.weight_v, a=math.sqrt(5))
        self.last_layer.weight_g.requires_grad_(not norm_last_layer)

    def forward(self, x, return_bottleneck: bool = False):
        """Prototype logits; with return_bottleneck also the L2-normalised bottleneck they score (the KoLeo term's
        input)."""
        z = F.normalize(self.mlp(x), dim=-1, p=2)
        out = self.last_layer(z)
        return (out, z) if return_bottleneck else out


class MultiCropWrapper(nn.Module):
    """Backbone + head over a list of views: one backbone pass per run of equal-shape views, one head pass.

    Named `backbone` / `head` so the state dict matches the official `backbone.*` / `head.*` keys.
    """

    def __init__(self, backbone: VisionTransformer, head: nn.Module):
        super().__init__()
        self.backbone = backbone
        self.head = head

    def forward(self, views: list[torch.Tensor], return_features: bool = False, return_bottleneck: bool = False):
        """Logits; with return_features and / or return_bottleneck also the backbone CLS and the head's bottleneck,
        in that order."""
        feats = torch.cat([self.backbone(torch.cat(group)) for group in group_views(views)])
        out, z = self.head(feats, return_bottleneck=True) if return_bottleneck else (self.head(feats), None)
        extra = [x for x, want in ((feats, return_features), (z, return_bottleneck)) if want]
        return (out, *extra) if extra else out


def group_views(views: list[torch.Tensor]) -> list[list[torch.Tensor]]:
    """Consecutive views of identical (C, T, H, W) shape, so each group is one batched backbone pass."""
    groups: list[list[torch.Tensor]] = []
    for v in views:
        if groups and groups[-1][0].shape[1:] == v.shape[1:]:
            groups[-1].append(v)
        else:
            groups.append([v])
    return groups


def build_backbone(preset: str | None = "vit_base_patch16", **overrides) -> VisionTransformer:
    """`build_backbone("vit_base_patch16", img_size=224, num_frames=8)`; any BackboneConfig field may be given."""
    return VisionTransformer(backbone_config(preset, **overrides))


def build_head(in_dim: int = 768, out_dim: int = 65536, hidden_dim: int = 2048, bottleneck_dim: int = 256,
               norm_last_layer: bool = True) -> DINOHead:
    return DINOHead(in_dim, out_dim, hidden_dim, bottleneck_dim, norm_last_layer)
