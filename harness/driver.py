"""The driver of `recsec run`: plans a grid against MLflow and the cache, loads its data, and
runs the plan on an executor (Ray, or this process) through the scheduler, logging every
finished or failed task to MLflow as it arrives, so a killed grid loses at most running work."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from recsec.harness import tasks
from recsec.harness.cache import TargetCache
from recsec.harness.data import dataset_digest
from recsec.harness.executors import Executor, make_executor
from recsec.harness.grid import Cell, Grid, expand, load_grid
from recsec.harness.heartbeat import Heartbeat
from recsec.harness.planner import Plan, PlannedCell, make_plan
from recsec.harness.scheduler import RunSummary, cell_label, load_data, run_plan
from recsec.harness.record_file import ARTIFACT as RECORD_ARTIFACT, CellDocuments, dumps
from recsec.harness.run_tags import DEVICE, GRID_FILE, GRID_HASH
from recsec.harness.tracking import CELL_HASH, CODE, FAMILY, KIND, NODE, ORACLE_ISOLATED, TARGET_HASH, Tracker, flatten

__all__ = ["RunOptions", "RunSummary", "prepare", "run_grid"]


@dataclass
class RunOptions:
    tracking_uri: str
    data_dir: Path
    cache_dir: Path
    ray_address: str | None = None
    num_cpus: int | None = None  # local Ray only
    fresh: bool = False
    progress: bool = True
    overrides: tuple[str, ...] = ()  # `--set key=value` over the grid file
    accept_stale: bool = False  # reuse results and models made by other code (harness.code_identity)
    executor: str = "ray"  # or "local": every task in this process, one after another
    isolate_oracle: bool = True  # Ray: serve each target from its own actor (harness.serving)

    def __post_init__(self):
        # Absolute: a detached driver, or a Ray job, may not share the caller's working directory.
        self.data_dir = Path(self.data_dir).expanduser().resolve()
        self.cache_dir = Path(self.cache_dir).expanduser().resolve()


def prepare(grid: Grid, options: RunOptions, *, for_run: bool = False) -> tuple[Plan, Tracker, str | None]:
    """Expand and plan a grid against the target cache and MLflow.

    Only a run (`for_run`) creates the experiment and closes runs a killed driver left RUNNING;
    `plan` and `status` only read, so they are safe beside a live grid.
    """
    cells = expand(grid)
    ds = grid.dataset
    digest = dataset_digest(
        ds.name, data_dir=options.data_dir, min_user_interactions=ds.min_user_interactions,
        min_item_interactions=ds.min_item_interactions, params=ds.params,
    )
    tracker = Tracker(options.tracking_uri)
    experiment_id = tracker.experiment(grid.name, create=for_run)
    if for_run:
        tracker.close_stale(experiment_id)
    finished = {}
    if experiment_id is not None and not options.fresh:
        finished = tracker.finished_codes(experiment_id, "cell")
    plan = make_plan(grid, cells, digest, TargetCache(options.cache_dir), finished, options.accept_stale)
    return plan, tracker, experiment_id


def run_grid(grid_path: Path | str, options: RunOptions) -> RunSummary:
    start = time.perf_counter()
    grid = load_grid(grid_path, options.overrides)
    executor = make_executor(options.executor, address=options.ray_address, num_cpus=options.num_cpus,
                             isolate_oracle=options.isolate_oracle)
    # Planning reads MLflow. A new sqlite store spends seconds on its schema migration and
    # certainly has work to do, so Ray starts meanwhile; otherwise Ray starts only if needed.
    early = executor.name == "ray" and _new_sqlite_store(options.tracking_uri)
    with ThreadPoolExecutor(max_workers=1) as pool:
        planning = pool.submit(prepare, grid, options, for_run=True)
        connect_start = time.perf_counter()
        try:
            if early:
                executor.connect()
            connect_seconds = time.perf_counter() - connect_start
            plan, tracker, experiment_id = planning.result()
        except BaseException:
            executor.close()
            raise
    summary = RunSummary(grid.name, len(plan.cells), skipped=len(plan.cells) - len(plan.todo))
    try:
        if plan.todo:
            data = load_data(grid, [pc.cell for pc in plan.todo], options.data_dir, options.cache_dir, grid_path)
            connect_start = time.perf_counter()
            executor.start(grid)
            summary.ray_start_seconds = connect_seconds + time.perf_counter() - connect_start
            log = MlflowLog(tracker, experiment_id, plan, executor, grid_path, options.overrides)
            run_plan(plan, data, executor, log, summary, cache_dir=options.cache_dir,
                     accept_stale=options.accept_stale, progress=options.progress)
    finally:
        executor.close()
    summary.wall_seconds = time.perf_counter() - start
    return summary


def _new_sqlite_store(tracking_uri: str) -> bool:
    if not tracking_uri.startswith("sqlite:///"):
        return False
    return not Path(tracking_uri.removeprefix("sqlite:///")).exists()


class MlflowLog:
    """The scheduler's log for `recsec run`: one MLflow run per target and per cell, tagged with
    what identifies it and the code that made it, and the driver's heartbeat."""

    def __init__(self, tracker: Tracker, experiment_id: str, plan: Plan, executor: Executor, grid_path=None,
                 overrides: tuple[str, ...] = ()):
        self.tracker, self.experiment_id, self.digest = tracker, experiment_id, plan.dataset_digest
        self.where = executor.address or ("local" if executor.name == "ray" else "in-process")
        self.heartbeat: Heartbeat | None = None
        self.documents = CellDocuments(plan, grid_path, overrides)

    def start(self, *, cells: int, tasks: int) -> None:
        self.heartbeat = Heartbeat(self.tracker, self.experiment_id, cells=cells, tasks=tasks, ray_address=self.where)

    def logged_targets(self) -> set[str]:
        return set(self.tracker.finished(self.experiment_id, "target"))

    def _common_tags(self, cell: Cell) -> dict:
        return {"recsec.grid": cell.grid, "recsec.dataset": cell.dataset.name, "recsec.dataset_digest": self.digest,
                GRID_FILE: self.documents.grid_file, GRID_HASH: self.documents.grid_hash}

    def target(self, cell: Cell, record: tasks.TargetRecord) -> None:
        tags = {**self._common_tags(cell), KIND: "target", TARGET_HASH: record.target_hash,
                CODE: tasks.target_code(cell), "target": cell.target.label(), "seed": cell.seed,
                **({NODE: record.node} if record.node else {})}
        params = {**flatten("", cell.target_identity), **record.params}
        self.documents.target(record)
        self.tracker.log_run(self.experiment_id, f"target {cell.target.label()} seed={cell.seed}", tags, params,
                             record.metrics)

    def cell(self, cell: Cell, planned: PlannedCell, record: tasks.CellRecord | None, error: str | None) -> None:
        code = tasks.cell_code(cell)
        tags = {**self._common_tags(cell), KIND: "cell", CELL_HASH: planned.cell_hash,
                TARGET_HASH: planned.target_hash, CODE: code, FAMILY: cell.family,
                ORACLE_ISOLATED: str(bool(record and record.oracle_isolated)).lower(), **cell.axes(),
                **({NODE: record.node, DEVICE: record.device} if record else {})}
        params = flatten("", cell.normalized())
        artifacts = {}
        if record is not None:  # the cell's record, per-unit values and all (harness.record_file)
            if planned.target_hash not in self.documents.target_metrics:  # logged by an earlier run
                self.documents.target_metrics[planned.target_hash] = self.tracker.latest_target_metrics(
                    self.experiment_id, planned.target_hash)
            artifacts[RECORD_ARTIFACT] = dumps(self.documents.cell(cell, planned, record, code))
        self.tracker.log_run(self.experiment_id, cell_label(cell), tags, params, record.metrics if record else {},
                             error, artifacts)

    def progress(self, *, tasks_done: int, finished: int, failed: int, force: bool) -> None:
        self.heartbeat.beat(tasks_done=tasks_done, finished=finished, failed=failed, force=force)

    def close(self, outcome: str, *, tasks_done: int, finished: int, failed: int) -> None:
        self.heartbeat.close(outcome, tasks_done=tasks_done, finished=finished, failed=failed)
