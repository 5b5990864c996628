"""Small builders shared by tests: synthetic datasets on disk, real clips laid out in benchmark formats."""

import csv
import json
import os
from pathlib import Path

import numpy as np

from svt.index import build_index
from svt.synth import SynthConfig, synthesize

TINY = SynthConfig(classes=3, train_per_class=2, val_per_class=1, width=64, height=48, frames=24, fps=12)


def synth_dataset(tmp: Path, dataset: str = "kinetics400", cfg: SynthConfig = TINY, seed: int = 0):
    root = tmp / dataset
    synthesize(dataset, root, cfg, seed=seed)
    return root, build_index(dataset, root, deep=True)


def link(src: Path, dst: Path):
    dst.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(src.resolve(), dst)


def layout_real_clips(shared: Path, tmp: Path) -> dict[str, Path]:
    """The reference clips, linked into each benchmark's folder layout with its annotation files."""
    clips = shared / "sample_videos"
    manifest = list(csv.DictReader(open(clips / "MANIFEST.csv")))
    roots = {d: tmp / d for d in ("ucf101", "hmdb51", "kinetics400", "ssv2")}

    ucf = [r for r in manifest if r["dataset"] == "ucf101"]
    classes = sorted({Path(r["path"]).parts[1] for r in ucf})
    lists = roots["ucf101"] / "ucfTrainTestlist"
    lists.mkdir(parents=True)
    (lists / "classInd.txt").write_text("".join(f"{i + 1} {c}\n" for i, c in enumerate(classes)))
    (lists / "trainlist01.txt").write_text("")
    (lists / "testlist01.txt").write_text("".join(f"{Path(r['path']).parts[1]}/{Path(r['path']).name}\n"
                                                  for r in ucf))
    for r in ucf:
        link(clips / r["path"], roots["ucf101"] / "UCF-101" / Path(r["path"]).parts[1] / Path(r["path"]).name)

    hmdb = [r for r in manifest if r["dataset"] == "hmdb51"]
    split_dir = roots["hmdb51"] / "testTrainMulti_7030_splits"
    split_dir.mkdir(parents=True)
    for cls in sorted({Path(r["path"]).parts[1] for r in hmdb}):
        names = [Path(r["path"]).name for r in hmdb if Path(r["path"]).parts[1] == cls]
        (split_dir / f"{cls}_test_split1.txt").write_text("".join(f"{n} 1\n" for n in names))
        for n in names:
            link(clips / "hmdb51" / cls / n, roots["hmdb51"] / "videos" / cls / n)

    k400 = [r for r in manifest if r["dataset"] in ("kinetics400", "edge_cases")]
    ann = roots["kinetics400"] / "annotations"
    ann.mkdir(parents=True)
    rows = []
    for i, r in enumerate(k400):
        yid = f"clip{i:07d}"
        rows.append([r["label"], yid, 0, 10, "train"])
        link(clips / r["path"], roots["kinetics400"] / "videos" / "train" / f"{yid}_000000_000010.mp4")
    with open(ann / "train.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["label", "youtube_id", "time_start", "time_end", "split"])
        w.writerows(rows)
    (ann / "val.csv").write_text("label,youtube_id,time_start,time_end,split\n")

    ssv2 = [r for r in manifest if r["dataset"] == "ssv2"]
    labels = {"Dropping something into something": "0", "Pretending to pick something up": "1",
              "Unlabeled": "2"}
    items = []
    for r in ssv2:
        vid = Path(r["path"]).stem
        template = r["label"] if r["label"] != "UNLABELED" else "[Unlabeled]"
        items.append({"id": vid, "label": "x", "template": template, "placeholders": []})
        link(clips / r["path"], roots["ssv2"] / "20bn-something-something-v2" / f"{vid}.webm")
    (roots["ssv2"] / "labels").mkdir(parents=True)
    (roots["ssv2"] / "labels" / "labels.json").write_text(json.dumps(labels))
    (roots["ssv2"] / "labels" / "train.json").write_text(json.dumps(items))
    (roots["ssv2"] / "labels" / "validation.json").write_text("[]")
    return roots


def sequential_decode(path) -> np.ndarray:
    """Every frame, in order, through PyAV's own conversion: the reference random access must equal."""
    import av

    with av.open(str(path), metadata_errors="ignore") as c:
        return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])
