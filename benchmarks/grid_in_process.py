"""Run a grid's cells one after another in this process, on one device, with neither Ray nor
MLflow: for a GPU box that has torch but not the harness's services, and for profiling a cell.
Each distinct target and auxiliary model trains once; every cell's record is written as a JSON
line, and a table of means over seeds is printed. Results are not logged to MLflow.

    python benchmarks/grid_in_process.py grids/extraction/gro-ml100k.yaml --data-dir ../shared/data \\
        [--device cuda] [--out cells.jsonl] [--metric agr_at_10 --metric hr_at_10]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from harness import tasks  # noqa: E402
from harness.data import dataset_digest, load_dataset  # noqa: E402
from harness.grid import expand, load_grid  # noqa: E402

AXES = ("target", "clone", "attack", "defense", "query_budget", "known_share")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("grid", type=Path)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out", type=Path, help="write one JSON line per cell here")
    parser.add_argument("--metric", action="append", help="columns of the printed table (repeatable)")
    parser.add_argument("--where", action="append", default=[], metavar="AXIS=TEXT",
                        help="run only cells whose AXIS label contains TEXT (repeatable), e.g. target=sasrec")
    args = parser.parse_args(argv)

    grid = load_grid(args.grid)
    cells = [cell for cell in expand(grid) if selected(cell, args.where)]
    ds = grid.dataset
    options = dict(min_user_interactions=ds.min_user_interactions, min_item_interactions=ds.min_item_interactions,
                   params=ds.params)
    digest = dataset_digest(ds.name, data_dir=args.data_dir, **options)
    data = load_dataset(ds.name, data_dir=args.data_dir, **options)
    shadow = grid.membership.shadow_dataset  # a cross-dataset membership grid's shadow part
    shadow_data = data if shadow is None else load_dataset(
        shadow.name, data_dir=args.data_dir, min_user_interactions=shadow.min_user_interactions,
        min_item_interactions=shadow.min_item_interactions, params=shadow.params)
    print(f"{grid.name}: {len(cells)} cells on {args.device}, {data.n_users} users x {data.n_items} items", flush=True)

    start = time.perf_counter()
    targets, auxiliaries, rows = {}, {}, []
    out = args.out.open("w") if args.out else None
    for i, cell in enumerate(cells, 1):
        target_hash = cell.target_hash(digest)
        if target_hash not in targets:
            targets[target_hash] = tasks.train_target(cell, data, target_hash, args.device)
            seconds = targets[target_hash].metrics["train_seconds"]
            print(f"  target {cell.target.label()} {cell.defense.label() if cell.training_defense else ''} "
                  f"seed={cell.seed}: {seconds:.1f}s", flush=True)
        auxiliary = None
        if cell.needs_auxiliary:
            aux_hash = cell.auxiliary_hash(digest)
            if aux_hash not in auxiliaries:
                aux_data = shadow_data if cell.membership is not None else data
                auxiliaries[aux_hash] = tasks.train_auxiliary(cell, aux_data, aux_hash, args.device)
            auxiliary = auxiliaries[aux_hash]
        record = tasks.run_cell(cell, data, targets[target_hash], cell.cell_hash(digest), args.device,
                                auxiliary=auxiliary)
        row = {**cell.axes(), **{f"target.{k}": v for k, v in targets[target_hash].metrics.items()},
               **record.metrics}
        rows.append(row)
        if out:
            out.write(json.dumps(row, default=str) + "\n")
            out.flush()
        print(f"[{i}/{len(cells)}] {cell.attack.label()} vs {cell.target.label()} / {cell.defense.label()} "
              f"seed={cell.seed}: {record.metrics.get('cell_seconds', 0):.1f}s", flush=True)
    print(f"wall {time.perf_counter() - start:.1f}s on {args.device}")
    print_table(rows, args.metric or default_metrics(rows))
    return 0


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
    groups = defaultdict(list)
    for row in rows:
        groups[tuple(row[a] for a in AXES)].append(row)
    print("| " + " | ".join(AXES + tuple(metrics)) + " | seeds |")
    print("|" + "---|" * (len(AXES) + len(metrics) + 1))
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
