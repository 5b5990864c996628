# Helpers shared by the rules: dataset roots, per-job settings (passed inline so that Snakemake sees each job's
# settings as a parameter and reruns exactly the jobs whose settings changed), resources, launchers.
import dataclasses
import json
import os
import re
import sys
from pathlib import Path

from svt import benchmarks
from svt import settings as typed

# Every rule's software under --sdm conda (paths in rule files are relative to workflow/rules/).
CONDA_ENV = "../envs/svt.yaml"
BENCHMARKS = benchmarks.names()  # the registry (svt/benchmarks/, plus modules named in SVT_BENCHMARKS)
# Your own videos: any other name under `datasets` (source local, layout folders or csv), usable wherever a
# dataset is named (evaluation targets, pretraining.dataset, figures.attention_dataset).
OWN = [d for d in config["datasets"] if d not in BENCHMARKS]
DATASETS = BENCHMARKS + OWN
# A dataset is left out with `datasets.<name>.enabled: false` or by leaving its key out: none of its jobs is
# planned and its table cells read "not run".
ENABLED = [d for d in DATASETS if config["datasets"].get(d, {"enabled": False}).get("enabled", True)]
DISABLED = [d for d in BENCHMARKS if d not in ENABLED]
# The pretraining set (paper: Kinetics-400); the pretrained teacher is named after any other.
PRETRAIN_SET = typed.pretraining(config["pretraining"]).dataset
PRETRAINED = "results/pretrain/svt.pth" if PRETRAIN_SET == "kinetics400" else f"results/pretrain/svt_{PRETRAIN_SET}.pth"
PRETRAIN_RUN = Path(PRETRAINED).stem
# The authors' released teacher (downloads.release): evaluated as model `release` by the `release` target.
RELEASE = "release" in config.get("downloads", {})


wildcard_constraints:
    dataset="|".join(re.escape(d) for d in ENABLED) or "no-dataset-enabled",
    model="svt|random|spatial_init" + ("|release" if RELEASE else ""),
    protocol="linear|finetune",


def check_config():
    """Fail before any job, naming the key, for what the schema cannot see."""
    for name in OWN:
        ds = config["datasets"][name]
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]*", name):
            raise ValueError(f"config: datasets.{name}: use letters, digits, '_' and '-' (the name names files)")
        if ds["source"] != "local" or "layout" not in ds:
            raise ValueError(f"config: datasets.{name}: your own videos need source: local, a path and a layout "
                             f"(folders or csv); the benchmarks are {', '.join(BENCHMARKS)}")
        if ds["layout"] == "csv" and "csv" not in ds:
            raise ValueError(f"config: datasets.{name}.csv is required with layout: csv (the path,label[,split] file)")
        if ds["layout"] == "csv" and not Path(ds["csv"]).is_file():
            raise ValueError(f"config: datasets.{name}.csv = {ds['csv']!r} is not a file")
    for name in BENCHMARKS:
        if "layout" in config["datasets"].get(name, {}):
            raise ValueError(f"config: datasets.{name}.layout: {name} is a benchmark with its own layout; give your "
                             "dataset another name")
    if PRETRAIN_SET not in DATASETS:
        raise ValueError(f"config: pretraining.dataset = {PRETRAIN_SET!r} is not under datasets "
                         f"({', '.join(DATASETS)})")
    for name in ENABLED:
        ds = config["datasets"][name]
        if ds["source"] == "local":
            if "path" not in ds:
                raise ValueError(f"config: datasets.{name}.path is required when datasets.{name}.source is local")
            if not Path(ds["path"]).is_dir():
                raise ValueError(f"config: datasets.{name}.path = {ds['path']!r} is not a directory")
        if ds["source"] == "synthetic" and "synthetic" not in config:
            raise ValueError(f"config: datasets.{name}.source is synthetic but there is no `synthetic` section")
    downloading = [n for n in ENABLED if config["datasets"][n]["source"] == "download"]
    if (downloading or config["spatial_init"]["source"] == "download") and "downloads" not in config:
        raise ValueError(f"config: datasets {downloading} / spatial_init have source download but there is no "
                         "`downloads` section (see config/paper.yaml)")
    for name in downloading:
        if name not in config["downloads"]:
            raise ValueError(f"config: datasets.{name}.source is download but downloads.{name} is missing")
    for name in [d for d in OWN if d in ENABLED and Path(config["datasets"][d]["path"]).is_dir()]:
        from svt.datasets import AnnotationError, read_layout

        ds = config["datasets"][name]
        try:  # the listing only (no decoding): a bad file, row or split file stops before any job
            read_layout(ds["layout"], ds["path"], ds.get("csv"), f"resources/index/{name}.split.csv",
                        ds.get("val_fraction", 0.2), ds.get("seed", 0), write=False)
        except AnnotationError as e:
            raise ValueError(f"config: datasets.{name}: {e}") from None
    if "spatial_init" in config["evaluation"]["baselines"] and config["spatial_init"]["source"] == "none":
        raise ValueError("config: evaluation.baselines lists spatial_init but spatial_init.source is none")
    if "random" in config["ablations"]["variants"]:
        raise ValueError("config: ablations.variants.random: `random` names the random-init reference; rename it")
    used = {v for variants in config["ablations"]["tables"].values() for v in variants}
    unknown = used - set(config["ablations"]["variants"])
    if unknown:
        raise ValueError(f"config: ablations.tables name unknown variants {sorted(unknown)}; "
                         f"defined: {sorted(config['ablations']['variants'])}")


