"""The bare Scrapy crawl of the benchmark: the same site, the same links, nothing stored.

    scrapy runspider benchmarks/bare_spider.py -a start=URL -a depth=3

What Scrapy itself costs to fetch the site and follow its links (robots.txt
obeyed, same host only, same concurrency as the pipeline): no WARC, no
extraction, no files. The pipeline's pages per second next to this says what
archiving and extraction add to fetching.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import scrapy
from scrapy.linkextractors import LinkExtractor


class BareSpider(scrapy.Spider):
    name = "bare"
    custom_settings = {
        "ROBOTSTXT_OBEY": True,
        "HTTPERROR_ALLOW_ALL": True,
        "DOWNLOAD_DELAY": 0,
        "CONCURRENT_REQUESTS": 16,
        "CONCURRENT_REQUESTS_PER_DOMAIN": 16,
        "DEPTH_LIMIT": 3,
        "TELNETCONSOLE_ENABLED": False,
        "LOG_LEVEL": "WARNING",
    }

    def __init__(self, start: str, depth: str = "3", **kwargs):
        super().__init__(**kwargs)
        self.start_urls = [start]
        self.max_depth = int(depth)
        self.netloc = urlsplit(start).netloc
        self.links = LinkExtractor(unique=True)

    def parse(self, response):
        if response.status != 200 or not isinstance(response, scrapy.http.HtmlResponse):
            return
        if response.meta.get("depth", 0) >= self.max_depth:
            return
        for link in self.links.extract_links(response):
            if urlsplit(link.url).netloc != self.netloc:
                continue  # another site's page
            yield response.follow(link.url, callback=self.parse)
