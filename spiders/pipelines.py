"""Item pipeline: article responses -> clean text, metadata and a WARC `conversion` record.

Extraction (trafilatura) is CPU bound and not safe to run in threads, so it
runs in the crawl's process pool (spiders.pagereader.PageReader: forkserver,
one worker per core). NewsSpider reads its article pages there itself (links
and text from one parse) and hands the reading on in the item (`read`); an
item that comes with only a body is read here. Either way Scrapy awaits the
reading, so a full pool slows the crawl instead of piling up bodies in memory.
Files are written on the reactor thread, each as `.open` first and renamed, so
the spool uploader never takes a partial file.
"""

from __future__ import annotations

import json
import logging
import os
from io import BytesIO
from pathlib import Path

from scrapy.exceptions import NotConfigured

from spiders.pagereader import PageReader
from spiders.stats import add_files, record_error
from spiders.warccapture import warcinfo_fields
from spiders.warcfiles import DEFAULT_GZIP_LEVEL, DEFAULT_MAX_SIZE, RotatingWarcWriter, record_builder, warc_date_to_datetime
from storage import layout

logger = logging.getLogger(__name__)


def one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if type(exc).__name__ == "ExtractionError" else f"{type(exc).__name__}: {text}"


class ArticlePipeline:
    def __init__(self, crawler, spool: str, source: str | None, reader: PageReader, max_size: int):
        self.crawler = crawler
        self.spool = Path(spool)
        self.source = source
        self.reader = reader
        self.max_size = max_size
        self.builder = record_builder()
        self._text_writer: RotatingWarcWriter | None = None

    @classmethod
    def from_crawler(cls, crawler):
        s = crawler.settings
        if not s.get("NEWSARCHIVE_SPOOL"):
            raise NotConfigured("NEWSARCHIVE_SPOOL is not set: nowhere to write articles")
        return cls(crawler, s.get("NEWSARCHIVE_SPOOL"), s.get("NEWSARCHIVE_SOURCE"), PageReader.of(crawler),
                   s.getint("NEWSARCHIVE_WARC_MAX_SIZE", DEFAULT_MAX_SIZE))

    def _source(self) -> str:
        spider = self.crawler.spider
        return self.source or getattr(getattr(spider, "source", None), "name", None) or spider.name

    def _writer(self) -> RotatingWarcWriter:
        if self._text_writer is None:
            source = self._source()
            self._text_writer = RotatingWarcWriter(
                self.spool, source, text=True, max_size=self.max_size,
                prefix=self.crawler.settings.get("NEWSARCHIVE_WARC_PREFIX"),
                warcinfo=warcinfo_fields(self.crawler.settings, source),
                gzip_level=self.crawler.settings.getint("NEWSARCHIVE_WARC_GZIP_LEVEL", DEFAULT_GZIP_LEVEL),
                on_close=lambda key: add_files(self.crawler.stats, key))
        return self._text_writer

    async def process_item(self, item):
        if not (isinstance(item, dict) and item.get("kind") == "article"):
            return item
        url = item.get("url") or ""
        capture = item.get("capture") or {}
        read = item.get("read")
        if read is None:  # not read by the spider: read it now (text only)
            read = await self.reader.read(item.get("body") or b"", url=url, content_type=item.get("content_type"),
                                          fetched_at=capture.get("date"), hints=item.get("hints") or {},
                                          capture=capture or None)
        if read.error is not None:  # a bad page (or a dead worker) is a recorded error, not a crash
            record_error(self.crawler.stats, "extraction", url, one_line(read.error))
            return {"kind": "article", "url": url, "error": one_line(read.error), "capture": capture}
        article = read.article
        keys = self.write_article(url, capture, article)
        self.crawler.stats.inc_value("newsarchive/extracted")
        return {"kind": "article", "url": url, "title": article.metadata.get("title"),
                "capture": capture, **keys}

    def write_article(self, url: str, capture: dict, article) -> dict:
        fetched = warc_date_to_datetime(capture["date"]) if capture.get("date") else layout.utc()
        source = self._source()
        txt_key = layout.article_key(source, fetched, url, "txt")
        json_key = layout.article_key(source, fetched, url, "json")
        text = article.text.encode("utf-8")
        self._write_file(txt_key, text)
        self._write_file(json_key, (json.dumps(article.metadata, ensure_ascii=False, indent=2) + "\n").encode("utf-8"))

        headers = {"Content-Type": "text/plain; charset=utf-8"}
        if capture.get("date"):
            headers["WARC-Date"] = capture["date"]
        if capture.get("record_id"):
            headers["WARC-Refers-To"] = capture["record_id"]
        record = self.builder.create_warc_record(url, "conversion", payload=BytesIO(text), length=len(text),
                                                 warc_headers_dict=headers)
        written = self._writer().write_group([record])[0]
        add_files(self.crawler.stats, txt_key, json_key)
        return {"text_key": txt_key, "json_key": json_key,
                "conversion": {"warc": written.key, "offset": written.offset, "length": written.length,
                               "record_id": written.record_id}}

    def _write_file(self, key: str, data: bytes) -> None:
        path = self.spool / key
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + layout.OPEN_SUFFIX)
        partial.write_bytes(data)
        os.replace(partial, path)

    async def close_spider(self):
        self.reader.close()
        if self._text_writer is not None:
            self._text_writer.close()
