"""The attacker's only access to a target: ranked top-K lists, counted and budgeted.

The harness builds an Oracle around a trained target where the target is served
(harness.serving); attacks receive a client that forwards their queries to it, and an
AttackerView. An output defense, when configured, transforms every list before it is served.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import scipy.sparse as sp


class QueryBudgetExceeded(RuntimeError):
    """An attack asked for more queries than its threat model allows (a bug in the attack)."""


@dataclass(frozen=True)
class ServingContext:
    """What the defender knows when it serves lists: its users' histories and item popularity,
    and, where the server knows which users it trained on (a membership experiment), `is_member`
    (bool per user id) for defenses that treat non-members differently."""

    history: sp.csr_matrix
    item_popularity: np.ndarray
    is_member: np.ndarray | None = None

    def seen(self, user) -> np.ndarray:
        """Items this query's user already has (never worth serving)."""
        return self.history.indices[self.history.indptr[user] : self.history.indptr[user + 1]]


@dataclass(frozen=True)
class SequenceServingContext:
    """The same for a sequential recommender, whose query is the user's item sequence."""

    item_popularity: np.ndarray
    pad: int  # the padding id in query sequences

    def seen(self, sequence) -> np.ndarray:
        sequence = np.asarray(sequence)
        return sequence[sequence != self.pad]


# (lists [n, K], query keys [n, ...], context, rng) -> served lists [n, K]
ListDefense = Callable[[np.ndarray, np.ndarray, ServingContext, np.random.Generator], np.ndarray]


class Oracle:
    """Answers a batch of queries with a top-K list each. A query is a user id (general
    recommenders: its list excludes the user's seen items) or an item sequence (sequential
    recommenders: rows of a left-padded [n, L] array); either way one row is one query."""

    QUERIES = ("query",)  # what a client may ask of it

    def __init__(
        self,
        recommend: Callable[[np.ndarray, int], np.ndarray],
        context: ServingContext,
        k: int,
        budget: int | None = None,
        defense: ListDefense | None = None,
        rng: np.random.Generator | None = None,
    ):
        self._recommend = recommend
        self._context = context
        self._defense = defense
        self._rng = rng if rng is not None else np.random.default_rng(0)
        self.k = k
        self.budget = budget
        self.queries = 0
        self.items_returned = 0

    @property
    def remaining(self) -> int | None:
        return None if self.budget is None else self.budget - self.queries

    def query(self, keys: np.ndarray) -> np.ndarray:
        keys = np.asarray(keys, dtype=np.int64)
        keys = keys.reshape(-1) if keys.ndim < 2 else keys
        if self.budget is not None and self.queries + len(keys) > self.budget:
            raise QueryBudgetExceeded(
                f"{len(keys)} more queries would exceed the budget of {self.budget} "
                f"({self.queries} used)"
            )
        lists = self._recommend(keys, self.k)
        if self._defense is not None:
            lists = self._defense(lists, keys, self._context, self._rng)
        self.queries += len(keys)
        self.items_returned += lists.size
        return lists

    def counts(self) -> dict[str, int]:
        """What was asked and served: the cell's query counts."""
        return {"queries": self.queries, "items_returned": self.items_returned}
