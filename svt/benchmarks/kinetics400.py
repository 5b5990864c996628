"""Kinetics-400 (CVDF copy): annotations/{train,val}.csv (columns label,youtube_id,time_start,time_end,split) and
videos/{train,val}/<youtube_id>_<start:06d>_<end:06d>.mp4, the replacement pack applied; missing.csv lists the CSV
rows without a video (the CVDF copy lacks ~2%). Pretraining set of the paper; evaluated in Table 2."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from svt.benchmarks import Benchmark, Synthetic, register
from svt.datasets import COLUMNS, AnnotationError, need


def label_name(raw: str) -> str:
    return raw.strip().strip('"').strip()


def file_name(youtube_id: str, start: int, end: int) -> str:
    return f"{youtube_id}_{int(start):06d}_{int(end):06d}.mp4"


def read(root: Path, split: int = 1) -> pd.DataFrame:
    tables = []
    for name in ("train", "val"):
        f = need(root / "annotations" / f"{name}.csv")
        with open(f, newline="") as fh:
            rows = list(csv.DictReader(fh))
        for col in ("label", "youtube_id", "time_start", "time_end"):
            if rows and col not in rows[0]:
                raise AnnotationError(f"{f}: column {col!r} missing (CVDF columns: label,youtube_id,...)")
        tables.append(pd.DataFrame({
            "path": [f"videos/{name}/{file_name(r['youtube_id'], r['time_start'], r['time_end'])}" for r in rows],
            "label_name": [label_name(r["label"]) for r in rows],
            "split": name,
        }))
    df = pd.concat(tables, ignore_index=True)
    classes = sorted(df["label_name"].unique())
    df["label"] = df["label_name"].map({c: i for i, c in enumerate(classes)})
    return df[COLUMNS]


# ---------------------------------------------------------------- synthetic: mini-K400

def _place(r: dict, digest: str) -> dict:
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_"
    yid = "".join(alphabet[int(digest[i:i + 2], 16) % 64] for i in range(0, 22, 2))
    start = 10 * (r["j"] % 5)
    return {"youtube_id": yid, "start": start, "end": start + 10,
            "path": f"videos/{r['split']}/{file_name(yid, start, start + 10)}"}


def _write_annotations(root: Path, records: list[dict]) -> None:
    from svt.io import atomic_write

    for split in ("train", "val"):
        rows = [r for r in records if r["split"] == split]

        def write(tmp, rows=rows, split=split):
            with open(tmp, "w", newline="") as fh:
                w = csv.writer(fh, quoting=csv.QUOTE_MINIMAL)
                w.writerow(["label", "youtube_id", "time_start", "time_end", "split", "is_cc"])
                for r in rows:
                    w.writerow([r["name"], r["youtube_id"], r["start"], r["end"],
                                "validate" if split == "val" else split, 0])
        atomic_write(root / "annotations" / f"{split}.csv", write)


def _synthetic() -> Synthetic:
    from svt import synth

    # appearance-heavy classes (shape x colour), random motion
    return Synthetic("libx264", ".mp4", 0, [{"shape": s, "colour": c} for c in synth.COLOURS for s in synth.SHAPES],
                     lambda spec: " ".join(w.replace("_", " ") for w in synth.words(spec)) + " (synthetic)",
                     _place, _write_annotations)


# ---------------------------------------------------------------- download: CVDF parts

def download(cfg: dict, work: Path, workers: int) -> dict:
    from svt.download import fetch, fetch_all

    files = {"annotations": {}, "parts": {}}
    for split in cfg["splits"]:
        files["annotations"][split] = fetch(cfg["annotations"].format(split=split),
                                            work / "annotations" / f"{split}.csv")
        listing = fetch(cfg["part_list"].format(split=split), work / f"k400_{split}_path.txt")
        urls = [u.strip() for u in listing.read_text().splitlines() if u.strip()]
        files["parts"][split] = fetch_all([(u, work / split / Path(u).name, None) for u in urls], workers)
    if cfg.get("replacement"):
        files["replacement"] = fetch(cfg["replacement"], work / Path(cfg["replacement"]).name)
    return files


def extract(files: dict, stage: Path) -> dict:
    from svt.download import extract as unpack

    manifest = {}
    (stage / "annotations").mkdir()
    for split, listed in files["annotations"].items():
        shutil.copy(listed, stage / "annotations" / f"{split}.csv")
        for part in tqdm(files["parts"][split], desc=f"extract {split}", unit="part"):
            unpack(part, stage / "videos" / split)
        _flatten(stage / "videos" / split)
    if files.get("replacement"):
        rep = stage / "replacement"
        unpack(files["replacement"], rep)
        replaced = 0
        for video in rep.rglob("*.mp4"):
            for split in files["annotations"]:
                dst = stage / "videos" / split / video.name
                if dst.exists():
                    shutil.move(str(video), dst)
                    replaced += 1
        shutil.rmtree(rep)
        manifest["replaced"] = replaced
    return {**manifest, **missing(stage)}


def _flatten(folder: Path) -> None:
    """CVDF parts unpack to nested folders; videos/<split>/ holds the files directly."""
    for video in list(folder.rglob("*.mp4")):
        if video.parent != folder:
            video.replace(folder / video.name)
    for d in sorted((p for p in folder.rglob("*") if p.is_dir()), reverse=True):
        if not any(d.iterdir()):
            d.rmdir()


def missing(root: Path) -> dict:
    """CSV rows without a video file: written to missing.csv, counted per split."""
    counts, rows = {}, []
    for listed in sorted((root / "annotations").glob("*.csv")):
        split = listed.stem
        df = pd.read_csv(listed)
        present = {p.name for p in (root / "videos" / split).glob("*.mp4")}
        names = [file_name(y, s, e) for y, s, e in zip(df.youtube_id, df.time_start, df.time_end)]
        miss = [n not in present for n in names]
        counts[split] = {"rows": len(df), "present": len(df) - sum(miss), "missing": sum(miss)}
        rows += [{"split": split, "file": n, "label": lab} for n, lab, m in zip(names, df.label, miss) if m]
    pd.DataFrame(rows, columns=["split", "file", "label"]).to_csv(root / "missing.csv", index=False)
    # One canonical class index: names with quotes and outer spaces stripped, sorted, 0-based (what the index
    # and every evaluation use), and the list of videos actually present per split.
    names = sorted({label_name(x) for listed in (root / "annotations").glob("*.csv")
                    for x in pd.read_csv(listed)["label"]})
    (root / "classes.txt").write_text("".join(f"{i} {n}\n" for i, n in enumerate(names)))
    for split in counts:
        present = sorted(p.name for p in (root / "videos" / split).glob("*.mp4"))
        (root / f"present_{split}.txt").write_text("".join(f"videos/{split}/{n}\n" for n in present))
    return {"splits": counts, "classes": len(names)}


BENCHMARK = register(Benchmark(
    name="kinetics400", display="Kinetics-400", classes=400, read=read,
    listing=lambda name, split: f"annotations/{name}.csv", synthetic=_synthetic(), tables=("table2",),
    download=download, extract=extract))
