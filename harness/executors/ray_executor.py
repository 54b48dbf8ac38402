"""Runs a grid's tasks on Ray: the local machine's (started here) or a cluster's (joined). Each
task asks for its stage's `resources`; a worker that dies is retried, a task that raises is not
(its cell fails, recorded, and the grid goes on)."""

from __future__ import annotations

import logging
import os
import socket
import traceback
from typing import Any, Callable

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_DEDUP_LOGS", "0")

import ray  # noqa: E402

from harness.errors import ResourceError  # noqa: E402
from harness.executors.base import Executor, TaskFailed  # noqa: E402
from harness.records import pick_device  # noqa: E402

# System failures (a worker process dying) are retried; Python exceptions are not.
MAX_RETRIES = 2


@ray.remote
def _run(task: Callable, *args):
    record = task(*args, device=pick_device(ray.get_gpu_ids()))
    record.node = f"{socket.gethostname()}/{ray.get_runtime_context().get_node_id()[:12]}"
    return record


class RayExecutor(Executor):
    name = "ray"
    pipelines = True

    def __init__(self, address: str | None = None, num_cpus: int | None = None):
        self.address = address
        self.num_cpus = num_cpus
        self._started = False

    def connect(self) -> None:
        """Join the given cluster, or start a local Ray (unless this process already has one)."""
        if ray.is_initialized():  # e.g. a test or notebook that started Ray itself
            return
        # Workers' own output is not echoed: it would tear the progress bar, and every failure's
        # traceback is recorded on its MLflow run and summarized at the end anyway.
        kwargs = dict(logging_level=logging.WARNING, log_to_driver=False)
        if self.address:
            ray.init(address=self.address, **kwargs)
        else:
            ray.init(num_cpus=self.num_cpus, include_dashboard=False, **kwargs)
        self._started = True

    def start(self, grid) -> None:
        self.connect()
        check_resources(grid, ray.nodes())

    def close(self) -> None:
        if self._started:
            ray.shutdown()
            self._started = False

    def share(self, value: Any) -> Any:
        return ray.put(value)

    def submit(self, task: Callable, args: tuple, resources) -> Any:
        options = dict(num_cpus=resources.num_cpus, num_gpus=resources.num_gpus, max_retries=MAX_RETRIES,
                       retry_exceptions=False)
        return _run.options(**options).remote(task, *args)

    def wait(self, tickets: list, timeout: float) -> list:
        ready, _ = ray.wait(list(tickets), num_returns=1, timeout=timeout)
        return ready

    def result(self, ticket) -> Any:
        try:
            return ray.get(ticket)
        except Exception as exc:  # RayTaskError (the task raised) or a crashed worker
            raise TaskFailed(_describe(exc)) from None


def check_resources(grid, nodes: list[dict]) -> None:
    """Fail before submitting when no node could ever run a stage (Ray would wait forever)."""
    alive = [n.get("Resources", {}) for n in nodes if n.get("Alive", True)]
    for stage in ("train", "attack"):
        need = getattr(grid.resources, stage)
        if not any(r.get("CPU", 0) >= need.num_cpus and r.get("GPU", 0) >= need.num_gpus for r in alive):
            have = ", ".join(f"CPU={r.get('CPU', 0):g} GPU={r.get('GPU', 0):g}" for r in alive) or "no nodes"
            raise ResourceError(
                f"grid {grid.name}: resources.{stage} asks for num_cpus={need.num_cpus:g} "
                f"num_gpus={need.num_gpus:g} per task, but no node of the cluster has that ({have})"
            )


def _describe(exc: BaseException) -> str:
    cause = getattr(exc, "cause", None)
    if isinstance(cause, BaseException):
        return "".join(traceback.format_exception(type(cause), cause, cause.__traceback__))
    return str(exc) or repr(exc)
