"""torch.hub entry points (the repository's hubconf.py): an SVT backbone in one line, weights from a path or a URL.

    backbone = torch.hub.load("<owner>/svt", "svt_vit_base", weights="kinetics400_vitb_ssl.pth")
    backbone = torch.hub.load("/path/to/clone", "svt_vit_base", source="local", weights="svt.pth")

Weights go through the project's own loader (svt.checkpoint: every supported format, weights_only, positional
embeddings resized): a URL is downloaded once into torch.hub's cache (resumable, `sha256` checked when given), the
file must hold SVT / backbone weights, and a checkpoint of another architecture stops naming the first key that
differs. A file with a sidecar JSON (what svt pretrain and svt convert write) also gives the model's sizes
(num_frames, img_size), so the backbone is the one `svt features` builds for that file. Returns the backbone in eval
mode: backbone(video (B, 3, T, H, W)) -> (B, embed_dim) CLS features.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from urllib.parse import urlparse

from svt.model import VisionTransformer, build_backbone


def weights_file(weights: str | os.PathLike, sha256: str | None = None) -> Path:
    """A local path as it is, or a URL's copy in torch.hub's cache; verified."""
    from svt.download import check_weights, fetch, verify

    checksum = f"sha256:{sha256.lower()}" if sha256 else None
    text = str(weights)
    if urlparse(text).scheme in ("http", "https"):
        import torch.hub

        dest = Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(text).path).name
        if not dest.exists():
            dest.parent.mkdir(parents=True, exist_ok=True)
            fetch(text, dest, checksum, check=lambda p: check_weights(p, "release"))
        path = dest
    else:
        path = Path(text)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such weights file")
    verify(path, checksum)
    check_weights(path, "release")
    return path


def backbone(preset: str, weights: str | os.PathLike | None = None, sha256: str | None = None,
             **overrides) -> VisionTransformer:
    """`preset` built with the sizes of the weights' sidecar (if any) and `overrides`, then the weights loaded."""
    from svt.checkpoint import load_checkpoint

    path = None if weights is None else weights_file(weights, sha256)
    sidecar = None if path is None else Path(f"{path}.json")
    if sidecar is not None and sidecar.is_file():
        model = json.loads(sidecar.read_text()).get("config", {}).get("model", {})
        if model.get("preset", preset) != preset:
            raise ValueError(f"{path}: its sidecar says preset {model['preset']}, not {preset}")
        sizes = {k: model[k] for k in ("num_frames", "img_size") if model.get(k) is not None}
        overrides = {**sizes, **overrides}
    net = build_backbone(preset, **{"drop_path_rate": 0.0, **overrides})
    if path is not None:
        report = load_checkpoint(net, path)
        if report.missing:
            raise ValueError(f"{path}: backbone weights missing for {len(report.missing)} keys "
                             f"({', '.join(report.missing[:4])}, ...); is it a checkpoint of a {preset} model?")
    return net.eval()


def svt_vit_base(weights=None, sha256=None, **overrides) -> VisionTransformer:
    """The paper's TimeSformer ViT-B/16 (divided space-time), e.g. with the authors' kinetics400_vitb_ssl.pth."""
    return backbone("vit_base_patch16", weights, sha256, **overrides)


def svt_vit_tiny(weights=None, sha256=None, **overrides) -> VisionTransformer:
    """ViT-Tiny/16 (192-d, 4 blocks): the same architecture, small enough for a CPU."""
    return backbone("vit_tiny_patch16", weights, sha256, **overrides)


def svt_vit_micro(weights=None, sha256=None, **overrides) -> VisionTransformer:
    """The demo's micro ViT/8 (64-d, 2 blocks): what the embedded demo and the learning check pretrain."""
    return backbone("vit_micro_patch8", weights, sha256, **overrides)
