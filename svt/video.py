"""Video decoding: decord for frame-index access, a GOP reader for copies with dense keyframes, PyAV in sequence
where neither is exact.

Backends, chosen per file by the index (`probe(deep=True)`) and stored in its `backend` column:
- `gop`: streams without frame reordering whose keyframes come at least every GOP_DENSE frames (the copies
  `svt reencode` writes; intra-only files): PyAV demuxes every packet but decodes only the GOPs that hold wanted
  frames, each from its keyframe to its last wanted frame. 1.9x decord's speed on all-intra copies (bench/README.md).
- `decord`: random access, where it returns the frames a sequential decode holds.
- `pyav`: a sequential decode up to the last wanted frame, where random access is not exact or decord cannot read.

What real files do (measured on real clips; docs/data.md) and how it is handled here:
- header frame counts lie: packed-bitstream AVIs (HMDB-51) report one frame more than they hold and decord
  returns a duplicate of frame N-2 as frame N-1 -> `probe` counts that duplicate out; webm/mkv headers say 0
  in PyAV -> counts come from decord, or from decoding under PyAV.
- indices are clamped to the frames that exist.
- decord's seeks on packed-bitstream AVIs land on other frames (one late, or ~20 early on HMDB-51's TrumanShow
  clip when a request skips the frames before a keyframe) -> `probe(deep=True)`, what the workflow's index runs,
  decodes every file once sequentially (exact count, any break), checks the count against the header or against
  duration x fps, and compares random access with it over several request patterns; a file where they differ is
  marked `access: sequential ...` (backend pyav) and always decoded sequentially.
- streams that break mid-file open fine and fail when frames are fetched -> `DecodeError` naming the file;
  `probe(deep=True)` decodes the whole file, so the index finds these before training does.
- rotation metadata: decord applies it; the PyAV fallback rotates to match.
- non-UTF-8 metadata: PyAV is opened with metadata_errors="ignore".
"""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass

import numpy as np


