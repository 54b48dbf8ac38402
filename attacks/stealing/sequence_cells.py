"""Cells whose target is a sequential recommender: leave-one-out training and evaluation, the
sequence oracle, and the surrogate's metrics. Plain functions that the extraction family and the
stealing family (against sequential targets) run: no Ray, no MLflow.

Evaluation follows the extraction paper's protocol: the test prefix (a user's sequence without
its last item) is ranked over all items, history not excluded; `*_sampled100` metrics rank the
test item among 100 distinct items drawn uniformly from those the user never had (the code's
random negative sampler), the same 100 for the target and the surrogate.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from recsec.harness.families import configured_attack, trains_target
from recsec import defenses
from recsec.attacks.oracle import Oracle, SequenceServingContext
from recsec.attacks.threat import SequenceView
from recsec.harness import metrics
from recsec.harness.data import Interactions
from recsec.harness.data.sequences import LeaveOneOut, Sequences, leave_one_out, sequences_from_interactions
from recsec.harness.plugins import load_plugins
from recsec.harness.splits import choose_known_users, split_users
from recsec.harness.records import TargetRecord, peak_rss_mb
from recsec.harness.units import per_user
from recsec.models import ModelSpec, model_from_payload
from recsec.attacks.stealing.cells import GRADING
from recsec.attacks.stealing.splits import AUX_USERS
from recsec.harness import streams

SAMPLED_NEGATIVES_STREAM = streams.purpose("100 sampled negatives per test item", 0x5A3)
ATTACK_SEED = streams.purpose("a sequence attack's seed (not the target's)", 0xA7)

if TYPE_CHECKING:
    from recsec.harness.cell import Cell
    from recsec.harness.serving_state import ServingState


LISTS_WIDTH = 100  # each test prefix's ranked list, kept with the trained target
SAMPLED_NEGATIVES = 100


@dataclass(frozen=True)
class SequenceSplit:
    """The target users' leave-one-out split, and the other users' whole sequences (the
    attacker's auxiliary data) when `split.target_share` < 1."""

    target: LeaveOneOut
    auxiliary: Sequences | None


def sequence_split(data: Interactions, cell: Cell | None = None) -> SequenceSplit:
    """All users are target users unless the cell's split keeps a share of them apart (the
    stealing protocol's auxiliary half; the extraction grids use `target_share: 1.0`)."""
    sequences = sequences_from_interactions(data)
    share = 1.0 if cell is None else cell.split.target_share
    if share >= 1:
        return SequenceSplit(leave_one_out(sequences), None)
    target_users, aux_users = split_users(len(sequences), share, streams.DATA_SPLIT.rng(cell.seed))
    return SequenceSplit(leave_one_out(sequences.take(target_users)), sequences.take(aux_users))


def attacker_auxiliary_sequences(cell: Cell, split: SequenceSplit) -> Sequences:
    knowledge = cell.threat.knowledge
    if split.auxiliary is None:
        raise ValueError(f"{cell.attack.name} needs auxiliary users: set split.target_share below 1")
    if knowledge.item_overlap < 1:
        raise ValueError("item_overlap below 1 is not supported against sequential targets")
    users = len(split.auxiliary)
    keep = AUX_USERS.rng(cell.seed).choice(users, size=max(1, round(knowledge.aux_share * users)), replace=False)
    return split.auxiliary.take(np.sort(keep))


def train_auxiliary(cell: Cell, data: Interactions, auxiliary_hash: str, device: str = "cpu") -> TargetRecord:
    """The attacker's own sequential model: the clone's architecture fit on the auxiliary users."""
    load_plugins()
    auxiliary = attacker_auxiliary_sequences(cell, sequence_split(data, cell))
    start = time.perf_counter()
    model = ModelSpec.of(cell.threat.clone.name, cell.threat.clone.params).build(0, data.n_items).to(device)
    model.fit(auxiliary, seed=cell.seed)
    measured = {"train_seconds": time.perf_counter() - start, "peak_rss_mb": peak_rss_mb()}
    params = {"n_aux_users": len(auxiliary), "n_items": data.n_items,
              "n_train_interactions": int(auxiliary.lengths().sum()), "device": device}
    return TargetRecord(auxiliary_hash, model.cpu().to_payload(), measured, params)


@torch.no_grad()
def rank_sequences(model, sequences: np.ndarray, k: int, batch: int = 512) -> np.ndarray:
    """Top-k next items after each row of `sequences` ([n, L], left-padded with the model's pad)."""
    model.eval()
    out = np.empty((len(sequences), k), dtype=np.int64)
    for start in range(0, len(sequences), batch):
        rows = torch.from_numpy(np.ascontiguousarray(sequences[start : start + batch])).to(model.device)
        out[start : start + batch] = model.score(rows).topk(k, dim=1).indices.cpu().numpy()
    return out


def sampled_negatives(prefixes: Sequences, targets: np.ndarray, seed: int) -> np.ndarray:
    """[len(targets), SAMPLED_NEGATIVES] items per user, drawn as the extraction code's random
    negative sampler does: uniform draws, skipping items the user had (prefix or target) and
    items already drawn, so without replacement. The same seed gives the same negatives, which
    rank the target's and the surrogate's test items alike."""
    rng = SAMPLED_NEGATIVES_STREAM.rng(seed)
    n_items = prefixes.n_items
    out = np.empty((len(targets), SAMPLED_NEGATIVES), dtype=np.int64)
    for row, target in enumerate(targets):
        seen = set(prefixes.sequence(row).tolist())
        seen.add(int(target))
        if n_items - len(seen) < SAMPLED_NEGATIVES:
            raise ValueError(f"user {row} leaves {n_items - len(seen)} unseen items, fewer than "
                             f"{SAMPLED_NEGATIVES} sampled negatives")
        drawn: list[int] = []
        while len(drawn) < SAMPLED_NEGATIVES:
            for item in rng.integers(n_items, size=2 * SAMPLED_NEGATIVES).tolist():
                if item not in seen:
                    seen.add(item)
                    drawn.append(item)
                    if len(drawn) == SAMPLED_NEGATIVES:
                        break
        out[row] = drawn
    return out


@torch.no_grad()
def sampled_ranks(model, prefixes: Sequences, targets: np.ndarray, negatives: np.ndarray,
                  batch: int = 512) -> np.ndarray:
    """0-based rank of each target among itself and its row of `negatives` (sampled_negatives)."""
    model.eval()
    negatives = torch.from_numpy(negatives)
    ranks = np.empty(len(targets), dtype=np.int64)
    for start in range(0, len(targets), batch):
        rows = np.arange(start, min(start + batch, len(targets)))
        scores = model.score(prefixes.padded(rows, model.config.max_len, model.pad).to(model.device)).cpu()
        target_scores = scores[torch.arange(len(rows)), torch.from_numpy(targets[rows])]
        ranks[rows] = (scores.gather(1, negatives[rows]) > target_scores.unsqueeze(1)).sum(1).numpy()
    return ranks


def train_target(cell: Cell, data: Interactions, target_hash: str, device: str = "cpu") -> TargetRecord:
    """Train the sequential target on the leave-one-out training part (behind a training-time
    defense when the cell names one) and measure it on the test items."""
    load_plugins()
    split = sequence_split(data, cell).target
    spec = ModelSpec.of(cell.target.name, cell.target.params)
    start = time.perf_counter()
    model = spec.build(0, data.n_items).to(device)
    defense = defenses.create_defense(cell.defense.name, **cell.defense.params)
    # `select: best_valid` keeps the epoch best on the validation items (the papers' targets).
    valid = (split.valid_prefix, split.valid_target) if model.config.select == "best_valid" else None
    if trains_target(cell.defense):
        defense.train(model, split.train, seed=cell.seed, valid=valid)
    else:
        model.fit(split.train, seed=cell.seed, valid=valid)
    train_seconds = time.perf_counter() - start
    width = min(LISTS_WIDTH, data.n_items)
    lists = model.recommend(split.test_prefix, width)
    negatives = sampled_negatives(split.test_prefix, split.test_target, cell.seed)
    ranks = sampled_ranks(model, split.test_prefix, split.test_target, negatives)
    record = metrics.next_item_metrics(lists, split.test_target, cell.metric_ks, ranks=ranks)
    record.update(train_seconds=train_seconds, peak_rss_mb=peak_rss_mb())
    record.update(defense.stats)  # what a training-time defense measured (GRO's tie share)
    params = {"n_users": len(split.train), "n_eval_users": len(split.users), "n_items": data.n_items,
              "n_train_interactions": int(split.train.lengths().sum()), "device": device}
    return TargetRecord(target_hash, model.cpu().to_payload(), record, params, lists=lists.astype(np.int32))


def data_free_view(cell: Cell, state: ServingState, auxiliary: TargetRecord | None) -> SequenceView:
    """Data-free extraction's grant: the item count only (its budget counts synthetic sequences)."""
    return SequenceView(state.data.n_items, cell.threat.knowledge)


def grant(cell: Cell, state: ServingState, auxiliary: TargetRecord | None) -> SequenceView:
    """The stealing attacks' grant: `known_share` of the target users' training sequences (of
    which they may query `query_budget`), and with an auxiliary attack its own model."""
    knowledge = cell.threat.knowledge
    if knowledge.known_unit != "users":
        raise ValueError("against sequential targets the attacker's knowledge is counted in users")
    data = state.data
    split = state.once("sequences:split", lambda: sequence_split(data, cell)).target  # one per served target
    auxiliary_model = None
    if cell.needs_auxiliary:
        record = auxiliary or train_auxiliary(cell, data, cell.auxiliary_hash("inline"), state.device)
        auxiliary_model = model_from_payload(record.payload)
    known = choose_known_users(len(split.train), knowledge.known_share, streams.KNOWN_USERS.rng(cell.seed))
    return SequenceView(data.n_items, knowledge, split.train.take(known), known, auxiliary_model=auxiliary_model)


def oracle(cell: Cell, state: ServingState) -> Oracle:
    """The sequence oracle under the threat model's `query_budget`."""
    return sequence_oracle(cell, state, cell.threat.knowledge.query_budget)


def sequence_oracle(cell: Cell, state: ServingState, budget: int | None) -> Oracle:
    """Next-item lists for the queried sequences, behind the cell's output defense (none when
    the defense was trained into the target)."""
    model = state.once("sequences:model", lambda: model_from_payload(state.target.payload).to(state.device))
    context = state.once("sequences:context",
                         lambda: SequenceServingContext(state.data.item_popularity(), pad=model.pad))
    defense = defenses.create_defense(cell.defense.name, **cell.defense.params)
    return Oracle(lambda seqs, kk: rank_sequences(model, seqs, kk), context, min(cell.threat.knowledge.list_length,
                  state.data.n_items), budget, None if trains_target(cell.defense) else defense,
                  streams.ORACLE.rng(cell.seed))


def run_attack(cell: Cell, view: SequenceView, oracle, device: str = "cpu"):
    if view.auxiliary_model is not None:
        view = dataclasses.replace(view, auxiliary_model=view.auxiliary_model.to(device))
    attack = configured_attack(cell, clone=ModelSpec.of(cell.threat.clone.name, cell.threat.clone.params))
    # The attacker's randomness must not replay the target's: a surrogate of the target's
    # architecture seeded like it would start from the target's own initial weights.
    attack_seed = ATTACK_SEED.seed(cell.seed)
    return attack.run(view, oracle, seed=attack_seed, device=device)


def grade(cell: Cell, data: Interactions, target: TargetRecord, view: SequenceView, result,
          device: str = "cpu") -> dict:
    """The surrogate's agreement with the target on the real test prefixes, its own next-item
    quality, and what real users are served (`defended_*`: through an output defense, else the
    target's own lists)."""
    split = sequence_split(data, cell).target
    model = model_from_payload(target.payload).to(device)
    k = min(cell.threat.knowledge.list_length, data.n_items)
    output_defense = None if trains_target(cell.defense) else defenses.create_defense(cell.defense.name,
                                                                                **cell.defense.params)

    def true_lists(width: int) -> np.ndarray:  # the target's own test lists, cached at training
        if target.lists is not None and width <= target.lists.shape[1]:
            return target.lists[:, :width].astype(np.int64)
        return model.recommend(split.test_prefix, width)

    ks = [kk for kk in cell.metric_ks if kk <= data.n_items]
    k_max = max(ks)
    surrogate_lists = result.surrogate.recommend(split.test_prefix, k_max)
    users = split.users  # the units: each evaluated user's test prefix
    out = {f"agr_at_{kk}": per_user(users, metrics.agreement_per_list(true_lists(k_max), surrogate_lists, kk))
           for kk in ks}
    negatives = sampled_negatives(split.test_prefix, split.test_target, cell.seed)  # the target's, redrawn
    surrogate_ranks = sampled_ranks(result.surrogate, split.test_prefix, split.test_target, negatives)
    out.update(metrics.next_item_metrics(surrogate_lists, split.test_target, ks, prefix="surrogate_", ranks=surrogate_ranks))
    # Per user at one K (10, the papers' cut) besides agreement's: what a record can afford on
    # Beauty's 22,000 users.
    unit_k = 10 if 10 in ks else ks[-1]
    out[f"surrogate_hr_at_{unit_k}"] = per_user(users, metrics.hit_per_list_single(surrogate_lists, split.test_target,
                                                                                  unit_k))
    # What real users are served: the defended lists (an output defense), else the target's own
    # (none, or a training defense such as GRO: the target is the defended one).
    if output_defense is not None:
        context = SequenceServingContext(data.item_popularity(), pad=model.pad)
        prefixes = split.test_prefix
        queries = prefixes.padded(np.arange(len(prefixes)), max(1, int(prefixes.lengths().max())), model.pad).numpy()
        served = output_defense(true_lists(k), queries, context, GRADING.rng(cell.seed))
    else:
        served = true_lists(k)
    out.update(metrics.next_item_metrics(served, split.test_target, [kk for kk in ks if kk <= k], prefix="defended_"))
    if unit_k <= k:
        out[f"defended_hr_at_{unit_k}"] = per_user(users, metrics.hit_per_list_single(served, split.test_target, unit_k))
    out.update({f"agr_served_at_{kk}": per_user(users, metrics.agreement_per_list(served, surrogate_lists, kk))
                for kk in ks if kk <= k})
    out.update(n_known_users=view.n_known, synthetic_sequences=result.synthetic_sequences)
    return out
