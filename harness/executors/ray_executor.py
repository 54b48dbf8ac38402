"""Runs a grid's tasks on Ray: the local machine's (started here) or a cluster's (joined). Each
task asks for its stage's `resources`; a worker that dies is retried, and so is an attack whose
target's server died (the server restarts); a task that raises is not (its cell fails, recorded,
and the grid goes on)."""

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

from recsec.harness.errors import ResourceError  # noqa: E402
from recsec.harness import tasks  # noqa: E402
from recsec.harness.executors.base import Executor, TaskFailed  # noqa: E402
from recsec.harness.records import pick_device  # noqa: E402
from recsec.harness.serving import OracleClient, SessionLost, TargetServer  # noqa: E402

# System failures (a worker process dying) are retried; Python exceptions are not.
MAX_RETRIES = 2


def _node() -> str:
    return f"{socket.gethostname()}/{ray.get_runtime_context().get_node_id()[:12]}"


@ray.remote
def _run(task: Callable, *args):
    record = task(*args, device=pick_device(ray.get_gpu_ids()))
    record.node = _node()
    return record


# One per trained target, shared by the cells that attack it: it holds the target, the data and
# the output defenses, and answers each cell's queries. No CPU is reserved for it (it waits on
# queries far more than it computes), so it never holds a task slot. A server whose process dies
# comes back (Ray builds it again from the same target and data); the sessions it held are lost,
# so their attacks start again (`SessionLost`, retried).
_Server = ray.remote(num_cpus=0, max_concurrency=4, max_restarts=MAX_RETRIES,
                     max_task_retries=MAX_RETRIES)(TargetServer)


@ray.remote
def _attack(cell, view, server, session: str):
    """A cell's attack step: this process holds the view and an oracle client, nothing else."""
    def send(method: str, *args):
        try:
            return ray.get(server.call.remote(session, method, *args))
        except ray.exceptions.RayTaskError as exc:  # what the server refused (e.g. past the budget)
            raise exc.cause from None
        except ray.exceptions.RayActorError:  # the server died and will not answer this query
            raise SessionLost("the target's server died mid-attack") from None

    ray.get(server.reopen.remote(cell, session))  # a no-op but on a retry after the server restarted
    client = OracleClient(send, ray.get(server.describe.remote(session)))
    outcome = tasks.attack_cell(cell, view, client, device=pick_device(ray.get_gpu_ids()))
    outcome.node = _node()
    return outcome


@ray.remote
def _grade(cell, data, target, view, outcome, counts, cell_hash: str):
    record = tasks.grade_cell(cell, data, target, view, outcome, counts, cell_hash,
                              device=pick_device(ray.get_gpu_ids()), oracle_isolated=True)
    record.node = outcome.node
    return record


class RayExecutor(Executor):
    name = "ray"
    pipelines = True

    def __init__(self, address: str | None = None, num_cpus: int | None = None, isolate_oracle: bool = True):
        self.address = address
        self.num_cpus = num_cpus
        # False: each cell serves its target inside its own task, as before the server existed
        # (benchmarks/serving.py measures what isolation costs against that).
        self.isolate_oracle = isolate_oracle
        self._started = False
        self._servers: dict[str, Any] = {}  # target hash -> its TargetServer actor

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

    def submit_cell(self, planned, data, target, auxiliary, resources) -> Any:
        """Serve (the target's actor opens the cell's session and grants its view), attack (a
        task with the view and an oracle client), grade (a task with the target): chained by
        object refs, so the ticket is the grade's and an error anywhere fails the cell."""
        if not self.isolate_oracle:
            return super().submit_cell(planned, data, target, auxiliary, resources)
        cell, cell_hash = planned.cell, planned.cell_hash
        if planned.target_hash not in self._servers:
            self._servers[planned.target_hash] = _Server.remote(data, target)
        server = self._servers[planned.target_hash]
        options = dict(num_cpus=resources.num_cpus, num_gpus=resources.num_gpus, max_retries=MAX_RETRIES,
                       retry_exceptions=False)
        view = server.open.remote(cell, cell_hash, auxiliary)
        # an attack whose server lost its session starts again, with a fresh session
        outcome = _attack.options(**{**options, "retry_exceptions": [SessionLost]}).remote(cell, view, server, cell_hash)
        counts = server.close.remote(cell_hash, outcome)
        return _grade.options(**options).remote(cell, data, target, view, outcome, counts, cell_hash)

    def release(self, target_hash: str) -> None:
        server = self._servers.pop(target_hash, None)
        if server is not None:
            ray.kill(server)

    def close(self) -> None:
        for server in self._servers.values():
            ray.kill(server)
        self._servers.clear()
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
