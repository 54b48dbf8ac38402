"""Where a grid's tasks run. The scheduler (harness.scheduler) decides what runs when; an
executor only runs tasks and says which have finished:

- `share(value)`: a handle that tasks receive in place of a large value (the data), made once;
- `submit(task, args, resources)`: start `task(*args, device=...)`; returns a ticket;
- `wait(tickets, timeout)`: the tickets that have finished (an empty list once `timeout` passes);
- `result(ticket)`: the task's record, or `TaskFailed` with the error it raised;
- `submit_cell(...)`: a cell's serving, attack and grading steps (harness.serving), and
  `release(target_hash)` once no cell of that target is left.

`harness.executors.ray_executor` runs tasks on a Ray cluster; `harness.executors.local` runs them one
after another in this process (a debugger works; no Ray needed).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Callable


class TaskFailed(Exception):
    """A task raised (or its worker died); `error` is the traceback as text."""

    def __init__(self, error: str):
        super().__init__(error.strip().splitlines()[-1] if error.strip() else "task failed")
        self.error = error


class Executor(ABC):
    name: str
    address: str | None = None  # the cluster's, for the heartbeat
    # Whether a ticket may stand in for its task's record as another task's argument (Ray's
    # object refs): then a cell is submitted while its target still trains.
    pipelines: bool = False

    def start(self, grid) -> None:
        """Get ready to run the grid's tasks (and fail now if no worker could ever run them)."""

    def close(self) -> None:
        """Release what `start` took."""

    def share(self, value: Any) -> Any:
        return value

    @abstractmethod
    def submit(self, task: Callable, args: tuple, resources) -> Any:
        ...

    @abstractmethod
    def wait(self, tickets: list, timeout: float) -> list:
        ...

    @abstractmethod
    def result(self, ticket) -> Any:
        ...

    def submit_cell(self, planned, data, target, auxiliary, resources) -> Any:
        """Run a planned cell's steps (serve, attack, grade; harness.serving) against `target`
        (its record, or a ticket standing for it). By default all three in one task, so its
        oracle is not isolated and its record says so."""
        from recsec.harness import tasks

        return self.submit(tasks.run_cell, (planned.cell, data, target, planned.cell_hash, auxiliary), resources)

    def release(self, target_hash: str) -> None:
        """No cell of this target is left to run: free what serves it."""