class DecodeError(RuntimeError):
    def __init__(self, path, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


@dataclass
class VideoInfo:
    frames: int  # frames that decode (what samplers index into)
    frames_header: int  # what the container header declares (decord's length where it declares none)
    fps: float
    width: int
    height: int
    duration: float
    codec: str
    backend: str  # gop / decord: exact random access; pyav: decoded sequentially whenever used
    access: str = "random"  # or why the file is decoded sequentially

    def to_dict(self) -> dict:
        return asdict(self)


def _short(e: Exception) -> str:
    """One readable line of a decoder error (decord prefixes timestamps and its source paths)."""
    text = re.sub(r"\[\d\d:\d\d:\d\d\] \S+?:\d+: ", "", str(e)).strip()
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return (lines[0] if lines else type(e).__name__)[:200]


_RGB: dict = {}  # process id -> its reformatter: a forked loader worker or index worker makes its own


def to_rgb(frame) -> np.ndarray:
    """The frame as rgb24 through one reused swscale context per process, on the calling thread: PyAV's
    to_ndarray(format=...) builds a new context per frame, several times slower for the same bytes
    (tests/test_video.py checks they are the same)."""
    reformatter = _RGB.get(os.getpid())
    if reformatter is None:
        from av.video.reformatter import VideoReformatter

        reformatter = _RGB[os.getpid()] = VideoReformatter()
    return reformatter.reformat(frame, format="rgb24", threads=1).to_ndarray()


def _open_decord(path, num_threads: int):
    import decord

    return decord.VideoReader(str(path), num_threads=num_threads)


def _container_info(path) -> tuple[str, int]:
    """Codec name and the frame count the container header declares (0 where it declares none: webm/mkv)."""
    try:
        codec, declared, _, _ = _container_meta(str(path))
        return codec, declared
    except Exception:  # noqa: BLE001 - informative only; decoding decides whether the file is usable
        return "unknown", 0


def _pyav_frames(path, wanted: np.ndarray | None):
    """Decode sequentially up to max(wanted) (everything if None).

    Returns (frames at `wanted`, frames decoded, fps, rotation); a wanted index past the frames that exist
    gets the last decoded frame (header counts can lie).
    """
    import av

    want = None if wanted is None else set(wanted.tolist())
    stop = None if wanted is None else int(wanted.max())
    kept, last, n = {}, None, 0
    with av.open(str(path), metadata_errors="ignore") as c:
        stream = c.streams.video[0]
        stream.thread_type = "AUTO"
        fps = float(stream.average_rate or 0)
        try:
            for frame in c.decode(stream):
                if want is None and n == 0 or want is not None and n in want:
                    kept[n] = to_rgb(frame)
                last, n = frame, n + 1
                if stop is not None and n > stop:
                    break
        except av.error.FFmpegError as e:
            raise DecodeError(path, f"stream breaks at frame {n}: {_short(e)}") from e
    if last is None:
        raise DecodeError(path, "no video frames")
    rotation = getattr(last, "rotation", 0) or 0
    if wanted is None:
        return np.stack([kept[0]]), n, fps, rotation
    tail = to_rgb(last)
    return np.stack([kept.get(int(i), tail) for i in wanted]), n, fps, rotation


GOP_DENSE = 8  # the GOP reader is chosen where keyframes come at least this often (and frames are not reordered)


def gop_layout(path: str) -> tuple[int, bool]:
    """The longest GOP (frames from a keyframe to the next) and whether packets come in presentation order; from
    the packets alone (demuxed, not decoded)."""
    import av

    with av.open(path, metadata_errors="ignore") as c:
        stream = c.streams.video[0]
        packets = [(p.is_keyframe, p.pts) for p in c.demux(stream) if p.size]
    keys = np.flatnonzero([k for k, _ in packets] + [True])
    pts = [t for _, t in packets]
    in_order = None not in pts and all(a < b for a, b in zip(pts, pts[1:])) and bool(keys[0] == 0)
    return int(np.diff(keys).max(initial=0)), in_order


def gop_eligible(path: str) -> bool:
    """Keyframes at least every GOP_DENSE frames and no frame reordering: what the GOP reader needs."""
    try:
        longest, in_order = gop_layout(path)
    except Exception:  # noqa: BLE001 - not demuxable packet by packet: another backend
        return False
    return in_order and longest <= GOP_DENSE


def _gop_frames(path: str, wanted: np.ndarray):
    """Frames at the sorted unique indices `wanted`, decoding only the GOPs that hold them, each from its keyframe up
    to its last wanted frame. Exact where packet i is frame i and keyframes reset the decoder (closed GOPs, no
    frame reordering: `gop_layout`); the index checks every file against a sequential decode before choosing it.
    Returns (frames, rotation); an index past the last packet gets the last frame."""
    import av

    with av.open(path, metadata_errors="ignore") as c:
        stream = c.streams.video[0]
        stream.thread_type = "NONE"  # one frame out per packet in: packet i is frame i
        packets = [p for p in c.demux(stream) if p.size]
        n = len(packets)
        if not n:
            raise DecodeError(path, "no video frames")
        want = np.minimum(wanted, n - 1)
        key = np.fromiter((p.is_keyframe for p in packets), bool, n)
        start = np.maximum.accumulate(np.where(key, np.arange(n), 0))
        runs = np.zeros(n + 1, np.int64)  # +1 where a wanted frame's GOP run starts, -1 after the frame
        np.add.at(runs, start[want], 1)
        np.add.at(runs, want + 1, -1)
        keep, kept, rotation, i = set(want.tolist()), {}, 0, -1
        try:
            for i in np.flatnonzero(np.cumsum(runs[:-1])).tolist():
                out = stream.codec_context.decode(packets[i])
                if len(out) != 1:
                    raise DecodeError(path, f"GOP reader: packet {i} gave {len(out)} frames (reordered stream)")
                if i in keep:
                    kept[i] = to_rgb(out[0])
                    rotation = getattr(out[0], "rotation", 0) or 0
        except av.error.FFmpegError as e:
            raise DecodeError(path, f"stream breaks at frame {i}: {_short(e)}") from e
    return np.stack([kept[i] for i in want.tolist()]), rotation


def rotate(img: np.ndarray, rotation: int) -> np.ndarray:
    # PyAV reports the display rotation in degrees counter-clockwise; decord applies it while decoding.
    k = (rotation // 90) % 4
    return np.ascontiguousarray(np.rot90(img, k=k, axes=(-3, -2))) if k else img


def probe(path: str | os.PathLike, deep: bool = False, num_threads: int = 1) -> VideoInfo:
    """Metadata of a video; raises DecodeError with the reason if it cannot be used. Shallow: decord's count, and
    the GOP reader where the packets allow it; deep: the index's checks (`_probe_exact`)."""
    path = str(path)
    if not os.path.exists(path):
        raise DecodeError(path, "file not found")
    if os.path.getsize(path) == 0:
        raise DecodeError(path, "empty file")
    if deep:
        return _probe_exact(path, num_threads)
    try:
        return _probe_decord(path, num_threads)
    except Exception as e:  # noqa: BLE001 - decord cannot read it: PyAV decodes the whole file instead
        return _probe_pyav(path, first_error=e)


ACCESS_TOLERANCE = 1.0  # mean absolute difference (grey levels) allowed between the two decodes of one frame


def access_patterns(n: int) -> list[np.ndarray]:
    """Index requests that random access must serve exactly, each as one fresh reader's batch, as a sample's views
    request them: spread points, every third frame, the second half only (a skip from the start), and two
    seeded random windows. Whether a seek lands wrong depends on the pattern, so one is not enough."""
    rng = np.random.default_rng(n)
    patterns = [np.linspace(0, n - 1, 8), np.arange(0, n, 3), np.arange(n // 2, n, 2)]
    for _ in range(2):
        start = int(rng.integers(0, max(n // 2, 1)))
        patterns.append(np.sort(rng.choice(np.arange(start, n), size=min(16, n - start), replace=False)))
    return [np.unique(np.asarray(p).round().astype(int)) for p in patterns if len(p)]


def _container_meta(path: str) -> tuple[str, int, float, float]:
    """Codec, declared frame count (0: none), container duration (s, 0: unknown) and average frame rate."""
    import av

    with av.open(path, metadata_errors="ignore") as c:
        stream = c.streams.video[0]
        duration = float(c.duration) / 1e6 if c.duration else 0.0
        if not duration and stream.duration and stream.time_base:
            duration = float(stream.duration * stream.time_base)
        return stream.codec_context.name, int(stream.frames or 0), duration, float(stream.average_rate or 0)


def random_access_is_exact(path: str, patterns: list[np.ndarray], sequential: dict, n: int, rotation: int,
                           num_threads: int) -> bool:
    """Does decord return, for every pattern (a fresh reader each, as read_frames opens one per sample), the frames
    the sequential decode holds at those indices (subsampled), within ACCESS_TOLERANCE?"""
    for pattern in patterns:
        pattern = pattern[pattern < n]
        try:
            got = _open_decord(path, num_threads).get_batch(pattern.tolist()).asnumpy()[:, ::2, ::2]
        except Exception:  # noqa: BLE001 - random access fails where sequential decoding works
            return False
        for i, frame in zip(pattern, got):
            want = rotate(sequential[int(i)][None], rotation)[0]
            if frame.shape != want.shape or np.abs(frame.astype(np.int16) - want).mean() > ACCESS_TOLERANCE:
                return False
    return True


def _probe_exact(path: str, num_threads: int) -> VideoInfo:
    """The index's guarantee, paid once per file: a full sequential decode (PyAV) gives the exact frame count and
    finds any break; the count is checked against the header (or duration x fps where the container declares no
    count); random access (decord) must return the same frames as the sequential decode for every request
    pattern of `access_patterns`, and so must the GOP reader where it applies (backend gop, preferred). Where
    neither does (e.g. packed-bitstream DivX AVIs, whose seeks land on other frames), the file is marked for
    sequential access (backend pyav)."""
    import av

    try:
        codec, declared, duration, rate = _container_meta(path)
    except Exception as e:  # noqa: BLE001
        raise DecodeError(path, f"not a readable video: {_short(e)}") from e
    try:
        vr = _open_decord(path, num_threads)
        estimate = len(vr)
    except Exception:  # noqa: BLE001 - decord cannot read it: sequential access
        vr, estimate = None, 0
    patterns = access_patterns(estimate) if estimate else []
    wanted = set(np.concatenate(patterns).tolist()) if patterns else set()
    kept, n, first, rotation = {}, 0, None, 0
    try:
        with av.open(path, metadata_errors="ignore") as c:
            stream = c.streams.video[0]
            stream.thread_type = "AUTO"
            for frame in c.decode(stream):
                if n == 0 or n in wanted:
                    img = to_rgb(frame)
                    first = img if n == 0 else first
                    kept[n] = img[::2, ::2]  # compared subsampled: a fraction of the memory, the same verdict
                rotation = getattr(frame, "rotation", 0) or 0
                n += 1
    except av.error.FFmpegError as e:
        raise DecodeError(path, f"stream breaks at frame {n}: {_short(e)}") from e
    except Exception as e:  # noqa: BLE001
        raise DecodeError(path, f"not a readable video: {_short(e)}") from e
    if n == 0:
        raise DecodeError(path, "no video frames")
    if declared > n + 1:
        raise DecodeError(path, f"truncated: header declares {declared} frames, {n} decodable")
    if not declared and duration and rate and duration * rate > 1.1 * n + 2:
        raise DecodeError(path, f"truncated: container says {duration:.2f} s at {rate:g} fps "
                                f"(~{duration * rate:.0f} frames), {n} decodable")
    backend = "decord"
    if vr is None:
        access = "sequential: decord cannot read it"
    elif gop_access_is_exact(path, patterns, kept, n):
        backend, access = "gop", "random"
    elif not random_access_is_exact(path, patterns, kept, n, rotation, num_threads):
        access = "sequential: random access returns other frames"
    else:
        access = "random"
    h, w = rotate(first[None], rotation).shape[1:3]
    return VideoInfo(frames=n, frames_header=declared or n, fps=rate or float(vr.get_avg_fps() if vr else 0),
                     duration=n / rate if rate else 0.0, width=int(w), height=int(h), codec=codec,
                     backend=backend if access == "random" else "pyav", access=access)


def gop_access_is_exact(path: str, patterns: list[np.ndarray], sequential: dict, n: int) -> bool:
    """Is the GOP reader usable here (dense keyframes, no reordering: `gop_layout`) and does it return, for every
    pattern, exactly the frames the sequential decode holds (same decoder, same conversion: bit for bit)?"""
    if not gop_eligible(path):
        return False
    for pattern in patterns:
        pattern = pattern[pattern < n]
        try:
            got, _ = _gop_frames(path, pattern)
        except Exception:  # noqa: BLE001
            return False
        if not all(np.array_equal(g[::2, ::2], sequential[int(i)]) for i, g in zip(pattern, got)):
            return False
    return True


def _probe_decord(path: str, num_threads: int) -> VideoInfo:
    vr = _open_decord(path, num_threads)
    n = len(vr)
    if n == 0:
        raise ValueError("no video frames")
    fps = float(vr.get_avg_fps() or 0.0)
    first = vr[0].asnumpy()
    frames = n
    codec, declared = _container_info(path)
    if path.lower().endswith(".avi") and codec == "mpeg4" and n >= 3:
        # Packed-bitstream AVIs: decord's last frame repeats frame N-2 (the file holds N-1 frames).
        tail = vr.get_batch([n - 2, n - 1]).asnumpy()
        if np.array_equal(tail[0], tail[1]):
            frames = n - 1
    h, w = first.shape[:2]
    return VideoInfo(frames=frames, frames_header=declared or n, fps=fps, width=int(w), height=int(h),
                     duration=frames / fps if fps else 0.0, codec=codec,
                     backend="gop" if gop_eligible(path) else "decord")


def _probe_pyav(path: str, first_error: Exception) -> VideoInfo:
    """Decodes every frame: the count is exact and a stream that breaks names the frame where it does."""
    try:
        first, n, fps, rotation = _pyav_frames(path, None)
    except DecodeError:
        raise
    except Exception as e:  # noqa: BLE001
        raise DecodeError(path, f"not a readable video (decord: {_short(first_error)}; pyav: {_short(e)})") from e
    h, w = rotate(first, rotation).shape[1:3]
    codec, declared = _container_info(path)
    return VideoInfo(frames=n, frames_header=declared or n, fps=fps, width=int(w), height=int(h),
                     duration=n / fps if fps else 0.0, codec=codec, backend="pyav",
                     access="sequential: decord cannot read it")


def read_frames(path: str | os.PathLike, indices, num_frames: int | None = None, num_threads: int = 1,
                backend: str = "decord") -> np.ndarray:
    """Frames at `indices` as uint8 (N, H, W, 3), decoding each distinct index once.

    Indices are clamped to [0, num_frames - 1] (num_frames: the decodable count from the index; defaults to
    the container's). backend: the index's choice (module docstring); "decord" falls back to PyAV when decord
    cannot read the file; a file that cannot be read raises DecodeError naming it.
    """
    path = str(path)
    idx = np.asarray(indices, dtype=np.int64)
    if backend == "decord":
        try:
            vr = _open_decord(path, num_threads)
            n = min(num_frames or len(vr), len(vr))
            uniq, inverse = np.unique(np.clip(idx, 0, n - 1), return_inverse=True)
            return vr.get_batch(uniq.tolist()).asnumpy()[inverse]
        except Exception:  # noqa: BLE001 - decord cannot read it: PyAV below decides
            pass
    limit = num_frames if num_frames else np.iinfo(np.int64).max
    uniq, inverse = np.unique(np.clip(idx, 0, limit - 1), return_inverse=True)
    try:
        if backend == "gop":
            frames, rotation = _gop_frames(path, uniq)
        else:
            frames, _, _, rotation = _pyav_frames(path, uniq)
    except DecodeError:
        raise
    except Exception as e:  # noqa: BLE001
        raise DecodeError(path, f"decode failed: {_short(e)}") from e
    return rotate(frames, rotation)[inverse]
