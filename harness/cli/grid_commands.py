"""`recsec run|plan|status|report`: the commands that work on a grid."""

from __future__ import annotations

from collections import Counter
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from harness.cli.common import (
    EXIT_CELLS_FAILED,
    EXIT_OK,
    CacheDir,
    DataDir,
    RayAddress,
    TrackingUri,
    cache_dir,
    data_dir,
    fail,
    tracking_uri,
    user_errors,
)
from harness.errors import RecsecError

GridPath = Annotated[Path, typer.Argument(help="Grid file (YAML).", show_default=False)]


def _options(tracking, ray_address, data, cache, fresh=False, num_cpus=None, progress=True):
    from harness.driver import RunOptions

    return RunOptions(
        tracking_uri=tracking_uri(tracking), data_dir=data_dir(data), cache_dir=cache_dir(cache),
        ray_address=ray_address, num_cpus=num_cpus, fresh=fresh, progress=progress,
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
):
    """Run every cell of GRID not yet finished, log each to MLflow, print a comparison table.

    Exit code 0: every cell finished; 1: some cells failed (the rest still ran); 2: invalid input.
    """
    from harness import report
    from harness.driver import run_grid

    options = _options(tracking, ray_address, data, cache, fresh, num_cpus, progress=not quiet)
    with user_errors():
        summary = run_grid(grid, options)
    typer.echo(
        f"{summary.grid}: {summary.finished} cells finished, {summary.failed} failed, "
        f"{summary.skipped} already done; targets trained {summary.targets_trained}, "
        f"from cache {summary.targets_from_cache}; "
        + (f"auxiliary models trained {summary.auxiliary_trained}, from cache {summary.auxiliary_from_cache}; "
           if summary.auxiliary_trained or summary.auxiliary_from_cache else "")
        + f"{summary.wall_seconds:.1f}s "
        f"(Ray start {summary.ray_start_seconds:.1f}s, task time {summary.task_seconds:.1f}s)"
    )
    for label, error in summary.failures:
        typer.echo(f"FAILED {label}: {error}", err=True)
    try:
        frame = report.cell_frame(options.tracking_uri, str(grid))
        k = _main_k(frame)
        typer.echo("")
        typer.echo(report.to_markdown(report.summary(frame, k), index=False))
        typer.echo(f"\nMLflow: {options.tracking_uri} (experiment {summary.grid})")
    except RecsecError as exc:
        typer.echo(f"(no table: {exc})", err=True)
    raise typer.Exit(EXIT_CELLS_FAILED if summary.failed else EXIT_OK)


def _main_k(frame) -> int:
    """The K the summary shows: the served list's length when agreement was measured there
    (stealing), else the largest measured K within it (extraction measures K <= 20 of 100)."""
    ks = sorted(int(c.split("_")[-1]) for c in frame if c.startswith("metrics.agr_at_"))
    lengths = frame.get("tags.list_length")
    if lengths is not None and lengths.nunique() == 1:
        length = int(lengths.iloc[0])
        within = [k for k in ks if k <= length]
        return length if length in ks or not within else within[-1]
    return ks[len(ks) // 2] if ks else 50


def plan(
    grid: GridPath,
    tracking: TrackingUri = None,
    data: DataDir = None,
    cache: CacheDir = None,
):
    """Print GRID's cells, what is cached and already done, and the resources asked, without running."""
    from harness.planner import render_plan

    the_plan, _, _ = _read_only_plan(grid, tracking, data, cache)
    typer.echo(render_plan(the_plan))


def _read_only_plan(grid: Path, tracking, data, cache):
    """Load and plan GRID against MLflow and the cache without changing either."""
    from harness.driver import prepare
    from harness.grid import load_grid

    with user_errors():
        return prepare(load_grid(grid), _options(tracking, None, data, cache))


def status(
    grid: GridPath,
    tracking: TrackingUri = None,
    data: DataDir = None,
    cache: CacheDir = None,
):
    """Count GRID's cells by state in MLflow: finished, failed, running, not started."""
    from harness.tracking import CELL_HASH, KIND

    the_plan, tracker, experiment_id = _read_only_plan(grid, tracking, data, cache)
    the_grid = the_plan.grid
    wanted = {pc.cell_hash for pc in the_plan.cells}
    latest: dict[str, str] = {}
    runs = tracker.runs(experiment_id, f"tags.`{KIND}` = 'cell'") if experiment_id else []
    for run_ in sorted(runs, key=lambda r: r.info.start_time):
        h = run_.data.tags.get(CELL_HASH)
        if h in wanted and latest.get(h) != "FINISHED":
            latest[h] = run_.info.status
    counts = Counter(latest.values())
    counts["NOT STARTED"] = len(wanted) - len(latest)
    typer.echo(f"{the_grid.name}: {len(wanted)} cells")
    for state in ("FINISHED", "FAILED", "RUNNING", "KILLED", "NOT STARTED"):
        if counts.get(state):
            typer.echo(f"  {state.lower():12s} {counts[state]}")


class Format(str, Enum):
    md = "md"
    csv = "csv"


class Plot(str, Enum):
    line = "line"
    heatmap = "heatmap"


def report(
    grid: Annotated[str, typer.Option("--grid", help="Grid file or MLflow experiment name.")],
    metric: Annotated[str, typer.Option("--metric", help="Metric, e.g. agr_at_50, recall_at_50.")],
    rows: Annotated[str, typer.Option("--rows", help="Axis along the rows.")] = "attack",
    cols: Annotated[str, typer.Option("--cols", help="Axis along the columns.")] = "defense",
    fmt: Annotated[Format, typer.Option("--format", help="md or csv.")] = Format.md,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Write here instead of stdout.")] = None,
    plot: Annotated[Optional[Plot], typer.Option(
        "--plot", help="Draw a PNG to --output instead: `line` (metric against --cols, one line per "
                       "--rows value) or `heatmap` (--rows x --cols).")] = None,
    tracking: TrackingUri = None,
):
    """Pivot a metric over two axes from MLflow: mean ± std over seeds; or plot it."""
    from harness import report as rep

    if plot is not None and output is None:
        raise fail("--plot needs --output FILE.png")
    with user_errors():
        frame = rep.cell_frame(tracking_uri(tracking), grid)
        if plot is not None:
            from harness import plots

            draw = plots.line_plot if plot is Plot.line else plots.heatmap
            args = (frame, metric, cols, rows) if plot is Plot.line else (frame, metric, rows, cols)
            typer.echo(f"wrote {draw(*args, output)}")
            return
        if fmt is Format.md:
            text = rep.to_markdown(rep.pivot(frame, metric, rows, cols))
        else:
            text = rep.aggregate(frame, metric, [rows, cols] if rows != cols else [rows]).to_csv(index=False)
    if output:
        output.write_text(text + ("\n" if not text.endswith("\n") else ""))
        typer.echo(f"wrote {output}")
    else:
        typer.echo(text)
