"""The running driver's heartbeat, kept on its MLflow experiment so that `recsec status`, from any
shell or machine that reaches the tracking server, can tell a live grid from a dead one and show
its progress. MLflow only sees a cell once it is done; the heartbeat covers the time before."""

from __future__ import annotations

import os
import socket
import time
from typing import Any

# A driver beats at least this often while it waits on tasks, so a stale beat means a dead driver.
INTERVAL_S = 30.0
STALE_AFTER_S = 3 * INTERVAL_S


class Heartbeat:
    def __init__(self, tracker, experiment_id: str, *, cells: int, tasks: int, ray_address: str | None):
        self.tracker, self.experiment_id = tracker, experiment_id
        self.state: dict[str, Any] = {
            "state": "running", "host": socket.gethostname(), "pid": os.getpid(),
            "started": time.time(), "cells": cells, "tasks": tasks, "tasks_done": 0,
            "finished": 0, "failed": 0, "ray": ray_address or "local",
            "log": os.environ.get("RECSEC_DRIVER_LOG") or None,
        }
        self._last = 0.0
        self.beat(force=True)

    def beat(self, *, tasks_done: int | None = None, finished: int | None = None, failed: int | None = None,
             force: bool = False) -> None:
        for key, value in (("tasks_done", tasks_done), ("finished", finished), ("failed", failed)):
            if value is not None:
                self.state[key] = value
        now = time.time()
        if force or now - self._last >= 5.0:  # one MLflow write per 5 s at most, however fast cells finish
            self.state["updated"] = now
            self.tracker.set_driver_state(self.experiment_id, self.state)
            self._last = now

    def close(self, state: str, **counts: int) -> None:
        self.state["state"] = state
        self.beat(force=True, **counts)


def describe(state: dict[str, Any] | None, now: float | None = None) -> str:
    """One line for `recsec status`."""
    if not state:
        return "driver: none has run this grid yet"
    now = time.time() if now is None else now
    where = f"{state['host']} pid {state['pid']}"
    progress = (f"{state['tasks_done']}/{state['tasks']} tasks done, {state['finished']} of {state['cells']} "
                f"cells finished, {state['failed']} failed")
    age = now - state.get("updated", state["started"])
    log = f"; log {state['log']}" if state.get("log") else ""
    if state["state"] == "running":
        if age > STALE_AFTER_S:
            return (f"driver: lost ({where} last beat {_ago(age)}; {progress}); "
                    f"run the grid again to resume{log}")
        return f"driver: running on {where} for {_ago(now - state['started'], suffix='')}; {progress}{log}"
    return f"driver: {state['state']} {_ago(age)} ({where}; {progress}){log}"


def _ago(seconds: float, suffix: str = " ago") -> str:
    seconds = max(0, int(seconds))
    text = f"{seconds}s" if seconds < 120 else f"{seconds // 60}m" if seconds < 7200 else f"{seconds // 3600}h"
    return text + suffix
