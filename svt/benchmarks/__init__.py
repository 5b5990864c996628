"""The benchmark registry: one `Benchmark` spec per dataset, the only place benchmark names are listed.

A spec says everything the pipeline does with a benchmark: its on-disk layout and annotation reader (svt index),
how it is downloaded and extracted (svt download), its synthetic mini version (svt synth: codec, classes, file
names, annotation files), its class count and display name, and the paper tables its evaluations feed (svt
table and the workflow). The four of the paper live in this package, one module each (kinetics400.py, ucf101.py,
hmdb51.py, ssv2.py).

A new benchmark is one more spec: a module that calls `register(Benchmark(...))`, named in the environment
variable SVT_BENCHMARKS (comma-separated module names, importable from PYTHONPATH) so that every svt command
and the workflow load it. README.md, "Extending it", walks through one.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pandas as pd

BUILTIN = ("kinetics400", "ucf101", "hmdb51", "ssv2")
ABLATION_TABLES = ("table4", "table5", "table6", "table7", "table8")


@dataclass(frozen=True)
class Synthetic:
    """The benchmark's synthetic mini version (svt synth): same container, codec, layout and annotation format."""
    codec: str  # PyAV encoder
    suffix: str  # container, by file suffix
    stream: int  # random-stream number of its videos: with the seed, fixes every file
    classes: list[dict]  # class specs: motion / shape / colour fixed per class (absent = random per video)
    class_name: Callable[[dict], str]  # spec -> class name as the real benchmark writes it
    place: Callable[[dict, str], dict]  # record, digest -> fields it adds ("path", relative to the root, at least)
    write_annotations: Callable[[Path, list[dict]], None]  # root, records -> the annotation files


@dataclass(frozen=True)
class Benchmark:
    name: str  # key under `datasets` in the config, and in file names
    display: str  # its column in the tables
    classes: int  # at full scale
    read: Callable[[Path, int], pd.DataFrame]  # root, official split -> path, label, label_name, split
    listing: Callable[[str, int], str]  # "train" / "val", split -> where that split is listed (in messages)
    synthetic: Synthetic
    tables: tuple[str, ...]  # the paper tables its evaluations feed (table1-3: main, table4-8: ablations)
    # archives: downloads.<name> settings, work folder, parallel downloads -> {role: file(s)}
    download: Callable[[dict, Path, int], dict] | None = None
    extract: Callable[[dict, Path], dict] | None = None  # those files, staging folder -> manifest counts
    placed_by_hand: bool = False  # no download: the user places the files (SSv2), checked when planned


_REGISTRY: dict[str, Benchmark] = {}
_loaded: list[str] = []


def register(benchmark: Benchmark) -> Benchmark:
    """Add a benchmark. Table 1 and the ablation tables have a column group per benchmark; Tables 2 and 3 are
    each one benchmark's (Kinetics-400, SSv2)."""
    unknown = sorted(set(benchmark.tables) - {f"table{i}" for i in range(1, 9)})
    if unknown:
        raise ValueError(f"benchmark {benchmark.name}: no such table {unknown}; the paper has table1 ... table8")
    for table in ("table2", "table3"):
        other = [o.name for o in _REGISTRY.values() if table in o.tables and o.name != benchmark.name]
        if table in benchmark.tables and other:
            raise ValueError(f"benchmark {benchmark.name}: {table} is {other[0]}'s alone; a new benchmark feeds "
                             "table1 and the ablation tables (table4 ... table8)")
    _REGISTRY[benchmark.name] = benchmark
    return benchmark


def _load() -> None:
    """The paper's four, then the modules named in SVT_BENCHMARKS (once per process, on first use)."""
    modules = [f"svt.benchmarks.{name}" for name in BUILTIN]
    modules += [m.strip() for m in os.environ.get("SVT_BENCHMARKS", "").split(",") if m.strip()]
    for module in modules:
        if module not in _loaded:
            _loaded.append(module)
            try:
                importlib.import_module(module)
            except ImportError as e:
                raise ImportError(f"SVT_BENCHMARKS: cannot import benchmark module {module!r}: {e}") from e


def names() -> list[str]:
    _load()
    return list(_REGISTRY)


def get(name: str) -> Benchmark:
    _load()
    if name not in _REGISTRY:
        raise KeyError(f"unknown benchmark {name!r}; known: {', '.join(_REGISTRY)}")
    return _REGISTRY[name]


def feeding(table: str) -> list[str]:
    """The benchmarks whose evaluations fill `table`'s columns, in registry order."""
    return [n for n in names() if table in _REGISTRY[n].tables]


def display(name: str) -> str:
    """A benchmark's display name; any other dataset (your own videos) is shown by its name."""
    return get(name).display if name in names() else name
