"""Third-party clients against `newsarchive serve`: EDGI's `wayback` (the Wayback
Machine's Python client: CDX search and mementos) and memento_client (RFC 7089
TimeGate navigation). Neither was written for our server; both are pointed at it.

`wayback` 0.5 has no option for the server's address: its module constants are
patched (hence its pin below 0.6). It drops loopback URLs as malformed unless
told not to (skip_malformed_results=False). memento_client HEADs the original
URL first unless given its response: it is given one, so only our server is asked.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest

from fixtures_index import OLD, STORY, build_spool, publish
from serving import serving
from storage.archive import open_archive
from storage.server import create_app


@pytest.fixture(scope="module")
def served(replay_archive, serve_archive, pywb_bin):
    """serve as a user runs it, rewritten replay through pywb included."""
    return serve_archive(replay_archive.path, pywb=pywb_bin)


def wayback_client(base: str, monkeypatch):
    import wayback
    import wayback._client
    import wayback._utils

    monkeypatch.setattr(wayback._client, "CDX_SEARCH_URL", base + "/cdx/search/cdx")
    monkeypatch.setattr(wayback._utils, "MEMENTO_URL_PATTERN", re.compile(r"^" + re.escape(base) + r"/web/(\d+)(\w\w_)?/(.+)$"))
    monkeypatch.setattr(wayback._utils, "MEMENTO_URL_TEMPLATE", base + "/web/{timestamp}{mode}/{url}")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    session = wayback.WaybackSession(search_calls_per_second=0, memento_calls_per_second=0, retries=0)
    return wayback.WaybackClient(session)


def utc(ts: str) -> datetime:
    return datetime.strptime(ts, "%Y%m%d%H%M%S").replace(tzinfo=timezone.utc)


def test_wayback_search_reads_our_cdx_server(replay_archive, served, monkeypatch):
    client = wayback_client(served.base, monkeypatch)
    archive = open_archive(str(replay_archive.path))
    url = replay_archive.article

    records = list(client.search(url, skip_malformed_results=False))
    assert [r.timestamp for r in records] == [utc(replay_archive.first), utc(replay_archive.second)]
    assert all(r.original == url and r.statuscode == 200 for r in records)
    assert [r.mimetype for r in records] == ["text/html", "text/html"]  # the revisit resolved (resolveRevisits)
    assert records[0].digest == records[1].digest == archive.list(url)[0].digest.removeprefix("sha1:")

    # a prefix search, three rows a request: it pages through our resume keys to the end
    prefix = f"{replay_archive.base}/2024/"
    paged = list(client.search(prefix, match_type="prefix", limit=3, skip_malformed_results=False))
    expected = sorted((c.urlkey, c.timestamp) for c in archive.captures(prefix, "prefix"))
    assert len(expected) == 12 and sorted((r.urlkey, r.timestamp.strftime("%Y%m%d%H%M%S")) for r in paged) == expected

    # from/to, filters, collapsing
    only_second = list(client.search(url, from_date=utc(replay_archive.second), skip_malformed_results=False))
    assert [r.timestamp for r in only_second] == [utc(replay_archive.second)]
    css = list(client.search(replay_archive.base, match_type="host", filter_field="mimetype:text/css",
                             skip_malformed_results=False))
    assert [r.original for r in css] == [f"{replay_archive.base}/static/site.css"]
    unique = list(client.search(url, collapse="digest", skip_malformed_results=False))
    assert len(unique) == 1  # the revisit repeats the original's digest


def test_wayback_get_memento_reads_our_mementos(replay_archive, served, monkeypatch):
    import wayback

    client = wayback_client(served.base, monkeypatch)
    archive = open_archive(str(replay_archive.path))
    url = replay_archive.article
    payload = archive.payload(archive.list(url)[0])

    for ts in (replay_archive.first, replay_archive.second):
        memento = client.get_memento(url, utc(ts))
        assert memento.ok and memento.status_code == 200
        assert memento.url == url and memento.timestamp == utc(ts) and memento.mode == "id_"
        assert memento.content == payload
        assert memento.headers["Content-Type"] == "text/html; charset=utf-8"
        assert memento.headers["Cache-Control"] == "max-age=60"  # the archived header, from X-Archive-Orig-*
        assert "first memento" in memento.links and "last memento" in memento.links
    assert memento.links["prev memento"]["url"] == f"{served.base}/web/{replay_archive.first}id_/{url}"

    # a time between captures: exact=True refuses, exact=False follows to the nearest one
    between = utc(replay_archive.second) - timedelta(seconds=1)
    assert between > utc(replay_archive.first)
    with pytest.raises(wayback.exceptions.MementoPlaybackError):
        client.get_memento(url, between)
    near = client.get_memento(url, between, exact=False)
    assert near.timestamp in (utc(replay_archive.first), utc(replay_archive.second))
    with pytest.raises(wayback.exceptions.NoMementoError):
        client.get_memento(f"{replay_archive.base}/never-archived.html", utc(replay_archive.first))


def test_wayback_follows_an_archived_redirect(tmp_path, monkeypatch):
    """An archived 301 is a memento whose Location leads to the target's memento nearby."""
    built = build_spool(tmp_path / "spool")
    (tmp_path / "archive").mkdir()
    publish(built, str(tmp_path / "archive"))
    with serving(create_app(open_archive(str(tmp_path / "archive")))) as base:
        client = wayback_client(base, monkeypatch)
        old = built.days[2][1]
        memento = client.get_memento(OLD, old.at, exact_redirects=False)
        assert memento.url == STORY and memento.status_code == 200
        assert [m.url for m in memento.history] == [OLD] and memento.history[0].status_code == 301
        assert memento.content == built.days[2][0].html  # (requests undoes its gzip encoding)


class NoLinks:
    """The original URL's response as memento_client reads it: no Link header, so the
    URL is the original. Given, so the client does not HEAD the live URL."""

    headers: dict = {}


def test_memento_client_finds_first_last_prev_next_and_closest(replay_archive, served):
    from memento_client import MementoClient

    base, url = served.base, replay_archive.article
    first, second = utc(replay_archive.first), utc(replay_archive.second)
    client = MementoClient(timegate_uri=f"{base}/web/", check_native_timegate=False)
    naive = lambda when: when.replace(tzinfo=None)  # noqa: E731 - the client speaks naive UTC

    def info(when):
        found = client.get_memento_info(url, naive(when), req_uri_response=NoLinks())
        return {rel: (m["uri"][0], m["datetime"]) for rel, m in found["mementos"].items()}

    early = info(first - timedelta(days=1))
    assert early["closest"] == (f"{base}/web/{replay_archive.first}/{url}", naive(first))
    assert early["first"][1] == naive(first) and early["next"][1] == early["last"][1] == naive(second)
    assert "prev" not in early

    late = info(second + timedelta(days=365))
    assert late["closest"] == (f"{base}/web/{replay_archive.second}/{url}", naive(second))
    assert late["last"][1] == naive(second) and late["prev"][1] == late["first"][1] == naive(first)
    assert "next" not in late
