"""Commands that read the archive: list, get, serve, pywb, reindex, reextract, export."""

from __future__ import annotations

import json
import sys

import click

from flows.cli.main import archive_option, command, debug_option

FORMS = ("text", "json", "html", "raw", "warc")


def _open(location: str, url: str | None = None):
    """The archive at `location`; for a look-up of `url`, a missing archive is said in its terms."""
    from storage.archive import open_archive
    from storage.errors import NotFound

    try:
        return open_archive(location)
    except NotFound as exc:
        if url is None:
            raise
        raise NotFound(f"no captures of {url}: {exc}") from None


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
    from storage.times import parse_time

    parse_time(at)  # a bad time is one line before any look-up
    data = _open(archive, url).get(url, at, as_=form)
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()


@command(short_help="serve the archive over HTTP (replay, Memento, CDX API)", epilog="""examples:
  newsarchive serve
  newsarchive serve --archive s3://bucket/news --host 0.0.0.0 --port 8080
  newsarchive serve --pywb /opt/pywb/bin/wayback
  curl http://127.0.0.1:8080/web/timemap/link/https://example.com/2024/05/story
Rewritten replay (/web/TIMESTAMP/URL) runs through pywb, started and stopped with the
server: .venv-pywb/bin/wayback of this checkout (make test installs it), --pywb or
$NEWSARCHIVE_PYWB. Without it, /web/TIMESTAMP/URL serves the archived payload as is.""")
@archive_option
@click.option("--host", default="127.0.0.1", show_default=True, help="address to listen on")
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True,
              help="port (0 picks a free one)")
@click.option("--pywb", "pywb_program", metavar="PATH", default=None,
              help="pywb's `wayback` program, or the bin folder holding it (default: $NEWSARCHIVE_PYWB, "
                   "else .venv-pywb/bin of this checkout)")
@click.option("--no-pywb", is_flag=True, help="no rewritten replay: /web/TIMESTAMP/URL serves archived payloads")
@debug_option
def serve(archive, host, port, pywb_program, no_pywb):
    """Serve the archive read-only: /web/TIMESTAMP/URL (the page, rewritten through pywb),
    /web/timemap/link/URL, /web/URL (TimeGate), /web/TIMESTAMPid_/URL, /web/TIMESTAMPtext_/URL
    and the CDX API at /cdx?url=URL (also /cdx/search/cdx)."""
    from flows.display import info
    from storage import pywb, server
    from storage.server.replay import PywbReplay

    location = archive
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
    app = server.create_app(opened, replay=replay)
    info(f"serving {location} at {url}/web/  (Ctrl-C to stop)")
    info(f"  try: curl {url}/web/timemap/link/URL")
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


COMMANDS = [list_, get, serve, pywb_, reindex, reextract, export]
