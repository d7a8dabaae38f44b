"""Fixtures for the capture tests: a loopback site and real Scrapy crawls in a subprocess.

A crawl runs in its own process (Twisted's reactor starts once per process),
with the project's settings and a tiny spider that fetches the given URLs, so
these tests do not depend on spiders.news. Run as a script, this file is that
crawl process.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable


class NoArticle(Exception):
    """Stands in for extraction.ExtractionError in the stand-in extractor."""


@dataclass
class FakeArticle:
    text: str
    metadata: dict


def fake_extract(body: bytes, *, url, content_type=None, fetched_at=None, hints=None, capture=None):
    """A stand-in extractor with extract_article's signature (runs in the pool's workers)."""
    text = body.decode("utf-8", "replace")
    if "NOARTICLE" in text:
        raise NoArticle("no article text")
    return FakeArticle(text=f"{url}\n\n{text}\n", metadata={"url": url, "title": f"title of {url}",
                                                           "fetched_at": fetched_at, "capture": capture,
                                                           "pid": os.getpid()})


@dataclass
class CrawlResult:
    returncode: int
    spool: Path
    stats: dict
    items: list[dict]
    stderr: str

    def warcs(self, text: bool = False) -> list[Path]:
        suffix = ".text.warc.gz" if text else ".warc.gz"
        return sorted(p for p in self.spool.rglob("*.warc.gz")
                      if p.name.endswith(".text.warc.gz") == text and p.name.endswith(suffix))


def run_capture_crawl(urls: list[str], spool: Path, *, articles: list[str] = (), settings: dict | None = None,
                      timeout: float = 400) -> CrawlResult:
    """Crawl `urls` with the project settings into `spool` in a fresh process."""
    spool.mkdir(parents=True, exist_ok=True)
    out = spool.parent / (spool.name + "-out.json")
    args = {"urls": urls, "articles": list(articles), "spool": str(spool), "out": str(out),
            "settings": {"NEWSARCHIVE_EXTRACTOR": "fixtures_capture.fake_extract",
                         "NEWSARCHIVE_EXTRACT_WORKERS": 2, **(settings or {})}}
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "tests")]))
    proc = subprocess.run([PYTHON, __file__, json.dumps(args)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)
    result = json.loads(out.read_text()) if out.exists() else {"stats": {}, "items": []}
    return CrawlResult(proc.returncode, spool, result["stats"], result["items"], proc.stderr)


def gzipped(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


@pytest.fixture
def capture_crawl():
    return run_capture_crawl


def _main(argv: list[str]) -> None:
    """The crawl process: CrawlerProcess, project settings, a spider fetching a URL list."""
    import scrapy
    from scrapy.crawler import CrawlerProcess
    from scrapy.settings import Settings

    from spiders.stats import summary
    from spiders.sources import Source

    args = json.loads(argv[0])
    items: list[dict] = []

    class CaptureSpider(scrapy.Spider):
        name = "capturetest"
        # the hosts it fetches from: the address guard connects to loopback only when named
        source = Source(name="testsite", start_urls=tuple(args["urls"]))

        async def start(self):
            for url in args["urls"]:
                yield scrapy.Request(url, meta={"article": url in args["articles"]}, dont_filter=True)

        def parse(self, response):
            if response.meta.get("article"):
                yield {"kind": "article", "url": response.url, "body": response.body,
                       "content_type": response.headers.get("Content-Type", b"").decode("latin-1"),
                       "status": response.status, "hints": {}, "capture": response.meta.get("capture")}

    def keep(item, response, spider):
        items.append(item)

    settings = Settings()
    settings.setmodule("spiders.settings", priority="project")
    settings.update({"NEWSARCHIVE_SPOOL": args["spool"], "NEWSARCHIVE_SOURCE": "testsite",
                     "DOWNLOAD_DELAY": 0, "CONCURRENT_REQUESTS_PER_DOMAIN": 8, "RETRY_TIMES": 0,
                     **args["settings"]}, priority="cmdline")
    process = CrawlerProcess(settings)
    crawler = process.create_crawler(CaptureSpider)
    crawler.signals.connect(keep, signal=scrapy.signals.item_scraped)
    process.crawl(crawler)
    process.start()
    Path(args["out"]).write_text(json.dumps({"stats": summary("testsite", crawler.stats.get_stats()),
                                             "items": items}, default=str))


if __name__ == "__main__":
    _main(sys.argv[1:])
