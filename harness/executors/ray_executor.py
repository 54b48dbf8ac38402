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
from recsec.harness.grid_schema import ServeResources  # noqa: E402
from recsec.harness.serving import OracleClient, ServerHost, SessionLost  # noqa: E402

# System failures (a worker process dying) are retried; Python exceptions are not.
MAX_RETRIES = 2


def _node() -> str:
    return f"{socket.gethostname()}/{ray.get_runtime_context().get_node_id()[:12]}"


@ray.remote
def _run(task: Callable, *args):
    record = task(*args, device=pick_device(ray.get_gpu_ids()))
    record.node = _node()
    return record


class _Host(ServerHost):
    """A server process on Ray: the targets it is sent arrive as object refs (in a list, so that
    Ray does not resolve them on every call), loaded when a cell first opens on the target."""

    def __init__(self):
        super().__init__(device=pick_device(ray.get_gpu_ids()))

    def resolve(self, inputs):
        return ray.get(list(inputs))


# Each host serves the targets assigned to it and answers their cells' queries. By default it
# reserves no CPU (it waits on queries far more than it computes), so it never holds a task slot;
# `resources.serve` reserves what a grid's oracle needs. A host whose process dies comes back
# (Ray starts it again, empty); the sessions it held are lost, so their attacks start again
# (`SessionLost`, retried) and load their target again.
_Server = ray.remote(max_concurrency=8, max_restarts=MAX_RETRIES, max_task_retries=MAX_RETRIES)(_Host)


def _answer(ref):
    """The value of an actor call's ref, waited for without `ray.get`: a task blocked in
    `ray.get` hands its CPU back to Ray, which starts another task (and, for it, another
    worker process) on it, so that an attack waiting on its oracle would leave the node running
    more tasks than it has CPUs once the answer comes (measured on the quickstart: 8 worker
    processes where 2 run the same cells in-cell)."""
    return ref.future().result()


@ray.remote
def _attack(cell, view, server, target_hash: str, inputs: list, session: str):
    """A cell's attack step: this process holds the view and an oracle client, nothing else
    (`inputs`: refs to its target, which it passes on unread for a restarted server to load)."""
    def send(method: str, *args):
        try:
            return _answer(server.call.remote(target_hash, session, method, *args))
        except ray.exceptions.RayTaskError as exc:  # what the server refused (e.g. past the budget)
            raise exc.cause from None
        except ray.exceptions.RayActorError:  # the server died and will not answer this query
            raise SessionLost("the target's server died mid-attack") from None

    _answer(server.reopen.remote(target_hash, inputs, cell, session))  # a no-op but after a server restart
    client = OracleClient(send, _answer(server.describe.remote(target_hash, session)))
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
        self._hosts: list[Any] = []  # the server processes (_Host actors)
        self._host_of: dict[str, Any] = {}  # target hash -> the host serving it
        self._inputs: dict[str, list] = {}  # target hash -> refs to its data and record
        self._serve = None  # the grid's resources.serve

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
        self._serve = grid.resources.serve

    def submit_cell(self, planned, data, target, auxiliary, resources) -> Any:
        """Serve (the target's actor opens the cell's session and grants its view), attack (a
        task with the view and an oracle client), grade (a task with the target): chained by
        object refs, so the ticket is the grade's and an error anywhere fails the cell."""
        if not self.isolate_oracle:
            return super().submit_cell(planned, data, target, auxiliary, resources)
        cell, cell_hash, target_hash = planned.cell, planned.cell_hash, planned.target_hash
        server, inputs = self._server_of(target_hash, data, target)
        options = dict(num_cpus=resources.num_cpus, num_gpus=resources.num_gpus, max_retries=MAX_RETRIES,
                       retry_exceptions=False)
        view = server.open.remote(target_hash, inputs, cell, cell_hash, auxiliary)
        # an attack whose server lost its session starts again, with a fresh session
        outcome = _attack.options(**{**options, "retry_exceptions": [SessionLost]}).remote(
            cell, view, server, target_hash, inputs, cell_hash)
        counts = server.close.remote(target_hash, cell_hash, outcome)
        return _grade.options(**options).remote(cell, data, target, view, outcome, counts, cell_hash)

    def _server_of(self, target_hash: str, data, target) -> tuple[Any, list]:
        """The host serving this target (assigned, on first use, to the host serving the fewest
        targets; hosts start as needed, up to `resources.serve.servers`), and the refs it loads
        the target from."""
        if target_hash not in self._host_of:
            serve = self._serve if self._serve is not None else ServeResources()
            limit = serve.servers or max(1, sum(1 for node in ray.nodes() if node.get("Alive", True)))
            load = {id(host): 0 for host in self._hosts}
            for host in self._host_of.values():
                load[id(host)] += 1
            if len(self._hosts) < limit and all(load.values()):
                self._hosts.append(_Server.options(num_cpus=serve.num_cpus, num_gpus=serve.num_gpus).remote())
                load[id(self._hosts[-1])] = 0
            self._host_of[target_hash] = min(self._hosts, key=lambda host: load[id(host)])
            # refs, made once: a record sent by value would be copied into every call
            self._inputs[target_hash] = [ref if isinstance(ref, ray.ObjectRef) else ray.put(ref) for ref in (data, target)]
        return self._host_of[target_hash], self._inputs[target_hash]

    def release(self, target_hash: str) -> None:
        host = self._host_of.pop(target_hash, None)
        self._inputs.pop(target_hash, None)
        if host is not None:
            host.drop.remote(target_hash)

    def close(self) -> None:
        for host in self._hosts:
            ray.kill(host)
        self._hosts.clear()
        self._host_of.clear()
        self._inputs.clear()
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
    for stage in ("train", "attack", "serve"):
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
