"""How many graphs `pretraining.compile` builds for one SVT pretraining step, and how long compiling takes (CPU).

One step of the paper's recipe (student on 2 global + 8 local views, teacher on the global views, DINO head, loss,
backward) with every block and head compiled (svt.device.compile_blocks), counted from Dynamo's recompile log and
its graph counter: graphs per view shape for all blocks together (the goal: one for the student, one for the
teacher), graphs of the head, and the wall time of the first (compiling) step against an eager step, measured in
the same run. Usage: python bench/compile_graphs.py [--preset vit_base_patch16] [--batch 1] [--precision fp32]
(ViT-B on 2 CPU cores: several minutes; --preset vit_micro_patch8: seconds.)
"""

import argparse
import time
from collections import Counter

import torch

from svt.device import GraphCount, autocast_dtype, compile_blocks
from svt.loss import SVTLoss, view_pairs
from svt.pretrain import build_models, svt_loss
from svt.settings import pretraining


def step(student, teacher, criterion, views, pairs, n_global, amp):
    loss, *_ = svt_loss(student, teacher, criterion, views, pairs, 0.04, n_global, amp)
    loss.backward()
    return loss


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--preset", default="vit_base_patch16")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--precision", default="fp32", choices=["bf16", "fp32"])
    args = p.parse_args()
    torch.manual_seed(0)
    cfg = pretraining({"model": {"preset": args.preset}})
    device = torch.device("cpu")
    student, teacher = build_models(cfg, device)
    for q in teacher.parameters():
        q.requires_grad_(False)
    v = cfg.views
    shapes = [(t, v.global_views.size) for t in v.global_views.frames] + \
             [(t, v.local_views.size) for t in v.local_views.frames]
    views = [torch.randn(args.batch, 3, t, s, s) for t, s in shapes]
    n_global = v.global_views.count
    pairs = view_pairs(vars(cfg.correspondences), n_global, len(shapes) - n_global, [0])
    criterion = SVTLoss(cfg.head.out_dim)
    amp = autocast_dtype(device, args.precision)

    t0 = time.perf_counter()
    step(student, teacher, criterion, views, pairs, n_global, amp)
    eager = time.perf_counter() - t0
    compile_blocks(student, True)
    compile_blocks(teacher, True)
    with GraphCount() as log:
        t0 = time.perf_counter()
        step(student, teacher, criterion, views, pairs, n_global, amp)
        first = time.perf_counter() - t0
        t0 = time.perf_counter()
        step(student, teacher, criterion, views, pairs, n_global, amp)
        second = time.perf_counter() - t0
    distinct = sorted(set(shapes))
    teacher_shapes = sorted({shapes[t] for t, _ in pairs})
    student_shapes = sorted({shapes[s] for _, s in pairs})
    blocks = log.graphs["Block"]
    print(f"{args.preset}: drop_path_rate {cfg.model.drop_path_rate} over {len(student.backbone.blocks)} blocks; "
          f"view shapes (frames, size) {distinct}, teacher on {teacher_shapes}; batch {args.batch}; {args.precision}; "
          f"torch {torch.__version__}")
    print(f"graphs for all blocks together: {blocks} = {blocks / len(distinct):.2f} per view shape "
          f"(student {len(student_shapes)} shapes + teacher {len(teacher_shapes)}); head: {log.graphs['DINOHead']}; "
          f"recompile log: {len(log.recompiles)} recompiles")
    reasons = Counter(line.strip() for msg in log.recompiles for line in msg.splitlines()[2:3])
    for reason, n in reasons.most_common(6):
        print(f"  {n} x {reason[:110]}")
    print(f"first step (compiles) {first:.1f} s, second step {second:.2f} s, eager step {eager:.2f} s "
          f"(same run): compiling took {first - second:.0f} s")

if __name__ == "__main__":
    main()
