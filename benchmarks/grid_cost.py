"""What a finished grid cost, read back from MLflow: wall time from the first run's start to the
last run's end, trainings against cells (each distinct target and auxiliary model should be
trained once), task seconds, and the largest per-task peak memory.

    python benchmarks/grid_cost.py --grid grids/stealing/main-ml1m.yaml [--tracking-uri URI]
"""

from __future__ import annotations

import argparse

from recsec.harness import settings
from recsec.harness.grid import expand, load_grid
from recsec.harness.tracking import CELL_HASH, KIND, Tracker


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--grid", required=True)
    parser.add_argument("--tracking-uri", default=None)
    args = parser.parse_args()

    grid = load_grid(args.grid)
    cells = expand(grid)
    tracker = Tracker(args.tracking_uri or settings.default_tracking_uri())
    experiment = tracker.experiment(grid.name, create=False)
    if experiment is None:
        raise SystemExit(f"no MLflow experiment {grid.name!r}: run the grid first")
    runs = [r for r in tracker.runs(experiment) if r.info.status == "FINISHED"]
    cell_runs = [r for r in runs if r.data.tags.get(KIND) == "cell"]
    target_runs = [r for r in runs if r.data.tags.get(KIND) == "target"]
    starts = [r.info.start_time for r in runs]
    ends = [r.info.end_time for r in runs if r.info.end_time]
    span = (max(ends) - min(starts)) / 1000 if runs else 0.0
    distinct_targets = len({c.target_hash("d") for c in cells})
    distinct_aux = len({c.auxiliary_hash("d") for c in cells if c.needs_auxiliary})
    peak = max((r.data.metrics.get("peak_rss_mb", 0.0) for r in runs), default=0.0)
    cell_seconds = sum(r.data.metrics.get("cell_seconds", 0.0) for r in cell_runs)
    train_seconds = sum(r.data.metrics.get("train_seconds", 0.0) for r in target_runs)
    print(f"grid {grid.name}: {len(cells)} cells planned, {len({r.data.tags[CELL_HASH] for r in cell_runs})} finished")
    print(f"logged span (first target start .. last cell end): {span / 60:.1f} min")
    print(f"target trainings logged: {len(target_runs)} for {distinct_targets} distinct targets; "
          f"auxiliary models needed: {distinct_aux} distinct")
    print(f"task seconds: targets {train_seconds:.0f} s, cells {cell_seconds:.0f} s")
    print(f"largest peak RSS of a worker: {peak:.0f} MB")


if __name__ == "__main__":
    main()
