"""Cells whose target is a general (user-id) recommender: the stealing family's target and
auxiliary trainings, and a cell's steps (grant, oracle, attack, grade; see harness.serving).
Plain functions: no Ray, no MLflow. Metrics are computed here, from the target and the
attack's outputs, never by the attack itself.
"""

from __future__ import annotations

import dataclasses
import time
from typing import TYPE_CHECKING

import numpy as np

from recsec.harness.families import configured_attack
from recsec import defenses
from recsec.attacks.oracle import Oracle, ServingContext
from recsec.attacks.stealing.base import StealingResult
from recsec.attacks.threat import AttackerView
from recsec.harness import metrics
from recsec.harness.data import Interactions
from recsec.harness.plugins import load_plugins
from recsec.harness.records import LISTS_WIDTH, TargetRecord, peak_rss_mb
from recsec.harness.units import per_user
from recsec.attacks.stealing.splits import StealingSplit, auxiliary_data, stealing_split
from recsec.harness.splits import choose_known
from recsec.models import ModelSpec, model_from_payload
from recsec.harness import streams

GRADING = streams.purpose("stealing: draws of the grading (served lists, evaluation sample)", 0xE7A1)

if TYPE_CHECKING:
    from recsec.harness.cell import Cell
    from recsec.harness.serving_state import ServingState


def split_for(cell: Cell, data: Interactions) -> StealingSplit:
    return stealing_split(data.matrix, cell.split.target_share, cell.split.holdout, cell.seed)


def train_target(cell: Cell, data: Interactions, target_hash: str, device: str = "cpu") -> TargetRecord:
    """Train the cell's target on the target half and measure its utility on held-out items."""
    load_plugins()
    split = split_for(cell, data)
    spec = ModelSpec.of(cell.target.name, cell.target.params)
    start = time.perf_counter()
    model = spec.build(split.target_train.shape[0], split.n_items).to(device)
    model.fit(split.target_train, seed=cell.seed)
    train_seconds = time.perf_counter() - start
    ks = [k for k in cell.metric_ks if k <= split.n_items]
    width = min(max(ks + [LISTS_WIDTH]), split.n_items)
    lists = model.recommend(np.arange(split.target_train.shape[0]), width, exclude=split.target_train)
    record = metrics.utility_metrics(lists, split.target_test, ks)
    record.update(train_seconds=train_seconds, peak_rss_mb=peak_rss_mb())
    params = {
        "n_target_users": split.target_train.shape[0],
        "n_aux_users": len(split.aux_users),
        "n_items": split.n_items,
        "n_train_interactions": split.target_train.nnz,
        "device": device,
    }
    return TargetRecord(target_hash, model.cpu().to_payload(), record, params, lists=lists.astype(np.int32))


def attacker_auxiliary_data(cell: Cell, split: StealingSplit):
    k = cell.threat.knowledge
    return auxiliary_data(split.auxiliary, k.aux_share, k.item_overlap, cell.seed)


def train_auxiliary(cell: Cell, data: Interactions, auxiliary_hash: str, device: str = "cpu") -> TargetRecord:
    """The attacker's own model: the clone's architecture fit on the auxiliary users' data."""
    load_plugins()
    auxiliary = attacker_auxiliary_data(cell, split_for(cell, data))
    start = time.perf_counter()
    model = ModelSpec.of(cell.threat.clone.name, cell.threat.clone.params).build(*auxiliary.shape).to(device)
    model.fit(auxiliary, seed=cell.seed)
    metrics = {"train_seconds": time.perf_counter() - start, "peak_rss_mb": peak_rss_mb()}
    params = {"n_aux_users": int((np.diff(auxiliary.indptr) > 0).sum()), "n_items": auxiliary.shape[1],
              "n_train_interactions": auxiliary.nnz, "device": device}
    return TargetRecord(auxiliary_hash, model.cpu().to_payload(), metrics, params)


def grant(cell: Cell, state: ServingState, auxiliary: TargetRecord | None) -> AttackerView:
    """What the attacker knows: a `known_share` of the target users' training data (by users or
    interactions), and with an auxiliary attack, the auxiliary users' data and its own model of
    them (`auxiliary`, trained once by the driver; trained here if missing)."""
    data = state.data
    split = _served(cell, state).split  # built once per served target, like its lists
    knowledge = cell.threat.knowledge
    auxiliary_model = None
    if cell.needs_auxiliary:
        record = auxiliary or train_auxiliary(cell, data, cell.auxiliary_hash("inline"), state.device)
        auxiliary_model = model_from_payload(record.payload)
    rng = streams.KNOWN_USERS.rng(cell.seed)
    known, known_interactions = choose_known(split.target_train, knowledge.known_share, knowledge.known_unit, rng)
    return AttackerView(
        n_items=split.n_items,
        known_users=known,
        known_interactions=known_interactions,
        knowledge=knowledge,
        auxiliary=attacker_auxiliary_data(cell, split) if cell.needs_auxiliary else None,
        auxiliary_model=auxiliary_model,
    )


