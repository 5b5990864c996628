"""Benchmark: does bf16 autocast pay on this CPU as much as its matrix units allow? (issue #20)

Prints, measured side by side in one run:
1. the bf16 / fp32 matmul peak ratio: the best of a few GEMMs of the shapes ViT-B runs (tokens x 768 x 3072, ...);
2. ViT-B 8x224 (one clip) forward + backward through svt.model in fp32 and in bf16 autocast, and the ratio;
3. that ratio as a fraction of the peak ratio (the target is >= 80%), and where the bf16 step spends its time.

Usage: python bench/bench_cpu_bf16.py [--reps 3] [--profile]
"""

import argparse
import time

import torch

from svt.model import build_backbone

TOKENS = 8 * 196


def best_time(fn, reps: int) -> float:
    fn()  # warm-up: oneDNN primitive creation, allocator
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def matmul_rate(dtype: torch.dtype, m: int, k: int, n: int, reps: int) -> float:
    a, b = torch.randn(m, k).to(dtype), torch.randn(k, n).to(dtype)
    inner = 5
    return 2 * m * k * n * inner / best_time(lambda: [a @ b for _ in range(inner)], reps)


def step_time(model: torch.nn.Module, video: torch.Tensor, bf16: bool, reps: int) -> float:
    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            out = model(video)
        out.float().square().mean().backward()
        model.zero_grad(set_to_none=True)
    return best_time(step, reps)


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--profile", action="store_true", help="top ops of the bf16 step (torch.profiler)")
    args = p.parse_args()
    shapes = [(TOKENS, 768, 2304), (TOKENS, 768, 3072), (TOKENS, 3072, 768), (2048, 2048, 2048)]
    peaks = {}
    for dtype in (torch.float32, torch.bfloat16):
        peaks[dtype] = max(matmul_rate(dtype, *s, reps=args.reps) for s in shapes)
    peak_ratio = peaks[torch.bfloat16] / peaks[torch.float32]

    torch.manual_seed(0)
    model = build_backbone("vit_base_patch16", num_frames=8, drop_path_rate=0.1).train()
    video = torch.randn(1, 3, 8, 224, 224)
    fp32 = step_time(model, video, False, args.reps)
    bf16 = step_time(model, video, True, args.reps)
    ratio = fp32 / bf16
    print(f"threads {torch.get_num_threads()}; torch {torch.__version__}")
    print(f"matmul peak: fp32 {peaks[torch.float32] / 1e9:.0f} GFLOP/s, bf16 {peaks[torch.bfloat16] / 1e9:.0f} "
          f"GFLOP/s: ratio {peak_ratio:.2f}")
    print(f"ViT-B 8x224 forward+backward: fp32 {fp32:.2f} s, bf16 autocast {bf16:.2f} s: ratio {ratio:.2f} "
          f"= {ratio / peak_ratio:.0%} of the matmul peak ratio (target >= 80%)")
    if args.profile:
        with torch.profiler.profile() as prof:
            with torch.autocast("cpu", dtype=torch.bfloat16):
                out = model(video)
            out.float().square().mean().backward()
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15, max_name_column_width=50))


if __name__ == "__main__":
    main()
