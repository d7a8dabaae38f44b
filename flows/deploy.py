"""Deployments of the crawl flows, generated from sources.toml, and the worker.

    deploy(sources_file, pool, archive)   `newsarchive deploy`
    start_worker(pool, limit)             `newsarchive worker`

`deploy` writes a prefect.yaml-style file with one `crawl-source/SOURCE`
deployment per source (its `schedule` as a cron schedule) and a scheduled
`crawl-all/all`, all on the process work pool (created if missing), then
applies them with the Prefect client (as `prefect deploy --all --prefect-file
FILE` would; see apply_definitions for why not through that CLI). The repository's committed prefect.yaml is this output for the example
sources.toml: `python -m flows.deploy --write prefect.yaml` regenerates it.

Every command needs a Prefect API (`PREFECT_API_URL`, e.g. a `prefect server
start` on this or another machine); see docs/prefect.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from storage.errors import OrchestrationError

REPO_DIR = Path(__file__).resolve().parent.parent
DEFAULT_POOL = "newsarchive"
CRAWL_ALL_DEPLOYMENT = "all"
CRAWL_ALL_CRON = "30 3 * * *"  # once a day; sources keep their own schedules


def _prefect_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    env.setdefault("DO_NOT_TRACK", "1")  # as the crawl command: no client usage data unless asked for
    env["PREFECT_CLI_PROMPT"] = "false"
    return env


def _prefect_cmd() -> list[str]:
    exe = Path(sys.executable).with_name("prefect")
    return [str(exe)] if exe.exists() else [shutil.which("prefect") or "prefect"]


def _require_api() -> str:
    from prefect.settings import PREFECT_API_URL

    url = PREFECT_API_URL.value()
    if not url:
        raise OrchestrationError("PREFECT_API_URL is not set: start a server (`prefect server start`) and "
                          "`prefect config set PREFECT_API_URL=http://127.0.0.1:4200/api`")
    return url


def _absolute_archive(archive: str | None) -> str:
    from storage.archive import default_location

    archive = archive or default_location()
    return archive if "://" in archive else str(Path(archive).resolve())


def deployment_definitions(sources_file: str | os.PathLike, *, pool: str = DEFAULT_POOL,
                           archive: str | None = None, repo_dir: str | os.PathLike | None = None,
                           portable: bool = False) -> dict[str, Any]:
    """The prefect.yaml content for these sources.

    `portable=True` (the committed prefect.yaml) writes paths relative to the
    checkout and no pull step: `prefect deploy` then adds its default one,
    `set_working_directory` to the folder it is run from (the checkout).
    Otherwise the pull step and paths are this machine's absolute paths.
    """
    from spiders.sources import load_sources

    sources = load_sources(sources_file)
    if portable:
        workdir = None
        sources_param = "sources.toml"
        archive_param = archive or "archive"
    else:
        workdir = str(Path(repo_dir or REPO_DIR).resolve())
        sources_param = str(Path(sources_file).resolve())
        archive_param = _absolute_archive(archive)
    deployments: list[dict[str, Any]] = [{
        "name": CRAWL_ALL_DEPLOYMENT,
        "description": "Crawl every source of sources.toml, each as a run of its crawl-source deployment.",
        "entrypoint": "flows/crawl.py:crawl_all",
        "tags": ["newsarchive"],
        "parameters": {"sources_file": sources_param, "archive": archive_param, "via": "deployments"},
        "schedules": [{"cron": CRAWL_ALL_CRON, "timezone": "UTC"}],
        "concurrency_limit": 1,
        "work_pool": {"name": pool},
    }]
    for name, src in sources.items():
        dep: dict[str, Any] = {
            "name": name,
            "description": f"Crawl the source {name!r} of sources.toml.",
            "entrypoint": "flows/crawl.py:crawl_source",
            "tags": ["newsarchive", f"source-{name}", *[f"tag-{t}" for t in getattr(src, "tags", ())]],
            "parameters": {"source": name, "sources_file": sources_param, "archive": archive_param},
            "schedules": ([{"cron": src.schedule, "timezone": "UTC"}] if src.schedule else []),
            "concurrency_limit": 1,  # with the flow's own per-source limit: never two runs at once
            "work_pool": {"name": pool},
        }
        deployments.append(dep)
    return {
        "name": "newsarchive",
        "prefect-version": _prefect_version(),
        "build": None,
        "push": None,
        "pull": ([{"prefect.deployments.steps.set_working_directory": {"directory": workdir}}]
                 if workdir else None),
        "deployments": deployments,
    }


def _prefect_version() -> str:
    import prefect

    return prefect.__version__


def render_yaml(definitions: dict[str, Any]) -> str:
    import yaml

    header = ("# Generated by `newsarchive deploy` / `python -m flows.deploy --write prefect.yaml`\n"
              "# from sources.toml: one crawl-source deployment per source (its schedule),\n"
              "# and crawl-all once a day. See docs/prefect.md.\n")
    if definitions.get("pull") is None:
        header += ("# pull: null -> `prefect deploy` adds its default pull step,\n"
                   "#   set_working_directory: <the checkout you deploy from>; relative paths below\n"
                   "#   (sources.toml, archive) are resolved there when a worker runs the flow.\n")
    return header + yaml.safe_dump(definitions, sort_keys=False, allow_unicode=True, width=100)


def write_prefect_file(path: str | os.PathLike, sources_file: str | os.PathLike, **kwargs: Any) -> Path:
    path = Path(path)
    path.write_text(render_yaml(deployment_definitions(sources_file, **kwargs)), encoding="utf-8")
    return path


def ensure_pool(pool: str = DEFAULT_POOL) -> bool:
    """Create the process work pool if missing; True when it was created."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound
    from prefect.workers.process import ProcessWorker

    with get_client(sync_client=True) as client:
        try:
            client.read_work_pool(pool)
            return False
        except ObjectNotFound:
            pass
        try:
            client.create_work_pool(WorkPoolCreate(
                name=pool, type="process", description="newsarchive crawls",
                base_job_template=ProcessWorker.get_default_base_job_template()))
        except ObjectAlreadyExists:
            return False
    return True