class ServedTarget:
    """The target as it is served: its true top-k lists (from the ranking cached at training,
    else ranked) and what the defender knows (its users' histories, item popularity)."""

    def __init__(self, cell: Cell, data: Interactions, target: TargetRecord, device: str = "cpu"):
        self.split = split_for(cell, data)
        self.target = target
        self.device = device
        self._model = None
        self.context = ServingContext(self.split.target_train,
                                      np.asarray(self.split.target_train.sum(axis=0)).ravel())

    def lists(self, users, kk: int) -> np.ndarray:
        if self.target.lists is not None and kk <= self.target.lists.shape[1]:
            return self.target.lists[users, :kk].astype(np.int64)
        if self._model is None:
            self._model = model_from_payload(self.target.payload).to(self.device)
        return self._model.recommend(users, kk, exclude=self.split.target_train)


def _served(cell: Cell, state: ServingState) -> ServedTarget:
    return state.once("stealing:served", lambda: ServedTarget(cell, state.data, state.target, state.device))


def oracle(cell: Cell, state: ServingState) -> Oracle:
    served = _served(cell, state)
    return Oracle(served.lists, served.context, min(cell.threat.knowledge.list_length, served.split.n_items),
                  cell.threat.knowledge.query_budget, defenses.create_defense(cell.defense.name, **cell.defense.params),
                  streams.ORACLE.rng(cell.seed))


def run_attack(cell: Cell, view: AttackerView, oracle, device: str = "cpu") -> StealingResult:
    if view.auxiliary_model is not None:
        view = dataclasses.replace(view, auxiliary_model=view.auxiliary_model.to(device))
    attack = configured_attack(cell, clone=ModelSpec.of(cell.threat.clone.name, cell.threat.clone.params))
    return attack.run(view, oracle, seed=cell.seed, device=device)


def grade(cell: Cell, data: Interactions, target: TargetRecord, view: AttackerView, result: StealingResult,
          device: str = "cpu") -> dict:
    served = ServedTarget(cell, data, target, device)
    k = min(cell.threat.knowledge.list_length, served.split.n_items)
    defense = defenses.create_defense(cell.defense.name, **cell.defense.params)
    out = stealing_metrics(cell, served.split, served.lists, result, view, defense, served.context, k)
    out["n_known_users"] = view.n_known
    return out


def stealing_metrics(cell, split, target_lists, result: StealingResult, view, defense, context, k) -> dict:
    """Agreement of the clone with the target's true and served lists; the defense's utility cost.

    `target_lists(users, k)` gives the target's true top-k lists (from its cached ranking). When
    the attack queried only some known users, agreement is also split into queried and
    unqueried users: a clone with per-user weights can memorize the lists it was served, and
    only the unqueried users show what it learned of the target beyond them."""
    clone = result.clone
    ks = [kk for kk in cell.metric_ks if kk <= split.n_items]
    k_max = max(ks + [k])
    eval_rng = GRADING.rng(cell.seed)
    true_lists = target_lists(view.known_users, k_max)
    clone_lists = clone.recommend(np.arange(view.n_known), k_max, exclude=view.known_interactions)
    served = defense(true_lists[:, :k], view.known_users, context, eval_rng)
    out = {}
    queried = np.zeros(view.n_known, dtype=bool)
    queried[result.queried_rows] = True
    split_by_query = 0 < queried.sum() < view.n_known
    for kk in ks:
        out[f"agr_at_{kk}"] = per_user(view.known_users, metrics.agreement_per_list(true_lists, clone_lists, kk))
        if kk <= k:
            out[f"agr_served_at_{kk}"] = per_user(view.known_users, metrics.agreement_per_list(served, clone_lists, kk))
        if split_by_query:
            out[f"agr_queried_at_{kk}"] = metrics.agreement_at_k(true_lists[queried], clone_lists[queried], kk)
            out[f"agr_unqueried_at_{kk}"] = metrics.agreement_at_k(true_lists[~queried], clone_lists[~queried], kk)
    # Utility the defended target delivers: its served lists for every target user.
    all_users = np.arange(split.target_train.shape[0])
    defended = defense(target_lists(all_users, k), all_users, context, eval_rng)
    out.update(metrics.utility_metrics(defended, split.target_test, [kk for kk in ks if kk <= k], prefix="defended_"))
    if k in ks:  # per user at the served length only: what a record can afford to keep
        out[f"defended_recall_at_{k}"] = per_user(*metrics.recall_per_user(defended, split.target_test, k))
    return out
