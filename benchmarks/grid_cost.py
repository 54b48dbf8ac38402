"""A grid's cost, read back from MLflow, and its wall time predicted for a cluster.

    python benchmarks/grid_cost.py --grid G [--tracking-uri URI] [--workers 4 --cpus 8 --gpus 1]
    python benchmarks/grid_cost.py --grid G --check --data-dir ../shared/data [--set KEY=VALUE]

The first form reads a finished grid's runs: trainings against cells, task seconds, the largest
peak memory, and, from each task's logged seconds, the wall time Ray's schedule would take on
`--workers` nodes of `--cpus` CPUs and `--gpus` GPUs (harness/schedule_model.py: targets first,
cells as their target lands, the grid's `resources`; `--overhead` seconds per task, `--fixed` for
Ray's start). `--check` tests that model: it runs the grid on a local Ray with 1 CPU and then 2
(fresh caches, so each trains its targets), fits the per-task overhead to the 1-CPU run, predicts
the 2-CPU run from the 2-CPU run's own task seconds and from the 1-CPU run's, and prints each
beside the measured wall time.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from recsec.harness import settings  # noqa: E402
from recsec.harness.grid import Grid, expand, load_grid  # noqa: E402
from recsec.harness.schedule_model import Node, Task, calibrate_overhead, predict  # noqa: E402
from recsec.harness.tracking import CELL_HASH, KIND, TARGET_HASH, Tracker  # noqa: E402


def logged_tasks(grid: Grid, tracking_uri: str) -> tuple[list[Task], list]:
    """The grid's tasks as Ray ran them, with their logged seconds, in the driver's submission
    order (targets in the order of their first cell, then the cells in the grid's order, each an
    attack then a grade); and the finished runs."""
    tracker = Tracker(tracking_uri)
    experiment = tracker.experiment(grid.name, create=False)
    if experiment is None:
        raise SystemExit(f"no MLflow experiment {grid.name!r} in {tracking_uri}: run the grid first")
    runs = [r for r in tracker.runs(experiment) if r.info.status == "FINISHED"]
    targets = {r.data.tags[TARGET_HASH]: r for r in runs if r.data.tags.get(KIND) == "target"}
    cells = {r.data.tags[CELL_HASH]: r for r in runs if r.data.tags.get(KIND) == "cell"}
    digest = next((r.data.tags["recsec.dataset_digest"] for r in runs), "")
    planned = [(cell.target_hash(digest), cell.cell_hash(digest)) for cell in expand(grid)]
    train, attack = grid.resources.train, grid.resources.attack
    tasks = []
    for target_hash in dict.fromkeys(target for target, _ in planned):
        if target_hash in targets:
            tasks.append(Task(f"target {target_hash}", targets[target_hash].data.metrics.get("train_seconds", 0.0),
                              train.num_cpus, train.num_gpus))
    for target_hash, cell_hash in planned:
        if cell_hash not in cells:
            continue
        metrics = cells[cell_hash].data.metrics
        after = (f"target {target_hash}",) if target_hash in targets else ()  # else it came from the cache
        tasks.append(Task(f"attack {cell_hash}", metrics.get("attack_seconds", 0.0), attack.num_cpus,
                          attack.num_gpus, after))
        tasks.append(Task(f"grade {cell_hash}", metrics.get("eval_seconds", 0.0), attack.num_cpus,
                          attack.num_gpus, (f"attack {cell_hash}",)))
    return tasks, runs


def report(args) -> None:
    grid = load_grid(args.grid, tuple(args.overrides))
    cells = expand(grid)
    tasks, runs = logged_tasks(grid, args.tracking_uri or settings.default_tracking_uri())
    cell_runs = [r for r in runs if r.data.tags.get(KIND) == "cell"]
    target_runs = [r for r in runs if r.data.tags.get(KIND) == "target"]
    distinct_targets = len({c.target_hash("d") for c in cells})
    distinct_aux = len({c.auxiliary_hash("d") for c in cells if c.needs_auxiliary})
    peak = max((r.data.metrics.get("peak_rss_mb", 0.0) for r in runs), default=0.0)
    print(f"grid {grid.name}: {len(cells)} cells planned, {len({r.data.tags[CELL_HASH] for r in cell_runs})} finished")
    print(f"target trainings logged: {len(target_runs)} for {distinct_targets} distinct targets; "
          f"auxiliary models needed: {distinct_aux} distinct (their trainings are not logged: not in the prediction)")
    print(f"task seconds: targets {sum(t.seconds for t in tasks if t.name.startswith('target')):.0f} s, "
          f"cells {sum(t.seconds for t in tasks if not t.name.startswith('target')):.0f} s")
    print(f"largest peak RSS of a worker: {peak:.0f} MB")
    nodes = [Node(args.cpus, args.gpus)] * args.workers
    wall = predict(tasks, nodes, overhead=args.overhead, fixed=args.fixed).wall_seconds
    print(f"predicted wall time on {args.workers} x ({args.cpus:g} CPUs, {args.gpus:g} GPUs), "
          f"{args.overhead:g} s a task, {args.fixed:g} s to start: {wall / 60:.1f} min")


def check(args) -> None:
    from recsec.harness.driver import RunOptions, run_grid

    grid = load_grid(args.grid, tuple(args.overrides))
    work = Path(tempfile.mkdtemp(prefix="recsec-cost-"))
    measured = {}
    for cpus in (1, 2):
        uri = f"sqlite:///{work}/cpus-{cpus}.db"
        summary = run_grid(args.grid, RunOptions(tracking_uri=uri, data_dir=args.data_dir, cache_dir=work / f"cache-{cpus}",
                                                 num_cpus=cpus, progress=False, overrides=tuple(args.overrides)))
        if summary.failed:
            raise SystemExit(f"{summary.failed} cells failed with {cpus} CPUs: fix the grid first")
        tasks, _ = logged_tasks(grid, uri)
        measured[cpus] = (summary.wall_seconds, summary.ray_start_seconds, tasks)
        print(f"{cpus} CPU(s): {summary.wall_seconds:.1f} s wall ({summary.ray_start_seconds:.1f} s to start Ray), "
              f"{len(tasks)} tasks, {sum(t.seconds for t in tasks):.1f} s of their own", flush=True)
    wall_1, start_1, tasks_1 = measured[1]
    own = {cpus: sum(t.seconds for t in tasks) for cpus, (_, _, tasks) in measured.items()}
    print(f"the tasks' own seconds, 2 CPUs against 1: {own[2] / own[1]:.2f}x (two tasks at once share the machine "
          f"with each other, the driver, Ray and the servers)")
    overhead = calibrate_overhead(tasks_1, [Node(1)], wall_1, start_1)
    print(f"\nper-task overhead fitted to the 1-CPU run: {overhead:.2f} s\n")
    wall_2, start_2, tasks_2 = measured[2]
    print("| predicting the 2-CPU run | predicted s | measured s | predicted / measured |\n|---|---|---|---|")
    for label, tasks in (("from its own task seconds", tasks_2), ("from the 1-CPU run's task seconds", tasks_1)):
        wall = predict(tasks, [Node(2)], overhead=overhead, fixed=start_2).wall_seconds
        print(f"| {label} | {wall:.1f} | {wall_2:.1f} | {wall / wall_2:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--grid", required=True)
    parser.add_argument("--tracking-uri", default=None)
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--cpus", type=float, default=2, help="CPUs per worker node")
    parser.add_argument("--gpus", type=float, default=0, help="GPUs per worker node")
    parser.add_argument("--overhead", type=float, default=0.0, help="seconds each task costs beyond its own")
    parser.add_argument("--fixed", type=float, default=0.0, help="seconds before the first task (Ray's start)")
    parser.add_argument("--check", action="store_true", help="run the grid with 1 and 2 CPUs and test the model")
    parser.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data")
    args = parser.parse_args()
    check(args) if args.check else report(args)


if __name__ == "__main__":
    main()
