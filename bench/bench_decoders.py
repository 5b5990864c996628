"""Benchmark: which decoder, by exactness and speed (issue #15). One thread.

Exactness: frames wrong (mean difference > 1 grey level) on the TrumanShow clip (HMDB-51 packed-bitstream DivX)
over 12 random draws of 20 indices, against a sequential PyAV decode; and the frame count each reports.
Speed: decode of the union of the paper's 10 views per sample on the reference K400 clips (best of 2).
Decoders: whatever `decord` is installed (decord or decord2), torchcodec if installed (it needs FFmpeg libraries
on the system), PyAV sequential. Run it once per decord package to compare them.

Usage: python bench/bench_decoders.py [--clips ../shared/sample_videos]
"""

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from svt.video import _pyav_frames, probe
from svt.views import ViewConfig, sample_views, union_indices

TRUMAN = "hmdb51/wave/TrumanShow_wave_f_nm_np1_fr_med_26.avi"


def readers() -> dict:
    def decord_reader(path):
        import decord

        vr = decord.VideoReader(str(path), num_threads=1)
        return len(vr), lambda idx: vr.get_batch(list(idx)).asnumpy()

    def torchcodec_reader(path):
        from torchcodec.decoders import VideoDecoder

        d = VideoDecoder(str(path), num_ffmpeg_threads=1, seek_mode="exact", dimension_order="NHWC")
        return d.metadata.num_frames, lambda idx: d.get_frames_at(list(idx)).data.numpy()

    def pyav_reader(path):
        return None, lambda idx: _pyav_frames(path, np.asarray(idx))[0]

    import decord

    out = {f"decord {decord.__version__}": decord_reader}
    try:
        import torchcodec.decoders  # noqa: F401

        out["torchcodec"] = torchcodec_reader
    except Exception as e:  # noqa: BLE001 - not installed, or no FFmpeg libraries
        print(f"torchcodec not measured: {e}")
    out["pyav sequential"] = pyav_reader
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--clips", default=str(Path(__file__).resolve().parents[2] / "shared" / "sample_videos"))
    args = p.parse_args()
    torch.set_num_threads(1)
    clips = Path(args.clips)
    truth = _pyav_frames(clips / TRUMAN, np.arange(48))[0]
    files = sorted((clips / "kinetics400").rglob("*.mp4"))
    print(f"{'decoder':<22} {'TrumanShow count':>16} {'wrong frames':>13} {'K400 decode/sample':>19}")
    for name, reader in readers().items():
        count, get = reader(clips / TRUMAN)
        wrong = 0
        for seed in range(12):
            idx = np.unique(np.random.default_rng(seed).integers(0, len(truth), 20))
            got = get(idx).astype(np.int16)
            wrong += int((np.abs(got - truth[idx]).mean(axis=(1, 2, 3)) > 1.0).sum())
        best = []
        for rep in range(2):
            total = 0.0
            for k, f in enumerate(files):
                n, get = reader(f)
                n = n or probe(f).frames
                union, _ = union_indices(sample_views(n, 256, 340, ViewConfig(), np.random.default_rng([rep, k])))
                t0 = time.perf_counter()
                get(np.clip(union, 0, n - 1))
                total += time.perf_counter() - t0
            best.append(total / len(files))
        shown = count if count is not None else "exact"
        print(f"{name:<22} {shown:>16} {wrong:>13} {min(best) * 1e3:>16.0f} ms")


if __name__ == "__main__":
    main()
