"""Live curves: every training stage's TensorBoard events hold exactly its metrics.jsonl, also after a resume that
replays steps; W&B offline writes its local run files."""

import json
import math

import pytest

from helpers import synth_dataset
from svt import finetune, linear, pretrain
from svt.index import write_index
from svt.synth import SynthConfig

PRETRAIN = {
    "model": {"preset": "vit_micro_patch8", "num_frames": 16, "img_size": 32, "drop_path_rate": 0.0},
    "head": {"out_dim": 32, "hidden_dim": 32, "bottleneck_dim": 16},
    "views": {"global_views": {"frames": [4, 2], "size": 32}, "local_views": {"frames": [2, 2], "size": 16}},
    "optim": {"epochs": 2, "batch_size": 4, "warmup_epochs": 1},
    "data": {"workers": 0},
    "checkpoint_every": 1000,  # checkpoints at epoch ends only: 2 and 4 of 4 iterations
}
EVALUATION = {"model": {"preset": "vit_micro_patch8", "num_frames": 16, "img_size": 32},
              "slow_clip": {"frames": 4, "size": 32}, "fast_clip": {"frames": 8, "size": 16}, "crops": 1,
              "batch_size": 4, "data": {"workers": 0}, "linear": {"epochs": 3, "feature_copies": 1},
              "finetune": {"epochs": 2, "lr_steps": [1], "checkpoint_every": 1000}}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tracking")
    root, index = synth_dataset(tmp, "ucf101", SynthConfig(classes=2, train_per_class=4, val_per_class=1,
                                                           width=48, height=32, frames=12))
    write_index(index, tmp / "index.parquet")
    return tmp, str(tmp / "index.parquet"), str(root)


def events(work) -> dict[str, list[tuple[int, float]]]:
    """tag -> [(step, value)] as TensorBoard reads the folder."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(work), size_guidance={"scalars": 0})
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def assert_mirrors_metrics(work):
    """Every numeric field of every metrics.jsonl line is a scalar of the same name at its iteration, once."""
    records = [json.loads(line) for line in (work / "metrics.jsonl").read_text().splitlines()]
    tb = events(work)
    expected = {k for r in records for k, v in r.items() if k != "iteration" and isinstance(v, (int, float))}
    assert set(tb) == expected and records
    for tag, points in tb.items():
        steps = [s for s, _ in points]
        assert steps == [r["iteration"] for r in records if tag in r], (tag, steps)  # each step once, in order
        for (_, value), r in zip(points, (r for r in records if tag in r)):
            assert math.isclose(value, r[tag], rel_tol=1e-6, abs_tol=1e-6), (tag, value, r[tag])


def resume_after_the_last_checkpoint_is_lost(work, rerun):
    """What a kill after the last logged step and before its checkpoint leaves; the rerun replays those steps."""
    newest = sorted(work.glob("checkpoint_*.pth"))[-1]
    newest.unlink()
    rerun()


def test_pretraining_events_hold_its_metrics_once_also_after_a_resume_that_replays_steps(data):
    tmp, index, root = data
    work = tmp / "pretrain"

    def run():
        pretrain.run(PRETRAIN, index, root, str(work), str(tmp / "teacher.pth"))

    run()
    assert_mirrors_metrics(work)
    resume_after_the_last_checkpoint_is_lost(work, run)
    assert [json.loads(line)["iteration"] for line in (work / "metrics.jsonl").read_text().splitlines()] == \
        [1, 2, 3, 4]
    assert_mirrors_metrics(work)
    assert {"loss", "teacher_mutual_information", "lr", "clips_per_s"} <= set(events(work))


def test_finetuning_and_the_linear_probe_write_their_curves_too(data):
    tmp, index, root = data
    ft = tmp / "finetune"

    def run():
        finetune.run(EVALUATION, "random", index, root, "ucf101", "random", str(ft), str(tmp / "ft.json"))

    run()
    resume_after_the_last_checkpoint_is_lost(ft, run)
    assert_mirrors_metrics(ft)
    assert {"loss", "accuracy", "lr"} <= set(events(ft))

    probe = tmp / "linear"
    linear.run(EVALUATION, "random", index, root, "ucf101", "random", str(probe), str(tmp / "lin.json"))
    assert_mirrors_metrics(probe)
    assert set(events(probe)) == {"epoch", "loss", "lr"}


def test_tensorboard_off_writes_no_events(data):
    tmp, index, root = data
    cfg = {**PRETRAIN, "optim": {**PRETRAIN["optim"], "epochs": 1}, "tracking": {"tensorboard": False}}
    pretrain.run(cfg, index, root, str(tmp / "quiet"), str(tmp / "quiet.pth"))
    assert (tmp / "quiet" / "metrics.jsonl").exists() and not list((tmp / "quiet").glob("events.out.tfevents.*"))


def test_wandb_offline_writes_its_local_run_files(data, monkeypatch):
    pytest.importorskip("wandb", reason="the wandb extra is not installed (pip install -e \".[wandb]\")")
    tmp, index, root = data
    monkeypatch.setenv("WANDB_SILENT", "true")
    cfg = {**PRETRAIN, "optim": {**PRETRAIN["optim"], "epochs": 1},
           "tracking": {"tensorboard": False, "wandb": {"mode": "offline", "project": "svt-test"}}}
    pretrain.run(cfg, index, root, str(tmp / "wb"), str(tmp / "wb.pth"))
    runs = list((tmp / "wb" / "wandb").glob("offline-run-*"))
    assert len(runs) == 1 and list(runs[0].glob("run-*.wandb")), list((tmp / "wb").rglob("*"))
