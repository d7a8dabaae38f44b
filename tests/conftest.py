"""Every tests/fixtures_*.py is a pytest plugin: each area keeps its fixtures there."""

import os
from pathlib import Path

# Tests talk only to loopback: no usage data from Prefect's server or client.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")

pytest_plugins = sorted(p.stem for p in Path(__file__).parent.glob("fixtures_*.py"))
