"""`svt info` (parameters / MACs per view spec) and `svt convert` (any checkpoint -> official flat format)."""

from __future__ import annotations

import json
from pathlib import Path

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
    p.add_argument("dst", help="output: official flat format (backbone.* / head.*) and its .json sidecar")
    p.add_argument("--preset", choices=sorted(PRESETS),
                   help="architecture (default: from SRC.json when svt wrote SRC, else vit_base_patch16)")
    p.add_argument("--num-frames", type=int, default=None, help="temporal embedding length to store")
    p.add_argument("--img-size", type=int, default=None, help="spatial size the positional embedding is stored for")
    p.add_argument("--which", default="teacher", choices=["teacher", "student"],
                   help="network to take from a training checkpoint")
    p.add_argument("--out-dim", type=int, help="DINO head prototypes (default: SRC.json, else 65536)")
    p.add_argument("--hidden-dim", type=int, help="DINO head hidden width (default: SRC.json, else 2048)")
    p.add_argument("--bottleneck-dim", type=int, help="DINO head bottleneck (default: SRC.json, else 256)")


def convert_settings(args) -> tuple[dict, dict]:
    """Model and head settings: the flags, else the source's sidecar (svt pretrain / svt convert write one), else
    the paper's ViT-B/16 with the 65536-prototype head."""
    model = {"preset": "vit_base_patch16"}
    head = {"out_dim": 65536, "hidden_dim": 2048, "bottleneck_dim": 256}
    sidecar = Path(f"{args.src}.json")
    if sidecar.exists():
        recorded = json.loads(sidecar.read_text()).get("config", {})
        model = {k: v for k, v in recorded.get("model", model).items() if k != "drop_path_rate"}
        head.update({k: v for k, v in recorded.get("head", {}).items() if k in head})
    flags = {"preset": args.preset, "num_frames": args.num_frames, "img_size": args.img_size}
    model.update({k: v for k, v in flags.items() if v is not None})
    head.update({k: v for k, v in (("out_dim", args.out_dim), ("hidden_dim", args.hidden_dim),
                                   ("bottleneck_dim", args.bottleneck_dim)) if v is not None})
    return model, head


def run_convert(args) -> int:
    if not Path(args.src).is_file():
        raise FileNotFoundError(f"{args.src}: no such file")
    model_cfg, head_cfg = convert_settings(args)
    backbone = VisionTransformer(backbone_config(**model_cfg))
    model = MultiCropWrapper(backbone, build_head(backbone.embed_dim, **head_cfg))
    report = load_checkpoint(model, args.src, which=args.which)
    print(report)
    has_head = not any(k.startswith("head.") for k in report.missing)
    export_official(args.dst, backbone, model.head if has_head else None,
                    meta={"source": args.src, "source_format": report.format,
                          "config": {"model": model_cfg, **({"head": head_cfg} if has_head else {})}})
    return 0
