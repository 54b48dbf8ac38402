"""The poisoning family's tasks and cell steps (see harness.serving): the clean target trains
once per (dataset, split, target, defense, seed) and is cached; a cell grants the attacker its
knowledge, serves an oracle that takes its fake users (counted, budgeted), and grades by
retraining the target on the real and injected users (through the defense) and measuring the
target items before and after. Plain functions: no Ray, no MLflow."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Iterable

import numpy as np
import scipy.sparse as sp

from recsec.harness.families import configured_attack, configured_defense
from recsec.attacks.oracle import Oracle, ServingContext
from recsec.attacks.poisoning.base import Injection, PoisonBudget, PoisonView
from recsec.harness import metrics
from recsec.harness.data import Interactions
from recsec.harness.splits import choose_known, keep_rows
from recsec.attacks.poisoning.metrics import mean_of, target_hr_per_item, target_metrics, target_ranks
from recsec.attacks.poisoning.split import PoisonSplit, choose_targets, poison_split
from recsec.harness.plugins import load_plugins
from recsec.harness.records import LISTS_WIDTH, TargetRecord, peak_rss_mb
from recsec.harness.units import PerUnit, mean_over
from recsec.models import ModelSpec, model_from_payload
from recsec.models.batched import batching_pays, fit_copies
from recsec.models.registry import model_class
from recsec.models.selection import BestEpoch, sampled_candidates
from recsec.harness import streams

CANDIDATES = streams.purpose("poisoning: the 99 sampled rivals of each held-out item", 0x99)
RETRAINING = streams.purpose("poisoning: the r-th poisoned retraining (index r >= 1)")

if TYPE_CHECKING:
    from recsec.harness.cell import Cell
    from recsec.harness.serving_state import ServingState
    from recsec.models.base import Recommender


def split_for(cell: Cell, data: Interactions) -> PoisonSplit:
    return poison_split(data, cell.threat.poisoning.split, cell.split.holdout, cell.seed)


def targets_for(cell: Cell, split: PoisonSplit) -> np.ndarray:
    return choose_targets(split.train, cell.threat.target_items, cell.threat.target_stratum, cell.seed)


def budget_for(cell: Cell, split: PoisonSplit) -> PoisonBudget:
    return PoisonBudget(fake_users=round(cell.threat.fake_share * split.n_users),
                        filler_items=cell.threat.filler_items)


# -- training a target (clean or poisoned) -----------------------------------------------------

def fit_target(cell: Cell, train: sp.csr_matrix, candidates, seed: int, device: str, start=None):
    """The cell's target model trained on `train` (real users first, then any fake users); with
    `candidates` (`selection_candidates`), the epoch whose held-out items rank best among them;
    with `start` (the clean target, `retraining: warm`), continued from its weights."""
    spec = ModelSpec.of(cell.target.name, cell.target.params)
    model = spec.build(*train.shape).to(device)
    keeper = BestEpoch(model, *candidates) if candidates is not None else None
    defense = configured_defense(cell)
    if start is not None:
        model.warm_fit(train, start, epochs=cell.threat.poisoning.warm_epochs, seed=seed, on_epoch=keeper)
    elif defense is not None and defense.trains_target:  # it trains the target its own way (APR)
        defense.fit(model, train, seed=seed, on_epoch=keeper)
    else:
        model.fit(train, seed=seed, on_epoch=keeper)
    return keeper.restore() if keeper is not None else model


def fit_retrainings(cell: Cell, train: sp.csr_matrix, candidates, seeds: list[int], device: str,
                    start=None) -> Iterable[Recommender]:
    """The poisoned targets of a cell's retrainings, one per seed, as `fit_target` trains each:
    with `batch_retrainings`, as one model-batched fit (models/batched/, the same bits) where the
    target trains from scratch, its own way, and batching its model pays; else one at a time (so
    that one model at a time is held)."""
    defense = configured_defense(cell)
    spec = ModelSpec.of(cell.target.name, cell.target.params)
    trains_itself = defense is not None and defense.trains_target
    batchable = (cell.threat.poisoning.batch_retrainings and start is None and len(seeds) > 1 and not trains_itself
                 and batching_pays(model_class(spec.name), spec.config(), device))
    if not batchable:
        return (fit_target(cell, train, candidates, seed, device, start=start) for seed in seeds)
    models = [spec.build(*train.shape).to(device) for _ in seeds]
    keepers = [BestEpoch(model, *candidates) if candidates is not None else None for model in models]
    fit_copies(models, train, seeds, on_epoch=lambda r: keepers[r])
    return [keeper.restore() if keeper is not None else model for model, keeper in zip(models, keepers)]


def selection_candidates(cell: Cell, split: PoisonSplit) -> tuple[np.ndarray, np.ndarray] | None:
    """With `selection: sampled_hr`, the users with a held-out item and its 99 sampled rivals
    (seeded: the clean target and every retraining rank the same ones); else None."""
    if cell.threat.poisoning.selection != "sampled_hr":
        return None
    users = np.flatnonzero(split.heldout_item >= 0)
    seen = (split.train + split.test).tocsr()
    return users, sampled_candidates(seen, users, split.heldout_item[users], 99,
                                     CANDIDATES.rng(cell.seed))


def defended_rows(cell: Cell, train: sp.csr_matrix) -> np.ndarray:
    """The rows of `train` the target trains on: all, or those a detector does not flag."""
    defense = configured_defense(cell)
    if defense is None or not defense.filters_users:  # undefended, or a defense that trains its own way
        return np.arange(train.shape[0])
    return np.flatnonzero(~defense.flag(train))


def train_target(cell: Cell, data: Interactions, target_hash: str, device: str = "cpu") -> TargetRecord:
    """The clean target: trained on the real users' data (through the detector, if any); its
    utility on the held-out items."""
    load_plugins()
    split = split_for(cell, data)
    start = time.perf_counter()
    kept = defended_rows(cell, split.train)
    model = fit_target(cell, keep_rows(split.train, kept), selection_candidates(cell, split), cell.seed, device)
    train_seconds = time.perf_counter() - start
    ks = [k for k in cell.metric_ks if k <= split.n_items]
    lists = model.recommend(np.arange(split.n_users), min(max(ks + [LISTS_WIDTH]), split.n_items),
                            exclude=split.train)
    record = metrics.utility_metrics(lists, split.test, ks)
    record.update(train_seconds=train_seconds, peak_rss_mb=peak_rss_mb())
    params = {"n_target_users": split.n_users, "n_items": split.n_items, "n_train_interactions": split.train.nnz,
              "n_users_dropped": split.n_users - len(kept), "device": device}
    return TargetRecord(target_hash, model.cpu().to_payload(), record, params, lists=lists.astype(np.int32))


# -- a cell's steps ---------------------------------------------------------------------------

def grant(cell: Cell, state: ServingState, auxiliary: TargetRecord | None) -> PoisonView:
    """What the attacker knows: a `known_share` of the real users' training data, the target
    items and its budget; with `attacker_sees_holdout`, the known users' held-out items."""
    split = state.once("poison_split", lambda: split_for(cell, state.data))
    rng = streams.KNOWN_USERS.rng(cell.seed)
    known, known_train = choose_known(split.train, cell.threat.knowledge.known_share, cell.threat.knowledge.known_unit, rng)
    sees = cell.threat.poisoning.attacker_sees_holdout
    return PoisonView(n_items=split.n_items, n_real_users=split.n_users, known_train=known_train,
                      target_items=targets_for(cell, split), budget=budget_for(cell, split),
                      knowledge=cell.threat.knowledge, known_holdout=split.heldout_item[known] if sees else None)


