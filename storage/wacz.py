"""WACZ 1.1.1 export of one source's captures, for ReplayWeb.page, pywb and friends.

    export_wacz(archive, "example", since="2024-05-01", until="2024-05-31",
                out_path="example-2024-05.wacz")

The zip holds the whole WARC files (capture WARCs and the text WARCs with their
conversion records) that contain the selected captures, stored uncompressed so
readers can seek into them; ``indexes/index.cdx`` (their CDXJ lines, under
the name the WACZ spec gives the index, with filenames relative to
``archive/``); ``pages/pages.jsonl`` (one line per
article capture, titled from its text metadata); ``datapackage.json`` listing
every file with its sha256 and size; and ``datapackage-digest.json``.
WARCs are streamed from the backend into the zip: memory stays flat.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath

from storage import cdxj, layout
from storage.archive import Archive
from storage.capture import Capture, TextRecord
from storage.errors import NewsarchiveError, NotFound, StorageError
from storage.times import parse_time, period_end

WACZ_VERSION = "1.1.1"
CHUNK = 1024 * 1024
SOFTWARE = "newsarchive"


@dataclass
class WaczReport:
    path: Path
    warcs: list[str] = field(default_factory=list)  # archive keys included
    captures: int = 0
    pages: int = 0
    bytes: int = 0


def _zip_name(key: str) -> str:
    return "archive/" + PurePosixPath(key).name


def export_wacz(archive: Archive, source: str, *, since: str | datetime | None = None,
                until: str | datetime | None = None, out_path: str | os.PathLike) -> WaczReport:
    """Write the captures of ``source`` between ``since`` and ``until`` (inclusive)
    as a WACZ at ``out_path``; written to a temporary file, renamed when complete."""
    layout.safe_source(source)
    start, end = parse_time(since), period_end(until)
    captures = [c for c in archive.catalog.source_captures(source, since=start, until=end)
                if c.status is not None]
    if not captures:
        span = f" between {start or 'the start'} and {end or 'now'}" if (start or end) else ""
        raise NotFound(f"no captures of source {source!r}{span} in {archive.location}")

    texts = {c.record_id: archive.catalog.text_of(c.record_id) for c in captures if c.text}
    warc_keys = sorted({c.warc for c in captures} | {t.warc for t in texts.values() if t})
    names = [_zip_name(k) for k in warc_keys]
    if len(set(names)) != len(names):
        raise NewsarchiveError(f"two WARC files of {source!r} share a file name; cannot place both in one WACZ")
    out_path = Path(out_path)
    if not out_path.parent.is_dir():
        raise NotFound(f"cannot write {out_path}: the folder {out_path.parent} does not exist")
    report = WaczReport(out_path, warcs=warc_keys, captures=len(captures))
    tmp = out_path.with_name(f".{out_path.name}{layout.OPEN_SUFFIX}")
    created = datetime.now(timezone.utc)
    stamp = created.timetuple()[:6]
    resources = []

    def add(zf: zipfile.ZipFile, name: str, chunks, compress: int) -> None:
        info = zipfile.ZipInfo(name, date_time=stamp)
        info.compress_type = compress
        digest, size = hashlib.sha256(), 0
        with zf.open(info, "w", force_zip64=True) as out:
            for chunk in chunks:
                out.write(chunk)
                digest.update(chunk)
                size += len(chunk)
        resources.append({"name": PurePosixPath(name).name, "path": name,
                          "hash": f"sha256:{digest.hexdigest()}", "bytes": size})

    def stream(key: str):
        try:
            with archive.backend.open_stream(key) as fh:
                while chunk := fh.read(CHUNK):
                    yield chunk
        except StorageError as exc:
            raise StorageError(f"cannot read {key}: {exc}") from None

    try:
        with zipfile.ZipFile(tmp, "w", allowZip64=True) as zf:
            # WARCs are stored, not deflated: readers seek to record offsets inside them.
            for key, name in zip(warc_keys, names):
                add(zf, name, stream(key), zipfile.ZIP_STORED)
            add(zf, "indexes/index.cdx", [_index(archive, warc_keys).encode("utf-8")], zipfile.ZIP_DEFLATED)
            pages = _pages(archive, captures, texts)
            report.pages = len(pages) - 1
            add(zf, "pages/pages.jsonl",
                ["".join(json.dumps(p, ensure_ascii=False) + "\n" for p in pages).encode("utf-8")],
                zipfile.ZIP_DEFLATED)
            package = {
                "profile": "data-package",
                "wacz_version": WACZ_VERSION,
                "title": f"{source} captures",
                "description": f"newsarchive source {source!r} from {archive.location}"
                               + (f", {start or '...'} to {end or '...'}" if (start or end) else ""),
                "created": created.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "software": SOFTWARE,
                "resources": list(resources),
            }
            package_bytes = json.dumps(package, indent=2).encode("utf-8")
            zf.writestr(zipfile.ZipInfo("datapackage.json", date_time=stamp), package_bytes,
                        compress_type=zipfile.ZIP_DEFLATED)
            digest = {"path": "datapackage.json", "hash": f"sha256:{hashlib.sha256(package_bytes).hexdigest()}"}
            zf.writestr(zipfile.ZipInfo("datapackage-digest.json", date_time=stamp),
                        json.dumps(digest, indent=2).encode("utf-8"), compress_type=zipfile.ZIP_DEFLATED)
        os.replace(tmp, out_path)
    except OSError as exc:
        raise StorageError(f"cannot write {out_path}: {exc.strerror or exc}") from None
    finally:
        tmp.unlink(missing_ok=True)
    report.bytes = out_path.stat().st_size
    return report


def _index(archive: Archive, warc_keys: list[str]) -> str:
    """The CDXJ lines of the included WARCs, filenames relative to archive/, sorted."""
    lines = []
    for key in warc_keys:
        try:
            content = archive.backend.get_bytes(layout.index_key(key))
        except StorageError as exc:
            raise StorageError(f"no index for {key}: {exc}") from None
        for urlkey, ts, fields in cdxj.iter_lines(content):
            fields["filename"] = PurePosixPath(key).name
            lines.append(cdxj.format_line(urlkey, ts, fields))
    return "".join(sorted(set(lines)))


def _pages(archive: Archive, captures: list[Capture], texts: dict[str, TextRecord | None]) -> list[dict]:
    pages = [{"format": "json-pages-1.0", "id": "pages", "title": "All Pages"}]
    for capture in captures:
        if not texts.get(capture.record_id):
            continue
        title = None
        try:
            meta = archive.metadata(capture)
            title = meta.get("title")
            if not title:
                title = (meta.get("text") or "").split("\n", 1)[0] or None
        except NewsarchiveError:
            pass
        page = {"id": hashlib.sha1(f"{capture.warc}:{capture.offset}".encode()).hexdigest()[:24],
                "url": capture.url, "ts": capture.iso_date}
        if title:
            page["title"] = title
        pages.append(page)
    return pages
