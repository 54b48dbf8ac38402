"""What every stealing recipe shares: its result type, the clone spec, and the query step."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import ClassVar

import numpy as np

from recsec.attacks.base import Attack
from recsec.attacks.lists import ListLossConfig, finetune_on_lists
from recsec.attacks.oracle import Oracle
from recsec.attacks.threat import AttackerView
from recsec.models import ModelSpec
from recsec.models.base import Recommender
from recsec.models.sequential.training import train_next_item_pairs
from recsec.models.training import train_sampled
from recsec.harness import streams

QUERY_ORDER = streams.purpose("order of the known users' queries", 0x9)
LIST_DROPOUT = streams.purpose("dropout of a clone learning the served lists", 0xD0)


@dataclass(frozen=True)
class CloneTraining:
    """How long the clone trains on the known interactions (the PTD stage of every recipe).

    The schedule is stated in optimizer steps (batches of the clone's batch size), not epochs,
    because the known data is a small share of the target's and its size varies by two orders of
    magnitude across datasets: 50 epochs are 1,000 steps on ML-1M (10% of target users known,
    about 20 batches an epoch) but 150 on Steam (3 batches), where the PTD clone of BPR-MF stayed
    near its random start (Agr@50 .079 at 50 epochs, .478 at 200, .475 at 500; seed 0). On ML-1M
    the epoch sweep (Agr@50 at 25/50/100/200 epochs: BPR .364/.441/.464/.426, NCF .432/.473/.435/
    .393, LMF .405/.493/.496/.433) put the best near 1,000 steps, hence the default.
    `clone_epochs` states the schedule in epochs instead (it wins when given)."""

    clone_steps: int = 1000
    clone_epochs: int | None = None

    def __post_init__(self):
        if hasattr(super(), "__post_init__"):  # a recipe's other config part (its list losses)
            super().__post_init__()
        if self.clone_steps < 1:
            raise ValueError(f"clone_steps must be >= 1, got {self.clone_steps}")
        if self.clone_epochs is not None and self.clone_epochs < 1:
            raise ValueError(f"clone_epochs must be >= 1, got {self.clone_epochs}")

    def clone_epochs_for(self, n_examples: int, batch_size: int) -> int:
        """Epochs over `n_examples` (interactions, or next-item pairs) that make the schedule."""
        if self.clone_epochs is not None:
            return self.clone_epochs
        batches_per_epoch = max(1, -(-n_examples // batch_size))
        return max(1, -(-self.clone_steps // batches_per_epoch))


@dataclass(frozen=True)
class ListTraining(ListLossConfig):
    """How long a clone learns the served lists (PTQ's and PTAQ's fine-tuning, all of QSD), in
    optimizer steps of `batch_users` lists, the same budget for every recipe so that QSD and the
    fine-tuning recipes are compared at equal effort. Epochs over the queried users would tie the
    budget to how many users were queried: 30 epochs were 60 steps on ML-1M (302 known users) and
    30 on Steam (186), where PTQ stayed near its PTD start. On ML-1M (BPR-MF, seed 0) PTQ's Agr@50
    was .474/.570/.756 after 60/200/600 steps. `epochs` states the schedule in epochs instead.

    `outside` is where the recommended-item part's sampled items come from: "uniform" over the
    items outside the list (the paper's text, the default) or "clone_top": from the clone's own
    current top `outside_pool` items outside the list and the user's known items, recomputed
    every `outside_refresh` steps (ours; see `attacks.lists.model_top_pools` and
    benchmarks/reproduction/stealing.md, section 5)."""

    epochs: int | None = None
    steps: int = 600
    outside: str = "uniform"
    outside_pool: int = 200
    outside_refresh: int = 50

    def __post_init__(self):
        super().__post_init__()
        if self.steps < 1:
            raise ValueError(f"steps must be >= 1, got {self.steps}")
        if self.outside not in OUTSIDE_RULES:
            raise ValueError(f"outside must be one of {OUTSIDE_RULES}, got {self.outside!r}")
        if self.outside_pool < 1 or self.outside_refresh < 1:
            raise ValueError(f"outside_pool and outside_refresh must be >= 1, got {self.outside_pool}, "
                             f"{self.outside_refresh}")

    def list_epochs_for(self, n_lists: int) -> int:
        if self.epochs is not None:
            return self.epochs
        return max(1, -(-self.steps // max(1, -(-n_lists // self.batch_users))))


OUTSIDE_RULES = ("uniform", "clone_top")


def learn_lists(clone: Recommender, view: AttackerView, rows: np.ndarray, lists: np.ndarray, config: ListTraining,
                *, seed: int) -> Recommender:
    """Train `clone` on the lists served for the view's `rows`, for the recipe's schedule. A
    "clone_top" draw leaves each user's known items out of its pool: no list can show them."""
    schedule = replace(config, epochs=config.list_epochs_for(len(lists)))
    pool = config.outside_pool if config.outside == "clone_top" else 0
    seen = None if view.sequential else view.known_interactions[rows]
    return finetune_on_lists(clone, view.contexts(rows), lists, schedule, seed=seed,
                             dropout_seed=LIST_DROPOUT.seed(seed), model_top_pool=pool,
                             pool_refresh=config.outside_refresh, seen=seen)


@dataclass
class StealingResult:
    """A clone whose user rows are the view's known users (row r = view.known_users[r])."""

    clone: Recommender
    queried_rows: np.ndarray
    synthetic_sequences: int = 0  # the stealing recipes query with real data only

    @property
    def surrogate(self) -> Recommender:  # the name the extraction family uses for the same thing
        return self.clone


class StealingAttack(Attack):
    family: ClassVar[str] = "stealing"
    # A recipe trains its clone by gradient on lists (PTD alone does not): the clone needs weights.
    fine_tunes_clone: ClassVar[bool] = True
    # Against sequential targets the known users' sequences are the partial target data, and the
    # clone is a sequential model.
    target_kinds: ClassVar[tuple[str, ...]] = ("users", "sequences")

    def __init__(self, config, clone: ModelSpec):
        super().__init__(config)
        self.clone_spec = clone

    def run(self, view: AttackerView, oracle: Oracle, *, seed: int, device: str = "cpu") -> StealingResult:
        raise NotImplementedError

    def new_clone(self, view: AttackerView, device: str) -> Recommender:
        spec = self.clone_spec
        if view.sequential:  # its own training length: the schedule counts user rows' interactions
            return spec.build(0, view.n_items).to(device)
        if "epochs" in {f.name for f in fields(spec.config())} and isinstance(self.config, CloneTraining):
            epochs = self.config.clone_epochs_for(view.known_interactions.nnz, spec.config().batch_size)
            spec = ModelSpec.of(spec.name, {**dict(spec.params), "epochs": epochs})
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
            pairs = int(np.maximum(view.known_sequences.lengths() - 1, 0).sum())
            epochs = self.config.clone_epochs_for(pairs, cfg.batch_size)
            return train_next_item_pairs(clone, view.known_sequences, epochs=epochs,
                                         batch_size=cfg.batch_size, lr=cfg.lr, max_len=cfg.max_len,
                                         pad=clone.pad, seed=seed)
        spec = self.clone_spec.config()
        if reset and clone.objective in ("bpr", None):
            return clone.fit(view.known_interactions, seed=seed)
        epochs = self.config.clone_epochs_for(view.known_interactions.nnz, spec.batch_size)
        return train_sampled(clone, view.known_interactions, objective="bpr", epochs=epochs,
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
