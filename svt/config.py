"""Reading and checking settings: YAML files or inline JSON, validated against the workflow schema (the typed
settings and their defaults are in svt.settings)."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import yaml


def merge(base: dict, over: dict | None) -> dict:
    out = copy.deepcopy(base)
    for k, v in (over or {}).items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


class ConfigError(ValueError):
    """Settings that cannot be used; the message names the file and the key."""


def load_yaml(source: str | Path, allow_empty: bool = True) -> dict:
    """Settings from a YAML file, or inline when `source` is a mapping literal ("{...}", as the workflow passes
    them so that Snakemake sees every setting of a job as a parameter and reruns exactly what changed)."""
    text = str(source)
    inline = text.lstrip().startswith("{")
    where = "inline settings" if inline else text
    if not inline and not Path(text).is_file():
        raise ConfigError(f"{text}: no such settings file")
    try:
        cfg = _inline(text) if inline else yaml.safe_load(Path(text).read_text())
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise ConfigError(f"{where}: not valid YAML{at}: {getattr(e, 'problem', None) or e}") from None
    if cfg is not None and not isinstance(cfg, dict):
        raise ConfigError(f"{where}: expected a mapping of settings, got {type(cfg).__name__}")
    if not cfg and not allow_empty:
        raise ConfigError(f"{where}: is empty; give the settings (an empty file would silently mean every default)")
    return cfg or {}


def _inline(text: str):
    """Inline settings: JSON as the workflow writes it (YAML 1.1 would read 1e-06 as a string), else YAML."""
    try:
        return json.loads(text)
    except ValueError:
        return yaml.safe_load(text)


SCHEMA_FILE = Path(__file__).parent / "schemas" / "config.schema.yaml"
# The sections of the workflow's schema each svt command reads, with the keys the workflow adds to them.
TRACKING = {"$ref": "#/$defs/tracking"}
SECTIONS = {"pretraining": ("$defs/pretraining_settings", {"model": {"$ref": "#/$defs/model"}, "tracking": TRACKING}),
            "evaluation": ("properties/evaluation", {"model": {"$ref": "#/$defs/model"}, "flip": {"type": "boolean"},
                                                     "slow_fast": {"type": "boolean"}, "tracking": TRACKING})}
TYPES = {"number": "a number", "integer": "an integer", "boolean": "true or false", "string": "a string",
         "array": "a list", "object": "a mapping"}


def workflow_schema() -> dict:
    return yaml.safe_load(SCHEMA_FILE.read_text())


def section_schema(section: str) -> dict:
    """The schema of one section of the workflow config, as one svt command receives it."""
    root = workflow_schema()
    path, added = SECTIONS[section]
    node = root
    for part in path.split("/"):
        node = node[part]
    node = copy.deepcopy(node)
    node["properties"] = {k: v for k, v in {**node["properties"], **added}.items() if k != "baselines"}
    node.pop("required", None)
    return {**node, "$defs": root["$defs"]}


def explain(error, prefix: str) -> str:
    """One line for a jsonschema error: the key path and what was expected."""
    path = ".".join([prefix, *map(str, error.absolute_path)]) if prefix else ".".join(map(str, error.absolute_path))
    head = f"{path}: " if path else ""
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        extra = sorted(set(error.instance) - set(allowed))
        return f"{head}unknown key {', '.join(map(repr, extra))}; allowed: {', '.join(allowed)}"
    if error.validator == "type":
        wanted = error.validator_value if isinstance(error.validator_value, list) else [error.validator_value]
        return f"{head}expected {' or '.join(TYPES.get(t, t) for t in wanted)}, got {error.instance!r}"
    if error.validator == "enum":
        return f"{head}expected one of {', '.join(map(str, error.validator_value))}, got {error.instance!r}"
    return f"{head}{error.message}"


def check(cfg: dict, schema: dict, prefix: str = "", where: str = "") -> None:
    """Raise ConfigError with one line for the first problem (the shallowest key first)."""
    import jsonschema

    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(cfg), key=lambda e: len(e.absolute_path))
    if errors:
        raise ConfigError(f"{where + ': ' if where else ''}{explain(errors[0], prefix)}")


def load_settings(source: str | Path, section: str) -> dict:
    """A svt command's settings (file or inline), checked against its section of the workflow schema: unknown keys
    and wrong types name the key path, an empty file is refused. Defaults are the stage's own (DEFAULTS)."""
    cfg = load_yaml(source, allow_empty=False)
    check(cfg, section_schema(section), section, "inline settings" if str(source).lstrip().startswith("{")
          else str(source))
    return cfg


def coerce(value, schema: dict, root: dict | None = None):
    """`value` with strings turned into the booleans, integers, numbers, lists and nulls its JSON schema asks for.

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
    if value in schema.get("enum", ()) or "string" in types:
        return value
    if any(isinstance(e, bool) for e in schema.get("enum", ())):
        types = [*types, "boolean"]  # compile: false | true | reduce-overhead
    if "boolean" in types and value.lower() in ("true", "false"):
        return value.lower() == "true"
    if "null" in types and value in ("null", "~"):  # datasets.<name>.reencode: null opts out
        return None
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
