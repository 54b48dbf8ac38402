"""What every stealing recipe shares: its result type, the clone spec, and the query step."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import ClassVar

import numpy as np

from attacks.oracle import Oracle
from attacks.threat import AttackerView
from models import ModelSpec
from models.base import Recommender
from models.sequential.training import train_next_item_pairs
from models.training import train_sampled


@dataclass(frozen=True)
class CloneTraining:
    """How long the clone trains on the known interactions. The known users are a small share of
    the target's, so an epoch is a handful of batches: the target's epoch count would leave the
    clone almost untrained, and many more epochs overfit the few known users. On ML-1M (10% of
    target users known, seed 0) Agr@50 at 25/50/100/200 epochs was: PTD on BPR .364/.441/.464/.426,
    PTD on NCF .432/.473/.435/.393, PTD on LMF .405/.493/.496/.433; PTA on BPR .649 at 50 vs .549
    at 200. 50 is near the best for every architecture and a quarter of the cost of 200. What
    matters is the number of steps (50 epochs x ~20 batches there): a grid on smaller data, whose
    known users fill fewer batches, should raise it (the quickstart uses 200)."""

    clone_epochs: int = 50

    def __post_init__(self):
        if self.clone_epochs < 1:
            raise ValueError(f"clone_epochs must be >= 1, got {self.clone_epochs}")


@dataclass
class StealingResult:
    """A clone whose user rows are the view's known users (row r = view.known_users[r])."""

    clone: Recommender
    queried_rows: np.ndarray

    @property
    def surrogate(self) -> Recommender:  # the name the extraction family uses for the same thing
        return self.clone


class StealingAttack:
    family: ClassVar[str] = "stealing"
    name: ClassVar[str]
    Config: ClassVar[type]
    # Whether the recipe trains its clone by gradient on lists: then the clone needs weights.
    fine_tunes_clone: ClassVar[bool] = True
    # Whether it needs the attacker's auxiliary model (trained on the auxiliary users' data).
    needs_auxiliary: ClassVar[bool] = False
    # What its target may score: user ids, or also item sequences (then the known users'
    # sequences are the partial target data, and the clone is a sequential model).
    target_kinds: ClassVar[tuple[str, ...]] = ("users", "sequences")

    def __init__(self, config, clone: ModelSpec):
        self.config = config
        self.clone_spec = clone

    def run(self, view: AttackerView, oracle: Oracle, *, seed: int, device: str = "cpu") -> StealingResult:
        raise NotImplementedError

    def new_clone(self, view: AttackerView, device: str) -> Recommender:
        spec = self.clone_spec
        if view.sequential:  # its own training length: clone_epochs counts epochs over user rows
            return spec.build(0, view.n_items).to(device)
        if "epochs" in {f.name for f in fields(spec.config())} and hasattr(self.config, "clone_epochs"):
            spec = ModelSpec.of(spec.name, {**dict(spec.params), "epochs": self.config.clone_epochs})
        return spec.build(view.n_known, view.n_items).to(device)

    def pretrained_clone(self, view: AttackerView, seed: int, device: str) -> Recommender:
        """The PTD stage every recipe starts from: the clone fit on the known interactions."""
        return self.train_on_known(self.new_clone(view, device), view, seed, reset=True)

    def train_on_known(self, clone: Recommender, view: AttackerView, seed: int, reset: bool) -> Recommender:
        """Train `clone` on the known interactions with the BPR loss, whatever its architecture
        (the paper's PTD); a model whose own fit() is BPR (or not gradient-based) uses it.
        A sequential clone learns the known sequences with its own next-item objective."""
        if view.sequential:
            if reset:  # the sequential analogue of PTD: the clone's own next-item objective
                return clone.fit(view.known_sequences, seed=seed)
            # Fused or Pre-initialized: BPR on (prefix, next item) through the clone's own scores.
            cfg = clone.config
            return train_next_item_pairs(clone, view.known_sequences, epochs=self.config.clone_epochs,
                                         batch_size=cfg.batch_size, lr=cfg.lr, max_len=cfg.max_len,
                                         pad=clone.pad, seed=seed)
        spec = self.clone_spec.config()
        if reset and getattr(clone, "objective", None) in ("bpr", None):
            return clone.fit(view.known_interactions, seed=seed)
        return train_sampled(clone, view.known_interactions, objective="bpr", epochs=self.config.clone_epochs,
                             batch_size=spec.batch_size, lr=spec.lr, seed=seed, reset=reset)

    def auxiliary_tables(self, view: AttackerView) -> dict:
        if view.auxiliary_model is None:
            raise ValueError(f"{self.name} needs an auxiliary model, but the view has none")
        return {name: table.detach() for name, table in view.auxiliary_model.item_tables().items()}


def query_known_users(view: AttackerView, oracle: Oracle, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Query as many known users as the budget allows (a random subset when it is short).

    Returns the queried view rows and their served lists [n, K].
    """
    budget = view.knowledge.query_budget
    n = view.n_known if budget is None else min(budget, view.n_known)
    rows = np.sort(rng.choice(view.n_known, size=n, replace=False))
    if n == 0:
        return rows, np.empty((0, oracle.k), dtype=np.int64)
    return rows, oracle.query(view.query_keys(rows))
