"""What a task returns to the driver: plain records of a trained model or a finished cell."""

from __future__ import annotations

import resource
import sys
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


LISTS_WIDTH = 100


@dataclass
class CellRecord:
    cell_hash: str
    metrics: dict[str, float]


def pick_device(gpu_ids: list | None = None) -> str:
    """cuda when the task was given a GPU (and torch can see one), else cpu."""
    return "cuda" if gpu_ids and torch.cuda.is_available() else "cpu"


def peak_rss_mb() -> float:
    """This process's peak resident memory so far (a Ray worker's, across the tasks it ran)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024
