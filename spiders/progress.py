"""`CrawlReport`: the crawl's progress as JSON lines on stdout (`--progress`).

One object per archived page (`{"event": "page", "url", "status", "bytes",
"article"}`) and per extracted article (`{"event": "article", "url", "title"}`),
for the process that started the crawl to draw its live display from.
"""

from __future__ import annotations

import json
import sys

from scrapy import signals

from spiders.signals import page_captured


class CrawlReport:
    """Progress events: JSON lines on stdout, one per archived page and per extracted article.

    Errors are counted where they are understood: fetch failures and HTTP
    statuses by the spider (spiders.news), extraction by the pipeline.
    """

    def __init__(self, crawler, progress: bool):
        self.crawler = crawler
        self.progress = progress

    @classmethod
    def from_crawler(cls, crawler):
        ext = cls(crawler, crawler.settings.getbool("NEWSARCHIVE_PROGRESS"))
        crawler.signals.connect(ext.page_captured, signal=page_captured)
        crawler.signals.connect(ext.item_scraped, signal=signals.item_scraped)
        return ext

    def emit(self, event: dict) -> None:
        if self.progress:
            sys.stdout.write(json.dumps(event, ensure_ascii=False) + "\n")
            sys.stdout.flush()

    def page_captured(self, request, response, capture):
        self.emit({"event": "page", "url": request.url, "status": response.status,
                   "bytes": len(response.body), "article": bool(request.meta.get("article"))})

    def item_scraped(self, item, response, spider):
        if isinstance(item, dict) and item.get("kind") == "article" and not item.get("error"):
            self.emit({"event": "article", "url": item.get("url"), "title": item.get("title")})
