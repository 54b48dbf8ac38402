"""The driver: the only module that uses Ray. Plans a grid, submits every task, collects results
as they finish, and logs each to MLflow at once, so a killed grid loses at most running work."""

from __future__ import annotations

import logging
import os
import socket
import sys
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_DEDUP_LOGS", "0")

import ray  # noqa: E402
from tqdm import tqdm  # noqa: E402

from harness import tasks  # noqa: E402
from harness.cache import TargetCache  # noqa: E402
from harness.claims import TrainingClaims  # noqa: E402
from harness.data import dataset_digest, load_dataset  # noqa: E402
from harness.data.sequences import sequences_from_interactions  # noqa: E402
from harness.errors import GridError, ResourceError  # noqa: E402
from harness.grid import Cell, Grid, Resources, expand, load_grid  # noqa: E402
from harness.heartbeat import INTERVAL_S as HEARTBEAT_S  # noqa: E402
from harness.heartbeat import Heartbeat  # noqa: E402
from harness.planner import Plan, make_plan  # noqa: E402
from harness.tracking import CELL_HASH, CODE, FAMILY, KIND, NODE, TARGET_HASH, Tracker, flatten  # noqa: E402

# System failures (a worker process dying) are retried; Python exceptions are not: they fail
# their cell, which is recorded, and the grid goes on.
MAX_RETRIES = 2
# How often a driver looks in the shared cache for a model another driver is training.
AWAIT_POLL_S = 5.0


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

    def __post_init__(self):
        # Absolute: a detached driver, or a Ray job, may not share the caller's working directory.
        self.data_dir = Path(self.data_dir).expanduser().resolve()
        self.cache_dir = Path(self.cache_dir).expanduser().resolve()


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


def _check_list_lengths_fit(grid: Grid, data, grid_path) -> None:
    """A served list must leave items outside it (a top-K of every item ranks nothing)."""
    too_long = [k for k in grid.matrix.list_length if k >= data.n_items]
    if too_long:
        raise GridError(f"{grid_path}: matrix.list_length: {too_long[0]} is not below the "
                        f"{data.n_items} items of dataset {grid.dataset.name!r}")


def run_grid(grid_path: Path | str, options: RunOptions) -> RunSummary:
    start = time.perf_counter()
    grid = load_grid(grid_path, options.overrides)
    # Planning reads MLflow. A new sqlite store spends seconds on its schema migration and
    # certainly has work to do, so Ray starts meanwhile; otherwise Ray starts only if needed.
    with ThreadPoolExecutor(max_workers=1) as pool:
        planning = pool.submit(prepare, grid, options, for_run=True)
        ray_start = time.perf_counter()
        started_ray = _connect(options) if _new_sqlite_store(options.tracking_uri) else False
        ray_seconds = time.perf_counter() - ray_start
        try:
            plan, tracker, experiment_id = planning.result()
        except BaseException:
            if started_ray:
                ray.shutdown()
            raise
    summary = RunSummary(grid.name, len(plan.cells), skipped=len(plan.cells) - len(plan.todo))
    try:
        if plan.todo:
            ds = grid.dataset
            data = load_dataset(
                ds.name, data_dir=options.data_dir, cache_dir=options.cache_dir,
                min_user_interactions=ds.min_user_interactions,
                min_item_interactions=ds.min_item_interactions, params=ds.params,
            )
            _check_list_lengths_fit(grid, data, grid_path)
            if any(pc.cell.sequential for pc in plan.todo):
                sequences_from_interactions(data)  # no time order: a DataError now, not in every task
            shadow = grid.membership.shadow_dataset
            if shadow is not None and any(pc.cell.membership is not None for pc in plan.todo):
                data = {"target": data, "shadow": load_dataset(
                    shadow.name, data_dir=options.data_dir, cache_dir=options.cache_dir,
                    min_user_interactions=shadow.min_user_interactions,
                    min_item_interactions=shadow.min_item_interactions, params=shadow.params)}
            if not ray.is_initialized():
                ray_start = time.perf_counter()
                started_ray = _connect(options)
                ray_seconds = time.perf_counter() - ray_start
            summary.ray_start_seconds = ray_seconds
            check_resources(grid, ray.nodes())
            _execute(plan, data, tracker, experiment_id, options, summary)
    finally:
        if started_ray:
            ray.shutdown()
    summary.wall_seconds = time.perf_counter() - start
    return summary


