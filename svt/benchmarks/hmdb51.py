"""HMDB-51: videos/<class>/<name>.avi (51 inner RARs unpacked) and testTrainMulti_7030_splits/
<class>_test_splitS.txt with lines "<name> <tag>" (1 train, 2 test, 0 unused). Evaluated in Table 1 and every
ablation table."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd

from svt.benchmarks import ABLATION_TABLES, Benchmark, Synthetic, register
from svt.datasets import COLUMNS, AnnotationError, need


def read(root: Path, split: int = 1) -> pd.DataFrame:
    split_dir = need(root / "testTrainMulti_7030_splits")
    suffix = f"_test_split{split}.txt"
    files = sorted(split_dir.glob(f"*{suffix}"))
    if not files:
        raise AnnotationError(f"{split_dir}: no *{suffix} files")
    classes = sorted(f.name[: -len(suffix)] for f in files)
    rows = []
    for label, cls in enumerate(classes):
        for line in (split_dir / f"{cls}{suffix}").read_text().split("\n"):
            if not line.strip():
                continue
            name, tag = line.rsplit(maxsplit=1)
            if tag not in ("0", "1", "2"):
                raise AnnotationError(f"{split_dir / (cls + suffix)}: tag {tag!r} is not 0, 1 or 2")
            if tag != "0":
                rows.append((f"videos/{cls}/{name}", label, cls, "train" if tag == "1" else "val"))
    return pd.DataFrame(rows, columns=COLUMNS)


# ---------------------------------------------------------------- synthetic: mini-HMDB-51

def _place(r: dict, digest: str) -> dict:
    return {"path": f"videos/{r['name']}/synthetic_{r['name']}_{digest[:6]}_{r['j']}.avi"}


def _write_annotations(root: Path, records: list[dict]) -> None:
    from svt.synth import write_text

    splits = root / "testTrainMulti_7030_splits"
    for name in dict.fromkeys(r["name"] for r in records):
        lines = [f"{Path(r['path']).name} {1 if r['split'] == 'train' else 2} \n"
                 for r in records if r["name"] == name]
        for s in (1, 2, 3):
            write_text(splits / f"{name}_test_split{s}.txt", "".join(lines))


def _synthetic() -> Synthetic:
    from svt import synth

    # classes = motion x colour
    return Synthetic("mpeg4", ".avi", 2, [{"motion": m, "colour": c} for c in synth.COLOURS for m in synth.MOTIONS],
                     lambda spec: "_".join(synth.words(spec)), _place, _write_annotations)


def extract(files: dict, stage: Path) -> dict:
    from svt.download import extract as unpack

    inner = stage / "class_rars"  # a RAR of one RAR per class
    unpack(files["videos"], inner)
    for rar in sorted(inner.rglob("*.rar")):
        unpack(rar, stage / "videos")
    shutil.rmtree(inner)
    unpack(files["splits"], stage)
    return {"videos": sum(1 for _ in (stage / "videos").rglob("*.avi"))}


def _download(cfg: dict, work: Path, workers: int) -> dict:
    from svt.download import videos_and_splits

    return videos_and_splits("hmdb51", cfg, work)


BENCHMARK = register(Benchmark(
    name="hmdb51", display="HMDB-51", classes=51, read=read,
    listing=lambda name, split: f"testTrainMulti_7030_splits/*_test_split{split}.txt", synthetic=_synthetic(),
    tables=("table1", *ABLATION_TABLES), download=_download, extract=extract))
