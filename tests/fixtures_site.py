"""Fixtures for the sites crawls run against (a pytest plugin, loaded by conftest.py).

news_site           session: the curated test news site (tests/newssite.py, pages of tests/data) and its off-site twin
news_sources_file   a sources.toml for news_site in the test's tmp_path (source "testnews")
make_news_site      factory: make_news_site(n_articles=N) starts a generated site, stopped at teardown
demo_site           session: the bundled demo site (flows/demo_site.py) that `newsarchive demo` crawls
"""

from __future__ import annotations

import pytest

from newssite import NewsSite, start_news_site


@pytest.fixture(scope="session")
def news_site():
    site = start_news_site()
    yield site
    site.stop()


@pytest.fixture
def news_sources_file(news_site: NewsSite, tmp_path):
    return news_site.write_sources(tmp_path)


@pytest.fixture
def make_news_site():
    started: list[NewsSite] = []

    def make(n_articles: int = 500) -> NewsSite:
        site = start_news_site(n_articles=n_articles)
        started.append(site)
        return site

    yield make
    for site in started:
        site.stop()


@pytest.fixture(scope="session")
def demo_site():
    from flows.demo_site import start_demo_site

    server = start_demo_site()
    yield server
    server.stop()
