"""The archive as its users see it: captures of a URL, the one nearest a time,
and each capture's record, payload, clean text and metadata.

    archive = open_archive("s3://bucket/news")      # or a folder; default ./archive
    captures = archive.list("https://example.com/a")  # [Capture], oldest first
    capture = archive.nearest("https://example.com/a", "2024-05-02T12:00:00Z")
    html = archive.payload(capture, decoded=True)

Lookups go through the catalog (synced from the archive's indexes when the
archive is opened); reads are ranged reads of exactly one record. Opening a
folder that is not an archive creates nothing.
"""

from __future__ import annotations

import contextlib
import json
import os
from datetime import datetime
from pathlib import Path

from storage import layout, urls
from storage.backends import ObjectNotFoundError, open_backend
from storage.capture import Capture
from storage.catalog import Catalog, SyncReport, default_path
from storage.contentcoding import DecodedTooLarge, DecodeError, decode, decoded_chunks, split_codings
from storage.errors import BadInput, NewsarchiveError, NotFound, StorageError
from storage.times import parse_time, timestamp_datetime
from storage.warcrecord import dechunked, parse_record

DEFAULT_LOCATION = "./archive"
# A stored payload is the bytes a site sent, compressed as it sent them: a hostile page's
# few hundred KB of gzip may decode to gigabytes. Reading decodes at most this much, the
# limit the crawl itself decoded to (the same variables, the same 50 MB default).
DEFAULT_MAX_DECODED_BYTES = 50 * 1024 * 1024
FORMS = ("text", "json", "html", "raw", "warc")


def default_location() -> str:
    return os.environ.get("NEWSARCHIVE_ARCHIVE") or DEFAULT_LOCATION


def is_folder_archive(location: str) -> bool:
    """A folder holding an archive (what a crawl or an upload made), not just any folder."""
    path = Path(location)
    return path.is_dir() and any((path / kind).is_dir() for kind in layout.KINDS)


