"""Every view holds the frames it claims: the index decodes each file once sequentially, marks files whose random
access returns other frames for sequential decoding, and quarantines files that decode only in part, through the
workflow's own index rule."""

import json
import shutil
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pandas as pd
import yaml

from helpers import sequential_decode
from svt.augment import AugmentConfig
from svt.data import PretrainDataset
from svt.index import build_index, summarise
from svt.video import probe
from svt.views import ViewConfig

TRUMAN = "hmdb51/wave/TrumanShow_wave_f_nm_np1_fr_med_26.avi"


def test_the_divx_clip_decord_misreads_is_counted_exactly_and_decoded_sequentially(shared):
    clip = shared / "sample_videos" / TRUMAN
    info = probe(clip, deep=True)
    assert info.frames == 48 and info.frames_header == 49  # a full decode, not the header or a get_batch
    assert info.backend == "pyav" and info.access == "sequential: random access returns other frames"


def view_frames(root: Path, index: pd.DataFrame, truth: np.ndarray, draws: int = 12) -> tuple[int, int]:
    """(frames of the 10 views over `draws` plans that differ from a sequential decode at their indices, frames)."""
    ds = PretrainDataset(index, root, ViewConfig(), AugmentConfig())
    wrong = checked = 0
    for epoch in range(draws):  # many draws of the 10 views' windows
        ds.set_epoch(epoch)
        plan = ds.plan(ds.rows.iloc[0], ds.rng(0))
        for view, got in zip(plan, ds.decode_views(ds.rows.iloc[0], plan)):
            want = truth[np.clip(np.asarray(view.indices), 0, len(truth) - 1)]
            wrong += int((np.abs(got.astype(np.int16) - want).mean(axis=(1, 2, 3)) > 1.0).sum())
            checked += len(view.indices)
    return wrong, checked


def one_video_index(root: Path, rel: str) -> pd.DataFrame:
    return pd.DataFrame([{"path": rel, "label": 0, "label_name": "x", "split": "train", "status": "ok",
                          **probe(root / rel, deep=True).to_dict()}])


def test_every_view_of_the_divx_clip_equals_a_sequential_decode_at_its_planned_indices(shared, tmp_path):
    root = tmp_path / "hmdb"
    (root / "wave").mkdir(parents=True)
    (root / "wave" / "truman.avi").symlink_to(shared / "sample_videos" / TRUMAN)
    index = one_video_index(root, "wave/truman.avi")
    assert index.at[0, "frames"] == 48
    wrong, checked = view_frames(root, index, sequential_decode(root / "wave" / "truman.avi"))
    assert wrong == 0 and checked > 500


def write_bframe_avi(path: Path, frames: int = 60) -> None:
    """MPEG-4 part 2 with B-frames in AVI (HMDB-51's DivX kind), a moving square on a ramp with noise. 128 wide:
    at 96 decord2 fails on it outright (a row-alignment size check), which the index handles as well, but that
    is not the silent case."""
    rng = np.random.default_rng(0)
    with av.open(str(path), "w", format="avi") as out:
        stream = out.add_stream("mpeg4", rate=25)
        stream.width, stream.height, stream.pix_fmt = 128, 64, "yuv420p"
        stream.options = {"bf": "2", "g": "20"}
        stream.codec_context.time_base = Fraction(1, 25)
        for i in range(frames):
            img = np.zeros((64, 128, 3), np.int64)
            img[..., 0] = i * 4 % 256
            img[i * 3 % 56:i * 3 % 56 + 8, i * 5 % 120:i * 5 % 120 + 8] = 255
            img = (img + rng.integers(0, 20, img.shape)).clip(0, 255).astype(np.uint8)
            frame = av.VideoFrame.from_ndarray(img, format="rgb24").reformat(format="yuv420p")
            frame.pts, frame.time_base = i, Fraction(1, 25)
            out.mux(stream.encode(frame))
        out.mux(stream.encode())


def test_a_synthetic_avi_with_b_frames_is_misread_by_random_access_and_decoded_sequentially(tmp_path):
    """The TrumanShow case without the reference data: decord's random access returns other frames on an MPEG-4
    AVI with B-frames; the index finds it, and every view then holds the frames it claims."""
    write_bframe_avi(tmp_path / "bframes.avi")
    index = one_video_index(tmp_path, "bframes.avi")
    assert index.at[0, "frames"] == 60
    assert index.at[0, "backend"] == "pyav"
    assert index.at[0, "access"] == "sequential: random access returns other frames"
    truth = sequential_decode(tmp_path / "bframes.avi")
    wrong, checked = view_frames(tmp_path, index, truth)
    assert wrong == 0 and checked > 500
    forced = index.assign(backend="decord")  # what reading it by random access would have fed training
    assert view_frames(tmp_path, forced, truth)[0] > 0


