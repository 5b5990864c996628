"""Run configs: a stage's DEFAULTS overlaid with the user's YAML (nested dicts merge, other values replace)."""

from __future__ import annotations

import copy
from pathlib import Path

import yaml


def merge(base: dict, over: dict | None) -> dict:
    out = copy.deepcopy(base)
    for k, v in (over or {}).items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def load_yaml(source: str | Path) -> dict:
    """Settings from a YAML file, or inline when `source` is a mapping literal ("{...}", as the workflow passes
    them so that Snakemake sees every setting of a job as a parameter and reruns exactly what changed)."""
    text = str(source)
    inline = text.lstrip().startswith("{")
    cfg = yaml.safe_load(text if inline else Path(text).read_text())
    if cfg is not None and not isinstance(cfg, dict):
        raise ValueError(f"{'inline settings' if inline else text}: expected a mapping, got {type(cfg).__name__}")
    return cfg or {}
