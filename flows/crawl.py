"""Prefect flows: `crawl-source` (one source) and `crawl-all` (many sources).

Each task wraps one step of flows/pipeline.py, so the flow reads like the data
flow of one crawl:

    fetch    the crawl subprocess: robots.txt, feeds, sitemaps, start pages,
             every exchange into WARC; *extraction happens inside it* (the
             spider's item pipeline sends articles to a process pool), so
             there is no separate extract task
    index    a CDXJ index beside every finished WARC
    archive  upload to the archive, verified, then removed from the spool
             (retried with backoff; on failure files stay in the spool)
    catalog  the archive's catalog ingests the new indexes
    summary  a markdown and a table artifact (key `crawl-SOURCE`)

A run holds the global concurrency limit `crawl-source-SOURCE` (one slot,
created on first use), so two runs of the same source never overlap, whether
started by a schedule, by hand, by `crawl-all` or by the CLI.

`crawl-all` runs each source as its own flow run, at most `parallel` at once:
as a run of the source's deployment (`crawl-source/SOURCE`, picked up by any
worker of the pool) when crawl-all itself runs from a deployment and that
deployment exists, otherwise as an in-process subflow. A source that fails
does not stop the others; the parent ends Failed and names the sources that
failed.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from contextvars import copy_context
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.concurrency.sync import concurrency
from prefect.states import Completed, Failed

from flows import pipeline
from storage import layout

SOURCE_LIMIT_PREFIX = "crawl-source-"
DEFAULT_PARALLEL = 4


def source_limit_name(source: str) -> str:
    return SOURCE_LIMIT_PREFIX + layout.safe_source(source)


def ensure_source_limit(source: str) -> str:
    """Create the one-slot global concurrency limit of a source if missing; return its name."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
    from prefect.exceptions import ObjectNotFound

    name = source_limit_name(source)
    with get_client(sync_client=True) as client:
        try:
            client.read_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            try:
                client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=1))
            except Exception:  # created meanwhile by another run
                client.read_global_concurrency_limit_by_name(name)
    return name


# --------------------------------------------------------------------------- tasks

@task(name="fetch", cache_policy=NO_CACHE, task_run_name="fetch-{source}")
def fetch(source: str, sources_file: str, spool: str, max_pages: int | None = None,
          archive: str | None = None) -> dict:
    """Crawl the source into its spool (fetch + extraction, in a subprocess), skipping
    what the archive's catalog says is archived and not due for a re-check."""
    logger = get_run_logger()

    def on_log(line: str) -> None:
        if " ERROR" in line or " CRITICAL" in line:
            logger.warning(line)
        else:
            logger.debug(line)

    with pipeline.lock_spool(spool, source) as lock:
        seen = pipeline.export_seen(archive, source, spool) if archive else None
        stats = pipeline.run_crawl(source, sources_file=sources_file, spool=spool, max_pages=max_pages,
                                   on_log=on_log, lock=lock, seen=seen)
    logger.info("%s: %s pages, %s articles, %s bytes, %s errors", source, stats.get("pages"),
                stats.get("articles"), stats.get("bytes"), pipeline.error_total(stats))
    return stats


@task(name="recover", cache_policy=NO_CACHE)
def recover(spool: str, source: str) -> list[dict]:
    """Make final what a killed crawl left in the spool: whole records and pairs kept, torn tails cut."""
    report = pipeline.recover(spool, source)
    salvaged = report.as_dict()["salvaged"] if report else []
    if salvaged:
        get_run_logger().warning("recovered %d file(s) a killed crawl left in the spool", len(salvaged))
    return salvaged


@task(name="index", cache_policy=NO_CACHE)
def index(spool: str) -> list[str]:
    keys = pipeline.index_spool(spool)
    get_run_logger().info("indexed %d WARC file(s)", len(keys))
    return keys


