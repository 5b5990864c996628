"""Atomic file output: readers (and Snakemake) never see a half-written file."""

from __future__ import annotations

import errno
import hashlib
import json
import math
import os
import shutil
import tempfile
from pathlib import Path


# What a full disk, a quota or a read-only folder look like to a writer.
STORAGE_ERRORS = {errno.ENOSPC: "no space left on device", errno.EDQUOT: "disk quota exceeded",
                  errno.EROFS: "read-only file system", errno.EACCES: "permission denied"}


class WriteError(OSError):
    """An output that could not be written for lack of space or permission; the message names the path, the bytes
    needed and free where known. Whatever was there before (an earlier checkpoint, the previous file) is kept."""

    def __str__(self) -> str:
        return self.strerror


def megabytes(n: int | None) -> str:
    return "? MB" if n is None else f"{n / 1e6:.0f} MB" if n >= 1e6 else f"{n / 1e3:.0f} kB"


def write_error(path: str | os.PathLike, error: OSError, needed: int | None = None) -> WriteError:
    """The one-line report of a failed write (ENOSPC, EDQUOT, EROFS, EACCES): what, where, needed and free."""
    folder = Path(path).parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    free = shutil.disk_usage(folder).free
    return WriteError(error.errno, f"{STORAGE_ERRORS[error.errno]} writing {path} "
                                   f"({megabytes(needed)} needed, {megabytes(free)} free)")


UMASK = os.umask(0o022)
os.umask(UMASK)


def atomic_write(path: str | os.PathLike, write, size_hint: int | None = None) -> None:
    """Call write(tmp_path) for a temp file beside `path`, then rename it onto `path`. A full disk, a quota or a
    read-only folder raise WriteError naming the path (`size_hint`: the bytes the file needs, where known); the
    temp file is removed and the previous `path`, if any, is untouched."""
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
        write(tmp)
        os.chmod(tmp, 0o666 & ~UMASK)  # mkstemp creates 0600: results stay readable as a plain write leaves them
        os.replace(tmp, path)
    except BaseException as e:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        storage = storage_error(e)
        if storage is not None and not isinstance(e, WriteError):
            raise write_error(path, storage, size_hint) from None
        raise


def storage_error(e: BaseException) -> OSError | None:
    """The OSError of a full disk / quota / read-only folder behind `e`, or None."""
    while e is not None:
        if isinstance(e, OSError) and e.errno in STORAGE_ERRORS:
            return e
        e = e.__cause__ or e.__context__
    return None


def finite(obj):
    """obj with NaN / infinite floats as None: what is written is standard JSON (null = no value)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite(v) for v in obj]
    return obj


def save_json(path: str | os.PathLike, obj) -> None:
    text = json.dumps(finite(obj), indent=2, sort_keys=True, allow_nan=False) + "\n"
    atomic_write(path, lambda tmp: Path(tmp).write_text(text), size_hint=len(text.encode()))


def remove_stale_temps(*outputs: str | os.PathLike, folder: str | os.PathLike | None = None) -> list[Path]:
    """Temp files a killed atomic_write left behind: those of `outputs` (beside each) and every one in `folder`
    (a run's own work folder). Called when a run starts, so an interruption leaves nothing for good."""
    stale = [t for o in outputs for t in Path(o).parent.glob(f".{Path(o).name}.*.tmp")]
    if folder is not None:
        stale += list(Path(folder).glob(".*.tmp"))
    for t in stale:
        t.unlink(missing_ok=True)
    return stale


def file_digest(path: str | os.PathLike, algorithm: str = "sha256") -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def file_stamp(path: str | os.PathLike) -> list:
    """Resolved path, size and modification time: changes when the file is rewritten."""
    st = Path(path).stat()
    return [str(Path(path).resolve()), st.st_size, st.st_mtime_ns]


def fingerprint(settings: dict, *inputs: str | None) -> str:
    """Hash of settings and of the files a computation reads (a training run's data index and initial weights, a
    feature cache's checkpoint); a non-file such as `random` or None stands for itself."""
    stamps = [file_stamp(p) if p is not None and Path(p).is_file() else p for p in inputs]
    blob = json.dumps({"settings": settings, "inputs": stamps}, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]
