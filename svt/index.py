"""`svt index`: a dataset root and its split lists -> one table of every video with its metadata and status.

Columns: path, label, label_name, split, frames, frames_header, fps, width, height, duration, codec, backend,
size, mtime_ns, deep, status. status is "ok" or the reason the video is quarantined (missing, empty, not a
video, stream breaks at frame k, ...). Loaders read only status == "ok" rows.

Incremental: a row whose file size and mtime are unchanged (and that was checked at least as deeply) is taken
from the previous index instead of being read again. A summary JSON holds counts per split and class and every
quarantined file.
"""

from __future__ import annotations

import json
import logging
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from svt import benchmarks
from svt.datasets import LAYOUTS, annotation_file, read_annotations, read_layout
from svt.io import atomic_write, save_json
from svt.settings import Dataset
from svt.video import DecodeError, probe

log = logging.getLogger("svt.index")

META = ["frames", "frames_header", "fps", "width", "height", "duration", "codec", "backend", "access"]


def _stat(path: Path) -> tuple[int, int]:
    try:
        st = path.stat()
        return st.st_size, st.st_mtime_ns
    except FileNotFoundError:
        return -1, -1


def probe_row(args: tuple[str, bool]) -> dict:
    path, deep = args
    try:
        info = probe(path, deep=deep).to_dict()
        info["status"] = "ok"
    except DecodeError as e:
        info = {k: None for k in META}
        info["status"] = e.reason
    return info


