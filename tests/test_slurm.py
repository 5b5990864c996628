"""The project's `slurm` profile against a real SLURM cluster (slurmctld + slurmd, .ci/slurm_up.sh).

The session's micro demo DAG (tests/micro_dag.py) runs through `snakemake --profile slurm` where a cluster answers:
every rule is submitted with sbatch, pretraining runs as two torchrun agents started by the rule's own srun (what
two nodes do; the one test node stands in for both), and the requests each job carried are read back from the
scheduler. A second run on the same data takes SLURM's warning signal (torchrun --standalone with 2 processes in
one task). Skipped where there is no SLURM (a laptop); `.ci/run` starts a cluster so CI never skips them.
"""

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from conftest import report
from micro_dag import NO_SLURM, RESOURCES, PARTITION, SLURM_MICRO, SNAKEFILE, slurm_answers, slurm_workdir
from svt.config import merge

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not slurm_answers(), reason=NO_SLURM)]
reads_the_dag = pytest.mark.xdist_group("micro_dag")  # under -n, on the worker that ran the session's DAG


@pytest.fixture(scope="module")
def slurm_run(micro_dag):
    assert micro_dag.slurm  # a cluster answers (the skip above), so the session's DAG ran through it
    return micro_dag.wd, micro_dag.out


def submitted(out: str) -> dict[str, list[str]]:
    """rule -> SLURM job ids, from the plugin's 'Job N has been submitted with SLURM jobid X' lines and the
    'rule R:' blocks that precede them."""
    jobs, rule_of = {}, {}
    for m in re.finditer(r"^(?:local)?rule (\w+):\n(?:.*\n)*?\s+jobid: (\d+)", out, re.M):
        rule_of[m.group(2)] = m.group(1)
    for m in re.finditer(r"Job (\d+) has been submitted with SLURM jobid (\d+)", out):
        jobs.setdefault(rule_of.get(m.group(1), "?"), []).append(m.group(2))
    return jobs


def scontrol(jobid: str) -> dict[str, str]:
    text = subprocess.run(["scontrol", "show", "job", jobid], capture_output=True, text=True, check=True).stdout
    return dict(re.findall(r"(\w[\w/:]*)=(\S*)", text))


@reads_the_dag
def test_every_rule_of_the_micro_dag_ran_as_a_slurm_job_and_completed(slurm_run):
    wd, out = slurm_run
    jobs = submitted(out)
    for rule in ("synthesize", "index", "spatial_init", "pretrain", "ablation_pretrain", "linear", "finetune",
                 "ablation_linear", "table", "attention_figure", "reproduction_delta", "training_curves",
                 "compute_table"):
        assert jobs.get(rule), f"{rule} was not submitted to SLURM"
    ids = [j for js in jobs.values() for j in js]
    states = {j: scontrol(j)["JobState"] for j in ids}
    for rule, js in sorted(jobs.items()):
        report(f"  {rule}: SLURM job ids {', '.join(js)} -> {', '.join(sorted({states[j] for j in js}))}")
    assert all(s == "COMPLETED" for s in states.values()), states
    assert all((wd / "results" / f"table{n}.csv").exists() for n in range(1, 9))


@reads_the_dag
def test_two_srun_tasks_train_one_model_across_ranks_equal_to_one_process(slurm_run, tmp_path):
    from svt.checkpoint import torch_load

    wd, out = slurm_run
    assert "srun --nodes 1 --ntasks 2 --ntasks-per-node 2 torchrun --nnodes 2 --nproc_per_node 1" in out
    meta = json.loads((wd / "results" / "pretrain" / "svt.pth.json").read_text())
    assert meta["world_size"] == 2
    # both ranks hashed their final weights and agreed, bit for bit
    assert len(meta["replica_sha256"]) == 2 and len(set(meta["replica_sha256"])) == 1
    job = scontrol(submitted(out)["pretrain"][0])
    assert job["NumTasks"] == "2" and job["TresPerJob"] == "gres:gpu:1"
    # the same command in one process, outside SLURM: same settings, data and initialisation
    job_cmd = re.search(r"-m svt pretrain --config '(?P<settings>.*?)' --index (?P<index>\S+) --root (?P<root>\S+) "
                        r"--work \S+ --out results/pretrain/svt.pth(?: --init (?P<init>\S+))?", out)
    init = ["--init", job_cmd["init"]] if job_cmd["init"] else []
    subprocess.run([sys.executable, "-m", "svt", "pretrain", "--config", job_cmd["settings"], "--index",
                    job_cmd["index"], "--root", job_cmd["root"], "--work", str(tmp_path / "one"), "--out",
                    str(tmp_path / "one.pth"), *init], cwd=wd, check=True, capture_output=True)
    a, b = torch_load(wd / "results" / "pretrain" / "svt.pth"), torch_load(tmp_path / "one.pth")
    assert a.keys() == b.keys()
    rel_l2 = (sum(((a[k] - b[k]) ** 2).sum() for k in b) / sum((b[k] ** 2).sum() for k in b)).sqrt()
    report(f"2 srun tasks (c10d rendezvous, gloo) vs 1 process: teacher relative L2 {rel_l2:.2e}")
    # a missing gradient sync or a rank training on the wrong half of the batch is off by ~1e-2
    assert rel_l2 < 1e-4, rel_l2


@reads_the_dag
@pytest.mark.parametrize("rule,kind", [("pretrain", "pretrain"), ("linear", "linear"), ("finetune", "finetune"),
                                       ("index", "data"), ("table", "default")])
