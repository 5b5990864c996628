"""Evaluation: slow-fast clips and fusion, linear probe and k-NN, fine-tuning with exact resume, metrics schema."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import jsonschema
import numpy as np
import pytest
import torch

from helpers import synth_dataset
from svt.settings import evaluation as eval_settings
from svt.evaluate import SCHEMA, eval_datasets, fused_features, load_backbone, metrics
from svt.schedules import step_schedule
from svt.index import write_index
from svt.linear import knn_probs, train_linear
from svt.model import build_backbone
from svt.synth import SynthConfig

MICRO = {"model": {"preset": "vit_micro_patch8", "num_frames": 16, "img_size": 48},
         "slow_clip": {"frames": 8, "size": 48}, "fast_clip": {"frames": 16, "size": 32},
         "batch_size": 4, "data": {"workers": 0},
         "linear": {"epochs": 3, "feature_copies": 2},
         "finetune": {"epochs": 2, "lr_steps": [1], "checkpoint_every": 1}}


@pytest.fixture(scope="module")
def ucf(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("eval")
    root, index = synth_dataset(tmp, "ucf101", SynthConfig(classes=3, train_per_class=4, val_per_class=2,
                                                           width=64, height=48, frames=24))
    write_index(index, tmp / "index.parquet")
    return tmp, root, index


# ------------------------------------------------------------------ slow-fast inference (paper §3.4)

def test_slow_fast_test_sample_is_a_slow_and_a_fast_clip_at_three_crops_each(ucf):
    _, root, index = ucf
    cfg = eval_settings({**MICRO, "slow_clip": {"frames": 8, "size": 40}, "fast_clip": {"frames": 24, "size": 24}})
    _, test = eval_datasets(index, root, cfg)
    sample = test[0]
    assert [tuple(c.shape) for c in sample["clips"]] == [(3, 3, 8, 40, 40), (3, 3, 24, 24, 24)]
    single = eval_settings({**MICRO, "slow_fast": False})
    _, test1 = eval_datasets(index, root, single)
    assert [tuple(c.shape) for c in test1[0]["clips"]] == [(3, 3, 8, 48, 48)]


def test_fused_feature_is_the_mean_of_the_slow_and_fast_cls_features():
    torch.manual_seed(0)
    backbone = build_backbone("vit_micro_patch8", img_size=64, num_frames=16).eval()
    slow = torch.randn(2, 3, 3, 8, 64, 64)  # (B, crops, C, T, H, W)
    fast = torch.randn(2, 3, 3, 16, 32, 32)
    with torch.no_grad():
        fused = fused_features(backbone, [slow, fast])
        per_crop = [(backbone(slow[:, c]) + backbone(fast[:, c])) / 2 for c in range(3)]
    assert fused.shape == (2, 3, 64)
    torch.testing.assert_close(fused, torch.stack(per_crop, 1), rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------------ protocols on features

def test_the_random_init_baseline_is_one_fixed_network_per_seed():
    """Linear, fine-tune and figures each build `random` themselves; reruns must compare the same network."""
    cfg = eval_settings(MICRO)
    torch.manual_seed(123)  # whatever the caller's random state, the baseline is the seed's network
    a, _ = load_backbone("random", cfg, torch.device("cpu"))
    b, _ = load_backbone("random", cfg, torch.device("cpu"))
    c, _ = load_backbone("random", eval_settings({**MICRO, "seed": 1}), torch.device("cpu"))
    for (name, x), y, z in zip(a.state_dict().items(), b.state_dict().values(), c.state_dict().values()):
        assert torch.equal(x, y), name
    assert not torch.equal(a.state_dict()["patch_embed.proj.weight"], c.state_dict()["patch_embed.proj.weight"])


def test_linear_probe_learns_separable_features_and_knn_votes_by_neighbours():
    g = torch.Generator().manual_seed(0)
    centres = torch.randn(4, 16, generator=g) * 3
    labels = torch.arange(4).repeat_interleave(20)
    feats = centres[labels] + torch.randn(80, 16, generator=g) * 0.3
    train = [{"features": feats, "labels": labels}]
    cfg = eval_settings({"batch_size": 16, "linear": {"epochs": 30, "lr": 0.1}})
    head, loss = train_linear(train, 4, cfg)
    test = {"features": feats[:, None].expand(-1, 3, -1), "labels": labels}
    probs = head(test["features"]).softmax(-1).mean(1)
    assert loss < 0.1 and metrics(probs, labels, list("abcd"))["top1"] == 100.0
    assert metrics(knn_probs(train[0], test, 4, k=5, temperature=0.07), labels, list("abcd"))["top1"] == 100.0


def test_metrics_skip_unlabelled_videos_and_report_per_class_accuracy():
    probs = torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.5, 0.5]])
    m = metrics(probs, torch.tensor([0, 1, 1, -1]), ["a", "b"])
    assert m["videos_evaluated"] == 3 and m["top1"] == pytest.approx(200 / 3)
    assert m["per_class_accuracy"] == {"a": 100.0, "b": 50.0} and m["top5"] == 100.0


def test_finetune_lr_drops_tenfold_at_each_step_epoch():
    s = step_schedule(5e-3, [11, 14], 0.1, epochs=15, iters_per_epoch=2)
    assert s[0] == 5e-3 and s[21] == 5e-3 and s[22] == pytest.approx(5e-4) and s[28] == pytest.approx(5e-5)


# ------------------------------------------------------------------ real runs

def _cmd(stage, tmp, root, name, cfg, checkpoint="random"):
    return [sys.executable, "-m", "svt", stage, "--checkpoint", checkpoint, "--config", json.dumps(cfg),
            "--index", str(tmp / "index.parquet"), "--root", str(root), "--dataset", "ucf101", "--model", "random",
            "--work", str(tmp / name / "work"), "--out", str(tmp / name / "metrics.json")]


@pytest.mark.slow
def test_linear_run_writes_schema_valid_linear_and_knn_metrics_and_reuses_cached_features(ucf):
    tmp, root, _ = ucf
    cmd = _cmd("linear", tmp, root, "lin", MICRO) + ["--knn-out", str(tmp / "lin" / "knn.json")]
    subprocess.run(cmd, check=True, capture_output=True)
    for f in ("metrics.json", "knn.json"):
        m = json.loads((tmp / "lin" / f).read_text())
        jsonschema.validate(m, SCHEMA)
        assert m["videos_evaluated"] == 6 and m["num_classes"] == 3 and m["slow_fast"]
    cache = sorted((tmp / "lin" / "work").glob("features-*/*.pt"))
    assert [p.name for p in cache] == ["features_test.pt", "features_train_000.pt", "features_train_001.pt"]
    stamps = [p.stat().st_mtime_ns for p in cache]
    other = {**MICRO, "linear": {**MICRO["linear"], "lr": 0.5}}  # classifier-only change: features reused
    subprocess.run(_cmd("linear", tmp, root, "lin", other), check=True, capture_output=True)
    assert [p.stat().st_mtime_ns for p in cache] == stamps


def logged(metrics_jsonl: Path) -> list[dict]:
    """Each logged iteration without its wall-clock measurements."""
    timing = {"clips_per_s", "data_wait"}
    return [{k: v for k, v in json.loads(line).items() if k not in timing}
            for line in metrics_jsonl.read_text().splitlines()]


@pytest.mark.slow
def test_finetune_sigkill_then_restart_gives_bitwise_the_same_weights(ucf):
    tmp, root, _ = ucf
    subprocess.run(_cmd("finetune", tmp, root, "ft_straight", MICRO), check=True, capture_output=True)
    cmd = _cmd("finetune", tmp, root, "ft_killed", MICRO)
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    metrics_file = tmp / "ft_killed" / "work" / "metrics.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and not (metrics_file.exists() and len(metrics_file.read_text().splitlines()) >= 2):
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert 2 <= len(metrics_file.read_text().splitlines()) < 6, "the run must be killed part-way"
    subprocess.run(cmd, check=True, capture_output=True)

    from svt.checkpoint import torch_load

    a = torch_load(sorted((tmp / "ft_straight" / "work").glob("checkpoint_*.pth"))[-1])["model"]
    b = torch_load(sorted((tmp / "ft_killed" / "work").glob("checkpoint_*.pth"))[-1])["model"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    # the steps replayed after the kill are logged once: the same log as the uninterrupted run (timings aside)
    assert logged(metrics_file) == logged(tmp / "ft_straight" / "work" / "metrics.jsonl")
    ma = json.loads((tmp / "ft_straight" / "metrics.json").read_text())
    mb = json.loads((tmp / "ft_killed" / "metrics.json").read_text())
    jsonschema.validate(mb, SCHEMA)
    assert ma["top1"] == mb["top1"] and np.isclose(ma["finetune"]["final_train_loss"],
                                                    mb["finetune"]["final_train_loss"])


def strict_json(path):
    """Standard JSON only: NaN / Infinity are errors, as for any other JSON reader."""
    def refuse(name):
        raise ValueError(f"{path}: non-standard JSON constant {name}")
    return json.loads(path.read_text(), parse_constant=refuse)


@pytest.mark.slow
def test_finetune_rerun_after_the_end_or_a_kill_mid_write_writes_the_same_metrics(ucf):
    tmp, root, _ = ucf
    cmd = _cmd("finetune", tmp, root, "ft_rerun", MICRO)
    out, work = tmp / "ft_rerun" / "metrics.json", tmp / "ft_rerun" / "work"
    subprocess.run(cmd, check=True, capture_output=True)
    first = strict_json(out)
    assert first["finetune"]["final_train_loss"] == json.loads(
        (work / "metrics.jsonl").read_text().splitlines()[-1])["loss"]
    out.unlink()  # killed after the last checkpoint, before the metrics were written ...
    (work / ".checkpoint_00000004.pth.k1ll3d.tmp").write_bytes(b"half a checkpoint")  # ... or during a write
    (out.parent / ".metrics.json.k1ll3d.tmp").write_text("{")
    subprocess.run(cmd, check=True, capture_output=True)
    second = strict_json(out)
    timing = ("seconds", "created")
    assert {k: v for k, v in second.items() if k not in timing} == {k: v for k, v in first.items() if k not in timing}
    assert not list(tmp.glob("ft_rerun/**/.*.tmp"))


@pytest.mark.slow
def test_finetune_rerun_with_other_settings_starts_afresh_and_keeps_the_old_state(ucf):
    """A config edit makes Snakemake rerun the job in the same work folder: the old state must not be continued."""
    from svt.checkpoint import torch_load
    from svt.config import merge

    tmp, root, _ = ucf
    work = tmp / "ft_edit" / "work"

    def final_weights():
        return torch_load(sorted(work.glob("checkpoint_*.pth"))[-1])["model"]

    def log():
        return [json.loads(line) for line in (work / "metrics.jsonl").read_text().splitlines()]

    subprocess.run(_cmd("finetune", tmp, root, "ft_edit", MICRO), check=True, capture_output=True)
    first, first_log = final_weights(), log()
    edited = merge(MICRO, {"finetune": {"lr": 1.0e-3}})
    subprocess.run(_cmd("finetune", tmp, root, "ft_edit", edited), check=True, capture_output=True)

    kept = work / "superseded-1"
    assert [json.loads(line) for line in (kept / "metrics.jsonl").read_text().splitlines()] == first_log
    assert torch.equal(torch_load(sorted(kept.glob("checkpoint_*.pth"))[-1])["model"]["head.weight"],
                       first["head.weight"])
    assert [r["iteration"] for r in log()] == [r["iteration"] for r in first_log]
    assert log()[0]["lr"] == 1.0e-3
    assert any(not torch.equal(first[k], v) for k, v in final_weights().items())

    # only the checkpoint cadence differs: the same run, which is complete, so nothing is retrained or moved
    second_log = log()
    subprocess.run(_cmd("finetune", tmp, root, "ft_edit", merge(edited, {"finetune": {"checkpoint_every": 5}})),
                   check=True, capture_output=True)
    assert not (work / "superseded-2").exists() and log() == second_log
