"""`recsec run|plan|status`: the commands that run grids and follow them (results: harness.cli.results)."""

from __future__ import annotations

from collections import Counter
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from recsec.harness.cli.common import (
    AcceptStale,
    EXIT_CELLS_FAILED,
    EXIT_OK,
    CacheDir,
    DataDir,
    Overrides,
    RayAddress,
    TrackingUri,
    cache_dir,
    data_dir,
    fail,
    tracking_uri,
    user_errors,
)
from recsec.harness.errors import RecsecError

GridPath = Annotated[Path, typer.Argument(help="Grid file (YAML).", show_default=False)]


class ExecutorName(str, Enum):
    ray = "ray"
    local = "local"


def _options(tracking, ray_address, data, cache, fresh=False, num_cpus=None, progress=True, overrides=None,
             accept_stale=False, executor=ExecutorName.ray):
    from recsec.harness.driver import RunOptions

    return RunOptions(
        tracking_uri=tracking_uri(tracking), data_dir=data_dir(data), cache_dir=cache_dir(cache),
        ray_address=ray_address, num_cpus=num_cpus, fresh=fresh, progress=progress,
        overrides=tuple(overrides or ()), accept_stale=accept_stale, executor=executor.value,
    )


def run(
    grid: GridPath,
    tracking: TrackingUri = None,
    ray_address: RayAddress = None,
    data: DataDir = None,
    cache: CacheDir = None,
    fresh: Annotated[bool, typer.Option("--fresh", help="Rerun cells that already finished (default: resume).")] = False,
    num_cpus: Annotated[Optional[int], typer.Option("--num-cpus", min=1, help="CPUs for a local Ray. Default: all.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    detach: Annotated[bool, typer.Option(
        "--detach", help="Run in the background, outliving this shell; follow with `recsec status GRID`.")] = False,
    log: Annotated[Optional[Path], typer.Option(
        "--log", help="With --detach: the driver's log. Default: recsec-logs/GRID-TIME.log.")] = None,
    overrides: Overrides = None,
    accept_stale: AcceptStale = False,
    executor: Annotated[ExecutorName, typer.Option(
        "--executor", help="ray: tasks on a local Ray or the --ray-address cluster. local: every task in this "
                           "process, one after another (no Ray; a debugger works).")] = ExecutorName.ray,
):
    """Run every cell of GRID not yet finished, log each to MLflow, print a comparison table.

    Exit code 0: every cell finished; 1: some cells failed (the rest still ran); 2: invalid input.
    """
    import os

    from recsec.harness import report

    if not ray_address:
        # A local Ray is one node: keep it on the loopback interface instead of the machine's
        # network address (nothing exposed, no firewall prompts). Ray reads this when imported.
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    from recsec.harness.driver import run_grid

    options = _options(tracking, ray_address, data, cache, fresh, num_cpus, progress=not quiet, overrides=overrides,
                       accept_stale=accept_stale, executor=executor)
    if executor is ExecutorName.local and (ray_address or num_cpus):
        raise fail("--ray-address and --num-cpus are for --executor ray")
    if log is not None and not detach:
        raise fail("--log is for --detach (a foreground run prints to this terminal)")
    if detach:
        _detach(grid, options, log)
        return
    with user_errors():
        summary = run_grid(grid, options)
    typer.echo(
        f"{summary.grid}: {summary.finished} cells finished, {summary.failed} failed, "
        f"{summary.skipped} already done; targets trained {summary.targets_trained}, "
        f"from cache {summary.targets_from_cache}; "
        + (f"auxiliary models trained {summary.auxiliary_trained}, from cache {summary.auxiliary_from_cache}; "
           if summary.auxiliary_trained or summary.auxiliary_from_cache else "")
        + f"{summary.wall_seconds:.1f}s "
        + (f"(Ray start {summary.ray_start_seconds:.1f}s, task time {summary.task_seconds:.1f}s)"
           if options.executor == "ray" else f"(in this process, task time {summary.task_seconds:.1f}s)")
    )
    for label, error in summary.failures:
        typer.echo(f"FAILED {label}: {error}", err=True)
    try:
        frame = report.cell_frame(options.tracking_uri, summary.grid)
        k = report.main_k(frame)
        typer.echo("")
        typer.echo(report.to_markdown(report.summary(frame, k), index=False))
        typer.echo(f"\n{report.LEGEND}\nMLflow: {options.tracking_uri} (experiment {summary.grid})")
    except RecsecError as exc:
        typer.echo(f"(no table: {exc})", err=True)
    raise typer.Exit(EXIT_CELLS_FAILED if summary.failed else EXIT_OK)


