"""WACZ 1.1.1 export of one source's captures, for ReplayWeb.page, pywb and friends.

    export_wacz(archive, "example", since="2024-05-01", until="2024-05-31",
                out_path="example-2024-05.wacz")

The zip holds:

- ``archive/NAME``: the whole WARC files that contain the selected captures,
  stored uncompressed so readers can seek into them. A revisit in the range
  whose original was captured before it brings the original's WARC too, so
  every revisit resolves inside the package. The text WARCs holding the
  conversion records (clean text) of the selected articles come along,
  unindexed: their records name the response they were extracted from
  (WARC-Refers-To).
- ``indexes/index.cdx``: the CDXJ lines of the selected captures and of the
  originals their revisits need, replayable records only (a conversion record
  shares its response's URL and second, and a replay tool would serve the
  text in place of the page), filenames relative to ``archive/``.
- ``pages/pages.jsonl``: one line per article capture (revisits included),
  with its title and its clean text (ReplayWeb.page searches it).
- ``datapackage.json`` listing every file with its sha256 and size, and
  ``datapackage-digest.json``.

Entries are plain zip entries: ZIP64 only for a file that needs it (over 2 GiB),
so local and central headers agree (ReplayWeb.page reads file data at the
offset the central directory implies, and a ZIP64 extra in the local header
alone shifts every entry). WARCs are streamed from the backend into the zip:
memory stays flat.
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
from storage.capture import Capture
from storage.errors import NewsarchiveError, NotFound, StorageError
from storage.times import parse_time, period_end

WACZ_VERSION = "1.1.1"
CHUNK = 1024 * 1024
SOFTWARE = "newsarchive"


@dataclass
class WaczReport:
    path: Path
    warcs: list[str] = field(default_factory=list)  # archive keys included
    captures: int = 0  # selected by source and time
    originals: int = 0  # captured before the range, included for its revisits
    pages: int = 0
    bytes: int = 0


def _zip_name(key: str) -> str:
    return "archive/" + PurePosixPath(key).name


def needs_zip64(size: int) -> bool:
    """Whether an entry of ``size`` bytes must carry ZIP64 sizes (Python's own limit)."""
    return size > zipfile.ZIP64_LIMIT


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

    # A revisit is replayed from its original (same URL and payload digest, earlier).
    originals: dict[int, Capture | None] = {}
    for i, c in enumerate(captures):
        if c.is_revisit:
            originals[i] = archive.catalog.original_of(c.url, c.digest, None, c.timestamp)
    selected = {(c.warc, c.offset) for c in captures}
    extra = {(o.warc, o.offset): o for o in originals.values() if o and (o.warc, o.offset) not in selected}

    # The capture whose text stands for each selected capture (a revisit's: its original's).
    text_of = {}
    for i, c in enumerate(captures):
        holder = originals.get(i) if c.is_revisit else c
        if holder is not None and holder.text:
            text_of[i] = (holder, archive.catalog.text_of(holder.record_id))

    capture_warcs = {c.warc for c in captures} | {o.warc for o in extra.values()}
    text_warcs = {t.warc for _, t in text_of.values() if t}
    warc_keys = sorted(capture_warcs | text_warcs)
    names = [_zip_name(k) for k in warc_keys]
    if len(set(names)) != len(names):
        raise NewsarchiveError(f"two WARC files of {source!r} share a file name; cannot place both in one WACZ")
    out_path = Path(out_path)
    if not out_path.parent.is_dir():
        raise NotFound(f"cannot write {out_path}: the folder {out_path.parent} does not exist")
    report = WaczReport(out_path, warcs=warc_keys, captures=len(captures), originals=len(extra))
    sizes = {}
    for key in warc_keys:
        info = archive.backend.stat(key)
        if info is None:
            raise NotFound(f"cannot export {source!r}: {key} is in the catalog but not in {archive.location}")
        sizes[key] = info.size
    tmp = out_path.with_name(f".{out_path.name}{layout.OPEN_SUFFIX}")
    created = datetime.now(timezone.utc)
    stamp = created.timetuple()[:6]
    resources = []

    def add(zf: zipfile.ZipFile, name: str, chunks, compress: int, size: int) -> None:
        info = zipfile.ZipInfo(name, date_time=stamp)
        info.compress_type = compress
        digest, written = hashlib.sha256(), 0
        with zf.open(info, "w", force_zip64=needs_zip64(size)) as out:
            for chunk in chunks:
                out.write(chunk)
                digest.update(chunk)
                written += len(chunk)
        if written != size:
            raise StorageError(f"{name}: read {written} bytes, expected {size} (did it change during the export?)")
        resources.append({"name": PurePosixPath(name).name, "path": name,
                          "hash": f"sha256:{digest.hexdigest()}", "bytes": written})

    def add_bytes(zf: zipfile.ZipFile, name: str, data: bytes, compress: int) -> None:
        add(zf, name, [data], compress, len(data))

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
                add(zf, name, stream(key), zipfile.ZIP_STORED, sizes[key])
            index = _index(archive, sorted(capture_warcs), selected | set(extra))
            add_bytes(zf, "indexes/index.cdx", index.encode("utf-8"), zipfile.ZIP_DEFLATED)
            pages = _pages(archive, captures, text_of)
            report.pages = len(pages) - 1
            add_bytes(zf, "pages/pages.jsonl",
                      "".join(json.dumps(p, ensure_ascii=False) + "\n" for p in pages).encode("utf-8"),
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


def _index(archive: Archive, warc_keys: list[str], wanted: set[tuple[str, int]]) -> str:
    """The CDXJ lines of the ``wanted`` records (WARC key, offset) of the capture WARCs,
    replayable lines only, filenames relative to archive/, sorted."""
    lines = []
    for key in warc_keys:
        try:
            content = archive.backend.get_bytes(layout.index_key(key))
        except StorageError as exc:
            raise StorageError(f"no index for {key}: {exc}") from None
        for urlkey, ts, fields in cdxj.iter_lines(content):
            if not cdxj.replayable(fields) or (fields.get("filename"), int(fields.get("offset", -1))) not in wanted:
                continue
            fields["filename"] = PurePosixPath(key).name
            lines.append(cdxj.format_line(urlkey, ts, fields))
    return "".join(sorted(set(lines)))


def _pages(archive: Archive, captures: list[Capture], text_of: dict) -> list[dict]:
    pages = [{"format": "json-pages-1.0", "id": "pages", "title": "All Pages", "hasText": True}]
    for i, capture in enumerate(captures):
        if i not in text_of or text_of[i][1] is None:
            continue
        holder = text_of[i][0]
        title = text = None
        try:
            meta = archive.metadata(holder)
            text = meta.get("text")
            title = meta.get("title") or (text or "").split("\n", 1)[0] or None
        except NewsarchiveError:
            pass
        page = {"id": hashlib.sha1(f"{capture.warc}:{capture.offset}".encode()).hexdigest()[:24],
                "url": capture.url, "ts": capture.iso_date}
        if title:
            page["title"] = title
        if text:
            page["text"] = text
        pages.append(page)
    return pages
