"""Shared pytest fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Every Ray a test starts (local, or the multi-node cluster of test_cluster.py) stays on the
# loopback interface; Ray reads this once, when first imported.
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")

REPO_ROOT = Path(__file__).resolve().parents[1]  # tests/ is one level below the repository


@pytest.fixture(scope="session")
def shared_data_dir() -> Path:
    """The read-only real datasets: `$RECSEC_SHARED_DATA`, else `<repo>/../shared/data`.

    Skips the test when absent (CI always has it; a fresh checkout elsewhere may not).
    """
    path = Path(os.environ.get("RECSEC_SHARED_DATA") or REPO_ROOT.parent / "shared" / "data")
    if not path.is_dir():
        pytest.skip(f"shared datasets not found at {path} (set RECSEC_SHARED_DATA to their folder)")
    return path


@pytest.fixture
def two_threads():
    """torch on two threads, as on a 2-core CI runner, whatever this machine's default."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)
