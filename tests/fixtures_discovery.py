"""Fixtures for the discovery tests: run a real NewsSpider crawl in a subprocess.

The Twisted reactor cannot restart within one process, so each crawl runs in a
fresh interpreter (this file, run as a script) and reports items, stats and
error samples as JSON. The settings are the few the spider relies on
(ROBOTSTXT_OBEY, HTTPERROR_ALLOW_ALL); capture and extraction are not involved.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@dataclasses.dataclass
class CrawlResult:
    items: list[dict]
    stats: dict
    error_samples: list[dict]
    settings: dict  # the crawl's effective politeness settings
    log: str

    def item(self, url: str) -> dict:
        matches = [i for i in self.items if i["url"] == url]
        assert matches, f"no item for {url}; items: {[i['url'] for i in self.items]}"
        return matches[0]

    @property
    def urls(self) -> set[str]:
        return {i["url"] for i in self.items}

    def errors(self) -> dict[str, int]:
        prefix = "newsarchive/errors/"
        return {k[len(prefix):]: v for k, v in self.stats.items() if k.startswith(prefix)}


def run_crawl(source, tmp_path: Path, settings: dict | None = None) -> CrawlResult:
    """Crawl `source` (a spiders.sources.Source) in a subprocess; return what it yielded."""
    spec = tmp_path / "crawl-spec.json"
    out = tmp_path / "crawl-out.json"
    spec.write_text(json.dumps({"source": dataclasses.asdict(source), "settings": settings or {}, "out": str(out)}))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, __file__, str(spec)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=400)
    assert proc.returncode == 0, proc.stderr[-4000:]
    data = json.loads(out.read_text())
    return CrawlResult(data["items"], data["stats"], data["error_samples"], data["settings"], proc.stderr)


@pytest.fixture(scope="session")
def crawl_runner():
    """run_crawl itself, for module-scoped fixtures that crawl once for many tests."""
    return run_crawl


@pytest.fixture
def crawl(tmp_path):
    """crawl(source, settings=None) -> CrawlResult, each crawl in its own process."""
    counter = iter(range(1000))

    def _crawl(source, settings=None):
        d = tmp_path / f"crawl{next(counter)}"
        d.mkdir()
        return run_crawl(source, d, settings)

    return _crawl


def _main(spec_path: str) -> None:
    from scrapy import signals
    from scrapy.crawler import CrawlerProcess

    from spiders.news import NewsSpider
    from spiders.sources import Source

    spec = json.loads(Path(spec_path).read_text())
    source = Source(**{k: tuple(v) if isinstance(v, list) else v for k, v in spec["source"].items()})
    settings = {
        "ROBOTSTXT_OBEY": True,
        "HTTPERROR_ALLOW_ALL": True,
        "TELNETCONSOLE_ENABLED": False,
        "LOG_LEVEL": "DEBUG",
        "DOWNLOAD_TIMEOUT": 120,  # loopback answers at once; a busy machine may still be slow
        **spec["settings"],
    }
    items: list[dict] = []

    def on_item(item, response, spider):
        items.append({**item, "body": item["body"].decode("utf-8", "replace")})

    process = CrawlerProcess(settings)
    crawler = process.create_crawler(NewsSpider)
    crawler.signals.connect(on_item, signal=signals.item_scraped)
    process.crawl(crawler, source=source)
    process.start()
    Path(spec["out"]).write_text(json.dumps({
        "items": items,
        "stats": {k: v for k, v in crawler.stats.get_stats().items() if isinstance(v, (int, float, str))},
        "error_samples": crawler.spider.error_samples,
        "settings": {k: crawler.settings.get(k) for k in ("DOWNLOAD_DELAY", "CONCURRENT_REQUESTS_PER_DOMAIN")},
    }, default=str))


if __name__ == "__main__":
    _main(sys.argv[1])
