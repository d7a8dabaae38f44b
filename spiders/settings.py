"""Scrapy settings for newsarchive: components wired with explicit priorities.

`spiders.crawl` adds per-source settings (delay, concurrency, page limit,
spool, source name) on top of these at "cmdline" priority.
"""

BOT_NAME = "newsarchive"
SPIDER_MODULES = ["spiders"]
NEWSPIDER_MODULE = "spiders"

PROJECT_URL = "https://github.com/newsarchive/newsarchive"
USER_AGENT = f"newsarchive/0.1 (+{PROJECT_URL})"
ROBOTSTXT_OBEY = True

# Scrapy's stats without its per-attribute-read wrapper (3 % of the crawl process).
STATS_CLASS = "spiders.scrapy_internals.DirectStatsCollector"

# Error pages are part of the record: let 4xx/5xx reach the capture and the spider.
HTTPERROR_ALLOW_ALL = True

DOWNLOAD_HANDLERS = {
    # Scrapy's HTTP/1.1 handler, keeping the server's reason phrase for the WARC
    # status line and connecting only through the address guard (spiders.connection)
    "http": "spiders.scrapy_internals.PhraseKeepingDownloadHandler",
    "https": "spiders.scrapy_internals.PhraseKeepingDownloadHandler",
    # Only http(s) is ever fetched: no handler reads local files, FTP, S3 or data: URLs.
    "file": None,
    "ftp": None,
    "s3": None,
    "data": None,
}

DOWNLOADER_MIDDLEWARES = {
    # 40: first in the chain, the scope gate's scheme and host line again for
    # requests that never pass the scheduler (robots.txt and its redirects).
    "spiders.guard.ScopeGuardMiddleware": 40,
    # 950: closest to the downloader, so it records each response before
    # BoundedDecompressionMiddleware (590) decodes it and RedirectMiddleware (600)
    # or RobotsTxtMiddleware (100) consume it.
    "spiders.warccapture.WarcCaptureMiddleware": 950,
    # Scrapy 2.19's robots.txt middleware lets concurrent first requests through
    # unchecked (see spiders.limits.SharedRobotsTxtMiddleware); same place, fixed.
    "scrapy.downloadermiddlewares.robotstxt.RobotsTxtMiddleware": None,
    "spiders.limits.SharedRobotsTxtMiddleware": 100,
    # Decoding bounded by what it decodes to, not by DOWNLOAD_MAXSIZE; same place.
    "scrapy.downloadermiddlewares.httpcompression.HttpCompressionMiddleware": None,
    "spiders.decoding.BoundedDecompressionMiddleware": 590,
    # The redirect middlewares, counting the chains they give up on; same places.
    "scrapy.downloadermiddlewares.redirect.RedirectMiddleware": None,
    "spiders.redirects.RecordingRedirectMiddleware": 600,
    "scrapy.downloadermiddlewares.redirect.MetaRefreshMiddleware": None,
    "spiders.redirects.RecordingMetaRefreshMiddleware": 580,
    # The address guard must see the address connected to: no proxies (the
    # environment's http_proxy, with its credentials, is never used either).
    "scrapy.downloadermiddlewares.httpproxy.HttpProxyMiddleware": None,
}

SPIDER_MIDDLEWARES = {
    # 800: closer to the spider than RefererMiddleware (700), so each requisite carries its
    # page as Referer, as a browser sends it. Off with NEWSARCHIVE_REQUISITES = False.
    "spiders.requisites.RequisiteMiddleware": 800,
}
NEWSARCHIVE_REQUISITES = True  # fetch and archive pages' stylesheets, images, fonts and scripts

# robots.txt read as Google reads it: the first 500 KiB.
ROBOTSTXT_PARSER = "spiders.limits.BoundedRobotParser"

EXTENSIONS = {
    "spiders.limits.BodySizeLimit": 100,
    "spiders.progress.CrawlReport": 500,
}

ITEM_PIPELINES = {
    "spiders.pipelines.ArticlePipeline": 300,
}

# Limits (spiders/limits.py). Our own body limit keeps the first part and marks
# the WARC record truncated; Scrapy's limit (which keeps nothing, counted as
# too-large) stays far above it as a backstop.
NEWSARCHIVE_MAX_BODY_BYTES = 50 * 1024 * 1024  # bytes read from the wire
NEWSARCHIVE_MAX_DECODED_BYTES = None  # what a Content-Encoding may decode to; None: the body limit
NEWSARCHIVE_MAX_PARSE_BYTES = 5 * 1024 * 1024  # larger HTML is archived, not read (too-large)
NEWSARCHIVE_MAX_PARSE_TAGS = 50_000  # ... and so is HTML with more tags ("<" counted)
DOWNLOAD_MAXSIZE = 1024 * 1024 * 1024
DOWNLOAD_WARNSIZE = 0

NEWSARCHIVE_WARC_MAX_SIZE = 1024 * 1024 * 1024  # rotate capture and text WARCs at 1 GB
# zlib level of each record's gzip member: 6 costs ~60 % of warcio's 9 in CPU for
# 0.7 % more bytes on real pages; 1 costs ~25 % for 18 % more (benchmarks/README.md)
NEWSARCHIVE_WARC_GZIP_LEVEL = 6
NEWSARCHIVE_SPOOL = None  # set by spiders.crawl (--spool)
NEWSARCHIVE_SOURCE = None  # set by spiders.crawl (--source)
NEWSARCHIVE_OPERATOR = None  # warcinfo `operator`: a contact for your archive (env NEWSARCHIVE_OPERATOR)
NEWSARCHIVE_EXTRACT_WORKERS = None  # None: os.cpu_count()
NEWSARCHIVE_PROGRESS = False  # JSON-lines progress on stdout

# Polite defaults; spiders.crawl overrides them per source.
DOWNLOAD_DELAY = 1.0
CONCURRENT_REQUESTS_PER_DOMAIN = 4
RETRY_TIMES = 2
DOWNLOAD_TIMEOUT = 30

# Scrapy runs each response's output through CONCURRENT_ITEMS asyncio tasks
# (100 by default, created per response); our responses yield at most one item,
# and items of different responses still run concurrently. 100 tasks per page
# were a measurable share of the crawl process's CPU (benchmarks/README.md).
CONCURRENT_ITEMS = 8

TELNETCONSOLE_ENABLED = False
REMOTE_CONTROL_ENABLED = False  # a crawl opens no listening ports
LOG_LEVEL = "INFO"
FEED_EXPORT_ENCODING = "utf-8"