check_config()


def enabled(dataset, needed_by):
    """The dataset's name, or a clear error when a planned job needs a dataset the config leaves out."""
    if dataset not in ENABLED:
        raise ValueError(f"config: {needed_by} needs {dataset}, but datasets.{dataset} is "
                         f"{'absent' if dataset not in config['datasets'] else 'disabled (enabled: false)'}")
    return dataset


def pretraining_data(needed_by, subset=""):
    """Input function: the pretraining set's index (or its ablation subset) and root (pretraining.dataset;
    Kinetics-400 in the paper, §4.1)."""

    def inputs(wildcards):
        name = enabled(PRETRAIN_SET, needed_by)
        return {"index": f"resources/index/{name}{subset}.parquet", "root": dataset_root(name)}

    return inputs


PLACEMENT_WARNED = []


def placed_by_hand(wildcards):
    """Nothing to add as input: checks, when the download job of a benchmark placed by hand (SSv2) is planned, that
    its files are there. A dry run plans on and warns once; a real run stops here, before any job, with the
    instructions."""
    bench = benchmarks.get(wildcards.dataset)
    if not bench.placed_by_hand or Path(f"resources/data/{wildcards.dataset}").is_dir():
        return []
    from svt.download import DownloadError

    try:
        bench.download(config["downloads"][wildcards.dataset], Path("resources/downloads"), 1)
    except DownloadError as e:
        if not workflow.dryrun:
            raise
        if not PLACEMENT_WARNED:
            PLACEMENT_WARNED.append(True)
            print(f"WARNING (dry run; a real run stops here): {e}", file=sys.stderr)
    return []


def release_download():
    """downloads.release: where the released teacher comes from (url, or path to a copy) and its pinned sha256."""
    if not RELEASE:
        raise ValueError("config: the release target evaluates the authors' released teacher; set "
                         "downloads.release.url (or .path to a copy you have) as in config/paper.yaml")
    return config["downloads"]["release"]


def attention_data(wildcards):
    name = enabled(config["figures"]["attention_dataset"], "Figure 3 (figures.attention_dataset)")
    return {"index": f"resources/index/{name}.parquet", "root": dataset_root(name)}


