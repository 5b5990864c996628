"""Typed settings: each default defined once (in its field), the schema and the fields in step, partial sections
filled with defaults, and a run's fingerprint covering every setting that shapes its trajectory."""

import copy
import dataclasses
import subprocess
import sys

import pytest
import yaml

from helpers import synth_dataset
from svt import engine, settings
from svt.config import ConfigError, section_schema, workflow_schema
from svt.index import write_index
from svt.synth import SynthConfig

# keys the workflow section carries for the workflow alone (the svt commands never receive them)
WORKFLOW_ONLY = {"evaluation": {"baselines"}}


def resolve(node: dict, root: dict) -> dict:
    while "$ref" in node:
        target = root
        for part in node["$ref"].lstrip("#/").split("/"):
            target = target[part]
        node = target
    return node


def schema_mismatches(instance, node: dict, root: dict, path: str) -> list[str]:
    """Every difference between a settings dataclass and its schema node: keys on one side only, and schema
    defaults that are not the field's default."""
    props = resolve(node, root)["properties"]
    fields = {f.name for f in dataclasses.fields(instance)}
    out = [f"{path}.{k}: in the schema only" for k in sorted(set(props) - fields - WORKFLOW_ONLY.get(path, set()))]
    out += [f"{path}.{k}: in the dataclass only" for k in sorted(fields - set(props))]
    for name in sorted(fields & set(props)):
        value, sub = getattr(instance, name), resolve(props[name], root)
        if dataclasses.is_dataclass(value):
            out += schema_mismatches(value, sub, root, f"{path}.{name}")
        elif "default" in sub and sub["default"] != (list(value) if isinstance(value, tuple) else value):
            out.append(f"{path}.{name}: schema default {sub['default']!r}, field default {value!r}")
    return out


@pytest.mark.parametrize("section,typed", [("pretraining", settings.Pretraining()),
                                           ("evaluation", settings.Evaluation())])
def test_the_schema_and_the_typed_settings_have_the_same_keys_and_defaults(section, typed):
    schema = section_schema(section)
    assert schema_mismatches(typed, schema, schema, section) == []


@pytest.mark.parametrize("definition,typed", [
    ("dataset", settings.Dataset(source="synthetic", reencode=settings.Reencode())),
    ("resource", settings.Resource(threads=1, processes=1, gpus=0, cpus_per_gpu=0, mem_mb=100, runtime=1)),
])
def test_the_workflows_dataset_and_resource_entries_match_their_typed_settings(definition, typed):
    root = workflow_schema()
    node = root["$defs"][definition]
    assert schema_mismatches(typed, node, root, definition) == []


def test_a_partial_section_takes_every_other_default_from_the_fields():
    s = settings.pretraining({"views": {"global_views": {"size": 64}}, "optim": {"lr": 1}})
    default = settings.Pretraining()
    assert s.views.global_views == dataclasses.replace(default.views.global_views, size=64)
    assert s.views.local_views == default.views.local_views
    assert s.optim == dataclasses.replace(default.optim, lr=1.0) and isinstance(s.optim.lr, float)
    assert settings.pretraining(settings.to_dict(s)) == s  # the plain form written to sidecars reads back


def test_an_unknown_key_or_an_impossible_value_names_its_path():
    with pytest.raises(ConfigError, match=r"pretraining\.views\.global_views\.fps: unknown key"):
        settings.pretraining({"views": {"global_views": {"fps": 4}}})
    with pytest.raises(ConfigError, match="pretraining.views: .*tis"):
        settings.pretraining({"views": {"sampler": "tis"}})  # the paper's globals have different T


def changed(value):
    """Another valid-looking value of the same field."""
    if isinstance(value, bool):
        return not value
    if value is None:
        return 64
    if isinstance(value, (int, float)):
        return value + 1
    if isinstance(value, str):
        return value + "_other"
    return (*value[:-1], value[-1] + 1)


def with_field(s, path: str, value):
    """A copy of `s` with one field changed; validation is skipped (only the fingerprint is taken)."""
    head, _, rest = path.partition(".")
    out = copy.copy(s)
    object.__setattr__(out, head, with_field(getattr(s, head), rest, value) if rest else value)
    return out


@pytest.mark.parametrize("typed", [settings.Pretraining(), settings.Evaluation()], ids=["pretrain", "finetune"])
def test_every_training_field_changes_the_run_fingerprint_except_the_declared_logistics(typed, tmp_path):
    index = tmp_path / "index.parquet"
    index.write_text("x")
    base = engine.run_fingerprint(typed, str(index), "random")
    moved, kept = set(), set()
    for path, value in settings.leaves(typed).items():
        other = engine.run_fingerprint(with_field(typed, path, changed(value)), str(index), "random")
        (kept if other == base else moved).add(path)
    logistics = {p for p in settings.leaves(typed) if settings.is_logistics(typed, p)}
    assert kept == logistics and moved and logistics
    assert engine.run_fingerprint(typed, str(index), "other.pth") != base  # and the files it starts from


@pytest.mark.slow
def test_svt_pretrain_with_only_the_global_view_size_given_runs_on_the_defaults(tmp_path):
    root, index = synth_dataset(tmp_path, "kinetics400", SynthConfig(classes=2, train_per_class=2, val_per_class=1,
                                                                     width=64, height=48, frames=24))
    write_index(index, tmp_path / "index.parquet")
    cfg = {"model": {"preset": "vit_micro_patch8", "img_size": 64}, "head": {"out_dim": 64, "hidden_dim": 32,
                                                                             "bottleneck_dim": 16},
           "views": {"global_views": {"size": 64}, "local_views": {"size": 32}},
           "optim": {"epochs": 1, "batch_size": 2, "warmup_epochs": 0}, "data": {"workers": 0}}
    (tmp_path / "partial.yaml").write_text(yaml.safe_dump(cfg))
    subprocess.run([sys.executable, "-m", "svt", "pretrain", "--config", str(tmp_path / "partial.yaml"),
                    "--index", str(tmp_path / "index.parquet"), "--root", str(root), "--work", str(tmp_path / "w"),
                    "--out", str(tmp_path / "t.pth")], check=True, capture_output=True, text=True)
    import json

    recorded = settings.pretraining(json.loads((tmp_path / "t.pth.json").read_text())["config"])
    assert recorded.views.global_views == dataclasses.replace(settings.Pretraining().views.global_views, size=64)
