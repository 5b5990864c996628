"""Annotation tables: what every dataset reader returns, and the readers of your own videos.

Every reader returns one table: path (relative to the dataset root), label (0-based), label_name, split.
Splits are named `train` and `val` everywhere; `val` is what the paper evaluates on (UCF-101 / HMDB-51 test list
of the chosen split, K400 validation, SSv2 validation). The benchmarks' readers and layouts are in their registry
specs (svt/benchmarks/).

Your own videos, under any dataset name (`read_layout`):
- folders: <class>/<video> (one sub-folder per class), or train/<class>/<video> + val/<class>/<video>.
- csv: a CSV with columns path,label[,split] (paths relative to the dataset root).
Without a given split, `val_fraction` of each class's videos (seeded) form `val`; the assignment is written to a
split file (path,split) that later runs read back (videos added later are drawn among themselves) and a user may
edit. Class index = sorted label names.
"""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import numpy as np
import pandas as pd

COLUMNS = ["path", "label", "label_name", "split"]


class AnnotationError(ValueError):
    pass


def need(path: Path) -> Path:
    if not path.exists():
        raise AnnotationError(f"missing annotation file: {path}")
    return path


LAYOUTS = ("folders", "csv")
VIDEO_SUFFIXES = (".mp4", ".avi", ".webm", ".mkv", ".mov", ".m4v", ".mpg", ".mpeg")


def drawn_split(df: pd.DataFrame, val_fraction: float, seed: int) -> list[str]:
    """train / val per row, drawn per class (stratified): round(val_fraction x videos) of each class, at least one
    where the class has two or more, by a permutation seeded with `seed` and the class name."""
    out = ["train"] * len(df)
    for name, rows in df.groupby("label_name", sort=True):
        order = sorted(rows.index, key=lambda i: df.at[i, "path"])
        rng = np.random.default_rng([seed, int(hashlib.sha1(str(name).encode()).hexdigest()[:8], 16)])
        k = int(round(val_fraction * len(order)))
        k = max(k, 1) if val_fraction > 0 and len(order) > 1 else k
        for i in rng.permutation(len(order))[:k]:
            out[df.index.get_loc(order[i])] = "val"
    return out


def videos_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)


def read_folders(root: Path) -> pd.DataFrame:
    """<class>/<video> or {train,val}/<class>/<video>; split is None where the layout gives none."""
    if not root.is_dir():
        raise AnnotationError(f"{root}: no such folder")
    given = (root / "train").is_dir() and (root / "val").is_dir()
    tops = [("train", root / "train"), ("val", root / "val")] if given else [(None, root)]
    classes = sorted({d.name for _, top in tops for d in top.iterdir() if d.is_dir()})
    if not classes:
        raise AnnotationError(f"{root}: no class folders (expected <class>/<video> or train|val/<class>/<video>)")
    rows = []
    for split, top in tops:
        for cls in classes:
            folder = top / cls
            found = videos_in(folder) if folder.is_dir() else []
            if not found and (not given or split == "train"):
                raise AnnotationError(f"{folder}: class folder with no videos ({', '.join(VIDEO_SUFFIXES)})")
            rows += [(str(p.relative_to(root)), classes.index(cls), cls, split) for p in found]
    return pd.DataFrame(rows, columns=COLUMNS)


def read_csv_layout(root: Path, listing: Path) -> pd.DataFrame:
    """path,label[,split] rows; every file must exist and every label be given."""
    if not listing.is_file():
        raise AnnotationError(f"{listing}: no such CSV file")
    with open(listing, newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows or not {"path", "label"} <= set(rows[0]):
        raise AnnotationError(f"{listing}: expected a header with columns path,label[,split] and at least one row")
    for n, r in enumerate(rows, start=2):
        path, label, split = (r.get("path") or "").strip(), (r.get("label") or "").strip(), (r.get("split") or "")
        if not label:
            raise AnnotationError(f"{listing}: row {n} ({path or 'no path'}) has an empty label")
        if not path or not (root / path).is_file():
            raise AnnotationError(f"{listing}: row {n}: file {root / path} does not exist")
        if split.strip() not in ("", "train", "val"):
            raise AnnotationError(f"{listing}: row {n}: split {split!r} is not train or val")
    classes = sorted({r["label"].strip() for r in rows})
    return pd.DataFrame([(r["path"].strip(), classes.index(r["label"].strip()), r["label"].strip(),
                          (r.get("split") or "").strip() or None) for r in rows], columns=COLUMNS)


def read_layout(layout: str, root: str | Path, csv: str | Path | None = None, split_file: str | Path | None = None,
                val_fraction: float = 0.2, seed: int = 0, write: bool = True) -> pd.DataFrame:
    """A dataset of your own (`folders` or `csv`), with the train/val split given, read from `split_file`, or
    drawn and (with `write`) written there."""
    root = Path(root)
    if layout == "folders":
        df = read_folders(root)
    elif layout == "csv":
        if csv is None:
            raise AnnotationError("layout csv needs the CSV file (--csv / datasets.<name>.csv)")
        df = read_csv_layout(root, Path(csv))
    else:
        raise AnnotationError(f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    if df["split"].notna().all():
        return df
    split_file = Path(split_file) if split_file else None
    if split_file is not None and split_file.exists():
        given = pd.read_csv(split_file)
        unknown = sorted(set(given["path"]) - set(df["path"]))
        if unknown:
            raise AnnotationError(f"{split_file}: names {len(unknown)} files that are not in the dataset, first: "
                                  f"{unknown[0]}")
        if not set(given["split"]) <= {"train", "val"}:
            raise AnnotationError(f"{split_file}: split values must be train or val")
        known = dict(zip(given["path"], given["split"]))
    else:
        known = {}
    known_split = [s if s is not None else known.get(p) for p, s in zip(df["path"], df["split"])]
    new = df[[s is None for s in known_split]]
    drawn = dict(zip(new.index, drawn_split(new, val_fraction, seed))) if len(new) else {}
    df["split"] = [s if s is not None else drawn[i] for i, s in zip(df.index, known_split)]
    if split_file is not None and write:
        from svt.io import atomic_write

        atomic_write(split_file, lambda tmp: df[["path", "split"]].to_csv(tmp, index=False))
    return df


def annotation_file(dataset: str, name: str, split: int = 1) -> str:
    """Where a benchmark's `name` split ("train" / "val") is listed, relative to its root (for error messages)."""
    from svt import benchmarks

    return benchmarks.get(dataset).listing(name, split) if dataset in benchmarks.names() else f"({name} split)"


def read_annotations(dataset: str, root: str | Path, split: int = 1) -> pd.DataFrame:
    """A benchmark's videos with labels and the official split, by its registered reader (svt.benchmarks)."""
    from svt import benchmarks

    if dataset not in benchmarks.names():
        raise AnnotationError(f"unknown dataset {dataset!r}; known: {', '.join(benchmarks.names())}")
    return benchmarks.get(dataset).read(Path(root), split)