class InjectionOracle(Oracle):
    """The platform as a poisoning attacker meets it: it serves the clean target's lists to real
    users (counted, budgeted) and registers fake users, refusing any beyond the budget."""

    QUERIES = ("query", "inject")

    def __init__(self, *args, budget: PoisonBudget, targets: np.ndarray, **kwargs):
        super().__init__(*args, **kwargs)
        self.poison_budget = budget
        self.targets = targets
        self.fake_users = 0
        self.injected_interactions = 0

    def inject(self, profiles: sp.csr_matrix) -> None:
        self.poison_budget.check(profiles, self.targets, already=self.fake_users)
        self.fake_users += profiles.shape[0]
        self.injected_interactions += int(profiles.nnz)

    def counts(self) -> dict[str, int]:
        return {**super().counts(), "fake_users": self.fake_users, "injected_interactions": self.injected_interactions}


def oracle(cell: Cell, state: ServingState) -> InjectionOracle:
    split = state.once("poison_split", lambda: split_for(cell, state.data))
    lists = state.target.lists
    context = ServingContext(split.train, np.asarray(split.train.sum(axis=0)).ravel())
    return InjectionOracle(lambda users, k: lists[users, :k].astype(np.int64), context,
                           min(cell.threat.knowledge.list_length, lists.shape[1]), cell.threat.knowledge.query_budget, None,
                           streams.ORACLE.rng(cell.seed),
                           budget=budget_for(cell, split), targets=targets_for(cell, split))


