"""Commands that read the archive: list, get, search, serve, pywb, reindex, reextract, export."""

from __future__ import annotations

import json
import sys

import click

from flows.cli import quick
from flows.cli.options import archive_option, command, debug_option

FORMS = quick.FORMS


def _open(location: str, url: str | None = None):
    """The archive at `location`; for a look-up of `url`, a missing archive is said in its terms."""
    return quick.open_for_lookup(location, url)


@command("list", short_help="list the captures of a URL", epilog="""examples:
  newsarchive list https://example.com/2024/05/story
  newsarchive list https://example.com/2024/05/story --json | jq '.[-1].timestamp'""")
@click.argument("url")
@archive_option
@click.option("--json", "as_json", is_flag=True,
              help="a JSON array, one object per capture: timestamp, url, status, mime, digest, warc, "
                   "offset, length, text")
@debug_option
def list_(url, archive, as_json):
    """List every capture of URL in the archive, oldest first."""
    from flows import display
    from storage.errors import NotFound

    captures = _open(archive, url).list(url)
    if not captures:
        raise NotFound(f"no captures of {url} in {archive}")
    if as_json:
        click.echo(json.dumps([c.as_json() for c in captures], indent=2, ensure_ascii=False))
    else:
        display.print_captures(url, captures)


@command(short_help="print one capture of a URL", epilog="""examples:
  newsarchive get https://example.com/2024/05/story
  newsarchive get https://example.com/2024/05/story --at 2024-05-01T12:00:00Z --as html > story.html
  newsarchive get https://example.com/2024/05/story --at 20240501120000 --as warc > story.warc.gz""")
@click.argument("url")
@click.option("--at", metavar="TIME", default=None,
              help="ISO 8601 (2024-05-02T12:00Z, 2024-05) or 4-14 digit timestamp; the nearest capture "
                   "is returned (default: latest)")
@click.option("--as", "form", type=click.Choice(FORMS), default="text", show_default=True, help="what to print")
@archive_option
@debug_option
def get(url, at, form, archive):
    """Print the capture of URL nearest to TIME (the latest without --at) to stdout.

    \b
      text  the article's plain-text form (default)
      json  its metadata, with the text
      html  the body as served, content-encoding (gzip, ...) removed
      raw   the payload exactly as stored
      warc  the WARC record itself
    """
    quick.get(url, at, form, archive)  # the same function a plain `get` runs without click


@command(short_help="full-text search over the archived articles", epilog="""examples:
  newsarchive search 'climate'
  newsarchive search '"sea level" AND (flood OR storm) -opinion' --source example --from 2024-05 --to 2024-06
  newsarchive search 'climat*' --lang en --limit 50 --json | jq '.results[].url'
  newsarchive search '气候' --count-by day
  newsarchive search 'election' --count-by week --json > election-weeks.json
query: words, "a phrase", prefix*, AND, OR, NOT (or -word), parentheses; case and accents
do not matter; Chinese, Japanese and Korean words are found inside sentences.
--from/--to are the articles' dates as published (else their first capture); a partial
date covers its period (--to 2024-05 is the end of May).""")
@click.argument("query")
@click.option("--source", "sources", multiple=True, metavar="S", help="only this source (repeatable)")
@click.option("--from", "start", metavar="D", default=None, help="articles dated at or after D")
@click.option("--to", "end", metavar="D", default=None, help="articles dated at or before D")
@click.option("--lang", metavar="L", default=None, help="only articles in this language (en, de, ru, zh, pt-br, ...)")
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True, metavar="N",
              help="at most N articles")
@click.option("--offset", type=click.IntRange(min=0), default=0, metavar="N", help="skip the first N (paging)")
@click.option("--sort", type=click.Choice(("relevance", "newest", "oldest")), default="relevance",
              show_default=True, help="best match first, or by date")
@click.option("--count-by", "count_by", type=click.Choice(("day", "week", "month")), default=None,
              help="instead of articles: how many match per day, week (its Monday) or month")
