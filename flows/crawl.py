"""Prefect flows: `crawl-source` (one source) and `crawl-all` (many sources).

`crawl-source` runs the step sequence of flows/pipeline.py with each step as a
Prefect task (fetch, index, manifest, upload, catalog, ...: the run's task
runs read as the data flow), then publishes the summary as artifacts
(`crawl-SOURCE`: markdown; `crawl-SOURCE-counts`, `crawl-SOURCE-files`:
tables). A run that failed ends Failed with the summary's one-line verdict
as its message and the summary as its data.

One run of a source at a time, and a killed run never blocks the next one:

- on one machine, the spool lock (pipeline.run_source): a flock the kernel
  drops when its holder dies, even on SIGKILL;
- across machines, on a shared Prefect server, the global concurrency limit
  `crawl-source-SOURCE` (one slot, created on first use) held with a 60 s
  lease that the run renews: the server's repossessor frees the slot of a
  killed holder about 75 s after its last renewal. A run that finds the slot
  taken waits for it (at most SLOT_WAIT_SECONDS, then Busy); its summary says
  when the holder it waited for was a dead one.
  The slot is never reset by hand: a stale lease would still expire later and
  free a slot someone else holds by then.
- a temporary server (no PREFECT_API_URL; flows/prefect_api.py) keeps leases
  in its memory and never expires them, so there the spool lock alone guards.

`crawl-all` runs each source as its own flow run, at most `parallel` at once:
as a run of the source's deployment (`crawl-source/SOURCE`, picked up by any
worker of the pool) when crawl-all itself runs from a deployment and that
deployment exists, otherwise as an in-process subflow. A deployment run that
no worker takes within `pickup_seconds` (every worker busy: e.g. one worker
started with `--limit 1`, whose one slot crawl-all itself holds) is
cancelled and run in-process instead, so crawl-all completes on any pool.
Each child is bounded by `timeout_minutes`. A source that fails does not
stop the others; the parent ends Failed and names the sources that failed;
its `crawl-all` table artifact has one row per source (state, where it ran,
message, flow run id).
"""

from __future__ import annotations

import functools
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from contextvars import copy_context
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterator

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.concurrency.sync import concurrency
from prefect.states import Cancelled, Cancelling, Completed, Crashed, Failed, State

from flows import pipeline
from flows.summary import RunSummary
from storage import layout
from storage.archive import default_location
from storage.errors import Busy

SOURCE_LIMIT_PREFIX = "crawl-source-"
DEFAULT_PARALLEL = 4
SLOT_LEASE_SECONDS = 60  # the server's minimum; renewed every 45 s by the holder
SLOT_WAIT_SECONDS = 180  # longer than a dead holder's lease can last (60 s + the repossessor's 15 s loop)
PICKUP_SECONDS = 120  # a crawl-all child that no worker took by then runs inside crawl-all
CHILD_TIMEOUT_MINUTES = 180.0
POLL_SECONDS = 2
ACTIVE_STATES = ["PENDING", "RUNNING", "CANCELLING", "PAUSED"]

log = logging.getLogger("newsarchive.flows")


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


# --------------------------------------------------------------------------- one source at a time

def _run_label(run) -> str:
    return f"flow run {run.name} ({run.id}, {run.state.name if run.state else 'no state'})"