def _new_sqlite_store(tracking_uri: str) -> bool:
    if not tracking_uri.startswith("sqlite:///"):
        return False
    return not Path(tracking_uri.removeprefix("sqlite:///")).exists()


def _connect(options: RunOptions) -> bool:
    """Join the given cluster, or start a local Ray. True when this call started it."""
    if ray.is_initialized():  # e.g. a test or notebook that started Ray itself
        return False
    # Workers' own output is not echoed: it would tear the progress bar, and every failure's
    # traceback is recorded on its MLflow run and summarized at the end anyway.
    kwargs = dict(logging_level=logging.WARNING, log_to_driver=False)
    if options.ray_address:
        ray.init(address=options.ray_address, **kwargs)
    else:
        ray.init(num_cpus=options.num_cpus, include_dashboard=False, **kwargs)
    return True


def check_resources(grid: Grid, nodes: list[dict]) -> None:
    """Fail before submitting when no node could ever run a stage (Ray would wait forever)."""
    alive = [n.get("Resources", {}) for n in nodes if n.get("Alive", True)]
    for stage in ("train", "attack"):
        need: Resources = getattr(grid.resources, stage)
        if not any(r.get("CPU", 0) >= need.num_cpus and r.get("GPU", 0) >= need.num_gpus for r in alive):
            have = ", ".join(f"CPU={r.get('CPU', 0):g} GPU={r.get('GPU', 0):g}" for r in alive) or "no nodes"
            raise ResourceError(
                f"grid {grid.name}: resources.{stage} asks for num_cpus={need.num_cpus:g} "
                f"num_gpus={need.num_gpus:g} per task, but no node of the cluster has that ({have})"
            )


def _stamped(record):
    """The record, marked with the node that made it (a run's `recsec.node` tag)."""
    record.node = f"{socket.gethostname()}/{ray.get_runtime_context().get_node_id()[:12]}"
    return record


@ray.remote
def _train_task(cell: Cell, data, target_hash: str) -> tasks.TargetRecord:
    return _stamped(tasks.train_target(cell, data, target_hash, device=tasks.pick_device(ray.get_gpu_ids())))


@ray.remote
def _auxiliary_task(cell: Cell, data, auxiliary_hash: str) -> tasks.TargetRecord:
    return _stamped(tasks.train_auxiliary(cell, data, auxiliary_hash, device=tasks.pick_device(ray.get_gpu_ids())))


@ray.remote
def _cell_task(cell: Cell, data, target: tasks.TargetRecord, cell_hash: str, auxiliary=None) -> tasks.CellRecord:
    return _stamped(tasks.run_cell(cell, data, target, cell_hash, device=tasks.pick_device(ray.get_gpu_ids()),
                                   auxiliary=auxiliary))


def _options(res: Resources) -> dict:
    return dict(num_cpus=res.num_cpus, num_gpus=res.num_gpus, max_retries=MAX_RETRIES, retry_exceptions=False)


