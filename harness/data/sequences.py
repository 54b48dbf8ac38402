"""Sequences from a dataset's time-ordered interactions, and the leave-one-out split.

The `Sequences` container and the batching helpers live with the models that consume them
(models/sequential/sequences.py); they are re-exported here for the harness's convenience.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recsec.harness.data.interactions import Interactions
from recsec.harness.errors import DataError
from recsec.models.sequential.sequences import Sequences, left_windows, pad_batch, ragged_range

__all__ = ["LeaveOneOut", "Sequences", "leave_one_out", "left_windows", "pad_batch", "ragged_range",
           "sequences_from_interactions"]


def sequences_from_interactions(data: Interactions) -> Sequences:
    """Each user's items ordered by time (ties keep item-id order, as the CSR row stores them)."""
    if data.timestamps is None:
        hint = (" The shared ML-1M copy (ratings.csv.gz) has no timestamps: supply the official "
                "ratings.dat from GroupLens in the ml-1m data folder.") if data.name == "ml-1m" else ""
        raise DataError(f"dataset {data.name!r} has no timestamps, so its interactions have no "
                        f"time order to build sequences from.{hint}")
    matrix = data.matrix
    rows = np.repeat(np.arange(data.n_users), np.diff(matrix.indptr))
    # One stable sort over (user, time) orders every row at once; CSR rows are already grouped.
    order = np.lexsort((np.asarray(data.timestamps), rows))
    return Sequences(matrix.indices[order].astype(np.int64), matrix.indptr.astype(np.int64),
                     data.n_items, data.name)


@dataclass(frozen=True)
class LeaveOneOut:
    """The published sequential protocol: each user's last item is the test target, the one
    before it the validation target; the rest is training data.

    Only users with at least 3 items are evaluated (`users`, aligned with the prefixes and
    targets); the others keep all their items in `train`. Prefixes are everything before the
    target, so the test prefix ends with the validation item.
    """

    train: Sequences  # every user, in user order
    users: np.ndarray  # evaluated users
    valid_prefix: Sequences
    valid_target: np.ndarray
    test_prefix: Sequences
    test_target: np.ndarray


def leave_one_out(seqs: Sequences) -> LeaveOneOut:
    lengths = seqs.lengths()
    users = np.flatnonzero(lengths >= 3)
    starts = seqs.offsets[users]
    n_valid_prefix = lengths[users] - 2

    def part(row_starts: np.ndarray, counts: np.ndarray, suffix: str) -> Sequences:
        return Sequences(seqs.items[ragged_range(row_starts, counts)], np.concatenate([[0], np.cumsum(counts)]),
                         seqs.n_items, f"{seqs.name}:{suffix}")

    ends = seqs.offsets[users + 1]
    return LeaveOneOut(
        train=part(seqs.offsets[:-1], np.where(lengths >= 3, lengths - 2, lengths), "train"),
        users=users,
        valid_prefix=part(starts, n_valid_prefix, "valid"),
        valid_target=seqs.items[ends - 2],
        test_prefix=part(starts, n_valid_prefix + 1, "test"),
        test_target=seqs.items[ends - 1],
    )