def run_attack(cell: Cell, view: PoisonView, oracle, device: str = "cpu") -> Injection:
    return configured_attack(cell).run(view, oracle, seed=cell.seed, device=device)


def grade(cell: Cell, data: Interactions, target: TargetRecord, view: PoisonView, result: Injection,
          device: str = "cpu") -> dict:
    """The target items before (the cached clean target) and after poisoning (the target
    retrained on real + fake users through the defense, `retrainings` times, averaged); the
    detector's catch; the poisoned target's utility."""
    split = split_for(cell, data)
    targets = targets_for(cell, split)
    profiles = result.profiles.tocsr()
    budget_for(cell, split).check(profiles, targets)  # what the attack returns is what it injected
    ks = [k for k in cell.metric_ks if k <= split.n_items]
    n_ranked = split.n_items - np.diff(split.train.indptr)
    clean = model_from_payload(target.payload).to(device)
    clean_ranks = target_ranks(clean, split.train, targets)
    before = target_metrics(clean_ranks, n_ranked, ks)

    poisoned = sp.vstack([split.train, profiles], format="csr")
    kept = defended_rows(cell, poisoned)
    defense = configured_defense(cell)
    out = _detection(kept, split.n_users, profiles.shape[0]) if defense is not None and defense.filters_users else {}
    after, utility, ranks_after = [], [], []
    candidates = selection_candidates(cell, split)  # drawn once for every retraining
    warm = cell.threat.poisoning.retraining == "warm"
    seeds = [_retraining_seed(cell.seed, r) for r in range(cell.threat.poisoning.retrainings)]
    for model in fit_retrainings(cell, keep_rows(poisoned, kept), candidates, seeds, device,
                                 start=clean if warm else None):
        ranks_after.append(target_ranks(model, split.train, targets))
        after.append(target_metrics(ranks_after[-1], n_ranked, ks))
        lists = model.recommend(np.arange(split.n_users), max(ks), exclude=split.train)
        utility.append(metrics.utility_metrics(lists, split.test, ks, prefix="poisoned_"))
    after = mean_of(after)
    for name, value in after.items():
        out[name] = value
        out[f"{name}_clean"] = before[name]
    for k in ks:
        out[f"target_hr_gain_at_{k}"] = after[f"target_hr_at_{k}"] - before[f"target_hr_at_{k}"]
    out.update(_per_item_and_retraining(clean_ranks, ranks_after, targets, ks))
    out.update(mean_of(utility))
    out.update(n_target_items=len(targets), n_fake_users=profiles.shape[0], n_known_users=view.n_known,
               retrainings=cell.threat.poisoning.retrainings)
    return out


def _per_item_and_retraining(clean_ranks: np.ndarray, ranks_after: list[np.ndarray], targets: np.ndarray,
                             ks) -> dict[str, PerUnit]:
    """The success's units: one per target item and retraining (the logged means average them)."""
    ids = np.array([(r, t) for r in range(len(ranks_after)) for t in targets])
    out = {}
    for k in ks:
        clean = target_hr_per_item(clean_ranks, k)
        after = np.concatenate([target_hr_per_item(ranks, k) for ranks in ranks_after])
        out[f"target_hr_at_{k}"] = mean_over(UNIT, ids, after)
        out[f"target_hr_gain_at_{k}"] = mean_over(UNIT, ids, after - np.tile(clean, len(ranks_after)))
    return out


UNIT = "target item x retraining"


def _retraining_seed(seed: int, r: int) -> int:
    return seed if r == 0 else RETRAINING.seed(seed, r)


def _detection(kept: np.ndarray, n_real: int, n_fake: int) -> dict:
    """The detector's catch, graded with the labels it never saw (fake rows follow the real)."""
    dropped = np.ones(n_real + n_fake, dtype=bool)
    dropped[kept] = False
    caught = int(dropped[n_real:].sum())
    flagged = int(dropped.sum())
    return {"detection_precision": caught / flagged if flagged else float("nan"),
            "detection_recall": caught / n_fake if n_fake else float("nan"),
            "real_users_dropped": float(dropped[:n_real].mean())}
