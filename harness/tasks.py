"""A grid's tasks as plain functions: train a target, train the attacker's auxiliary model, and
a cell's attack and grading steps (its serving step is harness.serving). No Ray, no MLflow: the
executors run these and tests call them directly. Each asks the cell's family
(harness.families) to do the work and returns a plain record the driver logs.
"""

from __future__ import annotations

import time

from recsec.harness.code_identity import fingerprint
from recsec.harness.data import Interactions
from recsec.harness.cell import Cell
from recsec.harness.families import get_family
from recsec.harness.plugins import load_plugins
from recsec.harness.records import (LISTS_WIDTH, AttackOutcome, CellRecord, TargetRecord, cell_record, peak_rss_mb,
                             pick_device)
from recsec.harness.serving import TargetServer, in_process_client

__all__ = ["LISTS_WIDTH", "CellRecord", "TargetRecord", "attack_cell", "auxiliary_code", "cell_code",
           "grade_cell", "peak_rss_mb", "pick_device", "run_cell", "target_code", "train_auxiliary", "train_target"]


def _family(cell: Cell):
    load_plugins()  # in a worker, a plugin's family and attacks must be registered first
    return get_family(cell.family)


def train_target(cell: Cell, data: Interactions, target_hash: str, device: str = "cpu") -> TargetRecord:
    return _family(cell).train_target(cell, data, target_hash, device)


def train_auxiliary(cell: Cell, data: Interactions, auxiliary_hash: str, device: str = "cpu") -> TargetRecord:
    return _family(cell).train_auxiliary(cell, data, auxiliary_hash, device)


def attack_cell(cell: Cell, view, oracle, device: str = "cpu") -> AttackOutcome:
    """A cell's attack step, in the attack's process: the view its threat model grants and an
    oracle client, nothing of the target (harness.serving)."""
    family = _family(cell)
    start = time.perf_counter()
    result = family.run_attack(cell, view, oracle, device)
    return AttackOutcome(result, time.perf_counter() - start, peak_rss_mb())


def grade_cell(cell: Cell, data: Interactions, target: TargetRecord, view, outcome: AttackOutcome, counts: dict,
               cell_hash: str, device: str = "cpu", oracle_isolated: bool = True) -> CellRecord:
    """A cell's grading step: the attack's result measured against the target; `counts` are
    what the cell's oracle counted where it served."""
    start = time.perf_counter()
    measured = _family(cell).grade(cell, data, target, view, outcome.result, device)
    return cell_record(cell_hash, measured, counts=counts, target=target, outcome=outcome,
                       grade_seconds=time.perf_counter() - start, oracle_isolated=oracle_isolated, device=device)


def run_cell(cell: Cell, data: Interactions, target: TargetRecord, cell_hash: str,
             auxiliary: TargetRecord | None = None, device: str = "cpu") -> CellRecord:
    """A cell's three steps in this process: the record says its oracle was not isolated."""
    server = TargetServer(data, target, device)
    view = server.open(cell, cell_hash, auxiliary)
    outcome = attack_cell(cell, view, in_process_client(server, cell_hash), device)
    return grade_cell(cell, data, target, view, outcome, server.close(cell_hash), cell_hash, device,
                      oracle_isolated=False)


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