def _execute(plan: Plan, data, tracker: Tracker, experiment_id: str, options: RunOptions, summary: RunSummary):
    grid = plan.grid
    cache = TargetCache(options.cache_dir)
    claims = TrainingClaims(options.cache_dir, owner=grid.name)
    logged_targets = set(tracker.finished(experiment_id, "target"))
    # Once each, shared by every task through the object store. A cross-dataset membership grid
    # also has a shadow dataset, which only the shadow recommender's (auxiliary) tasks read.
    datasets = data if isinstance(data, dict) else {"target": data}
    data_ref = ray.put(datasets["target"])
    shadow_ref = ray.put(datasets["shadow"]) if "shadow" in datasets else data_ref
    pending: dict = {}  # ObjectRef -> (kind, cell, info)
    model_refs: dict[str, object] = {}  # target or auxiliary hash -> ObjectRef of its record
    awaited: dict[str, tuple[str, Cell]] = {}  # hash -> (kind, cell): another driver is training it

    def train(kind: str, cell: Cell, model_hash: str) -> None:
        if kind == "target":
            ref = _train_task.options(**_options(grid.resources.train)).remote(cell, data_ref, model_hash)
        else:
            aux_data = shadow_ref if cell.membership is not None else data_ref
            ref = _auxiliary_task.options(**_options(grid.resources.train)).remote(cell, aux_data, model_hash)
        model_refs[model_hash] = ref
        pending[ref] = (kind, cell, model_hash)

    def from_cache(kind: str, cell: Cell, record) -> None:
        model_refs[record.target_hash] = ray.put(record)
        if kind == "target":
            summary.targets_from_cache += 1
            if record.target_hash not in logged_targets:  # cached by another grid: log it here too
                _log_target(tracker, experiment_id, cell, record, plan.dataset_digest)
        else:
            summary.auxiliary_from_cache += 1

    def code_for(kind: str, cell: Cell) -> str:
        return tasks.target_code(cell) if kind == "target" else tasks.auxiliary_code(cell)

    def current(kind: str, cell: Cell, model_hash: str):
        """The cached model, unless other code trained it (then it is trained again)."""
        if model_hash not in cache:
            return None
        if not options.accept_stale and cache.code_of(model_hash) != code_for(kind, cell):
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
            if aux_hash not in model_refs and aux_hash not in awaited and not obtain("auxiliary", pc.cell, aux_hash):
                awaited[aux_hash] = ("auxiliary", pc.cell)

    for model_hash, (kind, cell) in awaited.items():
        holder = claims.holder(model_hash) or {}
        print(f"{grid.name}: waiting for {kind} {cell.target.label() if kind == 'target' else cell.clone.label()} "
              f"seed={cell.seed}, which grid {holder.get('owner', '?')} on {holder.get('host', '?')} is training",
              file=sys.stderr)

    blocked = list(plan.todo)  # cells wait until their target (and auxiliary) has a ref

    def submit_ready_cells() -> None:
        nonlocal blocked
        still = []
        for pc in blocked:
            aux_hash = pc.cell.auxiliary_hash(plan.dataset_digest) if pc.cell.needs_auxiliary else None
            if pc.target_hash not in model_refs or (aux_hash is not None and aux_hash not in model_refs):
                still.append(pc)
                continue
            ref = _cell_task.options(**_options(grid.resources.attack)).remote(
                pc.cell, data_ref, model_refs[pc.target_hash], pc.cell_hash,
                model_refs[aux_hash] if aux_hash else None)
            pending[ref] = ("cell", pc.cell, pc)
        blocked = still

    def check_awaited() -> None:
        """Pick up what other drivers trained; train what they gave up (a released or stale claim)."""
        for model_hash, (kind, cell) in list(awaited.items()):
            if obtain(kind, cell, model_hash):
                del awaited[model_hash]

    submit_ready_cells()
    total_tasks = len(pending) + len(awaited) + len(blocked)
    done = 0
    bar = tqdm(total=total_tasks, desc=grid.name, unit="task", disable=not options.progress, file=sys.stderr)
    heartbeat = Heartbeat(tracker, experiment_id, cells=len(plan.todo), tasks=total_tasks,
                          ray_address=options.ray_address)
    outcome = "interrupted"
    try:
        while pending or awaited:
            # A timeout, so the heartbeat goes on while long tasks run (and awaited models are
            # looked for every few seconds).
            if pending:
                ready, _ = ray.wait(list(pending), num_returns=1, timeout=AWAIT_POLL_S if awaited else HEARTBEAT_S)
            else:  # only waiting on other drivers
                ready = []
                time.sleep(AWAIT_POLL_S)
            for ref in ready:
                kind, cell, info = pending.pop(ref)
                done += 1
                try:
                    record = ray.get(ref)
                except Exception as exc:  # RayTaskError (the task raised) or a crashed worker
                    error = _describe(exc)
                    label = f"{kind} {cell.target.label() if kind == 'target' else cell.clone.label()} seed={cell.seed}" if kind != "cell" else _label(cell)
                    summary.failures.append((label, error.strip().splitlines()[-1] if error.strip() else repr(exc)))
                    if kind == "cell":
                        summary.failed += 1
                        _log_cell(tracker, experiment_id, cell, info, plan.dataset_digest, None, error)
                    else:
                        claims.release(info)  # another driver may try; this grid's cells fail
                    bar.update()
                    continue
                if kind == "target":
                    cache.put(record, code_for(kind, cell))
                    claims.release(info)
                    summary.targets_trained += 1
                    summary.task_seconds += record.metrics.get("train_seconds", 0.0)
                    _log_target(tracker, experiment_id, cell, record, plan.dataset_digest)
                elif kind == "auxiliary":
                    cache.put(record, code_for(kind, cell))
                    claims.release(info)
                    summary.auxiliary_trained += 1
                    summary.task_seconds += record.metrics.get("train_seconds", 0.0)
                else:
                    summary.finished += 1
                    summary.task_seconds += record.metrics.get("cell_seconds", 0.0)
                    _log_cell(tracker, experiment_id, cell, info, plan.dataset_digest, record, None)
                bar.update()
                bar.set_postfix(failed=summary.failed, refresh=False)
            if awaited:
                awaiting_before = len(awaited)
                check_awaited()
                done += awaiting_before - len(awaited)
                bar.update(awaiting_before - len(awaited))
            submit_ready_cells()
            claims.refresh()
            heartbeat.beat(tasks_done=done, finished=summary.finished, failed=summary.failed, force=not ready)
        outcome = "finished"
    finally:
        bar.close()
        claims.release_all()
        try:
            heartbeat.close(outcome, tasks_done=done, finished=summary.finished, failed=summary.failed)
        except Exception as exc:  # the tracking server went away: say so, but keep the real error
            print(f"warning: could not record the driver's end in MLflow: {exc}", file=sys.stderr)


