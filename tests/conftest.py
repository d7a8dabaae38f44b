"""Every tests/fixtures_*.py is a pytest plugin: each area keeps its fixtures there.

A skipped test fails the run unless its reason is declared expected below: a
missing requirement (test data, a tool, an import) must turn the run red, not
quietly shrink it. xfail marks are not skips and are not affected.
"""

import os
from pathlib import Path

import pytest

# Tests talk only to loopback: no usage data from Prefect's server or client.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")

# pytester: tests/test_suite_guards.py runs pytest on small suites to check the rules below.
pytest_plugins = ["pytester"] + sorted(p.stem for p in Path(__file__).parent.glob("fixtures_*.py"))

# Skip reasons (the exact text after "Skipped: ") that may pass a run, each with why.
# Empty: every test runs everywhere `make test` runs.
EXPECTED_SKIPS: dict[str, str] = {}

_unexpected_skips: list[tuple[str, str]] = []


def _skip_reason(report) -> str:
    longrepr = report.longrepr
    message = longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)
    return message.removeprefix("Skipped: ")


def _note_skip(report) -> None:
    if report.skipped and not hasattr(report, "wasxfail"):
        reason = _skip_reason(report)
        if reason not in EXPECTED_SKIPS:
            _unexpected_skips.append((report.nodeid, reason))


def pytest_runtest_logreport(report):
    _note_skip(report)


def pytest_collectreport(report):
    _note_skip(report)  # a module skipped as a whole (pytest.skip(allow_module_level=True))


def pytest_sessionfinish(session, exitstatus):
    if _unexpected_skips and exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter):
    if not _unexpected_skips:
        return
    terminalreporter.section("skips not declared expected (conftest.EXPECTED_SKIPS)", red=True)
    for nodeid, reason in _unexpected_skips:
        terminalreporter.line(f"SKIPPED {nodeid}: {reason}", red=True)
    terminalreporter.line(f"{len(_unexpected_skips)} unexpected skip(s): the run fails", red=True, bold=True)
