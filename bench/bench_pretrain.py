"""Benchmark: SVT pretraining throughput on CPU at a small preset: clips/s and the fraction of time spent
waiting for data, with 0 and 2 loader workers side by side (synthetic mini-K400, generated into a temp dir).

Usage: python bench/bench_pretrain.py [--iterations 16]
"""

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

from svt.index import build_index, write_index
from svt.pretrain import run
from svt.synth import SynthConfig, synthesize

CONFIG = {
    "model": {"preset": "vit_tiny_patch16", "num_frames": 16, "img_size": 112},
    "head": {"out_dim": 4096, "hidden_dim": 512, "bottleneck_dim": 128},
    "views": {"global_views": {"frames": [16, 8], "size": 112, "temporal_fraction": 0.9, "scale": [0.4, 1.0]},
              "local_views": {"frames": [2, 2, 4, 4, 8, 8, 16, 16], "size": 48, "temporal_fraction": 0.125,
                              "scale": [0.12, 0.2]}},
    "optim": {"batch_size": 4, "warmup_epochs": 0},
    "checkpoint_every": 100000,
}


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--iterations", type=int, default=16)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        synthesize("kinetics400", tmp / "k400", SynthConfig(classes=4, train_per_class=args.iterations,
                                                            val_per_class=1, width=160, height=120, frames=48),
                   workers=2)
        write_index(build_index("kinetics400", tmp / "k400", workers=2), tmp / "index.parquet")
        rows = []
        for workers in (0, 2):
            cfg = json.loads(json.dumps(CONFIG))
            cfg["data"] = {"workers": workers}
            cfg["optim"]["epochs"] = 1
            run(cfg, str(tmp / "index.parquet"), str(tmp / "k400"), str(tmp / f"w{workers}"), str(tmp / "t.pth"))
            m = [json.loads(line) for line in open(tmp / f"w{workers}" / "metrics.jsonl")][2:]  # skip warm-up
            rows.append((workers, np.mean([r["clips_per_s"] for r in m]), np.mean([r["data_wait"] for r in m]),
                         np.mean([r["tokens_per_s"] for r in m])))
    print(f"vit_tiny_patch16, views 16x112 + 8x112 globals and 8 locals at 48 px, batch 4, {args.iterations} its")
    print(f"{'workers':>7} {'clips/s':>8} {'tokens/s':>10} {'data-wait':>10}")
    for w, c, dw, t in rows:
        print(f"{w:>7} {c:>8.2f} {t:>10.0f} {dw:>10.2f}")
    print(f"speed-up of 2 workers over 0: {rows[1][1] / rows[0][1]:.2f}x")


if __name__ == "__main__":
    main()
