"""An independent transcription of the official TimeSformer/SVT forward pass (einops, as the official code).

Used only as a test oracle: it reads our module's parameters but re-derives every reshape and interpolation
the way reference/official_svt_code.md §1.2-1.3 describes the official code.
"""

import torch
import torch.nn.functional as F
from einops import rearrange


def _attn(mod, x, heads):
    B, N, C = x.shape
    qkv = mod.qkv(x).reshape(B, N, 3, heads, C // heads).permute(2, 0, 3, 1, 4)
    q, k, v = qkv[0], qkv[1], qkv[2]
    a = (q @ k.transpose(-2, -1)) * (C // heads) ** -0.5
    return mod.proj((a.softmax(-1) @ v).transpose(1, 2).reshape(B, N, C))


def official_forward(model, x):
    heads = model.cfg.num_heads
    B, _, T, H, W = x.shape
    x = rearrange(x, "b c t h w -> (b t) c h w")
    x = model.patch_embed.proj(x)
    Wp = x.size(-1)
    x = x.flatten(2).transpose(1, 2)
    x = torch.cat((model.cls_token.expand(x.size(0), -1, -1), x), dim=1)
    pos = model.pos_embed
    if x.size(1) != pos.size(1):
        cls_pos = pos[0, 0, :].unsqueeze(0).unsqueeze(1)
        other = pos[0, 1:, :].unsqueeze(0).transpose(1, 2)
        P = int(other.size(2) ** 0.5)
        Hp = x.size(1) // Wp
        other = other.reshape(1, x.size(2), P, P)
        new = F.interpolate(other, size=(Hp, Wp), mode="nearest").flatten(2).transpose(1, 2)
        pos = torch.cat((cls_pos, new), 1)
    x = x + pos
    cls_tokens = x[:B, 0, :].unsqueeze(1)
    x = x[:, 1:]
    x = rearrange(x, "(b t) n m -> (b n) t m", b=B, t=T)
    te = model.time_embed
    if T != te.size(1):
        te = F.interpolate(te.transpose(1, 2), size=T, mode="nearest").transpose(1, 2)
    x = x + te
    x = rearrange(x, "(b n) t m -> b (n t) m", b=B, t=T)
    x = torch.cat((cls_tokens, x), dim=1)
    for blk in model.blocks:
        num_spatial = (x.size(1) - 1) // T
        Hs = num_spatial // Wp
        xt = x[:, 1:, :]
        xt = rearrange(xt, "b (h w t) m -> (b h w) t m", b=B, h=Hs, w=Wp, t=T)
        res_t = _attn(blk.temporal_attn, blk.temporal_norm1(xt), heads)
        res_t = rearrange(res_t, "(b h w) t m -> b (h w t) m", b=B, h=Hs, w=Wp, t=T)
        xt = x[:, 1:, :] + blk.temporal_fc(res_t)
        init_cls = x[:, 0, :].unsqueeze(1)
        cls = rearrange(init_cls.repeat(1, T, 1), "b t m -> (b t) m", b=B, t=T).unsqueeze(1)
        xs = rearrange(xt, "b (h w t) m -> (b t) (h w) m", b=B, h=Hs, w=Wp, t=T)
        xs = torch.cat((cls, xs), 1)
        res_s = _attn(blk.attn, blk.norm1(xs), heads)
        cls_res = rearrange(res_s[:, 0, :], "(b t) m -> b t m", b=B, t=T).mean(1, True)
        res_s = rearrange(res_s[:, 1:, :], "(b t) (h w) m -> b (h w t) m", b=B, h=Hs, w=Wp, t=T)
        x = torch.cat((init_cls, xt), 1) + torch.cat((cls_res, res_s), 1)
        x = x + blk.mlp(blk.norm2(x))
    return model.norm(x)[:, 0]
