"""Decoding and indexing real clips: the counts reference/decoding.md measured, and broken files quarantined."""

import numpy as np
import pandas as pd
import pytest

from helpers import layout_real_clips, sequential_decode
from svt.index import build_index, summarise
from svt.video import DecodeError, probe, read_frames

# Decodable frame counts per reference/decoding.md §2 (PyAV-decoded column).
EXPECTED_FRAMES = {
    "Turnk_r_Pippi_Michel_cartwheel_f_cm_np2_le_med_6.avi": 83,  # header 84: packed bitstream
    "RATRACE_wave_f_nm_np1_fr_goo_37.avi": 72,
    "SchoolRulesHowTheyHelpUs_wave_f_nm_np1_ba_med_0.avi": 74,
    "Bruno_Walks_up_Stairs_climb_stairs_f_cm_np1_fr_med_0.mp4": 89,
    "v_ApplyEyeMakeup_g01_c01.avi": 164,
    "v_PlayingGuitar_g16_c02.avi": 250,
    "57082.webm": 38,  # webm header declares 0 frames
    "22983.webm": 64,
    "6981.webm": 23,
}
K400_EXPECTED = {"abseiling": 250, "flipping pancake": 310, "yoga": 300, "skateboarding": 300,
                 "rotated_90": 3, "short_32_frames": 32}


@pytest.fixture(scope="module")
def real_roots(tmp_path_factory, request):
    from conftest import SHARED

    if not (SHARED / "sample_videos" / "MANIFEST.csv").exists():
        pytest.skip(f"reference clips not found at {SHARED}; they are research-only and not in the repository")
    return layout_real_clips(SHARED, tmp_path_factory.mktemp("real"))


@pytest.mark.parametrize("dataset", ["ucf101", "hmdb51", "ssv2"])
def test_indexing_real_clips_gives_the_decodable_frame_counts(real_roots, dataset):
    df = build_index(dataset, real_roots[dataset], deep=True, workers=2)
    assert (df["status"] == "ok").all(), df[df["status"] != "ok"][["path", "status"]]
    for path, frames in zip(df["path"], df["frames"]):
        name = path.split("/")[-1]
        if name in EXPECTED_FRAMES:
            assert frames == EXPECTED_FRAMES[name], name


def test_kinetics_layout_quarantines_the_corrupted_clip_with_a_reason_and_keeps_going(real_roots):
    df = build_index("kinetics400", real_roots["kinetics400"], deep=True, workers=2)
    bad = df[df["status"] != "ok"]
    assert list(bad["label_name"]) == ["corrupted"]
    assert "frame 28" in bad["status"].iat[0]
    frames = {n: f for n, f in zip(df["label_name"], df["frames"])}
    assert {k: frames[k] for k in K400_EXPECTED} == K400_EXPECTED
    summary = summarise(df, "kinetics400")
    assert summary["quarantined"] == 1 and summary["ok"] == len(df) - 1
    assert summary["quarantine"][0]["reason"].startswith("stream breaks at frame 28")


def test_rotation_metadata_is_applied_by_both_backends(shared):
    path = shared / "sample_videos/edge_cases/rotated_90/video_90.mov"
    info = probe(path)
    assert (info.height, info.width) == (568, 320)
    assert read_frames(path, [0, 1, 2]).shape == (3, 568, 320, 3)
    assert read_frames(path, [0, 1, 2], backend="pyav").shape == (3, 568, 320, 3)


def test_pyav_fallback_gives_the_same_pixels_and_survives_non_utf8_metadata(shared):
    path = shared / "sample_videos/hmdb51/cartwheel/Turnk_r_Pippi_Michel_cartwheel_f_cm_np2_le_med_6.avi"
    idx = [0, 10, 40]
    assert np.array_equal(read_frames(path, idx), read_frames(path, idx, backend="pyav"))


def test_indices_past_the_end_are_clamped_to_the_last_decodable_frame(shared):
    path = shared / "sample_videos/hmdb51/wave/RATRACE_wave_f_nm_np1_fr_goo_37.avi"
    frames = read_frames(path, [71, 72, 500], num_frames=72)
    assert np.array_equal(frames[0], frames[1]) and np.array_equal(frames[1], frames[2])
    pyav = read_frames(path, [71, 500], backend="pyav")
    assert np.array_equal(pyav[0], pyav[1])


def test_corrupted_stream_opens_but_fails_when_its_late_frames_are_fetched(shared):
    path = shared / "sample_videos/edge_cases/corrupted/corrupted.mp4"
    assert probe(path).frames == 50  # a shallow probe cannot tell
    assert read_frames(path, [0, 10, 27]).shape[0] == 3
    with pytest.raises(DecodeError, match="corrupted.mp4"):
        read_frames(path, [0, 40])


