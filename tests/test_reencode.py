"""The optional re-encoded copy: resized to a short side, dense keyframes, same layout and frames, resumable."""

import av
import yaml

from helpers import TINY
from svt.index import build_index
from svt.reencode import reencode_dataset, target_size
from svt.synth import synthesize
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
    again = reencode_dataset(tmp_path / "src", tmp_path / "out", short_side=32, gop=4)
    assert again["videos"] == 0  # everything already there: a rerun resumes


def test_a_reencoded_dataset_is_what_the_index_reads(tmp_path):
    cfg = yaml.safe_load(yaml.safe_dump(DEMO))
    cfg["datasets"]["ucf101"]["reencode"] = {"short_side": 256}
    jobs = planned_jobs(workdir(tmp_path, cfg), "resources/index/ucf101.parquet")
    assert jobs == {"synthesize[dataset=ucf101]", "reencode[dataset=ucf101]", "index[dataset=ucf101]"}


def test_every_real_reference_clip_is_reencoded_with_its_frames_and_dense_keyframes(shared, tmp_path):
    """Real files (K400 mp4 at 28-30 fps, an mkv, HMDB AVIs with odd metadata, SSv2 webm): none is kept
    unencoded, except the corrupted one, and each copy decodes to the frames of its original."""
    from svt.video import DecodeError, probe

    src = tmp_path / "src"
    for f in (shared / "sample_videos").rglob("*"):
        if f.suffix in (".mp4", ".mkv", ".avi", ".webm") and f.parent.parent.name != "ntu_rgbd":
            (src / f.relative_to(shared / "sample_videos")).parent.mkdir(parents=True, exist_ok=True)
            (src / f.relative_to(shared / "sample_videos")).symlink_to(f)
    summary = reencode_dataset(src, tmp_path / "out", short_side=128, gop=8, workers=2)
    assert [e.split(":")[0] for e in summary["kept_unchanged"]] == [str(src / "edge_cases/corrupted/corrupted.mp4")]
    checked = 0
    for f in src.rglob("*"):
        if not f.is_file() or "corrupted" in f.name:
            continue
        try:
            before = probe(f, deep=True)
        except DecodeError:
            continue
        after = probe(tmp_path / "out" / f.relative_to(src), deep=True)
        assert after.frames == before.frames, f
        assert min(after.width, after.height) == min(128, before.width, before.height) or after.width <= 128
        checked += 1
    assert checked >= 30
