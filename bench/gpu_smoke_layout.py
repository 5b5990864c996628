"""Lay the reference clips (a folder with MANIFEST.csv, e.g. ../shared/sample_videos) out as the four benchmarks,
each in the format svt/datasets.py reads (source: local), every third clip of a dataset in `val`. Used by the GPU
smoke run (bench/gpu_smoke.yaml); K400 also gets the edge cases (a corrupted clip the index must quarantine).

python bench/gpu_smoke_layout.py CLIPS OUT   ->  OUT/{kinetics400,ucf101,hmdb51,ssv2}
"""

import csv
import json
import shutil
import sys
from pathlib import Path


def put(src: Path, dst: Path):
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)


def split_of(i: int) -> str:
    return "val" if i % 3 == 2 else "train"


def layout(clips: Path, out: Path) -> None:
    rows = list(csv.DictReader(open(clips / "MANIFEST.csv")))
    of = {d: [r for r in rows if r["dataset"] in d.split("+") and (clips / r["path"]).exists()]
          for d in ("ucf101", "hmdb51", "kinetics400+edge_cases", "ssv2")}

    root = out / "ucf101"
    lists = root / "ucfTrainTestlist"
    ucf = of["ucf101"]
    classes = sorted({Path(r["path"]).parts[1] for r in ucf})
    lists.mkdir(parents=True, exist_ok=True)
    (lists / "classInd.txt").write_text("".join(f"{i + 1} {c}\n" for i, c in enumerate(classes)))
    listing = {"train": [], "val": []}
    for i, r in enumerate(ucf):
        rel = f"{Path(r['path']).parts[1]}/{Path(r['path']).name}"
        listing[split_of(i)].append(rel)
        put(clips / r["path"], root / "UCF-101" / rel)
    (lists / "trainlist01.txt").write_text("".join(f"{rel} 1\n" for rel in listing["train"]))
    (lists / "testlist01.txt").write_text("".join(f"{rel}\n" for rel in listing["val"]))

    root = out / "hmdb51"
    splits = root / "testTrainMulti_7030_splits"
    splits.mkdir(parents=True, exist_ok=True)
    lines: dict[str, list[str]] = {}
    for i, r in enumerate(of["hmdb51"]):
        cls, name = Path(r["path"]).parts[1], Path(r["path"]).name
        lines.setdefault(cls, []).append(f"{name} {1 if split_of(i) == 'train' else 2}\n")
        put(clips / r["path"], root / "videos" / cls / name)
    for cls, ls in lines.items():
        (splits / f"{cls}_test_split1.txt").write_text("".join(ls))

    root = out / "kinetics400"
    tables = {"train": [], "val": []}
    for i, r in enumerate(of["kinetics400+edge_cases"]):
        split, yid = split_of(i), f"clip{i:07d}"
        tables[split].append([r["label"], yid, 0, 10, split])
        put(clips / r["path"], root / "videos" / split / f"{yid}_000000_000010.mp4")
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    for split, table in tables.items():
        with open(root / "annotations" / f"{split}.csv", "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["label", "youtube_id", "time_start", "time_end", "split"])
            w.writerows(table)

    root = out / "ssv2"
    templates = sorted({(r["label"] if r["label"] != "UNLABELED" else "Unlabeled").replace("[", "").replace("]", "")
                        for r in of["ssv2"]})
    items = {"train": [], "val": []}
    for i, r in enumerate(of["ssv2"]):
        template = r["label"] if r["label"] != "UNLABELED" else "[Unlabeled]"
        items[split_of(i)].append({"id": Path(r["path"]).stem, "label": "x", "template": template,
                                   "placeholders": []})
        put(clips / r["path"], root / "20bn-something-something-v2" / Path(r["path"]).name)
    (root / "labels").mkdir(parents=True, exist_ok=True)
    (root / "labels" / "labels.json").write_text(json.dumps({t: str(i) for i, t in enumerate(templates)}))
    (root / "labels" / "train.json").write_text(json.dumps(items["train"]))
    (root / "labels" / "validation.json").write_text(json.dumps(items["val"]))
    for d in ("ucf101", "hmdb51", "kinetics400+edge_cases", "ssv2"):
        print(f"{d}: {len(of[d])} clips")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    layout(Path(sys.argv[1]), Path(sys.argv[2]))
