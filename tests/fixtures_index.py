"""Real WARCs for the index, retrieval, serve and WACZ tests.

Capture WARCs hold request/response pairs written with warcio (one of them a
gzip Content-Encoding payload, one chunked), text WARCs hold ``conversion``
records whose WARC-Refers-To is the response's record id, and beside them
articles/*.txt|json and one CDXJ index per WARC, all at the keys
storage/layout.py gives. ``build_spool`` writes that into a folder;
``publish`` puts it into an archive through the real backend.
"""

from __future__ import annotations

import gzip
import io
import json
import shutil
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import format_datetime
from pathlib import Path

import pytest
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from storage import cdxj, layout

SOURCE = "news"
HOST = "testhost"

STORY = "https://www.example.com/2024/05/01/story?b=2&a=1"
ABOUT = "http://example.com/about"
OLD = "https://example.com/old"
BLOG = "https://blog.example.com/post"
OTHER = "https://other.org/x"


def when(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


@dataclass
class Page:
    url: str
    at: datetime
    html: bytes  # the body as a browser sees it (no content- or transfer-encoding)
    status: int = 200
    gzip: bool = False
    chunked: bool = False
    headers: list = field(default_factory=list)
    title: str | None = None  # set for articles: they get a conversion record and .txt/.json
    # filled in when written
    raw: bytes = b""  # the payload exactly as stored in the WARC
    warc: str = ""
    offset: int = 0
    length: int = 0
    record_id: str = ""
    text: str = ""
    text_warc: str = ""

    @property
    def timestamp(self) -> str:
        return layout.warc_timestamp(self.at)


def story(n: int, day: int) -> Page:
    title = f"Story, version {n}"
    html = (f"<html><head><title>{title}</title></head><body><h1>{title}</h1>"
            f"<p>Version {n} of the story \u2014 caf\u00e9, \u201cquoted\u201d.</p></body></html>").encode()
    return Page(STORY, when(f"2024-05-0{day}T10:00:00"), html, gzip=True, title=title,
                headers=[("Last-Modified", format_datetime(when(f"2024-05-0{day}T09:00:00"), usegmt=True))])


def day_pages() -> dict[int, list[Page]]:
    """Three days of crawling, one capture WARC (and one text WARC) a day."""
    return {
        1: [story(1, 1),
            Page(ABOUT, when("2024-05-01T11:00:00"), b"<html><body>About us</body></html>", chunked=True)],
        2: [story(2, 2),
            Page(OLD, when("2024-05-02T11:00:00"), b"moved", status=301, headers=[("Location", STORY)]),
            Page(BLOG, when("2024-05-02T12:00:00"), b"<html><body>Blog</body></html>")],
        3: [story(3, 3),
            Page(OTHER, when("2024-05-03T11:00:00"), b"<html><body>Other site</body></html>")],
    }


def _chunk(data: bytes) -> bytes:
    half = len(data) // 2
    parts = [data[:half], data[half:]]
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts if p) + b"0\r\n\r\n"


def plain_text(page: Page) -> str:
    return (f"{page.title}\nBy Test Desk \u00b7 date {page.at:%Y-%m-%d}\n{page.url}\n\n"
            f"Version text of {page.title} \u2014 caf\u00e9.\n\nSecond paragraph.\n")


def write_capture_warc(path: Path, key: str, pages: list[Page]) -> None:
    with open(path, "wb") as out:
        writer = WARCWriter(out, gzip=True, warc_version="WARC/1.1")
        for page in pages:
            date = page.at.strftime("%Y-%m-%dT%H:%M:%SZ")
            raw = gzip.compress(page.html, mtime=0) if page.gzip else page.html
            reason = {200: "OK", 301: "Moved Permanently", 404: "Not Found"}[page.status]
            headers = [("Content-Type", "text/html; charset=utf-8")] + list(page.headers)
            if page.gzip:
                headers.append(("Content-Encoding", "gzip"))
            if page.chunked:
                raw = _chunk(raw)
                headers.append(("Transfer-Encoding", "chunked"))
            else:
                headers.append(("Content-Length", str(len(raw))))
            page.raw = raw
            http = StatusAndHeaders(f"{page.status} {reason}", headers, protocol="HTTP/1.1")
            resp = writer.create_warc_record(page.url, "response", payload=io.BytesIO(raw),
                                             http_headers=http, warc_headers_dict={"WARC-Date": date})
            req_http = StatusAndHeaders(f"GET {page.url.split('/', 3)[-1] if page.url.count('/') > 2 else '/'} HTTP/1.1",
                                        [("Host", page.url.split("/")[2]), ("Accept-Encoding", "gzip")],
                                        is_http_request=True)
            req = writer.create_warc_record(page.url, "request", http_headers=req_http,
                                            warc_headers_dict={"WARC-Date": date})
            page.offset = out.tell()
            writer.write_record(resp)
            page.length = out.tell() - page.offset
            writer.write_record(req)
            page.warc = key
            page.record_id = resp.rec_headers.get_header("WARC-Record-ID")


