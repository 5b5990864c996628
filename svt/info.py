"""`svt info` (parameters / MACs per view spec) and `svt convert` (any checkpoint -> official flat format)."""

from __future__ import annotations

import json

from svt.checkpoint import export_official, load_checkpoint
from svt.flops import count_macs, count_params
from svt.model import PRESETS, MultiCropWrapper, VisionTransformer, backbone_config, build_head


def add_info_arguments(p):
    p.add_argument("--preset", default="vit_base_patch16", choices=sorted(PRESETS))
    p.add_argument("--view", action="append", default=None, metavar="TxS",
                   help="view spec frames x size, e.g. 8x224 (repeatable; default: the paper's views)")


def run_info(args) -> int:
    cfg = backbone_config(args.preset)
    views = args.view or ["8x224", "16x224", "2x96", "4x96", "8x96", "16x96", "64x96"]
    rows = []
    for spec in views:
        t, s = (int(v) for v in spec.lower().split("x"))
        rows.append({"view": spec, "frames": t, "size": s, "gmacs": round(count_macs(cfg, t, s) / 1e9, 3)})
    print(json.dumps({"preset": args.preset, "config": cfg.to_dict(), "params": count_params(cfg),
                      "views": rows}, indent=2))
    return 0


def add_convert_arguments(p):
    p.add_argument("src", help="checkpoint in any supported format")
    p.add_argument("dst", help="output: official flat format (backbone.* / head.*)")
    p.add_argument("--preset", default="vit_base_patch16", choices=sorted(PRESETS))
    p.add_argument("--num-frames", type=int, default=None, help="temporal embedding length to store")
    p.add_argument("--which", default="teacher", choices=["teacher", "student"],
                   help="network to take from a training checkpoint")
    p.add_argument("--out-dim", type=int, default=65536, help="DINO head prototypes")


def run_convert(args) -> int:
    backbone = VisionTransformer(backbone_config(args.preset, num_frames=args.num_frames))
    model = MultiCropWrapper(backbone, build_head(backbone.embed_dim, args.out_dim))
    report = load_checkpoint(model, args.src, which=args.which)
    print(report)
    has_head = not any(k.startswith("head.") for k in report.missing)
    export_official(args.dst, backbone, model.head if has_head else None,
                    meta={"source": args.src, "source_format": report.format, "config": backbone.cfg.to_dict()})
    return 0