@task(name="manifest", cache_policy=NO_CACHE)
def manifest(spool: str, stats: dict, source: str, run_id: str) -> str:
    return pipeline.write_manifest(spool, stats, source=source, run_id=run_id)


@task(name="archive", cache_policy=NO_CACHE, retries=3, retry_delay_seconds=[5, 30, 120])
def archive_files(spool: str, archive: str):
    """Upload everything finished in the spool; raises (and is retried) if any file failed."""
    report = pipeline.upload(spool, archive)
    get_run_logger().info("archived %d file(s) to %s", len(pipeline._report_uploaded(report)), archive)
    return report


@task(name="catalog", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=5)
def catalog(archive: str) -> Any:
    return pipeline.update_catalog(archive)


def publish(summary: dict, source: str) -> None:
    key = f"crawl-{source}"
    create_markdown_artifact(summary["markdown"], key=key, description=f"Crawl of {source}")
    counts = [{"pages": summary["pages"], "articles": summary["articles"], "bytes": summary["bytes"],
               "errors": summary["error_total"],
               **{f"errors: {k}": v for k, v in summary["errors"].items()}}]
    create_table_artifact(counts, key=f"{key}-counts", description=f"Crawl of {source}: counts")
    rows = pipeline.summary_table(summary) or [{"file": "(none)", "kind": "", "archive_key": ""}]
    create_table_artifact(rows, key=f"{key}-files", description=f"Crawl of {source}: files and archive keys")


# --------------------------------------------------------------------------- crawl-source

@flow(name="crawl-source", flow_run_name="crawl-{source}", log_prints=True)
def crawl_source(source: str, sources_file: str | None = None, archive: str | None = None,
                 max_pages: int | None = None):
    """Crawl one source from sources.toml into the archive (a folder or s3://bucket/prefix)."""
    from prefect.runtime import flow_run

    logger = get_run_logger()
    layout.safe_source(source)
    archive = archive or pipeline.default_archive()
    sources_file = str(sources_file or pipeline.default_sources_file())
    run_id = layout.safe_part(str(flow_run.id or "") or os.urandom(8).hex())

    with concurrency(ensure_source_limit(source), occupy=1, strict=True):
        spool = str(pipeline.source_spool(archive, source))
        crawl_error: pipeline.CrawlError | None = None
        stats: dict | None = None
        recovered = recover(spool, source)  # a crawl of this source killed earlier
        try:
            stats = fetch(source, sources_file, spool, max_pages, archive)
        except pipeline.CrawlError as exc:
            crawl_error = exc
            logger.error("%s", exc)
        recovered += recover(spool, source)  # this run's own crawl, if it was killed
        index(spool)  # this run's WARCs, and any left over from earlier runs
        if stats is not None:
            if recovered:
                stats["recovered"] = recovered
            manifest(spool, stats, source, run_id)
        report = archive_files(spool, archive)  # raises after retries: the run fails, the spool stays
        catalog(archive)

    summary = pipeline.summarize(stats or {"source": source}, report, archive=archive,
                                 failure=str(crawl_error) if crawl_error else None, recovered=recovered)
    publish(summary, source)
    if crawl_error is not None:
        crawl_error.summary = summary  # type: ignore[attr-defined]
        raise crawl_error  # the run ends Failed with the crawl's one-line reason
    if summary["verdict"]:
        failed = pipeline.CrawlFailed(summary["verdict"])
        failed.summary = summary  # type: ignore[attr-defined]
        raise failed
    return summary


# --------------------------------------------------------------------------- crawl-all

def _select_sources(sources_file: str, names: list[str] | None, tags: list[str] | None) -> list[str]:
    from spiders.sources import load_sources

    sources = load_sources(sources_file)
    if names:
        unknown = [n for n in names if n not in sources]
        if unknown:
            raise ValueError(f"unknown source(s) in {sources_file}: {', '.join(unknown)}")
        chosen = list(dict.fromkeys(names))
    else:
        chosen = list(sources)
    if tags:
        wanted = set(tags)
        chosen = [n for n in chosen if wanted & set(getattr(sources[n], "tags", ()) or ())]
    return chosen


