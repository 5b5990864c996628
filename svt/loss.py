"""SVT loss (paper §3.3, Eq. 1-3): cross-entropy between teacher and student views, DINO-style.

Each term is H(softmax((t - center) / tau_t), log_softmax(s / tau_s)) averaged over the batch; the loss is the
mean over all (teacher view, student view) pairs (DINO / official code; Eq. 1 sums them, which only rescales).

Which pairs exist is set by `correspondences` (Table 4; "x_to_y" = the student's x view predicts the teacher's
y view) and `teacher_views`:
- paper: one randomly chosen global view is the teacher's target; the student sees the other global view
  (motion correspondence, g->g) and the eight local views (cross-view correspondence, l->g).
- official: the teacher sees both global views and every student view is matched to each of them except itself.
Views are numbered globals first: 0, 1 = global, 2..9 = local.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from svt.device import Dist, all_reduce_mean

CORRESPONDENCES = ("local_to_global", "global_to_global", "local_to_local", "global_to_local")


def view_pairs(correspondences: dict[str, bool], n_global: int, n_local: int, teacher_globals: list[int]
               ) -> list[tuple[int, int]]:
    """(teacher view, student view) pairs; a view is never matched with itself."""
    unknown = set(correspondences) - set(CORRESPONDENCES)
    if unknown:
        raise ValueError(f"unknown correspondences {sorted(unknown)}; known: {', '.join(CORRESPONDENCES)}")
    globals_ = list(range(n_global))
    locals_ = list(range(n_global, n_global + n_local))
    pairs = []
    for name, on in correspondences.items():
        if not on:
            continue
        student_kind, teacher_kind = name.split("_to_")
        teachers = teacher_globals if teacher_kind == "global" else locals_
        students = globals_ if student_kind == "global" else locals_
        pairs += [(t, s) for t in teachers for s in students if t != s]
    if not pairs:
        raise ValueError("correspondences: at least one of " + ", ".join(CORRESPONDENCES) + " must be true")
    return sorted(set(pairs))


def pair_kind(t: int, s: int, n_global: int) -> str:
    return f"{'l' if s >= n_global else 'g'}{'l' if t >= n_global else 'g'}"  # student, teacher: "lg" = l->g


class SVTLoss(nn.Module):
    def __init__(self, out_dim: int, student_temp: float = 0.1, center_momentum: float = 0.9):
        super().__init__()
        self.student_temp = student_temp
        self.center_momentum = center_momentum
        self.register_buffer("center", torch.zeros(1, out_dim))

    def forward(self, student: dict[int, torch.Tensor], teacher: dict[int, torch.Tensor],
                pairs: list[tuple[int, int]], teacher_temp: float, n_global: int) -> tuple[torch.Tensor, dict]:
        """student / teacher: view number -> logits (B, out_dim). Returns the loss and its mean per pair kind."""
        log_p = {v: F.log_softmax(s.float() / self.student_temp, dim=-1) for v, s in student.items()}
        q = {v: F.softmax((t.float() - self.center) / teacher_temp, dim=-1).detach() for v, t in teacher.items()}
        terms: dict[str, list[torch.Tensor]] = {}
        for t, s in pairs:
            terms.setdefault(pair_kind(t, s, n_global), []).append(torch.sum(-q[t] * log_p[s], dim=-1).mean())
        all_terms = [x for v in terms.values() for x in v]
        loss = torch.stack(all_terms).mean()
        return loss, {k: torch.stack(v).mean().detach() for k, v in terms.items()}

    @torch.no_grad()
    def update_center(self, teacher: torch.Tensor, d: Dist) -> None:
        """teacher: logits of every teacher view of the batch, (views * B, out_dim)."""
        out = teacher.float()
        batch_center = all_reduce_mean(out.sum(0, keepdim=True), d) / (len(out))
        self.center.mul_(self.center_momentum).add_(batch_center, alpha=1 - self.center_momentum)
