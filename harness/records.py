"""What a task returns to the driver: plain records of a trained model or a finished cell."""

from __future__ import annotations

import resource
import sys
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from recsec.harness.units import PerUnit, split_measured


@dataclass
class TargetRecord:
    """A trained target: its weights (a plain payload) and what training measured."""

    target_hash: str
    payload: dict
    metrics: dict[str, float]
    params: dict[str, object] = field(default_factory=dict)
    # Every target user's top-`LISTS_WIDTH` list (training items excluded), ranked once at
    # training time so that cells never re-rank the whole target half.
    lists: np.ndarray | None = None
    node: str = ""  # host/Ray node that trained it (set by the driver's task wrapper)


LISTS_WIDTH = 100


@dataclass
class CellRecord:
    cell_hash: str
    metrics: dict[str, float]
    node: str = ""  # host/Ray node that ran it
    # Whether the attack ran in another process than the one serving its target (harness.serving).
    oracle_isolated: bool = False
    # The values some metrics are computed from, one per unit graded (harness.units).
    units: dict[str, PerUnit] = field(default_factory=dict)
    device: str = "cpu"  # where it was graded (the attack ran on the same kind of resources)


@dataclass
class AttackOutcome:
    """What a cell's attack step hands to its grader: the attack's result and its time."""

    result: object
    attack_seconds: float
    peak_rss_mb: float
    node: str = ""


def pick_device(gpu_ids: list | None = None) -> str:
    """cuda when the task was given a GPU (and torch can see one), else cpu."""
    return "cuda" if gpu_ids and torch.cuda.is_available() else "cpu"


def peak_rss_mb() -> float:
    """This process's peak resident memory so far (a Ray worker's, across the tasks it ran)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def cell_record(cell_hash: str, measured: dict, *, counts: dict, target: TargetRecord, outcome: AttackOutcome,
                grade_seconds: float, oracle_isolated: bool, device: str = "cpu") -> CellRecord:
    """A cell's record: its attack metrics (numbers, and the units of those graded per unit)
    plus what every family logs alike (the oracle's counts, timings, memory, and the target's own
    undefended utility, so every row of a table carries it)."""
    measured, units = split_measured(measured)
    measured = {**measured, **counts}
    measured.update(attack_seconds=outcome.attack_seconds, eval_seconds=grade_seconds,
                    cell_seconds=outcome.attack_seconds + grade_seconds,
                    peak_rss_mb=max(outcome.peak_rss_mb, peak_rss_mb()))
    measured.update({name: value for name, value in target.metrics.items() if "_at_" in name})
    return CellRecord(cell_hash, measured, oracle_isolated=oracle_isolated, units=units, device=describe_device(device))


def describe_device(device: str) -> str:
    """`cpu`, or the GPU's name (`cuda: NVIDIA H100 80GB HBM3`): what a record says it ran on."""
    if str(device).startswith("cuda") and torch.cuda.is_available():
        return f"cuda: {torch.cuda.get_device_name(torch.device(device))}"
    return str(device)
