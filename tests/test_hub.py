"""torch.hub: the repository's hubconf builds the SVT backbone and loads weights through the project's loader; its
features are those `svt features` computes for the same clip and checkpoint."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from helpers import synth_dataset
from svt import augment
from svt.checkpoint import export_official
from svt.data import crop_resize
from svt.model import build_backbone
from svt.synth import SynthConfig
from svt.video import read_frames
from svt.views import eval_test_views, union_indices

REPO = Path(__file__).resolve().parents[1]
CLIPS = {"slow_clip": {"frames": 2, "size": 32}, "fast_clip": {"frames": 4, "size": 16}, "crops": 1,
         "precision": "fp32"}


@pytest.fixture(scope="module")
def vit_base_checkpoint(tmp_path_factory):
    """ViT-B/16 weights in the official flat format with the sidecar svt pretrain writes (not the init: seeded
    noise on every tensor, so that loading the wrong key or skipping one changes the features)."""
    tmp = tmp_path_factory.mktemp("hub")
    torch.manual_seed(0)
    net = build_backbone("vit_base_patch16", num_frames=8)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.02 * torch.randn_like(p))
    path = tmp / "svt_vitb.pth"
    export_official(path, net, meta={"config": {"model": {"preset": "vit_base_patch16", "num_frames": 8,
                                                          "img_size": 224}}})
    return tmp, path


def test_hub_load_of_the_clone_gives_the_features_svt_features_computes(vit_base_checkpoint):
    tmp, ckpt = vit_base_checkpoint
    root, index = synth_dataset(tmp, "ucf101", SynthConfig(classes=1, train_per_class=1, val_per_class=1,
                                                           width=48, height=32, frames=12))
    video = root / index.path.iloc[0]
    out = tmp / "feats.parquet"
    subprocess.run([sys.executable, "-m", "svt", "features", "--checkpoint", str(ckpt), "--videos", str(video.parent),
                    "--out", str(out), "--config", json.dumps(CLIPS)], check=True, capture_output=True)
    table = pd.read_parquet(out)
    expected = np.asarray(table.set_index("path").loc[str(video.resolve()), "feature"])

    backbone = torch.hub.load(str(REPO), "svt_vit_base", source="local", weights=str(ckpt))
    assert backbone.cfg.embed_dim == 768 and backbone.cfg.depth == 12 and not backbone.training
    n, h, w = int(index.frames.iloc[0]), int(index.height.iloc[0]), int(index.width.iloc[0])
    views = eval_test_views(n, h, w, [(2, 32), (4, 16)], crops=1)
    union, positions = union_indices(views)
    frames = read_frames(video, union, num_frames=n)
    clips = [augment.normalize(crop_resize(frames[pos], v.crop, v.size)).transpose(0, 1)[None]
             for v, pos in zip(views, positions)]
    with torch.no_grad():
        feature = torch.stack([backbone(c) for c in clips]).mean(0)[0].numpy()  # slow and fast CLS averaged
    np.testing.assert_allclose(feature, expected, rtol=1e-4, atol=1e-5)


def test_hub_entry_points_refuse_weights_of_another_architecture_naming_the_file(vit_base_checkpoint):
    _, ckpt = vit_base_checkpoint
    with pytest.raises(ValueError, match=str(ckpt)):
        torch.hub.load(str(REPO), "svt_vit_tiny", source="local", weights=str(ckpt))
    with pytest.raises(FileNotFoundError, match="nowhere.pth"):
        torch.hub.load(str(REPO), "svt_vit_micro", source="local", weights="nowhere.pth")
    micro = torch.hub.load(str(REPO), "svt_vit_micro", source="local")  # no weights: the seeded init
    assert micro.cfg.embed_dim == 64
