"""Every view holds the frames it claims: the index decodes each file once sequentially, marks files whose random
access returns other frames for sequential decoding, and quarantines files that decode only in part, through the
workflow's own index rule."""

import json
import shutil
import subprocess
from pathlib import Path

import av
import numpy as np
import pandas as pd
import yaml

from svt.augment import AugmentConfig
from svt.data import PretrainDataset
from svt.index import build_index, summarise
from svt.video import probe
from svt.views import ViewConfig

TRUMAN = "hmdb51/wave/TrumanShow_wave_f_nm_np1_fr_med_26.avi"


def sequential(path) -> np.ndarray:
    with av.open(str(path), metadata_errors="ignore") as c:
        return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])


def test_the_divx_clip_decord_misreads_is_counted_exactly_and_decoded_sequentially(shared):
    clip = shared / "sample_videos" / TRUMAN
    info = probe(clip, deep=True)
    assert info.frames == 48 and info.frames_header == 49  # a full decode, not the header or a get_batch
    assert info.backend == "pyav" and info.access == "sequential: random access returns other frames"


def test_every_view_of_the_divx_clip_equals_a_sequential_decode_at_its_planned_indices(shared, tmp_path):
    root = tmp_path / "hmdb"
    (root / "wave").mkdir(parents=True)
    (root / "wave" / "truman.avi").symlink_to(shared / "sample_videos" / TRUMAN)
    index = pd.DataFrame([{"path": "wave/truman.avi", "label": 0, "label_name": "wave", "split": "train",
                           "status": "ok", **probe(root / "wave" / "truman.avi", deep=True).to_dict()}])
    assert index.at[0, "frames"] == 48
    truth = sequential(root / "wave" / "truman.avi")
    ds = PretrainDataset(index, root, ViewConfig(), AugmentConfig())
    checked = 0
    for epoch in range(12):  # many draws of the 10 views' windows
        ds.set_epoch(epoch)
        rng = ds.rng(0)
        plan = ds.plan(ds.rows.iloc[0], rng)
        frames = ds.decode_views(ds.rows.iloc[0], plan)
        for view, got in zip(plan, frames):
            want = truth[np.clip(np.asarray(view.indices), 0, 47)]
            assert np.abs(got.astype(np.int16) - want).mean() <= 1.0, (epoch, view.indices)
            checked += len(view.indices)
    assert checked > 500


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
    out = subprocess.run(["snakemake", "-s", str(SNAKEFILE), "-d", str(wd), "-c2", "resources/index/broken.parquet"],
                         capture_output=True, text=True)
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
