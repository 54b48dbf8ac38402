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

from recsec.harness.families import configured_attack, configured_defense
from recsec.attacks.membership import ItemVectors, MembershipResult, factorize_items, serve_lists
from recsec.attacks.membership.parts import LabelledPart, MembershipView, PartData
from recsec.attacks.membership.recommendations import published_lists
from recsec.attacks.oracle import Oracle
from recsec.harness.data import Interactions
from recsec.harness.data.sequences import leave_one_out, sequences_from_interactions
from recsec.harness.errors import DataError
from recsec.attacks.membership.splits import (DLMIA_DATASETS, MembershipPartition, membership_partition,
                                                published_partition)
from recsec.attacks.membership.metrics import membership_metrics
from recsec.harness.metrics import next_item_metrics, utility_metrics
from recsec.harness.units import statistic_over
from recsec.harness.plugins import load_plugins
from recsec.harness.records import TargetRecord, peak_rss_mb
from recsec.harness.splits import holdout, keep_rows
from recsec.models import ModelSpec, model_class
from recsec.harness import streams

FUTURE_ITEMS = streams.purpose("membership: members' held-out items", 0x4D49)
SERVED_LISTS = streams.purpose("membership: a defense's draws on the served lists (the oracle's, redrawn to grade)", 0xDEF)

if TYPE_CHECKING:
    from recsec.harness.cell import Cell
    from recsec.harness.serving_state import ServingState


def partition_for(cell: Cell, data: Interactions) -> MembershipPartition:
    """The published partition for a DL-MIA dataset (`dl-mia-*`), else a seeded one."""
    if data.name in DLMIA_DATASETS:
        return published_partition(data)
    m = cell.threat.membership
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
    return serve_part(cell, data, "shadow", cell.threat.clone.name, cell.threat.clone.params, auxiliary_hash, device)


def serve_part(cell: Cell, data: Interactions, part: str, model_name: str, model_params: dict,
               record_hash: str, device: str) -> TargetRecord:
    load_plugins()
    m = cell.threat.membership
    partition = partition_for(cell, data)
    users, labels = partition.labelled(part)
    members = users[labels == 1]
    k = cell.threat.knowledge.list_length
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
    observed, future = holdout(data.matrix, cell.split.holdout, FUTURE_ITEMS.rng(cell.seed))
    members = users[labels == 1]
    model = spec.build(data.n_users, data.n_items).to(device)
    model.fit(keep_rows(observed, members), seed=cell.seed)
    k = cell.threat.knowledge.list_length
    served = serve_lists(model, observed, users, labels, k=k, nonmember=cell.threat.membership.nonmember)
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
    lists = model.recommend(part, cell.threat.knowledge.list_length, exclude=history)
    # Published: members' lists after their training sequence, history kept (DL-MIA-SR).
    published = published_lists(model.recommend(observed.take(members), cell.threat.knowledge.list_length),
                                history, labels, shared=False)
    ks = [k for k in cell.metric_ks if k <= lists.shape[1]]
    utility = next_item_metrics(lists[labels == 1], loo.test_target[members], ks)
    popularity = np.asarray(history[labels == 1].sum(axis=0)).ravel().astype(np.float32)
    last = loo.test_target[users]
    future = sp.csr_matrix((np.ones(len(users), np.float32), (np.arange(len(users)), last)), shape=history.shape)
    return history, lists, published, utility, popularity, future


def labelled_part(record: TargetRecord) -> LabelledPart:
    """A part as the target or auxiliary task left it: users (members first), labels, histories
    (rows in the same order), the lists of both serving protocols, popularity and item vectors."""
    p = record.payload
    return LabelledPart(
        users=p["users"].numpy(), history=unpack_csr(p["history"]),
        items=ItemVectors(p["item_vectors"].numpy(), p["item_known"].numpy()), labels=p["labels"].numpy(),
        lists=record.lists.astype(np.int64), published_lists=p["published_lists"].numpy().astype(np.int64),
        popularity=p["popularity"].numpy(), nonmember_popularity=p["nonmember_popularity"].numpy())


def grant(cell: Cell, state: ServingState, auxiliary: TargetRecord | None) -> MembershipView:
    """The attacker's shadow part (its own shadow recommender's record), the target part's users
    and histories with the item vectors it factorized itself, and the defense if it knows it."""
    if auxiliary is None:
        raise ValueError("a membership cell needs the shadow recommender's record (the auxiliary task)")
    target = state.once("membership:part", lambda: labelled_part(state.target))
    return MembershipView(labelled_part(auxiliary), PartData(target.users, target.history, target.items),
                          cell.threat.knowledge, configured_defense(cell))


def oracle(cell: Cell, state: ServingState) -> Oracle:
    """Each target-part user's list (queries are positions in the part) under the cell's serving
    protocol, behind the cell's defense."""
    part = state.once("membership:part", lambda: labelled_part(state.target))
    protocol = configured_attack(cell).config.protocol
    lists = part.protocol_lists(protocol)
    return Oracle(lambda rows, k: lists[rows, :k], part.context(protocol), lists.shape[1], None,
                  configured_defense(cell), SERVED_LISTS.rng(cell.seed))


def run_attack(cell: Cell, view: MembershipView, oracle, device: str = "cpu") -> MembershipResult:
    return configured_attack(cell).run(view, oracle, seed=cell.seed, device=device)


def grade(cell: Cell, data: Interactions, target: TargetRecord, view: MembershipView, result: MembershipResult,
          device: str = "cpu") -> dict:
    """The scores against the true labels; a defense's utility cost on members' held-out items
    (their lists redrawn as the oracle served them)."""
    part, defense = labelled_part(target), configured_defense(cell)
    out = membership_metrics(result.scores, result.predictions, part.labels)
    # Per scored user, the success (ROC AUC) and the published code's "AUC" (balanced accuracy).
    out["roc_auc"] = statistic_over("user", part.users, "roc_auc", score=result.scores, label=part.labels)
    out["balanced_accuracy"] = statistic_over("user", part.users, "balanced_accuracy",
                                              prediction=result.predictions, label=part.labels)
    members = part.labels == 1
    protocol = configured_attack(cell).config.protocol
    served = part.served(defense, SERVED_LISTS.rng(cell.seed), protocol)
    if defense is not None:
        future = unpack_csr(target.payload["future"])
        ks = [k for k in cell.metric_ks if k <= served.shape[1]]
        if model_class(cell.target.name).input_kind == "sequences":
            out.update(next_item_metrics(served[members], future[members].indices, ks, prefix="defended_"))
        else:
            out.update(utility_metrics(served[members], future[members], ks, prefix="defended_"))
    out.update(n_known_users=len(part.users), n_members=int(members.sum()), n_shadow_users=len(view.shadow.users))
    return out


def _is_sequential(model_name: str) -> bool:
    return model_class(model_name).input_kind == "sequences"


def pack_csr(matrix: sp.csr_matrix) -> dict:
    matrix = sp.csr_matrix(matrix)
    return {"indptr": torch.from_numpy(matrix.indptr.astype(np.int64)),
            "indices": torch.from_numpy(matrix.indices.astype(np.int64)),
            "shape": torch.tensor(matrix.shape)}


def unpack_csr(packed: dict) -> sp.csr_matrix:
    indices = packed["indices"].numpy()
    return sp.csr_matrix((np.ones(len(indices), np.float32), indices, packed["indptr"].numpy()),
                         shape=tuple(packed["shape"].tolist()))
