"""The four benchmarks' on-disk layouts and annotation formats: one reader per dataset.

Every reader returns one table: path (relative to the dataset root), label (0-based), label_name, split.
Splits are named `train` and `val` everywhere; `val` is what the paper evaluates on (UCF-101 / HMDB-51 test list
of the chosen split, K400 validation, SSv2 validation).

Layouts (what `svt download` produces from the real sources and `svt synth` produces for the demo):
- kinetics400: annotations/{train,val}.csv (CVDF columns label,youtube_id,time_start,time_end,split);
  videos/{train,val}/{youtube_id}_{start:06d}_{end:06d}.mp4. Class index = sorted unique label names after
  stripping quotes and whitespace (one index for both splits).
- ucf101: UCF-101/<Class>/v_<Class>_gXX_cYY.avi; ucfTrainTestlist/{classInd.txt, trainlist0S.txt, testlist0S.txt}.
  classInd is 1-based -> 0-based; the folder part of a list line is matched to classInd case-insensitively
  (HandstandPushups folder vs HandStandPushups file names).
- hmdb51: videos/<class>/<name>.avi; testTrainMulti_7030_splits/<class>_test_splitS.txt with lines
  "<name>.avi <tag>", tag 1 = train, 2 = test (-> val), 0 = unused. Class index = sorted class names.
- ssv2: 20bn-something-something-v2/<id>.webm; labels/{labels,train,validation}.json. Class of a video =
  labels[template with "[" and "]" removed].
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pandas as pd

DATASETS = ("kinetics400", "ucf101", "hmdb51", "ssv2")
COLUMNS = ["path", "label", "label_name", "split"]


class AnnotationError(ValueError):
    pass


def _need(path: Path) -> Path:
    if not path.exists():
        raise AnnotationError(f"missing annotation file: {path}")
    return path


def k400_label_name(raw: str) -> str:
    return raw.strip().strip('"').strip()


def k400_file_name(youtube_id: str, start: int, end: int) -> str:
    return f"{youtube_id}_{int(start):06d}_{int(end):06d}.mp4"


def read_kinetics400(root: Path, split: int = 1) -> pd.DataFrame:
    tables = []
    for name in ("train", "val"):
        f = _need(root / "annotations" / f"{name}.csv")
        with open(f, newline="") as fh:
            rows = list(csv.DictReader(fh))
        for col in ("label", "youtube_id", "time_start", "time_end"):
            if rows and col not in rows[0]:
                raise AnnotationError(f"{f}: column {col!r} missing (CVDF columns: label,youtube_id,...)")
        tables.append(pd.DataFrame({
            "path": [f"videos/{name}/{k400_file_name(r['youtube_id'], r['time_start'], r['time_end'])}"
                     for r in rows],
            "label_name": [k400_label_name(r["label"]) for r in rows],
            "split": name,
        }))
    df = pd.concat(tables, ignore_index=True)
    classes = sorted(df["label_name"].unique())
    df["label"] = df["label_name"].map({c: i for i, c in enumerate(classes)})
    return df[COLUMNS]


def read_ucf101(root: Path, split: int = 1) -> pd.DataFrame:
    lists = root / "ucfTrainTestlist"
    classes = {}
    for line in _need(lists / "classInd.txt").read_text().split("\n"):
        if line.strip():
            idx, name = line.split()
            classes[name] = int(idx) - 1
    by_lower = {name.lower(): (name, idx) for name, idx in classes.items()}
    rows = []
    for name, f in (("train", f"trainlist0{split}.txt"), ("val", f"testlist0{split}.txt")):
        for line in _need(lists / f).read_text().split("\n"):
            if not line.strip():
                continue
            rel = line.split()[0]
            folder = rel.split("/")[0]
            if folder.lower() not in by_lower:
                raise AnnotationError(f"{lists / f}: class folder {folder!r} is not in classInd.txt")
            label_name, label = by_lower[folder.lower()]
            rows.append((f"UCF-101/{rel}", label, label_name, name))
    return pd.DataFrame(rows, columns=COLUMNS)


def read_hmdb51(root: Path, split: int = 1) -> pd.DataFrame:
    split_dir = _need(root / "testTrainMulti_7030_splits")
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


def ssv2_template_class(template: str) -> str:
    return template.replace("[", "").replace("]", "")


def read_ssv2(root: Path, split: int = 1) -> pd.DataFrame:
    labels_dir = root / "labels"
    labels = json.loads(_need(labels_dir / "labels.json").read_text())
    index = {name: int(i) for name, i in labels.items()}
    names = {i: n for n, i in index.items()}
    rows = []
    for name, f in (("train", "train.json"), ("val", "validation.json")):
        for item in json.loads(_need(labels_dir / f).read_text()):
            cls = ssv2_template_class(item["template"])
            if cls not in index:
                raise AnnotationError(f"{labels_dir / f}: template {item['template']!r} not in labels.json")
            rows.append((f"20bn-something-something-v2/{item['id']}.webm", index[cls], names[index[cls]], name))
    return pd.DataFrame(rows, columns=COLUMNS)


READERS = {"kinetics400": read_kinetics400, "ucf101": read_ucf101, "hmdb51": read_hmdb51, "ssv2": read_ssv2}


def annotation_file(dataset: str, name: str, split: int = 1) -> str:
    """Where a dataset's `name` split ("train" / "val") is listed, relative to its root (for error messages)."""
    return {"kinetics400": f"annotations/{name}.csv",
            "ucf101": f"ucfTrainTestlist/{'trainlist' if name == 'train' else 'testlist'}0{split}.txt",
            "hmdb51": f"testTrainMulti_7030_splits/*_test_split{split}.txt",
            "ssv2": f"labels/{'train' if name == 'train' else 'validation'}.json"}[dataset]


def read_annotations(dataset: str, root: str | Path, split: int = 1) -> pd.DataFrame:
    if dataset not in READERS:
        raise AnnotationError(f"unknown dataset {dataset!r}; known: {', '.join(DATASETS)}")
    return READERS[dataset](Path(root), split)
