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
from recsec.harness.cell import Cell
from recsec.harness.families import get_family
from recsec.harness.grid_schema import Grid
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
    by_family: dict[str, list[Cell]] = {}
    for cell in cells:
        by_family.setdefault(cell.family, []).append(cell)
    for family_cells in by_family.values():
        get_family(family_cells[0].family).check_data(grid, main, str(grid_path), family_cells)
    return data


def cell_label(cell: Cell) -> str:
    axes = cell.axes()
    return f"{axes['attack']} vs {axes['target']} [{axes['defense']}] seed={cell.seed}"


def run_plan(plan: Plan, data: dict, executor: Executor, log: RunLog, summary: RunSummary, *, cache_dir,
             accept_stale: bool = False, progress: bool = True) -> None:
    """Run `plan.todo` on `executor`; `data` maps `DatasetConfig.key()` to each dataset read."""
    PlanRun(plan, data, executor, log, summary, cache_dir=cache_dir, accept_stale=accept_stale).run(progress)


class PlanRun:
    """One run of a plan: obtain every model its cells need (from the cache, by training, or from
    another driver that is training it), submit each cell once its models are ready, and collect
    the results as they come, with a heartbeat, until nothing is pending or awaited."""

    def __init__(self, plan: Plan, data: dict, executor: Executor, log: RunLog, summary: RunSummary, *,
                 cache_dir, accept_stale: bool = False):
        self.plan, self.grid, self.executor, self.log, self.summary = plan, plan.grid, executor, log, summary
        self.accept_stale = accept_stale
        self.cache = TargetCache(cache_dir)
        self.claims = TrainingClaims(cache_dir, owner=self.grid.name)
        self.logged_targets = log.logged_targets()
        # Once each, shared by every task. A family may train the attacker's auxiliary model on
        # another dataset (membership's cross-dataset shadow part).
        self.shared = {key: executor.share(value) for key, value in data.items()}
        self.main_data = self.shared[self.grid.dataset.key()]
        self.pending: dict = {}  # ticket -> (kind, cell, info)
        self.requested: set[str] = set()  # target and auxiliary hashes being trained or taken from the cache
        # Target or auxiliary hash -> what a cell task receives for it: its record, a handle to it,
        # or (an executor that pipelines) the ticket of the task still training it.
        self.model_refs: dict[str, object] = {}
        self.broken: dict[str, str] = {}  # hash -> why its training failed (cells that need it fail)
        self.awaited: dict[str, tuple[str, Cell]] = {}  # hash -> (kind, cell): another driver is training it
        self.blocked = list(plan.todo)  # cells wait until their target (and auxiliary) is ready
        self.cells_left = Counter(pc.target_hash for pc in plan.todo)
        self.done = 0

    # -- the run --------------------------------------------------------------------------------

    def run(self, progress: bool) -> None:
        self.obtain_models()
        self.announce_awaited()
        total_tasks = len(self.pending) + len(self.awaited) + len(self.blocked)
        self.log.start(cells=len(self.plan.todo), tasks=total_tasks)
        self.done = self.submit_ready_cells()
        bar = tqdm(total=total_tasks, desc=self.grid.name, unit="task", disable=not progress, file=sys.stderr) \
            if tqdm is not None else _NoBar()
        outcome = "interrupted"
        try:
            while self.pending or self.awaited:
                self.step(bar)
            outcome = "finished"
        finally:
            bar.close()
            self.claims.release_all()
            try:
                self.log.close(outcome, tasks_done=self.done, finished=self.summary.finished,
                               failed=self.summary.failed)
            except Exception as exc:  # the tracking server went away: say so, but keep the real error
                print(f"warning: could not record the driver's end: {exc}", file=sys.stderr)

    def step(self, bar) -> None:
        """Collect what finished, pick up what other drivers trained, submit what became ready."""
        # A timeout, so the log's heartbeat goes on while long tasks run (and awaited models are
        # looked for every few seconds).
        if self.pending:
            ready = self.executor.wait(list(self.pending), timeout=AWAIT_POLL_S if self.awaited else HEARTBEAT_S)
        else:  # only waiting on other drivers
            ready = []
            time.sleep(AWAIT_POLL_S)
        for ticket in ready:
            kind, cell, info = self.pending.pop(ticket)
            self.done += 1
            try:
                record = self.executor.result(ticket)
            except TaskFailed as error:
                self.fail(kind, cell, info, error)
            else:
                self.finish(kind, cell, info, record)
            bar.update()
            bar.set_postfix(failed=self.summary.failed, refresh=False)
        if self.awaited:
            awaiting_before = len(self.awaited)
            self.check_awaited()
            self.done += awaiting_before - len(self.awaited)
            bar.update(awaiting_before - len(self.awaited))
        orphaned = self.submit_ready_cells()
        self.done += orphaned
        bar.update(orphaned)
        self.claims.refresh()
        self.log.progress(tasks_done=self.done, finished=self.summary.finished, failed=self.summary.failed,
                          force=not ready)

    # -- the models cells need ------------------------------------------------------------------

    def obtain_models(self) -> None:
        """Each distinct target, then each auxiliary model, of the cells to run."""
        plan = self.plan
        for target_hash in {pc.target_hash for pc in plan.todo}:
            if not self.obtain("target", plan.target_cells[target_hash], target_hash):
                self.awaited[target_hash] = ("target", plan.target_cells[target_hash])
        for pc in plan.todo:
            if pc.cell.needs_auxiliary:
                aux_hash = pc.cell.auxiliary_hash(plan.dataset_digest)
                if aux_hash not in self.requested and aux_hash not in self.awaited \
                        and not self.obtain("auxiliary", pc.cell, aux_hash):
                    self.awaited[aux_hash] = ("auxiliary", pc.cell)

    def announce_awaited(self) -> None:
        for model_hash, (kind, cell) in self.awaited.items():
            holder = self.claims.holder(model_hash) or {}
            print(f"{self.grid.name}: waiting for {kind} {_trained_model(cell, kind)} seed={cell.seed}, which grid "
                  f"{holder.get('owner', '?')} on {holder.get('host', '?')} is training", file=sys.stderr)

    def obtain(self, kind: str, cell: Cell, model_hash: str) -> bool:
        """Reuse the cached model, else train it, unless another driver is training it now
        (then False: look again later)."""
        record = self.current(kind, cell, model_hash)
        if record is None and self.claims.acquire(model_hash):
            record = self.current(kind, cell, model_hash)  # finished by another driver between the look and the claim?
            if record is None:
                self.train(kind, cell, model_hash)
                return True
            self.claims.release(model_hash)
        if record is not None:
            self.from_cache(kind, cell, record)
            return True
        return False

    def current(self, kind: str, cell: Cell, model_hash: str):
        """The cached model, unless other code trained it (then it is trained again)."""
        if model_hash not in self.cache:
            return None
        if not self.accept_stale and self.cache.code_of(model_hash) != _code_for(kind, cell):
            return None
        return self.cache.get(model_hash)

    def train(self, kind: str, cell: Cell, model_hash: str) -> None:
        if kind == "target":
            ticket = self.executor.submit(tasks.train_target, (cell, self.main_data, model_hash),
                                          self.grid.resources.train)
        else:
            ticket = self.executor.submit(tasks.train_auxiliary,
                                          (cell, self.shared[cell.auxiliary_dataset.key()], model_hash),
                                          self.grid.resources.train)
        self.requested.add(model_hash)
        if self.executor.pipelines:
            self.model_refs[model_hash] = ticket
        self.pending[ticket] = (kind, cell, model_hash)

    def from_cache(self, kind: str, cell: Cell, record) -> None:
        self.requested.add(record.target_hash)
        self.model_refs[record.target_hash] = self.executor.share(record)
        if kind == "target":
            self.summary.targets_from_cache += 1
            if record.target_hash not in self.logged_targets:  # cached by another grid: log it here too
                self.log.target(cell, record)
        else:
            self.summary.auxiliary_from_cache += 1

    def check_awaited(self) -> None:
        """Pick up what other drivers trained; train what they gave up (a released or stale claim)."""
        for model_hash, (kind, cell) in list(self.awaited.items()):
            if self.obtain(kind, cell, model_hash):
                del self.awaited[model_hash]

    # -- cells ----------------------------------------------------------------------------------

    def submit_ready_cells(self) -> int:
        """Submit the cells whose models are ready; fail those whose model failed (how many)."""
        still, failed = [], 0
        for pc in self.blocked:
            aux_hash = pc.cell.auxiliary_hash(self.plan.dataset_digest) if pc.cell.needs_auxiliary else None
            needs = [pc.target_hash] + ([aux_hash] if aux_hash else [])
            if any(h in self.broken for h in needs):
                error = next(self.broken[h] for h in needs if h in self.broken)
                self.summary.failed += 1
                self.summary.failures.append((cell_label(pc.cell), error.strip().splitlines()[-1]))
                self.log.cell(pc.cell, pc, None, error)
                self.cell_done(pc)
                failed += 1
                continue
            if any(h not in self.model_refs for h in needs):
                still.append(pc)
                continue
            ticket = self.executor.submit_cell(pc, self.main_data, self.model_refs[pc.target_hash],
                                               self.model_refs[aux_hash] if aux_hash else None,
                                               self.grid.resources.attack)
            self.pending[ticket] = ("cell", pc.cell, pc)
        self.blocked = still
        return failed

    def cell_done(self, planned: PlannedCell) -> None:
        self.cells_left[planned.target_hash] -= 1
        if self.cells_left[planned.target_hash] == 0:
            self.executor.release(planned.target_hash)

    # -- results --------------------------------------------------------------------------------

    def finish(self, kind: str, cell: Cell, info, record) -> None:
        summary = self.summary
        if kind == "cell":
            self.cell_done(info)
            summary.finished += 1
            summary.task_seconds += record.metrics.get("cell_seconds", 0.0)
            self.log.cell(cell, info, record, None)
            return
        self.cache.put(record, _code_for(kind, cell))
        self.claims.release(info)
        summary.task_seconds += record.metrics.get("train_seconds", 0.0)
        if kind == "target":
            summary.targets_trained += 1
            self.log.target(cell, record)
        else:
            summary.auxiliary_trained += 1
        if not self.executor.pipelines:
            self.model_refs[info] = self.executor.share(record)

    def fail(self, kind: str, cell: Cell, info, error: TaskFailed) -> None:
        label = cell_label(cell) if kind == "cell" else f"{kind} {_trained_model(cell, kind)} seed={cell.seed}"
        self.summary.failures.append((label, str(error)))
        if kind == "cell":
            self.cell_done(info)
            self.summary.failed += 1
            self.log.cell(cell, info, None, error.error)
        else:
            self.claims.release(info)  # another driver may try; this grid's cells fail
            if not self.executor.pipelines:  # (a pipelining executor fails them through the ticket)
                self.broken[info] = f"{kind} training failed: {error.error}"


def _code_for(kind: str, cell: Cell) -> str:
    return tasks.target_code(cell) if kind == "target" else tasks.auxiliary_code(cell)


class _NoBar:
    def update(self, n: int = 1) -> None: ...

    def set_postfix(self, **kwargs) -> None: ...

    def close(self) -> None: ...


def _trained_model(cell: Cell, kind: str) -> str:
    """The model a training task fits, for progress lines: the target, or the attack's own."""
    return cell.target.label() if kind == "target" else f"of {cell.attack.label()}"
