"""MAC and parameter counts of the backbone for a view spec (Table 1's TFLOPs column).

Counted by running the real model on the meta device under torch's FlopCounterMode (matmuls, convolutions
and attention; element-wise ops are not counted, as in fvcore / mmaction2 "FLOPs", which are MACs).
"""

from __future__ import annotations

import torch
from torch.utils.flop_counter import FlopCounterMode

from svt.model import BackboneConfig, VisionTransformer


def count_macs(cfg: BackboneConfig, frames: int, size: int, batch: int = 1) -> int:
    """Multiply-accumulates of one forward pass of `batch` clips of `frames` x `size` x `size`."""
    with torch.device("meta"):
        model = VisionTransformer(cfg).eval()
        video = torch.empty(batch, cfg.in_chans, frames, size, size)
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(video)
    return counter.get_total_flops() // 2


def count_params(cfg: BackboneConfig) -> int:
    with torch.device("meta"):
        return sum(p.numel() for p in VisionTransformer(cfg).parameters())


def inference_macs(cfg: BackboneConfig, clips: list[tuple[int, int]], crops: int) -> int:
    """MACs to classify one video: every (frames, size) clip at `crops` spatial crops."""
    return crops * sum(count_macs(cfg, t, s) for t, s in clips)


def pretraining_step_macs(cfg: BackboneConfig, global_views: list[tuple[int, int]], local_views: list[tuple[int, int]],
                          teacher_views: int = 1, batch: int = 1) -> int:
    """Backbone MACs of one SVT step with the paper's correspondences (l->g, g->g): the teacher's forward on
    `teacher_views` global views, the student's forward + backward (~3 forwards) on every view."""
    shapes = global_views + local_views
    teacher = teacher_views * max(count_macs(cfg, t, s, batch) for t, s in global_views)
    return teacher + 3 * sum(count_macs(cfg, t, s, batch) for t, s in shapes)