def write_text_warc(path: Path, key: str, pages: list[Page]) -> None:
    with open(path, "wb") as out:
        writer = WARCWriter(out, gzip=True, warc_version="WARC/1.1")
        for page in pages:
            page.text = plain_text(page)
            rec = writer.create_warc_record(
                page.url, "conversion", payload=io.BytesIO(page.text.encode("utf-8")),
                warc_content_type="text/plain; charset=utf-8",
                warc_headers_dict={"WARC-Date": page.at.strftime("%Y-%m-%dT%H:%M:%SZ"),
                                   "WARC-Refers-To": page.record_id})
            writer.write_record(rec)
            page.text_warc = key


def build_day(spool: Path, day: int, pages: list[Page]) -> list[str]:
    """Write one day's capture WARC, text WARC, indexes and articles; return the keys."""
    created = when(f"2024-05-0{day}T09:00:00")
    prefix = f"newsarchive-{SOURCE}"
    keys = []
    cap_key = layout.warc_key(SOURCE, created, layout.warc_filename(prefix, created, 0, HOST))
    (spool / cap_key).parent.mkdir(parents=True, exist_ok=True)
    write_capture_warc(spool / cap_key, cap_key, pages)
    keys += [cap_key, layout.index_key(cap_key)]
    cdxj.write_index(spool / cap_key, cap_key, spool)
    articles = [p for p in pages if p.title]
    if articles:
        text_key = layout.warc_key(SOURCE, created, layout.warc_filename(prefix, created, 0, HOST, text=True))
        write_text_warc(spool / text_key, text_key, articles)
        cdxj.write_index(spool / text_key, text_key, spool)
        keys += [text_key, layout.index_key(text_key)]
        for page in articles:
            txt = layout.article_key(SOURCE, page.at, page.url, "txt")
            meta = layout.article_key(SOURCE, page.at, page.url, "json")
            (spool / txt).parent.mkdir(parents=True, exist_ok=True)
            (spool / txt).write_text(page.text, encoding="utf-8")
            (spool / meta).write_text(json.dumps({
                "title": page.title, "author": "Test Desk", "date": f"{page.at:%Y-%m-%d}",
                "url": page.url, "fetched_at": page.at.isoformat(), "warc": page.warc,
                "offset": page.offset, "record_id": page.record_id,
                "extractor": "test", "extractor_version": "0"}), encoding="utf-8")
            keys += [txt, meta]
    return keys


@dataclass
class Built:
    spool: Path
    days: dict[int, list[Page]]
    keys: dict[int, list[str]]

    def pages(self, url: str | None = None) -> list[Page]:
        found = [p for day in sorted(self.days) for p in self.days[day]]
        return [p for p in found if url is None or p.url == url]


def build_spool(spool: Path) -> Built:
    days = day_pages()
    keys = {day: build_day(spool, day, pages) for day, pages in days.items()}
    return Built(spool, days, keys)


def publish(built: Built, location: str, days=(1, 2, 3)) -> None:
    """Put the given days' files into the archive at ``location``."""
    from storage.backends import open_backend

    backend = open_backend(location)
    for day in days:
        for key in built.keys[day]:
            backend.put_file(key, built.spool / key)


@pytest.fixture
def built(tmp_path) -> Built:
    return build_spool(tmp_path / "spool")


@pytest.fixture
def folder_archive(tmp_path, built) -> str:
    """A folder archive holding all three days."""
    location = str(tmp_path / "archive")
    Path(location).mkdir()
    publish(built, location)
    return location


def copy_tree(src: Path, dst: Path) -> None:
    shutil.copytree(src, dst, dirs_exist_ok=True)