def ensure_source_limits(names: list[str]) -> None:
    from flows.crawl import ensure_source_limit

    for name in names:
        ensure_source_limit(name)


def apply_definitions(definitions: dict[str, Any], *, base_dir: str | os.PathLike | None = None) -> list[str]:
    """Create or update every deployment of a prefect.yaml-style dict; return their names.

    This is what `prefect deploy --all` does for these definitions (flow,
    entrypoint, parameters and their schema, cron schedules, concurrency
    limit, work pool, pull steps), through the Prefect client: the pinned
    prefect 3.8.8 CLI sends `null` paging fields when it looks for workers
    after each deployment, which this server rejects, so the CLI stops after
    the first deployment.
    """
    import importlib

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import DeploymentScheduleCreate
    from prefect.client.schemas.schedules import CronSchedule
    from prefect.utilities.callables import parameter_schema

    base = Path(base_dir or REPO_DIR).resolve()
    pull = definitions.get("pull") or [
        {"prefect.deployments.steps.set_working_directory": {"directory": str(base)}}]
    names = []
    with get_client(sync_client=True) as client:
        for dep in definitions["deployments"]:
            file, func = dep["entrypoint"].split(":")
            module = importlib.import_module(file.removesuffix(".py").replace("/", "."))
            flow_obj = getattr(module, func)
            flow_id = client.create_flow_from_name(flow_obj.name)
            schedules = [DeploymentScheduleCreate(schedule=CronSchedule(cron=s["cron"], timezone=s.get("timezone", "UTC")),
                                                  active=True)
                         for s in dep.get("schedules") or []]
            client.create_deployment(
                flow_id=flow_id, name=dep["name"], description=dep.get("description"),
                parameters=dep.get("parameters") or {}, tags=dep.get("tags") or [],
                work_pool_name=dep["work_pool"]["name"], entrypoint=dep["entrypoint"], path=str(base),
                pull_steps=pull, schedules=schedules, concurrency_limit=dep.get("concurrency_limit"),
                parameter_openapi_schema=parameter_schema(flow_obj).model_dump_for_openapi(),
                enforce_parameter_schema=True)
            names.append(f"{flow_obj.name}/{dep['name']}")
    return names


