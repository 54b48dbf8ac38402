"""How far poisoning pushed the target items, measured on a trained target.

For a target item t, N_t are the real users without t in their training data. Every item a
user has not trained on is ranked (the held-out item included), and t's rank among them is
1 + the number of those items scoring above it. Per K, averaged over the target items:
- `target_hr_at_K`: the share of N_t with t in its top K (over |N_t|);
- `target_hr_all_at_K`: the same count over every real user: DL-Attack's code's formula
  (its `evaluate.py` divides by num_users), kept to compare with its table;
- `target_exposure_at_K`: the share of all real users' top-K slots that target items take;
and `target_rank` (t's mean rank over N_t) and `target_rank_share` (that rank over the number
of items ranked: 0 at the top).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from recsec.models.base import Recommender


@torch.no_grad()
def target_ranks(model: Recommender, train: sp.csr_matrix, targets: np.ndarray, batch: int = 256) -> np.ndarray:
    """[real users, targets]: each target's 1-based rank among the user's untrained items, 0
    where the user trained on it."""
    model.eval()
    n_users = train.shape[0]
    out = np.zeros((n_users, len(targets)), dtype=np.int64)
    targets_t = torch.as_tensor(targets, device=model.device)
    for start in range(0, n_users, batch):
        users = np.arange(start, min(start + batch, n_users))
        scores = model.score(torch.as_tensor(users, device=model.device)).float()
        block = train[users]
        rows = np.repeat(np.arange(len(users)), np.diff(block.indptr))
        scores[torch.as_tensor(rows, device=model.device),
               torch.as_tensor(block.indices, dtype=torch.long, device=model.device)] = float("-inf")
        own = scores[:, targets_t]  # [b, targets]
        ranks = (scores.unsqueeze(1) > own.unsqueeze(2)).sum(dim=2) + 1
        out[users] = ranks.cpu().numpy()
    seen = np.asarray(train[:, targets].todense()) > 0
    out[seen] = 0
    return out


def target_metrics(ranks: np.ndarray, n_items_ranked: np.ndarray, ks) -> dict[str, float]:
    """The target items' measures from their ranks (`target_ranks`); `n_items_ranked` is each
    user's number of untrained items."""
    eligible = ranks > 0  # [users, targets]: t not in the user's training data
    n_users, n_targets = ranks.shape
    out = {}
    for k in ks:
        hits = eligible & (ranks <= k)
        out[f"target_hr_at_{k}"] = float(np.mean(target_hr_per_item(ranks, k)))
        out[f"target_hr_all_at_{k}"] = float(np.mean(hits.sum(axis=0) / max(n_users, 1)))
        out[f"target_exposure_at_{k}"] = float(hits.sum() / max(n_users * k, 1))
    with np.errstate(invalid="ignore"):
        mean_rank = np.where(eligible, ranks, 0).sum(axis=0) / np.maximum(eligible.sum(axis=0), 1)
        share = np.where(eligible, (ranks - 1) / np.maximum(n_items_ranked[:, None] - 1, 1), 0).sum(axis=0) \
            / np.maximum(eligible.sum(axis=0), 1)
    out["target_rank"] = float(mean_rank.mean())
    out["target_rank_share"] = float(share.mean())
    return out


def target_hr_per_item(ranks: np.ndarray, k: int) -> np.ndarray:
    """Each target item's HR@K over the real users who did not train on it (`target_ranks`)."""
    eligible = ranks > 0
    return (eligible & (ranks <= k)).sum(axis=0) / np.maximum(eligible.sum(axis=0), 1)


def mean_of(records: list[dict[str, float]]) -> dict[str, float]:
    """The mean of each measure over several retrainings."""
    return {name: float(np.mean([r[name] for r in records])) for name in records[0]} if records else {}
