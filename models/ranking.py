"""Full-ranking top-k with seen-item exclusion, chunked over users. Written once for all models."""

from __future__ import annotations

from typing import Callable

import numpy as np
import scipy.sparse as sp
import torch


def mask_rows_(scores: torch.Tensor, rows: sp.csr_matrix) -> torch.Tensor:
    """Set scores[r, c] = -inf for every stored entry (r, c) of `rows` (aligned with scores)."""
    if rows.nnz == 0:
        return scores
    counts = torch.from_numpy(np.diff(rows.indptr)).to(scores.device)
    row_ids = torch.repeat_interleave(torch.arange(len(counts), device=scores.device), counts)
    col_ids = torch.from_numpy(rows.indices.astype(np.int64)).to(scores.device)
    scores[row_ids, col_ids] = float("-inf")
    return scores


def recommend_top_k(
    score_fn: Callable[[torch.Tensor], torch.Tensor],
    users: np.ndarray,
    k: int,
    exclude: sp.csr_matrix | None,
    device: torch.device,
    batch_size: int = 1024,
) -> np.ndarray:
    """Top-k item ids per user (best first) from `score_fn(users) -> [b, n_items]`."""
    users = np.asarray(users, dtype=np.int64)
    out = np.empty((len(users), k), dtype=np.int64)
    for start in range(0, len(users), batch_size):
        chunk = users[start : start + batch_size]
        scores = score_fn(torch.from_numpy(chunk).to(device)).float()
        if k > scores.shape[1]:
            raise ValueError(f"asked for top-{k} of only {scores.shape[1]} items")
        if exclude is not None:
            mask_rows_(scores, exclude[chunk])
        top = torch.topk(scores, k, dim=1, sorted=True).indices
        out[start : start + len(chunk)] = top.cpu().numpy()
    return out
