"""Benchmark: forward+backward time of the backbone with torch SDPA vs the explicit softmax attention.

Both paths are timed side by side in one run on the same weights and input, and the ratio is printed.
Usage: python bench/bench_attention.py [--repeats 3] [--presets vit_base_patch16:8x224:1 vit_tiny_patch16:8x96:4]
"""

import argparse
import time

import torch

from svt.model import build_backbone


def step_seconds(model, video, repeats: int) -> float:
    times = []
    for _ in range(repeats + 1):  # first call warms up
        model.zero_grad(set_to_none=True)
        t0 = time.perf_counter()
        model(video).sum().backward()
        times.append(time.perf_counter() - t0)
    return min(times[1:])


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--presets", nargs="+", default=["vit_base_patch16:8x224:1", "vit_tiny_patch16:8x96:4"],
                   help="preset:TxS:batch")
    args = p.parse_args()
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}")
    print(f"{'preset':<18} {'view':>7} {'batch':>5} {'explicit s':>11} {'sdpa s':>9} {'explicit/sdpa':>14}")
    for spec in args.presets:
        preset, view, batch = spec.split(":")
        t, s = (int(v) for v in view.split("x"))
        torch.manual_seed(0)
        model = build_backbone(preset).train()
        video = torch.randn(int(batch), 3, t, s, s)
        result = {}
        for fused in (False, True):
            model.set_fused_attention(fused)
            torch.manual_seed(0)
            result[fused] = step_seconds(model, video, args.repeats)
        print(f"{preset:<18} {view:>7} {batch:>5} {result[False]:>11.3f} {result[True]:>9.3f} "
              f"{result[False] / result[True]:>14.2f}")


if __name__ == "__main__":
    main()
