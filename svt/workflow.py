"""What the Snakemake workflow decides from its config, as plain functions (unit-tested without Snakemake).

The workflow validates its config against the schema (svt.config), then calls `check` here for what a schema
cannot see (files that must exist, names that must agree), and builds every job's settings with the functions
below: each job gets its complete typed settings (svt.settings) as a parameter, so Snakemake reruns exactly the
jobs whose settings changed.
"""

from __future__ import annotations

import dataclasses
import os
import re
import signal
import sys
from pathlib import Path

from svt import benchmarks
from svt import settings as typed
from svt.config import ConfigError

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")


def leave_stop_signals_to_jobs() -> None:
    """SLURM's warning ahead of the time limit (`--signal=USR1@s`, resources.<kind>.warning_seconds) reaches every
    process of the job step: Snakemake itself, the shell it starts and svt. Snakemake ignores it (and so, by
    inheritance, does the shell; torchrun too), so they live on while svt, which handles it, finishes its step,
    checkpoints and exits; Snakemake then retries the job, which resumes from the checkpoint."""
    signal.signal(signal.SIGUSR1, signal.SIG_IGN)


def put_interpreter_on_path() -> None:
    """The rules call `svt`: find it beside the interpreter that runs Snakemake (a virtual environment used
    without activating it has its scripts there, not on PATH)."""
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"


# ---------------------------------------------------------------- the datasets

def dataset(config: dict, name: str) -> typed.Dataset:
    return typed.dataset(config["datasets"][name], name)


def own_datasets(config: dict) -> list[str]:
    """Your own videos: any name under `datasets` that is not a registered benchmark."""
    return [d for d in config["datasets"] if d not in benchmarks.names()]


def all_datasets(config: dict) -> list[str]:
    return benchmarks.names() + own_datasets(config)


def enabled_datasets(config: dict) -> list[str]:
    """A dataset is left out with `enabled: false` or by leaving its key out."""
    return [d for d in all_datasets(config) if d in config["datasets"] and dataset(config, d).enabled]


def disabled_benchmarks(config: dict) -> list[str]:
    return [d for d in benchmarks.names() if d not in enabled_datasets(config)]


def pretrain_set(config: dict) -> str:
    return typed.pretraining(config["pretraining"]).dataset


def source_root(config: dict, name: str) -> str:
    """Where a dataset's files are before any re-encoding."""
    ds = dataset(config, name)
    if ds.source == "local":
        return ds.path
    return f"resources/{'synthetic' if ds.source == 'synthetic' else 'data'}/{name}"


def dataset_root(config: dict, name: str) -> str:
    """The root every consumer reads: the re-encoded copy where `reencode` is set."""
    return f"resources/reencoded/{name}" if dataset(config, name).reencode else source_root(config, name)


def index_options(config: dict, name: str) -> str:
    """svt index's options: the official split for a benchmark, the layout and the split draw for your own."""
    ds = dataset(config, name)
    if name in benchmarks.names():
        return f"--split {ds.split}"
    extra = f" --csv {ds.csv}" if ds.layout == "csv" else ""
    return f"--layout {ds.layout}{extra} --val-fraction {ds.val_fraction} --seed {ds.seed}"


# ---------------------------------------------------------------- the check

def check(config: dict) -> None:
    """Raise ConfigError naming the key for what the schema cannot see, before any job."""
    for name in config["datasets"]:
        dataset(config, name)  # every entry builds (keys and types were checked by the schema)
    _check_own(config)
    _check_sources(config)
    _check_downloads(config)
    _check_evaluation(config)


def _check_own(config: dict) -> None:
    for name in own_datasets(config):
        ds = dataset(config, name)
        if not NAME.fullmatch(name):
            raise ConfigError(f"config: datasets.{name}: use letters, digits, '_' and '-' (the name names files)")
        if ds.source != "local" or ds.layout is None:
            raise ConfigError(f"config: datasets.{name}: your own videos need source: local, a path and a layout "
                              f"(folders or csv); the benchmarks are {', '.join(benchmarks.names())}")
        if ds.layout == "csv" and ds.csv is None:
            raise ConfigError(f"config: datasets.{name}.csv is required with layout: csv (the path,label[,split] "
                              "file)")
        if ds.layout == "csv" and not Path(ds.csv).is_file():
            raise ConfigError(f"config: datasets.{name}.csv = {ds.csv!r} is not a file")
    for name in benchmarks.names():
        if name in config["datasets"] and dataset(config, name).layout is not None:
            raise ConfigError(f"config: datasets.{name}.layout: {name} is a benchmark with its own layout; give "
                              "your dataset another name")
    if pretrain_set(config) not in all_datasets(config):
        raise ConfigError(f"config: pretraining.dataset = {pretrain_set(config)!r} is not under datasets "
                          f"({', '.join(all_datasets(config))})")


