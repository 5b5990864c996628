# Validation, then the input functions (get_*) the rules share. Derived names are computed once here from the
# validated config (svt.workflow holds the logic, unit-tested without Snakemake).
import json
import re
import sys
from pathlib import Path
from types import SimpleNamespace

from svt import benchmarks
from svt import settings as typed
from svt import workflow as wf

wf.check(config)

# Every rule's software under --sdm conda (paths in rule files are relative to workflow/rules/).
CONDA_ENV = "../envs/svt.yaml"
BENCHMARKS = benchmarks.names()  # the registry (svt/benchmarks/, plus modules named in SVT_BENCHMARKS)
# A dataset is left out with `datasets.<name>.enabled: false` or by leaving its key out: none of its jobs is
# planned and its table cells read "not run". Your own videos: any other name under `datasets`.
ENABLED = wf.enabled_datasets(config)
DISABLED = wf.disabled_benchmarks(config)
# The pretraining set (paper: Kinetics-400); the pretrained teacher is named after any other.
PRETRAIN_SET = wf.pretrain_set(config)
PRETRAINED = "results/pretrain/svt.pth" if PRETRAIN_SET == "kinetics400" else f"results/pretrain/svt_{PRETRAIN_SET}.pth"
PRETRAIN_RUN = Path(PRETRAINED).stem
# The authors' released teacher (downloads.release): evaluated as model `release` by the `release` target.
RELEASE = "release" in config.get("downloads", {})
# Each training run's work folder (checkpoints, metrics.jsonl), as the rules' shell lines spell it (`--work`);
# training_curves reads the metrics logs from the same places.
WORK = {
    "spatial_init": "work/spatial_init",
    "pretrain": f"work/pretrain/{PRETRAIN_RUN}",
    "ablation": "work/ablations/{wildcards.variant}",
    "finetune": "work/finetune/{wildcards.model}/{wildcards.dataset}",
}


wildcard_constraints:
    dataset="|".join(re.escape(d) for d in ENABLED) or "no-dataset-enabled",
    model="svt|random|spatial_init" + ("|release" if RELEASE else ""),
    protocol="linear|finetune",


def job_settings(settings):
    """A job's settings as the inline JSON its command reads: typed settings complete, every default filled in."""
    return json.dumps(
        settings if isinstance(settings, dict) else typed.to_dict(settings),
        sort_keys=True,
    )


def get_dataset_root(wildcards):
    return wf.dataset_root(config, wildcards.dataset)


def enabled(dataset, needed_by):
    """The dataset's name, or a clear error when a planned job needs a dataset the config leaves out."""
    if dataset not in ENABLED:
        raise ValueError(
            f"config: {needed_by} needs {dataset}, but datasets.{dataset} is "
            f"{'absent' if dataset not in config['datasets'] else 'disabled (enabled: false)'}"
        )
    return dataset


def get_pretraining_data(needed_by, subset=""):
    """Input function: the pretraining set's index (or its ablation subset) and root (pretraining.dataset;
    Kinetics-400 in the paper, §4.1)."""

    def inputs(wildcards):
        name = enabled(PRETRAIN_SET, needed_by)
        return {
            "index": f"resources/index/{name}{subset}.parquet",
            "root": wf.dataset_root(config, name),
        }

    return inputs


PLACEMENT_WARNED = []


def get_placed_by_hand(wildcards):
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


def get_release_download():
    """downloads.release: where the released teacher comes from (url, or path to a copy) and its pinned sha256."""
    if not RELEASE:
        raise ValueError(
            "config: the release target evaluates the authors' released teacher; set "
            "downloads.release.url (or .path to a copy you have) as in config/paper.yaml"
        )
    return config["downloads"]["release"]


def get_attention_data(wildcards):
    name = enabled(config["figures"]["attention_dataset"], "Figure 3 (figures.attention_dataset)")
    return {
        "index": f"resources/index/{name}.parquet",
        "root": wf.dataset_root(config, name),
    }


def get_spatial_init():
    return [] if config["spatial_init"]["source"] == "none" else ["resources/weights/spatial_init.pth"]


def get_model_checkpoint(wildcards):
    return {
        "svt": [PRETRAINED],
        "random": [],
        "spatial_init": get_spatial_init(),
        "release": ["resources/weights/release.pth"],
    }[wildcards.model]


def get_ablation_checkpoint(wildcards):
    return [] if wildcards.variant == "random" else [f"results/ablations/{wildcards.variant}/teacher.pth"]


def table_datasets(number):
    """The enabled benchmarks whose evaluations fill Table `number` (the registry's `tables`)."""
    return [d for d in benchmarks.feeding(f"table{number}") if d in ENABLED]


def get_table_metrics(wildcards):
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


def get_release_metrics(wildcards):
    datasets = table_datasets(wildcards.number)
    return [f"results/eval/release/{ds}_{p}.json" for ds in datasets for p in ("linear", "finetune")]


def get_table_sidecars(wildcards):
    """Tables read each run's pretraining settings from its checkpoint's .json sidecar."""
    number = int(wildcards.number)
    if number <= 3:
        return [f"{PRETRAINED}.json"] if table_datasets(number) else []
    if not table_datasets(number):
        return []
    return [f"results/ablations/{v}/teacher.pth.json" for v in config["ablations"]["tables"][f"table{number}"]]


def metrics_log(kind, **wildcards):
    return WORK[kind].format(wildcards=SimpleNamespace(**wildcards)) + "/metrics.jsonl"


def training_runs():
    """label -> (the run's output, its metrics log) for every training run `all` makes: the spatial
    initialisation, SVT pretraining, each tabulated ablation and fine-tuning of SVT on each table 1-3 benchmark."""
    runs = {}
    if config["spatial_init"]["source"] == "image_pretraining":
        runs["spatial_init"] = ("resources/weights/spatial_init.pth", metrics_log("spatial_init"))
    if any(table_datasets(n) for n in range(1, 4)) or config["figures"]["attention_dataset"] in ENABLED:
        runs[f"pretrain_{PRETRAIN_RUN}"] = (PRETRAINED, metrics_log("pretrain"))
    for v in sorted({v for n in range(4, 9) if table_datasets(n) for v in config["ablations"]["tables"][f"table{n}"]}):
        runs[f"ablation_{v}"] = (f"results/ablations/{v}/teacher.pth", metrics_log("ablation", variant=v))
    for ds in sorted({ds for n in range(1, 4) for ds in table_datasets(n)}):
        runs[f"finetune_svt_{ds}"] = (
            f"results/eval/svt/{ds}_finetune.json",
            metrics_log("finetune", model="svt", dataset=ds),
        )
    return runs


TRAINING_RUNS = training_runs()


def get_learning_models(wildcards):
    """The learning check's models: SVT pretrained as configured, then each baseline (its controls)."""
    return ["svt", *config["evaluation"]["baselines"]]


def get_learning_checkpoints(wildcards):
    """Each model's checkpoint, read for its reversal sensitivity (`random` has none)."""
    return [c for m in get_learning_models(wildcards) for c in get_model_checkpoint(SimpleNamespace(model=m))]


def get_learning_metrics(wildcards):
    return [
        f"results/eval/{m}/{LEARNING_SET}_{p}.json" for m in get_learning_models(wildcards) for p in ("knn", "linear")
    ]
