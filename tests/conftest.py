"""Every tests/fixtures_*.py is a pytest plugin: each area keeps its fixtures there."""

from pathlib import Path

pytest_plugins = sorted(p.stem for p in Path(__file__).parent.glob("fixtures_*.py"))
