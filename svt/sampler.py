"""A distributed sampler that can start mid-epoch, so a resumed run sees exactly the batches it had left."""

from __future__ import annotations

import numpy as np
from torch.utils.data import Sampler


class ResumableSampler(Sampler[int]):
    """Shuffled per epoch (seed + epoch), split across ranks like DistributedSampler(drop_last=True).

    Rank r takes every world_size-th index, so batch i of all ranks together is batch i of a single-process run
    with the same global batch.
    """

    def __init__(self, n: int, world_size: int, rank: int, seed: int, batch_size: int):
        self.n, self.world_size, self.rank, self.seed, self.batch_size = n, world_size, rank, seed, batch_size
        self.total = n // world_size  # indices per rank per epoch
        self.epoch, self.start = 0, 0

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        self.epoch, self.start = epoch, start_batch * self.batch_size

    def indices(self) -> np.ndarray:
        perm = np.random.default_rng([self.seed, self.epoch]).permutation(self.n)
        return perm[: self.total * self.world_size][self.rank::self.world_size]

    def __iter__(self):
        return iter(self.indices()[self.start:].tolist())

    def __len__(self) -> int:
        return self.total - self.start


def rank_sampler(n: int, batch_size: int, d, seed: int, key: str) -> tuple[ResumableSampler, int, int]:
    """This rank's sampler for a global batch split over the processes: (sampler, per-rank batch, iterations
    per epoch). `key` names the config key in errors."""
    if batch_size % d.world_size:
        raise ValueError(f"{key} {batch_size} is not divisible by {d.world_size} processes")
    per_rank = batch_size // d.world_size
    sampler = ResumableSampler(n, d.world_size, d.rank, seed=seed, batch_size=per_rank)
    iters_per_epoch = sampler.total // per_rank
    if iters_per_epoch == 0:
        raise ValueError(f"{n} training videos cannot fill one batch of {key} {batch_size}")
    return sampler, per_rank, iters_per_epoch
