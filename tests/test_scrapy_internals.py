"""Scrapy's private internals that spiders/scrapy_internals.py relies on are still there.

Scrapy is pinned to 2.19.x; an upgrade that moves or renames any of these fails
here with its name, before a crawl quietly loses reason phrases or its address
guard. Each check is what the code does with the internal, not a version number.
"""

from __future__ import annotations

import inspect

import scrapy
from scrapy.core.downloader.handlers import http11
from scrapy.downloadermiddlewares.robotstxt import RobotsTxtMiddleware
from scrapy.utils import _download_handlers

from spiders import scrapy_internals


def test_scrapy_is_the_minor_version_the_internals_were_checked_against():
    assert scrapy.__version__.startswith("2.19."), (
        f"Scrapy {scrapy.__version__}: re-check every internal named in spiders/scrapy_internals.py, then the pin")


def test_the_agent_the_handler_subclasses_keeps_its_hooks_and_arguments():
    agent = http11._ScrapyAgent
    for method in ("_cb_bodyready", "_get_agent", "download_request"):
        assert callable(getattr(agent, method, None)), f"_ScrapyAgent.{method} is gone"
    params = set(inspect.signature(agent.__init__).parameters)
    wanted = {"contextFactory", "bindAddress", "pool", "maxsize", "warnsize", "fail_on_dataloss", "crawler",
              "tls_verbose_logging"}
    assert wanted <= params, f"_ScrapyAgent() lost {sorted(wanted - params)}"
    assert list(inspect.signature(agent._cb_bodyready).parameters) == ["self", "txresponse", "request"]
    assert list(inspect.signature(agent._get_agent).parameters) == ["self", "request", "timeout"]
    source = inspect.getsource(agent.__init__)
    for attribute in ("_bindAddress", "_contextFactory", "_pool"):
        assert f"self.{attribute}" in source, f"_ScrapyAgent no longer sets {attribute}"


def test_the_handler_still_holds_what_the_agent_is_built_from():
    source = "".join(inspect.getsource(cls) for cls in http11.HTTP11DownloadHandler.__mro__
                     if cls.__module__.startswith("scrapy."))
    for attribute in ("_contextFactory", "_bind_address", "_pool", "_default_maxsize", "_default_warnsize",
                      "_fail_on_dataloss", "_crawler", "_tls_verbose_logging"):
        assert f"self.{attribute}" in source, f"HTTP11DownloadHandler no longer sets {attribute}"
    assert issubclass(scrapy_internals.PhraseKeepingDownloadHandler, http11.HTTP11DownloadHandler)


def test_the_private_download_helpers_exist():
    assert callable(_download_handlers.normalize_bind_address)
    assert callable(_download_handlers.wrap_twisted_exceptions)


def test_the_robots_middleware_keeps_its_parsers_and_its_refusal_hook():
    assert "self._parsers" in inspect.getsource(RobotsTxtMiddleware.__init__), "RobotsTxtMiddleware._parsers is gone"
    assert list(inspect.signature(RobotsTxtMiddleware.process_request_2).parameters) == ["self", "rp", "request"]

    class Holder:
        _parsers = {"example.com": "parser"}

    assert scrapy_internals.parsed_robots(Holder(), "example.com") == "parser"
    assert scrapy_internals.parsed_robots(Holder(), "other.example") is None


def test_link_extraction_reads_a_tree_parsed_already_through_the_selector_cache():
    """LinkExtractor walks response.selector.root; a response's selector is its cached one."""
    import trafilatura
    from scrapy.http import HtmlResponse
    from scrapy.http.response.text import TextResponse
    from scrapy.linkextractors import LinkExtractor

    assert "_cached_selector" in TextResponse.__slots__, "TextResponse._cached_selector is gone"
    assert "self._cached_selector" in inspect.getsource(TextResponse.selector.fget)
    body = (b'<html><head><base href="/news/"></head><body><p>x</p><a href="a.html">A</a> '
            b'<a href=" b.html#top ">B</a><a href="/video/1">V</a><area href="c.html"><a href="a.html">again</a>'
            b'<a href="https://other.example/x">elsewhere</a></body></html>')
    extractor = LinkExtractor(deny=[r"/video/"], unique=True)
    url = "http://127.0.0.1:8000/2024/05/story.html"
    parsed_here = extractor.extract_links(HtmlResponse(url=url, body=body))
    on_tree = extractor.extract_links(scrapy_internals.with_tree(HtmlResponse(url=url, body=body),
                                                                 trafilatura.load_html(body.decode())))
    assert [link.url for link in on_tree] == [link.url for link in parsed_here] == [
        "http://127.0.0.1:8000/news/a.html", "http://127.0.0.1:8000/news/b.html#top",
        "http://127.0.0.1:8000/news/c.html", "https://other.example/x"]


def test_stats_collector_reads_attributes_directly_and_counts_as_scrapys():
    """The crawl's STATS_CLASS skips StatsCollector's per-read wrapper (still there in this
    Scrapy: when it goes, so can the class) and keeps every stats method's behaviour."""
    import warnings

    from scrapy.statscollectors import MemoryStatsCollector, StatsCollector
    from scrapy.utils.test import get_crawler

    from spiders import settings

    assert "__getattribute__" in vars(StatsCollector), "StatsCollector no longer wraps attribute reads"
    assert settings.STATS_CLASS == "spiders.scrapy_internals.DirectStatsCollector"
    crawler = get_crawler(settings_dict={"STATS_CLASS": settings.STATS_CLASS})
    direct, scrapys = scrapy_internals.DirectStatsCollector(crawler), MemoryStatsCollector(crawler)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no deprecation warning from either without `spider`
        for stats in (direct, scrapys):
            stats.inc_value("pages")
            stats.inc_value("pages", 2)
            stats.max_value("largest", 10)
            stats.max_value("largest", 3)
            stats.min_value("smallest", 5)
            stats.set_value("source", "demo")
    assert direct.get_stats() == scrapys.get_stats() == {"pages": 3, "largest": 10, "smallest": 5, "source": "demo"}
    assert not hasattr(direct, "_cached_inc_value")  # no wrapper was built


def test_no_other_module_touches_scrapy_privates():
    """No code outside spiders/scrapy_internals.py imports a private Scrapy name or reads one of
    the private attributes it wraps (docstrings may still name them)."""
    import ast
    from pathlib import Path

    root = Path(scrapy_internals.__file__).resolve().parent.parent
    wrapped = {"_parsers", "_cached_selector", "_bindAddress", "_contextFactory", "_default_maxsize",  # (_pool, _crawler: too common)
               "_fail_on_dataloss", "_tls_verbose_logging", "_bind_address", "_default_warnsize"}
    offenders = []
    for path in (p for pkg in ("spiders", "flows", "storage") for p in (root / pkg).rglob("*.py")):
        if path.name == "scrapy_internals.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("scrapy") and (
                    "._" in f".{node.module}" or any(a.name.startswith("_") for a in node.names)):
                offenders.append(f"{path.relative_to(root)}: from {node.module} import ...")
            elif isinstance(node, ast.Attribute) and node.attr in wrapped:
                offenders.append(f"{path.relative_to(root)}:{node.lineno}: .{node.attr}")
    assert offenders == []
