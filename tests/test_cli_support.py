"""Run the installed `newsarchive` command as a user would: a subprocess.

Shared by tests/test_cli*.py (no tests of its own). The environment is hermetic: archive, spool,
sources and Prefect's home all point into the test's temporary folders, and
no proxy is used (tests talk only to 127.0.0.1).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def newsarchive_bin() -> str:
    beside = Path(sys.executable).with_name("newsarchive")
    if beside.exists():
        return str(beside)
    found = shutil.which("newsarchive")
    if found:
        return found
    raise RuntimeError("the newsarchive console script is not installed (pip install -e .)")


def cli_env(tmp: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("NEWSARCHIVE_", "PREFECT_")) and k.lower() not in {"http_proxy", "https_proxy", "all_proxy"}}
    env.update({
        "NEWSARCHIVE_SPOOL": str(tmp / "spool"),
        "PREFECT_HOME": str(tmp / "prefect-home"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "NO_PROXY": "127.0.0.1,localhost",
        "COLUMNS": "200",
        "PYTHONUNBUFFERED": "1",
    })
    env.update(extra)
    return env


def run(*args: str, cwd: Path, env: dict[str, str], timeout: float = 300, check: bool = False,
        text: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([newsarchive_bin(), *map(str, args)], cwd=cwd, env=env, capture_output=True,
                            text=text, timeout=timeout)
    if check and result.returncode != 0:
        err = result.stderr if text else result.stderr.decode("utf-8", "replace")
        raise AssertionError(f"newsarchive {' '.join(map(str, args))} exited {result.returncode}:\n{err}")
    return result


def assert_one_line_error(result: subprocess.CompletedProcess, *needles: str, whole: bool = True) -> str:
    """A failed command: non-zero exit, no traceback, and one `newsarchive: error:` line.

    With `whole`, that line is all of stderr; otherwise it is the last line
    (a crawl may print progress lines before failing). Returns the line.
    """
    stderr = result.stderr if isinstance(result.stderr, str) else result.stderr.decode("utf-8", "replace")
    assert result.returncode != 0, f"expected failure, got exit 0; stderr:\n{stderr}"
    assert "Traceback" not in stderr, stderr
    lines = [l for l in stderr.splitlines() if l.strip()]
    assert lines, "nothing on stderr"
    if whole:
        assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}:\n{stderr}"
    line = lines[-1]
    assert line.startswith("newsarchive") and "error" in line, line
    for needle in needles:
        assert needle in line, f"{needle!r} not in {line!r}"
    return line