class Archive:
    """One archive location (folder or ``s3://bucket/prefix``) and its catalog."""

    def __init__(self, location: str | os.PathLike | None = None, *,
                 catalog_path: str | os.PathLike | None = None, backend=None, sync: bool = True):
        self.location = str(location or default_location())
        if not self.location.startswith("s3://") and not is_folder_archive(self.location):
            what = "not a folder" if not Path(self.location).is_dir() else "no warc/ or indexes/ in it"
            raise NotFound(f"no archive at {self.location} ({what})")
        self.backend = backend or open_backend(self.location)
        self.catalog = Catalog(catalog_path or default_path(self.location))
        self.last_sync: SyncReport | None = None
        if sync:
            self.sync()

    def __repr__(self) -> str:
        return f"Archive({self.location!r})"

    def close(self) -> None:
        """Close this thread's catalog connection (the last one to close checkpoints SQLite's WAL
        into the catalog and removes catalog.sqlite-wal: a run leaves no connection behind)."""
        self.catalog.close()

    def __enter__(self) -> "Archive":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- catalog -------------------------------------------------------------

    def sync(self) -> SyncReport:
        """Ingest indexes added to the archive since the last sync."""
        self.last_sync = self.catalog.sync(self.backend)
        return self.last_sync

    def reindex(self) -> SyncReport:
        """Index every WARC in the archive that has no index yet (an upload that
        stopped half way), then rebuild the catalog from all indexes."""
        written, failed = self.index_missing()
        self.last_sync = self.catalog.rebuild(self.backend)
        self.last_sync.indexes_written = written
        self.last_sync.skipped[:0] = failed
        return self.last_sync

    def index_missing(self) -> tuple[int, list[str]]:
        """Write ``indexes/...cdxj`` for each ``warc/...warc.gz`` lacking one.
        Returns (indexes written, ["KEY: reason" for WARCs that could not be indexed])."""
        import shutil
        import tempfile

        from storage import cdxj

        have = set(self.backend.list("indexes/"))
        written, failed = 0, []
        for key in list(self.backend.list("warc/")):
            if not key.endswith(".warc.gz"):
                continue
            try:
                index_key = layout.index_key(key)
            except layout.UnsafeKeyError:
                continue
            if index_key in have:
                continue
            with tempfile.TemporaryDirectory(prefix="newsarchive-reindex-") as tmp:
                local = Path(tmp) / "warc.gz"
                with self.backend.open_stream(key) as src, open(local, "wb") as out:
                    shutil.copyfileobj(src, out, 1024 * 1024)
                try:
                    lines = cdxj.index_warc(local, key)
                except Exception as exc:  # a damaged WARC must not stop the others
                    failed.append(f"{key}: cannot index: {exc}")
                    continue
            self.backend.put_bytes(index_key, "".join(lines).encode("utf-8"))
            written += 1
        return written, failed

    # -- lookups -------------------------------------------------------------

    def list(self, url: str) -> list[Capture]:
        """Captures (HTTP responses and revisits) of ``url``, oldest first; [] when none."""
        return self.captures(url)

    def captures(self, url: str, match_type: str = "exact", **query) -> list[Capture]:
        """Captures with an HTTP status matching ``url`` (catalog.captures' rules).
        A revisit counts as having text when its original has."""
        urls.url_key(url)  # a bad URL is one line (URLError) before any lookup
        found = self.catalog.captures(url, match_type, with_status_only=True, **query)
        out = []
        for c in found:
            if c.is_revisit and not c.text:  # unchanged: the original's text stands for it
                original = self.catalog.original_of(c.url, c.digest, None, c.timestamp)
                c = c.with_text(bool(original and original.text))
            out.append(c)
        return out

    def nearest(self, url: str, at: str | datetime | None = None) -> Capture:
        """The capture of ``url`` nearest to ``at`` (the newest when ``at`` is None).
        Ties go to the earlier capture."""
        found = self.captures(url)
        if not found:
            raise NotFound(f"no capture of {url} in {self.location}")
        target = parse_time(at)
        if target is None:
            return found[-1]
        when = timestamp_datetime(target)
        return min(found, key=lambda c: abs((c.datetime - when).total_seconds()))

    # -- reads ---------------------------------------------------------------

    def _range(self, key: str, offset: int, length: int) -> bytes:
        data = self.backend.get_range(key, int(offset), int(length))
        if len(data) != int(length):
            raise StorageError(f"short read of {key} at {offset}: {len(data)} of {length} bytes")
        return data

    def record(self, capture: Capture) -> bytes:
        """The WARC record of ``capture``, exactly as stored (one gzip member)."""
        return self._range(capture.warc, capture.offset, capture.length)

    def _parsed(self, data: bytes, what: str):
        """The record (storage/warcrecord.py: read directly, or by warcio when it is unusual)."""
        try:
            rec = parse_record(data)
        except Exception as exc:  # warcio raises assorted errors on damage
            raise StorageError(f"damaged WARC record {what}: {exc}") from None
        if rec is None:
            raise StorageError(f"no WARC record at {what}")
        return rec

    def _record_of(self, capture: Capture):
        return self._parsed(self.record(capture), f"{capture.warc}@{capture.offset}")

    def original(self, capture: Capture) -> Capture | None:
        """For a revisit capture, the capture whose payload it repeats (the record
        its WARC-Refers-To names, else the newest earlier one of the same URL with
        the same payload digest); None for any other capture or when it is missing."""
        if not capture.is_revisit:
            return None
        rec = self._record_of(capture)
        return self._original_of(capture, rec)

    def _original_of(self, capture: Capture, rec) -> Capture | None:
        return self.catalog.original_of(capture.url, capture.digest,
                                        rec.rec_headers.get_header("WARC-Refers-To"), capture.timestamp)

    def _payload_record(self, capture: Capture, rec):
        """The record holding the payload of ``capture`` (``rec``, or for a revisit its original)."""
        if rec.rec_type != "revisit":
            return rec
        original = self._original_of(capture, rec)
        if original is None:
            raise NotFound(f"revisit of {capture.url} at {capture.timestamp}: the capture it refers to "
                           f"is not in {self.location}")
        return self._record_of(original)

    def http_response(self, capture: Capture) -> tuple[str, list[tuple[str, str]], bytes, bytes]:
        """``(status line, headers, raw payload, payload without transfer-encoding)``.

        The raw payload is exactly the bytes stored after the HTTP headers; the
        second form has chunked transfer-coding removed but content-encoding
        (gzip, br, ...) kept, as a client would receive it over a connection.
        A revisit answers with its own status line and headers and the payload
        of the capture it refers to.
        """
        rec = self._record_of(capture)
        if rec.http_headers is None:
            raise StorageError(f"record {capture.warc}@{capture.offset} has no HTTP response")
        headers = list(rec.http_headers.headers)
        status = rec.http_headers.statusline
        raw = self._payload_record(capture, rec).raw
        return status, headers, raw, dechunked(raw) if _is_chunked(rec.http_headers) else raw

    def payload(self, capture: Capture, *, decoded: bool = False) -> bytes:
        """The HTTP payload: as stored, or (``decoded``) with chunking and
        content-encoding removed, the HTML a browser would parse. A revisit's
        payload is its original's."""
        rec = self._payload_record(capture, self._record_of(capture))
        if not decoded:
            return rec.raw
        body, to_decode, _ = _encoded_body(rec)
        with _decoding_errors(capture):
            return decode(body, to_decode, max_decoded_bytes())

    def check_decodes(self, capture: Capture, *, as_stored: str = "--as raw") -> list[str]:
        """The payload's content-codings in the order applied (as its header lists them),
        once it is known to decode within NEWSARCHIVE_MAX_DECODED_BYTES as
        ``payload(decoded=True)`` would (StorageError if not); streamed, so nothing is kept.
        For a replay tool that decodes by itself (pywb), which would stream a bomb out
        without end. ``as_stored`` names, in the error, what gives the payload as stored."""
        rec = self._payload_record(capture, self._record_of(capture))
        body, to_decode, kept = _encoded_body(rec)
        if to_decode:
            with _decoding_errors(capture, as_stored):
                for _ in decoded_chunks(body, to_decode, max_decoded_bytes()):
                    pass
        return kept + to_decode[::-1]

    def _text_capture(self, capture: Capture) -> Capture:
        """The capture whose text stands for ``capture``: a revisit's original
        (unchanged content is not extracted again), else the capture itself."""
        if capture.is_revisit and not self.catalog.text_of(capture.record_id):
            return self.original(capture) or capture
        return capture

    def _article_key(self, capture: Capture, ext: str) -> str | None:
        source = capture.source or (capture.warc.split("/")[1] if capture.warc.startswith("warc/") else None)
        if not source:
            return None
        try:
            return layout.article_key(source, capture.datetime, capture.url, ext)
        except layout.UnsafeKeyError:
            return None

    def _optional(self, key: str | None) -> bytes | None:
        if not key:
            return None
        try:
            return self.backend.get_bytes(key)
        except ObjectNotFoundError:
            return None

    def text(self, capture: Capture) -> str:
        """The plain-text form: the conversion record, else ``articles/...txt``."""
        capture = self._text_capture(capture)
        conv = self.catalog.text_of(capture.record_id)
        if conv:
            what = f"{conv.warc}@{conv.offset}"
            rec = self._parsed(self._range(conv.warc, conv.offset, conv.length), what)
            return rec.content().decode("utf-8")
        data = self._optional(self._article_key(capture, "txt"))
        if data is None:
            raise NotFound(f"no text of {capture.url} at {capture.timestamp} in {self.location} "
                           "(it was not extracted as an article; try --as html)")
        return data.decode("utf-8")

    def metadata(self, capture: Capture) -> dict:
        """The article's metadata (``articles/...json``) with its ``text``."""
        capture = self._text_capture(capture)
        text = self.text(capture)
        key = self._article_key(capture, "json")
        data = self._optional(key)
        if data is not None:
            try:
                meta = json.loads(data)
            except ValueError:
                raise StorageError(f"damaged metadata {key}") from None
        else:  # text without its .json: say what the catalog knows
            meta = {"url": capture.url, "fetched_at": capture.datetime.isoformat(),
                    "warc": capture.warc, "offset": capture.offset, "record_id": capture.record_id}
        meta["text"] = text
        return meta

    def get(self, url: str, at: str | None = None, as_: str = "html") -> bytes:
        """What ``newsarchive get URL --at TIME --as FORM`` prints, as bytes."""
        if as_ not in FORMS:
            raise BadInput(f"--as must be one of {', '.join(FORMS)}: {as_!r}")
        capture = self.nearest(url, at)
        if as_ == "warc":
            return self.record(capture)
        if as_ == "raw":
            return self.payload(capture)
        if as_ == "html":
            return self.payload(capture, decoded=True)
        if as_ == "text":
            return self.text(capture).encode("utf-8")
        return (json.dumps(self.metadata(capture), ensure_ascii=False, indent=2) + "\n").encode("utf-8")