def deploy(sources_file: str | os.PathLike | None = None, pool: str = DEFAULT_POOL, archive: str | None = None,
           *, prefect_file: str | os.PathLike | None = None) -> dict[str, Any]:
    """Create/update the deployments of every source (and crawl-all) on `pool`.

    Writes the definitions to `prefect_file` (default: a temporary file, kept
    for inspection), then applies them. Returns what was set up, for
    `newsarchive deploy` to print:

        {"api_url", "pool", "pool_created": bool, "prefect_file",
         "deployments": ["crawl-all/all", "crawl-source/NAME", ...],
         "schedules": {"crawl-source/NAME": ["CRON (UTC)", ...], ...},
         "limits": ["crawl-source-NAME", ...]}
    """
    from spiders.sources import default_sources_path, load_sources

    api_url = _require_api()
    sources_file = Path(sources_file or default_sources_path()).resolve()
    names = list(load_sources(sources_file))
    pool_created = ensure_pool(pool)
    ensure_source_limits(names)
    if prefect_file is None:
        fd, tmp = tempfile.mkstemp(prefix="newsarchive-prefect-", suffix=".yaml")
        os.close(fd)
        target = Path(tmp)
    else:
        target = Path(prefect_file)
    definitions = deployment_definitions(sources_file, pool=pool, archive=archive)
    target.write_text(render_yaml(definitions), encoding="utf-8")
    try:
        deployed = apply_definitions(definitions)
    except Exception as exc:
        raise OrchestrationError(f"deploying to {_require_api()} failed: {exc}".splitlines()[0]) from exc
    from flows.crawl import source_limit_name

    schedules = {name: [f"{s['cron']} ({s.get('timezone', 'UTC')})" for s in dep.get("schedules") or []]
                 for name, dep in zip(deployed, definitions["deployments"])}
    return {"api_url": api_url, "pool": pool, "pool_created": pool_created, "prefect_file": str(target),
            "deployments": deployed, "schedules": schedules,
            "limits": [source_limit_name(n) for n in names]}


def worker_command(pool: str = DEFAULT_POOL, limit: int | None = None, name: str | None = None) -> list[str]:
    cmd = _prefect_cmd() + ["worker", "start", "--pool", pool, "--type", "process"]
    if limit is not None:
        cmd += ["--limit", str(int(limit))]
    if name:
        cmd += ["--name", name]
    return cmd


def start_worker(pool: str = DEFAULT_POOL, limit: int | None = None, name: str | None = None) -> int:
    """Run a process worker for `pool` in the foreground (until interrupted); return its exit code.

    Flow runs start in the repository folder (the deployments' pull step), in
    this Python environment. Start several, on one or many machines, to crawl
    several sources at once; `limit` caps the runs one worker takes at a time.
    """
    _require_api()
    ensure_pool(pool)
    proc = subprocess.Popen(worker_command(pool, limit, name), cwd=REPO_DIR, env=_prefect_env())
    try:
        return proc.wait()
    except KeyboardInterrupt:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        raise


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m flows.deploy",
                                     description="Write the deployment definitions for a sources file.")
    parser.add_argument("--sources", default="sources.toml")
    parser.add_argument("--write", metavar="FILE", default="prefect.yaml",
                        help="where to write (portable paths: deploy from the checkout's folder)")
    parser.add_argument("--pool", default=DEFAULT_POOL)
    parser.add_argument("--archive", default=None)
    args = parser.parse_args(argv)
    path = write_prefect_file(args.write, args.sources, pool=args.pool, archive=args.archive, portable=True)
    print(json.dumps({"wrote": str(path)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
