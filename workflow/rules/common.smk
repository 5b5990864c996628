# Helpers shared by the rules: dataset roots, per-job settings (passed inline so that Snakemake sees each job's
# settings as a parameter and reruns exactly the jobs whose settings changed), resources, launchers.
import json
import os
from pathlib import Path

from svt.config import merge

# Every rule's software under --sdm conda (paths in rule files are relative to workflow/rules/).
CONDA_ENV = "../envs/svt.yaml"
DATASETS = ["kinetics400", "ucf101", "hmdb51", "ssv2"]
EVAL_DATASETS = {"table1": ["ucf101", "hmdb51"], "table2": ["kinetics400"], "table3": ["ssv2"]}
ABLATION_DATASETS = ["ucf101", "hmdb51"]


wildcard_constraints:
    dataset="|".join(DATASETS),
    model="svt|random|spatial_init",
    variant="|".join(config["ablations"]["variants"]),
    protocol="linear|finetune",


def check_config():
    """Fail before any job, naming the key, for what the schema cannot see."""
    for name, ds in config["datasets"].items():
        if ds["source"] == "local":
            if "path" not in ds:
                raise ValueError(f"config: datasets.{name}.path is required when datasets.{name}.source is local")
            if not Path(ds["path"]).is_dir():
                raise ValueError(f"config: datasets.{name}.path = {ds['path']!r} is not a directory")
        if ds["source"] == "synthetic" and "synthetic" not in config:
            raise ValueError(f"config: datasets.{name}.source is synthetic but there is no `synthetic` section")
    downloading = [n for n, ds in config["datasets"].items() if ds["source"] == "download"]
    if (downloading or config["spatial_init"]["source"] == "download") and "downloads" not in config:
        raise ValueError(f"config: datasets {downloading} / spatial_init have source download but there is no "
                         "`downloads` section (see config/paper.yaml)")
    for name in downloading:
        if name not in config["downloads"]:
            raise ValueError(f"config: datasets.{name}.source is download but downloads.{name} is missing")
    if config["datasets"]["ssv2"]["source"] == "download":
        from svt.download import check_ssv2_placement

        check_ssv2_placement(Path(config["downloads"]["ssv2"]["placed"]))
    if "spatial_init" in config["evaluation"]["baselines"] and config["spatial_init"]["source"] == "none":
        raise ValueError("config: evaluation.baselines lists spatial_init but spatial_init.source is none")
    used = {v for variants in config["ablations"]["tables"].values() for v in variants}
    unknown = used - set(config["ablations"]["variants"])
    if unknown:
        raise ValueError(f"config: ablations.tables name unknown variants {sorted(unknown)}; "
                         f"defined: {sorted(config['ablations']['variants'])}")


check_config()


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
    return json.dumps(obj, sort_keys=True)


def pretraining_settings(variant=None):
    cfg = merge(config["pretraining"], {"model": config["model"]})
    if variant is not None:
        cfg = merge(cfg, config["ablations"]["variants"][variant])
        cfg["optim"] = {**cfg.get("optim", {}), "epochs": config["ablations"]["epochs"]}
    return cfg


def image_pretraining_settings():
    """Spatial initialisation for scales without the DINO ImageNet download: the same self-distillation on
    single frames (every view one frame), i.e. an image DINO on the pretraining videos' frames."""
    cfg = pretraining_settings()
    for family in ("global_views", "local_views"):
        cfg["views"][family]["frames"] = [1] * len(cfg["views"][family]["frames"])
    cfg["optim"] = {**cfg["optim"], "epochs": config["spatial_init"]["epochs"],
                    "warmup_epochs": min(cfg["optim"].get("warmup_epochs", 0), config["spatial_init"]["epochs"] - 1)}
    return cfg


def evaluation_settings(dataset, slow_fast=True):
    ev = {k: v for k, v in config["evaluation"].items() if k != "baselines"}
    return {**ev, "model": config["model"], "flip": config["datasets"][dataset]["flip"], "slow_fast": slow_fast}


def res(kind):
    return {**config["resources"]["default"], **config["resources"].get(kind, {})}


def slurm_resources(kind):
    """Resources for the executor: runtime grows with the attempt (retries); GPUs as `gpu` + cpus_per_gpu,
    tasks left unset so the plugin runs one task (torchrun starts the processes)."""
    r = res(kind)
    out = {"mem_mb": r["mem_mb"], "runtime": lambda wildcards, attempt: r["runtime"] * attempt}
    if r["gpus"]:
        out["gpu"] = r["gpus"]
        if r["cpus_per_gpu"]:
            out["cpus_per_gpu"] = r["cpus_per_gpu"]
    for key, env in (("slurm_partition", "SVT_SLURM_PARTITION"), ("slurm_account", "SVT_SLURM_ACCOUNT")):
        value = r.get(key) or os.environ.get(env)
        if value:
            out[key] = value
    if r.get("slurm_extra"):
        out["slurm_extra"] = r["slurm_extra"]
    return out


def launch(kind):
    """`svt`, or torchrun with one process per GPU (or per `processes`) inside the job's single task."""
    n = res(kind)["processes"]
    return "svt" if n == 1 else f"torchrun --standalone --nproc_per_node {n} -m svt"


def spatial_init_input():
    return [] if config["spatial_init"]["source"] == "none" else ["resources/weights/spatial_init.pth"]


def model_checkpoint(wildcards):
    return {"svt": ["results/pretrain/svt.pth"], "random": [], "spatial_init": spatial_init_input()}[wildcards.model]


def table_metrics(wildcards):
    number = int(wildcards.number)
    if number <= 3:
        table = f"table{number}"
        protocols = ["linear", "finetune"]
        files = [f"results/eval/svt/{ds}_{p}.json" for ds in EVAL_DATASETS[table] for p in protocols]
        files += [f"results/eval/{b}/{ds}_linear.json" for b in config["evaluation"]["baselines"]
                  for ds in EVAL_DATASETS[table]]
        return files
    variants = config["ablations"]["tables"][f"table{number}"]
    suffixes = ["", "_slowfast"] if number == 8 else [""]
    return [f"results/ablations/{v}/{ds}_linear{s}.json" for v in variants for ds in ABLATION_DATASETS
            for s in suffixes]


def table_sidecars(wildcards):
    """Tables read each run's pretraining settings from its checkpoint's .json sidecar."""
    number = int(wildcards.number)
    if number <= 3:
        return ["results/pretrain/svt.pth.json"]
    return [f"results/ablations/{v}/teacher.pth.json" for v in config["ablations"]["tables"][f"table{number}"]]
