"""Unattended operation against a real `prefect server start` (docs/prefect.md, "When
things are killed"): schedules that fire, crawl-all on one worker with `--limit 1`,
workers that stop on SIGTERM/SIGINT, and killed runs (CLI, flow-run process) that
never block the next run of their source, which salvages what they left.

Every wait has a deadline and says what it waited for; nothing asserts a duration.
Measured times are printed (run with -s to see them).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from conditions import wait_for
from fixtures_prefect import REPO, VENV_BIN, read_artifacts
from loopback import closed_port
from proctree import TAG_VAR, alive, children, cmdline, descendants, kill_tagged, wait_gone
from test_cli_support import assert_one_line_error, cli_env

FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
SLOW = {"depth": 1, "delay": 0.5, "concurrency": 1}  # ~20 s of crawling: time to kill it mid-crawl


# --------------------------------------------------------------------------- helpers

def newsarchive(*args, env: dict, timeout: float = 600, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run([str(VENV_BIN / "newsarchive"), *map(str, args)], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)


def trigger(env: dict, deployment: str, *params: str) -> str:
    """`prefect deployment run DEPLOYMENT --param ...`; the flow run id."""
    args = [str(VENV_BIN / "prefect"), "deployment", "run", deployment]
    for p in params:
        args += ["--param", p]
    done = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    match = re.search(r"UUID:\s*([0-9a-f-]{36})", done.stdout)
    assert done.returncode == 0 and match, f"prefect deployment run {deployment}:\n{done.stdout}{done.stderr}"
    return match.group(1)


def flow_run(server, run_id):
    from prefect.client.orchestration import get_client

    with server.client_settings(), get_client(sync_client=True) as client:
        return client.read_flow_run(run_id)


def runs_of(server, deployment: str) -> list:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    with server.client_settings(), get_client(sync_client=True) as client:
        dep = client.read_deployment_by_name(deployment)
        return client.read_flow_runs(deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[dep.id])),
                                     limit=100)


def state_of(server, run_id) -> str:
    run = flow_run(server, run_id)
    return run.state.type.value if run.state else "NONE"


def slot(server, source: str):
    from prefect.client.orchestration import get_client

    with server.client_settings(), get_client(sync_client=True) as client:
        return client.read_global_concurrency_limit_by_name(f"crawl-source-{source}")


def crawl_process(root: int, source: str) -> int | None:
    """The `python -m spiders.crawl --source SOURCE` process below `root`, if any."""
    for pid in descendants(root):
        argv = cmdline(pid)
        if "spiders.crawl" in argv and argv[argv.index("--source") + 1] == source:
            return pid
    return None


def open_warcs(spool: Path) -> list[Path]:
    return [p for p in spool.rglob("*.warc.gz.open") if p.stat().st_size > 0]


def mid_crawl(root: int, source: str, spool: Path) -> int | None:
    """The crawl process once it is writing a WARC (pages are being captured)."""
    pid = crawl_process(root, source)
    return pid if pid and open_warcs(spool) else None


def warc_urls(path: Path) -> set[str]:
    """Target URIs of the responses in a (possibly torn) WARC."""
    from warcio.archiveiterator import ArchiveIterator

    urls = set()
    try:
        with open(path, "rb") as fh:
            for record in ArchiveIterator(fh):
                if record.rec_type == "response":
                    urls.add(record.rec_headers.get_header("WARC-Target-URI"))
    except Exception:  # a torn tail: what came before it counts
        pass
    return urls


def assert_archive_valid_and_holding(archive: Path, urls: set[str]) -> None:
    """Every WARC passes `warcio check`, and each of `urls` has a capture."""
    from storage.archive import open_archive

    warcs = sorted(archive.rglob("*.warc.gz"))
    assert warcs, f"no WARC in {archive}"
    for warc in warcs:
        check = subprocess.run([str(VENV_BIN / "warcio"), "check", str(warc)], capture_output=True, text=True)
        assert check.returncode == 0, f"warcio check {warc}: {check.stdout}{check.stderr}"
    found = open_archive(str(archive))
    missing = [u for u in sorted(urls) if not found.list(u)]
    assert not missing, f"{len(missing)} URL(s) captured by the killed run are not in the archive: {missing[:5]}"


def sources_file(site, tmp: Path, **sources: dict) -> Path:
    path = tmp / "sources.toml"
    path.write_text("\n".join(site.sources_toml(name, **opts) for name, opts in sources.items()), encoding="utf-8")
    return path


def deploy(env: dict, sources: Path, archive: Path, pool: str) -> None:
    done = newsarchive("deploy", "--sources", sources, "--archive", archive, "--pool", pool, env=env)
    assert done.returncode == 0, done.stderr + done.stdout


def note_seconds(text: str, what: str) -> float | None:
    match = re.search(rf"{what}.*?after (\d+) s", text)
    return float(match.group(1)) if match else None


@pytest.fixture
def workers(prefect_server):
    """Start workers with workers.start(...) (= prefect_server.start); all stopped, with
    their flow runs, when the test ends, passed or not."""
    started = []

    class Workers:
        @staticmethod
        def start(*args, **kwargs):
            proc = prefect_server.start(*args, **kwargs)
            started.append(proc)
            return proc

    yield Workers
    prefect_server.stop(started)


@pytest.fixture
def tagged_env(tmp_path):
    """cli_env for commands this test starts (no PREFECT_API_URL) and kills; whatever of
    them is left at the end is killed."""
    tag = f"unattended-{uuid.uuid4().hex[:12]}"
    yield cli_env(tmp_path, **{TAG_VAR: tag})
    kill_tagged(tag)


# --------------------------------------------------------------------------- the Prefect server is down

@pytest.mark.parametrize("command", ["deploy", "worker", "crawl"])
def test_with_the_server_down_each_command_is_one_line_naming_it(news_site, tmp_path, command):
    sources = news_site.write_sources(tmp_path)
    args = {"deploy": ["deploy", "--sources", sources, "--archive", tmp_path / "a"],
            "worker": ["worker", "--name", "w1", "--limit", "1"],
            "crawl": ["crawl", "testnews", "--sources", sources, "--archive", tmp_path / "a"]}[command]
    with closed_port() as port:  # held bound, so nothing listens there for the whole command
        url = f"http://127.0.0.1:{port}/api"
        result = newsarchive(*args, env=cli_env(tmp_path, PREFECT_API_URL=url), timeout=120, cwd=tmp_path)
    line = assert_one_line_error(result, url)
    assert "does not answer" in line and "prefect server start" in line
    assert "unexpected error" not in line


# --------------------------------------------------------------------------- schedules, crawl-all, SIGTERM

@pytest.mark.prefect_server
def test_a_schedule_fires_crawl_all_completes_on_one_worker_and_sigterm_stops_it_all(prefect_server, workers,
                                                                                      news_site, tmp_path):
    pool = "unattended-solo"
    sources = sources_file(news_site, tmp_path, testnews={"depth": 1, "schedule": "* * * * *"}, slowtest=SLOW)
    archive = tmp_path / "archive"
    env = {**prefect_server.env, "NEWSARCHIVE_SPOOL": str(tmp_path / "spool"), "PREFECT_WORKER_QUERY_SECONDS": "2"}
    deploy(env, sources, archive, pool)
    deployed = time.monotonic()
    worker = workers.start([VENV_BIN / "newsarchive", "worker", "--pool", pool, "--limit", "1",
                            "--name", "solo"], "solo.log", env=env)
    log = lambda: prefect_server.log("solo.log")[-5000:]  # noqa: E731

    # a run the scheduler made (not one triggered by hand) completes, and its captures are in the archive
    def scheduled_and_completed():
        return [r for r in runs_of(prefect_server, "crawl-source/testnews")
                if r.auto_scheduled and r.state and r.state.type.value == "COMPLETED"]
    run, *_ = wait_for("a scheduler-made run of crawl-source/testnews Completed", scheduled_and_completed, 420, log,
                       every=3)
    print(f"\n[measured] deploy -> scheduled run Completed: {time.monotonic() - deployed:.0f} s "
          f"(slot {run.expected_start_time:%H:%M:%S}, completed {run.end_time:%H:%M:%S})")
    assert "auto-scheduled" in run.tags
    url = news_site.article("harbour-ferries")["url"]
    listed = newsarchive("list", url, "--json", "--archive", archive, env=env)
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout)[0]["url"] == url

    # crawl-all on the same worker: it holds the worker's one slot, so its child run is not picked up;
    # after pickup_seconds it is cancelled and crawled inside crawl-all, which completes
    started = time.monotonic()
    all_id = trigger(env, "crawl-all/all", 'names=["testnews"]', "pickup_seconds=15")
    wait_for("crawl-all finished", lambda: state_of(prefect_server, all_id) in FINAL, 600, log, every=3)
    parent = flow_run(prefect_server, all_id)
    assert parent.state.type.value == "COMPLETED", f"{parent.state.message}\n{log()}"
    print(f"[measured] crawl-all triggered -> Completed on one --limit 1 worker: {time.monotonic() - started:.0f} s")
    with prefect_server.client_settings():
        table = json.loads(read_artifacts(key="crawl-all", flow_run_id=all_id)[0]["data"])
    row, = table
    assert row["source"] == "testnews" and row["state"] == "COMPLETED"
    assert row["ran"] == "in crawl-all (no worker took it within 15 s)", row
    assert state_of(prefect_server, row["flow_run_id"]) == "COMPLETED"
    children_runs = [r for r in runs_of(prefect_server, "crawl-source/testnews")
                     if r.parent_task_run_id and not r.auto_scheduled]
    assert any(r.state.type.value == "CANCELLED" and "no worker took it" in (r.state.message or "")
               for r in children_runs), [(r.name, r.state) for r in children_runs]

    # SIGTERM while a crawl runs: the worker and every process below it are gone, the run ended Crashed
    from prefect.client.orchestration import get_client

    with prefect_server.client_settings(), get_client(sync_client=True) as client:
        client.pause_deployment(client.read_deployment_by_name("crawl-source/testnews").id)
    slow_id = trigger(env, "crawl-source/slowtest")
    wait_for("slowtest crawling on the worker", lambda: mid_crawl(worker.pid, "slowtest", tmp_path / "spool"),
             420, log, every=0.5)
    tree = [worker.pid, *descendants(worker.pid)]
    assert any("prefect.engine" in " ".join(cmdline(p)) for p in tree), [cmdline(p) for p in tree]
    signalled = time.monotonic()
    os.kill(worker.pid, signal.SIGTERM)
    left = wait_gone(tree, 60)
    assert not left, f"still running after SIGTERM: {[cmdline(p) for p in left]}\n{log()}"
    print(f"[measured] SIGTERM -> worker and its {len(tree) - 1} descendants gone: "
          f"{time.monotonic() - signalled:.1f} s")
    assert worker.wait(10) == 128 + signal.SIGTERM
    wait_for("the interrupted run in a final state", lambda: state_of(prefect_server, slow_id) in FINAL, 60, log)
    assert state_of(prefect_server, slow_id) in {"CRASHED", "CANCELLED"}
    assert slot(prefect_server, "slowtest").active_slots == 0  # its slot went with it


# --------------------------------------------------------------------------- a killed flow-run process

@pytest.mark.prefect_server
def test_a_killed_flow_run_never_blocks_the_next_which_salvages_it_and_sigint_stops_the_worker(
        prefect_server, workers, news_site, tmp_path):
    pool = "unattended-kill"
    spool = tmp_path / "spool"
    sources = sources_file(news_site, tmp_path, slowtest=SLOW)
    archive = tmp_path / "archive"
    env = {**prefect_server.env, "NEWSARCHIVE_SPOOL": str(spool), "PREFECT_WORKER_QUERY_SECONDS": "2"}
    deploy(env, sources, archive, pool)
    worker = workers.start([VENV_BIN / "newsarchive", "worker", "--pool", pool, "--limit", "1"],
                           "kill.log", env=env)
    log = lambda: prefect_server.log("kill.log")[-5000:]  # noqa: E731

    first = trigger(env, "crawl-source/slowtest")
    crawl = wait_for("the first run crawling", lambda: mid_crawl(worker.pid, "slowtest", spool), 300, log, every=0.3)
    engine = int(Path(f"/proc/{crawl}/stat").read_text().rsplit(")", 1)[1].split()[1])  # the flow-run process
    assert "prefect.engine" in " ".join(cmdline(engine))
    os.kill(engine, signal.SIGKILL)  # that process alone: its crawl must stop by itself
    killed = time.time()
    wait_for("the killed run Crashed", lambda: state_of(prefect_server, first) in FINAL, 60, log)
    assert state_of(prefect_server, first) == "CRASHED"
    assert not wait_gone([crawl], 60), "the crawl outlived its flow-run process"
    left = {p: warc_urls(p) for p in spool.rglob("*.warc.gz*")}  # what it left, torn or closed
    assert left

    second = trigger(env, "crawl-source/slowtest")
    wait_for("the next run finished", lambda: state_of(prefect_server, second) in FINAL, 600, log, every=2)
    run = flow_run(prefect_server, second)
    assert run.state.type.value == "COMPLETED", f"{run.state.message}\n{log()}"
    began = run.start_time.timestamp() - killed
    print(f"\n[measured] flow-run process SIGKILLed -> next run Running after {began:.0f} s (trigger included)")
    with prefect_server.client_settings():
        markdown = read_artifacts(key="crawl-slowtest", flow_run_id=second)[0]["data"]
    assert "found a stale spool lock" in markdown, markdown
    assert re.search(r"held by flow run crawl-slowtest \(\S+, Crashed\), which died holding it", markdown), markdown
    print(f"[measured] stale slot of the killed flow run freed after {note_seconds(markdown, 'stale holder')} s "
          f"of waiting by the next run")
    assert slot(prefect_server, "slowtest").active_slots == 0
    assert_archive_valid_and_holding(archive, set().union(*left.values()))

    # SIGINT (Ctrl-C) while a crawl runs: the same clean stop as SIGTERM
    third = trigger(env, "crawl-source/slowtest")
    wait_for("the third run crawling", lambda: mid_crawl(worker.pid, "slowtest", spool), 300, log, every=0.5)
    tree = [worker.pid, *descendants(worker.pid)]
    signalled = time.monotonic()
    os.kill(worker.pid, signal.SIGINT)
    gone = wait_gone(tree, 60)
    assert not gone, f"still running after SIGINT: {[cmdline(p) for p in gone]}\n{log()}"
    print(f"[measured] SIGINT -> worker and its {len(tree) - 1} descendants gone: {time.monotonic() - signalled:.1f} s")
    assert worker.wait(10) == 128 + signal.SIGINT
    wait_for("the interrupted run in a final state", lambda: state_of(prefect_server, third) in FINAL, 60, log)
    assert state_of(prefect_server, third) in {"CRASHED", "CANCELLED"}


@pytest.mark.prefect_server
def test_a_killed_newsarchive_worker_leaves_no_prefect_worker_behind(prefect_server, workers, tmp_path):
    env = {**prefect_server.env, "PREFECT_WORKER_QUERY_SECONDS": "2"}
    worker = workers.start([VENV_BIN / "newsarchive", "worker", "--pool", "unattended-sigkill"], "sigkill.log",
                           env=env)
    prefect_worker = wait_for("prefect worker start running under newsarchive worker",
                              lambda: next((p for p in children(worker.pid) if "worker" in cmdline(p)
                                            and "start" in cmdline(p)), None),
                              120, lambda: prefect_server.log("sigkill.log"))
    os.kill(worker.pid, signal.SIGKILL)
    assert not wait_gone([prefect_worker], 30), "prefect worker start outlived newsarchive worker"
    worker.wait(10)


# --------------------------------------------------------------------------- a killed `newsarchive crawl`

def start_crawl(env: dict, sources: Path, archive: Path, out: Path) -> subprocess.Popen:
    with open(out, "wb") as fh:
        return subprocess.Popen([str(VENV_BIN / "newsarchive"), "crawl", "slowtest", "--sources", str(sources),
                                 "--archive", str(archive)], cwd=out.parent, env=env, stdout=fh,
                                stderr=subprocess.STDOUT, start_new_session=True)


@pytest.mark.prefect_server
def test_a_killed_crawl_with_a_real_server_never_blocks_the_next(prefect_server, news_site, tmp_path):
    spool = tmp_path / "spool"
    sources = sources_file(news_site, tmp_path, slowtest=SLOW)
    archive = tmp_path / "archive"
    env = {**prefect_server.env, "NEWSARCHIVE_SPOOL": str(spool), "COLUMNS": "200"}
    proc = start_crawl(env, sources, archive, tmp_path / "killed.out")
    try:
        wait_for("the crawl capturing pages", lambda: mid_crawl(proc.pid, "slowtest", spool), 300,
                 lambda: (tmp_path / "killed.out").read_text(errors="replace")[-3000:], every=0.3)
        below = descendants(proc.pid)
        os.kill(proc.pid, signal.SIGKILL)  # `kill -9 PID`: the command alone, not its group
        killed = time.monotonic()
        proc.wait()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    # nothing survives it: the crawl subprocess stops by itself (--stop-with-parent) and closes its WARCs
    assert not wait_gone(below, 60), [cmdline(p) for p in below if alive(p)]
    assert slot(prefect_server, "slowtest").active_slots == 1  # the killed run's lease, not renewed any more
    left = {p: warc_urls(p) for p in spool.rglob("*.warc.gz*")}

    again = newsarchive("crawl", "slowtest", "--sources", sources, "--archive", archive, env=env, cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    out = again.stdout
    assert "found a stale spool lock" in out, out
    assert re.search(r"held by flow run crawl-slowtest \(\S+, Running\), which died holding it", out), out
    waited = note_seconds(out, "stale holder")
    print(f"\n[measured] CLI SIGKILLed (real server) -> stale slot freed after {waited} s of waiting "
          f"({time.monotonic() - killed:.0f} s from the kill to the end of the next run)")
    killed_run = re.search(r"held by flow run crawl-slowtest \((\S+), Running\)", out).group(1)
    assert state_of(prefect_server, killed_run) == "CRASHED"  # marked by the run that found it dead
    assert slot(prefect_server, "slowtest").active_slots == 0
    assert_archive_valid_and_holding(archive, set().union(*left.values()))


@pytest.mark.prefect_server
def test_a_killed_crawl_with_the_temporary_server_never_blocks_the_next(news_site, tmp_path, tagged_env):
    spool = tmp_path / "spool"
    sources = sources_file(news_site, tmp_path, slowtest=SLOW)
    archive = tmp_path / "archive"
    env = tagged_env  # no PREFECT_API_URL: the command runs a temporary server of its own
    proc = start_crawl(env, sources, archive, tmp_path / "killed.out")
    try:
        wait_for("the crawl capturing pages", lambda: mid_crawl(proc.pid, "slowtest", spool), 300,
                 lambda: (tmp_path / "killed.out").read_text(errors="replace")[-3000:], every=0.3)
        below = descendants(proc.pid)
        assert any("prefect.server.api.server:create_app" in cmdline(p) for p in below), [cmdline(p) for p in below]
        os.killpg(proc.pid, signal.SIGKILL)  # the whole group at once: the crawl dies mid-write too
        proc.wait()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert not wait_gone(below, 60), [cmdline(p) for p in below if alive(p)]
    torn = open_warcs(spool)
    assert torn, "the killed crawl left no .open WARC"
    left = {p: warc_urls(p) for p in torn}

    again = newsarchive("crawl", "slowtest", "--sources", sources, "--archive", archive, env=env, cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "Traceback" not in again.stderr
    assert "found a stale spool lock" in again.stdout, again.stdout
    assert "recovered (slowtest) from a killed crawl" in again.stdout, again.stdout
    assert not open_warcs(spool)
    assert_archive_valid_and_holding(archive, set().union(*left.values()))
    server_log = (tmp_path / "prefect-home" / "temporary-server.log").read_text()
    print("\n[measured] temporary server start: " + ", ".join(re.findall(r"after ([\d.]+ s)", server_log)))
