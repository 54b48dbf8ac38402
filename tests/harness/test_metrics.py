"""Ranking metrics on hand-made lists; every expected value is worked out in a comment."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

from recsec.harness.metrics import agreement_at_k, hit_ratio_at_k, hits_matrix, ndcg_at_k, recall_at_k


def heldout(rows: list[list[int]], n_items: int = 20) -> sp.csr_matrix:
    """Binary users x items CSR matrix with the given held-out items per row."""
    indptr = np.cumsum([0] + [len(r) for r in rows])
    indices = np.array([i for r in rows for i in r], dtype=np.int64)
    return sp.csr_matrix((np.ones(len(indices), dtype=np.float32), indices, indptr), shape=(len(rows), n_items))


# --------------------------------------------------------------------------- agreement


def test_agreement_identical_lists_is_one():
    lists = np.array([[1, 2, 3, 4], [5, 6, 7, 8]])
    assert agreement_at_k(lists, lists.copy(), 4) == 1.0
    assert agreement_at_k(lists, lists.copy(), 2) == 1.0


def test_agreement_disjoint_lists_is_zero():
    ref = np.array([[1, 2, 3], [4, 5, 6]])
    cand = np.array([[7, 8, 9], [1, 2, 3]])  # row 1 shares items with ref row 0 only: still 0
    assert agreement_at_k(ref, cand, 3) == 0.0


def test_agreement_ignores_order_inside_top_k():
    ref = np.array([[1, 2, 3, 4, 9]])
    cand = np.array([[4, 3, 2, 1, 0]])  # same top-4 set in reverse order
    assert agreement_at_k(ref, cand, 4) == 1.0
    # top-5: {1,2,3,4,9} vs {4,3,2,1,0} share 4 of 5
    assert agreement_at_k(ref, cand, 5) == pytest.approx(4 / 5)


def test_agreement_partial_overlap_is_exact_fraction_averaged_over_users():
    ref = np.array([[0, 1, 2, 3], [10, 11, 12, 13], [5, 6, 7, 8]])
    cand = np.array([
        [3, 99, 1, 98],  # shares {1, 3}: 2/4
        [13, 12, 11, 97],  # shares {11, 12, 13}: 3/4
        [0, 1, 2, 4],  # shares nothing: 0/4
    ])
    # mean(2/4, 3/4, 0) = 5/12
    assert agreement_at_k(ref, cand, 4) == pytest.approx(5 / 12)


def test_agreement_only_looks_at_top_k():
    ref = np.array([[1, 2, 3, 4]])
    cand = np.array([[1, 7, 2, 3]])
    # top-2: {1,2} vs {1,7} -> 1/2; the later 2 and 3 in cand do not count
    assert agreement_at_k(ref, cand, 2) == pytest.approx(0.5)


def test_agreement_is_symmetric():
    rng = np.random.default_rng(0)
    ref = np.stack([rng.permutation(30)[:10] for _ in range(25)])
    cand = np.stack([rng.permutation(30)[:10] for _ in range(25)])
    assert agreement_at_k(ref, cand, 10) == pytest.approx(agreement_at_k(cand, ref, 10))


def test_agreement_matches_set_definition_on_random_lists():
    rng = np.random.default_rng(1)
    ref = np.stack([rng.permutation(40)[:12] for _ in range(30)])
    cand = np.stack([rng.permutation(40)[:12] for _ in range(30)])
    for k in (1, 5, 12):
        expected = np.mean([len(set(r[:k]) & set(c[:k])) / k for r, c in zip(ref, cand)])
        assert agreement_at_k(ref, cand, k) == pytest.approx(expected)


def test_agreement_rejects_mismatched_user_counts():
    with pytest.raises(ValueError):
        agreement_at_k(np.zeros((2, 3), dtype=int), np.zeros((3, 3), dtype=int), 3)


def test_lists_shorter_than_k_raise():
    lists = np.array([[1, 2, 3]])
    with pytest.raises(ValueError, match="shorter than k"):
        agreement_at_k(lists, lists, 4)
    with pytest.raises(ValueError, match="shorter than k"):
        recall_at_k(lists, heldout([[1]]), 4)
    with pytest.raises(ValueError, match="shorter than k"):
        ndcg_at_k(lists, heldout([[1]]), 4)
    with pytest.raises(ValueError, match="shorter than k"):
        hit_ratio_at_k(lists, heldout([[1]]), 4)


def test_one_dimensional_lists_raise():
    with pytest.raises(ValueError, match="2-D"):
        agreement_at_k(np.array([1, 2, 3]), np.array([1, 2, 3]), 2)


# --------------------------------------------------------------------------- utility metrics


def test_hits_matrix_marks_ranks_of_heldout_items():
    lists = np.array([[3, 1, 4], [1, 5, 9]])
    held = heldout([[4, 3], [9]])
    assert hits_matrix(lists, held, 3).tolist() == [[True, False, True], [False, False, True]]
    assert hits_matrix(lists, held, 2).tolist() == [[True, False], [False, False]]


def test_hits_matrix_rejects_mismatched_users():
    with pytest.raises(ValueError):
        hits_matrix(np.array([[1, 2]]), heldout([[1], [2]]), 2)


def test_recall_divides_by_number_of_heldout_items():
    lists = np.array([
        [1, 2, 3, 4],  # held {1, 7}: 1 hit / 2 held-out = 1/2
        [5, 6, 7, 8],  # held {5, 6, 8, 9, 10}: 3 hits / 5 = 3/5
        [0, 1, 2, 3],  # held {2}: 1/1
    ])
    held = heldout([[1, 7], [5, 6, 8, 9, 10], [2]])
    # mean(1/2, 3/5, 1) = 2.1 / 3 = 0.7
    assert recall_at_k(lists, held, 4) == pytest.approx(0.7)
    # k=2: row0 {1,2} -> 1/2; row1 {5,6} -> 2/5; row2 {0,1} -> 0. mean = 0.9/3 = 0.3
    assert recall_at_k(lists, held, 2) == pytest.approx(0.3)


def test_recall_perfect_and_zero():
    lists = np.array([[1, 2, 3], [4, 5, 6]])
    assert recall_at_k(lists, heldout([[1, 2, 3], [6]]), 3) == 1.0
    assert recall_at_k(lists, heldout([[7], [8, 9]]), 3) == 0.0


def test_ndcg_single_hit_at_rank_two():
    lists = np.array([[5, 7, 9]])
    held = heldout([[7]])
    # DCG = 1/log2(2+1); ideal with one relevant item = 1/log2(2) = 1
    assert ndcg_at_k(lists, held, 3) == pytest.approx(1 / math.log2(3))


def test_ndcg_ideal_depends_on_min_of_relevant_and_k():
    lists = np.array([[1, 2, 3]])
    # Every top-3 item is relevant, and there are 5 relevant items: DCG = ideal DCG@3 -> 1
    assert ndcg_at_k(lists, heldout([[1, 2, 3, 10, 11]]), 3) == pytest.approx(1.0)
    # Two relevant items {2, 10}; only 2 is listed, at rank 2.
    # DCG = 1/log2(3); ideal = 1/log2(2) + 1/log2(3) = 1 + 1/log2(3)
    expected = (1 / math.log2(3)) / (1 + 1 / math.log2(3))
    assert ndcg_at_k(lists, heldout([[2, 10]]), 3) == pytest.approx(expected)


def test_ndcg_averages_over_users():
    lists = np.array([[1, 2], [3, 4]])
    held = heldout([[1], [4]])
    # user 0: hit at rank 1 -> 1; user 1: hit at rank 2 -> 1/log2(3)
    assert ndcg_at_k(lists, held, 2) == pytest.approx((1 + 1 / math.log2(3)) / 2)


def test_hit_ratio():
    lists = np.array([[1, 2, 3], [4, 5, 6], [7, 8, 9], [10, 11, 12]])
    held = heldout([[3, 15], [16], [7, 8], [13]])
    # users 0 and 2 have a hit, 1 and 3 do not: 2/4
    assert hit_ratio_at_k(lists, held, 3) == pytest.approx(0.5)
    # k=1: only user 2 (item 7 at rank 1): 1/4
    assert hit_ratio_at_k(lists, held, 1) == pytest.approx(0.25)


def test_users_without_heldout_items_are_excluded():
    lists = np.array([[1, 2, 3], [4, 5, 6], [7, 8, 9]])
    held = heldout([[1], [], [19]])  # user 1 has nothing held out; user 2 misses
    # Over users 0 and 2 only: recall mean(1, 0) = 1/2, HR 1/2, NDCG mean(1, 0) = 1/2.
    # Were user 1 counted (as 0), each would be 1/3.
    assert recall_at_k(lists, held, 3) == pytest.approx(0.5)
    assert hit_ratio_at_k(lists, held, 3) == pytest.approx(0.5)
    assert ndcg_at_k(lists, held, 3) == pytest.approx(0.5)


def test_no_user_with_heldout_items_gives_nan():
    lists = np.array([[1, 2], [3, 4]])
    held = heldout([[], []])
    assert math.isnan(recall_at_k(lists, held, 2))
    assert math.isnan(ndcg_at_k(lists, held, 2))
    assert math.isnan(hit_ratio_at_k(lists, held, 2))


def test_metrics_lie_in_unit_interval_on_random_lists():
    rng = np.random.default_rng(2)
    n_users, n_items, k = 40, 30, 10
    lists = np.stack([rng.permutation(n_items)[:k] for _ in range(n_users)])
    held = sp.random(n_users, n_items, density=0.2, format="csr", random_state=3)
    held.data[:] = 1
    for fn in (recall_at_k, ndcg_at_k, hit_ratio_at_k):
        assert 0.0 <= fn(lists, held, k) <= 1.0
    # recall <= hit ratio (a user's recall is > 0 only when it has a hit, and <= 1)
    assert recall_at_k(lists, held, k) <= hit_ratio_at_k(lists, held, k)
