"""Servers that stall, drip, reset or lie: each fetch ends (DOWNLOAD_TIMEOUT), is counted under
a kind with a message in words, and the crawl goes on to archive the good pages."""

import socket

from fixtures_hostile import check_archive
from hostile_site import page


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_stalls_drips_resets_and_lies_end_counted_in_words(hostile_site, hostile_crawl):
    site = hostile_site
    traps = site.trap_server()
    good = site.articles("", 3)
    bad = {name: traps.url(f"/{name}") for name in ("stall", "drip", "reset", "close", "short", "liar", "reset-mid")}
    refused = f"http://127.0.0.1:{closed_port()}/news/nobody-home"
    site.add("/", page("Home", *good, *bad.values(), refused))
    run = hostile_crawl(site, site.sources_toml(), settings={"DOWNLOAD_TIMEOUT": 3, "RETRY_TIMES": 1})
    check_archive(run, site)
    kinds = {s["url"]: (s["kind"], s["message"]) for s in run.stats["error_samples"]}
    assert kinds[bad["stall"]][0] == "timeout" and kinds[bad["drip"]][0] == "timeout", kinds
    assert "no complete answer in time" in kinds[bad["stall"]][1]
    assert kinds[bad["reset"]] == ("connection", "the connection was reset before the server answered"), kinds
    assert kinds[bad["close"]] == ("connection", "the server closed the connection without answering"), kinds
    # a body cut short, by a close or a reset: fewer bytes than announced
    for name in ("short", "reset-mid"):
        assert kinds[bad[name]] == ("data-loss", "the connection closed before the whole body (as announced) "
                                                 "arrived"), kinds
    assert kinds[bad["liar"]] == ("too-large", "the body is larger than DOWNLOAD_MAXSIZE: not downloaded"), kinds
    assert kinds[refused] == ("connection", "connection refused"), kinds
    assert run.errors == {"timeout": 2, "connection": 3, "data-loss": 2, "too-large": 1}, run.errors
    assert not [m for _, m in kinds.values() if "<" in m or "Failure" in m]  # no Python reprs
