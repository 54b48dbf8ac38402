"""User-level splits: target/auxiliary users, per-user holdout, known users, the stealing split."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recsec.attacks.stealing.splits import stealing_split
from recsec.harness.splits import choose_known, choose_known_users, holdout, split_users


def random_matrix(n_users=80, n_items=50, density=0.15, seed=0) -> sp.csr_matrix:
    m = sp.random(n_users, n_items, density=density, format="csr", random_state=seed, dtype=np.float32)
    m.data[:] = 1
    # A few edge-case rows: empty, one item, two items.
    m = m.tolil()
    m[0, :] = 0
    m[1, :] = 0
    m[1, 3] = 1
    m[2, :] = 0
    m[2, [4, 7]] = 1
    m = m.tocsr()
    m.eliminate_zeros()
    return m


def pairs(m: sp.csr_matrix) -> set[tuple[int, int]]:
    coo = m.tocoo()
    return set(zip(coo.row.tolist(), coo.col.tolist()))


# --------------------------------------------------------------------------- split_users


@pytest.mark.parametrize("n, share", [(100, 0.5), (101, 0.3), (7, 1.0), (10, 0.01)])
def test_split_users_disjoint_and_covering(n, share):
    target, aux = split_users(n, share, np.random.default_rng(0))
    assert set(target).isdisjoint(aux)
    assert sorted(np.concatenate([target, aux]).tolist()) == list(range(n))
    assert len(target) == max(1, round(share * n))
    assert np.all(np.diff(target) > 0) and np.all(np.diff(aux) > 0)  # sorted


def test_split_users_deterministic_per_seed_and_varies_with_seed():
    a = split_users(200, 0.5, np.random.default_rng(3))
    b = split_users(200, 0.5, np.random.default_rng(3))
    c = split_users(200, 0.5, np.random.default_rng(4))
    np.testing.assert_array_equal(a[0], b[0])
    assert not np.array_equal(a[0], c[0])


@pytest.mark.parametrize("share", [0, -0.1, 1.5])
def test_split_users_rejects_bad_share(share):
    with pytest.raises(ValueError):
        split_users(10, share, np.random.default_rng(0))


# --------------------------------------------------------------------------- holdout


@pytest.mark.parametrize("share", [0.2, 0.5, 0.01])
def test_holdout_partitions_every_interaction(share):
    m = random_matrix()
    train, test = holdout(m, share, np.random.default_rng(0))
    assert train.shape == test.shape == m.shape
    p_train, p_test = pairs(train), pairs(test)
    assert p_train.isdisjoint(p_test)
    assert p_train | p_test == pairs(m)
    assert train.nnz + test.nnz == m.nnz


@pytest.mark.parametrize("share", [0.2, 0.01])
def test_holdout_test_sizes_per_user(share):
    m = random_matrix()
    train, test = holdout(m, share, np.random.default_rng(0))
    counts = np.diff(m.indptr)
    n_test = np.diff(test.indptr)
    expected = np.where(counts >= 2, np.maximum(np.floor(share * counts), 1), 0)
    np.testing.assert_array_equal(n_test, expected)
    assert np.all(n_test[counts >= 2] >= 1)
    assert np.all(np.diff(train.indptr)[counts >= 2] >= 1)  # holdout < 1 leaves training items
    assert n_test[0] == 0 and n_test[1] == 0  # empty and one-item users keep everything in train
    assert np.diff(train.indptr)[1] == 1


def test_holdout_zero_share_keeps_everything_in_train():
    m = random_matrix()
    train, test = holdout(m, 0.0, np.random.default_rng(0))
    assert test.nnz == 0
    assert pairs(train) == pairs(m)


def test_holdout_deterministic_per_seed():
    m = random_matrix()
    a_train, a_test = holdout(m, 0.3, np.random.default_rng(11))
    b_train, b_test = holdout(m, 0.3, np.random.default_rng(11))
    c_train, c_test = holdout(m, 0.3, np.random.default_rng(12))
    assert pairs(a_test) == pairs(b_test) and pairs(a_train) == pairs(b_train)
    assert pairs(a_test) != pairs(c_test)


def test_holdout_outputs_are_binary_sorted_csr():
    m = random_matrix()
    train, test = holdout(m, 0.3, np.random.default_rng(0))
    for part in (train, test):
        assert sp.isspmatrix_csr(part)
        assert part.has_sorted_indices
        assert np.all(part.data == 1)


@pytest.mark.parametrize("share", [1.0, -0.1])
def test_holdout_rejects_bad_share(share):
    with pytest.raises(ValueError):
        holdout(random_matrix(), share, np.random.default_rng(0))


# --------------------------------------------------------------------------- known users


@pytest.mark.parametrize("n, share", [(100, 0.1), (57, 0.33), (5, 0.01), (20, 1.0)])
def test_choose_known_users_size_and_range(n, share):
    known = choose_known_users(n, share, np.random.default_rng(0))
    assert len(known) == max(1, round(share * n))
    assert len(set(known.tolist())) == len(known)
    assert known.min() >= 0 and known.max() < n
    assert np.all(np.diff(known) > 0)


@pytest.mark.parametrize("share", [0, 1.2])
def test_choose_known_users_rejects_bad_share(share):
    with pytest.raises(ValueError):
        choose_known_users(10, share, np.random.default_rng(0))


def test_choose_known_by_users_gives_whole_rows():
    train = random_matrix()
    users, known = choose_known(train, 0.25, "users", np.random.default_rng(0))
    assert len(users) == round(0.25 * train.shape[0])
    assert (known != train[users]).nnz == 0


def test_choose_known_by_interactions_gives_a_share_of_the_entries():
    train = random_matrix()
    users, known = choose_known(train, 0.3, "interactions", np.random.default_rng(0))
    assert known.nnz == round(0.3 * train.nnz)
    assert np.all(np.diff(known.indptr) > 0), "every known user has a known interaction"
    # Each known row is a subset of that user's training row, and rows stay aligned with `users`.
    assert (known - known.multiply(train[users])).nnz == 0
    assert len(users) < train.shape[0] or train.nnz == known.nnz


def test_choose_known_rejects_an_unknown_unit():
    with pytest.raises(ValueError, match="known unit"):
        choose_known(random_matrix(), 0.1, "items", np.random.default_rng(0))


# --------------------------------------------------------------------------- stealing split


def test_stealing_split_shapes_and_content():
    m = random_matrix(n_users=90, n_items=40)
    split = stealing_split(m, target_share=0.4, holdout_share=0.2, seed=0)
    n_target = round(0.4 * 90)
    assert len(split.target_users) == n_target
    assert len(split.aux_users) == 90 - n_target
    assert set(split.target_users).isdisjoint(split.aux_users)
    assert split.n_items == 40
    assert split.target_train.shape == split.target_test.shape == (n_target, 40)
    assert split.auxiliary.shape == (90 - n_target, 40)
    # Row r of train + test is exactly dataset row target_users[r]; aux row r is aux_users[r].
    np.testing.assert_array_equal((split.target_train + split.target_test).toarray(), m[split.target_users].toarray())
    np.testing.assert_array_equal(split.auxiliary.toarray(), m[split.aux_users].toarray())


def test_stealing_split_deterministic_per_seed():
    m = random_matrix()
    a = stealing_split(m, 0.5, 0.2, seed=5)
    b = stealing_split(m, 0.5, 0.2, seed=5)
    c = stealing_split(m, 0.5, 0.2, seed=6)
    np.testing.assert_array_equal(a.target_users, b.target_users)
    assert pairs(a.target_test) == pairs(b.target_test)
    assert not np.array_equal(a.target_users, c.target_users)


# --------------------------------------------------------------------------- auxiliary knowledge


def test_auxiliary_data_keeps_a_share_of_users_and_only_overlapping_items():
    from recsec.attacks.stealing.splits import auxiliary_data

    rng = np.random.default_rng(0)
    full = sp.csr_matrix((rng.random((200, 100)) < 0.2).astype(np.float32))
    held = auxiliary_data(full, aux_share=0.25, item_overlap=0.3, seed=1)
    assert held.shape == full.shape  # ids stay aligned with the target's items
    assert (held - held.multiply(full)).nnz == 0  # only interactions that exist
    assert (np.diff(held.indptr) > 0).sum() <= 50  # at most a quarter of the users
    assert (np.asarray(held.sum(axis=0)).ravel() > 0).sum() <= 30  # at most 30% of the items
    everything = auxiliary_data(full, aux_share=1.0, item_overlap=1.0, seed=1)
    assert (everything != full).nnz == 0
    again = auxiliary_data(full, aux_share=0.25, item_overlap=0.3, seed=1)
    assert (again != held).nnz == 0  # seeded
