"""Every request passes the scope gate, retried and redirected ones too: a page that fails once and
then redirects (302 or meta refresh) off-site or to a local file gets nothing fetched; redirect loops
and chains past the limit end, counted."""

from siteserver import Route

from fixtures_hostile import check_archive
from hostile_site import HTML, article_html, page


def once_then(first: Route, then: Route):
    """A route that answers `first` to its first request and `then` to every later one."""
    return lambda n: first if n == 1 else then


UNAVAILABLE = Route(b"<h1>try again</h1>", status=503, headers=HTML)


def redirect(location: str, status: int = 302) -> Route:
    return Route(b"", status=status, headers=[("Location", location)])


def refresh(url: str) -> Route:
    return Route(f'<html><head><meta http-equiv="refresh" content="0;url={url}"></head><body>moved</body></html>'
                 .encode(), headers=HTML)


def test_retried_pages_that_redirect_off_site_or_to_files_fetch_nothing(hostile_site, hostile_crawl):
    site = hostile_site
    bait, secret = site.bait, site.canary_file
    good = site.articles("", 2)
    site.add("/news/flaky-good", once_then(UNAVAILABLE, Route(article_html("Back after a 503"), headers=HTML)))
    site.good.append(site.url("/news/flaky-good"))
    traps = {
        "/news/flaky-redirect": once_then(UNAVAILABLE, redirect(bait.url("/stolen"))),
        "/news/flaky-refresh": once_then(UNAVAILABLE, refresh(bait.url("/refreshed"))),
        "/news/flaky-file": once_then(UNAVAILABLE, redirect(f"file://{secret}")),
        "/news/refresh-file": refresh(f"file://127.0.0.1{secret}"),
        "/news/redirect-www": redirect(site.url("/x").replace("127.0.0.1", "www.127.0.0.1")),
        "/news/flaky-denied": once_then(UNAVAILABLE, redirect("/video/1")),
    }
    for path, route in traps.items():
        site.add(path, route)
    site.add("/video/1", Route(article_html("denied"), headers=HTML))
    site.add("/", page("Home", *good, "/news/flaky-good", *traps))
    run = hostile_crawl(site, site.sources_toml(deny=["/video/"]))
    check_archive(run, site)
    assert site.hits["/news/flaky-good"] == 2  # a retry of the same URL is still the same page
    assert "/video/1" not in site.hits  # deny holds for redirects after a retry, too
    # the off-site redirect, the off-site refresh and www.127.0.0.1 (a name, not the address)
    assert run.errors.get("off-scope") == 3, run.errors
    assert run.errors.get("bad-scheme") == 2, run.errors  # redirect and refresh to file:
    messages = [s["message"] for s in run.samples("off-scope")]
    assert any("127.0.0.2 is not one of the source's hosts" in m for m in messages), messages
    assert any("www.127.0.0.1 is not one of the source's hosts" in m for m in messages), messages


def test_redirect_loops_and_chains_past_the_limit_end_counted(hostile_site, hostile_crawl):
    site = hostile_site
    site.articles("", 2)
    site.add("/news/loop-a", redirect("/news/loop-b"))
    site.add("/news/loop-b", redirect("/news/loop-a"))
    site.add("/news/self", redirect("/news/self", 301))
    site.add("/news/flaky-loop", once_then(UNAVAILABLE, redirect("/news/flaky-loop2")))
    site.add("/news/flaky-loop2", redirect("/news/flaky-loop"))
    for i in range(40):
        site.add(f"/news/chain/{i}", redirect(f"/news/chain/{i + 1}", 307))
    site.add("/news/refresh-loop", refresh("/news/refresh-loop2"))
    site.add("/news/refresh-loop2", refresh("/news/refresh-loop"))
    site.add("/", page("Home", *[u.removeprefix(site.url("")) for u in site.good], "/news/loop-a", "/news/self",
                       "/news/flaky-loop", "/news/chain/0", "/news/refresh-loop"))
    run = hostile_crawl(site, site.sources_toml())
    check_archive(run, site)
    assert run.errors.get("redirect-loop") == 4, run.errors  # loop-a, self, flaky-loop, refresh-loop
    assert run.errors.get("redirect-limit") == 1, run.errors
    assert site.hits["/news/chain/20"] == 1 and "/news/chain/21" not in site.hits  # REDIRECT_MAX_TIMES = 20
    assert site.hits["/news/self"] == 1 and site.hits["/news/loop-a"] == 1
    limit = run.samples("redirect-limit")[0]
    assert limit["url"].endswith("/news/chain/20") and "more than 20 redirects" in limit["message"], limit
    loop = {s["url"]: s["message"] for s in run.samples("redirect-loop")}
    assert "lead back to" in loop[site.url("/news/loop-a")], loop
