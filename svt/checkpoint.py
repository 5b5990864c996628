"""Checkpoint I/O: every weight format SVT users meet, detected by its keys, loaded into our modules.

Formats read (see docs in README "Loading checkpoints"):
- ``svt-release``: the official release, a flat dict of the teacher with ``backbone.*`` / ``head.*`` keys.
- ``svt-train``: an official training checkpoint (``teacher`` / ``student``, DDP ``module.`` prefixes), or ours.
- ``dino-imagenet``: a DINO ImageNet ViT (timm keys, no temporal weights): the paper's spatial initialisation.
  Temporal attention and its norm are copied from the spatial ones, ``temporal_fc`` and ``time_embed`` are zero
  (the official behaviour).
- ``timesformer``: facebookresearch/TimeSformer checkpoints (``model_state`` / ``model.*`` keys).
- ``backbone``: a bare backbone state dict with temporal weights.

Everything is read with ``torch.load(weights_only=True)``. Our own files hold tensors and JSON-able metadata only.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from svt.io import atomic_write, save_json
from svt.model import MultiCropWrapper, VisionTransformer, resize_spatial_pos, resize_temporal_pos

log = logging.getLogger("svt.checkpoint")

_PREFIXES = ("module.", "model.", "_orig_mod.")
_PARAMETRIZED = {
    "last_layer.parametrizations.weight.original0": "last_layer.weight_g",
    "last_layer.parametrizations.weight.original1": "last_layer.weight_v",
}


@dataclass
class LoadReport:
    path: str
    format: str
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    resized: list[str] = field(default_factory=list)
    initialised: list[str] = field(default_factory=list)  # filled by a rule (e.g. DINO: temporal <- spatial)

    def __str__(self) -> str:
        lines = [f"loaded {self.path} (format: {self.format})"]
        for name in ("missing", "unexpected", "resized", "initialised"):
            keys = getattr(self, name)
            if keys:
                shown = ", ".join(keys[:8]) + (f", ... (+{len(keys) - 8})" if len(keys) > 8 else "")
                lines.append(f"  {name} ({len(keys)}): {shown}")
        return "\n".join(lines)


class CheckpointError(ValueError):
    pass


def torch_load(path: str | os.PathLike) -> dict:
    """torch.load with weights_only=True; official training checkpoints pickle an argparse.Namespace."""
    with torch.serialization.safe_globals([argparse.Namespace]):
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except FileNotFoundError:
            raise
        except Exception as e:  # noqa: BLE001 - re-raised with the file named
            raise CheckpointError(f"{path}: cannot be read as a weights-only torch checkpoint: {e}") from e


def _strip(sd: dict) -> dict:
    """Remove wrapper prefixes and map torch's parametrization names to the legacy weight_norm ones."""
    out = {}
    for k, v in sd.items():
        while k.startswith(_PREFIXES):
            k = k.split(".", 1)[1]
        for old, new in _PARAMETRIZED.items():
            if k.endswith(old):
                k = k[: -len(old)] + new
        out[k] = v
    return out


def detect(obj: dict, which: str = "teacher") -> tuple[str, dict]:
    """(format name, flat state dict with prefixes removed) of a loaded checkpoint object."""
    if not isinstance(obj, dict):
        raise CheckpointError(f"expected a dict, got {type(obj).__name__}")
    if "teacher" in obj and "student" in obj:
        if which not in ("teacher", "student"):
            raise CheckpointError(f"which must be teacher or student, got {which!r}")
        return "svt-train", _strip(obj[which])
    if "model_state" in obj:
        return "timesformer", _strip(obj["model_state"])
    for key in ("state_dict", "model"):
        if key in obj and isinstance(obj[key], dict):
            obj = obj[key]
            break
    sd = _strip({k: v for k, v in obj.items() if isinstance(v, torch.Tensor)})
    if any(k.startswith("backbone.") for k in sd):
        return "svt-release", sd
    if "blocks.0.attn.qkv.weight" in sd and "blocks.0.temporal_attn.qkv.weight" not in sd:
        return "dino-imagenet", sd
    if "blocks.0.temporal_attn.qkv.weight" in sd:
        return ("timesformer" if "head.weight" in sd else "backbone"), sd
    raise CheckpointError("no known SVT / DINO / TimeSformer keys found")