def _describe(exc: BaseException) -> str:
    cause = getattr(exc, "cause", None)
    if isinstance(cause, BaseException):
        return "".join(traceback.format_exception(type(cause), cause, cause.__traceback__))
    return str(exc)


def _label(cell: Cell) -> str:
    axes = cell.axes()
    return f"{axes['attack']} vs {axes['target']} [{axes['defense']}] seed={cell.seed}"


def _common_tags(cell: Cell, digest: str) -> dict:
    return {"recsec.grid": cell.grid, "recsec.dataset": cell.dataset.name, "recsec.dataset_digest": digest}


def _log_target(tracker: Tracker, experiment_id: str, cell: Cell, record: tasks.TargetRecord, digest: str):
    tags = {**_common_tags(cell, digest), KIND: "target", TARGET_HASH: record.target_hash,
            CODE: tasks.target_code(cell), "target": cell.target.label(), "seed": cell.seed, **({NODE: record.node} if record.node else {})}
    params = {**flatten("", cell.target_normalized()), **record.params}
    tracker.log_run(experiment_id, f"target {cell.target.label()} seed={cell.seed}", tags, params, record.metrics)


def _log_cell(tracker, experiment_id, cell: Cell, pc, digest: str, record, error: str | None):
    tags = {**_common_tags(cell, digest), KIND: "cell", CELL_HASH: pc.cell_hash, TARGET_HASH: pc.target_hash,
            CODE: tasks.cell_code(cell), FAMILY: cell.family, **cell.axes(), **({NODE: record.node} if record and record.node else {})}
    params = flatten("", cell.normalized())
    tracker.log_run(experiment_id, _label(cell), tags, params, record.metrics if record else {}, error)