def _check_sources(config: dict) -> None:
    from svt.datasets import AnnotationError, read_layout

    for name in enabled_datasets(config):
        ds = dataset(config, name)
        if ds.source == "local":
            if ds.path is None:
                raise ConfigError(f"config: datasets.{name}.path is required when datasets.{name}.source is local")
            if not Path(ds.path).is_dir():
                raise ConfigError(f"config: datasets.{name}.path = {ds.path!r} is not a directory")
        if ds.source == "synthetic" and "synthetic" not in config:
            raise ConfigError(f"config: datasets.{name}.source is synthetic but there is no `synthetic` section")
        if name in own_datasets(config):
            try:  # the listing only (no decoding): a bad file, row or split file stops before any job
                read_layout(ds.layout, ds.path, ds.csv, f"resources/index/{name}.split.csv", ds.val_fraction,
                            ds.seed, write=False)
            except AnnotationError as e:
                raise ConfigError(f"config: datasets.{name}: {e}") from None


def _check_downloads(config: dict) -> None:
    downloading = [n for n in enabled_datasets(config) if dataset(config, n).source == "download"]
    if (downloading or config["spatial_init"]["source"] == "download") and "downloads" not in config:
        raise ConfigError(f"config: datasets {downloading} / spatial_init have source download but there is no "
                          "`downloads` section (see config/paper.yaml)")
    for name in downloading:
        if name not in config["downloads"]:
            raise ConfigError(f"config: datasets.{name}.source is download but downloads.{name} is missing")


def _check_evaluation(config: dict) -> None:
    if "spatial_init" in config["evaluation"]["baselines"] and config["spatial_init"]["source"] == "none":
        raise ConfigError("config: evaluation.baselines lists spatial_init but spatial_init.source is none")
    variants = config["ablations"]["variants"]
    if "random" in variants:
        raise ConfigError("config: ablations.variants.random: `random` names the random-init reference; rename it")
    unknown = {v for listed in config["ablations"]["tables"].values() for v in listed} - set(variants)
    if unknown:
        raise ConfigError(f"config: ablations.tables name unknown variants {sorted(unknown)}; "
                          f"defined: {sorted(variants)}")
    for variant in variants:
        pretraining_settings(config, variant)  # a variant's keys build (e.g. a partial view family)


# ---------------------------------------------------------------- each job's settings

def pretraining_settings(config: dict, variant: str | None = None) -> typed.Pretraining:
    """The main run's settings, or an ablation variant's: its keys over the main run's, the ablations' epochs."""
    s = typed.pretraining({**config["pretraining"], "model": config["model"], "dataset": pretrain_set(config),
                           "tracking": config.get("tracking", {})})
    if not dataset(config, pretrain_set(config)).flip:  # flip-sensitive classes (SSv2): no mirrored views either
        s = dataclasses.replace(s, augment=dataclasses.replace(s.augment, flip=False))
    if variant is None:
        return s
    s = typed.build(s, config["ablations"]["variants"][variant], f"ablations.variants.{variant}")
    return dataclasses.replace(s, optim=dataclasses.replace(s.optim, epochs=config["ablations"]["epochs"]))


def image_pretraining_settings(config: dict) -> typed.Pretraining:
    """Spatial initialisation for scales without the DINO ImageNet download: the same self-distillation on
    single frames (every view one frame), i.e. an image DINO on the pretraining videos' frames."""
    s = pretraining_settings(config)
    single = {f: dataclasses.replace(getattr(s.views, f), frames=(1,) * getattr(s.views, f).count)
              for f in ("global_views", "local_views")}
    epochs = config["spatial_init"]["epochs"]
    optim = dataclasses.replace(s.optim, epochs=epochs, warmup_epochs=min(s.optim.warmup_epochs, epochs - 1))
    return dataclasses.replace(s, views=dataclasses.replace(s.views, **single), optim=optim)


def evaluation_settings(config: dict, name: str, slow_fast: bool = True) -> typed.Evaluation:
    ev = {k: v for k, v in config["evaluation"].items() if k != "baselines"}
    return typed.evaluation({**ev, "model": config["model"], "flip": dataset(config, name).flip,
                             "slow_fast": slow_fast, "tracking": config.get("tracking", {})})
