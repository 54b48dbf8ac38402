"""`recsec run --detach`: the same run as a background process that outlives the shell, logging
to a file; `recsec status` then follows it from any shell through MLflow."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path


def default_log(grid_name: str) -> Path:
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", grid_name)
    return Path("recsec-logs") / f"{safe}-{time.strftime('%Y%m%d-%H%M%S')}.log"


def launch(argv: list[str], log: Path) -> int:
    """Start `recsec <argv>` in a new session (so closing the terminal does not hang it up), with
    stdin closed and stdout/stderr to `log`. Returns its pid."""
    log = log.expanduser().resolve()
    log.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "RECSEC_DRIVER_LOG": str(log)}
    with open(log, "ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "recsec.harness.cli", *argv], stdin=subprocess.DEVNULL, stdout=out,
            stderr=subprocess.STDOUT, start_new_session=True, env=env,
        )
    return process.pid