def test_reindexing_reads_only_changed_files(tmp_path):
    from helpers import synth_dataset

    root, first = synth_dataset(tmp_path)
    changed = root / first.path.iat[0]
    changed.write_bytes(b"")
    again = build_index("kinetics400", root, deep=True, previous=first)
    assert again.status.iat[0] == "empty file"
    pd.testing.assert_frame_equal(again.drop(index=0), first.drop(index=0), check_dtype=False)
    shallow_then_deep = build_index("kinetics400", root, deep=True,
                                    previous=build_index("kinetics400", root, deep=False))
    assert shallow_then_deep.deep.all()


# ------------------------------------------------------------------ the GOP reader for dense-keyframe copies (#27)

def moving_frames(n: int = 40) -> np.ndarray:
    """A textured square moving over noise: every frame differs, so a wrong frame cannot pass for a right one."""
    rng = np.random.default_rng(0)
    frames = np.repeat(rng.integers(0, 256, (1, 48, 64, 3), dtype=np.uint8), n, axis=0)
    for t in range(n):
        frames[t, 8:28, t:t + 20] = rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)
    return frames


def test_rgb_conversion_through_one_reused_context_gives_pyavs_own_bytes(tmp_path):
    import av

    from svt.synth import encode
    from svt.video import to_rgb

    encode(moving_frames(), tmp_path / "a.mp4", "libx264", 25)
    with av.open(str(tmp_path / "a.mp4")) as c:
        for frame in c.decode(video=0):
            assert np.array_equal(to_rgb(frame), frame.to_ndarray(format="rgb24"))


@pytest.mark.parametrize("gop", [1, 3])
def test_a_copy_with_dense_keyframes_is_read_gop_by_gop_and_gives_the_sequential_frames(tmp_path, gop):
    """The synthetic x264 source reorders frames (B-frames) and has keyframes every 16 frames: decord reads it. Its
    re-encoded copy has neither: the index chooses the GOP reader, which returns exactly the frames of a sequential
    decode for any request (unsorted, repeated, past the end)."""
    from svt.reencode import reencode_video
    from svt.synth import encode
    from svt.video import gop_layout

    encode(moving_frames(), tmp_path / "src.mp4", "libx264", 25)
    assert reencode_video((str(tmp_path / "src.mp4"), str(tmp_path / "copy.mp4"), 256, gop)) is None
    assert gop_layout(str(tmp_path / "src.mp4")) == (16, False)
    assert gop_layout(str(tmp_path / "copy.mp4")) == (gop, True)
    assert probe(tmp_path / "src.mp4", deep=True).backend == "decord"
    info = probe(tmp_path / "copy.mp4", deep=True)
    assert (info.backend, info.access, info.frames) == ("gop", "random", 40)
    sequential = sequential_decode(tmp_path / "copy.mp4")
    for request in ([39, 0, 17, 17, 5], [20, 21, 22], [38, 45, 90], list(range(0, 40, 7))):
        got = read_frames(tmp_path / "copy.mp4", request, num_frames=40, backend="gop")
        assert np.array_equal(got, sequential[np.minimum(request, 39)]), request


def test_the_gop_reader_is_not_chosen_where_keyframes_are_sparse(tmp_path):
    from svt.reencode import reencode_video
    from svt.synth import encode

    encode(moving_frames(), tmp_path / "src.mp4", "libx264", 25)
    reencode_video((str(tmp_path / "src.mp4"), str(tmp_path / "copy.mp4"), 256, 16))
    assert probe(tmp_path / "copy.mp4", deep=True).backend == "decord"


@pytest.mark.parametrize("dataset", ["kinetics400", "ssv2"])  # h264 .mp4 and VP9 .webm, both read by decord
def test_random_access_returns_the_frames_at_the_asked_indices(tmp_path, dataset):
    """Each asked frame is the sequential decode's frame at that index (within the tolerance the index's probe
    allows decord), not a neighbour: the synthetic object moves, so neighbouring frames differ by far more."""
    from helpers import synth_dataset
    from svt.video import ACCESS_TOLERANCE

    root, index = synth_dataset(tmp_path, dataset)
    path = root / index["path"].iloc[0]
    want = sequential_decode(path)
    asked = [0, 5, 11, 12, len(want) - 1]
    got = read_frames(path, asked, num_frames=len(want))
    for i, frame in zip(asked, got):
        assert np.abs(frame.astype(np.int16) - want[i]).mean() <= ACCESS_TOLERANCE, i
    step = np.abs(want[1:].astype(np.int16) - want[:-1]).mean(axis=(1, 2, 3))
    assert step.min() > 3 * ACCESS_TOLERANCE  # an off-by-one could not hide inside the tolerance
