"""Waiting for a condition in tests: poll it, and fail naming what never happened, with details."""

from __future__ import annotations

import time

import pytest


def wait_for(what: str, check, timeout: float, details=lambda: "", every: float = 1.0):
    """check() until it returns something true (returned); fail naming `what` after `timeout` s.

    `timeout` is a bound on waiting, never a speed target; `details()` (logs, states) goes
    into the failure message.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: still not the case after {timeout:.0f} s\n{details()}")
        time.sleep(every)
