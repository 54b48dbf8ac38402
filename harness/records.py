"""What a task returns to the driver: plain records of a trained model or a finished cell."""

from __future__ import annotations

import resource
import sys
import time
from dataclasses import dataclass, field

import numpy as np
import torch


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
                grade_seconds: float, oracle_isolated: bool) -> CellRecord:
    """A cell's record: its attack metrics plus what every family logs alike (the oracle's
    counts, timings, memory, and the target's own undefended utility, so every row of a table
    carries it)."""
    measured = {**measured, **counts}
    measured.update(attack_seconds=outcome.attack_seconds, eval_seconds=grade_seconds,
                    cell_seconds=outcome.attack_seconds + grade_seconds,
                    peak_rss_mb=max(outcome.peak_rss_mb, peak_rss_mb()))
    measured.update({name: value for name, value in target.metrics.items() if "_at_" in name})
    return CellRecord(cell_hash, measured, oracle_isolated=oracle_isolated)
