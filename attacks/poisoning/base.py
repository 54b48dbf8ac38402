"""What a poisoning attack is granted and what it returns.

The attacker knows a share of the real training data (`known_train`, the known users' rows),
the target items it promotes and its budget: how many fake users it may register and how many
filler items each may rate besides the targets. It injects its fake users through the oracle
(`oracle.inject`), which counts and enforces that budget; the harness then retrains the target
on the real and the injected data and grades the target items' exposure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import scipy.sparse as sp

from recsec.attacks.base import Attack
from recsec.attacks.threat import Knowledge


class PoisonBudgetExceeded(RuntimeError):
    """An attack injected more fake users, or fuller profiles, than its threat model allows."""


@dataclass(frozen=True)
class PoisonBudget:
    fake_users: int  # how many fake users the attacker may register
    filler_items: int  # items each may rate besides the target items

    def check(self, profiles: sp.csr_matrix, targets: np.ndarray, already: int = 0) -> None:
        """Raise unless `profiles` (fake users x items) fits what is left of the budget."""
        if already + profiles.shape[0] > self.fake_users:
            raise PoisonBudgetExceeded(f"{profiles.shape[0]} more fake users would exceed the budget of "
                                       f"{self.fake_users} ({already} injected)")
        fillers = np.diff(profiles.indptr) - np.asarray(profiles[:, targets].sum(axis=1)).ravel()
        if len(fillers) and fillers.max() > self.filler_items:
            raise PoisonBudgetExceeded(f"a fake user rates {int(fillers.max())} filler items; the budget "
                                       f"allows {self.filler_items}")


@dataclass(frozen=True)
class PoisonView:
    """The only data a poisoning attack receives."""

    n_items: int
    n_real_users: int  # how many real users the platform has (public: its size)
    known_train: sp.csr_matrix  # the known real users' training interactions, one row each
    target_items: np.ndarray  # the items to promote
    budget: PoisonBudget
    knowledge: Knowledge
    # The known users' held-out items, granted only where the published protocol lets the
    # attacker select its surrogate's epoch on them (DL-Attack's code); else None.
    known_holdout: np.ndarray | None = None

    @property
    def n_known(self) -> int:
        return self.known_train.shape[0]

    def item_popularity(self) -> np.ndarray:
        """How often each item occurs in the known data."""
        return np.asarray(self.known_train.sum(axis=0)).ravel()


@dataclass(frozen=True)
class Injection:
    """What an attack injected: one row per fake user (its items, target items included)."""

    profiles: sp.csr_matrix

    @property
    def n_fake_users(self) -> int:
        return self.profiles.shape[0]


class PoisonAttack(Attack):
    family: ClassVar[str] = "poisoning"
    target_kinds: ClassVar[tuple[str, ...]] = ("users",)

    def run(self, view: PoisonView, oracle, *, seed: int, device: str = "cpu") -> Injection:
        raise NotImplementedError


def profiles_matrix(rows: list[np.ndarray], n_items: int) -> sp.csr_matrix:
    """Binary fake users x items from each fake user's item ids."""
    indptr = np.cumsum([0] + [len(r) for r in rows])
    indices = np.concatenate(rows).astype(np.int32) if rows else np.empty(0, dtype=np.int32)
    matrix = sp.csr_matrix((np.ones(len(indices), dtype=np.float32), indices, indptr), shape=(len(rows), n_items))
    matrix.sum_duplicates()
    matrix.data[:] = 1.0
    return matrix


def inject_all(oracle, rows: list[np.ndarray], n_items: int) -> Injection:
    """Register every fake user through the oracle (which enforces the budget)."""
    profiles = profiles_matrix(rows, n_items)
    oracle.inject(profiles)
    return Injection(profiles)
