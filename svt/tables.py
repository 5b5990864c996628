"""`svt table`: the paper's Tables 1-8 with the published numbers and this run's reproduced numbers side by side.

Published rows come from svt/data/paper_tables.yaml (typed once from the paper). Reproduced numbers come only
from metrics JSONs (svt linear / svt finetune) given on the command line, in columns named "... (reproduced)";
nothing measured is written into a published column and nothing published into a reproduced one. Which published
row a run reproduces is read from the run itself: its pretraining settings (the checkpoint's .json sidecar) for
Tables 4-7, its slow_fast flag for Table 8, its model name for Tables 1-3. Table 1's TFLOPs, resolutions and
epochs for the reproduced SVT row are computed from those settings and the model (svt.flops), not typed.
"""

from __future__ import annotations

import json
import logging
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from svt.augment import AugmentConfig
from svt.flops import inference_macs
from svt.io import atomic_write
from svt.model import backbone_config
from svt.views import ViewConfig

log = logging.getLogger("svt.tables")

PUBLISHED = yaml.safe_load(resources.files("svt").joinpath("data/paper_tables.yaml").read_text())
DATASET_COLUMNS = {"ucf101": "UCF-101", "hmdb51": "HMDB-51", "kinetics400": "Kinetics-400", "ssv2": "SSv2"}
PROTOCOL_COLUMNS = {"linear": "Linear", "finetune": "Fine-tune"}
BASELINE_ROWS = {"random": "Random init (same protocol)", "spatial_init": "Spatial init only, no video pretraining"}
SVT_ROW = {"table1": "SVT (Ours)", "table2": "SVT (Ours)", "table3": "SVT (Ours)"}


def load_run(path: str) -> dict:
    """A metrics JSON plus the pretraining settings of the checkpoint it evaluated (None for `random`)."""
    m = json.loads(Path(path).read_text())
    sidecar = Path(m["checkpoint"]["checkpoint"] + ".json")
    m["pretraining"] = json.loads(sidecar.read_text()) if sidecar.exists() else None
    m["path"] = str(path)
    return m


def pretraining_parts(pre: dict) -> tuple:
    """Backbone, views and augmentations of a run from its recorded settings; unset keys take the same defaults
    as svt pretrain did (the dataclasses), so no default is repeated here."""
    model = dict(pre["model"])
    bcfg = backbone_config(model.pop("preset"), **model)
    return bcfg, ViewConfig.from_dict(pre.get("views", {})), AugmentConfig.from_dict(pre.get("augment", {}))


def ablation_key(table: str, run: dict):
    """The published row a run reproduces, as that row's leading cells."""
    if table == "table8":
        return [run["slow_fast"]]
    pre = run["pretraining"]["config"]
    _, views, aug = pretraining_parts(pre)
    if table == "table4":
        c = pre["correspondences"]
        return [c["local_to_global"], c["global_to_global"], c["local_to_local"], c["global_to_local"]]
    if table == "table5":
        return [views.spatial_variation, views.temporal_variation]
    if table == "table6":
        return ["Ours + TIS" if views.sampler == "tis" else "Ours + MC"]
    if table == "table7":
        return ["w TCA" if aug.temporally_consistent else "w/o TCA"]
    raise ValueError(table)


def reproduced_cell(run: dict) -> float:
    return round(run["top1"], 2)


def ablation_table(table: str, runs: list[dict], scale: str) -> pd.DataFrame:
    spec = PUBLISHED[table]
    lead = len(spec["columns"]) - 2
    df = pd.DataFrame(spec["rows"], columns=spec["columns"])
    for ds in ("UCF-101", "HMDB-51"):
        df[f"{ds} (reproduced)"] = float("nan")
    df["run"] = ""
    for run in runs:
        key = ablation_key(table, run)
        hit = [i for i, row in enumerate(spec["rows"]) if row[:lead] == key]
        if not hit:
            raise ValueError(f"{run['path']}: its settings {key} match no row of {table} ({spec['columns'][:lead]})")
        col = f"{DATASET_COLUMNS[run['dataset']]} (reproduced)"
        df.loc[hit[0], col] = reproduced_cell(run)
        df.loc[hit[0], "run"] = Path(run["checkpoint"]["checkpoint"]).parent.name
    df["scale"] = scale
    return df.rename(columns={c: f"{c} (published)" for c in ("UCF-101", "HMDB-51")})


def svt_run_columns(run: dict) -> dict:
    """Table 1's descriptive columns for our run, computed from its settings and model."""
    pre = run["pretraining"]["config"]
    bcfg, views, _ = pretraining_parts(pre)
    macs = inference_macs(bcfg, [tuple(c) for c in run["clips"]], run["crops"])
    global_frames = views.global_views.frames
    return {"TFLOPs (reproduced)": float(f"{macs / 1e12:.4g}"), "S-Res (reproduced)": run["clips"][0][1],
            "T-Res (reproduced)": max(global_frames), "Epochs (reproduced)": pre["optim"]["epochs"]}


