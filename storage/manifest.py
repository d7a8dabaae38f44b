"""Run manifests: what one crawl run wrote, with sizes and checksums.

The manifest is written into the spool at ``layout.run_key(...)`` beside the
files it lists and is uploaded after them, so a manifest in the archive always
describes objects that are already there.
"""

from __future__ import annotations

import json
import os
import secrets
from datetime import datetime
from pathlib import Path

from storage import layout
from storage.backends import file_digest
from storage.errors import StorageError

MANIFEST_VERSION = 1


def _when(value: datetime | str, what: str) -> datetime:
    if isinstance(value, datetime):
        return layout.utc(value)
    try:
        return layout.utc(datetime.fromisoformat(str(value)))
    except ValueError:
        raise StorageError(f"run manifest: {what} is not an ISO 8601 time: {value!r}") from None


def build_manifest(
    run_id: str,
    source: str,
    started: datetime | str,
    finished: datetime | str,
    stats: dict,
    files: list[str],
    spool: str | os.PathLike,
) -> dict:
    """Describe a run's files (key, size, sha256, kind) and write the manifest into the spool.

    Every listed file must be a finished file in the spool. Returns the
    manifest; its own archive key is ``manifest["key"]``.
    """
    spool = Path(spool)
    start, end = _when(started, "started"), _when(finished, "finished")
    try:
        key = layout.run_key(source, start, run_id)
    except layout.UnsafeKeyError as e:
        raise StorageError(f"run manifest: {e}") from None
    entries = []
    for file_key in sorted(set(files)):
        try:
            kind = layout.kind_of(file_key)
        except layout.UnsafeKeyError as e:
            raise StorageError(f"run manifest: {e}") from None
        if kind == "run" or file_key.endswith(layout.OPEN_SUFFIX):
            raise StorageError(f"run manifest: {file_key} cannot be listed (a run manifest or an unfinished file)")
        path = spool.joinpath(*file_key.split("/"))
        if path.is_symlink() or not path.is_file():
            raise StorageError(f"run manifest: {file_key} is not a finished file in the spool {spool}")
        size, sha = file_digest(path)
        entries.append({"key": file_key, "size": size, "sha256": sha, "kind": kind})
    manifest = {
        "manifest_version": MANIFEST_VERSION,
        "key": key,
        "run_id": run_id,
        "source": source,
        "started": start.isoformat(),
        "finished": end.isoformat(),
        "stats": stats,
        "files": entries,
    }
    _write_json(spool, key, manifest)
    return manifest


def write_run_manifest(spool: str | os.PathLike, stats: dict, *, source: str, run_id: str) -> str:
    """The manifest of a run: every file its crawl wrote that is still in the spool
    (and the index beside each WARC), with the stats; returns its key."""
    spool = Path(spool)
    now = layout.utc()
    keys = set()
    for key in stats.get("files") or []:
        keys.add(key)
        if key.startswith("warc/") and key.endswith(".warc.gz"):
            keys.add(layout.index_key(key))
    present = sorted(k for k in keys if (spool / k).is_file())
    manifest = build_manifest(layout.safe_part(run_id), source, stats.get("started") or now,
                              stats.get("finished") or now, dict(stats), present, spool)
    return manifest["key"]


def _write_json(spool: Path, key: str, data: dict) -> None:
    path = spool.joinpath(*key.split("/"))
    # default=str: stats may carry datetimes or paths; they are for reading, not round trips.
    body = json.dumps(data, indent=2, ensure_ascii=False, default=str).encode("utf-8") + b"\n"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Temp name then rename: the uploader never sees half a manifest.
        tmp = path.parent / f".tmp-{secrets.token_hex(8)}"
        with open(tmp, "xb") as f:
            f.write(body)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        raise StorageError(f"cannot write run manifest {key} in {spool}: {e.strerror or e}") from None


def read_manifest(data: bytes) -> dict:
    """Parse a manifest, checking that every listed key is a plain archive key."""
    try:
        manifest = json.loads(data)
        files = manifest["files"]
        for entry in files:
            layout.check_key(entry["key"])
    except (ValueError, KeyError, TypeError, layout.UnsafeKeyError) as e:
        raise StorageError(f"not a valid run manifest: {e}") from None
    return manifest
