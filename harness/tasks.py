"""A grid's tasks as plain functions: train a target, train the attacker's auxiliary model, run
a cell. No Ray, no MLflow: the driver wraps these in Ray tasks and tests call them directly.
Each asks the cell's family (harness.families) to do the work and returns a plain record the
driver logs.
"""

from __future__ import annotations

from harness.code_identity import fingerprint
from harness.data import Interactions
from harness.grid import Cell
from harness.plugins import load_plugins
from harness.records import LISTS_WIDTH, CellRecord, TargetRecord, peak_rss_mb, pick_device

__all__ = ["LISTS_WIDTH", "CellRecord", "TargetRecord", "auxiliary_code", "cell_code", "peak_rss_mb",
           "pick_device", "run_cell", "target_code", "train_auxiliary", "train_target"]


def _family(cell: Cell):
    load_plugins()  # in a worker, a plugin's family and attacks must be registered first
    return cell.family_plugin


def train_target(cell: Cell, data: Interactions, target_hash: str, device: str = "cpu") -> TargetRecord:
    return _family(cell).train_target(cell, data, target_hash, device)


def train_auxiliary(cell: Cell, data: Interactions, auxiliary_hash: str, device: str = "cpu") -> TargetRecord:
    return _family(cell).train_auxiliary(cell, data, auxiliary_hash, device)


def run_cell(cell: Cell, data: Interactions, target: TargetRecord, cell_hash: str,
             auxiliary: TargetRecord | None = None, device: str = "cpu") -> CellRecord:
    return _family(cell).run_cell(cell, data, target, cell_hash, device, auxiliary=auxiliary)


# -- the code that produces each result (harness.code_identity) ----------------------------------

def target_code(cell: Cell) -> str:
    """The fingerprint of the code that trains the cell's target."""
    return _fingerprint(_family(cell).target_modules(cell))


def auxiliary_code(cell: Cell) -> str:
    """The fingerprint of the code that trains the attacker's auxiliary (or shadow) model."""
    return _fingerprint(_family(cell).auxiliary_modules(cell))


def cell_code(cell: Cell) -> str:
    """The fingerprint of the code behind a cell's numbers: its target's, the attack's, the
    defense's and the clone's, and the modules that run the cell."""
    return _fingerprint(_family(cell).cell_modules(cell))


def _fingerprint(modules: tuple[str, ...]) -> str:
    return fingerprint(tuple(sorted(set(modules))))
