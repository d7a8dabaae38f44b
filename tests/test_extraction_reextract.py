"""Re-deriving text from a real WARC gives what direct extraction of the same bytes gives."""

from __future__ import annotations

import gzip
from io import BytesIO

import pytest
from warcio.archiveiterator import ArchiveIterator
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from spiders.extraction import extract_article
from spiders.reextract import ReextractError, reextract_warc

BASE = "https://news.example.com/2021/03/"


def _response(writer, url, body, *, status="200 OK", content_type="text/html; charset=utf-8",
              gzip_body=False, chunked=False):
    headers = [("Content-Type", content_type)]
    payload = body
    if gzip_body:
        payload = gzip.compress(body)
        headers.append(("Content-Encoding", "gzip"))
    if chunked:
        payload = b"%x\r\n%s\r\n0\r\n\r\n" % (len(payload), payload)
        headers.append(("Transfer-Encoding", "chunked"))
    else:
        headers.append(("Content-Length", str(len(payload))))
    http = StatusAndHeaders(status, headers, protocol="HTTP/1.1")
    request = writer.create_warc_record(url, "request", payload=BytesIO(b""),
                                        http_headers=StatusAndHeaders(f"GET {url} HTTP/1.1", [("Host", "news.example.com")], is_http_request=True))
    writer.write_record(request)
    writer.write_record(writer.create_warc_record(url, "response", payload=BytesIO(payload), http_headers=http))


@pytest.fixture
def small_warc(tmp_path, news_page):
    pages = {
        BASE + "plain": (news_page(title="Plain article about the talks"), {}),
        BASE + "gzipped": (news_page(title="Gzipped article about the talks"), {"gzip_body": True}),
        BASE + "chunked-gzip": (news_page(title="Chunked and gzipped article"), {"gzip_body": True, "chunked": True}),
        BASE + "cp1251": (news_page(title="Статья о переговорах", paragraphs=[
            "Президент России Владимир Путин предложил американскому коллеге провести открытую дискуссию.",
            "В Белом доме заявили, что разговор вряд ли состоится в пятницу из-за поездки президента.",
        ], lang="ru"), {"content_type": "text/html; charset=windows-1251"}),
    }
    path = tmp_path / "test.warc.gz"
    with open(path, "wb") as out:
        writer = WARCWriter(out, gzip=True)
        for url, (html, opts) in pages.items():
            encoding = "cp1251" if "1251" in opts.get("content_type", "") else "utf-8"
            _response(writer, url, html.encode(encoding), **opts)
        _response(writer, BASE + "missing", news_page().encode(), status="404 Not Found")
        _response(writer, BASE + "logo.png", b"\x89PNG\r\n\x1a\n", content_type="image/png")
        _response(writer, BASE + "empty", b"")
    return path, pages


def test_reextract_matches_direct_extraction(small_warc):
    path, pages = small_warc
    results = list(reextract_warc(path, workers=2))
    # 2xx HTML only (not the 404, not the PNG), in WARC order; the empty page is an error
    assert [r.url for r in results] == [*pages, BASE + "empty"]
    assert results[-1].article is None and "empty body" in results[-1].error
    for result in results[:-1]:
        html, opts = pages[result.url]
        content_type = opts.get("content_type", "text/html; charset=utf-8")
        encoding = "cp1251" if "1251" in content_type else "utf-8"
        direct = extract_article(html.encode(encoding), url=result.url, content_type=content_type,
                                 fetched_at=result.date, capture=result.article.metadata["capture"])
        assert result.error is None
        assert result.article.text == direct.text
        assert result.article.metadata == direct.metadata


def test_capture_points_at_the_response_record(small_warc):
    path, _ = small_warc
    for result in reextract_warc(path, workers=1):
        capture = {"warc": path.name, "offset": result.offset, "length": result.length, "record_id": result.record_id}
        if result.article:
            assert result.article.metadata["capture"] == capture
            assert result.article.metadata["fetched_at"] == result.date
        with open(path, "rb") as f:  # the offset/length cut out exactly that record
            f.seek(result.offset)
            record = next(iter(ArchiveIterator(BytesIO(f.read(result.length)))))
        assert record.rec_type == "response"
        assert record.rec_headers.get_header("WARC-Record-ID") == result.record_id
        assert record.rec_headers.get_header("WARC-Target-URI") == result.url


def test_only_the_given_urls(small_warc):
    path, _ = small_warc
    wanted = {BASE + "gzipped", BASE + "cp1251", BASE + "not-in-warc"}
    results = list(reextract_warc(path, workers=2, urls=wanted, chunksize=1, max_in_flight=1))
    assert [r.url for r in results] == [BASE + "gzipped", BASE + "cp1251"]
    assert "Президент России" in results[1].article.text


def test_missing_warc_is_a_clear_error(tmp_path):
    with pytest.raises(ReextractError, match="no such WARC"):
        next(reextract_warc(tmp_path / "nope.warc.gz"))


@pytest.mark.parametrize("workers", [1, 2])
def test_garbage_file_is_a_one_line_error(tmp_path, workers):
    path = tmp_path / "garbage.warc.gz"
    path.write_bytes(b"this is not a WARC file at all\n" * 100)
    with pytest.raises(ReextractError, match="not a readable WARC") as info:
        list(reextract_warc(path, workers=workers))
    assert "\n" not in str(info.value)