@click.option("--json", "as_json", is_flag=True, help="print JSON (results with captures and highlights, or counts)")
@archive_option
@debug_option
def search(query, sources, start, end, lang, limit, offset, sort, count_by, as_json, archive):
    """Search the clean text of every archived article: matching articles best first,
    one per article however often it was captured, with title, date as published,
    source, URL, capture time and a snippet with the matches highlighted."""
    from flows import display
    from storage.search import SearchFilters
    from storage.searchquery import compile_query

    compile_query(query)  # a bad query is one line before the archive is opened
    filters = SearchFilters.from_input(sources, start, end, lang)
    index = _open(archive).catalog.search
    if count_by:
        series = index.counts(query, filters, by=count_by)
        if as_json:
            click.echo(json.dumps({"query": query, "filters": filters.as_json(), "by": count_by,
                                   "total": sum(n for _, n in series),
                                   "counts": [{"period": p, "count": n} for p, n in series]},
                                  indent=2, ensure_ascii=False))
        else:
            display.print_counts(query, count_by, series)
        return
    found = index.search(query, filters, limit=limit, offset=offset, sort=sort)
    if as_json:
        click.echo(json.dumps(found.as_json(), indent=2, ensure_ascii=False))
    else:
        display.print_search_results(found)


@command(short_help="serve the archive over HTTP: the reading room, /api/, wayback URLs, CDX", epilog="""examples:
  newsarchive serve                              then open http://127.0.0.1:8080/
  newsarchive serve --archive s3://bucket/news --port 8081
  newsarchive serve --host 0.0.0.0 --token "$(openssl rand -hex 16)"
  curl http://127.0.0.1:8080/api/search?q=climate
  curl http://127.0.0.1:8080/web/timemap/link/https://example.com/2024/05/story
Beyond loopback, --token (or NEWSARCHIVE_SERVE_TOKEN) makes every request carry it
(Authorization: Bearer TOKEN, or a link with ?token=TOKEN once, which sets a cookie);
--public serves the archive to anyone who can reach the address. Rewritten replay
(/web/TIMESTAMP/URL) runs through pywb, started and stopped with the server:
.venv-pywb/bin/wayback of this checkout (make test installs it), --pywb or $NEWSARCHIVE_PYWB;
without it, /web/TIMESTAMP/URL serves the archived payload as is.""")
@archive_option
@click.option("--host", default="127.0.0.1", show_default=True, help="address to listen on")
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True,
              help="port (0 picks a free one)")
@click.option("--token", envvar="NEWSARCHIVE_SERVE_TOKEN", default=None, metavar="SECRET",
              help="require this token on every request (needed with a --host other than loopback)")
@click.option("--public", is_flag=True, help="with a --host other than loopback: serve to anyone, no token")
@click.option("--pywb", "pywb_program", metavar="PATH", default=None,
              help="pywb's `wayback` program, or the bin folder holding it (default: $NEWSARCHIVE_PYWB, "
                   "else .venv-pywb/bin of this checkout)")
@click.option("--no-pywb", is_flag=True, help="no rewritten replay: /web/TIMESTAMP/URL serves archived payloads")
@debug_option
def serve(archive, host, port, token, public, pywb_program, no_pywb):
    """Serve the archive read-only: the reading room at / (search, articles, their
    captures, changes and sandboxed replay, sources), the same as JSON under /api/,
    /web/TIMESTAMP/URL (the page, rewritten through pywb), /web/timemap/link/URL,
    /web/URL (TimeGate), /web/TIMESTAMPid_/URL, /web/TIMESTAMPtext_/URL and the CDX
    API at /cdx?url=URL (also /cdx/search/cdx)."""
    from flows.display import info
    from storage import pywb, server
    from storage.server.access import exposure
    from storage.server.replay import PywbReplay

    location = archive
    warning = exposure(host, token, public)  # refused beyond loopback without --token or --public
    sock = server.bind(host, port)
    url = server.url_of(sock)
    opened = _open(location)
    replay = None
    if no_pywb:
        info("rewritten replay off (--no-pywb): /web/TIMESTAMP/URL serves archived payloads as they were")
    else:
        program, where = pywb.find_wayback(pywb_program)
        if program is None:
            info(f"no rewritten replay: {where}; /web/TIMESTAMP/URL serves archived payloads as they were")
        else:
            replay = PywbReplay(opened, program, say=info)
    app = server.create_app(opened, token=token or None, replay=replay)
    if warning:
        info(warning)
    info(f"serving {location} at {url}/  (Ctrl-C to stop)")
    if token:
        info(f"  open: {url}/?token={token}")
    info(f"  reading room {url}/  API {url}/api/  replay {url}/web/URL")
    server.server_for(app, sock).run(sockets=[sock])


@command("pywb", short_help="write a pywb collection for the archive", epilog="""examples:
  newsarchive pywb --archive ./archive -o pywb-home
  cd pywb-home && .venv-pywb/bin/wayback --bind 127.0.0.1 --port 8090
  # then http://127.0.0.1:8090/web/20240501120000/https://example.com/2024/05/story
Write it again after crawls: the index holds the captures the archive had when it ran.""")
@archive_option
@click.option("-o", "--output", metavar="DIR", required=True, help="folder for config.yaml and indexes/ (created)")
@click.option("--collection", metavar="NAME", default="web", show_default=True,
              help="the collection's name: the first part of pywb's replay URLs (/NAME/TIMESTAMP/URL)")