def test_sbatch_requests_carry_the_configured_resources(slurm_run, rule, kind):
    _, out = slurm_run
    want = RESOURCES[kind]
    jobid = submitted(out)[rule][0]
    job = scontrol(jobid)
    report(f"  sbatch request of {rule} (job {jobid}): partition {job['Partition']}, "
                      f"time {job['TimeLimit']}, {job.get('ReqTRES', job['TRES'])}, gpus {job.get('TresPerJob', '-')}")
    assert job["Partition"] == PARTITION[kind]
    assert job["TimeLimit"] == f"00:{want['runtime']:02d}:00"
    tres = dict(kv.split("=") for kv in job.get("ReqTRES", job["TRES"]).split(","))
    assert tres["mem"] == f"{want['mem_mb']}M"
    if want["gpus"]:
        assert job["TresPerJob"] == f"gres:gpu:{want['gpus']}"
        assert job["CpusPerTres"] == f"gres:gpu:{want['cpus_per_gpu']}"
        assert int(job["NumCPUs"]) == want["gpus"] * want["cpus_per_gpu"]
    else:
        assert "TresPerJob" not in job and int(job["NumCPUs"]) == want["threads"]


# ------------------------------------------------------------------ SLURM's warning signal: checkpoint, retry, resume

SIGNAL_MICRO = merge(SLURM_MICRO, {
    "spatial_init": {"source": "none"},
    "pretraining": {"optim": {"epochs": 4}, "checkpoint_every": 100},  # 12 iterations; checkpoints at epoch ends
    # torchrun --standalone with 2 processes in one task; the profile's --signal=USR1@60 (not reached here)
    "resources": {"pretrain": {"tasks_per_node": 1, "processes": 2, "warning_seconds": 60}},
})


def pretrain_through_the_profile(wd, warn: bool) -> tuple[int, str, int]:
    """results/pretrain/svt.pth through `--profile slurm` (torchrun, 2 gloo processes, in a SLURM job) on the
    micro DAG's synthetic Kinetics-400 (written and indexed first, locally); with `warn`, the job's processes get
    SLURM's warning signal (scancel --signal=USR1, as --signal=USR1@s sends it) once two iterations are logged, and
    Snakemake retries the job (retries: 1)."""
    slurm_workdir(wd, SIGNAL_MICRO, retries=1)
    subprocess.run([sys.executable, "-m", "snakemake", "-s", str(SNAKEFILE), "-c2",
                    "resources/index/kinetics400.parquet"], cwd=wd, check=True, capture_output=True)
    cmd = [sys.executable, "-m", "snakemake", "-s", str(SNAKEFILE), "--profile", "slurm", "--profile", "local",
           "results/pretrain/svt.pth"]
    proc = subprocess.Popen(cmd, cwd=wd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    done = 0
    if warn:
        metrics, deadline = wd / "work" / "pretrain" / "svt" / "metrics.jsonl", time.time() + 600
        while time.time() < deadline and not (metrics.exists() and len(metrics.read_text().splitlines()) >= 2):
            assert proc.poll() is None, proc.communicate()[0][-5000:]
            time.sleep(0.2)
        jobs = subprocess.run(["squeue", "-h", "-t", "R", "-o", "%i %k"], capture_output=True, text=True).stdout
        pretrain = [line.split()[0] for line in jobs.splitlines() if "rule_pretrain" in line]
        assert len(pretrain) == 1, jobs
        done = len(metrics.read_text().splitlines())
        subprocess.run(["scancel", "--signal=USR1", pretrain[0]], check=True)
    try:
        out, _ = proc.communicate(timeout=900)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGINT)
        raise AssertionError(proc.communicate(timeout=120)[0][-5000:])
    return proc.returncode, out, done


@pytest.mark.slow
def test_slurms_warning_signal_checkpoints_the_job_which_is_retried_and_ends_bit_identical(tmp_path):
    import torch

    from svt.checkpoint import torch_load

    t0 = time.time()
    wd = tmp_path / "warned"
    rc, out, done = pretrain_through_the_profile(wd, warn=True)
    assert rc == 0, out[-8000:]
    jobs = submitted(out)["pretrain"]
    assert len(jobs) == 2, out[-5000:]  # the warned job, which failed after its checkpoint, then Snakemake's retry
    # the retry's log (it replaced the first attempt's) starts from the checkpoint the warned job wrote
    log = (wd / "logs" / "pretrain" / "svt.log").read_text()
    resumed = int(re.search(r"resumed from iteration (\d+)", log).group(1))
    assert done <= resumed <= done + 1 < 12  # within one iteration of the signal, mid-run
    # the uninterrupted reference: the job's own command and thread count, run straight through outside SLURM
    settings = re.search(r"-m svt pretrain --config '(.*?)' --index", out).group(1)
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    subprocess.run([*torchrun, "-m", "svt", "pretrain", "--config", settings, "--index",
                    "resources/index/kinetics400.parquet", "--root", "resources/synthetic/kinetics400", "--work",
                    str(tmp_path / "straight"), "--out", str(tmp_path / "straight.pth")], cwd=wd, check=True,
                   capture_output=True, env={**os.environ, "OMP_NUM_THREADS": str(RESOURCES["pretrain"]["threads"])})
    a, b = torch_load(tmp_path / "straight.pth"), torch_load(wd / "results" / "pretrain" / "svt.pth")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    iterations = [json.loads(line)["iteration"] for line in
                  (wd / "work" / "pretrain" / "svt" / "metrics.jsonl").read_text().splitlines()]
    assert iterations == list(range(1, 13))  # each iteration logged once
    report(f"SLURM warning signal: job {jobs[0]} signalled after {done} iterations, checkpointed at "
                      f"{resumed}, job {jobs[1]} resumed; teacher bit-identical ({time.time() - t0:.0f} s)")
