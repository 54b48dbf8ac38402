"""Runs a grid's tasks one after another in this process: no Ray, a debugger and a profiler
work, and a machine with torch but no cluster runs grids. A stage that asks for a GPU gets cuda
when torch sees one."""

from __future__ import annotations

import socket
import traceback
from typing import Any, Callable

from recsec.harness.executors.base import Executor, TaskFailed
from recsec.harness.records import pick_device


class LocalExecutor(Executor):
    name = "local"

    def __init__(self, device: str | None = None):
        self.device = device  # every task's, when given; else cuda for a stage that asks for a GPU
        self._queue: list[tuple[object, Callable, tuple, Any]] = []  # ticket, task, args, resources
        self._done: dict[object, tuple[bool, Any]] = {}

    def submit(self, task: Callable, args: tuple, resources) -> object:
        ticket = object()
        self._queue.append((ticket, task, args, resources))
        return ticket

    def wait(self, tickets: list, timeout: float) -> list:
        """Run the oldest submitted task among `tickets` (timeouts do not apply: it runs here)."""
        finished = [t for t in tickets if t in self._done]
        if finished:
            return finished[:1]
        wanted = set(map(id, tickets))
        for index, (ticket, task, args, resources) in enumerate(self._queue):
            if id(ticket) in wanted:
                del self._queue[index]
                self._run(ticket, task, args, resources)
                return [ticket]
        return []

    def _run(self, ticket, task: Callable, args: tuple, resources) -> None:
        device = self.device or pick_device([0] if resources.num_gpus > 0 else None)
        try:
            record = task(*args, device=device)
            record.node = f"{socket.gethostname()}/local"
            self._done[ticket] = (True, record)
        except Exception:  # the cell fails, the grid goes on
            self._done[ticket] = (False, traceback.format_exc())

    def result(self, ticket) -> Any:
        ok, value = self._done.pop(ticket)
        if not ok:
            raise TaskFailed(value)
        return value
