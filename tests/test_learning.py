"""The learning check's report (`svt learning`, target `learning`, config/learning.yaml): every criterion is
computed from the metrics, the teacher's MI log and the backbones, and the check plans from its config alone."""

import json
import re
import subprocess
import sys
from pathlib import Path

import torch

from svt.evaluate import load_backbone
from svt.learning import mutual_information, report, verdicts, weight_change
from svt.settings import evaluation
from svt.stats import wilson

REPO = Path(__file__).resolve().parents[1]


def metric(correct: int, n: int = 180, classes: int = 6) -> dict:
    low, high = wilson(correct, n)
    return {"top1": 100 * correct / n, "top1_interval": {"low": low, "high": high}, "videos_evaluated": n,
            "num_classes": classes, "chance_top1": 100 / classes}


def test_svt_learns_only_when_every_interval_is_apart_the_teacher_keeps_its_mi_and_order_matters():
    learned = {"svt": {"knn": metric(90), "linear": metric(100)},
               "random": {"knn": metric(33), "linear": metric(30)},
               "spatial_init": {"knn": metric(35), "linear": metric(31)}}
    reversal = {"svt": 0.05, "random": 0.0, "spatial_init": 0.0}
    lines = verdicts(learned, (0.4, 0.3), reversal)
    assert len(lines) == 2 * 3 + 2 and all(ok for _, ok in lines)
    assert "SVT learns: every criterion holds." in report("ssv2", learned, (0.4, 0.3), reversal, lines)
    # intervals that overlap do not count: 45 of 180 is 25.0 [19.2-31.8], 35 of 180 19.4 [14.3-25.8]
    close = {**learned, "svt": {"knn": metric(45), "linear": metric(100)}}
    failed = [t for t, ok in verdicts(close, (0.4, 0.3), reversal) if not ok]
    assert failed == ["SVT knn above random (95% intervals apart)", "SVT knn above spatial_init (95% intervals apart)"]
    collapsed = [t for t, ok in verdicts(learned, (0.4, 0.19), reversal) if not ok]
    assert len(collapsed) == 1 and collapsed[0].startswith("teacher MI at the end (0.190)")
    blind = [t for t, ok in verdicts(learned, (0.4, 0.3), {**reversal, "svt": 1e-5}) if not ok]
    assert len(blind) == 1 and "played backwards" in blind[0]
    text = report("ssv2", learned, (0.4, 0.19), reversal, verdicts(learned, (0.4, 0.19), reversal))
    assert "Not shown: a criterion does not hold." in text and "- does not hold: teacher MI" in text


def test_the_report_names_the_k_of_its_k_nn_column():
    voted = {**metric(40), "knn": {"k": 20, "temperature": 0.07}}
    text = report("ssv2", {"svt": {"knn": voted, "linear": metric(40)}}, (0.4, 0.3), {"svt": 0.01}, [("c", True)])
    assert "| model | k-NN (k = 20) | linear |" in text


def test_teacher_mi_is_averaged_over_the_first_and_last_tenth_of_the_log(tmp_path):
    log = tmp_path / "metrics.jsonl"
    log.write_text("".join(json.dumps({"iteration": i + 1, "teacher_mutual_information": v}) + "\n"
                           for i, v in enumerate([1.0] * 10 + [0.5] * 80 + [0.1] * 10)))
    assert mutual_information(log) == (1.0, 0.1)


def test_weight_change_is_the_relative_l2_distance_from_the_weights_pretraining_started_from(tmp_path):
    settings = evaluation({"model": {"preset": "vit_micro_patch8", "num_frames": 4, "img_size": 32},
                           "slow_clip": {"frames": 4, "size": 32}, "slow_fast": False})
    state = load_backbone("random", settings, torch.device("cpu"))[0].state_dict()
    torch.save(state, tmp_path / "init.pth")
    total = sum(float(v.pow(2).sum()) for v in state.values()) ** 0.5
    step = torch.randn_like(state["blocks.0.mlp.fc1.weight"])
    moved = {**state, "blocks.0.mlp.fc1.weight": state["blocks.0.mlp.fc1.weight"] + 0.03 * total * step / step.norm()}
    torch.save(moved, tmp_path / "trained.pth")
    assert weight_change(str(tmp_path / "init.pth"), str(tmp_path / "init.pth"), settings) == 0.0
    assert abs(weight_change(str(tmp_path / "trained.pth"), str(tmp_path / "init.pth"), settings) - 0.03) < 1e-4
    lines = [("a criterion", True)]
    text = report("ssv2", {"svt": {"knn": metric(40), "linear": metric(40)}}, (0.4, 0.3), {"svt": 0.01}, lines, 0.005)
    assert "by 0.50% (relative L2)" in text


def test_the_learning_target_plans_data_pretraining_both_controls_and_the_report(tmp_path):
    out = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(REPO / "workflow" / "Snakefile"), "-d",
                          str(tmp_path), "--configfile", str(REPO / "config" / "learning.yaml"), "-n", "learning"],
                         capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    stats = out.stdout.split("Job stats:")[-1]
    counts = {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", stats, re.M)}
    assert counts == {"synthesize": 1, "index": 1, "spatial_init": 1, "pretrain": 1, "linear": 3, "learning": 1,
                      "total": 8}
    assert "--model svt=results/pretrain/svt_ssv2.pth --model random=random" in out.stdout
    assert "--init resources/weights/spatial_init.pth" in out.stdout  # the report measures how far SVT moved
