"""Commands that crawl and schedule: crawl, sources, upload, deploy, worker, demo."""

from __future__ import annotations

import json
from pathlib import Path

import click

from flows.cli.options import archive_option, command, debug_enabled, debug_option, sources_option


@command(short_help="crawl sources into the archive", epilog="""examples:
  newsarchive crawl example
  newsarchive crawl example other --max-pages 20
  newsarchive crawl --all --sources sites.toml --archive s3://bucket/news
  newsarchive crawl example --no-prefect        same pipeline, without Prefect""")
@click.argument("names", nargs=-1, metavar="[SOURCE]...")
@click.option("--all", "all_sources", is_flag=True, help="crawl every source in the sources file")
@sources_option
@archive_option
@click.option("--max-pages", type=click.IntRange(min=1), metavar="N", default=None,
              help="stop each source after N pages (default: the source's max_pages)")
@click.option("--no-prefect", is_flag=True, help="run the pipeline directly, without Prefect (no run history)")
@debug_option
def crawl(names, all_sources, sources, archive, max_pages, no_prefect):
    """Crawl one or more sources (or all) into the archive.

    Runs the Prefect flow crawl-source locally, so manual crawls appear in
    Prefect's run history: the server at PREFECT_API_URL, or with none set a
    temporary one this command starts (~10 s; its log is
    PREFECT_HOME/temporary-server.log). Shows live progress on stderr and a
    summary table at the end; exits 1 if a crawl failed.
    """
    from flows import display, manual
    from spiders.sources import load_sources, pick_sources

    path = Path(sources).resolve()
    chosen = pick_sources(load_sources(path), names, all_=all_sources, where=path)
    location = manual.crawl_archive(archive)
    summaries = manual.crawl_sources(chosen, path, location, max_pages, use_prefect=not no_prefect,
                                     debug=debug_enabled())
    return display.report_crawls(summaries, location)


@command(short_help="list the sources in a sources file", epilog="""examples:
  newsarchive sources
  newsarchive sources --sources sites.toml""")
@sources_option
@click.option("--json", "as_json", is_flag=True, help="print the sources as JSON")
@debug_option
def sources(sources, as_json):
    """Check a sources file and show its sources: hosts, how many feeds, sitemaps and
    start URLs each has, and the schedule deployments use."""
    from flows import display
    from spiders.sources import load_sources

    rows = [display.source_row(s) for s in load_sources(sources).values()]
    if as_json:
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
    else:
        display.print_sources(sources, rows)


@command(short_help="send what the spool holds to the archive", epilog="""examples:
  newsarchive upload
  newsarchive upload --archive s3://bucket/news""")
@archive_option
@debug_option
def upload(archive):
    """Upload every finished file in the local spool to the archive, verify it, and
    only then remove it from the spool (a crawl does this itself; use this after a
    failed upload). What a killed crawl left is salvaged and indexed first. The
    spool is $NEWSARCHIVE_SPOOL or the archive's own spool folder."""
    from flows import display, pipeline

    return display.report_upload(pipeline.archive_leftovers(archive), archive)


@command(short_help="create the Prefect deployments (schedules) for the sources", epilog="""examples:
  PREFECT_API_URL=http://127.0.0.1:4200/api newsarchive deploy
  newsarchive deploy --sources sites.toml --pool news""")
@sources_option
@click.option("--archive", "-a", metavar="A", envvar="NEWSARCHIVE_ARCHIVE", default=None,
              help="archive the deployments write to (default: $NEWSARCHIVE_ARCHIVE or ./archive)")
@click.option("--pool", default="newsarchive", show_default=True, help="work pool name")
@debug_option
def deploy(sources, archive, pool):
    """Register one scheduled deployment of crawl-source per source (its `schedule`)
    and a daily crawl-all in the Prefect server at PREFECT_API_URL, in a process
    work pool (created if missing), with `prefect deploy --all`; run `newsarchive
    worker` to execute them."""
    from flows import display, manual
    from flows.deploy import deploy as deploy_sources
    from spiders.sources import load_sources

    path = Path(sources).resolve()
    load_sources(path)  # a bad file is one clear line before Prefect starts
    manual.prepare_prefect_env()
    display.print_deployment(deploy_sources(sources_file=path, pool=pool, archive=archive))


@command(short_help="run a Prefect worker that executes scheduled crawls", epilog="""examples:
  newsarchive worker
  newsarchive worker --pool news --name w1 --limit 1""")
@click.option("--pool", default="newsarchive", show_default=True, help="work pool name")
@click.option("--name", default=None, help="worker name shown on its runs (default: Prefect picks one)")
@click.option("--limit", type=click.IntRange(min=1), metavar="N", default=None,
              help="at most N crawls at once in this worker")
@debug_option
def worker(pool, name, limit):
    """Start a process worker for the work pool; it runs the scheduled crawls.
    SIGTERM or Ctrl-C stops it and the crawls it runs (they end Crashed) within 30 s."""
    from flows import manual
    from flows.worker import run_worker

    manual.prepare_prefect_env()
    return run_worker(pool=pool, limit=limit, name=name)


@command(short_help="crawl the bundled demo news site and show what was archived", epilog="""examples:
  newsarchive demo
  newsarchive demo --archive /tmp/demo --no-prefect
Run it again: pages that did not change are archived as revisits of the first capture.""")
@click.option("--archive", "-a", metavar="A", default="./demo-archive",
              help="where to archive the demo crawl (default: ./demo-archive)")
@click.option("--port", type=click.IntRange(0, 65535), default=8731, show_default=True,
              help="port of the demo site on 127.0.0.1, its CDN on the next one (0: any free ones)")
@click.option("--no-prefect", is_flag=True, help="crawl without Prefect")
@debug_option
def demo(archive, port, no_prefect):
    """Start the bundled demo news site on 127.0.0.1, crawl it into ./demo-archive,
    print one archived article's clean text, and suggest commands to try next."""
    from flows.demo_site import run_demo

    return run_demo(archive, port=port, use_prefect=not no_prefect, debug=debug_enabled())


COMMANDS = [crawl, sources, upload, deploy, worker, demo]
