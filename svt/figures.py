"""`svt attention` (the paper's Figure 3) and `svt delta` (published vs reproduced, every table cell).

Figure 3: the last block's CLS-to-patch attention (mean over heads) of each given model over 4 uniformly
sampled frames of 2 videos, overlaid on the centre-cropped frames. Written as PNG and PDF. The same rendering
for any one clip and checkpoint (`svt attention --checkpoint CKPT --video CLIP`): heads averaged and per head.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from svt import augment  # noqa: E402
from svt.config import load_settings  # noqa: E402
from svt.data import crop_resize, ok_rows  # noqa: E402
from svt.evaluate import load_backbone  # noqa: E402
from svt.settings import evaluation  # noqa: E402
from svt.index import read_index  # noqa: E402
from svt.io import atomic_write  # noqa: E402
from svt.model import PRESETS  # noqa: E402
from svt.tables import reproduced_columns  # noqa: E402
from svt.video import probe, read_frames  # noqa: E402
from svt.views import uniform_indices  # noqa: E402


def save_figure(fig, out: str) -> None:
    """PNG at `out` and a PDF twin, both written atomically."""
    for path in (Path(out), Path(out).with_suffix(".pdf")):
        atomic_write(path, lambda tmp, fmt=path.suffix[1:]: fig.savefig(tmp, format=fmt, dpi=150,
                                                                         bbox_inches="tight"))
    plt.close(fig)


def centre_clip(path: str | Path, num_frames: int, backend: str, frames: int, size: int) -> tuple:
    """`frames` uniformly sampled frames, centre-cropped and resized: the image (T, S, S, 3) in [0, 1] and the
    normalised model input (3, T, S, S)."""
    idx = uniform_indices(0, num_frames, frames, num_frames)
    raw = read_frames(path, idx, num_frames=num_frames, backend=backend)
    side = min(raw.shape[1:3])
    top, left = (raw.shape[1] - side) // 2, (raw.shape[2] - side) // 2
    x = crop_resize(raw, (top, left, side, side), size)  # (T, 3, S, S) in [0, 1]
    return x.permute(0, 2, 3, 1).numpy(), augment.normalize(x).transpose(0, 1)


def attention_figure(models: list[tuple[str, str]], index_path: str, root: str, cfg: dict, out: str,
                     videos: int = 2, frames: int = 4, split: str = "val") -> None:
    cfg = evaluation(cfg)
    rows = ok_rows(read_index(index_path), split)
    picks = rows.iloc[np.linspace(0, len(rows) - 1, videos).round().astype(int)]
    size = cfg.slow_clip.size
    clips, images = [], []
    for row in picks.itertuples():
        image, clip = centre_clip(Path(root) / row.path, int(row.frames), row.backend, frames, size)
        images.append(image)
        clips.append(clip)
    video = torch.stack(clips)

    fig, axes = plt.subplots(len(models) * videos, frames + 1, figsize=(2 * (frames + 1), 2 * len(models) * videos),
                             gridspec_kw={"width_ratios": [1] * frames + [0.05]})
    for m, (label, checkpoint) in enumerate(models):
        backbone, _ = load_backbone(checkpoint, cfg, torch.device("cpu"))
        backbone.eval()
        attn = backbone.last_attention(video).mean(2)  # (B, T, h, w), mean over heads
        attn = F.interpolate(attn, size=(size, size), mode="bilinear", align_corners=False)
        for v in range(videos):
            r = m * videos + v
            a = normalised(attn[v].numpy())
            im = overlay_row(axes[r], images[v], a, f"{label}\nvideo {v + 1}", r == 0)
            fig.colorbar(im, cax=axes[r, frames])
    fig.suptitle("Last-block CLS attention (mean over heads)", fontsize=10)
    save_figure(fig, out)


def normalised(a: np.ndarray) -> np.ndarray:
    return (a - a.min()) / (a.max() - a.min() + 1e-8)


def overlay_row(axes, images: np.ndarray, maps: np.ndarray, label: str, titles: bool):
    """One figure row: each frame with its attention map (in [0, 1]) over it; returns the last map's image."""
    for t in range(len(images)):
        ax = axes[t]
        ax.imshow(images[t])
        im = ax.imshow(maps[t], cmap="inferno", alpha=0.55, vmin=0, vmax=1)
        ax.set_xticks([])
        ax.set_yticks([])
        if t == 0:
            ax.set_ylabel(label, fontsize=8)
        if titles:
            ax.set_title(f"frame {t + 1}/{len(images)}", fontsize=8)
    return im


