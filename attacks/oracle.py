"""The attacker's only access to a target: ranked top-K lists, counted and budgeted.

The harness builds an Oracle around a trained target; attacks receive only the Oracle and an
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
    """What the defender knows when it serves lists: its users' histories and item popularity."""

    history: sp.csr_matrix
    item_popularity: np.ndarray


# (lists [n, K], user ids [n], context, rng) -> served lists [n, K]
ListDefense = Callable[[np.ndarray, np.ndarray, ServingContext, np.random.Generator], np.ndarray]


class Oracle:
    """Answers a batch of user ids with each user's top-K list (seen items excluded)."""

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

    def query(self, users: np.ndarray) -> np.ndarray:
        users = np.asarray(users, dtype=np.int64).ravel()
        if self.budget is not None and self.queries + len(users) > self.budget:
            raise QueryBudgetExceeded(
                f"{len(users)} more queries would exceed the budget of {self.budget} "
                f"({self.queries} used)"
            )
        lists = self._recommend(users, self.k)
        if self._defense is not None:
            lists = self._defense(lists, users, self._context, self._rng)
        self.queries += len(users)
        self.items_returned += lists.size
        return lists