def split_backbone_head(fmt: str, sd: dict) -> tuple[dict, dict, list[str]]:
    """Backbone keys, DINO-head keys, and keys that belong to neither (e.g. a classifier)."""
    if fmt in ("svt-release", "svt-train"):
        bb = {k[len("backbone."):]: v for k, v in sd.items() if k.startswith("backbone.")}
        head = {k[len("head."):]: v for k, v in sd.items() if k.startswith("head.")}
        other = [k for k in sd if not k.startswith(("backbone.", "head."))]
        return bb, head, other
    bb = {k: v for k, v in sd.items() if not k.startswith("head.")}
    return bb, {}, [k for k in sd if k.startswith("head.")]


def dino_to_video(sd: dict, depth: int) -> tuple[dict, list[str]]:
    """DINO image ViT -> video backbone: temporal attention / norm copied from spatial (official behaviour)."""
    out = dict(sd)
    made = []
    for i in range(depth):
        for src, dst in (("attn.", "temporal_attn."), ("norm1.", "temporal_norm1.")):
            for k in [k for k in sd if k.startswith(f"blocks.{i}.{src}")]:
                new = k.replace(f"blocks.{i}.{src}", f"blocks.{i}.{dst}", 1)
                out[new] = sd[k].clone()
                made.append(new)
    return out, made


def _resize_embeddings(backbone: VisionTransformer, bb: dict) -> list[str]:
    resized = []
    mode = backbone.cfg.pos_interpolation
    if "pos_embed" in bb and bb["pos_embed"].shape != backbone.pos_embed.shape:
        g = backbone.cfg.grid
        pos = bb["pos_embed"]
        bb["pos_embed"] = torch.cat([pos[:, :1], resize_spatial_pos(pos[:, 1:], g, g, mode)], dim=1)
        resized.append(f"pos_embed {tuple(pos.shape)} -> {tuple(bb['pos_embed'].shape)}")
    if "time_embed" in bb and bb["time_embed"].shape != backbone.time_embed.shape:
        old = bb["time_embed"]
        bb["time_embed"] = resize_temporal_pos(old, backbone.cfg.num_frames, mode)
        resized.append(f"time_embed {tuple(old.shape)} -> {tuple(bb['time_embed'].shape)}")
    return resized


def _check_shapes(path: str, module: nn.Module, sd: dict, prefix: str = "") -> None:
    """A checkpoint of another width, depth or patch size fails here, naming the first key that differs."""
    own = module.state_dict()
    for k, v in sd.items():
        if k in own and own[k].shape != v.shape:
            raise CheckpointError(f"{path}: architecture mismatch at {prefix}{k}: the model expects "
                                  f"{tuple(own[k].shape)}, the checkpoint has {tuple(v.shape)}")


