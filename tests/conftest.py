"""Shared pytest configuration: offline model hub, repository paths."""

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("FINSENT_SHARED_DATA", REPO.parent / "shared" / "data"))


def pytest_collection_modifyitems(config, items):
    """Markers by place, the same way everywhere: every test under ``tests/integration`` is
    ``integration`` (it needs the real local stack). ``slow`` is still set by the test itself."""
    for item in items:
        if "integration" in Path(str(item.fspath)).relative_to(REPO).parts[:2]:
            item.add_marker(pytest.mark.integration)
