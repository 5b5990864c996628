"""`svt table`: the paper's Tables 1-8 with the published numbers and this run's reproduced numbers side by side.

Published rows come from svt/published/paper_tables.yaml (typed once from the paper). Reproduced numbers come only
from metrics JSONs (svt linear / svt finetune) given on the command line, in columns named "... (reproduced)";
nothing measured is written into a published column and nothing published into a reproduced one. Which published
row a run reproduces is read from the run itself: its pretraining settings (the checkpoint's .json sidecar) for
Tables 4-7, its slow_fast flag for Table 8, its model name for Tables 1-3. Table 1's TFLOPs, resolutions and
epochs for the reproduced SVT row are computed from those settings and the model (svt.flops), not typed.

Every reproduced top-1 carries its 95% Wilson interval over the test videos and says whether it is above chance,
above the random-init model and (ablations) above the baseline row beyond the interval of the difference
(svt.stats); a dataset disabled in the config reads "not run". `--released` builds Tables 1-3 of the authors'
released teacher in columns "(reproduced, released weights)". Written as CSV (one column per number), Markdown
and HTML (number, interval and comparisons in one cell, the caption with the test-video counts).
"""

from __future__ import annotations

import html
import json
import logging
import re
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from svt import benchmarks, settings, stats
from svt.flops import inference_macs
from svt.io import atomic_write
from svt.model import backbone_config

log = logging.getLogger("svt.tables")

PUBLISHED = yaml.safe_load(resources.files("svt").joinpath("published/paper_tables.yaml").read_text())
PROTOCOL_COLUMNS = {"linear": "Linear", "finetune": "Fine-tune"}
BASELINE_ROWS = {"random": "Random init (same protocol)", "spatial_init": "Spatial init only, no video pretraining"}
SVT_ROW = {"table1": "SVT (Ours)", "table2": "SVT (Ours)", "table3": "SVT (Ours)"}
REPRODUCED = "reproduced"
RELEASED = "reproduced, released weights"
REPRODUCED_COLUMN = re.compile(r".* \((reproduced|reproduced, released weights)\)")
NOT_RUN = "not run"


def load_run(path: str) -> dict:
    """A metrics JSON plus the pretraining settings of the checkpoint it evaluated (None for `random`)."""
    m = json.loads(Path(path).read_text())
    sidecar = Path(m["checkpoint"]["checkpoint"] + ".json")
    m["pretraining"] = json.loads(sidecar.read_text()) if sidecar.exists() else None
    m["path"] = str(path)
    return m


def pretraining_parts(pre: dict) -> tuple:
    """Backbone and typed settings of a run from its recorded settings; unset keys take the same defaults as
    svt pretrain did (svt.settings), so no default is repeated here."""
    s = settings.pretraining(pre)
    return backbone_config(s.model.preset, num_frames=s.model.num_frames, img_size=s.model.img_size,
                           drop_path_rate=s.model.drop_path_rate), s


def ablation_key(table: str, run: dict):
    """The published row a run reproduces, as that row's leading cells."""
    if table == "table8":
        return [run["slow_fast"]]
    _, s = pretraining_parts(run["pretraining"]["config"])
    views, aug = s.views, s.augment
    if table == "table4":
        c = s.correspondences
        return [c.local_to_global, c.global_to_global, c.local_to_local, c.global_to_local]
    if table == "table5":
        return [views.spatial_variation, views.temporal_variation]
    if table == "table6":
        return ["Ours + TIS" if views.sampler == "tis" else "Ours + MC"]
    if table == "table7":
        return ["w TCA" if aug.temporally_consistent else "w/o TCA"]
    raise ValueError(table)