def load_checkpoint(model: nn.Module, path: str | os.PathLike, which: str = "teacher",
                    strict: bool = False) -> LoadReport:
    """Load any supported checkpoint into a backbone, or into a MultiCropWrapper (backbone + DINO head).

    Keys the checkpoint lacks keep their current values and are listed as `missing`; with strict=True any
    missing or unexpected key raises CheckpointError naming the file.
    """
    path = str(path)
    try:
        fmt, sd = detect(torch_load(path), which)
    except CheckpointError as e:
        raise CheckpointError(e if str(e).startswith(path) else f"{path}: {e}") from e
    bb, head_sd, other = split_backbone_head(fmt, sd)
    backbone = model.backbone if isinstance(model, MultiCropWrapper) else model
    if not isinstance(backbone, VisionTransformer):
        raise TypeError(f"expected a VisionTransformer or MultiCropWrapper, got {type(model).__name__}")
    report = LoadReport(path=path, format=fmt)
    if fmt == "dino-imagenet":
        bb, report.initialised = dino_to_video(bb, backbone.cfg.depth)
    report.resized = _resize_embeddings(backbone, bb)
    _check_shapes(path, backbone, bb)
    if isinstance(model, MultiCropWrapper) and head_sd:
        _check_shapes(path, model.head, head_sd, "head.")
    res = backbone.load_state_dict(bb, strict=False)
    report.missing += list(res.missing_keys)
    report.unexpected += list(res.unexpected_keys) + other
    if isinstance(model, MultiCropWrapper):
        if head_sd:
            res = model.head.load_state_dict(head_sd, strict=False)
            report.missing += ["head." + k for k in res.missing_keys]
            report.unexpected += ["head." + k for k in res.unexpected_keys]
        else:
            report.missing += ["head." + k for k in model.head.state_dict()]
    elif head_sd:
        report.unexpected += ["head." + k for k in head_sd]
    if fmt == "dino-imagenet":
        # temporal_fc / time_embed keep their zero init, which is the intended initialisation, not a gap.
        report.missing = [k for k in report.missing if not (k == "time_embed" or ".temporal_fc." in k)]
    if strict and (report.missing or report.unexpected):
        raise CheckpointError(str(report))
    return report


def official_state_dict(backbone: VisionTransformer, head: nn.Module | None = None) -> dict[str, torch.Tensor]:
    """Flat `backbone.*` / `head.*` dict, the layout of the official release."""
    sd = {"backbone." + k: v.detach().cpu().clone() for k, v in backbone.state_dict().items()}
    if head is not None:
        sd.update({"head." + k: v.detach().cpu().clone() for k, v in head.state_dict().items()})
    return sd


def check_serialisable(obj, where: str = "checkpoint") -> None:
    """Our checkpoints hold tensors, numbers, strings, lists and dicts only (loadable with weights_only)."""
    # exact types: numpy scalars subclass float but weights_only loading refuses them
    if isinstance(obj, torch.Tensor) or obj is None or type(obj) in (bool, int, float, str):
        return
    if isinstance(obj, dict):
        for k, v in obj.items():
            if not isinstance(k, (str, int)):
                raise TypeError(f"{where}: key {k!r} is not a str or int")
            check_serialisable(v, f"{where}.{k}")
        return
    if isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            check_serialisable(v, f"{where}[{i}]")
        return
    raise TypeError(f"{where}: {type(obj).__name__} is not a tensor or JSON-able value")