@debug_option
def pywb_(archive, output, collection):
    """Write a pywb configuration for the archive into DIR: config.yaml (one collection
    whose archive_paths is the archive itself) and indexes/index.cdxj, every replayable
    capture in one sorted file (no conversion records: the clean text is not a capture).
    Nothing in the archive changes; run pywb's `wayback` in DIR."""
    from storage.pywb import write_collection

    written = write_collection(_open(archive), output, collection=collection)
    click.echo(f"wrote {written.config} and {written.index} ({written.captures} captures); "
               f"run pywb there: cd {written.folder} && wayback --bind 127.0.0.1 --port 8090")


@command(short_help="rebuild the catalog from the indexes in storage", epilog="""examples:
  newsarchive reindex
  newsarchive reindex --archive s3://bucket/news""")
@archive_option
@debug_option
def reindex(archive):
    """Rebuild the archive's catalog from the CDXJ indexes in storage (for example
    after copying WARCs and indexes in by hand, or if the catalog was lost).
    WARCs without an index get one first."""
    from flows.display import info

    report = _open(archive).reindex()
    info(f"rebuilt the catalog of {archive}: {report.describe()}")


@command(short_help="re-derive article text from archived WARCs (no fetching)", epilog="""examples:
  newsarchive reextract --out texts/
  newsarchive reextract --source example --out texts/
  newsarchive reextract --url https://example.com/2024/05/story --out texts/
  newsarchive reextract --warc crawl.warc.gz --out texts/
Files are named TIMESTAMP-URLHASH.txt/.json, as in the archive's articles/ folder.""")
@archive_option
@click.option("--out", "-o", "out", metavar="DIR", required=True, help="folder for the .txt and .json files")
@click.option("--source", metavar="NAME", default=None, help="only WARCs of this source")
@click.option("--url", "urls", multiple=True, metavar="URL", help="only this URL (repeatable)")
@click.option("--warc", "warcs", multiple=True, metavar="FILE", help="a local WARC file instead of the archive's "
              "(repeatable)")
@click.option("--workers", type=click.IntRange(min=1), default=None, metavar="N",
              help="extraction processes (default: all cores)")
@debug_option
def reextract(archive, out, source, urls, warcs, workers):
    """Run text extraction again over archived captures, without fetching anything:
    after an extractor upgrade, or to get text for pages the crawl did not treat as
    articles. Reads WARC files from the archive (or the files given with --warc) and
    writes .txt and .json files into --out."""
    from flows.display import report_reextract
    from spiders.reextract import reextract_archive

    report = reextract_archive(out, location=archive, source=source, urls=list(urls) or None,
                               warcs=list(warcs) or None, workers=workers)
    report_reextract(report, out)


@command(short_help="export captures as a WACZ file", epilog="""examples:
  newsarchive export --wacz --source example -o example.wacz
  newsarchive export --wacz --source example --from 2024-05 --to 2024-05 -o may.wacz
A bare date or partial timestamp in --to covers its whole period (2024-05: all of May).""")
@click.option("--wacz", is_flag=True, help="WACZ format (the only one, for now)")
@click.option("--source", metavar="NAME", required=True, help="the source to export")
@click.option("--from", "start", metavar="T", default=None, help="captures at or after T")
@click.option("--to", "end", metavar="T", default=None, help="captures at or before T")
@archive_option
@click.option("-o", "--output", metavar="FILE", required=True, help="the .wacz file to write")
@debug_option
def export(wacz, source, start, end, archive, output):
    """Write the captures of one source (optionally within a time range) as a WACZ
    package that ReplayWeb.page and pywb open."""
    from flows.display import human_bytes
    from storage.errors import BadInput
    from storage.times import parse_time, period_end
    from storage.wacz import export_wacz

    if not wacz:
        raise BadInput("choose an export format: --wacz")
    parse_time(start), period_end(end)  # a bad time is one line before anything is read
    report = export_wacz(_open(archive), source, since=start, until=end, out_path=output)
    originals = f" (and {report.originals} earlier captures its revisits repeat)" if report.originals else ""
    click.echo(f"wrote {report.path}: {report.captures} captures{originals}, {report.pages} pages, "
               f"{len(report.warcs)} WARC files, {human_bytes(report.bytes)}")


COMMANDS = [list_, get, search, serve, pywb_, reindex, reextract, export]