def _deployment_exists(name: str) -> bool:
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            client.read_deployment_by_name(name)
            return True
        except ObjectNotFound:
            return False


def _run_one(name: str, params: dict, use_deployment: bool) -> dict:
    """One source as its own flow run; never raises (the outcome is in the result)."""
    try:
        if use_deployment:
            from prefect.deployments import run_deployment

            run = run_deployment(f"crawl-source/{name}", parameters=params, as_subflow=True)
            state = run.state
            return {"source": name, "state": state.type.value if state else "UNKNOWN",
                    "message": (state.message or "") if state else "", "flow_run_id": str(run.id)}
        state = crawl_source(**params, return_state=True)
        summary = None
        if state.is_completed():
            summary = state.result(raise_on_failure=False)
        message = state.message or ""
        if state.is_failed() and (not message or message.startswith("Flow run encountered")):
            try:
                state.result()
            except Exception as exc:  # the exception the subflow failed with
                message = str(exc) or type(exc).__name__
        return {"source": name, "state": state.type.value, "message": message,
                "flow_run_id": str(state.state_details.flow_run_id),
                "pages": (summary or {}).get("pages") if isinstance(summary, dict) else None,
                "articles": (summary or {}).get("articles") if isinstance(summary, dict) else None}
    except Exception as exc:
        return {"source": name, "state": "FAILED", "message": f"{name}: {exc}", "flow_run_id": None}


@flow(name="crawl-all", log_prints=True)
def crawl_all(sources_file: str | None = None, archive: str | None = None, names: list[str] | None = None,
              tags: list[str] | None = None, max_pages: int | None = None, parallel: int = DEFAULT_PARALLEL,
              via: str = "auto"):
    """Crawl every source (or `names`, or those with one of `tags`), each as its own flow run.

    `via`: "deployments" (runs of `crawl-source/SOURCE`, for workers to take),
    "subflows" (in this process), or "auto" (deployments when this run itself
    comes from a deployment and the source's deployment exists).
    """
    from prefect.runtime import deployment

    logger = get_run_logger()
    sources_file = str(sources_file or pipeline.default_sources_file())
    archive = archive or pipeline.default_archive()
    chosen = _select_sources(sources_file, names, tags)
    if not chosen:
        return Completed(message="no sources selected")
    from_deployment = bool(deployment.id)

    plan = []
    for name in chosen:
        if via == "deployments":
            use_dep = True
        elif via == "subflows":
            use_dep = False
        else:
            use_dep = from_deployment and _deployment_exists(f"crawl-source/{name}")
        params = {"source": name, "sources_file": sources_file, "archive": archive, "max_pages": max_pages}
        plan.append((name, params, use_dep))

    with ThreadPoolExecutor(max_workers=max(1, int(parallel)), thread_name_prefix="crawl-all") as pool:
        # each thread gets a copy of this flow's context, so subflows link to this run
        futures = [pool.submit(copy_context().run, _run_one, name, params, use_dep) for name, params, use_dep in plan]
        results = [f.result() for f in futures]

    failed = [r for r in results if r["state"] != "COMPLETED"]
    rows = [{"source": r["source"], "state": r["state"], "message": r["message"],
             "flow_run_id": r["flow_run_id"] or ""} for r in results]
    create_table_artifact(rows, key="crawl-all", description="crawl-all: one row per source")
    for r in results:
        logger.info("%s: %s %s", r["source"], r["state"], r["message"])
    if failed:
        detail = "; ".join(r["message"] if r["message"].startswith(f"{r['source']}:")
                           else f"{r['source']}: {r['message'] or r['state']}" for r in failed)
        return Failed(message=f"{len(failed)} of {len(results)} source(s) failed: {detail}", data=results)
    return results