def main_table(table: str, runs: list[dict], scale: str) -> pd.DataFrame:
    spec = PUBLISHED[table]
    df = pd.DataFrame(spec["rows"], columns=spec["columns"])
    measured = [c for c in spec["columns"] if any(p in c for p in PROTOCOL_COLUMNS.values())]
    for name, label in BASELINE_ROWS.items():
        if any(r["model"] == name for r in runs):
            df.loc[len(df), "Method"] = label
    df = df.rename(columns={c: f"{c} (published)" for c in measured})
    for c in measured:
        df[f"{c} (reproduced)"] = float("nan")
    for run in runs:
        label = SVT_ROW[table] if run["model"] == "svt" else BASELINE_ROWS.get(run["model"])
        if label is None:
            raise ValueError(f"{run['path']}: model {run['model']!r} has no row in {table}")
        row = df.index[df["Method"] == label][0]
        col = PROTOCOL_COLUMNS[run["protocol"]]
        if table == "table1":
            col = f"{DATASET_COLUMNS[run['dataset']]} {col}"
            if run["model"] == "svt":
                for k, v in svt_run_columns(run).items():
                    df.loc[row, k] = v
        df.loc[row, f"{col} (reproduced)"] = reproduced_cell(run)
    df["scale"] = scale
    return df


def build(number: int, metrics: list[str], scale: str) -> pd.DataFrame:
    table = f"table{number}"
    if table not in PUBLISHED:
        raise ValueError(f"no table {number}; the paper has tables 1-8")
    runs = [load_run(p) for p in metrics]
    df = main_table(table, runs, scale) if number <= 3 else ablation_table(table, runs, scale)
    return df.convert_dtypes()  # integer columns stay integers where a cell is empty


def to_markdown(df: pd.DataFrame, caption: str) -> str:
    def cell(v):
        if isinstance(v, (bool, np.bool_)):
            return "✓" if v else "✗"
        if v is None or v is pd.NA or (isinstance(v, float) and pd.isna(v)):
            return "-"
        return str(v)

    lines = [f"**{caption}**", "", "| " + " | ".join(df.columns) + " |", "|" + "---|" * len(df.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def add_table_arguments(p):
    p.add_argument("--number", type=int, required=True, help="paper table number (1-8)")
    p.add_argument("--metrics", nargs="*", default=[], help="metrics JSONs of this run (svt linear / finetune)")
    p.add_argument("--scale", required=True, help="which scale produced the reproduced numbers (demo / paper)")
    p.add_argument("--out", required=True, help="CSV; a Markdown twin is written beside it (.md)")


def run_table(args) -> int:
    df = build(args.number, args.metrics, args.scale)
    out = Path(args.out)
    atomic_write(out, lambda tmp: df.to_csv(tmp, index=False))
    caption = f"Table {args.number}. {PUBLISHED[f'table{args.number}']['caption']} Reproduced: scale {args.scale}."
    atomic_write(out.with_suffix(".md"), lambda tmp: Path(tmp).write_text(to_markdown(df, caption)))
    print(df.to_string(index=False))
    return 0


def compute_table(benchmarks: list[str], gpus: dict[str, int], sidecars: dict[str, str]) -> pd.DataFrame:
    """One row per rule from Snakemake's benchmark files (benchmarks/<rule>/<job>.tsv): jobs, wall, CPU and
    device hours, peak memory, and, for pretraining jobs given a sidecar, backbone MACs of the whole run."""
    from svt.flops import pretraining_step_macs

    rows = []
    for path in benchmarks:
        b = pd.read_csv(path, sep="\t").iloc[-1]
        rule = Path(path).parent.name
        macs = float("nan")
        if path in sidecars:
            meta = json.loads(Path(sidecars[path]).read_text())
            pre = meta["config"]
            bcfg, views, _ = pretraining_parts(pre)
            g, loc = views.global_views, views.local_views
            macs = pretraining_step_macs(bcfg, [(t, g.size) for t in g.frames], [(t, loc.size) for t in loc.frames]) \
                * pre["optim"]["batch_size"] * meta["iterations"]
        rows.append({"rule": rule, "job": Path(path).stem, "wall_h": b["s"] / 3600,
                     "cpu_h": float(b["cpu_time"]) / 3600 if pd.notna(b["cpu_time"]) else float("nan"),
                     "device_h": gpus.get(rule, 0) * b["s"] / 3600, "max_rss_mb": b["max_rss"], "macs": macs})
    jobs = pd.DataFrame(rows, columns=["rule", "job", "wall_h", "cpu_h", "device_h", "max_rss_mb", "macs"])
    per_rule = jobs.groupby("rule").agg(jobs=("job", "count"), wall_h=("wall_h", "sum"), cpu_h=("cpu_h", "sum"),
                                        device_h=("device_h", "sum"), max_rss_mb=("max_rss_mb", "max"),
                                        macs=("macs", lambda m: m.sum(min_count=1))).reset_index()
    total = per_rule.drop(columns="rule").sum(numeric_only=True, min_count=1)
    per_rule.loc[len(per_rule)] = {"rule": "TOTAL", **total.to_dict()}
    return per_rule


def add_compute_arguments(p):
    p.add_argument("--benchmarks", nargs="+", required=True, help="Snakemake benchmark TSVs (benchmarks/<rule>/*)")
    p.add_argument("--gpus", nargs="*", default=[], metavar="RULE=N", help="GPUs per job of a rule")
    p.add_argument("--sidecar", nargs=2, action="append", default=[], metavar=("BENCHMARK", "JSON"),
                   help="a pretraining job's benchmark file and its checkpoint's .json (for MACs)")
    p.add_argument("--out", required=True)


def run_compute(args) -> int:
    gpus = {k: int(v) for k, v in (g.split("=", 1) for g in args.gpus)}
    df = compute_table(args.benchmarks, gpus, dict(args.sidecar))
    atomic_write(args.out, lambda tmp: df.to_csv(tmp, index=False))
    print(df.to_string(index=False))
    return 0
