"""Device, precision and torchrun (DDP) set-up shared by every training stage."""

from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


def cpu_has_fast_bf16() -> bool:
    """bf16 matmuls are fast on CPUs with AVX512-BF16 or AMX; elsewhere they are emulated and far slower."""
    probe = getattr(torch.cpu, "_is_avx512_bf16_supported", None)
    amx = getattr(torch.cpu, "_is_amx_tile_supported", None)
    return bool((probe and probe()) or (amx and amx()))


def autocast_dtype(device: torch.device, precision: str) -> torch.dtype | None:
    """precision: auto (bf16 where it is fast, else fp32) | bf16 | fp16 (GPU only) | fp32 -> autocast dtype."""
    if precision not in ("auto", "bf16", "fp16", "fp32"):
        raise ValueError(f"precision must be auto, bf16, fp16 or fp32, got {precision!r}")
    if precision == "fp32":
        return None
    if precision == "fp16":
        if device.type != "cuda":
            raise ValueError("precision fp16 needs a GPU (use bf16 or fp32 on CPU)")
        return torch.float16
    if precision == "bf16":
        return torch.bfloat16
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if cpu_has_fast_bf16() else None


def compile_blocks(model: torch.nn.Module, mode: bool | str, backend: str = "inductor") -> None:
    """torch.compile each transformer block and head in place (state-dict names unchanged), static shapes: all
    blocks share one graph per view shape and grad mode (their stochastic-depth rates are inputs, not guards; see
    model.DropPath). mode: true (inductor's default) or "reduce-overhead" (adds CUDA graphs: one launch per block).
    backend: "eager" traces and guards alone (tests count graphs without code generation)."""
    if not mode:
        return
    import torch._dynamo
    import torch._inductor.config as inductor

    from svt.model import Block, DINOHead

    # The coalescing tiling analysis raises CantSplit on the divided-attention layout in torch 2.11's inductor.
    if hasattr(inductor.triton, "coalesce_tiling_analysis"):
        inductor.triton.coalesce_tiling_analysis = False
    # Up to (view shapes) x (student, teacher) graphs per compiled function: above Dynamo's default cap of 8.
    limit = "recompile_limit" if hasattr(torch._dynamo.config, "recompile_limit") else "cache_size_limit"
    setattr(torch._dynamo.config, limit, max(getattr(torch._dynamo.config, limit), 64))
    kw = {"dynamic": False, "backend": backend, "mode": None if mode is True or backend != "inductor" else mode}
    for m in model.modules():
        if isinstance(m, (Block, DINOHead)):
            m.compile(**kw)


class GraphCount(contextlib.AbstractContextManager):
    """Graphs Dynamo builds for the compiled blocks and heads while the block runs, from an empty cache (for
    benches and tests: it resets Dynamo): `graphs` per module class (its cache entries) and `recompiles`, the
    recompile log's messages (one per recompile)."""

    def __init__(self):
        self.recompiles: list[str] = []
        self.graphs: dict[str, int] = {}
        self.handler = logging.Handler()
        self.handler.emit = lambda record: self.recompiles.append(record.getMessage())

    def __enter__(self):
        torch._dynamo.reset()
        torch._logging.set_logs(recompiles=True)
        logging.getLogger("torch._dynamo").addHandler(self.handler)
        return self

    def __exit__(self, *exc):
        from torch._dynamo.eval_frame import _debug_get_cache_entry_list

        from svt.model import Block, DINOHead

        logging.getLogger("torch._dynamo").removeHandler(self.handler)
        torch._logging.set_logs()
        self.graphs = {c.__name__: len(_debug_get_cache_entry_list(c.forward.__code__)) for c in (Block, DINOHead)}
        self.recompiles = [m for m in self.recompiles if m.startswith("Recompiling function")]
        return False


def autocast(device: torch.device, dtype: torch.dtype | None):
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


@dataclass
class Dist:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def init_distributed() -> Dist:
    """Reads torchrun's environment; NCCL on GPU, gloo on CPU. A plain `python` run is one process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available():
        torch.cuda.set_device(local)
        device = torch.device("cuda", local)
    else:
        device = torch.device("cpu")
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Dist(rank, world, local, device)


def replica_digests(model: torch.nn.Module, d: Dist) -> list[str]:
    """sha256 of the model's parameters on every rank (rank order). DDP keeps the replicas bit-identical; a rank
    that drifted (a lost all-reduce, a rank-dependent op) would make the saved model one rank's alone."""
    import hashlib

    h = hashlib.sha256()
    for p in model.parameters():
        h.update(p.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    digests = [h.hexdigest()]
    if d.enabled:
        digests = [None] * d.world_size
        dist.all_gather_object(digests, h.hexdigest())
    if len(set(digests)) > 1:
        raise RuntimeError(f"the {d.world_size} ranks ended with different weights (sha256 per rank: "
                           f"{', '.join(x[:12] for x in digests)}); the run is not saved")
    return digests


def all_reduce(t: torch.Tensor, d: Dist, op: str = "sum") -> torch.Tensor:
    """In place over every rank: op sum or max."""
    if d.enabled:
        dist.all_reduce(t, op=dist.ReduceOp.MAX if op == "max" else dist.ReduceOp.SUM)
    return t


def all_reduce_mean(t: torch.Tensor, d: Dist) -> torch.Tensor:
    return all_reduce(t, d).div_(d.world_size)
