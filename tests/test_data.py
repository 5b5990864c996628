"""Loaders: one decode per sample, deterministic samples, broken files counted and never fatal."""

import csv

import numpy as np
import pytest
import torch

import svt.data
from helpers import synth_dataset
from svt import augment
from svt.data import EvalDataset, PretrainDataset, make_loader
from svt.index import build_index, summarise
from svt.views import ViewConfig


@pytest.fixture(scope="module")
def k400(tmp_path_factory):
    return synth_dataset(tmp_path_factory.mktemp("k400"))


def test_pretraining_sample_has_the_ten_paper_views(k400):
    root, index = k400
    ds = PretrainDataset(index, root, ViewConfig(), augment.AugmentConfig())
    sample = ds[0]
    shapes = [tuple(v.shape) for v in sample["views"]]
    assert shapes == [(3, 16, 224, 224), (3, 8, 224, 224)] + [(3, t, 96, 96) for t in (2, 2, 4, 4, 8, 8, 16, 16)]
    assert sample["failed"] == []


def test_each_sample_is_decoded_exactly_once(k400, monkeypatch):
    root, index = k400
    calls = []
    real = svt.data.read_frames
    monkeypatch.setattr(svt.data, "read_frames", lambda *a, **k: calls.append(a[0]) or real(*a, **k))
    ds = PretrainDataset(index, root, ViewConfig(), augment.AugmentConfig())
    ds[1]
    assert len(calls) == 1


def test_samples_are_deterministic_given_seed_and_epoch_whatever_the_workers(k400):
    root, index = k400
    ds = PretrainDataset(index, root, ViewConfig(), augment.AugmentConfig(), seed=7)
    a = ds[2]["views"]
    b = next(iter(make_loader(ds, batch_size=6, workers=2, shuffle=False, seed=0)))["views"]
    assert all(torch.equal(x, y[2]) for x, y in zip(a, b))
    ds.set_epoch(1)
    assert not torch.equal(ds[2]["views"][0], a[0])


def test_eval_test_clips_are_slow_and_fast_at_three_crops(k400):
    root, index = k400
    ds = EvalDataset(index, root, "val", "test", clips=[(8, 224), (64, 96)], crops=3)
    clips = ds[0]["clips"]
    assert [tuple(c.shape) for c in clips] == [(3, 3, 8, 224, 224), (3, 3, 64, 96, 96)]


def _add_k400_rows(root, names):
    with open(root / "annotations" / "train.csv", "a", newline="") as fh:
        w = csv.writer(fh)
        for yid in names:
            w.writerow(["broken (synthetic)", yid, 0, 10, "train", 0])


