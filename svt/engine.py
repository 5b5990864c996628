"""The training engine `svt pretrain` and `svt finetune` share (after DINO's train_dino / train_one_epoch split).

A stage builds its models on the process `distributed()` set up and hands the engine a Task: the modules and
optimiser state to checkpoint, and one training step. The engine owns the rest of a run: the work folder and its
stale temp files, per-rank random streams, the run fingerprint (every typed setting except those the settings
class declares LOGISTICS, plus the files the run starts from), resume from the newest checkpoint of the same run,
the epoch loop over the resumable sampler, metrics.jsonl and the progress bar, atomic checkpoints, stop signals
(SIGUSR1 / SIGTERM: checkpoint and exit to be requeued), one-line reports of a full disk, the replica check and
teardown.

The work folder lies outside Snakemake's declared outputs, so a failed or preempted job keeps it: rerunning the
same command resumes bit-exactly from the newest valid checkpoint.
"""

from __future__ import annotations

import json
import logging
import random
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from svt import settings as settings_mod
from svt.checkpoint import last_logged, resume, save_training_state, set_rng_state
from svt.data import make_loader
from svt.device import Dist, init_distributed, replica_digests
from svt.io import WriteError, fingerprint, remove_stale_temps, storage_error, write_error
from svt.sampler import rank_sampler
from svt.tracking import Tracker

log = logging.getLogger("svt.engine")


class NonFiniteLoss(RuntimeError):
    pass


def check_finite(loss: torch.Tensor, it: int, epoch: int, terms: dict | None = None) -> None:
    """Stop before a non-finite loss reaches the weights (the engine adds which checkpoint is kept)."""
    if not torch.isfinite(loss):
        parts = f"; terms {({k: float(v) for k, v in terms.items()})}" if terms else ""
        raise NonFiniteLoss(f"loss is {loss.item()} at iteration {it} (epoch {epoch}){parts}")


def distributed() -> Dist:
    """This process's place in the run (torchrun's environment; one process without it)."""
    return init_distributed()


def seed_rank(seed: int, d: Dist) -> None:
    """Each rank its own random stream (drop path, dropout, augmentation) once the models are identical."""
    torch.manual_seed(seed + d.rank)
    np.random.seed(seed + d.rank)
    random.seed(seed + d.rank)


def run_fingerprint(settings, *inputs: str | None) -> str:
    """Identity of a training run: its trajectory settings (all but LOGISTICS) and the files it starts from."""
    return fingerprint(settings_mod.trajectory(settings), *inputs)


class Task:
    """What a stage gives the engine. `name` labels the progress bar and the checkpoint format; `model` is the
    trained module (replica check); `state()` / `load(state)` the tensors a checkpoint carries; `step(batch, it,
    epoch)` runs one iteration and returns the numbers logged for it ("loss" first)."""

    name: str
    model: torch.nn.Module

    def state(self) -> dict:
        raise NotImplementedError

    def load(self, state: dict) -> None:
        raise NotImplementedError

    def step(self, batch: dict, it: int, epoch: int) -> dict:
        raise NotImplementedError

    def train_mode(self) -> None:
        self.model.train()


@dataclass
class Loop:
    """The run's shape: data, global batch, epochs and where its state lives."""
    d: Dist
    dataset: torch.utils.data.Dataset
    batch_size: int
    batch_key: str  # the config key of batch_size, for errors
    epochs: int
    seed: int
    workers: int
    work: Path
    checkpoint_every: int
    keep_checkpoints: int

    def __post_init__(self):
        self.work = Path(self.work)
        self.sampler, self.per_rank, self.iters_per_epoch = rank_sampler(
            len(self.dataset), self.batch_size, self.d, self.seed, self.batch_key)

    @property
    def total(self) -> int:
        return self.epochs * self.iters_per_epoch