def _detach(grid: Path, options, log: Path | None) -> None:
    """Check the grid here (bad input fails in this shell), then hand the run to a background driver."""
    from recsec.harness.cli.detach import default_log, launch
    from recsec.harness.grid import load_grid

    with user_errors():
        the_grid = load_grid(grid, options.overrides)
    argv = ["run", str(grid.resolve()), "--tracking-uri", options.tracking_uri, "--data-dir", str(options.data_dir),
            "--cache-dir", str(options.cache_dir), "--quiet"]
    argv += ["--ray-address", options.ray_address] if options.ray_address else []
    argv += ["--num-cpus", str(options.num_cpus)] if options.num_cpus else []
    argv += ["--fresh"] if options.fresh else []
    argv += [arg for item in options.overrides for arg in ("--set", item)]
    argv += ["--accept-stale"] if options.accept_stale else []
    argv += ["--executor", options.executor]
    log = log or default_log(the_grid.name)
    pid = launch(argv, log)
    typer.echo(f"{the_grid.name}: driver started in the background, pid {pid}; log {log}")
    typer.echo(f"follow it with: recsec status {grid} --tracking-uri {options.tracking_uri} "
               f"--data-dir {options.data_dir} --watch")


def plan(
    grid: GridPath,
    tracking: TrackingUri = None,
    data: DataDir = None,
    cache: CacheDir = None,
    overrides: Overrides = None,
    accept_stale: AcceptStale = False,
):
    """Print GRID's cells, what is cached, already done or stale, and the resources asked, without running."""
    from recsec.harness.planner import render_plan

    the_plan, _, _ = _read_only_plan(grid, tracking, data, cache, overrides, accept_stale)
    typer.echo(render_plan(the_plan))


def _read_only_plan(grid: Path, tracking, data, cache, overrides=None, accept_stale=False):
    """Load and plan GRID against MLflow and the cache without changing either."""
    from recsec.harness.driver import prepare
    from recsec.harness.grid import load_grid

    with user_errors():
        return prepare(load_grid(grid, tuple(overrides or ())),
                       _options(tracking, None, data, cache, accept_stale=accept_stale))


def status(
    grid: GridPath,
    tracking: TrackingUri = None,
    data: DataDir = None,
    cache: CacheDir = None,
    watch: Annotated[bool, typer.Option("--watch", help="Print again every --interval seconds until the driver stops.")] = False,
    interval: Annotated[float, typer.Option("--interval", min=1.0, help="Seconds between --watch updates.")] = 10.0,
    overrides: Overrides = None,
):
    """Count GRID's cells by state in MLflow (finished, failed, not started) and show its driver:
    running where, how far, or lost. Works from any shell that reaches the tracking store."""
    import time

    from recsec.harness.heartbeat import STALE_AFTER_S

    watching_since = last_live = time.time()
    while True:
        lines, driver, all_finished = _status_lines(grid, tracking, data, cache, overrides)
        typer.echo("\n".join(lines))
        if not watch:
            return
        now = time.time()
        live = bool(driver) and driver["state"] == "running" and now - driver["updated"] < STALE_AFTER_S
        if live:
            last_live = now
        elif driver and driver["state"] != "running" and driver["updated"] >= watching_since:
            return  # it ended while we watched
        elif all_finished:
            return
        elif now - last_live > STALE_AFTER_S:  # a detached driver takes seconds to start; not this long
            typer.echo(f"no driver is running {grid}; `recsec run {grid}` resumes it")
            return
        time.sleep(interval)
        typer.echo("")


def _status_lines(grid: Path, tracking, data, cache, overrides=None) -> tuple[list[str], dict | None, bool]:
    from recsec.harness.driver import prepare
    from recsec.harness.errors import DataError
    from recsec.harness.grid import expand, load_grid
    from recsec.harness.heartbeat import describe
    from recsec.harness.tracking import CELL_HASH, KIND, Tracker

    note = ""
    with user_errors():
        the_grid = load_grid(grid, tuple(overrides or ()))
        try:
            grid_plan, tracker, experiment_id = prepare(the_grid, _options(tracking, None, data, cache))
            wanted = {pc.cell_hash for pc in grid_plan.cells}
        except DataError as exc:
            # Watching a cluster's grid from a machine without its data: the cells' hashes need
            # the dataset's digest, so count what MLflow has instead of matching the plan.
            tracker = Tracker(tracking_uri(tracking))
            experiment_id = tracker.experiment(the_grid.name, create=False)
            wanted = None
            note = f" (cells not started are not counted here: {exc})"
    name = the_grid.name
    # The driver's state first: it records its end after its last cell's run, so when it reads
    # ended, the counts read next are final (read the other way, a watch could stop on a count
    # taken just before the last cell finished).
    driver = tracker.driver_state(experiment_id) if experiment_id else None
    latest: dict[str, str] = {}
    runs = tracker.runs(experiment_id, f"tags.`{KIND}` = 'cell'") if experiment_id else []
    for run_ in sorted(runs, key=lambda r: r.info.start_time):
        h = run_.data.tags.get(CELL_HASH)
        if (wanted is None or h in wanted) and latest.get(h) != "FINISHED":
            latest[h] = run_.info.status
    counts = Counter(latest.values())
    total = len(wanted) if wanted is not None else len(expand(the_grid))
    counts["NOT STARTED"] = len(wanted) - len(latest) if wanted is not None else 0
    lines = [f"{name}: {total} cell{'' if total == 1 else 's'}" + note]
    for state in ("FINISHED", "FAILED", "RUNNING", "KILLED", "NOT STARTED"):
        if counts.get(state):
            lines.append(f"  {state.lower():12s} {counts[state]}")
    lines.append(describe(driver))
    return lines, driver, counts.get("FINISHED", 0) == total
