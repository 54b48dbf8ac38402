"""The code version a run records: the package version, and the git commit when recsec runs from
a checkout (an editable install), so a leaderboard entry names the exact code that produced it."""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path

from recsec.harness import __version__


@functools.lru_cache(maxsize=1)
def git_commit() -> str | None:
    """The checkout's HEAD, with '.dirty' when tracked files differ from it; None outside git."""
    root = Path(__file__).resolve().parent.parent
    try:
        top = subprocess.run(["git", "-C", str(root), "rev-parse", "--show-toplevel"], capture_output=True,
                             text=True, timeout=10, check=True).stdout.strip()
        if Path(top).resolve() != root:  # e.g. an installed copy inside a venv inside some checkout
            return None
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{head}.dirty" if dirty else head or None


def code_version() -> str:
    """'0.1.0', or '0.1.0+g1a2b3c4d5e' (PEP 440 local version) from a checkout."""
    commit = git_commit()
    return f"{__version__}+g{commit[:10]}{'.dirty' if commit.endswith('.dirty') else ''}" if commit else __version__
