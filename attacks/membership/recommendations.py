"""The lists a membership attacker observes from a general (user-id based) recommender.

Under the deployed protocol (below) a member is in the recommender's training data and gets its
top-k list (history excluded). A non-member has no trained user representation, so what they
are served is a choice (`nonmember`):

- "popular": the k most popular items not in their history, popularity counted over the
  recommender's training data (what a service could know; the published protocol counts it
  over the non-members' own interactions instead, see `published_lists`).
- "fold_in" (realistic): the recommender folds the new user in from their history and ranks
  for them as for anyone: item-based models score the history directly (`score_histories`);
  factor models solve for a user vector with the item table frozen (`fold_in_vectors`).

An output defense, when given, transforms every served list, as an oracle would.

Two serving protocols (`PROTOCOLS`), chosen per cell by the attack's `protocol` option:

- "published": the lists as the published code (DL-MIA, KDD 2022, and MIARS before it) writes
  them. Members get the recommender's top-k with their history NOT excluded. Non-members get
  popularity lists counted over the part's non-members' own interactions: one list shared by
  every non-member for general recommenders (`lfm_recommendations.py`: own items not skipped;
  its NCF variant also counts members, not modelled), and per user, skipping their own items,
  for sequential ones (DL-MIA-SR `popularity.py`). `published_lists` builds them.
- "deployed": what a recommender in service returns: history excluded for everyone; non-members
  of a general recommender per `nonmember` below, of a sequential one the model's own list.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch

from recsec.attacks.membership.base import single_threaded
from recsec.attacks.oracle import ListDefense, ServingContext
from recsec.models.base import Recommender
from recsec.models.ranking import recommend_top_k

NONMEMBER_OPTIONS = ("popular", "fold_in")
PROTOCOLS = ("published", "deployed")


@dataclass(frozen=True)
class ServedLists:
    """Lists [n, k] (best first) served to `users` (members first), their labels (1 = member) and
    how the non-members' lists were made ("popular" or "fold_in")."""

    users: np.ndarray
    lists: np.ndarray
    labels: np.ndarray
    nonmember_option: str


def serve_lists(
    model: Recommender,
    history: sp.csr_matrix,
    users: np.ndarray,
    labels: np.ndarray,
    *,
    k: int = 100,
    nonmember: str = "popular",
    defense: ListDefense | None = None,
    rng: np.random.Generator | None = None,
) -> ServedLists:
    """What each of `users` is served by `model`, trained on the members' rows of `history`.

    `history` holds every user's interactions (rows by user id): the training rows of members,
    and for non-members the history they bring when asking.
    """
    if nonmember not in NONMEMBER_OPTIONS:
        raise ValueError(f"nonmember must be one of {NONMEMBER_OPTIONS}, got {nonmember!r}")
    users, labels = np.asarray(users, dtype=np.int64), np.asarray(labels, dtype=np.int64)
    is_member = np.zeros(history.shape[0], dtype=bool)
    is_member[users[labels == 1]] = True
    popularity = np.asarray(history[is_member].sum(axis=0)).ravel()
    members, nonmembers = users[labels == 1], users[labels == 0]

    lists = np.empty((len(users), k), dtype=np.int64)
    lists[labels == 1] = model.recommend(members, k, exclude=history)
    own = history[nonmembers]
    score = popular_scorer(popularity) if nonmember == "popular" else fold_in_scorer(model, own)
    lists[labels == 0] = recommend_top_k(score, np.arange(len(nonmembers)), k, own, torch.device("cpu"))

    if defense is not None:
        context = ServingContext(history, popularity, is_member)
        lists = defense(lists, users, context, rng if rng is not None else np.random.default_rng(0))
    return ServedLists(users, lists, labels, nonmember)


def popular_scorer(popularity: np.ndarray):
    """`rows -> scores`: every row scores items by their popularity."""
    counts = torch.from_numpy(np.asarray(popularity, dtype=np.float32))
    return lambda rows: counts.expand(len(rows), -1).clone()


def fold_in_scorer(model: Recommender, histories: sp.csr_matrix):
    """`rows -> scores [len(rows), n_items]` for new users with these histories (row r = user r)."""
    if model.fold_in == "histories":
        return lambda rows: model.score_histories(histories[rows.numpy()]).cpu()
    if model.fold_in != "factors":
        raise NotImplementedError(
            f"fold-in is not implemented for {model.name!r}: it needs a model that scores a history "
            "(score_histories) or a factor model (user vector . item_factors)")
    with torch.no_grad():
        items = model.item_factors.detach().cpu().float()
        vectors = fold_in_vectors(items, histories)
        bias = model.item_offsets()
        offset = torch.zeros(items.shape[0]) if bias is None else bias.detach().cpu().float()
    return lambda rows: vectors[rows] @ items.T + offset


