"""What a crawl archived, read back with `list` and `get`: the same answers from a folder and from S3.

Each test runs on both archives of tests/fixtures_crawled.py (`crawled` is parametrized);
what only one backend has (revisits of the second crawl, ranged S3 reads, a fresh machine's
reindex) is tested in test_cli_crawl.py and test_e2e_s3.py.
"""

from __future__ import annotations

import re

import pytest

from fixtures_crawled import archive_keys, captures, cli

CONTRACT = {"timestamp": str, "url": str, "status": int, "mime": str, "digest": str, "warc": str,
            "offset": int, "length": int, "text": bool}


def stored_size(crawled: dict, key: str) -> int:
    """The size of the archive object `key` (a WARC), wherever the archive is."""
    if "client" in crawled:
        return crawled["client"].head_object(Bucket=crawled["bucket"], Key=f"{crawled['prefix']}/{key}")["ContentLength"]
    return (crawled["archive"] / key).stat().st_size


def stored_texts(crawled: dict) -> list[bytes]:
    """Every articles/...txt the crawl archived."""
    if "client" in crawled:
        return [v for k, v in archive_keys(crawled).items() if k.startswith("articles/") and k.endswith(".txt")]
    return [p.read_bytes() for p in (crawled["archive"] / "articles").rglob("*.txt")]


def test_list_json_matches_the_contract(news_site, crawled):
    article = news_site.article("harbour-ferries")
    rows = captures(crawled, article["url"])
    assert len(rows) == crawled["crawls"]  # one capture a run
    for row in rows:
        for field, kind in CONTRACT.items():
            assert isinstance(row[field], kind), (field, row)
        assert re.fullmatch(r"\d{14}", row["timestamp"])
        assert row["url"] == article["url"]
        assert row["status"] == 200 and row["text"] is True
        assert row["warc"].startswith("warc/testnews/") and row["warc"].endswith(".warc.gz")
        assert stored_size(crawled, row["warc"]) >= row["offset"] + row["length"]  # the record is in the object
    assert rows[0]["mime"] == "text/html"
    assert [r["timestamp"] for r in rows] == sorted(r["timestamp"] for r in rows)  # oldest first


@pytest.mark.parametrize("key", ["metroledger-transit",  # gzip-encoded
                                 "northfield-storm",  # chunked
                                 "jiangnan-daily"])  # gb2312
def test_get_as_html_is_what_the_site_served(news_site, crawled, key):
    article = news_site.article(key)
    result = cli(crawled, "get", article["url"], "--as", "html", text=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout == news_site.page_bytes(article["path"])


def test_get_as_raw_keeps_the_content_encoding(news_site, crawled):
    article = news_site.article("metroledger-transit")
    result = cli(crawled, "get", article["url"], "--as", "raw", text=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout == news_site.routes[article["path"]].body  # the gzip bytes as sent
    assert result.stdout[:2] == b"\x1f\x8b"


def test_get_as_text_is_the_plain_text_form(news_site, crawled):
    article = news_site.article("harbour-ferries")
    result = cli(crawled, "get", article["url"], "--as", "text")
    assert result.returncode == 0, result.stderr
    header, _, body = result.stdout.partition("\n\n")
    lines = header.splitlines()
    assert 2 <= len(lines) <= 3 and lines[-1] == article["url"]
    assert "<" not in lines[0]  # a title, not markup
    assert body.strip() and "\n\n\n" not in result.stdout
    for passage in article["with"]:
        assert " ".join(passage.split()) in " ".join(body.split())
    # the same text as the articles/...txt the crawl archived, and the default form
    assert result.stdout.encode("utf-8") in stored_texts(crawled)
    assert cli(crawled, "get", article["url"]).stdout == result.stdout
