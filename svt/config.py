"""Run configs: a stage's DEFAULTS overlaid with the user's YAML (nested dicts merge, other values replace)."""

from __future__ import annotations

import copy
import re
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


def coerce(value, schema: dict, root: dict | None = None):
    """`value` with strings turned into the booleans, integers, numbers and lists its JSON schema asks for.

    Snakemake parses a nested `--config` override (`pretraining={"optim": {"epochs": 3}}`) into strings; the
    workflow coerces by the schema before validating, so an override means what it says. Anything that does not
    parse stays as it was and the schema reports it, naming the key.
    """
    root = schema if root is None else root
    if "$ref" in schema:
        target = root
        for part in schema["$ref"].lstrip("#/").split("/"):
            target = target[part]
        schema = target
    if isinstance(value, dict):
        properties, patterns = schema.get("properties", {}), schema.get("patternProperties", {})
        extra = schema.get("additionalProperties")
        for key, v in value.items():
            sub = properties.get(key) or next((s for p, s in patterns.items() if re.search(p, key)), None) or extra
            if isinstance(sub, dict):
                value[key] = coerce(v, sub, root)
        return value
    if isinstance(value, list):
        return [coerce(v, schema["items"], root) for v in value] if isinstance(schema.get("items"), dict) else value
    if not isinstance(value, str):
        return value
    types = schema.get("type", [])
    types = [types] if isinstance(types, str) else types
    if "string" in types:
        return value
    if "boolean" in types and value.lower() in ("true", "false"):
        return value.lower() == "true"
    for kind, parse in (("integer", int), ("number", float)):
        if kind in types:
            try:
                return parse(value)
            except ValueError:
                pass
    if "array" in types or "object" in types:
        try:
            parsed = yaml.safe_load(value)
        except yaml.YAMLError:
            return value
        return coerce(parsed, schema, root) if isinstance(parsed, (list, dict)) else value
    return value
