"""Shared pytest configuration: offline model hub, repository paths."""

import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("FINSENT_SHARED_DATA", REPO.parent / "shared" / "data"))
