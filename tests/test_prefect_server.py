"""End to end on a real Prefect server: deploy from the repo, a worker, a triggered run with parameters,
two workers, and the committed prefect.yaml deployed with `prefect deploy --all`."""

from __future__ import annotations

import re
import subprocess
import threading
import time
from pathlib import Path

import pytest

from fixtures_prefect import REPO, VENV_BIN, read_artifacts

pytestmark = pytest.mark.prefect_server

POOL = "newsarchive-test"
FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


def _run(cmd: list[str], env: dict, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)


def _wait_final(server, flow_run_id: str, timeout: float = 420):
    from prefect.client.orchestration import get_client

    deadline = time.monotonic() + timeout
    with server.client_settings(), get_client(sync_client=True) as client:
        while time.monotonic() < deadline:
            run = client.read_flow_run(flow_run_id)
            if run.state and run.state.type.value in FINAL:
                return run
            time.sleep(2)
    pytest.fail(f"flow run {flow_run_id} not finished after {timeout}s; worker log:\n"
                f"{server.log('worker.log')[-4000:]}")


def test_deploy_worker_and_a_triggered_run_archive_the_crawl(prefect_server, news_site, tmp_path):
    # depth 0: with max_pages=10 the feeds' articles, not homepage links, fill the pages left
    sources = news_site.write_sources(tmp_path, schedule="0 4 * * *", depth=0)
    env = {**prefect_server.env, "NEWSARCHIVE_SPOOL": str(tmp_path / "spool"),
           "PREFECT_WORKER_QUERY_SECONDS": "2"}

    deployed = _run([VENV_BIN / "newsarchive", "deploy", "--sources", sources,
                     "--archive", tmp_path / "default-archive", "--pool", POOL], env)
    assert deployed.returncode == 0, deployed.stderr + deployed.stdout

    from prefect.client.orchestration import get_client

    with prefect_server.client_settings(), get_client(sync_client=True) as client:
        dep = client.read_deployment_by_name("crawl-source/testnews")
        assert dep.work_pool_name == POOL
        assert dep.parameters["source"] == "testnews"
        assert [s.schedule.cron for s in dep.schedules] == ["0 4 * * *"]
        assert client.read_deployment_by_name("crawl-all/all").work_pool_name == POOL
        assert client.read_work_pool(POOL).type == "process"

    prefect_server.start([VENV_BIN / "newsarchive", "worker", "--pool", POOL], "worker.log", env=env)

    archive = tmp_path / "run-archive"
    triggered = _run([VENV_BIN / "prefect", "deployment", "run", "crawl-source/testnews",
                      "--param", f"archive={archive}", "--param", "max_pages=10"], env, timeout=120)
    assert triggered.returncode == 0, triggered.stderr + triggered.stdout
    match = re.search(r"UUID:\s*([0-9a-f-]{36})", triggered.stdout)
    assert match, triggered.stdout
    run = _wait_final(prefect_server, match.group(1))
    assert run.state.type.value == "COMPLETED", f"{run.state.message}\n{prefect_server.log('worker.log')[-4000:]}"
    assert run.parameters["max_pages"] == 10

    # what a user checks: captures, indexes and clean text in the archive they asked for
    warcs = sorted((archive / "warc" / "testnews").rglob("*.warc.gz"))
    texts = sorted((archive / "articles" / "testnews").rglob("*.txt"))
    assert warcs and texts
    assert sorted((archive / "indexes" / "testnews").rglob("*.cdxj"))
    assert texts[0].read_text(encoding="utf-8").strip()
    assert not (tmp_path / "default-archive").exists()

    with prefect_server.client_settings():
        artifacts = read_artifacts(flow_run_id=run.id)
    by_key = {a["key"]: a for a in artifacts}
    assert "# Crawl of `testnews`" in by_key["crawl-testnews"]["data"]
    assert "warc/testnews/" in by_key["crawl-testnews-files"]["data"]


