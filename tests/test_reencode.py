"""The optional re-encoded copy: resized to a short side, dense keyframes, same layout and frames, resumable."""

import av
import numpy as np
import pytest
import torch
import torch.nn.functional as F
import yaml

from helpers import TINY, sequential_decode
from svt.index import build_index
from svt.reencode import reencode_dataset, target_size
from svt.settings import Reencode
from svt.synth import synthesize
from svt.video import DecodeError, probe, read_frames
from svt.views import ViewConfig, sample_views, union_indices
from test_workflow import DEMO, planned_jobs, workdir


def keyframe_gaps(path) -> set[int]:
    with av.open(str(path)) as c:
        keys = [i for i, p in enumerate(c.demux(c.streams.video[0])) if p.is_keyframe and p.size]
    return {b - a for a, b in zip(keys, keys[1:])}


def test_short_side_is_scaled_to_the_target_and_never_up():
    assert target_size(340, 256, 256) == (340, 256)
    assert target_size(640, 480, 256) == (342, 256)
    assert target_size(480, 640, 320) == (320, 426)


def test_reencoded_copy_keeps_layout_labels_and_frames_with_dense_keyframes(tmp_path):
    synthesize("ucf101", tmp_path / "src", TINY)
    summary = reencode_dataset(tmp_path / "src", tmp_path / "out", short_side=32, gop=4)
    assert summary["videos"] == TINY.classes * (TINY.train_per_class + TINY.val_per_class)
    assert not summary["kept_unchanged"]
    before, after = build_index("ucf101", tmp_path / "src"), build_index("ucf101", tmp_path / "out")
    assert (after.status == "ok").all()
    assert list(after.path) == list(before.path) and list(after.label) == list(before.label)
    assert list(after.frames) == list(before.frames)
    assert set(zip(after.width, after.height)) == {(42, 32)}
    assert keyframe_gaps(tmp_path / "out" / after.path.iloc[0]) <= {4}
    assert set(before.backend) == {"decord"} and set(after.backend) == {"gop"}  # the copies: the GOP reader
    again = reencode_dataset(tmp_path / "src", tmp_path / "out", short_side=32, gop=4)
    assert again["videos"] == 0  # everything already there: a rerun resumes


def test_a_reencoded_dataset_is_what_the_index_reads(tmp_path):
    cfg = yaml.safe_load(yaml.safe_dump(DEMO))
    cfg["datasets"]["ucf101"]["reencode"] = {"short_side": 256}
    jobs = planned_jobs(workdir(tmp_path, cfg), "resources/index/ucf101.parquet")
    assert jobs == {"synthesize[dataset=ucf101]", "reencode[dataset=ucf101]", "index[dataset=ucf101]"}


# The quality bound of the default copy, measured on the 37 decodable reference clips (K400, UCF-101, HMDB-51,
# SSv2, edge cases; docs/data.md): PSNR 29.0-46.3 dB (median 34.6), mean absolute difference 0.7-6.4 grey levels
# against the original resized to the copy's size (the resize kernels differ too).
MIN_PSNR_DB, MAX_MAD = 28.0, 7.0


@pytest.mark.slow
def test_every_real_reference_clip_is_reencoded_within_the_quality_bound_and_read_exactly(shared, tmp_path):
    """Real files (K400 mp4 at 28-30 fps, an mkv, a rotated mov, HMDB AVIs with odd metadata, SSv2 webm) copied
    with the default settings: none is kept unencoded except the corrupted one; each copy keeps its original's
    frame count, orientation and (within the bound) pixels; the index reads every copy with the GOP reader, and
    every view of the paper's sampler equals the sequential decode of the copy."""
    src = tmp_path / "src"
    for f in (shared / "sample_videos").rglob("*"):
        if f.suffix in (".mp4", ".mkv", ".avi", ".webm", ".mov") and f.parent.parent.name != "ntu_rgbd":
            (src / f.relative_to(shared / "sample_videos")).parent.mkdir(parents=True, exist_ok=True)
            (src / f.relative_to(shared / "sample_videos")).symlink_to(f)
    summary = reencode_dataset(src, tmp_path / "out", workers=2)
    assert [e.split(":")[0] for e in summary["kept_unchanged"]] == [str(src / "edge_cases/corrupted/corrupted.mp4")]
    checked = 0
    for k, f in enumerate(sorted(src.rglob("*"))):
        if not f.is_file() or "corrupted" in f.name:
            continue
        try:
            before = probe(f, deep=True)
        except DecodeError:
            continue
        copy = tmp_path / "out" / f.relative_to(src)
        after = probe(copy, deep=True)
        assert (after.frames, after.backend) == (before.frames, "gop"), f
        assert min(after.width, after.height) == min(Reencode().short_side, before.width, before.height), f
        sequential = sequential_decode(copy)
        for seed in range(3):
            views = sample_views(after.frames, after.height, after.width, ViewConfig(), np.random.default_rng(seed))
            union, _ = union_indices(views)
            assert np.array_equal(read_frames(copy, union, after.frames, backend="gop"), sequential[union]), f
        idx = np.linspace(0, before.frames - 1, 12).round().astype(int)
        original = torch.from_numpy(read_frames(f, idx, before.frames, backend=before.backend)).permute(0, 3, 1, 2)
        original = F.interpolate(original.float(), size=(after.height, after.width), mode="bilinear",
                                 antialias=True, align_corners=False).round().clamp(0, 255)
        diff = original - torch.from_numpy(sequential[idx]).permute(0, 3, 1, 2).float()
        psnr = 10 * np.log10(255**2 / float((diff**2).mean()))
        assert psnr >= MIN_PSNR_DB and float(diff.abs().mean()) <= MAX_MAD, (f, psnr)
        checked += 1
    assert checked == 37
