"""`svt download` and `svt extract`: the real benchmarks from their sources to svt's canonical layouts.

Downloads are resumable (HTTP Range on a `.part` file), parallel, verified against the checksum in the config
when one is published, and renamed into place only after verification, so a partial or corrupt file is never
taken for a complete one. Extraction refuses archive members with absolute paths or `..` (and links leaving the
target), handles tar(.gz), zip and RAR4/RAR5 (unrar2-cffi, solid and compressed members), and writes into a
temporary folder renamed into place at the end.

Each benchmark's download, extraction and canonical layout are in its spec (svt/benchmarks/).
"""

from __future__ import annotations

import json
import logging
import shutil
import tarfile
import time
import urllib.error
import urllib.request
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path, PurePosixPath

from tqdm import tqdm

from svt import benchmarks
from svt.config import load_yaml
from svt.io import file_digest, save_json

log = logging.getLogger("svt.download")
CHUNK = 1 << 20


class DownloadError(RuntimeError):
    pass


class UnsafeArchive(ValueError):
    pass


# ---------------------------------------------------------------- downloads

def verify(path: Path, checksum: str | None) -> None:
    """checksum: "sha256:<hex>" or "md5:<hex>" (None: nothing published, size and completeness only)."""
    if not checksum:
        return
    algorithm, expected = checksum.split(":", 1)
    got = file_digest(path, algorithm)
    if got != expected.lower():
        raise DownloadError(f"{path}: {algorithm} is {got}, expected {expected}")


def fetch(url: str, dest: Path, checksum: str | None = None, retries: int = 5, timeout: float = 60,
          check=None) -> Path:
    """Download url to dest, resuming dest.part across dropped connections and runs; verify (checksum, then
    `check(path)` if given); rename. A file that fails verification is kept as dest.bad, never as dest."""
    dest = Path(dest)
    if dest.exists():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    for attempt in range(retries + 1):
        have = part.stat().st_size if part.exists() else 0
        request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as r:
                if have and r.status != 206:  # server ignored the range: start over
                    have = 0
                total = r.headers.get("Content-Range", "").rpartition("/")[2] or r.headers.get("Content-Length")
                total = int(total) if total and total.isdigit() else None
                with open(part, "ab" if have else "wb") as fh, \
                        tqdm(total=total, initial=have, unit="B", unit_scale=True, desc=dest.name) as bar:
                    for block in iter(lambda: r.read(CHUNK), b""):
                        fh.write(block)
                        bar.update(len(block))
            size = part.stat().st_size
            if total is not None and size < total:
                raise DownloadError(f"{url}: connection closed at {size} of {total} bytes")
            break
        except urllib.error.HTTPError as e:
            if e.code == 416 and part.exists():  # the part is already complete
                break
            raise DownloadError(f"{url}: HTTP {e.code} {e.reason}") from e
        except (OSError, DownloadError) as e:
            if attempt == retries:
                raise DownloadError(f"{url}: failed after {retries + 1} attempts, last: {e}; "
                                    f"{part} is kept and a rerun resumes it") from e
            log.warning("%s: %s; resuming (attempt %d)", url, e, attempt + 2)
            time.sleep(min(2 ** attempt, 30) * 0.1)
    try:
        verify(part, checksum)
        if check is not None:
            check(part)
    except DownloadError as e:
        bad = dest.with_name(dest.name + ".bad")
        part.replace(bad)
        raise DownloadError(f"{url} -> {dest}: {str(e).replace(str(part), 'the download')} (kept as {bad}, "
                            "not used)") from e
    part.replace(dest)
    return dest


def fetch_all(items: list[tuple[str, Path, str | None]], workers: int) -> list[Path]:
    with ThreadPoolExecutor(max(1, workers)) as pool:
        return list(pool.map(lambda it: fetch(*it), items))


# ---------------------------------------------------------------- model weights

WEIGHTS = {  # what each weights download must hold (svt.checkpoint formats)
    "spatial_init": ("DINO ImageNet ViT", {"dino-imagenet"}),
    "release": ("SVT teacher", {"svt-release", "svt-train", "backbone"}),
}


def check_weights(path: Path, kind: str) -> str:
    """The file is a torch checkpoint of the expected kind (not an HTML error page, not truncated); its format."""
    from svt.checkpoint import CheckpointError, detect, torch_load

    what, formats = WEIGHTS[kind]
    with open(path, "rb") as fh:
        start = fh.read(64)
    if start.lstrip()[:1] == b"<":
        raise DownloadError(f"{path}: is an HTML/XML page ({start.strip()[:40]!r}...), not {what} weights "
                            "(the server answered with an error or login page)")
    try:
        fmt, _ = detect(torch_load(path))
    except CheckpointError as e:
        raise DownloadError(f"{path}: not {what} weights (truncated or another kind of file?): {e}") from e
    if fmt not in formats:
        raise DownloadError(f"{path}: holds {fmt} weights, expected {what} weights ({', '.join(sorted(formats))})")
    return fmt