def build_index(dataset: str, root: str | Path, split: int = 1, deep: bool = False, workers: int = 1,
                previous: pd.DataFrame | None = None, layout: dict | None = None) -> pd.DataFrame:
    """`layout`: a dataset of your own, {"layout": folders|csv, "csv", "split_file", "val_fraction", "seed"}
    (svt.datasets.read_layout); otherwise one of the four benchmarks."""
    root = Path(root)
    df = read_layout(root=root, **layout) if layout else read_annotations(dataset, root, split)
    stats = [_stat(root / p) for p in df["path"]]
    df["size"] = [s for s, _ in stats]
    df["mtime_ns"] = [m for _, m in stats]
    for k in META + ["status"]:
        df[k] = None
    df["deep"] = deep

    fresh = np.ones(len(df), dtype=bool)
    if previous is not None and len(previous) and set(META) <= set(previous.columns):  # else: an older index
        old = previous.drop_duplicates("path").set_index("path").reindex(df["path"]).reset_index(drop=True)
        fresh = ~((old["size"] == df["size"]) & (old["mtime_ns"] == df["mtime_ns"])
                  & (old["deep"].fillna(False).astype(bool) | (not deep))).to_numpy()
        kept = META + ["status", "deep"]
        df.loc[~fresh, kept] = old.loc[~fresh, kept]

    todo = np.flatnonzero(fresh)
    jobs = [(str(root / df["path"].iat[i]), deep) for i in todo]
    desc = f"index {dataset}" + (" (deep)" if deep else "")
    if workers > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(workers) as pool:
            results = list(tqdm(pool.map(probe_row, jobs, chunksize=max(1, len(jobs) // (workers * 8))),
                                total=len(jobs), desc=desc, unit="video"))
    else:
        results = [probe_row(job) for job in tqdm(jobs, desc=desc, unit="video")]
    for k in META + ["status"]:
        df.loc[todo, k] = [r[k] for r in results]
    df = df.infer_objects()  # numeric metadata columns back to numeric dtypes
    df["deep"] = df["deep"].astype(bool)
    reuse = len(df) - len(todo)
    log.info("%s: %d videos, %d read, %d reused", dataset, len(df), len(todo), reuse)
    return df


def summarise(df: pd.DataFrame, dataset: str) -> dict:
    ok = df[df["status"] == "ok"]
    bad = df[df["status"] != "ok"]
    return {
        "dataset": dataset,
        "videos": int(len(df)),
        "ok": int(len(ok)),
        "quarantined": int(len(bad)),
        "classes": int(df["label"].nunique()),
        "per_split": {s: {"ok": int((ok["split"] == s).sum()), "quarantined": int((bad["split"] == s).sum())}
                      for s in sorted(df["split"].unique())},
        "per_class": {str(k): int(v) for k, v in ok.groupby("label_name").size().items()},
        "quarantine": [{"path": p, "split": s, "reason": r} for p, s, r in
                       zip(bad["path"], bad["split"], bad["status"])],
        # usable, but decoded sequentially whenever used (slower, exact), with why
        "sequential_access": {str(k): int(v) for k, v in
                              ok[ok["backend"] == "pyav"].groupby("access").size().items()},
    }


def write_index(df: pd.DataFrame, out: str | Path) -> None:
    out = Path(out)
    if out.suffix == ".csv":
        atomic_write(out, lambda tmp: df.to_csv(tmp, index=False))
    else:
        atomic_write(out, lambda tmp: df.to_parquet(tmp, index=False))


def read_index(path: str | Path) -> pd.DataFrame:
    path = Path(path)
    return pd.read_csv(path) if path.suffix == ".csv" else pd.read_parquet(path)


def add_index_arguments(p):
    p.add_argument("--dataset", required=True,
                   help=f"a benchmark ({', '.join(benchmarks.names())}), or any name with --layout (your own "
                        "videos)")
    p.add_argument("--layout", choices=LAYOUTS, help="your own videos: class folders, or a CSV path,label[,split]")
    p.add_argument("--csv", help="layout csv: the CSV file")
    p.add_argument("--val-fraction", type=float, default=Dataset.val_fraction,
                   help="your own videos without a given split: the fraction drawn (seeded) for val")
    p.add_argument("--seed", type=int, default=Dataset.seed, help="seed of that draw")
    p.add_argument("--split-file", help="where the drawn split is written and read back (default: OUT.split.csv)")
    p.add_argument("--root", required=True, help="dataset root (layouts: svt/benchmarks/, your own: svt/datasets.py)")
    p.add_argument("--out", required=True, help="index table (.parquet or .csv)")
    p.add_argument("--summary", help="summary JSON (default: <out>.summary.json)")
    p.add_argument("--split", type=int, default=Dataset.split, help="official split number (UCF-101 / HMDB-51)")
    p.add_argument("--deep", action="store_true",
                   help="the exact probe (what the workflow runs): decode every file once sequentially, check its "
                        "count against the header or duration x fps, and mark files whose random access returns "
                        "other frames for sequential decoding")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    p.add_argument("--warn-quarantined", type=float, default=0.05, metavar="FRACTION",
                   help="warn when more than this fraction of the videos is quarantined")


def check_usable(df: pd.DataFrame, dataset: str, root: str | Path, split: int = 1,
                 warn_fraction: float = 0.05) -> None:
    """An index every stage can use: each of train / val has a usable video (else ValueError naming the root, the
    annotation file and the first file that is not usable: a wrong --root surfaces here, not in training), and a
    warning when more than `warn_fraction` of the videos are quarantined."""
    for name in ("train", "val"):
        rows = df[df["split"] == name]
        if (rows["status"] == "ok").any():
            continue
        listed = f"{Path(root) / annotation_file(dataset, name, split)}"
        if not len(rows):
            raise ValueError(f"{dataset} split {name}: {listed} lists no videos (root {root})")
        first = rows.iloc[0]
        raise ValueError(f"{dataset} split {name}: none of the {len(rows)} videos listed in {listed} is usable "
                         f"(root {root}); first: {first['path']}: "
                         f"{'missing' if first['size'] < 0 else first['status']}")
    bad = float((df["status"] != "ok").mean())
    if bad > warn_fraction:
        log.warning("%s: %.1f%% of %d videos are quarantined (more than %.0f%%): see the summary's quarantine list",
                    dataset, 100 * bad, len(df), 100 * warn_fraction)


def run_index(args) -> int:
    out = Path(args.out)
    if not Path(args.root).is_dir():
        raise ValueError(f"--root {args.root}: no such folder")
    layout = None
    if args.layout:
        if args.dataset in benchmarks.names():
            raise ValueError(f"--dataset {args.dataset} is a benchmark with its own layout; give your dataset "
                             "another name")
        layout = {"layout": args.layout, "csv": args.csv, "val_fraction": args.val_fraction, "seed": args.seed,
                  "split_file": args.split_file or out.with_suffix(".split.csv")}
    elif args.dataset not in benchmarks.names():
        raise ValueError(f"--dataset {args.dataset}: not a benchmark ({', '.join(benchmarks.names())}); your own "
                         f"videos need --layout ({' or '.join(LAYOUTS)})")
    previous = read_index(out) if out.exists() else None
    df = build_index(args.dataset, args.root, args.split, args.deep, args.workers, previous, layout)
    check_usable(df, args.dataset, args.root, args.split, args.warn_quarantined)
    write_index(df, out)
    summary = summarise(df, args.dataset)
    save_json(args.summary or str(out) + ".summary.json", summary)
    print(json.dumps({k: summary[k] for k in ("dataset", "videos", "ok", "quarantined", "per_split")}))
    for q in summary["quarantine"]:
        log.warning("quarantined %s: %s", q["path"], q["reason"])
    return 0


def subset(index: pd.DataFrame, videos: int, seed: int, split: str = "train") -> pd.DataFrame:
    """A fixed random subset of the usable `split` videos (the paper's 60K-video K400 set for ablations, §4.3),
    drawn with a seeded generator, so the same index and seed always give the same set."""
    usable = index[(index["split"] == split) & (index["status"] == "ok")]
    if videos > len(usable):
        raise ValueError(f"subset: asks for {videos} {split} videos, the index has {len(usable)} usable ones")
    pick = np.sort(np.random.default_rng(seed).choice(len(usable), size=videos, replace=False))
    return usable.iloc[pick].reset_index(drop=True)


def add_subset_arguments(p):
    p.add_argument("--index", required=True, help="index to draw from")
    p.add_argument("--videos", type=int, required=True, help="number of training videos")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="subset index (.parquet or .csv)")


def run_subset(args) -> int:
    df = subset(read_index(args.index), args.videos, args.seed)
    write_index(df, args.out)
    print(json.dumps({"videos": len(df), "classes": int(df["label"].nunique()), "seed": args.seed}))
    return 0
