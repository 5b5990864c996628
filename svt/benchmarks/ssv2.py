"""Something-Something-v2: 20bn-something-something-v2/<id>.webm and labels/{labels,train,validation}.json; the
class of a video is its template with the brackets removed. The files are placed by hand (Qualcomm login); svt
download checks them (old 20-chunk and newer layouts), reassembles and extracts. Evaluated in Table 3."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd

from svt.benchmarks import Benchmark, Synthetic, register
from svt.datasets import COLUMNS, AnnotationError, need


def template_class(template: str) -> str:
    return template.replace("[", "").replace("]", "")


def read(root: Path, split: int = 1) -> pd.DataFrame:
    labels_dir = root / "labels"
    labels = json.loads(need(labels_dir / "labels.json").read_text())
    index = {name: int(i) for name, i in labels.items()}
    names = {i: n for n, i in index.items()}
    rows = []
    for name, f in (("train", "train.json"), ("val", "validation.json")):
        for item in json.loads(need(labels_dir / f).read_text()):
            cls = template_class(item["template"])
            if cls not in index:
                raise AnnotationError(f"{labels_dir / f}: template {item['template']!r} not in labels.json")
            rows.append((f"20bn-something-something-v2/{item['id']}.webm", index[cls], names[index[cls]], name))
    return pd.DataFrame(rows, columns=COLUMNS)


# ---------------------------------------------------------------- synthetic: mini-SSv2 (motion-only classes)

TEMPLATES = {
    "right": "Moving [something] from left to right", "left": "Moving [something] from right to left",
    "up": "Moving [something] up", "down": "Moving [something] down",
    "rotate_cw": "Turning [something] clockwise", "rotate_ccw": "Turning [something] counterclockwise",
    "grow": "Approaching [something] with your camera", "shrink": "Moving away from [something] with your camera",
    "oscillate_horizontal": "Shaking [something] left and right",
    "oscillate_vertical": "Shaking [something] up and down",
    "right_fast": "Pushing [something] quickly from left to right", "pulse": "Squeezing [something] repeatedly",
}


def _place(r: dict, digest: str) -> dict:
    return {"id": str(1 + r["k"]), "path": f"20bn-something-something-v2/{1 + r['k']}.webm"}


def _write_annotations(root: Path, records: list[dict]) -> None:
    from svt.synth import write_text

    labels = {}
    for r in records:
        labels.setdefault(r["name"], str(r["label"]))
    write_text(root / "labels" / "labels.json", json.dumps(labels, indent=1))
    for split, f in (("train", "train.json"), ("val", "validation.json")):
        items = [{"id": r["id"], "label": r["name"].lower(), "template": TEMPLATES[r["spec"]["motion"]],
                  "placeholders": ["object"]} for r in records if r["split"] == split]
        write_text(root / "labels" / f, json.dumps(items, indent=1))


def _synthetic() -> Synthetic:
    from svt import synth

    return Synthetic("libvpx-vp9", ".webm", 3, [{"motion": m} for m in synth.MOTIONS],
                     lambda spec: template_class(TEMPLATES[spec["motion"]]), _place, _write_annotations)


# ---------------------------------------------------------------- placed by hand

def check_placement(placed: Path) -> dict:
    """The user-placed SSv2 files: the 20-chunk package or the newer 2-segment one, plus the labels zip."""
    from svt.download import DownloadError

    labels = sorted(placed.glob("*labels*.zip")) if placed.is_dir() else []
    chunks = sorted(p for p in placed.glob("20bn-something-something-v2-??*") if not p.name.endswith(".zip")) \
        if placed.is_dir() else []
    wrapped = sorted(placed.glob("20bn-something-something-v2-??.zip")) if placed.is_dir() else []
    if not labels or not (chunks or wrapped):
        found = sorted(p.name for p in placed.iterdir()) if placed.is_dir() else f"no folder {placed}"
        raise DownloadError(
            f"SSv2 must be downloaded by hand (Qualcomm ID login, https://www.qualcomm.com/developer/software/"
            f"something-something-v-2-dataset). Put into {placed}/:\n"
            f"  - the video chunks: 20bn-something-something-v2-00 ... -19 (or their .zip wrappers), or the newer "
            f"two segments -00 and -01\n  - the labels zip (20bn-something-something-download-package-labels.zip "
            f"or labels.zip)\nthen rerun. Found: {found}")
    return {"labels": labels[0], "chunks": chunks, "wrapped": wrapped}


def download(cfg: dict, work: Path, workers: int) -> dict:
    return {"placed": check_placement(Path(cfg["placed"]))}


def extract(files: dict, stage: Path) -> dict:
    from svt.download import CHUNK, DownloadError
    from svt.download import extract as unpack

    p = files["placed"]
    raw = stage / "raw"
    raw.mkdir()
    for z in p["wrapped"]:
        unpack(z, raw)
    chunks = sorted(set(p["chunks"]) | set(raw.glob("20bn-something-something-v2-??")))
    with open(raw / "videos.tar.gz", "wb") as fh:  # the chunks are one split tar.gz
        for c in chunks:
            with open(c, "rb") as src:
                shutil.copyfileobj(src, fh, CHUNK)
    unpack(raw / "videos.tar.gz", stage)
    unpack(p["labels"], raw / "labels")
    (stage / "labels").mkdir()
    for new, old in (("labels", "something-something-v2-labels"), ("train", "something-something-v2-train"),
                     ("validation", "something-something-v2-validation")):
        hits = list((raw / "labels").rglob(f"{new}.json")) + list((raw / "labels").rglob(f"{old}.json"))
        if not hits:
            raise DownloadError(f"{p['labels']}: has no {new}.json or {old}.json")
        shutil.copy(hits[0], stage / "labels" / f"{new}.json")
    shutil.rmtree(raw)
    return {"videos": sum(1 for _ in (stage / "20bn-something-something-v2").glob("*.webm"))}


BENCHMARK = register(Benchmark(
    name="ssv2", display="SSv2", classes=174, read=read,
    listing=lambda name, split: f"labels/{'train' if name == 'train' else 'validation'}.json",
    synthetic=_synthetic(), tables=("table3",), download=download, extract=extract, placed_by_hand=True))
