"""Per-unit values: what a cell's metric is computed from, one value per unit graded (a user, a
target item in one retraining, an attacked image).

A family's `grade` may return a metric as a `PerUnit` instead of a number. The cell's record
then logs the number (computed here, from the units, so the two never disagree) and keeps the
units, so that two cells graded on the same units (the same seed's users, say) can be paired, and
a single seed's mean can be given an interval (harness.stats).

Most metrics are means over their units. A metric that is not (a membership attack's ROC AUC)
names its statistic and keeps the columns it is computed from (scores and labels).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Callable

import numpy as np

from recsec.harness.metrics import balanced_accuracy, roc_auc


def _mean(value: np.ndarray) -> float:
    value = np.asarray(value, dtype=np.float64)
    finite = ~np.isnan(value)
    return float(value[finite].mean()) if finite.any() else float("nan")


# statistic name -> (the columns it reads, in order; the function of those columns)
STATISTICS: dict[str, tuple[tuple[str, ...], Callable[..., float]]] = {
    "mean": (("value",), _mean),
    "roc_auc": (("score", "label"), roc_auc),
    "balanced_accuracy": (("prediction", "label"), balanced_accuracy),
}


@dataclass(frozen=True, eq=False)  # arrays: compare `digest` and `columns` explicitly
class PerUnit:
    """A metric as the units it is computed from. `ids` say which units, in the order of the
    columns (cells whose ids match were graded on the same units); `unit` says what one is."""

    unit: str
    ids: np.ndarray
    columns: dict[str, np.ndarray]
    statistic: str = "mean"
    ids_digest: str = ""  # what `ids` hashed to, for units read back from a record (no ids kept)

    def __post_init__(self):
        if self.statistic not in STATISTICS:
            raise ValueError(f"unknown statistic {self.statistic!r}; known: {', '.join(STATISTICS)}")
        wanted = STATISTICS[self.statistic][0]
        missing = [c for c in wanted if c not in self.columns]
        if missing:
            raise ValueError(f"statistic {self.statistic} needs columns {', '.join(wanted)}; missing {', '.join(missing)}")
        lengths = {len(v) for v in self.columns.values()}
        if len(lengths) != 1:
            raise ValueError(f"per-unit columns of unequal length: {sorted(lengths)}")
        if len(self.ids) and len(self.ids) != self.n:
            raise ValueError(f"{len(self.ids)} unit ids for {self.n} values")

    @property
    def n(self) -> int:
        return len(next(iter(self.columns.values())))

    @property
    def digest(self) -> str:
        """A short hash of the ids: what pairs two cells' units (the ids themselves are not kept)."""
        return self.ids_digest or digest_ids(self.ids)

    def value(self) -> float:
        names, function = STATISTICS[self.statistic]
        return float(function(*(self.columns[name] for name in names)))

    def arrays(self) -> tuple[np.ndarray, ...]:
        """The statistic's columns, in the order its function takes them."""
        return tuple(np.asarray(self.columns[name]) for name in STATISTICS[self.statistic][0])

    # -- as stored in a record (harness.record_file) --------------------------------------------

    def to_dict(self) -> dict:
        return {"unit": self.unit, "n": self.n, "ids": self.digest, "statistic": self.statistic,
                "columns": {name: _plain(values) for name, values in self.columns.items()}}

    @classmethod
    def from_dict(cls, raw: dict) -> "PerUnit":
        columns = {name: np.array([np.nan if v is None else v for v in values], dtype=np.float64)
                   for name, values in raw["columns"].items()}
        return cls(raw["unit"], np.empty(0), columns, raw.get("statistic", "mean"), ids_digest=raw["ids"])


def mean_over(unit: str, ids, values) -> PerUnit:
    """A metric that is the mean of `values`, one per unit."""
    return PerUnit(unit, np.asarray(ids), {"value": np.asarray(values, dtype=np.float64)})


def per_user(users, values) -> PerUnit:
    return mean_over("user", users, values)


def statistic_over(unit: str, ids, statistic: str, **columns) -> PerUnit:
    """A metric that is `statistic` (of STATISTICS) of per-unit `columns`."""
    return PerUnit(unit, np.asarray(ids), {name: np.asarray(v) for name, v in columns.items()}, statistic)


def digest_ids(ids: np.ndarray) -> str:
    ids = np.ascontiguousarray(np.asarray(ids, dtype=np.int64))
    return hashlib.sha256(ids.tobytes() + str(ids.shape).encode()).hexdigest()[:16]


def split_measured(measured: dict) -> tuple[dict[str, float], dict[str, PerUnit]]:
    """A grade's output as its numbers and its per-unit values (each number computed from them)."""
    numbers, units = {}, {}
    for name, value in measured.items():
        if isinstance(value, PerUnit):
            units[name] = value
            numbers[name] = value.value()
        else:
            numbers[name] = value
    return numbers, units


def _plain(values: np.ndarray) -> list:
    """JSON numbers, 6 significant digits (a mean over the stored values matches the logged one
    to about 1e-6); NaN as null; integers stay integers."""
    values = np.asarray(values)
    if values.dtype.kind in "iub":
        return values.astype(np.int64).tolist()
    return [None if np.isnan(v) else float(f"{v:.6g}") for v in values.astype(np.float64)]