# --------------------------------------------------------------------------- scaling out on one machine
#
# The commands of docs/prefect.md, "On one machine: two workers, two sources at once":
#
#   newsarchive deploy --sources S --archive A --pool P
#   newsarchive worker --pool P --name w1 --limit 1     (and w2)
#   prefect deployment run 'crawl-source/gated-a'      (and gated-b, testnews-a, broken)
#
# Sources of the same loopback site: testnews-a (a small per-page delay, so a run
# lasts a few seconds and two runs of it would overlap if nothing stopped them);
# gated-a and gated-b, which start at a page where each waits for the other; and a
# broken one (a port on 127.0.0.1 held bound, nothing listening).

SCALE_POOL = "newsarchive-scale"
WORKERS = ("w1", "w2")


def _trigger(env: dict, *deployments: str) -> list[str]:
    """`prefect deployment run D` for each, started together; the flow run ids, in order."""
    procs = [subprocess.Popen([str(VENV_BIN / "prefect"), "deployment", "run", d], cwd=REPO, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for d in deployments]
    ids = []
    for d, proc in zip(deployments, procs):
        out, _ = proc.communicate(timeout=120)
        match = re.search(r"UUID:\s*([0-9a-f-]{36})", out)
        assert proc.returncode == 0 and match, f"prefect deployment run {d}:\n{out}"
        ids.append(match.group(1))
    return ids


def _worker_names(server, pool: str) -> set[str]:
    import httpx

    resp = httpx.post(f"{server.api_url}/work_pools/{pool}/workers/filter", json={"limit": 50, "offset": 0},
                      timeout=30)
    resp.raise_for_status()
    return {w["name"] for w in resp.json()}


def _children(pid: int) -> list[tuple[int, list[str]]]:
    """(pid, argv) of the live child processes of `pid` (Linux /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            if ppid == pid:
                argv = (stat.parent / "cmdline").read_bytes().split(b"\0")
                found.append((int(stat.parent.name), [a.decode() for a in argv if a]))
        except (OSError, ValueError, IndexError):
            continue
    return found


def _overlap(r1, r2) -> bool:
    return r1.start_time < r2.end_time and r2.start_time < r1.end_time


def _worker_logs(server) -> str:
    return "\n".join(f"--- {w}.log\n{server.log(f'{w}.log')[-3000:]}" for w in WORKERS)


class Meeting:
    """A loopback page where two crawls meet: the first request for /NAME waits until the other
    name's request has come too (or a generous bound passes), and notes which happened. Two runs
    that both got past it ran at the same time, whatever the machine's speed: no timestamps needed."""

    def __init__(self, names: tuple[str, str], bound: float = 300):
        self.arrived = {n: threading.Event() for n in names}
        self.met: dict[str, bool] = {}
        self.bound = bound

    def route(self, path: str, server):
        from siteserver import Route

        if path == "/robots.txt":
            return Route(b"User-agent: *\nAllow: /\n", headers=[("Content-Type", "text/plain")])
        name = path.strip("/")
        if name not in self.arrived:
            return None
        self.arrived[name].set()
        other = next(n for n in self.arrived if n != name)
        partner_came = self.arrived[other].wait(self.bound)
        self.met.setdefault(name, partner_came)  # a retried request does not change the first answer
        return Route(b"<html><body><p>Both crawls are here.</p></body></html>",
                     headers=[("Content-Type", "text/html; charset=utf-8")])


GATED = ("gated-a", "gated-b")


@pytest.fixture(scope="module")
def two_workers(prefect_server, news_site, tmp_path_factory):
    """Five sources deployed on SCALE_POOL and two workers (`--limit 1`) polling it."""
    from siteserver import SiteServer
    from loopback import closed_port

    meeting = Meeting(GATED)
    with closed_port() as dead, SiteServer(meeting.route) as gate:  # the broken source's port stays unused
        yield from _two_workers(prefect_server, news_site, tmp_path_factory, dead, gate, meeting)


def _two_workers(prefect_server, news_site, tmp_path_factory, dead_port: int, gate, meeting: Meeting):
    tmp = tmp_path_factory.mktemp("scale")
    # depth 0: 8 pages are the feeds, sitemaps, homepage and at least two articles (a cap on
    # pages applies as requests are scheduled; homepage links could otherwise take every slot)
    small = {"depth": 0, "max_pages": 8, "delay": 0.8}
    # the gated sources start at the meeting page (one more page: 10, so articles still come)
    gated = [news_site.sources_toml(name, depth=0, max_pages=10, delay=0.1,
                                    start_urls=[gate.url(f"/{name}"), news_site.url("/")]) for name in GATED]
    sources = tmp / "sources.toml"
    sources.write_text(news_site.sources_toml("testnews-a", **small) + "\n" + "\n".join(gated)
                       + f'\n[[source]]\nname = "broken"\nstart_urls = ["http://127.0.0.1:{dead_port}/"]\n'
                       + "delay = 0\nmax_pages = 8\n", encoding="utf-8")
    archive = tmp / "archive"
    env = {**prefect_server.env, "PREFECT_WORKER_QUERY_SECONDS": "2", "NEWSARCHIVE_SPOOL": str(tmp / "spool")}

    deployed = _run([VENV_BIN / "newsarchive", "deploy", "--sources", sources, "--archive", archive,
                     "--pool", SCALE_POOL], env)
    assert deployed.returncode == 0, deployed.stderr + deployed.stdout

    workers = [prefect_server.start([VENV_BIN / "newsarchive", "worker", "--pool", SCALE_POOL, "--name", w,
                                     "--limit", "1"], f"{w}.log", env=env)
               for w in WORKERS]
    try:
        deadline = time.monotonic() + 300  # both polling before anything is triggered (a generous bound)
        while not set(WORKERS) <= _worker_names(prefect_server, SCALE_POOL):
            assert time.monotonic() < deadline, _worker_logs(prefect_server)
            assert all(p.poll() is None for p in workers), _worker_logs(prefect_server)
            time.sleep(1)
        yield {"env": env, "archive": archive, "deployed": deployed, "workers": workers, "meeting": meeting}
    finally:
        prefect_server.stop(workers)


def test_deploy_prints_what_it_created_and_what_to_do_next(two_workers):
    out, err = two_workers["deployed"].stdout, two_workers["deployed"].stderr
    assert f"work pool '{SCALE_POOL}' (process): created" in out
    for name in ("crawl-all/all", "crawl-source/testnews-a", "crawl-source/gated-a", "crawl-source/gated-b",
                 "crawl-source/broken"):
        assert re.search(rf"^  {re.escape(name)}\s+\S", out, re.M), out
    assert re.search(r"^  crawl-all/all\s+30 3 \* \* \* \(UTC\)$", out, re.M), out
    assert "crawl-source-testnews-a" in out and "crawl-source-broken" in out
    assert f"newsarchive worker --pool {SCALE_POOL}" in err
    assert "prefect deployment run 'crawl-source/" in err


def test_newsarchive_worker_passes_name_and_limit_to_the_prefect_worker(two_workers):
    for name, proc in zip(WORKERS, two_workers["workers"]):
        argvs = [argv for _, argv in _children(proc.pid) if "worker" in argv and "start" in argv]
        assert len(argvs) == 1, _children(proc.pid)
        argv = argvs[0]
        assert argv[argv.index("--pool") + 1] == SCALE_POOL
        assert argv[argv.index("--name") + 1] == name
        assert argv[argv.index("--limit") + 1] == "1"


def test_two_workers_crawl_two_sources_at_once(prefect_server, two_workers):
    ids = _trigger(two_workers["env"], "crawl-source/gated-a", "crawl-source/gated-b")
    a, b = (_wait_final(prefect_server, i) for i in ids)
    for run in (a, b):
        assert run.state.type.value == "COMPLETED", f"{run.name}: {run.state.message}\n{_worker_logs(prefect_server)}"
    # each on its own worker, at the same time: each crawl waited at the meeting page for the other
    assert {a.labels.get("prefect.worker.name"), b.labels.get("prefect.worker.name")} == set(WORKERS)
    assert two_workers["meeting"].met == {"gated-a": True, "gated-b": True}, _worker_logs(prefect_server)
    assert _overlap(a, b), (a.start_time, a.end_time, b.start_time, b.end_time)
    archive = two_workers["archive"]
    for source in GATED:
        assert sorted((archive / "warc" / source).rglob("*.warc.gz")), source
        assert sorted((archive / "articles" / source).rglob("*.txt")), source


def test_one_source_never_twice_at_once_and_a_broken_source_fails_alone(prefect_server, two_workers):
    first, second, broken = _trigger(two_workers["env"], "crawl-source/testnews-a", "crawl-source/testnews-a",
                                     "crawl-source/broken")
    r1, r2, rb = (_wait_final(prefect_server, i) for i in (first, second, broken))
    for run in (r1, r2):
        assert run.state.type.value == "COMPLETED", f"{run.name}: {run.state.message}\n{_worker_logs(prefect_server)}"
    # the second waited for the first (deployment and per-source concurrency limits): no overlap
    assert not _overlap(r1, r2), (r1.start_time, r1.end_time, r2.start_time, r2.end_time)
    # the broken source: Failed, with the crawl's own one-line reason
    assert rb.state.type.value == "FAILED", rb.state
    assert "broken: nothing could be fetched" in (rb.state.message or ""), rb.state.message
    assert "\n" not in (rb.state.message or "").strip()


# --------------------------------------------------------------------------- the committed prefect.yaml

def test_the_committed_prefect_yaml_is_current_and_prefect_deploy_all_deploys_it(prefect_server, tmp_path):
    import prefect

    from flows.deploy import write_prefect_file

    committed = (REPO / "prefect.yaml").read_text(encoding="utf-8")
    fresh = write_prefect_file(tmp_path / "prefect.yaml", REPO / "sources.toml", portable=True)
    assert fresh.read_text(encoding="utf-8") == committed, "regenerate it: python -m flows.deploy --write prefect.yaml"
    assert f"prefect-version: {prefect.__version__}\n" in committed

    # as docs/prefect.md says: the pool first, then `prefect --no-prompt deploy --all` from the checkout
    env = prefect_server.env
    pool = _run([VENV_BIN / "prefect", "work-pool", "create", "newsarchive", "--type", "process"], env)
    assert pool.returncode == 0, pool.stdout + pool.stderr
    deployed = _run([VENV_BIN / "prefect", "--no-prompt", "deploy", "--all"], env)
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr

    from prefect.client.orchestration import get_client

    with prefect_server.client_settings(), get_client(sync_client=True) as client:
        for name, cron in [("crawl-all/all", "30 3 * * *"), ("crawl-source/bbc-news", "5 * * * *"),
                           ("crawl-source/rnz-news", "50 */3 * * *")]:
            dep = client.read_deployment_by_name(name)
            assert dep.work_pool_name == "newsarchive"
            assert [s.schedule.cron for s in dep.schedules] == [cron]
            # Prefect's default pull step: the checkout it was deployed from
            assert dep.pull_steps == [{"prefect.deployments.steps.set_working_directory": {"directory": str(REPO)}}]
        # no worker polls this pool in the tests: keep its schedules from piling up runs
        for dep in client.read_deployments():
            if dep.work_pool_name == "newsarchive":
                client.pause_deployment(dep.id)


def test_a_failing_prefect_deploy_is_one_line_with_prefects_reason(prefect_server, tmp_path, monkeypatch):
    from flows.deploy import run_prefect_deploy, write_prefect_file
    from storage.errors import OrchestrationError

    definitions = write_prefect_file(tmp_path / "prefect.yaml", REPO / "sources.toml", pool="no-such-pool")
    monkeypatch.setenv("PREFECT_API_URL", prefect_server.api_url)  # for the `prefect deploy` subprocess
    with pytest.raises(OrchestrationError) as failed:
        run_prefect_deploy(definitions)
    message = str(failed.value)
    assert "\n" not in message
    assert "failed (exit 1)" in message and "work pool 'no-such-pool' which does not exist" in message, message
