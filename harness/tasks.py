"""A grid's tasks as plain functions: train a target, train the attacker's auxiliary model, run
a cell. No Ray, no MLflow: the driver wraps these in Ray tasks and tests call them directly.
Each dispatches to the module that runs that kind of cell: membership inference, or by what the
target consumes (user ids or item sequences); each returns a plain record the driver logs.
"""

from __future__ import annotations

import attacks
import defenses
import models
from harness import membership, sequential, stealing, visual
from harness.code_identity import fingerprint
from harness.data import Interactions
from harness.grid import Cell
from harness.plugins import load_plugins
from harness.records import LISTS_WIDTH, CellRecord, TargetRecord, peak_rss_mb, pick_device

__all__ = ["LISTS_WIDTH", "CellRecord", "TargetRecord", "auxiliary_code", "cell_code", "peak_rss_mb",
           "pick_device", "run_cell", "target_code", "train_auxiliary", "train_target"]

DATA_CODE = "harness.data.cache"  # loading and preprocessing: what every result's data went through


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


# -- the code that produces each result (harness.code_identity) ----------------------------------

def target_code(cell: Cell) -> str:
    """The fingerprint of the code that trains the cell's target."""
    return _fingerprint(_target_modules(cell))


def auxiliary_code(cell: Cell) -> str:
    """The fingerprint of the code that trains the attacker's auxiliary (or shadow) model."""
    return _fingerprint((DATA_CODE, _runner(cell).__name__, _clone_module(cell)))


def cell_code(cell: Cell) -> str:
    """The fingerprint of the code behind a cell's numbers: its target's, the attack's, the
    defense's and the clone's, and the harness module that runs the cell."""
    modules = _target_modules(cell) + (_clone_module(cell), attacks.attack_class(cell.attack.name).__module__)
    if cell.defense.name != "none":
        modules += (defenses.defense_class(cell.defense.name).__module__,)
    return _fingerprint(modules)


def _target_modules(cell: Cell) -> tuple[str, ...]:
    modules = (DATA_CODE, _runner(cell).__name__, _model_module(cell.target.name))
    if cell.defense_shapes_target:
        modules += (defenses.defense_class(cell.defense.name).__module__,)
    return modules


def _clone_module(cell: Cell) -> str:
    return _model_module(cell.target.name if cell.clone.name == "same" else cell.clone.name)


def _model_module(name: str) -> str:
    try:
        return models.model_class(name).__module__
    except (KeyError, ValueError):  # a visual recommender, registered apart
        from models.visual import visual_model_class
        return visual_model_class(name).__module__


def _fingerprint(modules: tuple[str, ...]) -> str:
    return fingerprint(tuple(sorted(set(modules))))
