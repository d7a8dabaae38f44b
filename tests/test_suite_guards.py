"""The suite's own rule: a skip whose reason conftest.py does not declare expected fails the run.

Each case runs pytest on a small suite under a copy of our conftest.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

CONFTEST = (Path(__file__).parent / "conftest.py").read_text(encoding="utf-8")
DECLARATION = "EXPECTED_SKIPS: dict[str, str] = {}"


def run(pytester, tests: str, expected: dict[str, str] | None = None):
    assert DECLARATION in CONFTEST  # the allow-list is where the copies below change it
    conftest = CONFTEST if expected is None else CONFTEST.replace(DECLARATION, f"EXPECTED_SKIPS: dict[str, str] = {expected!r}")
    pytester.makeconftest(conftest)
    pytester.makepyfile(test_small=tests)
    return pytester.runpytest("-p", "no:cacheprovider")


def test_an_undeclared_skip_fails_the_run_and_is_named(pytester):
    result = run(pytester, """
import pytest

def test_runs():
    pass

def test_needs_a_tool():
    pytest.skip("no such tool here")
""")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["*SKIPPED test_small.py::test_needs_a_tool: no such tool here*",
                                 "*1 unexpected skip(s): the run fails*"])


def test_a_declared_skip_passes(pytester):
    result = run(pytester, """
import pytest

def test_needs_a_tool():
    pytest.skip("no such tool here")
""", expected={"no such tool here": "a tool only some machines have"})
    assert result.ret == pytest.ExitCode.OK
    result.assert_outcomes(skipped=1)
    assert "unexpected skip" not in result.stdout.str()


def test_a_missing_import_and_a_skipped_module_fail_the_run(pytester):
    result = run(pytester, """
import pytest

pytest.importorskip("newsarchive_no_such_module")

def test_never_runs():
    pass
""")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*SKIPPED test_small.py: could not import 'newsarchive_no_such_module'*"])


def test_skipif_marks_count_too_and_xfail_is_not_a_skip(pytester):
    result = run(pytester, """
import pytest

@pytest.mark.xfail(strict=True, reason="known bug")
def test_known_bug():
    assert False

@pytest.mark.skipif(True, reason="not on this machine")
def test_marked():
    pass
""")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(xfailed=1, skipped=1)
    out = result.stdout.str()
    assert "SKIPPED test_small.py::test_marked: not on this machine" in out and "test_known_bug:" not in out
