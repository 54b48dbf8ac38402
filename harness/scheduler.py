"""The scheduler: runs a plan's work on an executor, in dependency order, and hands every
finished or failed task to a log as it arrives, so that a killed grid loses at most running work.

Each missing target and auxiliary model is trained once: reused from the cache when today's code
made it, else claimed (harness.claims) so that other drivers sharing the cache wait for it
instead of training it twice. A cell runs once its target (and auxiliary model) is ready. A
failed task is logged and the grid goes on.

The log (`RunLog`) is where results go: MLflow for `recsec run` (harness.driver), JSON lines for
a machine without MLflow (benchmarks/grid_in_process.py). Nothing here imports Ray or MLflow.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Protocol


from recsec.harness import tasks
from recsec.harness.cache import TargetCache
from recsec.harness.claims import TrainingClaims
from recsec.harness.executors import Executor, TaskFailed
from recsec.harness.data import load_dataset
from recsec.harness.errors import GridError
from recsec.harness.grid import Cell, Grid
from recsec.harness.heartbeat import INTERVAL_S as HEARTBEAT_S
from recsec.harness.planner import Plan, PlannedCell

try:
    from tqdm import tqdm
except ImportError:  # a bare GPU box (benchmarks/grid_in_process.py): no progress bar
    tqdm = None

# How often a driver looks in the shared cache for a model another driver is training.
AWAIT_POLL_S = 5.0


@dataclass
class RunSummary:
    grid: str
    cells: int
    finished: int = 0
    failed: int = 0
    skipped: int = 0
    targets_trained: int = 0
    targets_from_cache: int = 0
    auxiliary_trained: int = 0
    auxiliary_from_cache: int = 0
    wall_seconds: float = 0.0
    ray_start_seconds: float = 0.0
    task_seconds: float = 0.0
    failures: list[tuple[str, str]] = field(default_factory=list)


class RunLog(Protocol):
    """Where a run's results go, as they arrive."""

    def logged_targets(self) -> set[str]: ...

    def start(self, *, cells: int, tasks: int) -> None: ...

    def target(self, cell: Cell, record: tasks.TargetRecord) -> None: ...

    def cell(self, cell: Cell, planned: PlannedCell, record: tasks.CellRecord | None, error: str | None) -> None: ...

    def progress(self, *, tasks_done: int, finished: int, failed: int, force: bool) -> None: ...

    def close(self, outcome: str, *, tasks_done: int, finished: int, failed: int) -> None: ...


def load_data(grid: Grid, cells: list[Cell], data_dir, cache_dir, grid_path) -> dict[str, object]:
    """Every dataset the cells read (the grid's, and any other their families train auxiliary
    models on), loaded once each and keyed by `DatasetConfig.key()`; checked against the grid."""
    configs = [grid.dataset] + [cell.auxiliary_dataset for cell in cells if cell.needs_auxiliary]
    data = {}
    for config in configs:
        if config.key() not in data:
            data[config.key()] = load_dataset(
                config.name, data_dir=data_dir, cache_dir=cache_dir,
                min_user_interactions=config.min_user_interactions,
                min_item_interactions=config.min_item_interactions, params=config.params)
    main = data[grid.dataset.key()]
    _check_list_lengths_fit(grid, main, grid_path)
    by_family: dict[str, list[Cell]] = {}
    for cell in cells:
        by_family.setdefault(cell.family, []).append(cell)
    for family_cells in by_family.values():
        family_cells[0].family_plugin.check_data(grid, main, str(grid_path), family_cells)
    return data


def _check_list_lengths_fit(grid: Grid, data, grid_path) -> None:
    """A served list must leave items outside it (a top-K of every item ranks nothing)."""
    too_long = [k for k in grid.matrix.list_length if k >= data.n_items]
    if too_long:
        raise GridError(f"{grid_path}: matrix.list_length: {too_long[0]} is not below the "
                        f"{data.n_items} items of dataset {grid.dataset.name!r}")


def cell_label(cell: Cell) -> str:
    axes = cell.axes()
    return f"{axes['attack']} vs {axes['target']} [{axes['defense']}] seed={cell.seed}"


