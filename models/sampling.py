"""Vectorized samplers over a binary interaction matrix: shuffled positives, rejected negatives."""

from __future__ import annotations

from contextlib import contextmanager

from typing import Iterator

import numpy as np
import scipy.sparse as sp
import torch

# Membership of (user, item) pairs is a dense bitmap lookup when the matrix has at most this
# many cells (a byte each; ML-1M needs 22 MB), else a binary search over sorted keys, which costs
# a random access per level and was the slowest step of a BPR epoch on ML-1M.
_BITMAP_MAX_CELLS = 1 << 27

# Rejection rounds for negatives that hit a positive. Each round removes all but a density-sized
# fraction of collisions; what is left after this many rounds is negligible (and harmless).
_NEGATIVE_ROUNDS = 8


class InteractionSampler:
    """Batches of (user, positive item, negative item) drawn with a seeded generator on a device.

    A negative is uniform over the items the user has not interacted with (rejection sampling
    against a sorted key array, so no per-user Python loops).
    """

    def __init__(self, matrix: sp.csr_matrix, device: torch.device, generator: torch.Generator):
        matrix = matrix.tocsr()
        matrix.sort_indices()
        degree = np.diff(matrix.indptr)
        full = np.flatnonzero(degree >= matrix.shape[1])
        if len(full):
            raise ValueError(f"user {full[0]} has interacted with every item: no negative item exists for it")
        coo = matrix.tocoo()
        self.n_users, self.n_items = matrix.shape
        self.device = torch.device(device)
        self.generator = generator
        self.users = torch.from_numpy(coo.row.astype(np.int64)).to(device)
        self.items = torch.from_numpy(coo.col.astype(np.int64)).to(device)
        keys = self.users * self.n_items + self.items
        n_cells = matrix.shape[0] * matrix.shape[1]
        if n_cells <= _BITMAP_MAX_CELLS:
            self._bitmap = torch.zeros(n_cells, dtype=torch.bool, device=device)
            self._bitmap[keys] = True
            self._keys = None
        else:
            self._bitmap = None
            self._keys = torch.sort(keys).values
        # For exact draws: in row u, g_j = p_j - j over the sorted positives p_j is non-decreasing,
        # and the r-th unseen item of u is r + #{j : g_j <= r} (see `_exact_negatives`).
        rank_in_row = np.arange(matrix.nnz) - np.repeat(matrix.indptr[:-1], degree)
        gaps = coo.row.astype(np.int64) * self.n_items + (coo.col - rank_in_row)
        self._gap_keys = torch.from_numpy(gaps).to(device)
        self._row_start = torch.from_numpy(matrix.indptr[:-1].astype(np.int64)).to(device)
        self._degree = torch.from_numpy(degree.astype(np.int64)).to(device)

    @property
    def n_interactions(self) -> int:
        return len(self.users)

    def is_positive(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        keys = users * self.n_items + items
        if self._bitmap is not None:
            return self._bitmap[keys]
        if len(self._keys) == 0:
            return torch.zeros_like(items, dtype=torch.bool)
        at = torch.searchsorted(self._keys, keys).clamp_(max=len(self._keys) - 1)
        return self._keys[at] == keys

    def negatives(self, users: torch.Tensor, per_user: int = 1) -> torch.Tensor:
        """Items the users have not interacted with: shape [len(users)] or [len(users), per_user]."""
        shape = (len(users),) if per_user == 1 else (len(users), per_user)
        owners = users if per_user == 1 else users[:, None].expand(shape)
        items = self._uniform_items(shape).view(-1)
        owners = owners.reshape(-1)
        # Each round re-checks only the draws just redrawn.
        pending = torch.arange(len(items), device=self.device)
        for _ in range(_NEGATIVE_ROUNDS + 1):
            pending = pending[self.is_positive(owners[pending], items[pending])]
            if len(pending) == 0:
                return items.view(shape)
            items[pending] = self._uniform_items((len(pending),))
        # Users who have seen most items can still hold positives: draw those exactly.
        pending = pending[self.is_positive(owners[pending], items[pending])]
        items[pending] = self._exact_negatives(owners[pending])
        return items.view(shape)

    def _exact_negatives(self, users: torch.Tensor) -> torch.Tensor:
        """Uniform over each user's unseen items, without rejection (slower: a binary search)."""
        n_unseen = self.n_items - self._degree[users]
        r = (torch.rand(len(users), generator=self.generator, device=self.device) * n_unseen).long()
        r = torch.minimum(r, n_unseen - 1)
        below = torch.searchsorted(self._gap_keys, users * self.n_items + r, right=True) - self._row_start[users]
        return r + below

    def batches(self, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """One epoch: every interaction once, in a fresh random order, with one negative each.

        The shuffle and the negatives are drawn for the whole epoch at once: a few large
        vectorized ops cost far less than the same work split into hundreds of small batches.
        """
        order = torch.randperm(self.n_interactions, generator=self.generator, device=self.device)
        users, items = self.users[order], self.items[order]
        negatives = self.negatives(users)
        for start in range(0, self.n_interactions, batch_size):
            end = start + batch_size
            yield users[start:end], items[start:end], negatives[start:end]

    def user_uniform_batches(self, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """One epoch as LightGCN's official sampler (`UniformSample_original`) draws it:
        n_interactions users uniformly (those without interactions skipped), a uniform positive
        from each one's row and a uniform negative outside it, then shuffled into batches.

        Heavy users are seen as often as light ones, unlike `batches`, which visits every
        interaction once.
        """
        users = torch.randint(0, self.n_users, (self.n_interactions,), generator=self.generator, device=self.device)
        users = users[self._degree[users] > 0]
        offset = (torch.rand(len(users), generator=self.generator, device=self.device) * self._degree[users]).long()
        items = self.items[self._row_start[users] + offset]
        negatives = self.negatives(users)
        order = torch.randperm(len(users), generator=self.generator, device=self.device)
        users, items, negatives = users[order], items[order], negatives[order]
        for start in range(0, len(users), batch_size):
            end = start + batch_size
            yield users[start:end], items[start:end], negatives[start:end]

    def _uniform_items(self, shape) -> torch.Tensor:
        return torch.randint(0, self.n_items, shape, generator=self.generator, device=self.device)


def make_generator(seed: int, device: torch.device) -> torch.Generator:
    return torch.Generator(device=device).manual_seed(int(seed))


@contextmanager
def seeded_global_rng(seed: int, device: torch.device | str = "cpu"):
    """Inside, torch's global generators (CPU, and the device's) start from `seed`; the caller's
    state is restored after. For what draws from them and takes no generator (dropout): torch
    seeds them at random in each process, so a training loop with dropout outside this would give
    another model on every run."""
    device = torch.device(device)
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(int(seed))
        yield


def sample_outside(lists: torch.Tensor, n_items: int, per_item: int, generator: torch.Generator) -> torch.Tensor:
    """For each row of `lists` [b, k], k * per_item uniform items not in that row: [b, k, per_item]."""
    b, k = lists.shape
    if k >= n_items:
        raise ValueError(f"lists of {k} items leave no item outside them (only {n_items} items)")
    shape = (b, k * per_item)
    draw = lambda size: torch.randint(0, n_items, size, generator=generator, device=lists.device)  # noqa: E731
    items = draw(shape)
    for _ in range(_NEGATIVE_ROUNDS):
        hit = (items.unsqueeze(-1) == lists.unsqueeze(1)).any(-1)
        if not bool(hit.any()):
            return items.view(b, k, per_item)
        items[hit] = draw((int(hit.sum()),))
    hit = (items.unsqueeze(-1) == lists.unsqueeze(1)).any(-1)
    if bool(hit.any()):
        # Exact: the r-th item outside a row's sorted list is r + #{j : sorted_j - j <= r}.
        rows = hit.nonzero()[:, 0]
        gaps = lists.sort(dim=1).values[rows] - torch.arange(k, device=lists.device)
        r = torch.randint(0, n_items - k, (len(rows),), generator=generator, device=lists.device)
        items[hit] = r + (gaps <= r.unsqueeze(1)).sum(1)
    return items.view(b, k, per_item)


NEGATIVE_RULES = ("softmax", "outside")  # how a list learner draws its sampled items


def softmax_negatives(listed: torch.Tensor, n_items: int, generator: torch.Generator) -> torch.Tensor:
    """One item per listed item [m, k], drawn with replacement from softmax(w) over all items,
    w = 0 for the row's listed items and 1 for the rest (the code's Categorical(softmax(weight)))."""
    weight = torch.ones(listed.shape[0], n_items, device=listed.device)
    weight.scatter_(1, listed, 0.0)
    return torch.multinomial(torch.softmax(weight, 1), listed.shape[1], replacement=True, generator=generator)


def draw_negatives(rule: str, listed: torch.Tensor, n_items: int, generator: torch.Generator) -> torch.Tensor:
    if rule == "softmax":
        return softmax_negatives(listed, n_items, generator)
    if rule == "outside":
        return sample_outside(listed, n_items, 1, generator).squeeze(-1)
    raise ValueError(f"negatives must be one of {NEGATIVE_RULES}, got {rule!r}")