def _other_active_runs(source: str) -> list:
    """Runs of crawl-source for `source` other than this one that may hold its slot: those
    not finished, and those that Crashed lately (killed: their lease outlives them)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (FlowFilter, FlowFilterName, FlowRunFilter, FlowRunFilterName,
                                                FlowRunFilterState, FlowRunFilterStateType)
    from prefect.client.schemas.sorting import FlowRunSort
    from prefect.runtime import flow_run

    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=["crawl-source"])),
            flow_run_filter=FlowRunFilter(
                name=FlowRunFilterName(any_=[f"crawl-{source}"]),
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[*ACTIVE_STATES, "CRASHED"]))),
            sort=FlowRunSort.START_TIME_DESC, limit=10)
    me = str(flow_run.id or "")
    recent = datetime.now(timezone.utc) - timedelta(seconds=2 * SLOT_LEASE_SECONDS + 30)  # its lease may live on
    return [r for r in runs if str(r.id) != me
            and (r.state.type.value != "CRASHED" or (r.end_time is not None and r.end_time > recent))]


class SourceSlot:
    """The source's global concurrency slot, held for a run (see the module docstring).

    `waited_for` is what held the slot when this run arrived (other active runs
    of the source; [] when none was active: a holder that is gone); `notes()`
    says, at the end of the run, whether that holder was a dead one.
    """

    def __init__(self, source: str):
        self.source = source
        self.name: str | None = None
        self.waited_for: list | None = None  # None: the slot was free
        self.waited = 0.0

    @contextmanager
    def hold(self) -> Iterator["SourceSlot"]:
        from flows.prefect_api import configured_api_url, is_temporary

        if is_temporary(configured_api_url()):
            yield self  # the spool lock alone
            return
        from prefect.client.orchestration import get_client

        self.name = ensure_source_limit(self.source)
        with get_client(sync_client=True) as client:
            limit = client.read_global_concurrency_limit_by_name(self.name)
        if limit.active_slots >= limit.limit:
            self.waited_for = _other_active_runs(self.source)
            who = ", ".join(_run_label(r) for r in self.waited_for) or "a run that is no longer active"
            log.warning("%s: the slot %s is taken by %s: waiting for it (at most %d s)", self.source, self.name,
                        who, SLOT_WAIT_SECONDS)
        started = time.monotonic()
        stack = ExitStack()
        try:
            stack.enter_context(concurrency(self.name, occupy=1, strict=True, lease_duration=SLOT_LEASE_SECONDS,
                                            timeout_seconds=SLOT_WAIT_SECONDS))
        except TimeoutError:
            holders = [r for r in _other_active_runs(self.source) if r.state.type.value != "CRASHED"]
            if holders:
                raise Busy(f"source {self.source} is being crawled by "
                           f"{', '.join(_run_label(r) for r in holders)}: its slot {self.name} was not free "
                           f"within {SLOT_WAIT_SECONDS} s") from None
            # nobody holds it, yet it is taken: a lease the server lost (a restart with in-memory leases)
            raise Busy(f"the slot {self.name} is taken but no run of {self.source} is active: the Prefect server "
                       f"lost its lease (restarted without PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE=filesystem; "
                       f"docs/prefect.md); free it with `prefect gcl update {self.name} --active-slots 0`") from None
        self.waited = time.monotonic() - started
        with stack:
            if self.waited_for is not None:
                log.warning("%s: got the slot %s after %.0f s", self.source, self.name, self.waited)
            yield self

    def notes(self) -> list[str]:
        """For the run summary, once the run is over (a holder that let go is finished by then)."""
        if self.waited_for is None:
            return []
        from prefect.client.orchestration import get_client

        if not self.waited_for:
            return [f"found the slot {self.name} held by a run that was no longer active (killed): a stale "
                    f"holder, cleared when its lease expired, after {self.waited:.0f} s"]
        notes = []
        with get_client(sync_client=True) as client:
            for run in self.waited_for:
                now = client.read_flow_run(run.id)
                state = now.state.type.value if now.state else "UNKNOWN"
                if state in ("COMPLETED", "FAILED", "CANCELLED"):
                    notes.append(f"waited {self.waited:.0f} s for the slot {self.name}: {_run_label(now)} "
                                 f"was still crawling the source")
                else:  # Crashed, or still marked running without renewing its lease: it died holding the slot
                    notes.append(f"found the slot {self.name} held by {_run_label(now)}, which died holding it: "
                                 f"a stale holder, cleared when its lease expired, after {self.waited:.0f} s")
                    if state != "CRASHED":  # nothing else will ever end it (no worker reports it)
                        client.set_flow_run_state(now.id, Crashed(
                            message=f"its process died holding the slot {self.name} (found by a later run of "
                                    f"{self.source}; its lease expired)"))
        return notes


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
    slot = SourceSlot(source)
    with slot.hold():
        summary = pipeline.run_source(source, sources_file=sources_file, archive=archive, max_pages=max_pages,
                                      run_id=run_id, steps=PrefectSteps())
    summary.notes[:0] = slot.notes()
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


def _in_process(name: str, params: dict, timeout: float, ran: str) -> dict:
    """One source as a subflow of this run, bounded by `timeout` seconds."""
    state = crawl_source.with_options(timeout_seconds=timeout)(**params, return_state=True)
    summary = summary_of(state, name)
    message = summary.verdict or state.message or ""
    if not state.is_completed() and "exceeded timeout" in (state.message or ""):
        message = f"{name}: timed out after {timeout / 60:g} min"
    return {"source": name, "state": state.type.value, "ran": ran, "message": message,
            "flow_run_id": str(state.state_details.flow_run_id), "pages": summary.pages,
            "articles": summary.articles}


def _via_deployment(name: str, params: dict, pickup: float, timeout: float) -> dict:
    """One source as a run of its deployment, for a worker to take. If no worker
    takes it within `pickup` seconds it is cancelled and runs in this process;
    one still running after `timeout` seconds is cancelled."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.objects import StateType
    from prefect.client.schemas.responses import SetStateStatus
    from prefect.deployments import run_deployment

    logger = get_run_logger()
    run = run_deployment(f"crawl-source/{name}", parameters=params, as_subflow=True, timeout=0)
    submitted = time.monotonic()
    cancelled_at = None
    with get_client(sync_client=True) as client:
        while True:
            run = client.read_flow_run(run.id)
            state = run.state
            elapsed = time.monotonic() - submitted
            if state is not None and state.is_final():
                worker = run.labels.get("prefect.worker.name") if run.labels else None
                message = state.message or ""
                if cancelled_at is not None:
                    message = f"{name}: timed out after {timeout / 60:g} min (cancelled)"
                return {"source": name, "state": state.type.value,
                        "ran": f"worker {worker}" if worker else "a worker", "message": message,
                        "flow_run_id": str(run.id)}
            waiting = state is None or (state.type == StateType.SCHEDULED and state.name != "AwaitingConcurrencySlot")
            if waiting and elapsed > pickup:
                why = f"no worker took it within {pickup:g} s"
                result = client.set_flow_run_state(run.id, Cancelled(message=f"{why}: crawl-all runs it itself"))
                if result.status == SetStateStatus.ACCEPT:
                    logger.warning("%s: %s; running it in this crawl-all run", name, why)
                    return _in_process(name, params, max(timeout - elapsed, 60), f"in crawl-all ({why})")
            elif elapsed > timeout and cancelled_at is None:
                logger.warning("%s: still %s after %g min: cancelling it", name, state.name, timeout / 60)
                client.set_flow_run_state(run.id, Cancelling(message=f"crawl-all: timed out after {timeout / 60:g} min"))
                cancelled_at = time.monotonic()
            elif cancelled_at is not None and time.monotonic() - cancelled_at > 120:
                return {"source": name, "state": state.type.value, "ran": "a worker",
                        "message": f"{name}: timed out after {timeout / 60:g} min; cancelling it did not end it",
                        "flow_run_id": str(run.id)}
            time.sleep(POLL_SECONDS)


