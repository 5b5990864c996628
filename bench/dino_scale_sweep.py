"""Diagnostic: does demo-scale SVT pretraining keep the teacher's output dependent on the clip, and does it teach a
linear probe anything about motion? (issue #5)

For each named variant of the demo's pretraining settings (config/config.yaml, from scratch unless --init), it
pretrains on a synthetic mini set and prints the teacher's clip-prototype mutual information (MI, nats) and loss
at the start, middle and end, then the linear top-1 on mini-SSv2 (motion-only classes) of the pretrained teacher
next to the random-init network, with the binomial standard error of chance, and how much reversing a clip in time
changes its feature relative to swapping it for another clip (0 = blind to frame order, so "left to right" cannot
be told from "right to left"; the random init, whose time_embed is zero, is exactly 0). All
numbers come from this run.
Usage: python bench/dino_scale_sweep.py --work /tmp/sweep [--pretrain-set ssv2] [--variants demo center_0.9 ...]
"""

import argparse
import json
import logging
import math
from pathlib import Path

import numpy as np
import torch
import yaml

from svt import linear, pretrain
from svt.config import merge
from svt.settings import evaluation as eval_settings
from svt.evaluate import eval_datasets, load_backbone
from svt.index import build_index, read_index, write_index
from svt.synth import SynthConfig, synthesize

REPO = Path(__file__).resolve().parents[1]
SHARP = {"teacher_temp": 0.01, "warmup_teacher_temp": 0.01}
VARIANTS = {
    "demo": {},
    "center_0.9": {"loss": {"center_momentum": 0.9}},
    "center_0.99": {"loss": {"center_momentum": 0.99}},
    "teacher_temp_0.01": {"loss": SHARP},
    "teacher_temp_0.01_center_0.9": {"loss": {**SHARP, "center_momentum": 0.9}},
    "ema_0.996": {"optim": {"momentum_teacher": 0.996}},
    "lr_5e-5_center_0.9": {"optim": {"lr": 5.0e-5}, "loss": {"center_momentum": 0.9}},
    "global_to_global_only_center_0.9": {"correspondences": {"local_to_global": False},
                                         "loss": {"center_momentum": 0.9}},
    "long_center_0.9": {"optim": {"epochs": 40, "warmup_epochs": 4}, "loss": {"center_momentum": 0.9}},
    "long_lr_5e-5_center_0.9": {"optim": {"lr": 5.0e-5, "epochs": 50, "warmup_epochs": 5},
                                "loss": {"center_momentum": 0.9}},
}


def dataset(work: Path, name: str, synth: dict) -> tuple[Path, Path]:
    root, index = work / "data" / name, work / "data" / f"{name}.parquet"
    if not index.exists():
        fields = {k: v for k, v in synth.items() if k != "seed"}
        synthesize(name, root, SynthConfig(**fields), seed=synth["seed"], workers=2)
        write_index(build_index(name, root, deep=True), index)
    return root, index


def reversal_sensitivity(checkpoint: str, evaluation: dict, clips: torch.Tensor) -> float:
    """Mean feature change from reversing each clip in time, over the mean change from swapping clips."""
    backbone, _ = load_backbone(checkpoint, eval_settings(evaluation), torch.device("cpu"))
    with torch.no_grad():
        f = backbone.eval()(clips)
        reversed_, other = backbone(clips.flip(2)), f.roll(1, 0)
    return float((f - reversed_).norm(dim=-1).mean() / (f - other).norm(dim=-1).mean())


def stages(metrics: Path) -> list[tuple[float, float]]:
    m = [json.loads(line) for line in metrics.read_text().splitlines()]
    n = len(m)
    return [(float(np.mean([r["teacher_mutual_information"] for r in seg])), float(np.mean([r["loss"] for r in seg])))
            for seg in (m[:6], m[max(n // 2 - 6, 0):n // 2 + 6], m[-12:])]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work", required=True, help="folder for the synthetic sets, runs and features")
    p.add_argument("--config", default=str(REPO / "config" / "config.yaml"))
    p.add_argument("--pretrain-set", default="kinetics400", choices=["kinetics400", "ssv2"])
    p.add_argument("--val-per-class", type=int, default=20, help="mini-SSv2 test videos per class")
    p.add_argument("--init", help="backbone initialisation (e.g. a demo run's resources/weights/spatial_init.pth)")
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING)
    cfg = yaml.safe_load(Path(args.config).read_text())
    work = Path(args.work)
    synth = {**cfg["synthetic"], "val_per_class": args.val_per_class}
    pt_root, pt_index = dataset(work, args.pretrain_set, synth)
    ev_root, ev_index = dataset(work, "ssv2", synth)
    base = merge(cfg["pretraining"], {"model": cfg["model"]})
    evaluation = {k: v for k, v in cfg["evaluation"].items() if k != "baselines"}
    evaluation = {**evaluation, "model": cfg["model"], "flip": cfg["datasets"]["ssv2"]["flip"], "slow_fast": True}

    def probe(checkpoint: str, name: str) -> float:
        out = work / "eval" / name
        return linear.run(evaluation, checkpoint, str(ev_index), str(ev_root), "ssv2", name, str(out),
                          str(out / "ssv2_linear.json"))["top1"]

    _, test_set = eval_datasets(read_index(ev_index), str(ev_root), eval_settings(evaluation))
    step = max(len(test_set) // 12, 1)
    clips = torch.stack([test_set[i]["clips"][0][0] for i in range(0, len(test_set), step)])  # slow clip, crop 1

    def measure(checkpoint: str, name: str) -> tuple[float, float]:
        return probe(checkpoint, name), reversal_sensitivity(checkpoint, evaluation, clips)

    classes = synth["classes"]
    n_test = classes * args.val_per_class
    chance = 100 / classes
    se = 100 * math.sqrt((1 / classes) * (1 - 1 / classes) / n_test)
    rows = [("random init", None, *measure("random", "random"))]
    for name in args.variants:
        run_dir = work / "runs" / name
        if not (run_dir / "teacher.pth").exists():
            pretrain.run(merge(base, VARIANTS[name]), str(pt_index), str(pt_root), str(run_dir / "work"),
                         str(run_dir / "teacher.pth"), args.init)
        rows.append((name, stages(run_dir / "work" / "metrics.jsonl"), *measure(str(run_dir / "teacher.pth"), name)))

    print(f"pretraining on mini-{args.pretrain_set} ({synth['train_per_class']}/class), init "
          f"{args.init or 'random'}; mini-SSv2 linear over {n_test} test videos: chance {chance:.2f}, "
          f"binomial standard error {se:.2f}")
    print(f"{'variant':<34} {'MI start':>8} {'MI mid':>7} {'MI end':>7} {'loss end':>8} {'ssv2 top-1':>10} "
          f"{'(top-1 - chance) / se':>22} {'time reversal':>13}")
    for name, st, top1, reversal in rows:
        mi = f"{st[0][0]:>8.3f} {st[1][0]:>7.3f} {st[2][0]:>7.3f}" if st else f"{'':>24}"
        end_loss = f"{st[-1][1]:>8.3f}" if st else f"{'':>8}"
        print(f"{name:<34} {mi} {end_loss} {top1:>10.2f} {(top1 - chance) / se:>22.2f} {reversal:>13.4f}")


if __name__ == "__main__":
    main()
