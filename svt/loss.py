"""SVT loss (paper §3.3, Eq. 1-3): cross-entropy between teacher and student views, DINO-style.

Each term is H(softmax((t - center) / tau_t), log_softmax(s / tau_s)) averaged over the batch; the loss is the
mean over all (teacher view, student view) pairs (DINO / official code; Eq. 1 sums them, which only rescales).

Which pairs exist is set by `correspondences` (Table 4; "x_to_y" = the student's x view predicts the teacher's
y view) and `teacher_views`:
- paper: one randomly chosen global view is the teacher's target; the student sees the other global view
  (motion correspondence, g->g) and the eight local views (cross-view correspondence, l->g).
- official: the teacher sees both global views and every student view is matched to each of them except itself.
Views are numbered globals first: 0, 1 = global, 2..9 = local.

Two options for small-scale runs, both off in the paper's recipe (config/README.md, "The learning check"):
- centering sinkhorn: the teacher's targets are Sinkhorn-Knopp normalised over the batch (DINOv2, SwAV) instead of
  softmax((t - center) / tau_t), so every prototype gets an equal share of every batch;
- koleo_weight: DINOv2's KoLeo term, -mean log(distance to the nearest other clip), on the head's L2-normalised
  bottleneck of the student's global views, so clips cannot all map to one point.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from svt.device import Dist, all_reduce, all_reduce_mean

CORRESPONDENCES = ("local_to_global", "global_to_global", "local_to_local", "global_to_local")
CENTERINGS = ("ema", "sinkhorn")
SINGLE = Dist()


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
    def __init__(self, out_dim: int, student_temp: float = 0.1, center_momentum: float = 0.9,
                 centering: str = "ema", koleo_weight: float = 0.0):
        super().__init__()
        if centering not in CENTERINGS:
            raise ValueError(f"loss.centering must be {' or '.join(CENTERINGS)}, got {centering!r}")
        self.student_temp = student_temp
        self.center_momentum = center_momentum
        self.centering = centering
        self.koleo_weight = koleo_weight
        self.register_buffer("center", torch.zeros(1, out_dim))

    def forward(self, student: dict[int, torch.Tensor], teacher: dict[int, torch.Tensor],
                pairs: list[tuple[int, int]], teacher_temp: float, n_global: int,
                bottleneck: dict[int, torch.Tensor] | None = None, d: Dist = SINGLE) -> tuple[torch.Tensor, dict]:
        """student / teacher: view number -> logits (B, out_dim); bottleneck: student view number -> its L2-normalised
        bottleneck (B, bottleneck_dim), needed when koleo_weight > 0. Returns the loss and its mean per term."""
        log_p = {v: F.log_softmax(s.float() / self.student_temp, dim=-1) for v, s in student.items()}
        q = {v: self.targets(t, teacher_temp, d) for v, t in teacher.items()}
        terms: dict[str, list[torch.Tensor]] = {}
        for t, s in pairs:
            terms.setdefault(pair_kind(t, s, n_global), []).append(torch.sum(-q[t] * log_p[s], dim=-1).mean())
        all_terms = [x for v in terms.values() for x in v]
        loss = torch.stack(all_terms).mean()
        means = {k: torch.stack(v).mean().detach() for k, v in terms.items()}
        if self.koleo_weight:
            if bottleneck is None:
                raise ValueError("loss.koleo_weight > 0 needs the student's bottleneck")
            k = torch.stack([koleo(z) for v, z in bottleneck.items() if v < n_global]).mean()
            loss = loss + self.koleo_weight * k
            means["koleo"] = k.detach()
        return loss, means

    @torch.no_grad()
    def targets(self, teacher: torch.Tensor, teacher_temp: float, d: Dist = SINGLE) -> torch.Tensor:
        """The teacher's target distribution over prototypes for one view, (B, out_dim)."""
        if self.centering == "sinkhorn":
            return sinkhorn_knopp(teacher.float(), teacher_temp, d)
        return F.softmax((teacher.float() - self.center) / teacher_temp, dim=-1)

    @torch.no_grad()
    def update_center(self, teacher: torch.Tensor, d: Dist) -> None:
        """teacher: logits of every teacher view of the batch, (views * B, out_dim). Kept under Sinkhorn too: the
        collapse diagnostics (teacher_stats) read the centred softmax in every run."""
        out = teacher.float()
        batch_center = all_reduce_mean(out.sum(0, keepdim=True), d) / (len(out))
        self.center.mul_(self.center_momentum).add_(batch_center, alpha=1 - self.center_momentum)


@torch.no_grad()
def sinkhorn_knopp(logits: torch.Tensor, temp: float, d: Dist = SINGLE, iterations: int = 3) -> torch.Tensor:
    """DINOv2's Sinkhorn-Knopp teacher: exp(logits / temp) scaled so each row (clip) sums to 1 and each prototype
    receives 1/out_dim of the whole batch, over every rank. Returns (B, out_dim)."""
    # The global maximum is one scalar, absorbed by the first normalisation; it keeps exp finite at small temp.
    top = all_reduce(logits.max().clone(), d, op="max")
    q = torch.exp((logits - top) / temp).t()  # (K, B)
    n_clips = q.shape[1] * d.world_size  # every rank holds an equal share of the global batch
    n_protos = q.shape[0]
    q /= all_reduce(q.sum(), d)
    for _ in range(iterations):
        q /= all_reduce(q.sum(dim=1, keepdim=True), d)
        q /= n_protos
        q /= q.sum(dim=0, keepdim=True)
        q /= n_clips
    return (q * n_clips).t()


def koleo(z: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Kozachenko-Leonenko entropy term (DINOv2): -mean log distance of each L2-normalised row to its nearest
    other row in the batch. Lower when the rows are spread out."""
    x = F.normalize(z.float(), dim=-1, eps=eps)
    dots = x @ x.t()
    dots.fill_diagonal_(-2.0)  # never one's own neighbour: -2 is below any cosine
    nearest = x[dots.argmax(dim=1)]
    return -torch.log((x - nearest).norm(dim=-1) + eps).mean()