def open_archive(location: str | os.PathLike | None = None, **options) -> Archive:
    """The archive at ``location`` (default ``$NEWSARCHIVE_ARCHIVE`` or ``./archive``)."""
    return Archive(location, **options)


__all__ = ["Archive", "open_archive", "default_location", "is_folder_archive", "NewsarchiveError", "NotFound"]


def _encoded_body(rec) -> tuple[bytes, list[str], list[str]]:
    """A payload record's body without chunking, the content-codings to remove (outermost
    first) and those left on (unknown ones, and what lies under them)."""
    headers = rec.http_headers
    body = dechunked(rec.raw) if _is_chunked(headers) else rec.raw
    codings = [v for n, v in headers.headers if n.lower() == "content-encoding"] if headers else []
    to_decode, kept = split_codings(codings)  # every Content-Encoding line: a repeated header counts
    return body, to_decode, kept


@contextlib.contextmanager
def _decoding_errors(capture: Capture, as_stored: str = "--as raw"):
    where = f"{capture.url} at {capture.warc}@{capture.offset}"
    try:
        yield
    except DecodedTooLarge as exc:
        raise StorageError(f"payload of {where} {exc.args[0]} (NEWSARCHIVE_MAX_DECODED_BYTES); "
                           f"{as_stored} gives it as stored") from None
    except DecodeError as exc:
        raise StorageError(f"cannot decode payload of {where}: {exc}") from None


def max_decoded_bytes() -> int:
    """NEWSARCHIVE_MAX_DECODED_BYTES, else NEWSARCHIVE_MAX_BODY_BYTES, else 50 MB (as the crawl reads them)."""
    for name in ("NEWSARCHIVE_MAX_DECODED_BYTES", "NEWSARCHIVE_MAX_BODY_BYTES"):
        value = os.environ.get(name, "").strip()
        if value.isdigit() and int(value) > 0:
            return int(value)
    return DEFAULT_MAX_DECODED_BYTES


def _is_chunked(headers) -> bool:
    return headers is not None and (headers.get_header("Transfer-Encoding") or "").lower().strip() == "chunked"