def source_root(dataset):
    """Where a dataset's files are before any re-encoding."""
    ds = config["datasets"][dataset]
    if ds["source"] == "local":
        return ds["path"]
    return f"resources/{'synthetic' if ds['source'] == 'synthetic' else 'data'}/{dataset}"


def dataset_root(dataset):
    """The root every consumer reads: the re-encoded copy where `reencode` is set."""
    return f"resources/reencoded/{dataset}" if config["datasets"][dataset].get("reencode") else source_root(dataset)


def settings(obj):
    """A job's settings as the inline JSON its command reads; typed settings complete, every default filled in."""
    return json.dumps(obj if isinstance(obj, dict) else typed.to_dict(obj), sort_keys=True)


def pretraining_settings(variant=None):
    """The main run's typed settings, or an ablation variant's: its keys over the main run's, its own epochs."""
    s = typed.pretraining({**config["pretraining"], "model": config["model"], "dataset": PRETRAIN_SET})
    if variant is None:
        return s
    s = typed.build(s, config["ablations"]["variants"][variant], f"ablations.variants.{variant}")
    return dataclasses.replace(s, optim=dataclasses.replace(s.optim, epochs=config["ablations"]["epochs"]))


def image_pretraining_settings():
    """Spatial initialisation for scales without the DINO ImageNet download: the same self-distillation on
    single frames (every view one frame), i.e. an image DINO on the pretraining videos' frames."""
    s = pretraining_settings()
    single = {f: dataclasses.replace(getattr(s.views, f), frames=(1,) * getattr(s.views, f).count)
              for f in ("global_views", "local_views")}
    epochs = config["spatial_init"]["epochs"]
    optim = dataclasses.replace(s.optim, epochs=epochs, warmup_epochs=min(s.optim.warmup_epochs, epochs - 1))
    return dataclasses.replace(s, views=dataclasses.replace(s.views, **single), optim=optim)


def evaluation_settings(dataset, slow_fast=True):
    ev = {k: v for k, v in config["evaluation"].items() if k != "baselines"}
    return typed.evaluation({**ev, "model": config["model"], "flip": config["datasets"][dataset].get("flip", True),
                             "slow_fast": slow_fast})


def index_options(dataset):
    """svt index's options: the official split for a benchmark, the layout and the split draw for your own."""
    ds = config["datasets"][dataset]
    if dataset in BENCHMARKS:
        return f"--split {ds['split']}"
    extra = f" --csv {ds['csv']}" if ds["layout"] == "csv" else ""
    return (f"--layout {ds['layout']}{extra} --val-fraction {ds.get('val_fraction', 0.2)} "
            f"--seed {ds.get('seed', 0)}")


def res(kind):
    return {"nodes": 1, "tasks_per_node": 1, **config["resources"]["default"], **config["resources"].get(kind, {})}


def slurm_resources(kind):
    """Resources for the executor: runtime grows with the attempt (retries); GPUs as `gpu` + cpus_per_gpu (per node
    as `gres` on several nodes). One task per job, where torchrun starts the processes; with several nodes (or
    tasks_per_node) one task per torchrun agent, started by the rule's own srun (the plugin's `mpi` path)."""
    r = res(kind)
    out = {"mem_mb": r["mem_mb"], "runtime": lambda wildcards, attempt: r["runtime"] * attempt}
    nodes, agents = r["nodes"], r["nodes"] * r["tasks_per_node"]
    if r["gpus"]:
        if nodes > 1:
            out["gres"] = f"gpu:{r['gpus']}"
        else:
            out["gpu"] = r["gpus"]
        if r["cpus_per_gpu"]:
            out["cpus_per_gpu"] = r["cpus_per_gpu"]
    if agents > 1:
        out.update(nodes=nodes, tasks=agents, mpi="srun")
        if r["gpus"]:
            out["tasks_per_gpu"] = 0  # else the plugin turns `tasks` into --ntasks-per-gpu
    for key, env in (("slurm_partition", "SVT_SLURM_PARTITION"), ("slurm_account", "SVT_SLURM_ACCOUNT")):
        value = r.get(key) or os.environ.get(env)
        if value:
            out[key] = value
    if r.get("slurm_extra"):
        out["slurm_extra"] = r["slurm_extra"]
    return out