def test_broken_files_are_quarantined_by_the_index_and_an_epoch_completes(tmp_path):
    root, index = synth_dataset(tmp_path)
    videos = root / "videos" / "train"
    good = sorted(videos.iterdir())
    data = good[0].read_bytes()
    (videos / "trunc000000_000000_000010.mp4").write_bytes(data[: len(data) // 3])
    (videos / "empty000000_000000_000010.mp4").write_bytes(b"")
    (videos / "text0000000_000000_000010.mp4").write_text("this is not a video\n")
    _add_k400_rows(root, ["trunc000000", "empty000000", "text0000000"])

    index = build_index("kinetics400", root, deep=True, workers=2)
    summary = summarise(index, "kinetics400")
    reasons = {q["path"].split("/")[-1][:5]: q["reason"] for q in summary["quarantine"]}
    assert set(reasons) == {"trunc", "empty", "text0"} and reasons["empty"] == "empty file"

    # A file that breaks after indexing (bytes overwritten mid-stream) is replaced during the epoch.
    damaged = bytearray(good[1].read_bytes())
    damaged[len(damaged) // 2: len(damaged) // 2 + 2000] = b"\xff" * 2000  # several NAL units: no concealment
    good[1].write_bytes(bytes(damaged))
    ds = PretrainDataset(index, root, ViewConfig(global_views=ViewConfig().global_views), augment.AugmentConfig())
    failed, seen = [], 0
    for batch in make_loader(ds, batch_size=2, workers=2, shuffle=True, seed=0):
        failed += batch["failed"]
        seen += len(batch["index"])
    assert seen == len(ds) == 6
    assert failed and all(p.endswith(good[1].name) for p in failed)


def test_eval_skips_and_counts_a_video_that_fails_at_test_time(tmp_path):
    root, index = synth_dataset(tmp_path)
    target = root / index[index.split == "val"].path.iloc[0]
    damaged = bytearray(target.read_bytes())
    damaged[len(damaged) // 2: len(damaged) // 2 + 2000] = b"\xff" * 2000  # several NAL units: no concealment
    target.write_bytes(bytes(damaged))
    ds = EvalDataset(index, root, "val", "test", clips=[(16, 32)], crops=1)
    labels = [ds[i]["label"] for i in range(len(ds))]
    assert labels.count(-1) == 1


def test_no_usable_videos_is_an_error_naming_the_split(k400):
    root, index = k400
    with pytest.raises(ValueError, match="'test'"):
        EvalDataset(index, root, "test", "test", clips=[(8, 32)])


def test_frames_are_cropped_and_resized_in_one_call():
    frames = np.random.default_rng(0).integers(0, 255, (5, 40, 60, 3), dtype=np.uint8)
    x = svt.data.crop_resize(frames, (4, 10, 32, 32), 16)
    assert x.shape == (5, 3, 16, 16) and x.min() >= 0 and x.max() <= 1


@pytest.mark.parametrize("size", [16, 32, 48])
def test_uint8_crop_resize_is_the_float_resize_within_one_grey_level(size):
    frames = np.random.default_rng(1).integers(0, 256, (4, 40, 60, 3), dtype=np.uint8)
    crop = (4, 10, 32, 32)
    x = svt.data.crop_resize(frames, crop, size)
    ref = torch.from_numpy(frames[:, 4:36, 10:42]).permute(0, 3, 1, 2).double() / 255
    if size != 32:
        ref = torch.nn.functional.interpolate(ref, size=(size, size), mode="bilinear", antialias=True,
                                              align_corners=False).clamp(0, 1)
    assert x.dtype == torch.float32 and x.shape == (4, 3, size, size)
    assert float((x.double() - ref).abs().max()) * 255 <= 1.01


# ------------------------------------------------------------------ augmentation on the training device (issue #15)

@pytest.mark.parametrize("consistent", [True, False])
def test_device_augmentation_draws_the_loaders_parameters_and_gives_its_views(k400, consistent):
    """augment_on: device moves only where the work runs: the same parameters from the same generator, and the
    batched pass over the whole batch gives each sample's loader-path views (w/o TCA too: per-frame draws)."""
    root, index = k400
    cfg = augment.AugmentConfig(temporally_consistent=consistent)
    loader_path = PretrainDataset(index, root, ViewConfig(), cfg, seed=3)
    device_path = PretrainDataset(index, root, ViewConfig(), cfg, seed=3, augment_in_loader=False)
    batch = next(iter(make_loader(device_path, batch_size=4, workers=0, shuffle=False, seed=0)))
    assert len(batch["params"]) == 10 and all(len(p) == 4 for p in batch["params"])
    assert all(v.dtype == torch.uint8 and v.shape[-1] == 3 for v in batch["views"])  # (B, T, S, S, 3)
    out = [augment.apply_batch(augment.from_uint8(v), ps) for v, ps in zip(batch["views"], batch["params"])]
    for b in range(4):
        expected = loader_path[b]
        for k in range(10):
            torch.testing.assert_close(out[k][b], expected["views"][k], rtol=0, atol=1e-4)
    # the draws really differ between samples and views, so the batched pass had per-sample work to do
    assert len({float(p["brightness"][0]) for ps in batch["params"] for p in ps}) > 30


def test_batched_augmentation_mixes_jitter_orders_and_blur_widths_per_frame():
    rng = np.random.default_rng(0)
    cfg = augment.AugmentConfig(temporally_consistent=False)
    params = [augment.sample_params(cfg, 4, slot, rng) for slot in (0, 1, 2)]
    views = torch.rand(3, 3, 4, 20, 20)
    batched = augment.apply_batch(views, params)
    for b in range(3):
        alone = augment.apply(views[b].transpose(0, 1), params[b]).transpose(0, 1)
        torch.testing.assert_close(batched[b], alone, rtol=0, atol=1e-5)