def _run_one(name: str, params: dict, use_deployment: bool, pickup: float, timeout: float) -> dict:
    """One source as its own flow run; never raises (the outcome is in the row)."""
    try:
        if use_deployment:
            return _via_deployment(name, params, pickup, timeout)
        return _in_process(name, params, timeout, "in crawl-all")
    except Exception as exc:
        return {"source": name, "state": "FAILED", "ran": "", "message": f"{name}: {exc}", "flow_run_id": None}


@flow(name="crawl-all", log_prints=True)
def crawl_all(sources_file: str | None = None, archive: str | None = None, names: list[str] | None = None,
              tags: list[str] | None = None, max_pages: int | None = None, parallel: int = DEFAULT_PARALLEL,
              via: str = "auto", pickup_seconds: float = PICKUP_SECONDS,
              timeout_minutes: float = CHILD_TIMEOUT_MINUTES):
    """Crawl every source (or `names`, or those with one of `tags`), each as its own flow run.

    `via`: "deployments" (runs of `crawl-source/SOURCE`, for workers to take),
    "subflows" (in this process), or "auto" (deployments when this run itself
    comes from a deployment and the source's deployment exists). A deployment
    run no worker takes within `pickup_seconds` runs in this process instead;
    every child is cancelled after `timeout_minutes`.
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
    pickup, timeout = float(pickup_seconds), float(timeout_minutes) * 60

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
        # each thread gets a copy of this flow's context, so child runs link to this run
        futures = [pool.submit(copy_context().run, _run_one, name, params, use_dep, pickup, timeout)
                   for name, params, use_dep in plan]
        results = [f.result() for f in futures]

    failed = [r for r in results if r["state"] != "COMPLETED"]
    rows = [{"source": r["source"], "state": r["state"], "ran": r["ran"], "message": r["message"],
             "flow_run_id": r["flow_run_id"] or ""} for r in results]
    create_table_artifact(rows, key="crawl-all", description="crawl-all: one row per source")
    for r in results:
        logger.info("%s: %s (%s) %s", r["source"], r["state"], r["ran"], r["message"])
    if failed:
        detail = "; ".join(r["message"] if r["message"].startswith(f"{r['source']}:")
                           else f"{r['source']}: {r['message'] or r['state']}" for r in failed)
        return Failed(message=f"{len(failed)} of {len(results)} source(s) failed: {detail}", data=results)
    return results
