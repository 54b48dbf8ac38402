"""LearnBPR's step, one example at a time: the per-example SGD of Rendle et al. (2009), the
kernel `implicit` runs, compiled (numba) so that an epoch is one loop over its examples.

It is BPR-MF's `optimizer: learnbpr`, a named alternative to the papers' Adam on batches: each
example (u, i, j) moves its three rows at once, so the next example sees them moved. It runs in
one thread, in the sampler's order, so a seed gives the same model on every run (implicit's
threads update rows without locks, Hogwild-style, and do not). The examples are BPR-MF's sampler's
(every interaction once per epoch, in a fresh order, with a negative outside the user's row);
LearnBPR proper draws interactions with replacement. While one epoch steps, the sampler draws
the next one's examples in another thread (torch's generator, in the same order as ever).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit


# fastmath lets the compiler vectorise the dot product (its sum reordered: the same machine gives
# the same bits on every run, another CPU may differ in the last bit); nogil lets the next epoch's
# examples be drawn in another thread meanwhile.
@njit(cache=True, fastmath=True, nogil=True)
def _epoch(table, users, pos, neg, n_users, lr, reg):  # pragma: no cover - compiled
    dim = table.shape[1]
    one = np.float32(1.0)
    loss = 0.0
    for s in range(users.shape[0]):
        p_u, q_i, q_j = table[users[s]], table[n_users + pos[s]], table[n_users + neg[s]]
        x = np.float32(0.0)  # float32 throughout, as the table: mixed precision would not vectorise
        for d in range(dim):
            x += p_u[d] * (q_i[d] - q_j[d])
        # d/dx of -ln sigmoid(x) is -sigmoid(-x); the loss -ln sigmoid(x) is softplus(-x)
        z = one / (one + np.float32(math.exp(x)))
        loss += math.log1p(math.exp(-x)) if x > -30.0 else -x
        for d in range(dim):
            a, b, c = p_u[d], q_i[d], q_j[d]
            p_u[d] = a + lr * (z * (b - c) - reg * a)
            q_i[d] = b + lr * (z * a - reg * b)
            q_j[d] = c + lr * (-z * a - reg * c)
    return loss / max(1, users.shape[0])


def learn_bpr_epoch(table: np.ndarray, users: np.ndarray, pos: np.ndarray, neg: np.ndarray, n_users: int,
                    lr: float, reg: float) -> float:
    """One pass over the examples (u = users[s], i = pos[s], j = neg[s]) in order, updating
    `table` (users' rows, then items', float32, C order) in place; the mean BPR loss, each
    example's taken before its step."""
    if table.dtype != np.float32 or not table.flags.c_contiguous:
        raise ValueError("learn_bpr_epoch needs a C-ordered float32 table")
    return float(_epoch(table, users.astype(np.int64, copy=False), pos.astype(np.int64, copy=False),
                        neg.astype(np.int64, copy=False), n_users, np.float32(lr), np.float32(reg)))
