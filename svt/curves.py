"""`svt curves`: training curves of pretraining and fine-tuning runs, from each run's metrics.jsonl.

Pretraining: loss, the teacher's mutual information between clip and prototype (0 nats = the teacher ignores its
input: collapse), learning rate and clips/s against iteration. Fine-tuning: loss, top-1 on the training batch,
learning rate and clips/s. Noisy series are drawn raw (thin) with a running mean over ~5% of the run.
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from svt.figures import save_figure  # noqa: E402

# (field, title, smoothed); the kind of run is told by the fields its log has
PRETRAINING = [("loss", "loss", True), ("teacher_mutual_information", "teacher MI (nats; 0 = collapse)", True),
               ("lr", "learning rate", False), ("clips_per_s", "clips/s", True)]
FINETUNING = [("loss", "loss", True), ("accuracy", "train top-1 (%)", True), ("lr", "learning rate", False),
              ("clips_per_s", "clips/s", True)]


def read_log(path: str | Path) -> list[dict]:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no metrics log (the run's work folder holds it; was it moved or deleted?)")
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    if not rows:
        raise ValueError(f"{path}: the metrics log is empty (the run logged no iteration)")
    return rows


def running_mean(y: np.ndarray, window: int) -> np.ndarray:
    if window <= 1:
        return y
    c = np.cumsum(np.insert(y, 0, 0.0))
    out = (c[window:] - c[:-window]) / window
    return np.concatenate([np.cumsum(y[:window - 1]) / np.arange(1, window), out])


def curves_figure(label: str, rows: list[dict], out: str | Path) -> str:
    """The four panels of one run; returns the kind of run ("pretraining" or "fine-tuning")."""
    kind, panels = ("pretraining", PRETRAINING) if "teacher_mutual_information" in rows[0] else \
        ("fine-tuning", FINETUNING)
    it = np.array([r["iteration"] for r in rows])
    window = max(1, len(rows) // 20)
    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 2.6))
    for ax, (field, title, smooth) in zip(axes, panels):
        y = np.array([r.get(field, np.nan) for r in rows], dtype=float) * (100 if field == "accuracy" else 1)
        ax.plot(it, y, lw=0.6, alpha=0.45 if smooth else 1.0, color="tab:blue")
        if smooth and window > 1:
            ax.plot(it, running_mean(y, window), lw=1.6, color="tab:blue")
        if field == "teacher_mutual_information":
            ax.axhline(0.0, color="tab:red", lw=0.8, ls="--")
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("iteration", fontsize=8)
        ax.tick_params(labelsize=7)
    fig.suptitle(f"{label} ({kind}, {len(rows)} iterations, epoch {rows[-1].get('epoch', 0) + 1})", fontsize=10)
    fig.tight_layout()
    save_figure(fig, str(out))
    return kind


def add_curves_arguments(p):
    p.add_argument("--run", action="append", required=True, metavar="LABEL=METRICS_JSONL",
                   help="a run's label and its work folder's metrics.jsonl (repeat for several runs)")
    p.add_argument("--out-dir", required=True, help="one LABEL.png (and LABEL.pdf) per run is written here")


def run_curves(args) -> int:
    for spec in args.run:
        label, sep, path = spec.partition("=")
        if not sep or not label or not path:
            raise ValueError(f"--run {spec!r}: expected LABEL=path/to/metrics.jsonl")
        rows = read_log(path)
        kind = curves_figure(label, rows, Path(args.out_dir) / f"{label}.png")
        print(f"{label}: {kind}, {len(rows)} iterations -> {Path(args.out_dir) / label}.png")
    return 0
