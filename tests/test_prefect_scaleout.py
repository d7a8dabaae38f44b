"""Scale-out as docs/prefect.md sets it up, with three "machines" made of network namespaces:

    na-srv   PostgreSQL 15 (127.0.0.1 inside srv), `prefect server start` on that database,
             moto's S3 server and the bundled demo news site, all on 10.77.0.1
    na-w1    `newsarchive worker --name w1 --limit 1`, its own spool, catalog cache, PREFECT_HOME
    na-w2    the same as w2

Each worker reaches srv over its own veth pair and nothing else. Two sources of the
site are deployed (from w1) with an S3 archive; their runs go to both workers; then
every capture is listable and retrievable with `newsarchive list/get` from either
machine, each with its own catalog built from the one archive.

Needs root, `ip` and /usr/lib/postgresql/15 (`make setup` installs postgresql).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import uuid
from contextlib import ExitStack
from pathlib import Path

import pytest

from conditions import wait_for
from fixtures_prefect import LEASE_STORAGE, REPO, VENV_BIN
from netns import SRV_ADDR, Namespaces, PostgresCluster, ns_http
from proctree import TAG_VAR, kill_tagged

pytestmark = pytest.mark.prefect_server

API = f"http://{SRV_ADDR}:4200/api"
S3 = f"http://{SRV_ADDR}:5000"
SITE = f"http://{SRV_ADDR}:8080"
BUCKET = "newsarchive-scale"
ARCHIVE = f"s3://{BUCKET}/archive"
POOL = "scale"
FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}

# Two sources of the demo site, each its own articles (by date); a per-page delay so a
# run lasts long enough for the other worker to take the other source.
SOURCES = f"""
[[source]]
name = "courier-a"
start_urls = ["{SITE}/"]
feeds = ["{SITE}/rss.xml"]
allow = ['/2024/05/1[34]/']
depth = 1
max_pages = 40
delay = 0.5
concurrency = 1

[[source]]
name = "courier-b"
start_urls = ["{SITE}/"]
feeds = ["{SITE}/rss.xml"]
allow = ['/2024/05/1[56]/']
depth = 1
max_pages = 40
delay = 0.5
concurrency = 1
"""

SERVE_SITE = """
import sys, time
from flows.demo_site import start_demo_site
start_demo_site(sys.argv[1], int(sys.argv[2]))
print("serving", flush=True)
while True:
    time.sleep(3600)