def fetch_weights(kind: str, cfg: dict, out: Path) -> str:
    """Weights from `url` (resumable) or from `path` (a copy the user has, linked), verified: pinned checksum
    (`sha256: <hex>` or `checksum: "sha256:<hex>"`), size, and content. Returns the file's sha256, logged so
    that an unpinned download's digest is on record."""
    out = Path(out)
    checksum = cfg.get("checksum") or (f"sha256:{cfg['sha256'].lower()}" if cfg.get("sha256") else None)
    if cfg.get("path"):
        src = Path(cfg["path"])
        if not src.is_file():
            raise DownloadError(f"{src}: no such file (downloads.{kind}.path)")
        verify(src, checksum)
        check_weights(src, kind)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.name}.link")
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(src.resolve())
        tmp.replace(out)
    else:
        fetch(cfg["url"], out, checksum, check=lambda p: check_weights(p, kind))
    digest = file_digest(out, "sha256")
    log.info("%s: sha256 %s%s", out, digest, " (matches the pinned checksum)" if checksum else
             " (no checksum pinned: set downloads.%s.sha256 to this value to pin it)" % kind)
    return digest


# ---------------------------------------------------------------- safe extraction

def check_member(name: str, target: Path) -> Path:
    p = PurePosixPath(name.replace("\\", "/"))
    if p.is_absolute() or name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":") or ".." in p.parts:
        raise UnsafeArchive(f"archive member {name!r} would be written outside {target}")
    return target / p


def extract(archive: Path, target: Path) -> None:
    """Extract a tar(.gz), zip or rar archive into target, refusing unsafe member names."""
    archive, target = Path(archive), Path(target)
    target.mkdir(parents=True, exist_ok=True)
    name = archive.name.lower()
    if name.endswith((".tar", ".tar.gz", ".tgz")) or tarfile.is_tarfile(archive):
        with tarfile.open(archive) as tf:
            members = tf.getmembers()
            for m in members:
                check_member(m.name, target)
                if (m.issym() or m.islnk()) and (PurePosixPath(m.linkname).is_absolute()
                                                 or ".." in PurePosixPath(m.linkname).parts):
                    raise UnsafeArchive(f"{archive}: link {m.name!r} -> {m.linkname!r} leaves {target}")
            tf.extractall(target, members=members, filter="data")
    elif zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            for n in zf.namelist():
                check_member(n, target)
            zf.extractall(target)
    elif name.endswith(".rar"):
        from unrar.cffi import rarfile

        rf = rarfile.RarFile(str(archive))
        for info in rf.infolist():
            out = check_member(info.filename, target)
            if info.filename.endswith(("/", "\\")) or info.is_dir():
                out.mkdir(parents=True, exist_ok=True)
                continue
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(rf.read(info))
    else:
        raise ValueError(f"{archive}: not a tar, zip or rar archive")


# ---------------------------------------------------------------- per dataset

def _staging(out: Path) -> Path:
    tmp = out.with_name(out.name + ".extracting")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    return tmp


def videos_and_splits(dataset: str, cfg: dict, work: Path) -> dict:
    """A videos archive and a splits archive (UCF-101, HMDB-51): {"videos": path, "splits": path}; where the host
    is down, a copy placed by hand at `manual` is verified and used."""
    out = {}
    for role in ("videos", "splits"):
        spec = cfg[role]
        dest = work / Path(spec["url"]).name
        if "manual" in spec and not dest.exists():
            manual = Path(spec["manual"])
            if manual.exists():
                verify(manual, spec.get("checksum"))
                shutil.copy(manual, dest)
        try:
            out[role] = fetch(spec["url"], dest, spec.get("checksum"))
        except DownloadError as e:
            where = spec.get("manual", dest)
            raise DownloadError(f"{e}\n{dataset}: the host may be down. Download {spec['url']} by other means, "
                                f"put it at {where} and rerun; it is verified ({spec.get('checksum')}).") from e
    return out


def _benchmark(dataset: str):
    bench = benchmarks.get(dataset)
    if bench.download is None or bench.extract is None:
        raise ValueError(f"{dataset}: its benchmark spec has no download / extract")
    return bench


def download_dataset(dataset: str, cfg: dict, work: Path, workers: int = 4) -> dict:
    """Every archive of a benchmark into work/ (resumable), by its spec; returns {role: path or [paths]}."""
    return _benchmark(dataset).download(cfg, Path(work), workers)


def extract_dataset(dataset: str, files: dict, out: Path) -> dict:
    """Archives -> canonical layout in out/ (staged, then renamed). Returns a manifest with counts."""
    bench = _benchmark(dataset)
    out = Path(out)
    stage = _staging(out)
    manifest = {"dataset": dataset, **bench.extract(files, stage)}
    save_json(stage / "manifest.json", manifest)
    if out.exists():
        shutil.rmtree(out)
    stage.replace(out)
    return manifest


def add_download_arguments(p):
    p.add_argument("--dataset", required=True,
                   choices=[*benchmarks.names(), *WEIGHTS],
                   help="a benchmark, or weights: spatial_init (DINO ImageNet), release (the authors' SVT teacher)")
    p.add_argument("--config", required=True, help="the dataset's downloads settings (inline or YAML)")
    p.add_argument("--work", help="download folder (resumable); spatial_init: unused")
    p.add_argument("--out", required=True, help="dataset root to write (weights: the file)")
    p.add_argument("--workers", type=int, default=4, help="parallel downloads")


def run_download(args) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    cfg = load_yaml(args.config)
    if args.dataset in WEIGHTS:
        print(json.dumps({"weights": args.out, "sha256": fetch_weights(args.dataset, cfg, Path(args.out))}))
        return 0
    files = download_dataset(args.dataset, cfg, Path(args.work), args.workers)
    manifest = extract_dataset(args.dataset, files, Path(args.out))
    print(json.dumps(manifest))
    return 0
