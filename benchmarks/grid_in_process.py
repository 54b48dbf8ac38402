"""Run a grid in this process through the harness's scheduler and its local executor, with
neither Ray nor MLflow: for a GPU box that has torch but not the harness's services, and for
profiling a cell. Each distinct target and auxiliary model trains once; every cell's record is
written as a JSON line, and a table of means over seeds is printed. Results are not logged to
MLflow (with MLflow at hand, `recsec run GRID --executor local` does the same and logs them).

    python benchmarks/grid_in_process.py grids/extraction/gro-ml100k.yaml --data-dir ../shared/data \\
        [--device cuda] [--out cells.jsonl] [--set seeds=[0,1]] [--metric agr_at_10 --metric hr_at_10]
    python benchmarks/grid_in_process.py --table cells-seed0.jsonl --table cells-seed1.jsonl --metric ...
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from recsec.harness.families import shapes_target
from recsec.harness import record_file  # noqa: E402
from recsec.harness.cache import TargetCache  # noqa: E402
from recsec.harness.data import dataset_digest  # noqa: E402
from recsec.harness.executors.local import LocalExecutor  # noqa: E402
from recsec.harness.grid import all_axes, expand, load_grid  # noqa: E402
from recsec.harness.planner import make_plan  # noqa: E402
from recsec.harness.record_file import CellDocuments  # noqa: E402
from recsec.harness.tasks import cell_code  # noqa: E402
from recsec.harness.scheduler import RunSummary, cell_label, load_data, run_plan  # noqa: E402



def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("grid", type=Path, nargs="?")
    parser.add_argument("--data-dir", type=Path)
    parser.add_argument("--table", type=Path, action="append", default=[], metavar="JSONL",
                        help="print the table of earlier --out files (repeatable) instead of running a grid")
    parser.add_argument("--cache-dir", type=Path, help="trained targets (default: a temporary directory)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out", type=Path, help="write one JSON line per cell here")
    parser.add_argument("--metric", action="append", help="columns of the printed table (repeatable)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a grid key, the value read as YAML (repeatable), as `recsec run --set`")
    parser.add_argument("--where", action="append", default=[], metavar="AXIS=TEXT",
                        help="run only cells whose AXIS label contains TEXT (repeatable), e.g. target=sasrec")
    args = parser.parse_args(argv)
    if args.table:
        rows = [flat_row(record) for record in record_file.read(args.table)]
        print_table(rows, args.metric or default_metrics(rows))
        return 0
    if args.grid is None or args.data_dir is None:
        parser.error("a grid and --data-dir are needed (or --table FILE to print saved results)")

    grid = load_grid(args.grid, tuple(args.overrides))
    cells = [cell for cell in expand(grid) if selected(cell, args.where)]
    ds = grid.dataset
    digest = dataset_digest(ds.name, data_dir=args.data_dir, min_user_interactions=ds.min_user_interactions,
                            min_item_interactions=ds.min_item_interactions, params=ds.params)
    cache_dir = args.cache_dir or Path(tempfile.mkdtemp(prefix="recsec-cache-"))
    plan = make_plan(grid, cells, digest, TargetCache(cache_dir), finished={})
    data = load_data(grid, cells, args.data_dir, cache_dir, args.grid)
    main_data = data[ds.key()]
    print(f"{grid.name}: {len(cells)} cells on {args.device}, {main_data.n_users} users x {main_data.n_items} items",
          flush=True)

    start = time.perf_counter()
    log = JsonLines(args.out, len(cells), CellDocuments(plan, args.grid, args.overrides))
    summary = RunSummary(grid.name, len(cells))
    run_plan(plan, data, LocalExecutor(args.device), log, summary, cache_dir=cache_dir, progress=False)
    print(f"wall {time.perf_counter() - start:.1f}s on {args.device}; {summary.finished} cells finished, "
          f"{summary.failed} failed")
    for label, error in summary.failures:
        print(f"FAILED {label}: {error}")
    print_table(log.rows, args.metric or default_metrics(log.rows))
    return 1 if summary.failed else 0


class JsonLines:
    """The scheduler's log here: each finished cell's record (harness.record_file, the format
    `recsec export` writes) as a JSON line, kept for the table too."""

    def __init__(self, out: Path | None, cells: int, documents: CellDocuments):
        self.out = out.open("w") if out else None
        self.cells, self.documents, self.rows = cells, documents, []

    def logged_targets(self) -> set[str]:
        return set()

    def start(self, *, cells: int, tasks: int) -> None: ...

    def target(self, cell, record) -> None:
        self.documents.target(record)
        extra = f"{cell.defense.label()} " if shapes_target(cell.defense) else ""
        print(f"  target {cell.target.label()} {extra}seed={cell.seed}: "
              f"{record.metrics.get('train_seconds', 0):.1f}s", flush=True)

    def cell(self, cell, planned, record, error) -> None:
        if record is None:
            print(f"  FAILED {cell_label(cell)}", flush=True)
            return
        document = self.documents.cell(cell, planned, record, cell_code(cell))
        self.rows.append(flat_row(document))
        if self.out:
            self.out.write(record_file.dumps(document) + "\n")
            self.out.flush()
        print(f"[{len(self.rows)}/{self.cells}] {cell_label(cell)}: {record.metrics.get('cell_seconds', 0):.1f}s",
              flush=True)

    def progress(self, **counts) -> None: ...

    def close(self, outcome: str, **counts) -> None:
        if self.out:
            self.out.close()


def flat_row(record: dict) -> dict:
    """A record as one flat row: its axes, its target's metrics (`target.*`) and its own."""
    return {**record["axes"], **{f"target.{k}": v for k, v in record["target_metrics"].items()},
            **{k: (float("nan") if v is None else v) for k, v in record["metrics"].items()}}


