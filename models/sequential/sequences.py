"""Per-user item sequences in time order, and left-padded batches of them.

What sequential recommenders train and are evaluated on (the data side, building them from a
dataset and the leave-one-out split, is harness/data/sequences.py). `Sequences` stores every user's items
end to end in one array with row offsets (CSR without values), so slicing a user is a view and
building a padded batch is one gather.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import scipy.sparse as sp
import torch



@dataclass(frozen=True)
class Sequences:
    """Row r is `items[offsets[r]:offsets[r + 1]]`, oldest first; ids are 0..n_items-1."""

    items: np.ndarray  # int64, every row's items end to end
    offsets: np.ndarray  # int64, length len(self) + 1, offsets[0] == 0
    n_items: int
    name: str = "sequences"

    def __post_init__(self):
        items = np.asarray(self.items, dtype=np.int64)
        offsets = np.asarray(self.offsets, dtype=np.int64)
        object.__setattr__(self, "items", items)
        object.__setattr__(self, "offsets", offsets)
        if offsets.ndim != 1 or len(offsets) == 0 or offsets[0] != 0 or offsets[-1] != len(items):
            raise ValueError(f"{self.name}: offsets must run from 0 to len(items)={len(items)}")
        if np.any(np.diff(offsets) < 0):
            raise ValueError(f"{self.name}: offsets must be non-decreasing")
        if len(items) and (items.min() < 0 or items.max() >= self.n_items):
            raise ValueError(f"{self.name}: item ids must lie in 0..{self.n_items - 1}, "
                             f"found {items.min()}..{items.max()}")

    @classmethod
    def from_lists(cls, rows: Sequence[Sequence[int]], n_items: int, name: str = "sequences") -> "Sequences":
        """From one array (or list) of item ids per row, oldest first."""
        lengths = np.fromiter((len(row) for row in rows), dtype=np.int64, count=len(rows))
        offsets = np.concatenate([[0], np.cumsum(lengths)])
        items = np.concatenate([np.asarray(row, dtype=np.int64) for row in rows]) if len(rows) else []
        return cls(np.asarray(items, dtype=np.int64), offsets, n_items, name)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def sequence(self, row: int) -> np.ndarray:
        return self.items[self.offsets[row] : self.offsets[row + 1]]

    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def to_matrix(self) -> sp.csr_matrix:
        """Binary rows x items matrix of which items each row holds (e.g. to exclude history)."""
        matrix = sp.csr_matrix(
            (np.ones(len(self.items), dtype=np.float32), self.items, self.offsets),
            shape=(len(self), self.n_items),
        )
        matrix.sum_duplicates()  # a row may repeat an item; membership is binary
        matrix.data[:] = 1.0
        return matrix

    def take(self, rows: np.ndarray) -> "Sequences":
        """The given rows, in that order, as their own Sequences."""
        rows = np.asarray(rows, dtype=np.int64)
        counts = self.lengths()[rows]
        return Sequences(self.items[ragged_range(self.offsets[rows], counts)],
                         np.concatenate([[0], np.cumsum(counts)]), self.n_items, self.name)

    def padded(self, rows: np.ndarray, max_len: int, pad: int) -> torch.Tensor:
        """`pad_batch` of the given rows, without copying them out first."""
        rows = np.asarray(rows, dtype=np.int64)
        return left_windows(torch.from_numpy(self.items), torch.from_numpy(self.offsets[rows]),
                            torch.from_numpy(self.offsets[rows + 1]), max_len, pad)


def ragged_range(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """starts[r] + 0..counts[r]-1 for every r, concatenated in order (a vectorized ragged arange)."""
    counts = np.asarray(counts, dtype=np.int64)
    first = np.cumsum(counts) - counts  # where each row's run begins in the output
    return np.repeat(np.asarray(starts, dtype=np.int64) - first, counts) + np.arange(int(counts.sum()))


def pad_batch(rows: Sequence[Sequence[int]], max_len: int, pad: int) -> torch.Tensor:
    """LongTensor [len(rows), max_len]: each row's last `max_len` items, right-aligned after `pad`s.

    Left padding puts every row's most recent item in the last column, where models read the
    next-item prediction, and keeps position embeddings counting back from the most recent item.
    """
    lengths = torch.tensor([len(row) for row in rows], dtype=torch.int64)
    items = torch.cat([torch.as_tensor(np.asarray(row, dtype=np.int64)) for row in rows]) if len(rows) else lengths
    ends = torch.cumsum(lengths, 0)
    return left_windows(items, ends - lengths, ends, max_len, pad)


def left_windows(items: torch.Tensor, starts: torch.Tensor, ends: torch.Tensor, length: int, pad: int) -> torch.Tensor:
    """[len(ends), length]: `items[starts[r]:ends[r]]`'s last `length` entries, left-padded with `pad`.

    One gather for the whole batch, on whatever device `items` is on.
    """
    if length < 1:
        raise ValueError(f"window length must be >= 1, got {length}")
    index = ends.unsqueeze(1) - length + torch.arange(length, device=items.device)
    inside = index >= starts.unsqueeze(1)
    if len(items) == 0:  # nothing to gather: every cell is padding
        return torch.full_like(index, pad)
    return torch.where(inside, items[index.clamp(min=0)], torch.full_like(index, pad))
