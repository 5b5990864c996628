"""UCF-101: UCF-101/<Class>/v_<Class>_gXX_cYY.avi and ucfTrainTestlist/{classInd.txt, trainlist0S.txt,
testlist0S.txt}. Evaluated in Table 1 and every ablation table."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from svt.benchmarks import ABLATION_TABLES, Benchmark, Synthetic, register
from svt.datasets import COLUMNS, AnnotationError, need


def read(root: Path, split: int = 1) -> pd.DataFrame:
    lists = root / "ucfTrainTestlist"
    classes = {}
    for line in need(lists / "classInd.txt").read_text().split("\n"):
        if line.strip():
            idx, name = line.split()
            classes[name] = int(idx) - 1
    by_lower = {name.lower(): (name, idx) for name, idx in classes.items()}
    rows = []
    for name, f in (("train", f"trainlist0{split}.txt"), ("val", f"testlist0{split}.txt")):
        for line in need(lists / f).read_text().split("\n"):
            if not line.strip():
                continue
            rel = line.split()[0]
            folder = rel.split("/")[0]
            if folder.lower() not in by_lower:
                raise AnnotationError(f"{lists / f}: class folder {folder!r} is not in classInd.txt")
            label_name, label = by_lower[folder.lower()]
            rows.append((f"UCF-101/{rel}", label, label_name, name))
    return pd.DataFrame(rows, columns=COLUMNS)


def listing(name: str, split: int) -> str:
    return f"ucfTrainTestlist/{'trainlist' if name == 'train' else 'testlist'}0{split}.txt"


# ---------------------------------------------------------------- synthetic: mini-UCF-101

def _place(r: dict, digest: str) -> dict:
    # Groups g01-g07 are split 1's test groups, as in the real dataset.
    group = (r["j"] % 7) + 1 if r["split"] == "val" else 8 + r["j"] % 18
    return {"path": f"UCF-101/{r['name']}/v_{r['name']}_g{group:02d}_c{r['j'] + 1:02d}.avi"}


def _write_annotations(root: Path, records: list[dict]) -> None:
    from svt.synth import write_text

    names = list(dict.fromkeys(r["name"] for r in records))
    lists = root / "ucfTrainTestlist"
    write_text(lists / "classInd.txt", "".join(f"{i + 1} {n}\r\n" for i, n in enumerate(names)))
    for s in (1, 2, 3):
        write_text(lists / f"trainlist0{s}.txt", "".join(
            f"{r['path'][len('UCF-101/'):]} {r['label'] + 1}\r\n" for r in records if r["split"] == "train"))
        write_text(lists / f"testlist0{s}.txt", "".join(
            f"{r['path'][len('UCF-101/'):]}\r\n" for r in records if r["split"] == "val"))


def _synthetic() -> Synthetic:
    from svt import synth

    # classes = motion x shape
    return Synthetic("mpeg4", ".avi", 1, [{"motion": m, "shape": s} for s in synth.SHAPES for m in synth.MOTIONS],
                     lambda spec: "".join(p.capitalize() for w in synth.words(spec) for p in w.split("_")),
                     _place, _write_annotations)


def extract(files: dict, stage: Path) -> dict:
    from svt.download import extract as unpack

    unpack(files["videos"], stage)
    unpack(files["splits"], stage)
    return {"videos": sum(1 for _ in (stage / "UCF-101").rglob("*.avi"))}


def _download(cfg: dict, work: Path, workers: int) -> dict:
    from svt.download import videos_and_splits

    return videos_and_splits("ucf101", cfg, work)


BENCHMARK = register(Benchmark(
    name="ucf101", display="UCF-101", classes=101, read=read, listing=listing, synthetic=_synthetic(),
    tables=("table1", *ABLATION_TABLES), download=_download, extract=extract))
