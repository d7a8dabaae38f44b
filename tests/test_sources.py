"""sources.toml: the documented schema loads; every kind of mistake is one clear line."""

import re
from pathlib import Path

import pytest

from spiders.sources import Source, SourcesError, default_sources_path, load_sources

ROOT = Path(__file__).resolve().parent.parent

FULL = """
[[source]]
name = "example"
start_urls = ["https://www.example.com/"]
feeds = ["https://example.com/rss.xml"]
sitemaps = ["https://news.example.org/sitemap.xml"]
allow = ['/\\d{4}/\\d{2}/']
deny = ['/video/']
depth = 3
max_pages = 50
delay = 2
concurrency = 2
recheck = 6
schedule = "*/15 6-22 * * mon-fri"
tags = ["test"]

[[source]]
name = "feed-only-2"
feeds = ["http://127.0.0.1:8080/feed"]
"""


def write(tmp_path, text: str) -> Path:
    path = tmp_path / "sources.toml"
    path.write_text(text)
    return path


def test_the_documented_schema_loads(tmp_path):
    sources = load_sources(write(tmp_path, FULL))
    assert list(sources) == ["example", "feed-only-2"]
    ex = sources["example"]
    assert ex == Source(
        name="example", start_urls=("https://www.example.com/",), feeds=("https://example.com/rss.xml",),
        sitemaps=("https://news.example.org/sitemap.xml",), allow=(r"/\d{4}/\d{2}/",), deny=("/video/",),
        depth=3, max_pages=50, delay=2.0, concurrency=2, recheck=6.0, schedule="*/15 6-22 * * mon-fri", tags=("test",))
    assert ex.hosts == {"example.com", "news.example.org"}  # www.example.com is example.com


def test_defaults_apply_when_only_name_and_a_url_are_given(tmp_path):
    src = load_sources(write(tmp_path, FULL))["feed-only-2"]
    assert (src.depth, src.max_pages, src.delay, src.concurrency, src.schedule, src.tags) == (2, 1000, 1.0, 4, None, ())
    assert src.recheck == 24  # hours before an archived article is fetched again
    assert src.hosts == {"127.0.0.1"}


BAD = [
    ('name = "x"\nstart_urls = ["https://a.example/"]\nfeedz = []', "unknown key 'feedz'"),
    ('name = "Bad Name"\nstart_urls = ["https://a.example/"]', "must match [a-z0-9-]+"),
    ('start_urls = ["https://a.example/"]', "missing name"),
    ('name = "x"', "needs at least one of start_urls, feeds, sitemaps"),
    ('name = "x"\nstart_urls = []', "needs at least one of start_urls, feeds, sitemaps"),
    ('name = "x"\nfeeds = ["ftp://a.example/rss"]', "is not an http(s) URL"),
    ('name = "x"\nfeeds = ["https:///rss"]', "is not an http(s) URL"),
    ('name = "x"\nstart_urls = ["http://a.example:http/"]', "bad port"),
    ('name = "x"\nstart_urls = "https://a.example/"', "start_urls must be a list of URLs"),
    ('name = "x"\nstart_urls = ["https://a.example/"]\nallow = ["/(unclosed"]', "allow regex '/(unclosed' is invalid"),
    ('name = "x"\nstart_urls = ["https://a.example/"]\ndeny = ["*video"]', "deny regex '*video' is invalid"),
    ('name = "x"\nstart_urls = ["https://a.example/"]\nschedule = "every hour"', "not a cron expression"),
    ('name = "x"\nstart_urls = ["https://a.example/"]\nschedule = "61 * * * *"', "bad minute field '61'"),
    ('name = "x"\nstart_urls = ["https://a.example/"]\nschedule = "0 * * 13 *"', "bad month field '13'"),
    ('name = "x"\nstart_urls = ["https://a.example/"]\nschedule = "0 * * * funday"', "bad day of week field"),
    ('name = "x"\nstart_urls = ["https://a.example/"]\nmax_pages = 0', "max_pages must be an integer >= 1"),
    ('name = "x"\nstart_urls = ["https://a.example/"]\ndepth = true', "depth must be an integer >= 0"),
    ('name = "x"\nstart_urls = ["https://a.example/"]\ndelay = -1', "delay must be a number of seconds >= 0"),
    ('name = "x"\nstart_urls = ["https://a.example/"]\nrecheck = -1', "recheck must be a number of hours >= 0"),
    ('name = "x"\nstart_urls = ["https://a.example/"]\nrecheck = "daily"', "recheck must be a number of hours >= 0"),
]


@pytest.mark.parametrize("table, message", BAD, ids=[m for _, m in BAD])
def test_a_bad_source_is_one_line_naming_file_and_source(tmp_path, table, message):
    good = '[[source]]\nname = "fine"\nfeeds = ["https://ok.example/rss"]\n'
    path = write(tmp_path, good + "\n[[source]]\n" + table + "\n")
    with pytest.raises(SourcesError) as e:
        load_sources(path)
    text = str(e.value)
    assert "\n" not in text
    named = re.search(r'name = "([^"]+)"', table)
    which = f"source '{named.group(1)}'" if named else "source #2"  # the second table, unnamed
    assert text.startswith(f"{path}: {which}"), text
    assert message in text


def test_duplicate_names_are_rejected(tmp_path):
    path = write(tmp_path, '[[source]]\nname = "a"\nfeeds = ["https://a.example/f"]\n' * 2)
    with pytest.raises(SourcesError, match=r"source 'a': duplicate name$"):
        load_sources(path)


@pytest.mark.parametrize("text, message", [
    ("[[source]\nname = 'x'", "invalid TOML"),
    ("sources = []", "unknown top-level key 'sources'"),
    ("source = 'x'", "must be [[source]] tables"),
])
def test_a_bad_file_is_one_line(tmp_path, text, message):
    with pytest.raises(SourcesError) as e:
        load_sources(write(tmp_path, text))
    assert "\n" not in str(e.value) and message in str(e.value) and "sources.toml" in str(e.value)


def test_a_missing_file_is_one_line(tmp_path):
    with pytest.raises(SourcesError, match="no such sources file"):
        load_sources(tmp_path / "nope.toml")


def test_cron_forms_that_deployments_use_are_accepted(tmp_path):
    for expr in ("0 * * * *", "*/5 * * * *", "0 6,12,18 * * *", "30 2 1-7 jan-mar sun", "@daily", "0 0 * * 7"):
        table = f'[[source]]\nname = "c"\nfeeds = ["https://a.example/f"]\nschedule = "{expr}"\n'
        assert load_sources(write(tmp_path, table))["c"].schedule == expr


def test_default_path_honours_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("NEWSARCHIVE_SOURCES", raising=False)
    assert default_sources_path() == Path("sources.toml")
    monkeypatch.setenv("NEWSARCHIVE_SOURCES", str(tmp_path / "mine.toml"))
    assert default_sources_path() == tmp_path / "mine.toml"


def test_the_example_sources_file_is_valid():
    sources = load_sources(ROOT / "sources.toml")
    assert len(sources) >= 2
    for src in sources.values():
        assert src.feeds or src.sitemaps  # the example set shows discovery, not just crawling