def start(loop: Loop, task: Task, settings, inputs: tuple, outputs: tuple = ()) -> tuple[int, int, str]:
    """Work folder, per-rank seeds, resume: (first iteration, decode failures so far, run id)."""
    d = loop.d
    loop.work.mkdir(parents=True, exist_ok=True)  # only now: inputs that fail to load leave nothing behind
    if d.is_main:
        remove_stale_temps(*outputs, folder=loop.work)
    seed_rank(loop.seed, d)
    run_id = run_fingerprint(settings, *inputs)
    state = resume(loop.work, run_id, d)
    if state is None:
        return 0, 0, run_id
    task.load(state)
    set_rng_state(state["rng"][d.rank])
    if d.is_main:
        log.info("%s: resumed from iteration %d", task.name, int(state["iteration"]))
    return int(state["iteration"]), int(state.get("decode_failures", 0)), run_id


class StopSignal:
    """SIGUSR1 (SLURM's warning ahead of the time limit, `--signal`) and SIGTERM (preemption, the time limit,
    scancel): the step under way finishes, a checkpoint is written and the run exits (Interrupted) so that the
    scheduler requeues it or Snakemake retries it; the same command then resumes exactly."""

    SIGNALS = (signal.SIGUSR1, signal.SIGTERM)

    def __init__(self):
        self.received: str | None = None
        self.previous: dict = {}

    def __enter__(self) -> StopSignal:
        if threading.current_thread() is threading.main_thread():
            self.previous = {s: signal.signal(s, self._handle) for s in self.SIGNALS}
        return self

    def __exit__(self, *exc) -> None:
        for s, handler in self.previous.items():
            signal.signal(s, handler)

    def _handle(self, signum, frame) -> None:
        self.received = signal.Signals(signum).name

    def shared(self, d: Dist) -> bool:
        """Whether any rank received a stop signal: one decision, so every rank stops at the same iteration."""
        flag = torch.tensor([float(self.received is not None)], device=d.device)
        if d.enabled:
            torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
        return bool(flag.item())


class Interrupted(RuntimeError):
    """A stop signal ended the run after a checkpoint: svt exits with status 75 (EX_TEMPFAIL, svt.cli), Snakemake
    retries the job and it resumes from its work folder."""


class Progress:
    """metrics.jsonl, its live mirror (svt.tracking) and the progress bar (rank 0). Closed before an error is
    reported, so the error is the last line; a full disk while logging is a WriteError naming the file."""

    def __init__(self, loop: Loop, name: str, it: int, tracker: Tracker):
        self.main, self.path, self.tracker = loop.d.is_main, loop.work / "metrics.jsonl", tracker
        self.file = open(self.path, "a") if self.main else None
        self.bar = tqdm(total=loop.total, initial=it, desc=name, unit="it", disable=not self.main)

    def log(self, stats: dict) -> None:
        if not self.main:
            return
        line = json.dumps(stats) + "\n"
        try:
            self.file.write(line)
            self.file.flush()
        except OSError as e:
            storage = storage_error(e)
            if storage is None:
                raise
            raise kept(write_error(self.path, storage, len(line)), self.path.parent) from None
        self.tracker.log(stats)
        self.bar.update(1)
        self.bar.set_postfix(loss=f"{stats['loss']:.3f}", wait=f"{stats['data_wait']:.2f}")

    def close(self) -> None:
        self.bar.close()
        self.tracker.close()
        if self.file is not None:
            try:
                self.file.close()
            except OSError:  # the buffered rest of a line a full disk refused: resume cuts partial lines
                pass


def kept(error: WriteError, work: Path) -> WriteError:
    """The error with what survives it: the newest checkpoint of the run (resume starts there)."""
    saved = sorted(Path(work).glob("checkpoint_*.pth"))
    return WriteError(error.errno, f"{error.strerror}; {saved[-1].name + ' is kept' if saved else 'no checkpoint yet'}")