@single_threaded()
def fold_in_vectors(items: torch.Tensor, histories: sp.csr_matrix, *, unobserved_weight: float = 0.01,
                    reg: float = 2.0, batch_size: int = 256) -> torch.Tensor:
    """User vectors for `histories` with the item table `items` [n_items, d] frozen.

    The implicit-feedback ridge of Hu et al. (2008), solved per user in closed form: target 1 for
    the history's items, 0 at weight a = `unobserved_weight` for every other item,
        p = (a Q^T Q + (1 - a) Q_H^T Q_H + r I)^-1 Q_H^T 1,
    with r = `reg` times the mean squared item norm, so the defaults do not depend on the table's
    scale. Every unobserved item plays the sampled negatives' part, so no sampling noise enters.
    The defaults make folding a member in reproduce about 87% of their own top-100 (BPR-MF on
    ML-100k, `tests/attacks/membership/test_membership.py` checks > 70%): the folded-in user is served nearly as if
    they had been trained on.
    """
    n, d = histories.shape[0], items.shape[1]
    ridge = reg * items.square().sum(1).mean()
    gram = unobserved_weight * items.T @ items + ridge * torch.eye(d)
    histories = sp.csr_matrix(histories)
    out = torch.empty(n, d)
    for start in range(0, n, batch_size):
        rows = histories[start : start + batch_size]
        lengths = np.diff(rows.indptr)
        width = int(lengths.max(initial=1))
        # Histories padded to [b, width]; padding points at item 0 with weight 0.
        index = np.zeros((len(lengths), width), dtype=np.int64)
        mask = np.arange(width)[None, :] < lengths[:, None]
        index[mask] = rows.indices
        q = items[torch.from_numpy(index)] * torch.from_numpy(mask).unsqueeze(2)  # [b, width, d]
        a = gram + (1 - unobserved_weight) * q.transpose(1, 2) @ q
        out[start : start + len(lengths)] = torch.linalg.solve(a, q.sum(1))
    return out


# --------------------------------------------------------------------------- the published protocol


def published_lists(member_lists: np.ndarray, histories: sp.csr_matrix, labels: np.ndarray, *,
                    shared: bool) -> np.ndarray:
    """The part's lists under the published protocol, rows in the order of `labels`.

    `member_lists` [n_members, k] are the recommender's top-k for the members (rows in order),
    made with their history NOT excluded. `histories` holds the part's rows in the order of
    `labels`. Non-members get the k items most often in the non-members' histories (members'
    interactions are not counted): the same list for all (`shared`, general recommenders) or,
    per non-member, the most popular items not in their own history (sequential recommenders).
    Ties go to the lower item id.
    """
    labels = np.asarray(labels)
    member_lists = np.asarray(member_lists, dtype=np.int64)
    k = member_lists.shape[1]
    own = sp.csr_matrix(histories)[np.flatnonzero(labels == 0)]
    counts = np.asarray(own.sum(axis=0)).ravel()
    order = np.argsort(-counts, kind="stable")  # most popular first, ties by item id
    lists = np.empty((len(labels), k), dtype=np.int64)
    lists[labels == 1] = member_lists
    lists[labels == 0] = order[:k] if shared else popular_skipping_own(order, own, k)
    return lists


def popular_skipping_own(order: np.ndarray, histories: sp.csr_matrix, k: int) -> np.ndarray:
    """Per history row: the first k items of `order` not in that row."""
    out = np.empty((histories.shape[0], k), dtype=np.int64)
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    for row in range(histories.shape[0]):  # one pass over `order` per user, not per item
        seen = histories.indices[histories.indptr[row]: histories.indptr[row + 1]]
        skipped = np.sort(rank[seen])
        candidates = order[: k + len(skipped)]
        keep = np.ones(len(candidates), dtype=bool)
        keep[skipped[skipped < len(candidates)]] = False
        picked = candidates[keep][:k]
        if len(picked) < k:
            raise ValueError(f"only {len(picked)} items left to recommend after skipping a history of {len(seen)}")
        out[row] = picked
    return out
