"""What serving each target from its own process costs: a grid's cells run twice on a local Ray,
once with the target served by its actor and the attack holding only an oracle client (recsec's
default), once with each cell serving its target inside its own task (the in-process oracle of
before). Targets and auxiliary models are trained first and cached, so both runs time the cells
only. Prints wall time, the cells' own time and the ratio, and checks the numbers agree.

    python benchmarks/serving.py grids/stealing/main-ml1m.yaml --data-dir ../shared/data \\
        [--set seeds=[0]] [--num-cpus 2]
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from recsec.harness.executors import ray_executor  # noqa: E402,F401  (Ray's environment, before Ray)
import ray  # noqa: E402

from recsec.harness import report  # noqa: E402
from recsec.harness.driver import RunOptions, run_grid  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("grid", type=Path)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--num-cpus", type=int, default=None)
    parser.add_argument("--metric", default="agr_at_10", help="checked equal between the two runs")
    parser.add_argument("--repeats", type=int, default=2, help="pairs of runs, in-cell then isolated each")
    parser.add_argument("--timeline", type=Path, default=None,
                        help="a folder: write each run's Ray timeline there (chrome://tracing) and sum its "
                             "time by kind of task")
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="recsec-serving-"))
    base = dict(data_dir=args.data_dir, cache_dir=work / "cache", num_cpus=args.num_cpus, progress=False,
                overrides=tuple(args.overrides))
    warm = run_grid(args.grid, RunOptions(tracking_uri=f"sqlite:///{work}/warm.db", **base))
    print(f"{warm.grid}: {warm.cells} cells; trained {warm.targets_trained} targets, {warm.auxiliary_trained} "
          f"auxiliary models (cached for both runs)", flush=True)

    modes = {True: "served by an actor (isolated)", False: "served inside the cell's task"}
    walls: dict[bool, list[float]] = {True: [], False: []}
    cells: dict[bool, list[float]] = {True: [], False: []}
    frames = {}
    for repeat in range(args.repeats):
        for isolate in (False, True):  # pair by pair, so a drifting machine hits both alike
            uri = f"sqlite:///{work}/{'isolated' if isolate else 'in_cell'}-{repeat}.db"
            start = time.perf_counter()
            if args.timeline:  # Ray started here, so that the run leaves it up to be read
                ray.init(num_cpus=args.num_cpus, include_dashboard=False, logging_level=logging.WARNING,
                         log_to_driver=False)
            summary = run_grid(args.grid, RunOptions(tracking_uri=uri, isolate_oracle=isolate, **base))
            walls[isolate].append(time.perf_counter() - start)
            if args.timeline:
                print(timeline_summary(args.timeline / f"{'isolated' if isolate else 'in_cell'}-{repeat}.json"))
                ray.shutdown()
            frame = report.cell_frame(uri, summary.grid)
            frames[isolate] = frame.set_index("tags.recsec.cell_hash")
            cells[isolate].append(frame["metrics.cell_seconds"].sum())
            print(f"  {modes[isolate]}: {walls[isolate][-1]:.1f}s wall, {summary.failed} failed", flush=True)

    print("\n| serving | wall s (median) | cells' own s, summed (median) |\n|---|---|---|")
    for isolate in (True, False):
        print(f"| {modes[isolate]} | {statistics.median(walls[isolate]):.1f} | {statistics.median(cells[isolate]):.1f} |")
    ratios = [a / b for a, b in zip(walls[True], walls[False])]
    print(f"\nwall ratio isolated / in-cell, pair by pair: {', '.join(f'{r:.2f}' for r in ratios)}")
    a, b = frames[True][f"metrics.{args.metric}"], frames[False][f"metrics.{args.metric}"]
    diff = (a - b.reindex(a.index)).abs().max()
    print(f"{args.metric}: largest difference between the two serving modes over {len(a)} cells: {diff:.2e}")
    return 0 if diff < 1e-9 else 1


def timeline_summary(path: Path) -> str:
    """Write Ray's timeline to `path`; the seconds its tasks and actors' methods took, by name."""
    path.parent.mkdir(parents=True, exist_ok=True)
    events = ray.timeline(filename=None)
    path.write_text(json.dumps(events))
    seconds: dict[str, float] = {}
    counts: dict[str, int] = {}
    for event in events:
        if event.get("ph") == "X" and "dur" in event:
            seconds[event["name"]] = seconds.get(event["name"], 0.0) + event["dur"] / 1e6
            counts[event["name"]] = counts.get(event["name"], 0) + 1
    rows = sorted(seconds.items(), key=lambda item: -item[1])[:12]
    return "\n".join(f"    {name}: {total:.1f} s over {counts[name]}" for name, total in rows)


if __name__ == "__main__":
    raise SystemExit(main())
