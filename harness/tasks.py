"""A grid's tasks as plain functions: train a target, train the attacker's auxiliary model, run
a cell. No Ray, no MLflow: the driver wraps these in Ray tasks and tests call them directly.
Each dispatches to the module that runs that kind of cell: membership inference, or by what the
target consumes (user ids or item sequences); each returns a plain record the driver logs.
"""

from __future__ import annotations

from harness import membership, sequential, stealing, visual
from harness.data import Interactions
from harness.grid import Cell
from harness.plugins import load_plugins
from harness.records import LISTS_WIDTH, CellRecord, TargetRecord, peak_rss_mb, pick_device

__all__ = ["LISTS_WIDTH", "CellRecord", "TargetRecord", "peak_rss_mb", "pick_device",
           "run_cell", "train_auxiliary", "train_target"]


def _runner(cell: Cell):
    load_plugins()  # a plugin's attack must be known before its family picks the runner
    if cell.membership is not None:
        return membership
    if cell.family == "visual":
        return visual
    return sequential if cell.sequential else stealing


def train_target(cell: Cell, data: Interactions, target_hash: str, device: str = "cpu") -> TargetRecord:
    return _runner(cell).train_target(cell, data, target_hash, device)


def train_auxiliary(cell: Cell, data: Interactions, auxiliary_hash: str, device: str = "cpu") -> TargetRecord:
    return _runner(cell).train_auxiliary(cell, data, auxiliary_hash, device)


def run_cell(cell: Cell, data: Interactions, target: TargetRecord, cell_hash: str, device: str = "cpu",
             auxiliary: TargetRecord | None = None) -> CellRecord:
    return _runner(cell).run_cell(cell, data, target, cell_hash, device, auxiliary=auxiliary)
