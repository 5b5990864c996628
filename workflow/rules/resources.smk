# What each kind of job asks the scheduler for (resources.<kind> over resources.default, typed in svt.settings),
# and how its command is launched: a plain process, torchrun, or srun + one torchrun per node.
import os


def res(kind):
    return typed.resource(config["resources"], kind)


def slurm_resources(kind):
    """Resources for the executor: runtime grows with the attempt (retries); GPUs as `gpu` + cpus_per_gpu (per node
    as `gres` on several nodes). One task per job, where torchrun starts the processes; with several nodes (or
    tasks_per_node) one task per torchrun agent, started by the rule's own srun (the plugin's `mpi` path).
    """
    r = res(kind)
    out = {
        "mem_mb": r.mem_mb,
        "runtime": lambda wildcards, attempt: r.runtime * attempt,
    }
    agents = r.nodes * r.tasks_per_node
    if r.gpus:
        if r.nodes > 1:
            out["gres"] = f"gpu:{r.gpus}"
        else:
            out["gpu"] = r.gpus
        if r.cpus_per_gpu:
            out["cpus_per_gpu"] = r.cpus_per_gpu
    if agents > 1:
        out.update(nodes=r.nodes, tasks=agents, mpi="srun")
        if r.gpus:
            out["tasks_per_gpu"] = 0  # else the plugin turns `tasks` into --ntasks-per-gpu
    for key, env in (
        ("slurm_partition", "SVT_SLURM_PARTITION"),
        ("slurm_account", "SVT_SLURM_ACCOUNT"),
    ):
        value = getattr(r, key) or os.environ.get(env)
        if value:
            out[key] = value
    # --signal without B: SIGUSR1 goes to the job step's processes; svt checkpoints and exits, Snakemake itself
    # ignores it (svt.workflow.leave_stop_signals_to_jobs) and retries the job, which resumes
    extra = [r.slurm_extra] if r.slurm_extra else []
    extra += [f"--signal=USR1@{r.warning_seconds}"] if r.warning_seconds else []
    if extra:
        out["slurm_extra"] = " ".join(extra)
    return out


def launch(kind):
    """`svt`; torchrun with `processes` processes inside the job's single task; or, with several nodes (or
    tasks_per_node), srun starting one torchrun per task that meet at a c10d rendezvous on the job's first node.
    """
    r = res(kind)
    agents = r.nodes * r.tasks_per_node
    if agents > 1:
        need = f'"${{SLURM_JOB_ID:?resources.{kind}.nodes / tasks_per_node above 1 need the slurm executor}}"'
        head = '$(scontrol show hostnames "$(squeue -h -j $SLURM_JOB_ID -o %N)" | head -n1)'
        return (
            f": {need}; srun --nodes {r.nodes} --ntasks {agents} --ntasks-per-node {r.tasks_per_node} "
            f"torchrun --nnodes {agents} --nproc_per_node {r.processes} --rdzv-backend c10d "
            f"--rdzv-endpoint {head}:$((29500 + SLURM_JOB_ID % 20000)) --rdzv-id $SLURM_JOB_ID -m svt"
        )
    return "svt" if r.processes == 1 else f"torchrun --standalone --nproc_per_node {r.processes} -m svt"
