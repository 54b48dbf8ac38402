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


def pick_device(gpu_ids: list | None = None) -> str:
    """cuda when the task was given a GPU (and torch can see one), else cpu."""
    return "cuda" if gpu_ids and torch.cuda.is_available() else "cpu"


def peak_rss_mb() -> float:
    """This process's peak resident memory so far (a Ray worker's, across the tasks it ran)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def finish_cell(cell_hash: str, measured: dict, *, queries: int, items_returned: int, n_known: int,
                target: TargetRecord, start: float, attack_seconds: float, eval_start: float,
                **extra: float) -> CellRecord:
    """A cell's record: its attack metrics plus what every family logs alike (queries, timings,
    memory, and the target's own undefended utility, so every row of a table carries it)."""
    now = time.perf_counter()
    measured.update(queries=queries, items_returned=items_returned, n_known_users=n_known, **extra)
    measured.update(attack_seconds=attack_seconds, eval_seconds=now - eval_start, cell_seconds=now - start,
                    peak_rss_mb=peak_rss_mb())
    measured.update({name: value for name, value in target.metrics.items() if "_at_" in name})
    return CellRecord(cell_hash, measured)
