"""A grid's wall time on a cluster, predicted from its tasks' own seconds: the schedule Ray makes.

The driver submits every target's training first, then every cell, each cell waiting on its
target (on Ray a cell is two tasks, its attack and then its grade, both with the attack stage's
resources). Ray starts a task as soon as its inputs exist and some node has the CPUs and GPUs it
asks for, in submission order among the tasks that could start. `predict` replays that on
`workers` identical nodes, each task taking its logged seconds plus a per-task overhead (a worker's
dispatch and the arguments' transfer), after a fixed start (Ray's, and the driver's planning).
It knows nothing of contention: two tasks on one node run as fast as each ran when it was logged.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Task:
    name: str
    seconds: float
    cpus: float = 1.0
    gpus: float = 0.0
    after: tuple[str, ...] = ()  # tasks whose results this one takes


@dataclass(frozen=True)
class Node:
    cpus: float
    gpus: float = 0.0


@dataclass
class Schedule:
    wall_seconds: float
    started: dict[str, float] = field(default_factory=dict)  # task -> when it started
    placed: dict[str, int] = field(default_factory=dict)  # task -> the node it ran on


def predict(tasks: list[Task], nodes: list[Node], *, overhead: float = 0.0, fixed: float = 0.0) -> Schedule:
    """Replay the tasks, in submission order, on the nodes (see the module's docstring)."""
    by_name = {task.name: task for task in tasks}
    for task in tasks:
        missing = [name for name in task.after if name not in by_name]
        if missing:
            raise ValueError(f"task {task.name} waits on unknown tasks {missing}")
        if not any(task.cpus <= node.cpus and task.gpus <= node.gpus for node in nodes):
            raise ValueError(f"task {task.name} asks for {task.cpus:g} CPUs and {task.gpus:g} GPUs: no node has them")
    free = [[node.cpus, node.gpus] for node in nodes]
    waiting = list(tasks)
    done: set[str] = set()
    running: list[tuple[float, int, str, int]] = []  # (end, order, task, node): a heap
    schedule, now, order = Schedule(0.0), 0.0, 0
    while waiting or running:
        still = []
        for task in waiting:
            node = _fitting(free, task) if all(name in done for name in task.after) else None
            if node is None:
                still.append(task)
                continue
            free[node][0] -= task.cpus
            free[node][1] -= task.gpus
            schedule.started[task.name], schedule.placed[task.name] = now, node
            heapq.heappush(running, (now + task.seconds + overhead, order, task.name, node))
            order += 1
        waiting = still
        if not running:
            raise ValueError(f"tasks never start: {[task.name for task in waiting[:3]]}")  # waits on a cycle
        now, _, name, node = heapq.heappop(running)
        free[node][0] += by_name[name].cpus
        free[node][1] += by_name[name].gpus
        done.add(name)
    schedule.wall_seconds = fixed + now
    return schedule


def _fitting(free: list[list[float]], task: Task) -> int | None:
    """The first node with room for the task (Ray packs a node before spreading to the next)."""
    for index, (cpus, gpus) in enumerate(free):
        if task.cpus <= cpus + 1e-9 and task.gpus <= gpus + 1e-9:
            return index
    return None


def calibrate_overhead(tasks: list[Task], nodes: list[Node], measured_wall: float, fixed: float) -> float:
    """The per-task overhead with which `predict` gives a measured wall time (bisection: the
    predicted wall grows with the overhead). 0 when the tasks alone already take longer."""
    low, high = 0.0, max(measured_wall, 1.0)
    if predict(tasks, nodes, fixed=fixed).wall_seconds >= measured_wall:
        return 0.0
    for _ in range(50):
        middle = (low + high) / 2
        if predict(tasks, nodes, overhead=middle, fixed=fixed).wall_seconds < measured_wall:
            low = middle
        else:
            high = middle
    return (low + high) / 2
