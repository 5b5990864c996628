"""Diagnostic for issue #5: can the demo's micro ViT learn mini-SSv2's motion classes at all, given labels?

Trains the backbone from random init + a linear layer with AdamW (warm-up, cosine) on the slow clip of each
training video, and prints train loss / accuracy and the 3-crop test top-1 every 5 epochs. If this reaches well
above chance while SVT pretraining + a linear probe stays at chance, the data carry the motion signal and the
self-supervised stage is what misses it.
Usage: python bench/motion_supervised.py --index ssv2.parquet --root DIR [--epochs 30] [--lr 1e-3]
(an index of a larger mini-SSv2: `svt synth --dataset ssv2 --classes 6 --train-per-class 150 --val-per-class 20`,
then `svt index`).
"""

import argparse
import math
import time

import torch
import torch.nn.functional as F

from svt.data import make_loader
from svt.settings import evaluation as eval_settings
from svt.evaluate import eval_datasets, extract, load_backbone
from svt.finetune import VideoClassifier
from svt.index import read_index


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--index", required=True)
    p.add_argument("--root", required=True)
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--batch", type=int, default=32)
    args = p.parse_args()
    cfg = eval_settings({"model": {"img_size": 48, "num_frames": 16, "preset": "vit_micro_patch8"},
                       "slow_clip": {"frames": 8, "size": 48}, "slow_fast": False, "crops": 3, "flip": False,
                       "batch_size": args.batch, "data": {"workers": 1}})
    index = read_index(args.index)
    train, test = eval_datasets(index, args.root, cfg)
    backbone, _ = load_backbone("random", cfg, torch.device("cpu"))
    model = VideoClassifier(backbone, int(index.label.max()) + 1, dropout=0.0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.05)
    total = args.epochs * (len(train) // args.batch)
    lr = [args.lr * min(1.0, (i + 1) / 50) * 0.5 * (1 + math.cos(math.pi * i / total)) for i in range(total)]
    it, t0 = 0, time.time()
    for epoch in range(args.epochs):
        train.set_epoch(epoch)
        model.train()
        losses, correct, seen = [], 0, 0
        for batch in make_loader(train, args.batch, 1, shuffle=True, seed=epoch, drop_last=True):
            for g in optimizer.param_groups:
                g["lr"] = lr[it]
            logits = model(batch["clips"])
            loss = F.cross_entropy(logits, batch["label"])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            it += 1
            losses.append(loss.item())
            correct += int((logits.argmax(-1) == batch["label"]).sum())
            seen += len(batch["label"])
        if (epoch + 1) % 5 == 0 or epoch + 1 == args.epochs:
            scored = extract(model.backbone, test, cfg, torch.device("cpu"), None, "test")
            with torch.no_grad():
                probs = model.head(scored["features"]).softmax(-1).mean(1)
            top1 = 100 * float((probs.argmax(-1) == scored["labels"]).float().mean())
            print(f"epoch {epoch + 1}: train loss {sum(losses) / len(losses):.3f}, "
                  f"train acc {100 * correct / seen:.1f}, "
                  f"test top-1 {top1:.2f} over {len(probs)} videos (chance {100 / model.head.out_features:.2f}); "
                  f"{time.time() - t0:.0f} s", flush=True)


if __name__ == "__main__":
    main()
