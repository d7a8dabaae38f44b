"""The signals newsarchive's crawl components send each other (as Scrapy keeps its own in one module).

    page_captured(request, response, capture)   a request/response pair is in the WARC
                                                (spiders.warccapture); capture is its
                                                {"warc", "offset", "length", "record_id", ...}
"""

page_captured = object()
