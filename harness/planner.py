"""From cells to a plan: which targets to train (one per distinct config), what is cached, what is
already done in MLflow, and what each stage asks of the cluster. Pure: it reads, never writes.

A finished cell or a cached target made by code other than today's (its code fingerprint differs,
see harness.code_identity) is *stale*: the plan redoes it unless the run accepts stale results."""

from __future__ import annotations

from dataclasses import dataclass, field

from recsec.harness import tasks
from recsec.harness.cache import TargetCache
from recsec.harness.grid import CORE_AXES, Cell, Grid


@dataclass(frozen=True)
class PlannedCell:
    cell: Cell
    cell_hash: str
    target_hash: str
    done: bool
    stale: bool = False  # finished, by other code: to run again (unless stale results are accepted)


@dataclass
class Plan:
    grid: Grid
    dataset_digest: str
    cells: list[PlannedCell]
    target_cells: dict[str, Cell] = field(default_factory=dict)  # target hash -> a cell that needs it
    cached_targets: set[str] = field(default_factory=set)
    stale_targets: set[str] = field(default_factory=set)  # cached, by other code: to train again
    accept_stale: bool = False

    @property
    def todo(self) -> list[PlannedCell]:
        return [c for c in self.cells if not c.done]

    @property
    def targets_to_train(self) -> list[str]:
        needed = {c.target_hash for c in self.todo}
        return [h for h in self.target_cells if h in needed and h not in self.cached_targets]


def make_plan(grid: Grid, cells: list[Cell], dataset_digest: str, cache: TargetCache,
              finished: dict[str, str | None], accept_stale: bool = False) -> Plan:
    """`finished`: cell hash -> the code fingerprint its finished run recorded."""
    planned, targets = [], {}
    for cell in cells:
        cell_hash = cell.cell_hash(dataset_digest)
        target_hash = cell.target_hash(dataset_digest)
        targets.setdefault(target_hash, cell)
        stale = cell_hash in finished and finished[cell_hash] != tasks.cell_code(cell)
        done = cell_hash in finished and (accept_stale or not stale)
        planned.append(PlannedCell(cell, cell_hash, target_hash, done, stale))
    present = {h for h in targets if h in cache}
    stale_targets = {h for h in present if cache.code_of(h) != tasks.target_code(targets[h])}
    cached = present if accept_stale else present - stale_targets
    return Plan(grid, dataset_digest, planned, targets, cached, stale_targets, accept_stale)


def render_plan(plan: Plan) -> str:
    grid = plan.grid
    res = grid.resources
    stale_cells = sum(pc.stale for pc in plan.cells)
    stale_note = ""
    if stale_cells or plan.stale_targets:
        stale_note = (f"; stale (made by other code): {stale_cells} cells, {len(plan.stale_targets)} targets, "
                      + ("reused (--accept-stale)" if plan.accept_stale else "to redo; --accept-stale reuses them"))
    lines = [
        f"grid {grid.name}: {len(plan.cells)} cells ({len(plan.todo)} to run, "
        f"{len(plan.cells) - len(plan.todo)} already finished in MLflow){stale_note}",
        f"dataset {grid.dataset.name} (digest {plan.dataset_digest[:12]}), seeds {grid.seeds}",
        f"targets: {len(plan.target_cells)} distinct, {len(plan.cached_targets)} cached, "
        f"{len(plan.targets_to_train)} to train",
        f"resources per task: train num_cpus={res.train.num_cpus} num_gpus={res.train.num_gpus}; "
        f"attack num_cpus={res.attack.num_cpus} num_gpus={res.attack.num_gpus}; "
        f"serve num_cpus={res.serve.num_cpus} num_gpus={res.serve.num_gpus} "
        f"servers={res.serve.servers or 'one per node'}",
        "",
    ]
    # The core axes, then the threat-model axes that differ between cells (the others are
    # constant and go on a line above the table).
    axes = [pc.cell.axes() for pc in plan.cells]
    named = list(dict.fromkeys(a for cell_axes in axes for a in cell_axes if a != "seed"))
    shown = [a for a in named if a in CORE_AXES or len({str(x.get(a, "")) for x in axes}) > 1]
    constant = {a: axes[0].get(a) for a in named if a not in shown and all(a in x for x in axes)}
    if constant and len(axes) > 1:
        lines.insert(-1, "every cell: " + ", ".join(f"{a}={v}" for a, v in constant.items()))
    rows = []
    for pc, cell_axes in zip(plan.cells, axes):
        status = ("done" if pc.done else "stale" if pc.stale
                  else "ready" if pc.target_hash in plan.cached_targets else "train")
        rows.append([status, pc.cell_hash[:10], *(cell_axes.get(a, "") for a in shown), cell_axes["seed"]])
    lines.append(format_table(["status", "cell", *shown, "seed"], rows))
    return "\n".join(lines)


def format_table(header: list[str], rows: list[list]) -> str:
    cells = [[str(v) for v in row] for row in [header] + rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    out = ["  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() for row in cells]
    out.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(out)
