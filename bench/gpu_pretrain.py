"""GPU benchmark of one SVT pretraining step at paper scale: ViT-B/16, the paper's 2 global (16x224, 8x224) and
8 local (2/4/8/16 x 96) views, DINO head 65536, the paper's correspondences, batch 8, bf16 autocast.

Prints clips/s, peak GPU memory and model FLOP utilisation (MFU = model FLOPs per step / step time / peak bf16
FLOP/s of the card). Model FLOPs are counted by svt.flops on the real backbone: teacher forward on its target
view + student forward and backward (3x forward) on every view it predicts from. Random tensors stand in for
decoded clips so that this measures the model step alone (bench_pretrain.py measures data loading).
One command, a few minutes: python bench/gpu_pretrain.py [--steps 20] [--compile true|reduce-overhead]
[--precision bf16] [--batch 8] [--profile] [--peak]
(--peak: also measures the card's bf16 matmul rate, 8192^3 products, and states MFU against it too.)
(--profile: after the timed steps, three more under torch.profiler; prints where device time goes, to explain MFU.)
"""

import argparse
import time

import numpy as np
import torch
from torch.autograd import DeviceType

from svt.device import Dist, autocast_dtype, compile_blocks
from svt.flops import count_macs
from svt.loss import SVTLoss, view_pairs
from svt.model import backbone_config
from svt.pretrain import build_models, svt_loss
from svt.schedules import clip_gradients, ema_update, make_adamw
from svt.settings import Pretraining, pretraining
from svt.views import ViewConfig

PEAK_BF16 = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "L40S": 362e12, "V100": 125e12}


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--precision", default="bf16", choices=["bf16", "fp16", "fp32"])
    p.add_argument("--compile", default=False, choices=["true", "reduce-overhead"],
                   help="pretraining.compile: torch.compile each block and the head (reduce-overhead: + CUDA graphs)")
    p.add_argument("--peak", action="store_true", help="measure the bf16 matmul rate and give MFU against it too")
    p.add_argument("--device", default="cuda", help="cpu only to check the script itself (with a small --preset)")
    p.add_argument("--preset", default=Pretraining().model.preset)
    p.add_argument("--profile", action="store_true")
    args = p.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("gpu_pretrain.py: no CUDA GPU here")
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    cfg = pretraining({"model": {"preset": args.preset}})
    student, teacher = build_models(cfg, device)
    for q in teacher.parameters():
        q.requires_grad_(False)
    mode = {"true": True}.get(args.compile, args.compile)
    compile_blocks(student, mode)
    compile_blocks(teacher, mode)
    views_cfg = ViewConfig()
    shapes = [(t, views_cfg.global_views.size) for t in views_cfg.global_views.frames] + \
             [(t, views_cfg.local_views.size) for t in views_cfg.local_views.frames]
    views = [torch.randn(args.batch, 3, t, s, s, device=device) for t, s in shapes]
    n_global = views_cfg.global_views.count
    criterion = SVTLoss(cfg.head.out_dim).to(device)
    optimizer = make_adamw(student, device)
    amp = autocast_dtype(device, args.precision)
    scaler = torch.amp.GradScaler(device.type, enabled=amp == torch.float16)

    bcfg = backbone_config(cfg.model.preset, num_frames=cfg.model.num_frames)
    macs = {shape: count_macs(bcfg, *shape, batch=args.batch) for shape in set(shapes)}

    def train_step(step: int) -> tuple[int, list[tuple[int, int]]]:
        if mode == "reduce-overhead":  # the previous step's graph outputs may be overwritten from here on
            torch.compiler.cudagraph_mark_step_begin()
        teacher_global = int(np.random.default_rng(step).integers(n_global))
        pairs = view_pairs(vars(cfg.correspondences), n_global, len(shapes) - n_global, [teacher_global])
        loss, _, t_logits, _ = svt_loss(student, teacher, criterion, views, pairs, 0.04, n_global, amp)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
        clip_gradients(student, 3.0)
        scaler.step(optimizer)
        scaler.update()
        ema_update(teacher, student, 0.996)
        criterion.update_center(t_logits, Dist())
        return teacher_global, pairs

    times, step_flops = [], []
    for step in range(args.steps + 3):  # 3 warm-up steps (allocator, autotuning, compilation)
        sync()
        t0 = time.perf_counter()
        teacher_global, pairs = train_step(step)
        sync()
        if step >= 3:
            times.append(time.perf_counter() - t0)
            students = sorted({s for _, s in pairs})
            step_flops.append(2 * (macs[shapes[teacher_global]] + 3 * sum(macs[shapes[s]] for s in students)))
    name = torch.cuda.get_device_name() if device.type == "cuda" else "cpu"
    peak = next((v for k, v in PEAK_BF16.items() if k in name), None)
    memory = torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else float("nan")
    step_s = float(np.median(times))
    achieved = float(np.mean(step_flops)) / step_s
    print(f"device {name}; {args.preset} + DINO head {cfg.head.out_dim}; views {shapes}; batch {args.batch}; "
          f"{args.precision}; compile {args.compile}; {args.steps} steps")
    mfu = f"{achieved / peak:.1%}" if peak else "n/a (peak bf16 FLOP/s of this device unknown)"
    if args.peak and device.type == "cuda":
        measured = matmul_peak()
        mfu += f" (datasheet {peak / 1e12:.0f} TFLOP/s); {achieved / measured:.1%} of the measured bf16 matmul " \
               f"rate {measured / 1e12:.0f} TFLOP/s"
    print(f"step {step_s * 1e3:.0f} ms  clips/s {args.batch / step_s:.2f}  peak memory {memory:.1f} GiB  "
          f"model TFLOP/s {achieved / 1e12:.2f}  MFU {mfu}")
    if args.profile:
        profile(train_step, args.steps + 3, device, sync, step_s)


def matmul_peak(n: int = 8192, reps: int = 10) -> float:
    """bf16 FLOP/s of an n^3 matrix product on random data (median of `reps` after 3 warm-ups)."""
    a, b = (torch.randn(n, n, device="cuda", dtype=torch.bfloat16) for _ in range(2))
    times = []
    for i in range(reps + 3):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        a @ b
        end.record()
        torch.cuda.synchronize()
        if i >= 3:
            times.append(start.elapsed_time(end) / 1e3)
    return 2 * n**3 / float(np.median(times))


def profile(train_step, first: int, device: torch.device, sync, step_s: float) -> None:
    """Three steps under torch.profiler: device kernel time per step against the unprofiled step time, and the
    ops that take the most device time."""
    activities = [torch.profiler.ProfilerActivity.CPU]
    if device.type == "cuda":
        activities.append(torch.profiler.ProfilerActivity.CUDA)
    sync()
    with torch.profiler.profile(activities=activities) as prof:
        for step in range(first, first + 3):
            train_step(step)
        sync()
    events = prof.key_averages()
    if device.type == "cuda":  # kernels are their own events; op rows repeat their time, so count kernels only
        key = "self_device_time_total"
        busy_us = sum(e.self_device_time_total for e in events if e.device_type != DeviceType.CPU)
    else:
        key = "self_cpu_time_total"
        busy_us = sum(e.self_cpu_time_total for e in events)
    per_step = busy_us / 3e3
    print(f"profile: {per_step:.0f} ms of {device.type} work per step = {per_step / (step_s * 1e3):.0%} "
          f"of the unprofiled {step_s * 1e3:.0f} ms step (device busy)")
    print(events.table(sort_by=key, row_limit=15, max_name_column_width=60))


if __name__ == "__main__":
    main()
