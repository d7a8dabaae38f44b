"""End to end on a real Prefect server: deploy from the repo, a worker, a triggered run with parameters."""

from __future__ import annotations

import re
import subprocess
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
    sources = news_site.write_sources(tmp_path, schedule="0 4 * * *")
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
