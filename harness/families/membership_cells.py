"""Membership-inference cells (Zhang et al., CCS 2021; DL-MIA, KDD 2022): plain functions that
the membership family runs; no Ray, no MLflow.

One partition of a dataset's users (vectorization / shadow / target parts, members and
non-members in shadow and target; seeded, or as published for the `dl-mia-*` datasets) serves
both sides:
- the target task trains the target recommender on the target part's members and records what it
  serves to every user of that part under both serving protocols (`published` and `deployed`,
  see attacks.membership.recommendations; the cell's attack picks one), with the part's
  histories and the attacker's item vectors (factorized from the vectorization part);
- the auxiliary task does the same for the attacker's shadow recommender (the grid's clone axis)
  on the shadow part of the shadow dataset (the grid's unless `membership.shadow_dataset` crosses
  it);
- the cell applies the output defense to what the target serves (and to the shadow's lists when
  the attacker `knows_defense`), builds difference vectors, fits the attack on the shadow part,
  scores the target part and grades the scores against the true labels.

Each user's interactions are split once: `split.holdout` of them (general recommenders; the last
item for sequential ones) are the future, never trained on nor shown to the attacker, on which
members' lists are graded for the recommender's utility and a defense's cost.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp
import torch

from attacks.membership import ItemVectors, PartFeatures, difference_vectors, factorize_items, run_attack, serve_lists
from attacks.membership.recommendations import MembershipServingContext, published_lists
from harness.data import Interactions
from harness.data.sequences import leave_one_out, sequences_from_interactions
from harness.errors import DataError
from harness.families.membership_splits import (DLMIA_DATASETS, MembershipPartition, keep_rows,
                                                membership_partition, published_partition)
from harness.metrics import membership_metrics, next_item_metrics, utility_metrics
from harness.plugins import load_plugins
from harness.records import CellRecord, TargetRecord, finish_cell, peak_rss_mb
from harness.splits import holdout
from models import ModelSpec, model_class

if TYPE_CHECKING:
    from harness.grid import Cell


def partition_for(cell: Cell, data: Interactions) -> MembershipPartition:
    """The published partition for a DL-MIA dataset (`dl-mia-*`), else a seeded one."""
    if data.name in DLMIA_DATASETS:
        return published_partition(data)
    m = cell.sections["membership"]
    return membership_partition(data.n_users, seed=cell.seed, vector_share=m.vector_share,
                                shadow_share=m.shadow_share, member_share=m.member_share)


def vectorization_rows(partition: MembershipPartition) -> np.ndarray:
    """Whose interactions learn the item vectors: the vectorization part, or where a published
    split ships none usable (DL-MIA's), the shadow part, which the attacker holds anyway."""
    if len(partition.vector):
        return partition.vector
    return np.concatenate([partition.shadow_members, partition.shadow_nonmembers])


def train_target(cell: Cell, data: Interactions, target_hash: str, device: str = "cpu") -> TargetRecord:
    """The target recommender, trained on the target part's members, and what it serves that part."""
    return serve_part(cell, data, "target", cell.target.name, cell.target.params, target_hash, device)


def train_auxiliary(cell: Cell, data: Interactions, auxiliary_hash: str, device: str = "cpu") -> TargetRecord:
    """The attacker's shadow recommender on the shadow part of `data` (the shadow dataset)."""
    return serve_part(cell, data, "shadow", cell.clone.name, cell.clone.params, auxiliary_hash, device)


def serve_part(cell: Cell, data: Interactions, part: str, model_name: str, model_params: dict,
               record_hash: str, device: str) -> TargetRecord:
    load_plugins()
    m = cell.sections["membership"]
    partition = partition_for(cell, data)
    users, labels = partition.labelled(part)
    members = users[labels == 1]
    k = cell.knowledge.list_length
    if k >= data.n_items:
        raise ValueError(f"list_length {k} needs more than {data.n_items} items")
    spec = ModelSpec.of(model_name, model_params)
    start = time.perf_counter()
    serve = _serve_sequential if _is_sequential(model_name) else _serve_general
    history, lists, published, utility, popularity, future = serve(cell, data, spec, users, labels, device)
    train_seconds = time.perf_counter() - start
    items = factorize_items(data.matrix[vectorization_rows(partition)], dim=m.item_dim, seed=cell.seed)
    utility.update(train_seconds=train_seconds, peak_rss_mb=peak_rss_mb())
    nonmember_popularity = np.asarray(history[labels == 0].sum(axis=0)).ravel().astype(np.float32)
    payload = {
        "users": torch.from_numpy(users), "labels": torch.from_numpy(labels),
        "history": pack_csr(history), "future": pack_csr(future), "popularity": torch.from_numpy(popularity),
        "nonmember_popularity": torch.from_numpy(nonmember_popularity),
        "published_lists": torch.from_numpy(published.astype(np.int32)),
        "item_vectors": torch.from_numpy(items.vectors), "item_known": torch.from_numpy(items.known),
    }
    params = {"part": part, "dataset": data.name, "n_members": len(members), "n_nonmembers": len(users) - len(members),
              "n_vector_users": len(partition.vector), "n_items": data.n_items, "nonmember_lists": m.nonmember,
              "device": device}
    return TargetRecord(record_hash, payload, utility, params, lists=lists.astype(np.int32))


def _serve_general(cell, data, spec, users, labels, device):
    """Train on members' observed items; serve the part (non-members per the grid's option);
    recall/ndcg of members' lists on their held-out items."""
    observed, future = holdout(data.matrix, cell.split.holdout, np.random.default_rng([cell.seed, 0x4D49]))
    members = users[labels == 1]
    model = spec.build(data.n_users, data.n_items).to(device)
    model.fit(keep_rows(observed, members), seed=cell.seed)
    k = cell.knowledge.list_length
    served = serve_lists(model, observed, users, labels, k=k, nonmember=cell.sections["membership"].nonmember)
    published = published_lists(model.recommend(members, k), observed[users], labels, shared=True)
    ks = [k for k in cell.metric_ks if k <= served.lists.shape[1]]
    utility = utility_metrics(served.lists[labels == 1], future[members], ks)
    popularity = np.asarray(observed[members].sum(axis=0)).ravel().astype(np.float32)
    return observed[users], served.lists, published, utility, popularity, future[users]


def _serve_sequential(cell, data, spec, users, labels, device):
    """Train on members' sequences minus their last item; serve everyone's sequence (a sequential
    model scores a non-member's sequence directly); hit ratio of members' lists on the last item."""
    loo = leave_one_out(sequences_from_interactions(data))
    if len(loo.users) != data.n_users:
        raise DataError(f"{data.name}: sequential membership cells need every user to have at least 3 "
                        f"interactions ({data.n_users - len(loo.users)} have fewer); raise min_user_interactions")
    observed = loo.test_prefix  # every item but the last, one row per user
    members = users[labels == 1]
    model = spec.build(0, data.n_items).to(device)
    model.fit(observed.take(members), seed=cell.seed)
    part = observed.take(users)
    history = part.to_matrix()
    lists = model.recommend(part, cell.knowledge.list_length, exclude=history)
    # Published: members' lists after their training sequence, history kept (DL-MIA-SR).
    published = published_lists(model.recommend(observed.take(members), cell.knowledge.list_length),
                                history, labels, shared=False)
    ks = [k for k in cell.metric_ks if k <= lists.shape[1]]
    utility = next_item_metrics(lists[labels == 1], loo.test_target[members], ks)
    popularity = np.asarray(history[labels == 1].sum(axis=0)).ravel().astype(np.float32)
    last = loo.test_target[users]
    future = sp.csr_matrix((np.ones(len(users), np.float32), (np.arange(len(users)), last)), shape=history.shape)
    return history, lists, published, utility, popularity, future


class ServedPart:
    """A part as the target or auxiliary task left it: users (members first), labels, histories
    and futures (rows in the same order), the undefended lists, popularity and item vectors."""

    def __init__(self, record: TargetRecord):
        p = record.payload
        self.users, self.labels = p["users"].numpy(), p["labels"].numpy()
        self.history, self.future = unpack_csr(p["history"]), unpack_csr(p["future"])
        self.popularity = p["popularity"].numpy()
        self.items = ItemVectors(p["item_vectors"].numpy(), p["item_known"].numpy())
        self.lists = record.lists.astype(np.int64)  # the deployed protocol's
        self.published_lists = p["published_lists"].numpy().astype(np.int64)
        self.nonmember_popularity = p["nonmember_popularity"].numpy()

    def served(self, defense, rng: np.random.Generator, protocol: str = "deployed") -> np.ndarray:
        """The lists the part's users see under `protocol` behind `defense` (rows = positions in
        the part). Under the published protocol a defense draws its popular pool from the
        non-members' interactions, as the published code's `recommend_defense` does."""
        published = protocol == "published"
        lists = self.published_lists if published else self.lists
        if defense is None:
            return lists
        popularity = self.nonmember_popularity if published else self.popularity
        context = MembershipServingContext(self.history, popularity, self.labels == 1)
        return defense(lists, np.arange(len(self.users)), context, rng)

    def features(self, lists: np.ndarray, weights: str) -> PartFeatures:
        return PartFeatures(self.users, difference_vectors(self.items, self.history, lists, weights), self.labels)


def run_cell(cell: Cell, data: Interactions, target: TargetRecord, cell_hash: str, device: str = "cpu",
             auxiliary: TargetRecord | None = None) -> CellRecord:
    """Attack the target part with a classifier fit on the shadow part; grade it."""
    load_plugins()
    if auxiliary is None:
        raise ValueError("a membership cell needs the shadow recommender's record (the auxiliary task)")
    start = time.perf_counter()
    attack, defense = cell.attack_instance(), cell.defense_instance()
    target_part, shadow_part = ServedPart(target), ServedPart(auxiliary)
    protocol = attack.config.protocol
    target_lists = target_part.served(defense, np.random.default_rng([cell.seed, 0xDEF]), protocol)
    shadow_lists = shadow_part.served(defense if attack.config.knows_defense else None,
                                      np.random.default_rng([cell.seed, 0xDEF, 1]), protocol)
    weights = attack.config.weights
    result = run_attack(attack.classifier(), shadow_part.features(shadow_lists, weights),
                        target_part.features(target_lists, weights), seed=cell.seed)
    attack_seconds = time.perf_counter() - start

    eval_start = time.perf_counter()
    out = membership_metrics(result.scores, result.predictions, result.labels)
    members = target_part.labels == 1
    if defense is not None:  # the defense's utility cost, on members' held-out items
        ks = [k for k in cell.metric_ks if k <= target_lists.shape[1]]
        if cell.sequential:
            last = target_part.future[members].indices
            out.update(next_item_metrics(target_lists[members], last, ks, prefix="defended_"))
        else:
            out.update(utility_metrics(target_lists[members], target_part.future[members], ks, prefix="defended_"))
    n = len(target_part.users)
    return finish_cell(cell_hash, out, queries=n, items_returned=n * target_lists.shape[1], n_known=n,
                       target=target, start=start, attack_seconds=attack_seconds, eval_start=eval_start,
                       n_members=int(members.sum()), n_shadow_users=len(shadow_part.users))


def _is_sequential(model_name: str) -> bool:
    return getattr(model_class(model_name), "input_kind", "users") == "sequences"


def pack_csr(matrix: sp.csr_matrix) -> dict:
    matrix = sp.csr_matrix(matrix)
    return {"indptr": torch.from_numpy(matrix.indptr.astype(np.int64)),
            "indices": torch.from_numpy(matrix.indices.astype(np.int64)),
            "shape": torch.tensor(matrix.shape)}


def unpack_csr(packed: dict) -> sp.csr_matrix:
    indices = packed["indices"].numpy()
    return sp.csr_matrix((np.ones(len(indices), np.float32), indices, packed["indptr"].numpy()),
                         shape=tuple(packed["shape"].tolist()))
