"""The local spool: crawls write here; finished files go to the archive.

Each finished file is uploaded to its own relative key, read back and checked
(size and sha256), and only then removed. Nothing is removed on failure, so
running upload_spool again sends whatever was left.

Order matters to readers: capture WARCs, then text WARCs, then indexes, then
article files, then run manifests. An index is held back while its WARC is
still in the spool; articles while a WARC of their source failed; a manifest
while any file it lists is still in the spool.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import platformdirs

from storage import layout
from storage.backends import (
    Backend,
    BackendUnavailableError,
    ObjectInfo,
    default_location,
    file_digest,
    parse_s3_location,
    stream_digest,
)
from storage.errors import StorageError
from storage.manifest import read_manifest

_ORDER = {"warc": 0, "text-warc": 1, "index": 2, "text": 3, "metadata": 3, "run": 4}


def spool_dir_for(location: str | None = None) -> Path:
    """Where crawls for ``location`` spool their files (NEWSARCHIVE_SPOOL overrides).

    A folder archive spools in ARCHIVE/.spool (same filesystem, never listed as
    archive content); an S3 archive in a per-location folder of the user data dir.
    """
    if os.environ.get("NEWSARCHIVE_SPOOL"):
        return Path(os.environ["NEWSARCHIVE_SPOOL"]).expanduser()
    location = location or default_location()
    if location.startswith("s3://"):
        bucket, prefix = parse_s3_location(location)
        digest = hashlib.sha1(f"{bucket}/{prefix}".encode()).hexdigest()[:8]
        label = "-".join([bucket, *prefix.split("/")]) if prefix else bucket
        return Path(platformdirs.user_data_dir("newsarchive")) / "spool" / f"{label[:80]}-{digest}"
    return Path(location).expanduser() / ".spool"


def _is_hidden_or_temp(name: str) -> bool:
    return name.startswith(".") or name.endswith((layout.OPEN_SUFFIX, ".tmp", ".part"))


def _scan(spool: Path) -> tuple[list[str], list[str]]:
    """(finished archive keys in upload order, stray files that are not archive keys)."""
    keys, strays = [], []
    for folder, dirs, names in os.walk(spool):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        rel = Path(folder).relative_to(spool).as_posix()
        for name in names:
            if _is_hidden_or_temp(name):
                continue
            key = name if rel == "." else f"{rel}/{name}"
            try:
                layout.check_key(key)
                ok = not os.path.islink(os.path.join(folder, name))  # never upload what a link points at
            except layout.UnsafeKeyError:
                ok = False
            (keys if ok else strays).append(key)
    keys.sort(key=lambda k: (_ORDER[layout.kind_of(k)], k))
    return keys, sorted(strays)


def finished_files(spool: str | os.PathLike) -> list[str]:
    """Keys of the spool's finished files (no .open, no temp files), in upload order."""
    return _scan(Path(spool))[0]


@dataclass
class UploadReport:
    uploaded: list[ObjectInfo] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (key, one-line reason)

    @property
    def ok(self) -> bool:
        return not self.failed

    def summary(self) -> str:
        text = f"uploaded {len(self.uploaded)} file{'s' * (len(self.uploaded) != 1)}"
        if self.failed:
            text += f", {len(self.failed)} failed (kept in the spool): {self.failed[0][1]}"
        return text


def _warc_of_index(key: str) -> str:
    # indexes/S/Y/M/D/NAME.cdxj -> warc/S/Y/M/D/NAME
    return "warc/" + key.split("/", 1)[1][: -len(".cdxj")]


def _held_back(key: str, spool: Path, failed_sources: set[str]) -> str | None:
    """Why ``key`` must wait, or None. Readers must never find a reference to a missing object."""
    kind = layout.kind_of(key)
    if kind == "index":
        warc = spool.joinpath(*_warc_of_index(key).split("/"))
        if warc.exists() or Path(str(warc) + layout.OPEN_SUFFIX).exists():
            return f"held back: its WARC {_warc_of_index(key)} is not uploaded yet"
    elif kind in ("text", "metadata"):
        if key.split("/")[1] in failed_sources:
            return f"held back: a WARC of source {key.split('/')[1]} was not uploaded"
    elif kind == "run":
        manifest = read_manifest(spool.joinpath(*key.split("/")).read_bytes())
        waiting = [f["key"] for f in manifest["files"] if spool.joinpath(*f["key"].split("/")).exists()]
        if waiting:
            return f"held back: {len(waiting)} of its files are not uploaded yet (first {waiting[0]})"
    return None


def _upload_one(spool: Path, key: str, backend: Backend) -> ObjectInfo:
    path = spool.joinpath(*key.split("/"))
    size, sha = file_digest(path)
    sent = backend.put_file(key, path)
    if (sent.size, sent.sha256) != (size, sha):
        raise StorageError(f"{key} changed in the spool while it was uploaded")
    # Read back what the archive holds now, independent of what we sent.
    got = backend.stat(key)
    if got is not None and got.sha256 is None:
        with backend.open_stream(key) as stream:
            got = ObjectInfo(key, *stream_digest(stream))
    if got is None or (got.size, got.sha256) != (size, sha):
        found = "nothing" if got is None else f"{got.size} bytes, sha256 {got.sha256}"
        raise StorageError(f"verification failed for {key}: expected {size} bytes, sha256 {sha}; archive has {found}")
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    return got


def _remove_empty_folders(spool: Path) -> None:
    # Bottom-up, so a folder emptied by removing its children goes too;
    # rmdir refuses non-empty folders, including one a crawl just wrote into.
    for folder, _dirs, _names in os.walk(spool, topdown=False):
        if Path(folder) != spool:
            try:
                os.rmdir(folder)
            except OSError:
                pass


def upload_spool(
    spool: str | os.PathLike,
    backend: Backend,
    *,
    on_progress: Callable[[str, int, int], None] | None = None,
) -> UploadReport:
    """Upload, verify, then delete every finished file of the spool.

    ``on_progress(key, done, total)`` is called after each file. Failures are
    collected in the report (one line each); an unreachable backend stops the
    upload and marks the rest as not attempted. Never raises for a file's failure.
    """
    spool = Path(spool)
    report = UploadReport()
    if not spool.is_dir():
        return report
    keys, strays = _scan(spool)
    for stray in strays:
        report.failed.append((stray, "not an archive key (or a link); left in the spool"))
    failed_sources: set[str] = set()
    stopped: str | None = None
    for done, key in enumerate(keys, 1):
        error = None
        if stopped:
            error = f"not attempted: {stopped}"
        else:
            try:
                error = _held_back(key, spool, failed_sources)
                if error is None:
                    report.uploaded.append(_upload_one(spool, key, backend))
            except BackendUnavailableError as e:
                stopped = error = str(e)
            except StorageError as e:
                error = str(e)
            except OSError as e:
                error = f"{key}: {e.strerror or e}"
        if error:
            report.failed.append((key, error))
            if layout.kind_of(key) in ("warc", "text-warc"):
                failed_sources.add(key.split("/")[1])
        if on_progress:
            on_progress(key, done, len(keys))
    _remove_empty_folders(spool)
    return report
