"""Preemption, time limits and full disks: a stop signal checkpoints within one iteration and the rerun ends
bit-identical to an uninterrupted run; a disk that fills names the file in one line, leaves no temp file and
nothing unreadable, and the rerun after freeing space ends identical too."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from helpers import synth_dataset
from svt.checkpoint import torch_load
from svt.index import write_index
from svt.synth import SynthConfig

RUN = {
    "model": {"preset": "vit_micro_patch8", "num_frames": 16, "img_size": 64},
    "head": {"out_dim": 128, "hidden_dim": 64, "bottleneck_dim": 32},
    "views": {"global_views": {"frames": [8, 4], "size": 48}, "local_views": {"frames": [2, 2, 4, 4], "size": 24}},
    "optim": {"epochs": 3, "batch_size": 2, "warmup_epochs": 1, "lr": 5.0e-3},
    "data": {"workers": 0},
    "checkpoint_every": 100,  # only the epoch ends and the stop signal write checkpoints
}
ITERATIONS = 12  # 8 videos / batch 2 x 3 epochs


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("interruptions")
    root, index = synth_dataset(tmp, "kinetics400", SynthConfig(classes=4, train_per_class=2, val_per_class=1,
                                                                width=64, height=48, frames=24))
    write_index(index, tmp / "index.parquet")
    (tmp / "run.yaml").write_text(yaml.safe_dump(RUN))
    return tmp, root


def pretrain(tmp, root, work, out, launcher=None) -> list[str]:
    return (launcher or [sys.executable]) + [
        "-m", "svt", "pretrain", "--config", str(tmp / "run.yaml"), "--index", str(tmp / "index.parquet"),
        "--root", str(root), "--work", str(work), "--out", str(out)]


@pytest.fixture(scope="module")
def straight(data):
    tmp, root = data
    subprocess.run(pretrain(tmp, root, tmp / "straight", tmp / "straight.pth"), check=True, capture_output=True)
    return torch_load(tmp / "straight.pth"), iterations(tmp / "straight" / "metrics.jsonl")


def iterations(metrics: Path) -> list[int]:
    return [json.loads(line)["iteration"] for line in metrics.read_text().splitlines()]


def signal_after(proc: subprocess.Popen, metrics: Path, lines: int, signum, pid: int | None = None) -> int:
    """Send `signum` once `lines` iterations are logged; returns how many were logged at that moment."""
    deadline = time.time() + 180
    while time.time() < deadline and not (metrics.exists() and len(metrics.read_text().splitlines()) >= lines):
        assert proc.poll() is None, "the run ended before the signal"
        time.sleep(0.05)
    done = len(metrics.read_text().splitlines())
    os.kill(pid or proc.pid, signum)
    return done


def assert_same_teacher(a: dict, b: dict):
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_sigusr1_and_sigterm_are_stop_requests_while_training_and_restored_after():
    from svt.device import Dist
    from svt.engine import StopSignal

    before = {s: signal.getsignal(s) for s in StopSignal.SIGNALS}
    for signum in StopSignal.SIGNALS:
        with StopSignal() as stop:
            assert not stop.shared(Dist())
            os.kill(os.getpid(), signum)  # handled (the test process lives on), remembered
            assert stop.received == signum.name and stop.shared(Dist())
    assert {s: signal.getsignal(s) for s in StopSignal.SIGNALS} == before


@pytest.mark.slow
def test_a_stop_signal_checkpoints_within_one_iteration_and_the_rerun_ends_bit_identical(data, straight):
    tmp, root = data
    signum = signal.SIGUSR1
    work, out = tmp / signum.name, tmp / f"{signum.name}.pth"
    proc = subprocess.Popen(pretrain(tmp, root, work, out), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    done = signal_after(proc, work / "metrics.jsonl", 2, signum)
    err = proc.communicate(timeout=120)[1]
    assert proc.returncode == 75, err[-2000:]  # EX_TEMPFAIL: Snakemake retries, SLURM requeues
    stopped = int(sorted(work.glob("checkpoint_*.pth"))[-1].stem.split("_")[1])
    assert done <= stopped <= done + 1  # the step under way finishes, then the checkpoint
    assert err.strip().splitlines()[-1].startswith(f"svt pretrain: {signum.name} at iteration {stopped}: ")
    assert not out.exists() and not list(tmp.glob(f"**/{signum.name}*/.*.tmp"))
    subprocess.run(pretrain(tmp, root, work, out), check=True, capture_output=True)
    teacher, logged = straight
    assert_same_teacher(torch_load(out), teacher)
    assert iterations(work / "metrics.jsonl") == logged == list(range(1, ITERATIONS + 1))  # each logged once


@pytest.mark.slow
def test_under_torchrun_the_signal_to_rank_0_stops_both_ranks_at_the_same_iteration(data):
    tmp, root = data
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run(pretrain(tmp, root, tmp / "ddp", tmp / "ddp.pth", torchrun), check=True, capture_output=True,
                   env=env)
    work, out = tmp / "ddp_stop", tmp / "ddp_stop.pth"
    proc = subprocess.Popen(pretrain(tmp, root, work, out, torchrun), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.time() + 120
    while time.time() < deadline and not (rank0 := rank_pid(proc.pid, 0)):
        time.sleep(0.1)
    signal_after(proc, work / "metrics.jsonl", 2, signal.SIGUSR1, pid=rank0)  # rank 0 only
    err = proc.communicate(timeout=180)[1]
    assert proc.returncode != 0
    stops = [line for line in err.splitlines() if "at iteration" in line and "exiting to be requeued" in line]
    assert len(stops) == 2, err[-3000:]  # both ranks stopped ...
    assert len({line.split("at iteration ")[1].split(":")[0] for line in stops}) == 1  # ... at the same iteration
    subprocess.run(pretrain(tmp, root, work, out, torchrun), check=True, capture_output=True, env=env)
    assert_same_teacher(torch_load(out), torch_load(tmp / "ddp.pth"))
    assert iterations(work / "metrics.jsonl") == iterations(tmp / "ddp" / "metrics.jsonl")


def rank_pid(parent: int, rank: int) -> int | None:
    """The pid of torchrun's worker with RANK=rank."""
    for child in Path(f"/proc/{parent}/task/{parent}/children").read_text().split():
        try:
            environ = Path(f"/proc/{child}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"RANK={rank}".encode() in environ:
            return int(child)
    return None


# ------------------------------------------------------------------ full disks

@pytest.fixture
def small_disk(tmp_path):
    """A tmpfs of a few MB (root only); remount(size) frees space."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small tmpfs needs root")
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount)], capture_output=True).returncode:
        pytest.skip("this machine does not let root mount a tmpfs")

    def remount(size: str):
        subprocess.run(["mount", "-o", f"remount,size={size}", str(mount)], check=True)

    yield mount, remount
    subprocess.run(["umount", str(mount)], check=True)


def fill(folder: Path, leave: int) -> Path:
    """A ballast file that leaves about `leave` bytes free."""
    ballast = folder / "ballast"
    free = shutil.disk_usage(folder).free
    ballast.write_bytes(b"\0" * max(free - leave, 0))
    return ballast


def no_temps_and_all_loadable(folder: Path):
    assert not list(folder.rglob(".*.tmp"))
    for ckpt in folder.rglob("checkpoint_*.pth"):
        torch_load(ckpt)


@pytest.mark.slow
@pytest.mark.parametrize("where", ["checkpoint", "export"])
def test_a_disk_that_fills_during_a_checkpoint_or_the_export_is_one_line_and_the_rerun_ends_identical(
        data, straight, small_disk, where):
    tmp, root = data
    disk, remount = small_disk
    work = disk / "work" if where == "checkpoint" else tmp / "export_work"
    out = disk / "teacher.pth"
    disk.joinpath("work").mkdir()
    # room for the first checkpoint (2.9 MB) but not the second beside it; for the export (0.7 MB), too little
    ballast = fill(disk, 4_500_000 if where == "checkpoint" else 200_000)
    proc = subprocess.run(pretrain(tmp, root, work, out), capture_output=True, text=True)
    last = proc.stderr.strip().splitlines()[-1]
    assert proc.returncode == 2 and last.startswith("svt pretrain: error: no space left on device writing "), last
    assert "MB needed" in last or "kB needed" in last
    if where == "checkpoint":
        assert "checkpoint_00000008.pth (" in last and last.endswith("; checkpoint_00000004.pth is kept")
    else:
        assert str(out) in last and last.endswith(f"checkpoint_{ITERATIONS:08d}.pth is kept")
    no_temps_and_all_loadable(disk)
    no_temps_and_all_loadable(work)
    ballast.unlink()
    remount("64m")
    subprocess.run(pretrain(tmp, root, work, out), check=True, capture_output=True)
    teacher, logged = straight
    assert_same_teacher(torch_load(out), teacher)
    assert iterations(work / "metrics.jsonl") == logged


def test_a_disk_that_fills_while_the_index_is_written_is_one_line_and_the_rerun_writes_it(data, small_disk):
    tmp, root = data
    disk, remount = small_disk
    ballast = fill(disk, 1_000)
    index = ["-m", "svt", "index", "--dataset", "kinetics400", "--root", str(root), "--workers", "1"]
    proc = subprocess.run([sys.executable, *index, "--out", str(disk / "index.parquet")], capture_output=True,
                          text=True)
    last = proc.stderr.strip().splitlines()[-1]
    assert proc.returncode == 2 and last.startswith(
        f"svt index: error: no space left on device writing {disk / 'index.parquet'} ("), last
    assert not list(disk.glob(".*.tmp")) and not (disk / "index.parquet").exists()
    ballast.unlink()
    remount("8m")
    subprocess.run([sys.executable, *index, "--out", str(disk / "index.parquet")], check=True, capture_output=True)
    subprocess.run([sys.executable, *index, "--out", str(tmp / "index_elsewhere.parquet")], check=True,
                   capture_output=True)
    import pandas as pd

    a, b = pd.read_parquet(disk / "index.parquet"), pd.read_parquet(tmp / "index_elsewhere.parquet")
    pd.testing.assert_frame_equal(a.drop(columns=["mtime"], errors="ignore"), b.drop(columns=["mtime"],
                                                                                      errors="ignore"))


def test_an_atomically_written_file_gets_the_permissions_a_plain_write_gives_it(tmp_path):
    from svt.io import atomic_write

    old = os.umask(0o022)
    try:
        (tmp_path / "plain.txt").write_text("x")
        atomic_write(tmp_path / "atomic.txt", lambda tmp: Path(tmp).write_text("x"))
    finally:
        os.umask(old)
    plain, atomic = ((tmp_path / n).stat().st_mode & 0o777 for n in ("plain.txt", "atomic.txt"))
    assert atomic == plain == 0o644  # readable by the group on a shared cluster, not mkstemp's 0600