def remux_faststart(src: Path, dst: Path) -> None:
    """The same packets with the moov atom at the front (what a streaming-optimised mp4 has)."""
    with av.open(str(src)) as inp, av.open(str(dst), "w", format="mp4", options={"movflags": "faststart"}) as out:
        stream = out.add_stream_from_template(inp.streams.video[0])
        for packet in inp.demux(inp.streams.video[0]):
            if packet.dts is None:
                continue
            packet.stream = stream
            out.mux(packet)


def test_partly_decodable_and_unreadable_copies_are_quarantined_by_the_workflows_index_rule(shared, tmp_path):
    clips = shared / "sample_videos"
    broken = tmp_path / "broken" / "cut"
    broken.mkdir(parents=True)
    remux_faststart(clips / "kinetics400/abseiling/abseiling_k400.mp4", tmp_path / "front.mp4")
    sources = {"moov_front.mp4": tmp_path / "front.mp4",
               "moov_end.mp4": clips / "kinetics400/cleaning_pool/cleaning_pool_mmaction2_test.mp4",
               "divx.avi": clips / "hmdb51/wave/RATRACE_wave_f_nm_np1_fr_goo_37.avi",
               "vp9.webm": clips / "ssv2/unlabeled/22983.webm"}
    for name, src in sources.items():
        data = src.read_bytes()
        (broken / name).write_bytes(data[: int(len(data) * 0.3)])
    (broken / "empty.mp4").write_bytes(b"")
    (broken / "notes.mp4").write_text("this is not a video\n")
    (tmp_path / "broken" / "fine").mkdir()
    shutil.copy(clips / "ucf101/Basketball/v_Basketball_g01_c01.avi", tmp_path / "broken" / "fine" / "a.avi")
    shutil.copy(clips / "ucf101/BaseballPitch/v_BaseballPitch_g01_c01.avi", tmp_path / "broken" / "fine" / "b.avi")
    with open(tmp_path / "split.csv", "w") as fh:  # the fine clips in both splits, so the index is usable
        fh.write("path,split\nfine/a.avi,train\nfine/b.avi,val\n")

    from test_workflow import MICRO, SNAKEFILE, workdir

    cfg = json.loads(json.dumps(MICRO))
    cfg["datasets"] = {"broken": {"source": "local", "layout": "folders", "path": str(tmp_path / "broken")}}
    cfg["pretraining"]["dataset"] = "broken"
    wd = workdir(tmp_path / "wd", cfg)
    (wd / "resources" / "index").mkdir(parents=True)
    shutil.copy(tmp_path / "split.csv", wd / "resources" / "index" / "broken.split.csv")
    split = pd.read_csv(wd / "resources" / "index" / "broken.split.csv")
    split = pd.concat([split, pd.DataFrame({"path": [f"cut/{n}" for n in sorted(p.name for p in broken.iterdir())],
                                            "split": "train"})])
    split.to_csv(wd / "resources" / "index" / "broken.split.csv", index=False)
    out = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(SNAKEFILE), "-d", str(wd), "-c2",
                          "resources/index/broken.parquet"], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    summary = json.loads((wd / "resources" / "index" / "broken.summary.json").read_text())
    reasons = {Path(q["path"]).name: q["reason"] for q in summary["quarantine"]}
    assert set(reasons) == {"moov_front.mp4", "moov_end.mp4", "divx.avi", "vp9.webm", "empty.mp4", "notes.mp4"}
    assert reasons["moov_front.mp4"].startswith("truncated: header declares 250 frames")
    assert reasons["divx.avi"].startswith("truncated: header declares 73 frames")
    assert reasons["vp9.webm"].startswith("truncated: container says")
    assert reasons["empty.mp4"] == "empty file"
    assert "not a readable video" in reasons["notes.mp4"] and "not a readable video" in reasons["moov_end.mp4"]
    assert summary["ok"] == 2
    print(yaml.safe_dump(reasons))


def test_indexing_the_real_clips_ten_times_gives_identical_tables(shared, tmp_path):
    from helpers import layout_real_clips

    roots = layout_real_clips(shared, tmp_path)
    tables = [build_index("hmdb51", roots["hmdb51"], deep=True, workers=2).drop(columns=["mtime_ns"])
              for _ in range(10)]
    for t in tables[1:]:
        pd.testing.assert_frame_equal(t, tables[0])
    assert summarise(build_index("hmdb51", roots["hmdb51"], deep=True), "hmdb51")["sequential_access"] == {
        "sequential: random access returns other frames": 4}
