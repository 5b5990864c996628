"""Live training curves: TensorBoard event files (on by default) and, optionally, Weights & Biases.

Every training stage writes its metrics.jsonl (svt.engine for pretraining, the spatial initialisation and
fine-tuning; svt.linear for the linear probe); a `Tracker` mirrors each record there: every numeric field is a
scalar of the same name at step = the record's `iteration`, on rank 0 only. `tensorboard --logdir work/` then
shows any running or finished job.

metrics.jsonl stays the record. On resume it is cut back to the checkpoint's iteration (svt.checkpoint.resume),
so the tracker starts by replacing the folder's event files with one rebuilt from those kept lines: steps a
killed run logged after its last checkpoint are not shown twice. W&B keeps its own history: the run resumes
under the same id (the run fingerprint) and W&B ignores steps it has already seen.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

from svt.settings import Tracking

log = logging.getLogger("svt.tracking")

EVENTS = "events.out.tfevents.*"


def scalars(record: dict) -> dict[str, float]:
    """The record's plotted fields: numbers other than the step and bookkeeping ones (booleans, non-finite)."""
    return {k: float(v) for k, v in record.items()
            if k != "iteration" and isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)}


class Tracker:
    """Mirrors metrics.jsonl records of one run (work folder `work`) into TensorBoard and W&B."""

    def __init__(self, work: str | Path, cfg: Tracking, run_id: str, name: str, config: dict | None = None,
                 enabled: bool = True):
        self.work, self.cfg = Path(work), cfg
        self.tb = self.wandb = None
        if not enabled:
            return
        if cfg.tensorboard:
            self.tb = self._tensorboard()
        if cfg.wandb.mode != "disabled":
            self.wandb = self._wandb(run_id, name, config)

    def _tensorboard(self):
        from torch.utils.tensorboard import SummaryWriter

        for old in self.work.glob(EVENTS):
            old.unlink()
        writer = SummaryWriter(log_dir=str(self.work), flush_secs=10)
        metrics = self.work / "metrics.jsonl"
        for line in metrics.read_text().splitlines() if metrics.exists() else []:
            try:
                record = json.loads(line)
            except ValueError:  # a line a kill cut short (resume removes it before the tracker starts)
                continue
            for key, value in scalars(record).items():
                writer.add_scalar(key, value, record["iteration"])
        return writer

    def _wandb(self, run_id: str, name: str, config: dict | None):
        try:
            import wandb
        except ImportError:
            raise RuntimeError("tracking.wandb.mode is set but wandb is not installed: pip install -e \".[wandb]\" "
                               "(or set tracking.wandb.mode: disabled)") from None
        w = self.cfg.wandb
        return wandb.init(project=w.project, entity=w.entity, mode=w.mode, dir=str(self.work), id=run_id,
                          name=name, resume="allow", config=config or {})

    def log(self, record: dict) -> None:
        values = scalars(record)
        if self.tb is not None:
            for key, value in values.items():
                self.tb.add_scalar(key, value, record["iteration"])
        if self.wandb is not None:
            self.wandb.log(values, step=record["iteration"])

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()
        if self.wandb is not None:
            self.wandb.finish()