def tensor_bytes(obj) -> int:
    """Bytes of the tensors in a (nested) checkpoint object: about what it needs on disk."""
    if isinstance(obj, torch.Tensor):
        return obj.numel() * obj.element_size()
    if isinstance(obj, dict):
        return sum(tensor_bytes(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(tensor_bytes(v) for v in obj)
    return 0


def save_checkpoint(path: str | os.PathLike, obj: dict) -> None:
    """Written atomically; a full disk raises svt.io.WriteError naming the path, the bytes needed and free."""
    check_serialisable(obj)

    def write(tmp):
        with open(tmp, "wb") as fh:  # through a Python file: a full disk is an OSError, not torch's opaque one
            torch.save(obj, fh)

    atomic_write(path, write, size_hint=tensor_bytes(obj))


def export_official(path: str | os.PathLike, backbone: VisionTransformer, head: nn.Module | None = None,
                    meta: dict | None = None) -> None:
    """Write the official flat format (loads in the official code); metadata goes to a sidecar `<path>.json`."""
    save_checkpoint(path, official_state_dict(backbone, head))
    if meta is not None:
        save_json(str(path) + ".json", meta)


# ---------------------------------------------------------------- training state (exact resume)

def rng_state() -> dict:
    np_state = np.random.get_state()
    return {"torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "numpy": {"key": np_state[0], "state": torch.from_numpy(np_state[1].astype(np.int64)),
                      "pos": int(np_state[2]), "has_gauss": int(np_state[3]), "gauss": float(np_state[4])},
            "python": [list(x) if isinstance(x, tuple) else x for x in random.getstate()]}


def set_rng_state(s: dict) -> None:
    torch.set_rng_state(s["torch"])
    if s["cuda"]:
        torch.cuda.set_rng_state_all(s["cuda"])
    n = s["numpy"]
    np.random.set_state((n["key"], n["state"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    py = s["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))


def newest_checkpoint(work: Path) -> dict | None:
    """The newest checkpoint that loads; a damaged newer one is skipped with a warning."""
    for path in sorted(work.glob("checkpoint_*.pth"), reverse=True):
        try:
            return torch_load(path)
        except Exception as e:  # noqa: BLE001
            log.warning("skipping unreadable checkpoint %s: %s", path, e)
    return None


def resume(work: Path, run: str, d) -> dict | None:
    """The training state to continue from: the newest loadable checkpoint of this same run (`run`: a
    svt.io.fingerprint of the settings that shape training and the files it starts from), or None to start.

    State left by another run (a config edit or new input weights made Snakemake rerun the job) is neither
    continued nor deleted: its checkpoints and metrics move to work/superseded-<n>/. metrics.jsonl is cut back to
    the resumed iteration, so steps replayed after a kill are recorded once."""
    work = Path(work)
    state = newest_checkpoint(work)
    stale = state is not None and state.get("run") != run
    if d.enabled:
        torch.distributed.barrier()  # every rank has read before rank 0 moves files
    if d.is_main:
        metrics = work / "metrics.jsonl"
        if stale:
            old = work / f"superseded-{len(list(work.glob('superseded-*'))) + 1}"
            old.mkdir()
            for f in [*work.glob("checkpoint_*.pth"), metrics]:
                if f.exists():
                    f.rename(old / f.name)
            log.warning("%s: training state of other settings or inputs (run %s, this run %s) moved to %s; "
                        "starting afresh", work, state.get("run"), run, old)
        elif metrics.exists():
            done = 0 if state is None else int(state["iteration"])
            kept = [line for line in metrics.read_text().splitlines() if _iteration(line) <= done]
            atomic_write(metrics, lambda tmp: Path(tmp).write_text("".join(line + "\n" for line in kept)))
    if d.enabled:
        torch.distributed.barrier()
    return None if stale else state


def last_logged(work: Path) -> dict:
    """The last complete line of the work folder's metrics.jsonl (after resume cut it back): what the final
    iteration logged, the same whether the run went straight through or was resumed after it ended."""
    metrics = Path(work) / "metrics.jsonl"
    lines = metrics.read_text().splitlines() if metrics.exists() else []
    for line in reversed(lines):
        if _iteration(line) != math.inf:
            return json.loads(line)
    return {}


def _iteration(line: str) -> float:
    try:
        return json.loads(line)["iteration"]
    except ValueError:  # the line a kill cut short
        return math.inf


def save_training_state(work_dir: Path, it: int, d, keep: int, state: dict) -> None:
    """checkpoint_<it>.pth in the work folder: `state` (with its `run` fingerprint) + iteration + every rank's RNG
    state (gathered, so each rank resumes exactly); written atomically by rank 0, keeping the newest `keep` files."""
    states = [None] * d.world_size
    if d.enabled:
        torch.distributed.all_gather_object(states, rng_state())
    else:
        states = [rng_state()]
    if d.is_main:
        save_checkpoint(Path(work_dir) / f"checkpoint_{it:08d}.pth",
                        {**state, "iteration": it, "rng": states, "world_size": d.world_size})
        for old in sorted(Path(work_dir).glob("checkpoint_*.pth"))[:-keep]:
            old.unlink()