def run_plan(plan: Plan, data: dict, executor: Executor, log: RunLog, summary: RunSummary, *, cache_dir,
             accept_stale: bool = False, progress: bool = True) -> None:
    """Run `plan.todo` on `executor`; `data` maps `DatasetConfig.key()` to each dataset read."""
    grid = plan.grid
    cache = TargetCache(cache_dir)
    claims = TrainingClaims(cache_dir, owner=grid.name)
    logged_targets = log.logged_targets()
    # Once each, shared by every task. A family may train the attacker's auxiliary model on
    # another dataset (membership's cross-dataset shadow part).
    shared = {key: executor.share(value) for key, value in data.items()}
    main_data = shared[grid.dataset.key()]
    pending: dict = {}  # ticket -> (kind, cell, info)
    requested: set[str] = set()  # target and auxiliary hashes being trained or taken from the cache
    # Target or auxiliary hash -> what a cell task receives for it: its record, a handle to it,
    # or (an executor that pipelines) the ticket of the task still training it.
    model_refs: dict[str, object] = {}
    broken: dict[str, str] = {}  # hash -> why its training failed (cells that need it fail)
    awaited: dict[str, tuple[str, Cell]] = {}  # hash -> (kind, cell): another driver is training it

    def train(kind: str, cell: Cell, model_hash: str) -> None:
        if kind == "target":
            ticket = executor.submit(tasks.train_target, (cell, main_data, model_hash), grid.resources.train)
        else:
            ticket = executor.submit(tasks.train_auxiliary, (cell, shared[cell.auxiliary_dataset.key()], model_hash),
                                     grid.resources.train)
        requested.add(model_hash)
        if executor.pipelines:
            model_refs[model_hash] = ticket
        pending[ticket] = (kind, cell, model_hash)

    def from_cache(kind: str, cell: Cell, record) -> None:
        requested.add(record.target_hash)
        model_refs[record.target_hash] = executor.share(record)
        if kind == "target":
            summary.targets_from_cache += 1
            if record.target_hash not in logged_targets:  # cached by another grid: log it here too
                log.target(cell, record)
        else:
            summary.auxiliary_from_cache += 1

    def code_for(kind: str, cell: Cell) -> str:
        return tasks.target_code(cell) if kind == "target" else tasks.auxiliary_code(cell)

    def current(kind: str, cell: Cell, model_hash: str):
        """The cached model, unless other code trained it (then it is trained again)."""
        if model_hash not in cache:
            return None
        if not accept_stale and cache.code_of(model_hash) != code_for(kind, cell):
            return None
        return cache.get(model_hash)

    def obtain(kind: str, cell: Cell, model_hash: str) -> bool:
        """Reuse the cached model, else train it, unless another driver is training it now
        (then False: look again later)."""
        record = current(kind, cell, model_hash)
        if record is None and claims.acquire(model_hash):
            record = current(kind, cell, model_hash)  # finished by another driver between the look and the claim?
            if record is None:
                train(kind, cell, model_hash)
                return True
            claims.release(model_hash)
        if record is not None:
            from_cache(kind, cell, record)
            return True
        return False

    for target_hash in {pc.target_hash for pc in plan.todo}:
        if not obtain("target", plan.target_cells[target_hash], target_hash):
            awaited[target_hash] = ("target", plan.target_cells[target_hash])
    for pc in plan.todo:
        if pc.cell.needs_auxiliary:
            aux_hash = pc.cell.auxiliary_hash(plan.dataset_digest)
            if aux_hash not in requested and aux_hash not in awaited and not obtain("auxiliary", pc.cell, aux_hash):
                awaited[aux_hash] = ("auxiliary", pc.cell)

    for model_hash, (kind, cell) in awaited.items():
        holder = claims.holder(model_hash) or {}
        print(f"{grid.name}: waiting for {kind} {cell.target.label() if kind == 'target' else cell.clone.label()} "
              f"seed={cell.seed}, which grid {holder.get('owner', '?')} on {holder.get('host', '?')} is training",
              file=sys.stderr)

    blocked = list(plan.todo)  # cells wait until their target (and auxiliary) is ready

    def submit_ready_cells() -> int:
        """Submit the cells whose models are ready; fail those whose model failed (how many)."""
        nonlocal blocked
        still, failed = [], 0
        for pc in blocked:
            aux_hash = pc.cell.auxiliary_hash(plan.dataset_digest) if pc.cell.needs_auxiliary else None
            needs = [pc.target_hash] + ([aux_hash] if aux_hash else [])
            if any(h in broken for h in needs):
                error = next(broken[h] for h in needs if h in broken)
                summary.failed += 1
                summary.failures.append((cell_label(pc.cell), error.strip().splitlines()[-1]))
                log.cell(pc.cell, pc, None, error)
                cell_done(pc)
                failed += 1
                continue
            if any(h not in model_refs for h in needs):
                still.append(pc)
                continue
            ticket = executor.submit_cell(pc, main_data, model_refs[pc.target_hash],
                                          model_refs[aux_hash] if aux_hash else None, grid.resources.attack)
            pending[ticket] = ("cell", pc.cell, pc)
        blocked = still
        return failed

    def check_awaited() -> None:
        """Pick up what other drivers trained; train what they gave up (a released or stale claim)."""
        for model_hash, (kind, cell) in list(awaited.items()):
            if obtain(kind, cell, model_hash):
                del awaited[model_hash]

    cells_left = Counter(pc.target_hash for pc in plan.todo)

    def cell_done(planned: PlannedCell) -> None:
        cells_left[planned.target_hash] -= 1
        if cells_left[planned.target_hash] == 0:
            executor.release(planned.target_hash)

    def finish(kind: str, cell: Cell, info, record) -> None:
        if kind == "cell":
            cell_done(info)
            summary.finished += 1
            summary.task_seconds += record.metrics.get("cell_seconds", 0.0)
            log.cell(cell, info, record, None)
            return
        cache.put(record, code_for(kind, cell))
        claims.release(info)
        summary.task_seconds += record.metrics.get("train_seconds", 0.0)
        if kind == "target":
            summary.targets_trained += 1
            log.target(cell, record)
        else:
            summary.auxiliary_trained += 1
        if not executor.pipelines:
            model_refs[info] = executor.share(record)

    def fail(kind: str, cell: Cell, info, error: TaskFailed) -> None:
        label = cell_label(cell) if kind == "cell" else \
            f"{kind} {cell.target.label() if kind == 'target' else cell.clone.label()} seed={cell.seed}"
        summary.failures.append((label, str(error)))
        if kind == "cell":
            cell_done(info)
            summary.failed += 1
            log.cell(cell, info, None, error.error)
        else:
            claims.release(info)  # another driver may try; this grid's cells fail
            if not executor.pipelines:  # (a pipelining executor fails them through the ticket)
                broken[info] = f"{kind} training failed: {error.error}"

    total_tasks = len(pending) + len(awaited) + len(blocked)
    log.start(cells=len(plan.todo), tasks=total_tasks)
    done = submit_ready_cells()
    bar = tqdm(total=total_tasks, desc=grid.name, unit="task", disable=not progress, file=sys.stderr) \
        if tqdm is not None else _NoBar()
    outcome = "interrupted"
    try:
        while pending or awaited:
            # A timeout, so the log's heartbeat goes on while long tasks run (and awaited models
            # are looked for every few seconds).
            if pending:
                ready = executor.wait(list(pending), timeout=AWAIT_POLL_S if awaited else HEARTBEAT_S)
            else:  # only waiting on other drivers
                ready = []
                time.sleep(AWAIT_POLL_S)
            for ticket in ready:
                kind, cell, info = pending.pop(ticket)
                done += 1
                try:
                    record = executor.result(ticket)
                except TaskFailed as error:
                    fail(kind, cell, info, error)
                else:
                    finish(kind, cell, info, record)
                bar.update()
                bar.set_postfix(failed=summary.failed, refresh=False)
            if awaited:
                awaiting_before = len(awaited)
                check_awaited()
                done += awaiting_before - len(awaited)
                bar.update(awaiting_before - len(awaited))
            orphaned = submit_ready_cells()
            done += orphaned
            bar.update(orphaned)
            claims.refresh()
            log.progress(tasks_done=done, finished=summary.finished, failed=summary.failed, force=not ready)
        outcome = "finished"
    finally:
        bar.close()
        claims.release_all()
        try:
            log.close(outcome, tasks_done=done, finished=summary.finished, failed=summary.failed)
        except Exception as exc:  # the tracking server went away: say so, but keep the real error
            print(f"warning: could not record the driver's end: {exc}", file=sys.stderr)


class _NoBar:
    def update(self, n: int = 1) -> None: ...

    def set_postfix(self, **kwargs) -> None: ...

    def close(self) -> None: ...
