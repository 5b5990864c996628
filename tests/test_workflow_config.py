"""The workflow's config check and job settings (svt.workflow), as plain functions: what the schema cannot see
stops before any job with the key named, and each job gets the complete settings of its run."""

import copy
from pathlib import Path

import pytest
import yaml

from svt import settings, workflow
from svt.config import ConfigError

REPO = Path(__file__).resolve().parents[1]
DEMO = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
PAPER = yaml.safe_load((REPO / "config" / "paper.yaml").read_text())


def changed(edit) -> dict:
    cfg = copy.deepcopy(DEMO)
    edit(cfg)
    return cfg


@pytest.mark.parametrize("edit,named", [
    (lambda c: c["datasets"].update({"my set": {"source": "local", "path": ".", "layout": "folders"}}),
     "datasets.my set: use letters"),
    (lambda c: c["datasets"].update(mine={"source": "synthetic"}), "your own videos need source: local"),
    (lambda c: c["datasets"].update(mine={"source": "local", "path": ".", "layout": "csv"}),
     "datasets.mine.csv is required"),
    (lambda c: c["datasets"]["ucf101"].update(layout="folders"), "datasets.ucf101.layout"),
    (lambda c: c["pretraining"].update(dataset="nowhere"), "pretraining.dataset = 'nowhere'"),
    (lambda c: c["datasets"]["hmdb51"].update(source="local"), "datasets.hmdb51.path is required"),
    (lambda c: c["datasets"]["hmdb51"].update(source="local", path="/nonexistent"), "datasets.hmdb51.path"),
    (lambda c: c.pop("synthetic"), "no `synthetic` section"),
    (lambda c: c["datasets"]["ucf101"].update(source="download"), "no `downloads` section"),
    (lambda c: c["spatial_init"].update(source="none"), "evaluation.baselines lists spatial_init"),
    (lambda c: c["ablations"]["variants"].update(random={}), "ablations.variants.random"),
    (lambda c: c["ablations"]["tables"].update(table4=["baseline", "nope"]), "unknown variants ['nope']"),
    (lambda c: c["ablations"]["variants"].update(bad={"views": {"sampler": "tis"}}), "ablations.variants.bad"),
])
def test_what_the_schema_cannot_see_stops_with_the_key_named(edit, named):
    with pytest.raises(ConfigError) as e:
        workflow.check(changed(edit))
    assert named in str(e.value)


def test_the_repositorys_configs_pass_the_check():
    workflow.check(DEMO)
    workflow.check({**PAPER, "datasets": {k: v for k, v in PAPER["datasets"].items() if v["source"] != "local"}})


def test_a_variant_is_its_keys_over_the_main_run_with_the_ablation_epochs():
    main = workflow.pretraining_settings(DEMO)
    tis = workflow.pretraining_settings(DEMO, "tis")
    assert tis.views.sampler == "tis" and tis.views.global_views.frames == (8, 8)
    assert tis.views.global_views.size == main.views.global_views.size  # the rest of the family is the main run's
    assert tis.optim.epochs == DEMO["ablations"]["epochs"] and tis.optim.lr == main.optim.lr
    assert main.model == settings.build(settings.Model(), DEMO["model"], "model")


def test_the_image_spatial_initialisation_is_the_same_run_on_single_frames():
    s = workflow.image_pretraining_settings(DEMO)
    main = workflow.pretraining_settings(DEMO)
    assert set(s.views.global_views.frames) == set(s.views.local_views.frames) == {1}
    assert s.views.local_views.count == main.views.local_views.count
    assert s.optim.epochs == DEMO["spatial_init"]["epochs"] and s.optim.warmup_epochs < s.optim.epochs
    assert s.loss == main.loss and s.head == main.head


def test_evaluation_settings_take_the_datasets_flip_and_the_inference():
    ssv2 = workflow.evaluation_settings(DEMO, "ssv2", slow_fast=False)
    assert ssv2.flip is DEMO["datasets"]["ssv2"]["flip"] is False and ssv2.slow_fast is False
    assert workflow.evaluation_settings(DEMO, "ucf101").flip is True  # the field's default
    assert ssv2.linear.epochs == DEMO["evaluation"]["linear"]["epochs"]


def test_datasets_left_out_and_their_roots():
    cfg = changed(lambda c: (c["datasets"].pop("ssv2"), c["datasets"]["hmdb51"].update(enabled=False),
                             c["datasets"]["ucf101"].update(reencode={"short_side": 32})))
    assert workflow.disabled_benchmarks(cfg) == ["hmdb51", "ssv2"]
    assert workflow.dataset_root(cfg, "ucf101") == "resources/reencoded/ucf101"
    assert workflow.source_root(cfg, "ucf101") == "resources/synthetic/ucf101"
    assert workflow.dataset(cfg, "ucf101").reencode == settings.Reencode(short_side=32)
    assert workflow.index_options(cfg, "kinetics400") == "--split 1"


def test_pretraining_on_a_flip_sensitive_set_mirrors_no_view_and_the_paper_set_keeps_its_flips():
    """Paper §3.2.2: horizontal flips only for datasets without flip-equivariant classes ("left to right")."""
    on_ssv2 = changed(lambda c: c["pretraining"].update(dataset="ssv2"))
    assert workflow.pretraining_settings(on_ssv2).augment.flip is False
    assert workflow.pretraining_settings(on_ssv2, "no_tca").augment.flip is False  # the ablations too
    assert workflow.pretraining_settings(DEMO).augment.flip is True
    assert workflow.pretraining_settings(PAPER).augment.flip is True  # Kinetics-400
