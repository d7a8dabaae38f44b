"""The address guard, wired: what a host name resolves to is checked on every connection.

Host names come from a scripted DNS (tests/hostile_dns.py, Scrapy's DNS_RESOLVER
setting) that answers with loopback addresses only. The bait server listens on
127.0.0.2 at the site's own port, so a guard that checked the name once, or not
at all, would have the crawl talk to it. The guard's decisions on the forbidden
ranges themselves are tested directly in test_guard.py, never by connecting.
"""

import json

from siteserver import Route

from fixtures_hostile import check_archive
from hostile_site import HTML, article_html, page

CLOSE = [("Connection", "close")]  # every request on a new connection: a new lookup each time


def article(title: str) -> Route:
    return Route(article_html(title), headers=HTML + CLOSE)


def test_names_resolving_to_unnamed_private_addresses_are_never_connected(hostile_site, hostile_crawl, tmp_path):
    site = hostile_site
    port = site.port
    site.add("/robots.txt", Route(b"User-agent: *\nAllow: /\n", headers=CLOSE))
    site.add("/", page("Home", f"http://hostile.test:{port}/news/a", f"http://www.hostile.test:{port}/news/b",
                       f"http://127.0.0.2:{port}/news/c", f"http://[::ffff:127.0.0.2]:{port}/news/d"))
    site.add("/news/a", article("Named host, named address"))
    site.add("/news/b", article("Never fetched"))
    rebind_page = page("Rebinding", "/rebind/news/1", "/rebind/news/2")
    site.add("/rebind/", Route(rebind_page.body, headers=HTML + CLOSE))
    site.add("/rebind/news/1", article("Never fetched either"))
    site.add("/rebind/news/2", article("Never fetched either"))
    dns_log = tmp_path / "dns.log"
    dns = {
        "hostile.test": ["127.0.0.1"],
        "www.hostile.test": ["127.0.0.2"],
        # robots.txt and the first page from the site, then the bait: a rebinding DNS
        "rebind.test": ["127.0.0.1", "127.0.0.1", "127.0.0.2"],
    }
    toml = site.sources_toml(start_urls=[site.url("/"), f"http://hostile.test:{port}/", f"http://rebind.test:{port}/rebind/"])
    run = hostile_crawl(site, toml, settings={"DNS_RESOLVER": "hostile_dns.ScriptedResolver", "RETRY_TIMES": 0},
                        env={"HOSTILE_DNS": json.dumps(dns), "HOSTILE_DNS_LOG": str(dns_log)})
    check_archive(run, site, good=[f"http://hostile.test:{port}/news/a"])
    assert site.hits.get("/rebind/") == 1  # the rebinding host answered from 127.0.0.1 once ...
    assert "/news/b" not in site.hits  # ... then never again (the bait got nothing either)
    assert "/rebind/news/1" not in site.hits and "/rebind/news/2" not in site.hits
    blocked = run.samples("blocked-address")
    assert run.errors.get("blocked-address", 0) >= 3, run.errors  # www.hostile.test, rebind.test x2
    assert any(f"www.hostile.test resolves to 127.0.0.2, which is a loopback address the source does not name"
               in s["message"] for s in blocked), blocked
    # the links to 127.0.0.2 and [::ffff:127.0.0.2] are links to other sites: not followed, not failures
    assert "off-scope" not in run.errors
    asked = set(dns_log.read_text().split())
    assert asked <= set(dns), asked  # nothing else went to DNS (www.127.0.0.1-like names never do)


def test_localhost_named_by_the_source_may_be_loopback(hostile_site, hostile_crawl):
    site = hostile_site
    port = site.port
    site.add("/", page("Home", "/news/a"))
    site.add("/news/a", Route(article_html("On localhost"), headers=HTML))
    run = hostile_crawl(site, site.sources_toml(start_urls=[f"http://localhost:{port}/"]))
    check_archive(run, site, good=[f"http://localhost:{port}/news/a"])
    assert run.errors == {}, run.errors