def launch(kind):
    """`svt`; torchrun with `processes` processes inside the job's single task; or, with several nodes (or
    tasks_per_node), srun starting one torchrun per task that meet at a c10d rendezvous on the job's first node."""
    r = res(kind)
    n, nodes, per_node = r["processes"], r["nodes"], r["tasks_per_node"]
    if nodes * per_node > 1:
        need = f'"${{SLURM_JOB_ID:?resources.{kind}.nodes / tasks_per_node above 1 need the slurm executor}}"'
        head = '$(scontrol show hostnames "$(squeue -h -j $SLURM_JOB_ID -o %N)" | head -n1)'
        return (f": {need}; srun --nodes {nodes} --ntasks {nodes * per_node} --ntasks-per-node {per_node} "
                f"torchrun --nnodes {nodes * per_node} --nproc_per_node {n} --rdzv-backend c10d "
                f"--rdzv-endpoint {head}:$((29500 + SLURM_JOB_ID % 20000)) --rdzv-id $SLURM_JOB_ID -m svt")
    return "svt" if n == 1 else f"torchrun --standalone --nproc_per_node {n} -m svt"


def spatial_init_input():
    return [] if config["spatial_init"]["source"] == "none" else ["resources/weights/spatial_init.pth"]


def model_checkpoint(wildcards):
    return {"svt": [PRETRAINED], "random": [], "spatial_init": spatial_init_input(),
            "release": ["resources/weights/release.pth"]}[wildcards.model]


def ablation_checkpoint(wildcards):
    return [] if wildcards.variant == "random" else [f"results/ablations/{wildcards.variant}/teacher.pth"]


def table_datasets(number):
    """The enabled benchmarks whose evaluations fill Table `number` (the registry's `tables`)."""
    return [d for d in benchmarks.feeding(f"table{number}") if d in ENABLED]


def table_metrics(wildcards):
    """The metrics JSONs a table reads: its datasets' runs that are enabled (the rest read "not run"). Ablation
    tables also read the random-init model under the ablation protocol (slow clip; Table 8 also slow-fast), the
    reference every row is compared with."""
    number = int(wildcards.number)
    baselines = config["evaluation"]["baselines"]
    if number <= 3:
        datasets = table_datasets(number)
        files = [f"results/eval/svt/{ds}_{p}.json" for ds in datasets for p in ("linear", "finetune")]
        return files + [f"results/eval/{b}/{ds}_linear.json" for b in baselines for ds in datasets]
    variants = config["ablations"]["tables"][f"table{number}"]
    suffixes = ["", "_slowfast"] if number == 8 else [""]
    datasets = table_datasets(number)
    files = [f"results/ablations/{v}/{ds}_linear{s}.json" for v in variants for ds in datasets for s in suffixes]
    if "random" in baselines:
        files += [f"results/ablations/random/{ds}_linear.json" for ds in datasets]
        files += [f"results/eval/random/{ds}_linear.json" for ds in datasets if number == 8]
    return files


def release_metrics(wildcards):
    datasets = table_datasets(wildcards.number)
    return [f"results/eval/release/{ds}_{p}.json" for ds in datasets for p in ("linear", "finetune")]


def table_sidecars(wildcards):
    """Tables read each run's pretraining settings from its checkpoint's .json sidecar."""
    number = int(wildcards.number)
    if number <= 3:
        return [f"{PRETRAINED}.json"] if table_datasets(number) else []
    if not table_datasets(number):
        return []
    return [f"results/ablations/{v}/teacher.pth.json" for v in config["ablations"]["tables"][f"table{number}"]]
