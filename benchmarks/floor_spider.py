"""Scrapy's floor: fetch a list of URLs and do nothing with what comes back.

    scrapy runspider benchmarks/floor_spider.py -a urls=FILE

FILE holds one URL a line: the pages a crawl of the benchmark's site fetches.
The settings are bare_spider.py's (robots.txt obeyed, concurrency 16, Scrapy's
default middlewares, gzip decoded); the callback reads nothing, so no link is
extracted, no request is built from a page, nothing is stored. What this
costs a fetch is what any Scrapy-based crawl of the same pages pays before it
does any work of its own; bench_pipeline.py turns it into the ceiling of
pipeline / bound on this machine's cores.
"""

from __future__ import annotations

from pathlib import Path

import scrapy

from bare_spider import BareSpider


class FloorSpider(scrapy.Spider):
    name = "floor"
    custom_settings = dict(BareSpider.custom_settings)

    def __init__(self, urls: str, **kwargs):
        super().__init__(**kwargs)
        self.url_file = Path(urls)

    async def start(self):
        with self.url_file.open(encoding="ascii") as lines:
            for line in lines:
                yield scrapy.Request(line.strip(), callback=self.parse)

    def parse(self, response):
        return None
