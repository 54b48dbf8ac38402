"""Data-free synthesis of query sequences (Yue et al. 2021, section 3.2).

Every sequence starts from a uniformly random item and grows one item per step. At each step the
target is queried with the current prefix and its answer kept; the next item is drawn uniformly
from that answer (`autoregressive`: the sequences drift toward what the target recommends,
hence toward the real data's distribution) or uniformly from all items (`random`). A sequence of
length L costs L queries, one per prefix.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from recsec.attacks.oracle import Oracle

MODES = ("autoregressive", "random")


@dataclass
class SyntheticData:
    """`sequences[i, :t]` is the prefix that was answered with `lists[i, t - 1]` (best first)."""

    sequences: np.ndarray  # [n, L] item ids
    lists: np.ndarray  # [n, L, K] int32: the answer to every prefix

    @property
    def n_examples(self) -> int:
        return self.lists.shape[0] * self.lists.shape[1]

    def flat_lists(self) -> np.ndarray:
        return self.lists.reshape(-1, self.lists.shape[-1])


def synthesize(oracle: Oracle, n_sequences: int, length: int, n_items: int, pad: int, mode: str,
               rng: np.random.Generator, batch: int = 512) -> SyntheticData:
    """Grow `n_sequences` sequences of `length` items, querying every prefix (batched)."""
    if mode not in MODES:
        raise ValueError(f"synthesis mode must be one of {MODES}, got {mode!r}")
    sequences = np.empty((n_sequences, length), dtype=np.int64)
    lists = np.empty((n_sequences, length, oracle.k), dtype=np.int32)
    for start in range(0, n_sequences, batch):
        rows = slice(start, min(start + batch, n_sequences))
        n = rows.stop - rows.start
        sequences[rows, 0] = rng.integers(n_items, size=n)
        for t in range(length):
            answer = oracle.query(sequences[rows, : t + 1])  # left-aligned prefixes: all length t+1
            lists[rows, t] = answer
            if t + 1 < length:
                if mode == "autoregressive":
                    sequences[rows, t + 1] = answer[np.arange(n), rng.integers(answer.shape[1], size=n)]
                else:
                    sequences[rows, t + 1] = rng.integers(n_items, size=n)
    return SyntheticData(sequences, lists)


class Prefixes:
    """Every prefix of synthetic sequences as left-padded model inputs, built per batch: holding
    all n * L of them at once would take L times the memory of the sequences."""

    def __init__(self, sequences: np.ndarray, pad: int, device: torch.device | str = "cpu"):
        self.sequences = torch.from_numpy(sequences).to(device)
        self.pad = pad
        self.length = sequences.shape[1]

    def __len__(self) -> int:
        return self.sequences.shape[0] * self.length

    def __getitem__(self, examples: torch.Tensor) -> torch.Tensor:
        """Example e = (sequence e // L, prefix length e % L + 1) -> [b, L] left-padded."""
        rows, ends = examples // self.length, examples % self.length + 1  # prefix = seq[row, :end]
        source = torch.arange(self.length, device=examples.device) - (self.length - ends).unsqueeze(1)
        taken = self.sequences[rows.unsqueeze(1), source.clamp(min=0)]
        return torch.where(source >= 0, taken, torch.full_like(taken, self.pad))