def selected(cell, conditions: list[str]) -> bool:
    for condition in conditions:
        axis, _, text = condition.partition("=")
        if axis not in cell.axes():
            raise SystemExit(f"--where {condition!r}: no axis {axis!r}; axes are {', '.join(cell.axes())}")
        if text not in str(cell.axes()[axis]):
            return False
    return True


def default_metrics(rows: list[dict]) -> list[str]:
    wanted = ("roc_auc", "balanced_accuracy", "tpr_at_1pct_fpr", "target.recall_at_100", "defended_recall_at_100",
              "target.hr_at_10", "target.ndcg_at_10", "defended_hr_at_10", "agr_at_1", "agr_at_10", "agr_at_20",
              "surrogate_hr_at_10", "surrogate_ndcg_at_10",
              # Yue et al.'s table: N@10 / R@10 among 100 sampled negatives, target and surrogate
              "target.ndcg_at_10_sampled100", "target.hr_at_10_sampled100",
              "surrogate_ndcg_at_10_sampled100", "surrogate_hr_at_10_sampled100",
              "target.train_seconds", "cell_seconds")
    return [m for m in wanted if any(m in row for row in rows)]


def print_table(rows: list[dict], metrics: list[str]) -> None:
    # Every axis the rows have, in table order: never pooled.
    axes = tuple(a for a in all_axes() if any(a in row for row in rows))
    # Axes with one value in every row go above the table, not in a column of their own.
    fixed = [a for a in axes if len({str(row.get(a, "")) for row in rows}) == 1]
    if fixed and len(rows) > 1:
        print("every row: " + ", ".join(f"{a}={rows[0].get(a, '')}" for a in fixed))
        axes = tuple(a for a in axes if a not in fixed)
    groups = defaultdict(list)
    for row in rows:
        groups[tuple(row.get(a, "") for a in axes)].append(row)
    print("| " + " | ".join(axes + tuple(metrics)) + " | seeds |")
    print("|" + "---|" * (len(axes) + len(metrics) + 1))
    for key, members in sorted(groups.items(), key=lambda kv: tuple(map(str, kv[0]))):
        cells = []
        for metric in metrics:
            values = [r[metric] for r in members if isinstance(r.get(metric), (int, float))]
            if not values:
                cells.append("")
            elif len(values) == 1:
                cells.append(f"{values[0]:.4f}")
            else:
                cells.append(f"{statistics.mean(values):.4f} ± {statistics.stdev(values):.4f}")
        print("| " + " | ".join(map(str, key)) + " | " + " | ".join(cells) + f" | {len(members)} |")


if __name__ == "__main__":
    raise SystemExit(main())