def clip_attention(checkpoint: str, video: str, cfg: dict, out: str, frames: int = 4) -> np.ndarray:
    """Figure 3's rendering for one clip and one checkpoint: the last block's CLS-to-patch attention over
    `frames` uniformly sampled frames, the mean over heads and every head on its own. The maps drawn,
    (T, heads, h, w) = backbone.last_attention of the clip, are saved beside the figure (.npz) and returned."""
    cfg = evaluation(cfg)
    info = probe(video, deep=True)  # exact frames: sequential decoding where random access is not exact
    size = cfg.slow_clip.size
    image, clip = centre_clip(video, info.frames, info.backend, frames, size)
    backbone, _ = load_backbone(checkpoint, cfg, torch.device("cpu"))
    backbone.eval()
    with torch.no_grad():
        attn = backbone.last_attention(clip[None])[0]  # (T, heads, h, w)
    heads = attn.shape[1]
    up = F.interpolate(attn, size=(size, size), mode="bilinear", align_corners=False).numpy()
    rows = [("mean over heads", up.mean(1))] + [(f"head {h + 1}", up[:, h]) for h in range(heads)]
    fig, axes = plt.subplots(len(rows), frames, figsize=(2 * frames, 2 * len(rows)), squeeze=False)
    for r, (label, maps) in enumerate(rows):
        overlay_row(axes[r], image, normalised(maps), label, r == 0)
    fig.suptitle(f"Last-block CLS attention: {Path(video).name}\n{Path(str(checkpoint)).name}", fontsize=9)
    save_figure(fig, out)
    maps = attn.numpy()
    atomic_write(Path(out).with_suffix(".npz"), lambda tmp: np.savez(open(tmp, "wb"), attention=maps))
    return maps


def delta_figure(tables: list[str], out: str) -> pd.DataFrame:
    """Published vs reproduced top-1 for every cell that has both, with the reproduced number's 95% interval as
    an error bar. The cells (with their intervals) are written beside the figure as CSV; returns them."""
    cells = []
    for path in tables:
        df = pd.read_csv(path)
        for col in reproduced_columns(df):
            base, _, kind = col.rpartition(" (")
            pub = f"{base} (published)"
            if pub not in df.columns:
                continue
            value = pd.to_numeric(df[col], errors="coerce")  # "not run" cells drop out
            for i in df.index[value.notna() & df[pub].notna()]:
                cells.append({"table": Path(path).stem, "column": base, "weights": kind.rstrip(")"),
                              "published": float(df.at[i, pub]), "reproduced": float(value[i]),
                              "low": float(df.at[i, f"{col} low"]), "high": float(df.at[i, f"{col} high"]),
                              "n": int(df.at[i, f"{col} n"])})
    cells = pd.DataFrame(cells, columns=["table", "column", "weights", "published", "reproduced", "low", "high", "n"])
    fig, ax = plt.subplots(figsize=(5, 5))
    for table, group in cells.groupby("table"):
        err = [group["reproduced"] - group["low"], group["high"] - group["reproduced"]]
        ax.errorbar(group["published"], group["reproduced"], yerr=err, fmt="o", ms=4, capsize=2, lw=0.8,
                    label=table)
    ax.plot([0, 100], [0, 100], color="grey", lw=0.8, ls="--")
    ax.set_xlim(0, 100)
    ax.set_ylim(0, 100)
    ax.set_xlabel("published top-1 (%)")
    ax.set_ylabel("reproduced top-1 (%), 95% Wilson interval")
    ax.set_title(f"Published vs reproduced ({len(cells)} cells)")
    if len(cells):
        ax.legend(fontsize=7)
    save_figure(fig, out)
    atomic_write(Path(out).with_suffix(".csv"), lambda tmp: cells.to_csv(tmp, index=False))
    return cells


def add_attention_arguments(p):
    one = p.add_argument_group("one clip (any video, any checkpoint)")
    one.add_argument("--checkpoint", help="weights (any format svt reads) or `random`")
    one.add_argument("--video", help="the clip")
    one.add_argument("--frames", type=int, default=4, help="frames shown")
    one.add_argument("--model", default="vit_base_patch16", choices=sorted(PRESETS),
                     help="architecture when the checkpoint has no sidecar JSON (svt pretrain writes one)")
    fig3 = p.add_argument_group("Figure 3 (the workflow): models side by side on validation videos of a dataset")
    fig3.add_argument("--compare", nargs=2, action="append", metavar=("LABEL", "CHECKPOINT"),
                      help="a row group of the figure: label and checkpoint (repeat)")
    fig3.add_argument("--index")
    fig3.add_argument("--root")
    p.add_argument("--config", help="evaluation settings (clip size; model for random / image checkpoints)")
    p.add_argument("--out", required=True, help="PNG; a PDF twin is written beside it (one clip: the maps as .npz)")


def run_attention(args) -> int:
    cfg = load_settings(args.config, "evaluation") if args.config else {}
    if args.video or args.checkpoint:
        if not (args.video and args.checkpoint) or args.compare:
            raise ValueError("one clip needs --checkpoint and --video (and no --compare)")
        if not Path(args.video).is_file():
            raise FileNotFoundError(f"--video {args.video}: no such file")
        cfg.setdefault("model", {"preset": args.model})
        clip_attention(args.checkpoint, args.video, cfg, args.out, args.frames)
        return 0
    if not (args.compare and args.index and args.root and args.config):
        raise ValueError("give --checkpoint and --video (one clip), or --compare, --index, --root and --config "
                         "(Figure 3)")
    attention_figure([tuple(m) for m in args.compare], args.index, args.root, cfg, args.out)
    return 0


def add_delta_arguments(p):
    p.add_argument("--tables", nargs="+", required=True, help="table CSVs written by svt table")
    p.add_argument("--out", required=True, help="PNG; a PDF twin and the cells as CSV are written beside it")


def run_delta(args) -> int:
    cells = delta_figure(args.tables, args.out)
    print(f"{len(cells)} cells; mean |published - reproduced| = "
          f"{(cells['published'] - cells['reproduced']).abs().mean():.2f} points" if len(cells) else "0 cells")
    return 0
