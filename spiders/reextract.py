"""Re-derive clean text from archived WARCs, without fetching anything.

Response records stream out of the WARC, HTML 2xx ones go to a process pool
in small chunks with a bounded number in flight, so memory stays flat however
big the WARC is. Results come back in WARC order.

Payloads are decoded here as the crawl decodes them (storage.contentcoding: gzip,
deflate, br, zstd, nested, bounded) and under the crawl's parse limits: a
compression bomb or a huge page that the crawl archived but did not read is
not read here either (an error result, `too-large` or `decompression-limit`).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections import deque
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

from warcio.archiveiterator import ArchiveIterator
from warcio.bufferedreaders import ChunkedDataReader
from warcio.exceptions import ArchiveLoadFailed

from storage.contentcoding import DecodedTooLarge, DecodeError, decode, split_codings
from spiders.extraction import Article, ExtractionError, extract_article
from spiders.limits import DEFAULT_MAX_BODY_BYTES, ParseLimits
from spiders.warcfiles import warc_date_to_datetime
from spiders.workerpool import extraction_pool
from storage import layout
from storage.errors import NotFound, StorageError

__all__ = ["ReextractError", "ReextractReport", "ReextractResult", "reextract_archive", "reextract_warc"]

_HTML_TYPES = ("text/html", "application/xhtml+xml")


class ReextractError(StorageError):
    """The WARC itself cannot be read (one line); page errors are results instead."""


@dataclass
class ReextractResult:
    url: str
    record_id: str  # WARC-Record-ID of the response record
    date: str  # WARC-Date of the response
    offset: int  # of the record in the WARC file
    length: int  # of the record (its gzip member) in the WARC file
    article: Article | None = None
    error: str | None = None  # one line, when there is no article

    @property
    def ok(self) -> bool:
        return self.article is not None


@dataclass
class _Job:
    # What a worker needs for one record: small, picklable.
    url: str
    record_id: str
    date: str
    offset: int
    length: int
    body: bytes
    content_type: str | None
    capture: dict
    error: str | None = None  # not extracted at all: why (too large, undecodable)


def _html_responses(path: Path, warc_key: str, urls: set[str] | None) -> Iterator[_Job]:
    try:
        yield from _read_responses(path, warc_key, urls)
    except (ArchiveLoadFailed, OSError, EOFError, ValueError) as exc:
        reason = " ".join(str(exc).split())[:160] or type(exc).__name__
        raise ReextractError(f"not a readable WARC: {path}: {reason}") from None


def _read_responses(path: Path, warc_key: str, urls: set[str] | None) -> Iterator[_Job]:
    with open(path, "rb") as stream:
        records = ArchiveIterator(stream)
        for record in records:
            if record.rec_type != "response" or record.http_headers is None:
                continue
            url = record.rec_headers.get_header("WARC-Target-URI") or ""
            if urls is not None and url not in urls:
                continue
            status = record.http_headers.get_statuscode() or ""
            content_type = record.http_headers.get_header("Content-Type")
            mime = (content_type or "").split(";")[0].strip().lower()
            if not status.startswith("2") or (mime and mime not in _HTML_TYPES):
                continue
            body, error = _payload(record)
            offset, length = records.get_record_offset(), records.get_record_length()
            record_id = record.rec_headers.get_header("WARC-Record-ID") or ""
            yield _Job(
                url=url, record_id=record_id, date=record.rec_headers.get_header("WARC-Date") or "",
                offset=offset, length=length, body=body, content_type=content_type,
                capture={"warc": warc_key, "offset": offset, "length": length, "record_id": record_id},
                error=error and f"{error}: {url}",
            )


def _payload(record, max_bytes: int = DEFAULT_MAX_BODY_BYTES, limits: ParseLimits = ParseLimits()):
    """(the HTML a record holds, or b"" and why not): de-chunked, decoded, within the limits."""
    stream = record.raw_stream
    if (record.http_headers.get_header("Transfer-Encoding") or "").lower() == "chunked":
        stream = ChunkedDataReader(stream)  # as other tools store it; our captures are de-chunked
    raw = stream.read(max_bytes + 1)
    to_decode, _ = split_codings(v for n, v in record.http_headers.headers if n.lower() == "content-encoding")
    try:
        body = decode(raw, to_decode, max_bytes) if to_decode else raw
    except DecodedTooLarge as exc:
        return b"", f"decompression-limit: {exc}"
    except DecodeError as exc:
        return b"", f"bad-encoding: {exc}"
    too_large = limits.too_large(body)
    return (b"", f"too-large: {too_large}") if too_large else (body, None)


def _extract_one(job: _Job) -> ReextractResult:
    result = ReextractResult(url=job.url, record_id=job.record_id, date=job.date, offset=job.offset, length=job.length)
    if job.error:
        result.error = job.error
        return result
    try:
        result.article = extract_article(
            job.body, url=job.url, content_type=job.content_type, fetched_at=job.date, capture=job.capture
        )
    except ExtractionError as exc:
        result.error = str(exc)
    except Exception as exc:  # never let one page stop a whole WARC
        result.error = f"extraction failed ({type(exc).__name__}): {job.url}"
    return result


def _extract_chunk(jobs: list[_Job]) -> list[ReextractResult]:
    # One task per chunk: fewer round trips to the pool than one per page.
    return [_extract_one(job) for job in jobs]


def _chunks(jobs: Iterable[_Job], size: int) -> Iterator[list[_Job]]:
    chunk: list[_Job] = []
    for job in jobs:
        chunk.append(job)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _pool(workers: int) -> Executor:
    return extraction_pool(workers)


def reextract_warc(
    path: str | os.PathLike,
    *,
    workers: int | None = None,
    urls: Iterable[str] | None = None,
    warc_key: str | None = None,
    chunksize: int = 4,
    max_in_flight: int | None = None,
) -> Iterator[ReextractResult]:
    """Extract every HTML 2xx response in the WARC at `path`, in WARC order.

    `workers`: processes (default all cores; 1 runs in this process).
    `urls`: only these target URIs. `warc_key`: what `capture["warc"]` says
    (default the file name). At most `max_in_flight` chunks of `chunksize`
    pages are pending at once (default 2 per worker), so memory stays flat.
    """
    path = Path(path)
    if not path.is_file():
        raise ReextractError(f"no such WARC: {path}")
    with open(path, "rb") as f:
        # warcio skips what it cannot parse with a warning; a wrong file must say so.
        if not f.read(5).startswith((b"\x1f\x8b", b"WARC/")):
            raise ReextractError(f"not a readable WARC: {path}: neither gzip nor a WARC record")
    workers = workers or os.cpu_count() or 1
    url_set = set(urls) if urls is not None else None
    jobs = _html_responses(path, warc_key or path.name, url_set)
    if workers == 1:
        for job in jobs:
            yield _extract_one(job)
        return
    limit = max_in_flight or 2 * workers
    pending: deque[Future] = deque()
    pool = _pool(workers)
    try:
        for chunk in _chunks(jobs, chunksize):
            pending.append(pool.submit(_extract_chunk, chunk))
            if len(pending) >= limit:
                yield from pending.popleft().result()
        while pending:
            yield from pending.popleft().result()
    finally:
        # A consumer that stops early should not wait for the rest.
        pool.shutdown(wait=True, cancel_futures=True)


@dataclass
class ReextractReport:
    written: int = 0  # articles written
    failed: int = 0  # pages without article text
    errors: dict[str, int] = field(default_factory=dict)  # why, by the first words of the reason


def reextract_archive(out: str | os.PathLike, *, location: str | None = None, source: str | None = None,
                      urls: list[str] | None = None, warcs: list[str] | None = None,
                      workers: int | None = None) -> ReextractReport:
    """Re-derive the text of every article in the archive's capture WARCs (or in the
    local files `warcs`) into `out`, named TIMESTAMP-URLHASH.txt/.json as the
    archive names articles. BadInput/NotFound when there is nothing to read."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    report = ReextractReport()
    for path, key in _warcs_to_read(location, source, warcs):
        for result in reextract_warc(path, workers=workers, urls=urls, warc_key=key):
            if result.ok:
                _write_article(out, result)
                report.written += 1
            else:
                report.failed += 1
                kind = (result.error or "error").split(":", 1)[0][:60]
                report.errors[kind] = report.errors.get(kind, 0) + 1
    if urls and report.written == 0:
        raise NotFound(f"no article text re-derived for {', '.join(urls)}")
    return report


