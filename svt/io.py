"""Atomic file output: readers (and Snakemake) never see a half-written file."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path


def atomic_write(path: str | os.PathLike, write) -> None:
    """Call write(tmp_path) for a temp file beside `path`, then rename it onto `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_json(path: str | os.PathLike, obj) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n"))


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
