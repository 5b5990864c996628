"""A benchmark the paper does not have, added as a registry entry alone (SVT_BENCHMARKS=toy_benchmark): a CSV
listing path,label_name,split, motion classes, mpeg4 AVIs. tests/test_workflow.py runs it through the workflow."""

from pathlib import Path

import pandas as pd

from svt.benchmarks import Benchmark, Synthetic, register
from svt.datasets import COLUMNS, need


def read(root: Path, split: int = 1) -> pd.DataFrame:
    df = pd.read_csv(need(root / "toy.csv"))
    classes = sorted(df["label_name"].unique())
    df["label"] = df["label_name"].map({c: i for i, c in enumerate(classes)})
    return df[COLUMNS]


def write_annotations(root: Path, records: list[dict]) -> None:
    rows = [(r["path"], r["name"], r["split"]) for r in records]
    pd.DataFrame(rows, columns=["path", "label_name", "split"]).to_csv(root / "toy.csv", index=False)


register(Benchmark(
    name="toy", display="Toy", classes=3, read=read, listing=lambda name, split: "toy.csv",
    synthetic=Synthetic("mpeg4", ".avi", 7, [{"motion": m} for m in ("right", "up", "grow")], lambda s: s["motion"],
                        lambda r, digest: {"path": f"clips/{r['name']}/{r['split']}_{r['j']}.avi"},
                        write_annotations),
    tables=("table1", "table4")))