def _warcs_to_read(location: str | None, source: str | None, warcs: list[str] | None) -> Iterator[tuple[Path, str]]:
    """(local file, archive key) of each capture WARC to read."""
    if warcs:
        for w in warcs:
            p = Path(w)
            if not p.is_file():
                raise NotFound(f"no such WARC file: {w}")
            yield p, p.name
        return
    from storage.archive import default_location, is_folder_archive
    from storage.backends import open_backend

    location = location or default_location()
    if not location.startswith("s3://") and not is_folder_archive(location):
        raise NotFound(f"no archive at {location}")
    if source:
        layout.safe_source(source)
    backend = open_backend(location)
    prefix = f"warc/{source}/" if source else "warc/"
    keys = sorted(k for k in backend.list(prefix) if k.endswith(".warc.gz") and not k.endswith(".text.warc.gz"))
    if not keys:
        raise NotFound(f"no capture WARCs under {prefix} in {location}")
    if not location.startswith("s3://"):
        for key in keys:
            yield Path(location) / key, key
        return
    with tempfile.TemporaryDirectory(prefix="newsarchive-reextract-") as tmp:
        for key in keys:
            local = Path(tmp) / Path(key).name
            with backend.open_stream(key) as src, open(local, "wb") as dst:
                shutil.copyfileobj(src, dst, 1024 * 1024)
            try:
                yield local, key
            finally:
                local.unlink(missing_ok=True)


def _write_article(out: Path, result: ReextractResult) -> None:
    stamp = layout.warc_timestamp(warc_date_to_datetime(result.date)) if result.date else "00000000000000"
    name = f"{stamp}-{layout.url_hash(result.url)}"
    (out / f"{name}.txt").write_text(result.article.text, encoding="utf-8")
    (out / f"{name}.json").write_text(json.dumps(result.article.metadata, indent=2, ensure_ascii=False) + "\n",
                                      encoding="utf-8")
