"""The archive as its users see it: captures of a URL, the one nearest a time,
and each capture's record, payload, clean text and metadata.

    archive = open_archive("s3://bucket/news")      # or a folder; default ./archive
    captures = archive.list("https://example.com/a")  # oldest first
    capture = archive.nearest("https://example.com/a", "2024-05-02T12:00:00Z")
    html = archive.payload(capture, decoded=True)

Lookups go through the catalog (synced from the archive's indexes when the
archive is opened); reads are ranged reads of exactly one record.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import tempfile
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from pathlib import Path

from warcio.archiveiterator import ArchiveIterator
from warcio.bufferedreaders import ChunkedDataReader

from storage import cdxj, layout, urls
from storage.backends import ObjectNotFoundError, StorageError, open_backend
from storage.catalog import Catalog, CatalogError, SyncReport, default_path, timestamp_datetime

DEFAULT_LOCATION = "./archive"

CONTRACT_FIELDS = ("timestamp", "url", "status", "mime", "digest", "warc", "offset", "length", "text")


class ArchiveError(Exception):
    """Anything a user can get wrong or meet (one-line message)."""


class NotFound(ArchiveError):
    """No such capture, text or metadata."""


def default_location() -> str:
    return os.environ.get("NEWSARCHIVE_ARCHIVE") or DEFAULT_LOCATION


def parse_time(value: str | datetime | None) -> str | None:
    """A user's time as a 14-digit UTC timestamp.

    Accepts 4-14 digit WARC timestamps (missing parts pad to the earliest:
    ``2024`` -> ``20240101000000``), ISO 8601 (``2024-05-02``,
    ``2024-05-02T12:00:00Z``, with any offset) and RFC 1123 dates as HTTP's
    ``Accept-Datetime`` carries them. Naive times are UTC.
    """
    if value is None:
        return None
    if isinstance(value, datetime):
        return layout.warc_timestamp(value)
    text = value.strip()
    if re.fullmatch(r"\d{4,14}", text):
        padded = text + "00000101000000"[len(text):]
        try:
            timestamp_datetime(padded)
        except ValueError:
            raise ArchiveError(f"not a valid timestamp: {value!r}") from None
        return padded
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            raise ArchiveError(
                f"not a time: {value!r} (use ISO 8601 like 2024-05-02T12:00:00Z or 14 digits)"
            ) from None
    return layout.warc_timestamp(when)


def public(capture: dict) -> dict:
    """A capture as ``list --json`` prints it: the contract fields, then record_id."""
    out = {name: capture[name] for name in CONTRACT_FIELDS}
    out["record_id"] = capture.get("record_id")
    return out


class Archive:
    """One archive location (folder or ``s3://bucket/prefix``) and its catalog."""

    def __init__(self, location: str | os.PathLike | None = None, *,
                 catalog_path: str | os.PathLike | None = None, backend=None, sync: bool = True):
        self.location = str(location or default_location())
        if not self.location.startswith("s3://") and not Path(self.location).is_dir():
            raise ArchiveError(f"no archive at {self.location} (not a folder)")
        try:
            self.backend = backend or open_backend(self.location)
            self.catalog = Catalog(catalog_path or default_path(self.location))
        except (StorageError, CatalogError) as exc:
            raise ArchiveError(str(exc)) from None
        self.last_sync: SyncReport | None = None
        if sync:
            self.sync()

    def __repr__(self) -> str:
        return f"Archive({self.location!r})"

    # -- catalog -------------------------------------------------------------

    def sync(self) -> SyncReport:
        """Ingest indexes added to the archive since the last sync."""
        try:
            self.last_sync = self.catalog.sync(self.backend)
        except StorageError as exc:
            raise ArchiveError(str(exc)) from None
        return self.last_sync

    def reindex(self) -> SyncReport:
        """Index every WARC in the archive that has no index yet (an upload that
        stopped half way), then rebuild the catalog from all indexes."""
        try:
            written, failed = self.index_missing()
            self.last_sync = self.catalog.rebuild(self.backend)
        except StorageError as exc:
            raise ArchiveError(str(exc)) from None
        self.last_sync.indexes_written = written
        self.last_sync.skipped[:0] = failed
        return self.last_sync

    def index_missing(self) -> tuple[int, list[str]]:
        """Write ``indexes/...cdxj`` for each ``warc/...warc.gz`` lacking one.
        Returns (indexes written, ["KEY: reason" for WARCs that could not be indexed])."""
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

    def _url(self, url: str) -> str:
        try:
            urls.url_key(url)
        except urls.URLError as exc:
            raise ArchiveError(str(exc)) from None
        return url

    def list(self, url: str) -> list[dict]:
        """Captures (HTTP responses) of ``url``, oldest first; [] when none."""
        return [public(c) for c in self.captures(url)]

    def captures(self, url: str, match_type: str = "exact", **query) -> list[dict]:
        """Catalog rows (contract fields plus record_id, urlkey, source)."""
        self._url(url)
        rows = self.catalog.captures(url, match_type, with_status_only=True, **query)
        rows = [r for r in rows if r["mime"] != "warc/revisit" or r["status"]]
        for r in rows:
            if r["mime"] == "warc/revisit" and not r["text"]:  # unchanged: the original's text stands for it
                original = self.catalog.original_of(r["url"], r["digest"], None, r["timestamp"])
                r["text"] = bool(original and original["text"])
        return rows

    def nearest(self, url: str, at: str | datetime | None = None) -> dict:
        """The capture of ``url`` nearest to ``at`` (the newest when ``at`` is None).
        Ties go to the earlier capture."""
        found = self.captures(url)
        if not found:
            raise NotFound(f"no capture of {url} in {self.location}")
        target = parse_time(at)
        if target is None:
            return public(found[-1])
        when = timestamp_datetime(target)
        best = min(found, key=lambda c: abs((timestamp_datetime(c["timestamp"]) - when).total_seconds()))
        return public(best)

    def at(self, url: str, timestamp: str) -> dict:
        """The capture of ``url`` at exactly ``timestamp`` (14 digits)."""
        for capture in self.captures(url):
            if capture["timestamp"] == timestamp:
                return public(capture)
        raise NotFound(f"no capture of {url} at {timestamp} in {self.location}")

    # -- reads ---------------------------------------------------------------

    def _range(self, key: str, offset: int, length: int) -> bytes:
        try:
            data = self.backend.get_range(key, int(offset), int(length))
        except StorageError as exc:
            raise ArchiveError(str(exc)) from None
        if len(data) != int(length):
            raise ArchiveError(f"short read of {key} at {offset}: {len(data)} of {length} bytes")
        return data

    def record(self, capture: dict) -> bytes:
        """The WARC record of ``capture``, exactly as stored (one gzip member)."""
        return self._range(capture["warc"], capture["offset"], capture["length"])

    def _parsed(self, data: bytes, what: str):
        try:
            for rec in ArchiveIterator(io.BytesIO(data)):
                return rec
        except Exception as exc:  # warcio raises assorted errors on damage
            raise ArchiveError(f"damaged WARC record {what}: {exc}") from None
        raise ArchiveError(f"no WARC record at {what}")

    def original(self, capture: dict) -> dict | None:
        """For a revisit capture, the capture whose payload it repeats (the record
        its WARC-Refers-To names, else the newest earlier one of the same URL with
        the same payload digest); None for any other capture or when it is missing."""
        if capture.get("mime") != "warc/revisit":
            return None
        what = f"{capture['warc']}@{capture['offset']}"
        rec = self._parsed(self.record(capture), what)
        return self.catalog.original_of(capture["url"], capture.get("digest"),
                                        rec.rec_headers.get_header("WARC-Refers-To"), capture["timestamp"])

    def _payload_record(self, capture: dict, rec):
        """The record holding the payload of ``capture`` (``rec``, or for a revisit its original)."""
        if rec.rec_type != "revisit":
            return rec
        original = self.catalog.original_of(capture["url"], capture.get("digest"),
                                            rec.rec_headers.get_header("WARC-Refers-To"), capture["timestamp"])
        if original is None:
            raise NotFound(f"revisit of {capture['url']} at {capture['timestamp']}: the capture it refers to "
                           f"is not in {self.location}")
        return self._parsed(self.record(original), f"{original['warc']}@{original['offset']}")

    def http_response(self, capture: dict) -> tuple[str, list[tuple[str, str]], bytes, bytes]:
        """``(status line, headers, raw payload, payload without transfer-encoding)``.

        The raw payload is exactly the bytes stored after the HTTP headers; the
        second form has chunked transfer-coding removed but content-encoding
        (gzip, br, ...) kept, as a client would receive it over a connection.
        A revisit answers with its own status line and headers and the payload
        of the capture it refers to.
        """
        what = f"{capture['warc']}@{capture['offset']}"
        rec = self._parsed(self.record(capture), what)
        if rec.http_headers is None:
            raise ArchiveError(f"record {what} has no HTTP response")
        headers = list(rec.http_headers.headers)
        status = rec.http_headers.statusline
        chunked = (rec.http_headers.get_header("Transfer-Encoding") or "").lower().strip() == "chunked"
        rec = self._payload_record(capture, rec)
        raw = rec.raw_stream.read()
        body = raw
        if chunked:
            try:
                body = ChunkedDataReader(io.BytesIO(raw), raise_exceptions=True).read()
            except Exception:
                body = raw  # not really chunked: keep the bytes as they were
        return status, headers, raw, body

    def payload(self, capture: dict, *, decoded: bool = False) -> bytes:
        """The HTTP payload: as stored, or (``decoded``) with chunking and
        content-encoding removed, the HTML a browser would parse. A revisit's
        payload is its original's."""
        what = f"{capture['warc']}@{capture['offset']}"
        rec = self._payload_record(capture, self._parsed(self.record(capture), what))
        if not decoded:
            return rec.raw_stream.read()
        try:
            return rec.content_stream().read()
        except Exception as exc:
            raise ArchiveError(f"cannot decode payload of {capture['url']} at {what}: {exc}") from None

    def text_record(self, capture: dict) -> dict | None:
        return self.catalog.text_of(capture.get("record_id"))

    def _text_capture(self, capture: dict) -> dict:
        """The capture whose text stands for ``capture``: a revisit's original
        (unchanged content is not extracted again), else the capture itself."""
        if capture.get("mime") == "warc/revisit" and not self.text_record(capture):
            return self.original(capture) or capture
        return capture

    def _article_key(self, capture: dict, ext: str) -> str | None:
        source = capture["warc"].split("/")[1] if capture["warc"].startswith("warc/") else None
        if not source:
            return None
        try:
            return layout.article_key(source, timestamp_datetime(capture["timestamp"]), capture["url"], ext)
        except layout.UnsafeKeyError:
            return None

    def _optional(self, key: str | None) -> bytes | None:
        if not key:
            return None
        try:
            return self.backend.get_bytes(key)
        except ObjectNotFoundError:
            return None
        except StorageError as exc:
            raise ArchiveError(str(exc)) from None

    def text(self, capture: dict) -> str:
        """The plain-text form: the conversion record, else ``articles/...txt``."""
        capture = self._text_capture(capture)
        conv = self.text_record(capture)
        if conv:
            what = f"{conv['warc']}@{conv['offset']}"
            rec = self._parsed(self._range(conv["warc"], conv["offset"], conv["length"]), what)
            return rec.content_stream().read().decode("utf-8")
        data = self._optional(self._article_key(capture, "txt"))
        if data is None:
            raise NotFound(f"no text of {capture['url']} at {capture['timestamp']} in {self.location}")
        return data.decode("utf-8")

    def metadata(self, capture: dict) -> dict:
        """The article's metadata (``articles/...json``) with its ``text``."""
        capture = self._text_capture(capture)
        text = self.text(capture)
        data = self._optional(self._article_key(capture, "json"))
        if data is not None:
            try:
                meta = json.loads(data)
            except ValueError:
                raise ArchiveError(f"damaged metadata {self._article_key(capture, 'json')}") from None
        else:  # text without its .json: say what the catalog knows
            meta = {"url": capture["url"], "fetched_at": timestamp_datetime(capture["timestamp"]).isoformat(),
                    "warc": capture["warc"], "offset": capture["offset"], "record_id": capture.get("record_id")}
        meta["text"] = text
        return meta

    def get(self, url: str, at: str | None = None, as_: str = "html") -> bytes:
        """What ``newsarchive get URL --at TIME --as FORM`` prints, as bytes."""
        capture = self.nearest(url, at)
        if as_ == "warc":
            return self.record(capture)
        if as_ == "raw":
            return self.payload(capture)
        if as_ == "html":
            return self.payload(capture, decoded=True)
        if as_ == "text":
            return self.text(capture).encode("utf-8")
        if as_ == "json":
            return (json.dumps(self.metadata(capture), ensure_ascii=False, indent=2) + "\n").encode("utf-8")
        raise ArchiveError(f"--as must be one of text, json, html, raw, warc: {as_!r}")


def open_archive(location: str | os.PathLike | None = None, **options) -> Archive:
    """The archive at ``location`` (default ``$NEWSARCHIVE_ARCHIVE`` or ``./archive``)."""
    return Archive(location, **options)


def now_timestamp() -> str:
    return layout.warc_timestamp(datetime.now(timezone.utc))