class Checkpoints:
    """Atomic training checkpoints of this run (once per iteration at most)."""

    def __init__(self, loop: Loop, task: Task, run_id: str, settings, done: int):
        self.loop, self.task, self.run_id, self.done = loop, task, run_id, done
        self.config = settings_mod.to_dict(settings)

    def save(self, it: int, failures: int) -> None:
        if it == self.done:
            return
        try:
            save_training_state(self.loop.work, it, self.loop.d, self.loop.keep_checkpoints, {
                "format": f"svt-{self.task.name}", "run": self.run_id, **self.task.state(),
                "epoch": it // self.loop.iters_per_epoch, "decode_failures": failures, "config": self.config})
        except WriteError as e:
            raise kept(e, self.loop.work) from None
        self.done = it


def epoch_loader(loop: Loop, task: Task, it: int):
    """The batches left in the epoch of iteration `it` (mid-epoch after a resume)."""
    epoch = it // loop.iters_per_epoch
    loop.dataset.set_epoch(epoch)
    loop.sampler.set_epoch(epoch, start_batch=it % loop.iters_per_epoch)
    task.train_mode()
    return make_loader(loop.dataset, loop.per_rank, loop.workers, shuffle=False, seed=loop.seed,
                       sampler=loop.sampler, drop_last=True)


def step(loop: Loop, task: Task, batch: dict, it: int, t_data: float, failures: int) -> dict:
    """One iteration and what is logged for it (the task's numbers, throughput, data wait, decode failures)."""
    epoch, t_step = it // loop.iters_per_epoch, time.perf_counter()
    try:
        stats = task.step(batch, it, epoch)
    except NonFiniteLoss as e:
        raise NonFiniteLoss(f"{e}; the last good checkpoint in {loop.work} is kept") from None
    now = time.perf_counter()
    if "tokens" in stats:
        stats["tokens_per_s"] = stats.pop("tokens") * loop.d.world_size / (now - t_data)
    return {"iteration": it + 1, "epoch": epoch, **stats, "clips_per_s": loop.batch_size / (now - t_data),
            "data_wait": (t_step - t_data) / (now - t_data), "decode_failures": failures}


def train(loop: Loop, task: Task, settings, inputs: tuple, outputs: tuple = ()) -> dict:
    """Run (or resume) the whole training; returns {"iterations", "world_size", "replica_sha256", "final",
    "decode_failures"}, "final" being the last logged iteration (also when a rerun finds the run ended)."""
    d = loop.d
    it, failures, run_id = start(loop, task, settings, inputs, outputs)
    checkpoints = Checkpoints(loop, task, run_id, settings, it)
    tracker = Tracker(loop.work, settings.tracking, run_id, f"{task.name} {loop.work}",
                      settings_mod.to_dict(settings), enabled=d.is_main)
    progress = Progress(loop, task.name, it, tracker)
    try:
        with StopSignal() as stop:
            while it < loop.total:
                t_data = time.perf_counter()
                for batch in epoch_loader(loop, task, it):
                    failures += len(batch["failed"])
                    progress.log(step(loop, task, batch, it, t_data, failures))
                    it += 1
                    if it % loop.checkpoint_every == 0 or it % loop.iters_per_epoch == 0:
                        checkpoints.save(it, failures)
                    if stop.shared(d):
                        checkpoints.save(it, failures)
                        raise Interrupted(f"{stop.received or 'a stop signal (another rank)'} at iteration {it}: "
                                          f"checkpoint_{it:08d}.pth written in {loop.work}; exiting to be requeued "
                                          "(the same command resumes from it)")
                    t_data = time.perf_counter()
                    if it >= loop.total:
                        break
    finally:
        progress.close()
    digests = replica_digests(task.model, d)
    final = last_logged(loop.work) if d.is_main else {}
    return {"iterations": loop.total, "world_size": d.world_size, "replica_sha256": digests, "final": final,
            "decode_failures": failures}


def finish(d: Dist) -> None:
    """Every rank done (rank 0 has written the outputs), then the process group goes."""
    if d.enabled:
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