"""


def _base_env(tag: str) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items()
            if not k.startswith(("PREFECT_", "NEWSARCHIVE_", "AWS_", "XDG_"))
            and k.lower() not in {"http_proxy", "https_proxy", "all_proxy"}}
    return {**keep, "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1", "PREFECT_UI_ENABLED": "false",
            "PREFECT_CLI_PROMPT": "false", "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "PYTHONPATH": str(REPO), "COLUMNS": "200", TAG_VAR: tag}


class Cluster:
    """The three machines, their processes (logs under `root`) and their environments."""

    def __init__(self, root: Path, tag: str):
        self.root = root
        self.tag = tag
        self.ns = Namespaces(tag[:8])
        self.procs: list[subprocess.Popen] = []
        self.pg: PostgresCluster | None = None
        self.started = time.monotonic()
        self.healthy_after = 0.0

    def machine_env(self, name: str) -> dict[str, str]:
        home = self.root / name
        return {**_base_env(self.tag), "PREFECT_HOME": str(home / "prefect"), "PREFECT_API_URL": API,
                "PREFECT_WORKER_QUERY_SECONDS": "2", "NEWSARCHIVE_SPOOL": str(home / "spool"),
                "XDG_CACHE_HOME": str(home / "cache"), "XDG_DATA_HOME": str(home / "data"),
                "AWS_ENDPOINT_URL": S3, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                "AWS_DEFAULT_REGION": "us-east-1", "AWS_CONFIG_FILE": str(home / "no-aws-config"),
                "AWS_SHARED_CREDENTIALS_FILE": str(home / "no-aws-credentials")}

    def start(self, ns: str, cmd: list, log_name: str, env: dict) -> subprocess.Popen:
        log = open(self.root / log_name, "ab")
        proc = subprocess.Popen(Namespaces.exec(ns, cmd), cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        self.procs.append(proc)
        return proc

    def run(self, machine: str, *cmd, timeout: float = 300, text: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(Namespaces.exec(self.ns.workers[machine], cmd), cwd=REPO,
                              env=self.machine_env(machine), capture_output=True, text=text, timeout=timeout)

    def log(self, name: str) -> str:
        path = self.root / name
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def logs(self) -> str:
        return "\n".join(f"--- {n}\n{self.log(n)}" for n in ("server.log", "w1.log", "w2.log"))

    def wait(self, what: str, check, timeout: float, every: float = 1.0):
        return wait_for(what, check, timeout, details=self.logs, every=every)

    def stop(self) -> None:
        for proc in reversed(self.procs):  # workers first: SIGTERM is their clean stop
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, 15)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + 40
        for proc in reversed(self.procs):
            try:
                proc.wait(max(1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        kill_tagged(self.tag, grace=5)  # flow runs and anything else started with our environment


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.fail("the scale-out test needs root (ip netns, PostgreSQL as the postgres user)")
    tag = uuid.uuid4().hex[:12]
    c = Cluster(tmp_path_factory.mktemp("scaleout"), tag)
    with ExitStack() as cleanup:
        c.ns.up()
        cleanup.callback(c.ns.down)  # last: kills anything left in the namespaces, deletes them
        c.pg = PostgresCluster(Namespaces.exec(c.ns.srv, []))
        cleanup.callback(c.pg.stop)
        c.pg.start()
        cleanup.callback(c.stop)

        srv_env = {**_base_env(tag), "PREFECT_HOME": str(c.root / "srv" / "prefect"),
                   "PREFECT_API_DATABASE_CONNECTION_URL": c.pg.url,
                   "PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE": LEASE_STORAGE}
        c.start(c.ns.srv, [VENV_BIN / "prefect", "server", "start", "--host", SRV_ADDR, "--port", "4200"],
                "server.log", srv_env)
        c.start(c.ns.srv, [VENV_BIN / "moto_server", "-H", SRV_ADDR, "-p", "5000"], "moto.log", srv_env)
        c.start(c.ns.srv, [sys.executable, "-c", SERVE_SITE, SRV_ADDR, "8080"], "site.log", srv_env)
        for machine in c.ns.workers:  # both machines reach all three over their veth pair
            c.wait(f"{machine} reaching the Prefect server",
                   lambda: ns_http(c.ns.workers[machine], f"{API}/health")["status"] == 200, 180)
            c.wait(f"{machine} reaching the site",
                   lambda: ns_http(c.ns.workers[machine], f"{SITE}/robots.txt")["status"] == 200, 60)
        c.healthy_after = time.monotonic() - c.started

        make_bucket = c.run("w1", sys.executable, "-c",
                            f"import boto3; boto3.client('s3').create_bucket(Bucket={BUCKET!r})")
        assert make_bucket.returncode == 0, make_bucket.stderr
        sources = c.root / "sources.toml"
        sources.write_text(SOURCES, encoding="utf-8")
        deployed = c.run("w1", VENV_BIN / "newsarchive", "deploy", "--sources", sources, "--archive", ARCHIVE,
                         "--pool", POOL)
        assert deployed.returncode == 0, deployed.stderr + deployed.stdout
        for machine, ns in c.ns.workers.items():
            c.start(ns, [VENV_BIN / "newsarchive", "worker", "--pool", POOL, "--name", machine, "--limit", "1"],
                    f"{machine}.log", c.machine_env(machine))
        c.wait("both workers polling the pool", lambda: {"w1", "w2"} <= {
            w["name"] for w in ns_http(c.ns.workers["w1"], f"{API}/work_pools/{POOL}/workers/filter",
                                       {"limit": 10}).get("body") or []},
            120)
        yield c


def _trigger(c: Cluster, deployment: str) -> str:
    done = c.run("w1", VENV_BIN / "prefect", "deployment", "run", deployment, timeout=120)
    match = re.search(r"UUID:\s*([0-9a-f-]{36})", done.stdout)
    assert done.returncode == 0 and match, f"prefect deployment run {deployment}:\n{done.stdout}{done.stderr}"
    return match.group(1)


def _run(c: Cluster, run_id: str) -> dict:
    answer = ns_http(c.ns.workers["w2"], f"{API}/flow_runs/{run_id}")
    assert answer["status"] == 200, answer
    return answer["body"]


def _article_urls() -> list[str]:
    from flows.demo_site import ARTICLE_FILE, DEMO_DIR, url_path

    return [SITE + url_path(p.name) for p in sorted(DEMO_DIR.glob("*.html")) if ARTICLE_FILE.fullmatch(p.name)]


def test_two_workers_in_two_namespaces_share_a_postgres_server_and_one_s3_archive(cluster):
    c = cluster
    print(f"\n[measured] namespaces + PostgreSQL + prefect server answering from both machines: "
          f"{c.healthy_after:.0f} s")
    # runs of the two sources until each machine has completed one (a worker with --limit 1 that is
    # crawling cannot take the other source, but which one polls first is up to them)
    ran_on: dict[str, set[str]] = {}
    deadline = time.monotonic() + 900
    while set(ran_on) != {"w1", "w2"}:
        assert time.monotonic() < deadline, f"runs went to {ran_on} only\n{c.logs()}"
        ids = [_trigger(c, "crawl-source/courier-a"), _trigger(c, "crawl-source/courier-b")]
        for run_id in ids:
            run = c.wait(f"flow run {run_id} finished", lambda: (r := _run(c, run_id))["state_type"] in FINAL and r,
                         600, every=2)
            assert run["state_type"] == "COMPLETED", f"{run['name']}: {run['state']['message']}\n{c.logs()}"
            ran_on.setdefault(run["labels"]["prefect.worker.name"], set()).add(run["parameters"]["source"])
    print(f"[measured] sources by machine: {ran_on}")

    # every capture is listable and retrievable from either machine, each with its own catalog
    articles = _article_urls()
    assert len(articles) == 6
    texts = {}
    for machine in ("w1", "w2"):
        for url in articles:
            listed = c.run(machine, VENV_BIN / "newsarchive", "list", url, "--json", "--archive", ARCHIVE)
            assert listed.returncode == 0, f"{machine}: list {url}: {listed.stderr}"
            captures = json.loads(listed.stdout)
            assert captures and all(cap["status"] == 200 and cap["text"] for cap in captures), captures
            got = c.run(machine, VENV_BIN / "newsarchive", "get", url, "--as", "text", "--archive", ARCHIVE)
            assert got.returncode == 0 and got.stdout.partition("\n\n")[2].strip(), f"{machine}: get {url}: {got.stderr}"
            texts.setdefault(url, set()).add(got.stdout)
        home = c.run(machine, VENV_BIN / "newsarchive", "get", f"{SITE}/", "--as", "html", "--archive", ARCHIVE,
                     text=False)
        assert home.returncode == 0 and b"Port Alder Courier" in home.stdout, home.stderr
        catalogs = list((c.root / machine / "cache").rglob("*.sqlite"))
        assert catalogs, f"{machine} has no catalog cache of its own"
    assert all(len(t) == 1 for t in texts.values())  # both machines print the same text
    # nothing is left in either machine's spool: all of it went to the one archive
    for machine in ("w1", "w2"):
        leftovers = [p for p in (c.root / machine / "spool").rglob("*") if p.is_file() and not p.name.startswith(".")]
        assert not leftovers, leftovers
    print(f"[measured] scale-out test so far: {time.monotonic() - c.started:.0f} s")
