"""The micro demo DAG: every rule of the demo at the smallest size, run once per test session (the `micro_dag`
fixture of conftest.py) and read by every test of its outputs (tests/test_workflow.py, tests/test_slurm.py).

Where a SLURM cluster answers (CI starts one with .ci/slurm_up.sh) it runs through the project's `slurm` profile
plus a small override for the local test cluster (partitions, squeue polling, no account): every rule is
submitted with sbatch and pretraining runs as two torchrun agents started by the rule's own srun (what two nodes
do; the one test node stands in for both). Elsewhere (a laptop) it runs locally with `-c2` and the SLURM tests
skip, naming the reason.
"""

import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from svt.config import merge

REPO = Path(__file__).resolve().parents[1]
SNAKEFILE = REPO / "workflow" / "Snakefile"
DEMO = yaml.safe_load((REPO / "config" / "config.yaml").read_text())

# The demo DAG at the smallest size that still exercises every rule. No stochastic depth, so that two ranks and one
# process draw the same numbers and must train the same model.
MICRO = merge(DEMO, {
    "datasets": {"ssv2": {"enabled": False}},  # also what a user without SSv2 does: Table 3 reads "not run"
    "synthetic": {"classes": 3, "train_per_class": 4, "val_per_class": 2, "width": 64, "height": 48, "frames": 24},
    "model": {"drop_path_rate": 0.0},
    "spatial_init": {"epochs": 1},
    "pretraining": {"optim": {"epochs": 1, "batch_size": 4, "lr_reference_batch": 4, "warmup_epochs": 0},
                    "data": {"workers": 0}},
    "ablations": {"subset": {"videos": 8}, "epochs": 1,
                  "tables": {"table4": ["lg_only", "baseline", "half_lr"], "table5": ["baseline"],
                             "table6": ["baseline"], "table7": ["no_tca", "baseline"], "table8": ["baseline"]}},
    "evaluation": {"batch_size": 4, "data": {"workers": 0}, "linear": {"epochs": 5, "feature_copies": 1},
                   "finetune": {"epochs": 1, "lr_steps": [1]}, "baselines": ["random"]},
    "resources": {k: {"threads": 1} for k in ("default", "pretrain", "finetune", "linear", "data")},
})
MICRO["ablations"]["variants"] = {k: DEMO["ablations"]["variants"][k] for k in ("baseline", "lg_only", "no_tca")}
MICRO["ablations"]["variants"]["half_lr"] = {"optim": {"lr": 2.5e-4}}  # not in the paper: added in the config alone

# What each kind of job asks SLURM for: distinct values, so that a request read back names its kind.
PARTITION = {"default": "cpu", "data": "cpu", "linear": "gpu", "pretrain": "gpu", "finetune": "cpu"}
RESOURCES = {
    "default": {"threads": 1, "processes": 1, "gpus": 0, "cpus_per_gpu": 0, "mem_mb": 700, "runtime": 10},
    "data": {"threads": 1, "processes": 1, "gpus": 0, "cpus_per_gpu": 0, "mem_mb": 800, "runtime": 11},
    "linear": {"threads": 1, "processes": 1, "gpus": 1, "cpus_per_gpu": 1, "mem_mb": 1500, "runtime": 12},
    "pretrain": {"threads": 2, "processes": 2, "gpus": 1, "cpus_per_gpu": 2, "mem_mb": 3000, "runtime": 13},
    "finetune": {"threads": 1, "processes": 1, "gpus": 0, "cpus_per_gpu": 0, "mem_mb": 1600, "runtime": 14},
}
SLURM_MICRO = merge(MICRO, {"resources": {k: {**v, "slurm_partition": PARTITION[k]} for k, v in RESOURCES.items()}})
# Two torchrun agents of one process each, started by the rule's own srun and meeting at a c10d rendezvous: what
# two nodes do (tasks_per_node 2 stands in for nodes 2 on the one node the test cluster has).
SLURM_MICRO["resources"]["pretrain"].update(nodes=1, tasks_per_node=2, processes=1)
LOCAL_OVERRIDE = {
    "configfile": "config/micro.yaml",
    "slurm-status-command": "squeue",  # no slurmdbd: with sacct the plugin would wait forever
    "slurm-init-seconds-before-status-checks": 1,
    "slurm-no-account": True,
    "retries": 0,
    "latency-wait": 5,
    "jobs": 8,
}


def slurm_answers() -> bool:
    return shutil.which("sbatch") is not None and subprocess.run(["sinfo", "-h"], capture_output=True).returncode == 0


NO_SLURM = "no SLURM cluster here (sbatch / sinfo missing or not answering); .ci/slurm_up.sh starts one"


@dataclass
class MicroDag:
    wd: Path
    config: dict  # the config it ran with (later runs in `wd` must use it, or they plan its jobs again)
    out: str  # Snakemake's output
    slurm: bool  # run through the slurm profile
    seconds: float


def slurm_workdir(wd: Path, config: dict, retries: int = 0) -> Path:
    """A user's checkout with the slurm profile, the config as config/micro.yaml and the local test override."""
    (wd / "config").mkdir(parents=True, exist_ok=True)
    for name in ("micro.yaml", "config.yaml"):
        (wd / "config" / name).write_text(yaml.safe_dump(config))
    (wd / "local").mkdir()
    (wd / "local" / "config.yaml").write_text(yaml.safe_dump({**LOCAL_OVERRIDE, "retries": retries}))
    shutil.copytree(REPO / "profiles", wd / "profiles")
    (wd / "slurm").symlink_to("profiles/slurm")
    return wd


def run_with_timeout(cmd, cwd, timeout):
    """Snakemake under a timeout is stopped with SIGINT, so it cancels its SLURM jobs."""
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=120)
        raise AssertionError(f"snakemake did not finish in {timeout} s; stopped with SIGINT\n{out[-5000:]}")
    return proc.returncode, out


def run(wd: Path) -> MicroDag:
    slurm = slurm_answers()
    config = SLURM_MICRO if slurm else MICRO
    if slurm:
        slurm_workdir(wd, config)
        cmd = [sys.executable, "-m", "snakemake", "-s", str(SNAKEFILE), "--profile", "slurm", "--profile", "local",
               "all"]
    else:
        (wd / "config").mkdir(parents=True)
        (wd / "config" / "config.yaml").write_text(yaml.safe_dump(config))
        cmd = [sys.executable, "-m", "snakemake", "-s", str(SNAKEFILE), "-d", str(wd), "-c2", "all"]
    t0 = time.time()
    rc, out = run_with_timeout(cmd, wd, timeout=1500)
    (wd / "snakemake.out").write_text(out)
    assert rc == 0, out[-8000:]
    return MicroDag(wd, config, out, slurm, time.time() - t0)
