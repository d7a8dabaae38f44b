"""The README's walk-through, run as written: a new user's first commands after `make demo`.

The block under "## Using it" is executed line by line in bash (its last three
lines need the internet or a Prefect server and are only checked to be there);
`newsarchive serve` is started and asked for a memento, then stopped.
"""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from test_cli_support import ROOT, cli_env, run

BIN = Path(sys.executable).parent
NOT_RUN = ("newsarchive crawl bbc-news", "newsarchive deploy", "newsarchive sources")


def walkthrough() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Using it", 1)[1]
    block = re.search(r"((?:^    .*\n)+)", section, re.M).group(1)
    return [line[4:].split("  #", 1)[0].strip() for line in block.splitlines() if line.strip()]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_readme_walkthrough_runs_as_written(tmp_path):
    lines = walkthrough()
    assert lines[0] == ". .venv/bin/activate" and lines[1].startswith("export NEWSARCHIVE_ARCHIVE=./demo-archive")
    assert any(l.startswith(NOT_RUN[0]) for l in lines) and any(l.startswith(NOT_RUN[1]) for l in lines)
    port = free_port()  # the README's 8731 may be taken on a busy machine: same commands, another port
    env = cli_env(tmp_path)
    made = run("demo", "--port", port, "--no-prefect", cwd=tmp_path, env=env, timeout=600)  # `make demo`
    assert made.returncode == 0, made.stderr

    script = ["set -euo pipefail"]
    for line in lines:
        if line.startswith(NOT_RUN) or line.startswith("newsarchive serve"):
            continue
        line = line.replace(". .venv/bin/activate", f". {BIN}/activate").replace("8731", str(port))
        if line.startswith("newsarchive demo"):
            line += f" --port {port}"
        script += [f"echo '::: {line}'", f"echo '::: {line}' >&2", line]
    done = subprocess.run(["bash", "-c", "\n".join(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    out = dict(_sections(done.stdout))

    url = f"http://127.0.0.1:{port}/2024/05/13/seagrass-meadows-return-to-the-bay.html"
    assert "1 capture of " + url in out["newsarchive list $URL"]
    assert out["newsarchive get $URL --as text"].startswith("Seagrass meadows return to the bay after a decade\n")
    captures = json.loads(out["newsarchive list $URL --json"])
    assert [c["mime"] for c in captures] == ["text/html", "warc/revisit"]
    assert captures[0]["digest"] == captures[1]["digest"]
    assert "<article" in out["newsarchive get $URL --at 2024-05 --as html"]
    assert out["newsarchive export --wacz --source demo -o demo.wacz"].startswith("wrote demo.wacz: ")
    assert (tmp_path / "demo.wacz").stat().st_size > 0
    assert "rebuilt the catalog of ./demo-archive" in done.stderr

    # `newsarchive serve`: answers at 127.0.0.1:8080 as the README says (here: another free port)
    serve_port = free_port()
    server = subprocess.Popen([str(BIN / "newsarchive"), "serve", "--port", str(serve_port)], cwd=tmp_path,
                              env={**env, "NEWSARCHIVE_ARCHIVE": "./demo-archive"}, stderr=subprocess.PIPE, text=True)
    try:
        assert f"serving ./demo-archive at http://127.0.0.1:{serve_port}/" in server.stderr.readline()
        body = _get_when_up(f"http://127.0.0.1:{serve_port}/web/timemap/link/{url}")
        assert body.count('rel="') >= 4 and url in body
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(60)


def _sections(stdout: str):
    name, lines = None, []
    for line in stdout.splitlines(keepends=True):
        if line.startswith("::: "):
            if name is not None:
                yield name, "".join(lines)
            name, lines = line[4:].strip(), []
        else:
            lines.append(line)
    if name is not None:
        yield name, "".join(lines)


def _get_when_up(url: str, deadline: float = 120) -> str:
    end = time.monotonic() + deadline
    while True:
        try:
            with urllib.request.urlopen(url, timeout=30) as resp:
                return resp.read().decode()
        except OSError:
            if time.monotonic() > end:
                raise
            time.sleep(0.2)
