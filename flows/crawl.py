"""Prefect flows: `crawl-source` (one source) and `crawl-all` (many sources).

`crawl-source` runs the step sequence of flows/pipeline.py with each step as a
Prefect task (fetch, index, manifest, upload, catalog, ...: the run's task
runs read as the data flow), then publishes the summary as artifacts
(`crawl-SOURCE`: markdown; `crawl-SOURCE-counts`, `crawl-SOURCE-files`:
tables). A run that failed ends Failed with the summary's one-line verdict
as its message and the summary as its data.

A run holds the global concurrency limit `crawl-source-SOURCE` (one slot,
created on first use), so two runs of the same source never overlap, whether
started by a schedule, by hand, by `crawl-all` or by the command line.

`crawl-all` runs each source as its own flow run, at most `parallel` at once:
as a run of the source's deployment (`crawl-source/SOURCE`, picked up by any
worker of the pool) when crawl-all itself runs from a deployment and that
deployment exists, otherwise as an in-process subflow. A source that fails
does not stop the others; the parent ends Failed and names the sources that
failed.
"""

from __future__ import annotations

import functools
import os
from concurrent.futures import ThreadPoolExecutor
from contextvars import copy_context
from typing import Any, Callable

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.concurrency.sync import concurrency
from prefect.states import Completed, Failed, State

from flows import pipeline
from flows.summary import RunSummary
from storage import layout
from storage.archive import default_location

SOURCE_LIMIT_PREFIX = "crawl-source-"
DEFAULT_PARALLEL = 4


class PrefectSteps(pipeline.Steps):
    """Runs each step of the sequence as a Prefect task with the step's retries."""

    def __call__(self, fn: Callable, *args: Any, **kwargs: Any) -> Any:
        return _task_of(fn)(*args, **kwargs)


@functools.cache
def _task_of(fn: Callable):
    options = fn.step
    return task(fn, name=options.name, retries=options.retries,
                retry_delay_seconds=list(options.retry_delays) or 0, cache_policy=NO_CACHE)


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


def publish(summary: RunSummary) -> None:
    key = f"crawl-{summary.source}"
    create_markdown_artifact(summary.markdown(), key=key, description=f"Crawl of {summary.source}")
    counts = [{"pages": summary.pages, "articles": summary.articles, "bytes": summary.bytes,
               "errors": summary.error_total, **{f"errors: {k}": v for k, v in summary.errors.items()}}]
    create_table_artifact(counts, key=f"{key}-counts", description=f"Crawl of {summary.source}: counts")
    rows = summary.file_rows() or [{"file": "(none)", "kind": "", "archive_key": ""}]
    create_table_artifact(rows, key=f"{key}-files", description=f"Crawl of {summary.source}: files and archive keys")


# --------------------------------------------------------------------------- crawl-source

@flow(name="crawl-source", flow_run_name="crawl-{source}", log_prints=True)
def crawl_source(source: str, sources_file: str | None = None, archive: str | None = None,
                 max_pages: int | None = None) -> dict | State:
    """Crawl one source from sources.toml into the archive (a folder or s3://bucket/prefix)."""
    from prefect.runtime import flow_run
    from spiders.sources import default_sources_path

    layout.safe_source(source)
    archive = archive or default_location()
    sources_file = str(sources_file or default_sources_path())
    run_id = layout.safe_part(str(flow_run.id or "") or os.urandom(8).hex())
    with concurrency(ensure_source_limit(source), occupy=1, strict=True):
        summary = pipeline.run_source(source, sources_file=sources_file, archive=archive, max_pages=max_pages,
                                      run_id=run_id, steps=PrefectSteps())
    publish(summary)
    if summary.failed:
        get_run_logger().error("%s", summary.verdict)
        return Failed(message=summary.verdict, data=summary.as_dict())
    return summary.as_dict()


def summary_of(state: State, source: str) -> RunSummary:
    """The RunSummary a finished crawl-source run left (its data), or one made from its failure."""
    data = state.result(raise_on_failure=False)
    if isinstance(data, dict) and data.get("source") == source:
        return RunSummary.from_dict(data)
    message = state.message or ""
    if isinstance(data, BaseException):
        message = str(data) or type(data).__name__
    return RunSummary(source=source, verdict=message or f"{source}: run ended {state.type.value}")


# --------------------------------------------------------------------------- crawl-all

def _select_sources(sources_file: str, names: list[str] | None, tags: list[str] | None) -> list[str]:
    from spiders.sources import load_sources, pick_sources

    sources = load_sources(sources_file)
    chosen = pick_sources(sources, names, where=sources_file) if names else list(sources)
    if tags:
        wanted = set(tags)
        chosen = [n for n in chosen if wanted & set(sources[n].tags)]
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
        summary = summary_of(state, name)
        return {"source": name, "state": state.type.value, "message": summary.verdict or state.message or "",
                "flow_run_id": str(state.state_details.flow_run_id), "pages": summary.pages,
                "articles": summary.articles}
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
    from spiders.sources import default_sources_path

    logger = get_run_logger()
    sources_file = str(sources_file or default_sources_path())
    archive = archive or default_location()
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
