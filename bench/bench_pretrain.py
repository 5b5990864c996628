"""Benchmark: SVT pretraining throughput on CPU for the embedded demo's preset and views (config/config.yaml):
clips/s, tokens/s and the fraction of time spent waiting for data, with 0 and 2 loader workers side by side
(synthetic mini-K400 generated into a temp dir with the demo's synthetic settings).

Usage: python bench/bench_pretrain.py [--iterations 24]
"""

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import yaml

from svt.config import merge
from svt.index import build_index, write_index
from svt.pretrain import run
from svt.synth import SynthConfig, synthesize

DEMO = yaml.safe_load((Path(__file__).resolve().parents[1] / "config" / "config.yaml").read_text())


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--iterations", type=int, default=24)
    args = p.parse_args()
    settings = merge(DEMO["pretraining"], {"model": DEMO["model"], "checkpoint_every": 100000})
    batch = settings["optim"]["batch_size"]
    synth = {k: v for k, v in DEMO["synthetic"].items() if k != "seed"}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        per_class = -(-args.iterations * batch // synth["classes"])
        synthesize("kinetics400", tmp / "k400", SynthConfig(**{**synth, "train_per_class": per_class}), workers=2)
        write_index(build_index("kinetics400", tmp / "k400", workers=2), tmp / "index.parquet")
        rows = []
        for workers in (0, 2):
            cfg = merge(settings, {"data": {"workers": workers}, "optim": {"epochs": 1, "warmup_epochs": 0}})
            run(cfg, str(tmp / "index.parquet"), str(tmp / "k400"), str(tmp / f"w{workers}"), str(tmp / "t.pth"))
            m = [json.loads(line) for line in open(tmp / f"w{workers}" / "metrics.jsonl")][2:]  # skip warm-up
            rows.append((workers, np.mean([r["clips_per_s"] for r in m]), np.mean([r["data_wait"] for r in m]),
                         np.mean([r["tokens_per_s"] for r in m])))
    v = settings["views"]
    print(f"demo preset {DEMO['model']['preset']}: globals {v['global_views']['frames']} x "
          f"{v['global_views']['size']} px, locals {v['local_views']['frames']} x {v['local_views']['size']} px, "
          f"batch {batch}, {len(m) + 2} iterations per run")
    print(f"{'workers':>7} {'clips/s':>8} {'tokens/s':>10} {'data-wait':>10}")
    for w, c, dw, t in rows:
        print(f"{w:>7} {c:>8.2f} {t:>10.0f} {dw:>10.2f}")
    print(f"speed-up of 2 workers over 0: {rows[1][1] / rows[0][1]:.2f}x")


if __name__ == "__main__":
    main()
