"""The real `recsec` command in a subprocess, as a user runs it: its own cache and sqlite store in
the working directory, and optionally plugin modules of tests/plugins on its path."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

PLUGINS = Path(__file__).resolve().parents[1] / "plugins"


def recsec(*args: str, cwd: Path, plugins: tuple[str, ...] = (), env: dict[str, str] | None = None,
           popen: bool = False) -> subprocess.CompletedProcess | subprocess.Popen:
    """Run `recsec ARGS` in `cwd`; `plugins` are module names of tests/plugins ($RECSEC_PLUGINS);
    `env` adds variables; `popen` returns the running process (in its own session) instead."""
    environment = {**os.environ, "RECSEC_CACHE_DIR": str(cwd / "cache"), "PYTHONUNBUFFERED": "1", **(env or {})}
    environment.pop("MLFLOW_TRACKING_URI", None)  # the default: sqlite in the working directory
    if plugins:
        environment["RECSEC_PLUGINS"] = ",".join(plugins)
        environment["PYTHONPATH"] = os.pathsep.join([str(PLUGINS), environment.get("PYTHONPATH", "")])
    command = [sys.executable, "-m", "recsec.harness.cli", *args]
    if popen:
        return subprocess.Popen(command, cwd=cwd, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, start_new_session=True)
    return subprocess.run(command, cwd=cwd, env=environment, capture_output=True, text=True, timeout=600)
