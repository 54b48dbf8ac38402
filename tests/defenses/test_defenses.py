"""Output defenses: `none` and popular-item mixing, and the defense registry."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recsec import defenses
from recsec.attacks.oracle import ServingContext

N_USERS, N_ITEMS, K = 40, 200, 20


@pytest.fixture(scope="module")
def context() -> ServingContext:
    rng = np.random.default_rng(0)
    history = sp.random(N_USERS, N_ITEMS, density=0.1, format="csr", random_state=1, dtype=np.float32)
    history.data[:] = 1
    # Distinct popularity so the "pool most popular" set is unambiguous.
    popularity = rng.permutation(N_ITEMS).astype(np.float64)
    return ServingContext(history, popularity)


@pytest.fixture(scope="module")
def lists(context) -> np.ndarray:
    """Per user, K distinct unseen items (what an oracle with exclusion would serve)."""
    rng = np.random.default_rng(2)
    out = []
    for u in range(N_USERS):
        unseen = np.setdiff1d(np.arange(N_ITEMS), context.history[u].indices)
        out.append(rng.choice(unseen, size=K, replace=False))
    return np.stack(out)


def top_pool(context, pool: int) -> set[int]:
    return set(np.argsort(-context.item_popularity)[:pool].tolist())


@pytest.mark.parametrize("n, pool", [(1, 50), (5, 50), (10, 100), (20, 150)])
def test_popular_mix_replaces_exactly_n_positions_from_the_pool(context, lists, n, pool):
    defense = defenses.create_defense("popular_mix", n=n, pool=pool)
    users = np.arange(N_USERS)
    served = defense(lists, users, context, np.random.default_rng(0))
    assert served.shape == lists.shape
    popular = top_pool(context, pool)
    for u in users:
        changed = served[u] != lists[u]
        assert changed.sum() == n, f"user {u}: {changed.sum()} positions changed, expected {n}"
        new_items = served[u][changed]
        assert set(new_items.tolist()) <= popular
        # never an item already in the list (so no duplicates) nor in the user's history
        assert set(new_items.tolist()).isdisjoint(lists[u].tolist())
        assert set(new_items.tolist()).isdisjoint(context.history[u].indices.tolist())
        assert len(set(served[u].tolist())) == K
        # the other positions keep their items
        np.testing.assert_array_equal(served[u][~changed], lists[u][~changed])


def test_popular_mix_does_not_modify_its_input(context, lists):
    before = lists.copy()
    defenses.create_defense("popular_mix", n=5, pool=50)(lists, np.arange(N_USERS), context, np.random.default_rng(0))
    np.testing.assert_array_equal(lists, before)


def test_popular_mix_uses_user_ids_for_history(context, lists):
    # Serve user 7's list under the id of user 7 placed at row 0: history of user 7 must be used.
    users = np.array([7, 3])
    served = defenses.create_defense("popular_mix", n=10, pool=200)(
        lists[users], users, context, np.random.default_rng(0)
    )
    for row, u in enumerate(users):
        assert set(served[row].tolist()).isdisjoint(context.history[u].indices.tolist())


def test_popular_mix_small_pool_replaces_what_it_can(context):
    # Pool of 3 items, none in the list: at most 3 positions can change, never a duplicate.
    pool = np.argsort(-context.item_popularity)[:3]
    history = sp.csr_matrix((1, N_ITEMS), dtype=np.float32)
    ctx = ServingContext(history, context.item_popularity)
    others = np.setdiff1d(np.arange(N_ITEMS), pool)[:K]
    served = defenses.create_defense("popular_mix", n=10, pool=3)(others[None, :], np.array([0]), ctx,
                                                                  np.random.default_rng(0))
    assert (served[0] != others).sum() == 3
    assert set(served[0].tolist()) >= set(pool.tolist())
    assert len(set(served[0].tolist())) == K


def test_popular_mix_n_larger_than_list_replaces_all(context, lists):
    served = defenses.create_defense("popular_mix", n=K + 5, pool=N_ITEMS)(
        lists[:3], np.arange(3), context, np.random.default_rng(0)
    )
    assert np.all(served != lists[:3])


def test_popular_mix_is_deterministic_given_rng(context, lists):
    defense = defenses.create_defense("popular_mix", n=5, pool=60)
    users = np.arange(N_USERS)
    a = defense(lists, users, context, np.random.default_rng(4))
    b = defense(lists, users, context, np.random.default_rng(4))
    np.testing.assert_array_equal(a, b)


def test_popular_mix_n_zero_is_identity(context, lists):
    served = defenses.create_defense("popular_mix", n=0)(lists, np.arange(N_USERS), context, np.random.default_rng(0))
    np.testing.assert_array_equal(served, lists)


def test_none_returns_lists_unchanged(context, lists):
    served = defenses.create_defense("none")(lists, np.arange(N_USERS), context, np.random.default_rng(0))
    np.testing.assert_array_equal(served, lists)


def test_registry_names_and_kinds():
    assert {"none", "popular_mix", "random", "reverse", "gro"} <= set(defenses.defense_names())
    kinds = {name: defenses.defense_class(name).kind for name in defenses.defense_names()}
    assert set(kinds.values()) <= {"output", "training", "input"}
    assert kinds["gro"] == "training" and kinds["popular_mix"] == "output"


@pytest.mark.parametrize("params", [{"n": -1}, {"pool": 0}])
def test_create_defense_bad_param_value_raises(params):
    with pytest.raises(ValueError):
        defenses.create_defense("popular_mix", **params)


def test_create_defense_unknown_param_raises():
    with pytest.raises(TypeError):
        defenses.create_defense("popular_mix", size=3)
    with pytest.raises(TypeError):
        defenses.create_defense("none", n=3)


def test_create_defense_unknown_name_lists_known():
    with pytest.raises(KeyError, match="popular_mix"):
        defenses.create_defense("nosuch")


# --------------------------------------------------------------------------- reorder defenses


def test_reorder_defenses_keep_each_lists_items_and_change_only_order():
    rng = np.random.default_rng(0)
    lists = np.stack([rng.permutation(100)[:20] for _ in range(30)])
    for name in ("random", "reverse"):
        served = defenses.create_defense(name)(lists, np.arange(30), None, np.random.default_rng(1))
        assert served.shape == lists.shape
        assert (np.sort(served, axis=1) == np.sort(lists, axis=1)).all(), name
        assert (served != lists).any(), name


def test_reverse_serves_worst_first_and_random_depends_on_the_rng():
    lists = np.arange(12).reshape(2, 6)
    reverse = defenses.create_defense("reverse")
    assert (reverse(lists, np.arange(2), None, None) == lists[:, ::-1]).all()
    shuffle = defenses.create_defense("random")
    a = shuffle(lists, np.arange(2), None, np.random.default_rng(3))
    b = shuffle(lists, np.arange(2), None, np.random.default_rng(3))
    assert (a == b).all()  # seeded: the same cell serves the same lists