class Cells:
    """The reproduced numbers of one table: where each run lands, its interval, and how it compares.

    Every top-1 gets its Wilson interval from the run's own counts (top-1 and videos evaluated). A cell is compared
    with chance (is the interval above 100 / classes?), with the random-init run of the same dataset, protocol and
    clips, and in ablation tables with the paper's baseline row (the `baseline` variant, single view): "above" /
    "below" when the Newcombe interval of the difference excludes 0, "within" otherwise (svt.stats).
    """

    def __init__(self, table: str):
        self.table = table
        self.cells: dict[tuple[int, str], dict] = {}
        self.not_run: set[tuple[int, str]] = set()

    def put(self, row: int, column: str, run: dict) -> None:
        self.cells[(row, column)] = run

    def reference(self, run: dict, model: str, slow_fast: bool | None = None) -> dict | None:
        for other in self.cells.values():
            if other["model"] == model and other["dataset"] == run["dataset"] and other is not run \
                    and other["protocol"] == "linear" and run["protocol"] == "linear" \
                    and other["slow_fast"] == (run["slow_fast"] if slow_fast is None else slow_fast):
                return other
        return None

    def describe(self, run: dict, references: list[tuple[str, dict | None]]) -> dict:
        n, top1 = run["videos_evaluated"], run["top1"]
        k, low, high = stats.top1_interval(top1, n)
        out = {"": round(top1, 2), "low": round(low, 2), "high": round(high, 2), "n": n,
               "vs chance": stats.compare((low, high), run["chance_top1"])}
        for name, ref in references:
            if ref is None or ref is run:
                out[f"vs {name}"] = ""
                continue
            kr = stats.correct(ref["top1"], ref["videos_evaluated"])
            out[f"vs {name}"] = stats.compare(stats.newcombe(k, n, kr, ref["videos_evaluated"]))
        return out

    def write(self, df: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
        """df with, after each reproduced column C: C low / high (95%), C n, C vs chance / random init [/ baseline]."""
        ablation = self.table not in ("table1", "table2", "table3")
        parts = ["", "low", "high", "n", "vs chance", "vs random init"] + (["vs baseline"] if ablation else [])
        values = {(row, col): self.describe(run, [
            ("random init", self.reference(run, "random")),
            *([("baseline", self.reference(run, "baseline", slow_fast=False))] if ablation else [])])
            for (row, col), run in self.cells.items() if row >= 0}  # rows < 0: references only
        out = df.copy()
        for col in columns:
            for part in parts:
                name = f"{col} {part}".rstrip()
                out[name] = pd.Series([pd.NA] * len(out), dtype="object")
                for (row, c), v in values.items():
                    if c == col:
                        out.at[row, name] = v[part]
                for row, c in self.not_run:
                    if c == col and part == "":
                        out.at[row, name] = NOT_RUN
        return out


def display(df: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """The table for reading (Markdown, HTML): each reproduced number as `top-1 [low-high]` and its comparisons
    (`>chance`, `≈random`, ...), the detail columns folded in."""
    marks = {"above": ">", "below": "<", "within": "≈"}
    out = df.copy()
    for col in columns:
        detail = [c for c in df.columns if c.startswith(f"{col} ") and c != col]

        def fold(row):
            v = row[col]
            if v is pd.NA or v is None or (isinstance(v, float) and pd.isna(v)) or v == NOT_RUN:
                return v
            text = f"{float(v):.2f} [{float(row[f'{col} low']):.1f}–{float(row[f'{col} high']):.1f}]"
            for what in ("chance", "random init", "baseline"):
                verdict = row.get(f"{col} vs {what}")
                if isinstance(verdict, str) and verdict:
                    text += f" {marks[verdict]}{what.split()[0]}"
            return text

        out[col] = df.apply(fold, axis=1)
        out = out.drop(columns=detail)
    return out


def reproduced_columns(df: pd.DataFrame) -> list[str]:
    """The reproduced top-1 columns (not Table 1's descriptive ones such as `TFLOPs (reproduced)`)."""
    return [c for c in df.columns if REPRODUCED_COLUMN.fullmatch(c) and f"{c} low" in df.columns]


def our_rows(df: pd.DataFrame, labels: list[str]) -> list[int]:
    return [i for i in df.index if df.at[i, "Method"] in labels]


def ablation_row(df: pd.DataFrame, lead: int, key: list, variant: str) -> int:
    """The row of `variant`: the published row with its settings that no other variant took, else a row of its
    own (published cells empty), so a variant that is not in the paper is tabulated all the same."""
    for i in df.index:
        if [df.iat[i, j] for j in range(lead)] == key and df.at[i, "run"] in ("", variant):
            df.at[i, "run"] = variant
            return i
    df.loc[len(df)] = [*key, *[pd.NA] * (len(df.columns) - lead - 1), variant]
    return len(df) - 1


def ablation_table(table: str, runs: list[dict], scale: str, not_run: list[str]) -> pd.DataFrame:
    spec = PUBLISHED[table]
    lead = len(spec["columns"]) - 2
    df = pd.DataFrame(spec["rows"], columns=spec["columns"])
    df["run"] = ""
    cells = Cells(table)
    for run in runs:
        col = f"{benchmarks.display(run['dataset'])} ({REPRODUCED})"
        if run["model"] == "random":  # the reference every row is compared with, not a row of the paper
            cells.put(-1 - len(cells.cells), col, run)
            continue
        cells.put(ablation_row(df, lead, ablation_key(table, run), Path(run["checkpoint"]["checkpoint"]).parent.name),
                  col, run)
    ran = [i for i in df.index if df.at[i, "run"]] or list(df.index)
    datasets = benchmarks.feeding(table)
    columns = [f"{benchmarks.display(d)} ({REPRODUCED})" for d in datasets]
    for name in not_run:
        if name in datasets:
            cells.not_run |= {(i, f"{benchmarks.display(name)} ({REPRODUCED})") for i in ran}
    df = df.rename(columns={c: f"{c} (published)" for c in spec["columns"][lead:]})
    df = cells.write(df, columns)
    df["scale"] = scale
    return df


def svt_run_columns(run: dict) -> dict:
    """Table 1's descriptive columns for our run, computed from its settings and model."""
    bcfg, s = pretraining_parts(run["pretraining"]["config"])
    macs = inference_macs(bcfg, [tuple(c) for c in run["clips"]], run["crops"])
    global_frames = s.views.global_views.frames
    return {"TFLOPs (reproduced)": float(f"{macs / 1e12:.4g}"), "S-Res (reproduced)": run["clips"][0][1],
            "T-Res (reproduced)": max(global_frames), "Epochs (reproduced)": s.optim.epochs}


def measured_columns(table: str) -> list[str]:
    """A main table's top-1 columns: the published ones, then (Table 1, one column group per benchmark) those of
    benchmarks the paper does not have, which get reproduced numbers only."""
    published = [c for c in PUBLISHED[table]["columns"] if any(p in c for p in PROTOCOL_COLUMNS.values())]
    if table != "table1":
        return published
    extra = [f"{benchmarks.display(d)} {p}" for d in benchmarks.feeding(table) for p in PROTOCOL_COLUMNS.values()]
    return published + [c for c in extra if c not in published]


def main_table(table: str, runs: list[dict], scale: str, not_run: list[str], baselines: list[str],
               released: bool) -> pd.DataFrame:
    """Tables 1-3. `released`: the SVT row is the authors' released teacher (model `release`), in columns
    "(reproduced, released weights)"; otherwise our pretrained SVT, in "(reproduced)"."""
    spec = PUBLISHED[table]
    suffix = RELEASED if released else REPRODUCED
    df = pd.DataFrame(spec["rows"], columns=spec["columns"])
    measured = measured_columns(table)
    for name, label in BASELINE_ROWS.items():
        if not released and (name in baselines or any(r["model"] == name for r in runs)):
            df.loc[len(df), "Method"] = label
    df = df.rename(columns={c: f"{c} (published)" for c in measured if c in spec["columns"]})
    ours = "release" if released else "svt"
    cells = Cells(table)
    for run in runs:
        col = PROTOCOL_COLUMNS[run["protocol"]]
        col = f"{benchmarks.display(run['dataset'])} {col} ({suffix})" if table == "table1" else f"{col} ({suffix})"
        if released and run["model"] == "random":  # a reference for the comparisons, not a released-weights row
            cells.put(-1 - len(cells.cells), col, run)
            continue
        label = SVT_ROW[table] if run["model"] == ours else BASELINE_ROWS.get(run["model"])
        if label is None:
            raise ValueError(f"{run['path']}: model {run['model']!r} has no row in {table} "
                             f"({'released-weights' if released else 'reproduced'} table)")
        row = df.index[df["Method"] == label][0]
        if run["model"] == "svt" and table == "table1":
            for k, v in svt_run_columns(run).items():
                df.loc[row, k] = v
        cells.put(row, col, run)
    rows = our_rows(df, [SVT_ROW[table], *(BASELINE_ROWS[b] for b in baselines if not released)])
    for name in not_run:
        for c in measured:
            if name in benchmarks.feeding(table) and (table != "table1"
                                                      or c.startswith(f"{benchmarks.display(name)} ")):
                cells.not_run |= {(r, f"{c} ({suffix})") for r in rows}
    df = cells.write(df, [f"{c} ({suffix})" for c in measured])
    df["scale"] = scale
    return df


def build(number: int, metrics: list[str], scale: str, not_run: list[str] = (), baselines: list[str] = (),
          released: bool = False) -> pd.DataFrame:
    table = f"table{number}"
    if table not in PUBLISHED:
        raise ValueError(f"no table {number}; the paper has tables 1-8")
    if released and number > 3:
        raise ValueError("the released weights are evaluated for Tables 1-3 only (the ablations need pretraining)")
    runs = [load_run(p) for p in metrics]
    if number <= 3:
        df = main_table(table, runs, scale, list(not_run), list(baselines), released)
    else:
        df = ablation_table(table, runs, scale, list(not_run))
    return df.convert_dtypes()  # integer columns stay integers where a cell is empty


def caption(number: int, metrics: list[str], scale: str, not_run: list[str]) -> str:
    """The table's caption: what it is, the scale, the test videos behind every number, and how to read them."""
    runs = [json.loads(Path(p).read_text()) for p in metrics]
    counts = {}
    for r in runs:
        counts.setdefault(benchmarks.display(r["dataset"]), (r["videos_evaluated"], r["videos_skipped"]))
    data = "; ".join(f"{d}: {n} test videos ({s} undecodable, not counted)" for d, (n, s) in sorted(counts.items()))
    skipped = ", ".join(benchmarks.display(d) for d in not_run if d in benchmarks.feeding(f"table{number}"))
    text = (f"Table {number}. {PUBLISHED[f'table{number}']['caption']} Reproduced at scale {scale}"
            + (f" on {data}." if data else ".")
            + (f" Not run (dataset disabled in the config): {skipped}." if skipped else "")
            + f" Reproduced top-1 (%) with its {stats.METHOD} in brackets; each is compared with chance "
              "(interval against 100 / classes), with the random-init model under the same protocol"
            + (" and with the baseline row (the paper's setting, single view)" if number > 3 else "")
            + f" by the {stats.DIFFERENCE_METHOD}: > or < when beyond it, ≈ when within.")
    return text


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


def to_html(df: pd.DataFrame, caption: str) -> str:
    body = df.to_html(index=False, na_rep="-", escape=True)
    return (f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>{html.escape(caption[:60])}</title></head>"
            f"<body><p>{html.escape(caption)}</p>\n{body}\n</body></html>\n")


def add_table_arguments(p):
    p.add_argument("--number", type=int, required=True, help="paper table number (1-8)")
    p.add_argument("--metrics", nargs="*", default=[], help="metrics JSONs of this run (svt linear / finetune)")
    p.add_argument("--scale", required=True, help="which scale produced the reproduced numbers (demo / paper)")
    p.add_argument("--not-run", nargs="*", default=[], metavar="DATASET",
                   help="datasets disabled in this run: their reproduced cells read 'not run'")
    p.add_argument("--baselines", nargs="*", default=[], choices=list(BASELINE_ROWS),
                   help="baseline models of this run (Tables 1-3 get their rows even where they did not run)")
    p.add_argument("--released", action="store_true",
                   help="Tables 1-3 of the authors' released teacher (model `release`), not of our pretraining")
    p.add_argument("--out", required=True, help="CSV; Markdown and HTML twins are written beside it (.md, .html)")


def run_table(args) -> int:
    df = build(args.number, args.metrics, args.scale, args.not_run, args.baselines, args.released)
    out = Path(args.out)
    atomic_write(out, lambda tmp: df.to_csv(tmp, index=False))
    text = caption(args.number, args.metrics, args.scale, args.not_run)
    shown = display(df, reproduced_columns(df))
    atomic_write(out.with_suffix(".md"), lambda tmp: Path(tmp).write_text(to_markdown(shown, text)))
    atomic_write(out.with_suffix(".html"), lambda tmp: Path(tmp).write_text(to_html(shown, text)))
    print(text)
    print(shown.to_string(index=False))
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
            bcfg, s = pretraining_parts(meta["config"])
            g, loc = s.views.global_views, s.views.local_views
            macs = pretraining_step_macs(bcfg, [(t, g.size) for t in g.frames], [(t, loc.size) for t in loc.frames]) \
                * s.optim.batch_size * meta["iterations"]
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
