"""The oracle: the attacker's only access to a target. Counting, budgets, defenses, exclusion."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recsec import defenses
from recsec.attacks.oracle import Oracle, QueryBudgetExceeded, SequenceServingContext, ServingContext
from recsec.models import create_model

N_USERS, N_ITEMS, K = 30, 60, 5


@pytest.fixture(scope="module")
def train() -> sp.csr_matrix:
    rng = np.random.default_rng(0)
    m = sp.random(N_USERS, N_ITEMS, density=0.25, format="csr", random_state=rng, dtype=np.float32)
    m.data[:] = 1
    return m


@pytest.fixture(scope="module")
def context(train) -> ServingContext:
    return ServingContext(train, np.asarray(train.sum(axis=0)).ravel())


@pytest.fixture(scope="module", params=["pop", "bpr"])
def model(request, train):
    params = {"epochs": 2, "dim": 8, "batch_size": 64} if request.param == "bpr" else {}
    return create_model(request.param, N_USERS, N_ITEMS, **params).fit(train, seed=0)


def make_oracle(model, train, context, **kwargs) -> Oracle:
    return Oracle(lambda users, k: model.recommend(users, k, exclude=train), context, K, **kwargs)


def test_counts_queries_and_items_across_calls(model, train, context):
    oracle = make_oracle(model, train, context)
    assert (oracle.queries, oracle.items_returned) == (0, 0)
    oracle.query(np.array([0, 1, 2]))
    assert (oracle.queries, oracle.items_returned) == (3, 3 * K)
    oracle.query(np.array([5]))
    assert (oracle.queries, oracle.items_returned) == (4, 4 * K)
    oracle.query(np.array([7, 7, 8, 9, 10]))  # a repeated user is a repeated (counted) query
    assert (oracle.queries, oracle.items_returned) == (9, 9 * K)
    oracle.query(np.array([], dtype=np.int64))
    assert (oracle.queries, oracle.items_returned) == (9, 9 * K)


def test_query_returns_k_items_per_user(model, train, context):
    oracle = make_oracle(model, train, context)
    lists = oracle.query(np.array([3, 4]))
    assert lists.shape == (2, K)
    assert oracle.k == K


def test_budget_exceeded_raises_and_counts_nothing(model, train, context):
    oracle = make_oracle(model, train, context, budget=5)
    oracle.query(np.array([0, 1, 2]))
    assert oracle.remaining == 2
    with pytest.raises(QueryBudgetExceeded):
        oracle.query(np.array([3, 4, 5]))  # 3 + 3 > 5
    assert (oracle.queries, oracle.items_returned) == (3, 3 * K)
    assert oracle.remaining == 2
    oracle.query(np.array([3, 4]))  # exactly reaching the budget is allowed
    assert (oracle.queries, oracle.items_returned, oracle.remaining) == (5, 5 * K, 0)
    with pytest.raises(QueryBudgetExceeded):
        oracle.query(np.array([6]))
    assert (oracle.queries, oracle.items_returned) == (5, 5 * K)


def test_budget_exceeded_does_not_call_the_model(train, context):
    calls = []

    def recommend(users, k):
        calls.append(len(users))
        return np.zeros((len(users), k), dtype=np.int64)

    oracle = Oracle(recommend, context, K, budget=2)
    with pytest.raises(QueryBudgetExceeded):
        oracle.query(np.array([0, 1, 2]))
    assert calls == []


def test_zero_budget_refuses_any_query(model, train, context):
    oracle = make_oracle(model, train, context, budget=0)
    with pytest.raises(QueryBudgetExceeded):
        oracle.query(np.array([0]))
    assert oracle.queries == 0


def test_budget_none_is_unlimited(model, train, context):
    oracle = make_oracle(model, train, context, budget=None)
    assert oracle.remaining is None
    for _ in range(10):
        oracle.query(np.arange(N_USERS))
    assert oracle.queries == 10 * N_USERS
    assert oracle.items_returned == 10 * N_USERS * K
    assert oracle.remaining is None


def test_seen_items_are_never_served(model, train, context):
    oracle = make_oracle(model, train, context)
    users = np.arange(N_USERS)
    lists = oracle.query(users)
    for u in users:
        seen = set(train[u].indices.tolist())
        assert seen.isdisjoint(lists[u].tolist()), f"user {u} was served a training item"
        assert len(set(lists[u].tolist())) == K


def test_seen_items_are_never_served_behind_popular_mix(model, train, context):
    defense = defenses.create_defense("popular_mix", n=2, pool=20)
    oracle = make_oracle(model, train, context, defense=defense)
    users = np.arange(N_USERS)
    lists = oracle.query(users)
    for u in users:
        assert set(train[u].indices.tolist()).isdisjoint(lists[u].tolist())
        assert len(set(lists[u].tolist())) == K


def test_defense_is_applied_to_served_lists(model, train, context):
    seen_args = {}

    def defense(lists, users, ctx, rng):
        seen_args.update(lists=lists.copy(), users=users.copy(), ctx=ctx)
        return lists[:, ::-1] + 1000  # recognisable transformation

    plain = make_oracle(model, train, context)
    defended = make_oracle(model, train, context, defense=defense)
    users = np.array([2, 9, 4])
    true_lists = plain.query(users)
    served = defended.query(users)
    np.testing.assert_array_equal(seen_args["lists"], true_lists)
    np.testing.assert_array_equal(seen_args["users"], users)
    assert seen_args["ctx"] is context
    np.testing.assert_array_equal(served, true_lists[:, ::-1] + 1000)
    assert defended.items_returned == served.size


def test_none_defense_serves_true_lists(model, train, context):
    plain = make_oracle(model, train, context)
    defended = make_oracle(model, train, context, defense=defenses.create_defense("none"))
    users = np.arange(10)
    np.testing.assert_array_equal(plain.query(users), defended.query(users))


def test_sequence_queries_count_one_per_row_and_defenses_skip_the_sequence_items():
    pad = N_ITEMS
    popularity = np.arange(N_ITEMS)[::-1].astype(float)  # item 0 most popular
    context = SequenceServingContext(popularity, pad=pad)
    sequences = np.array([[pad, pad, 0, 1], [2, 3, 4, 5], [pad, pad, pad, 7]])
    # A stand-in sequential target: the list is the K items after the sequence's last item.
    recommend = lambda seqs, k: (seqs[:, -1:] + 1 + np.arange(k)) % N_ITEMS  # noqa: E731
    mix = defenses.create_defense("popular_mix", n=3, pool=10)
    oracle = Oracle(recommend, context, K, budget=4, defense=mix, rng=np.random.default_rng(0))
    served = oracle.query(sequences)
    assert served.shape == (3, K) and oracle.queries == 3 and oracle.items_returned == 3 * K
    for row, sequence in enumerate(sequences):
        assert set(served[row].tolist()).isdisjoint(context.seen(sequence).tolist())
    with pytest.raises(QueryBudgetExceeded):
        oracle.query(sequences[:2])
    assert oracle.queries == 3


def test_a_target_server_answers_only_its_oracles_queries(tmp_path):
    """The attack's client can ask its session's oracle for lists (and, where the oracle takes
    them, uploads), never for anything else the server holds."""
    from helpers.served import served_cell
    from recsec.harness.serving import TargetServer, in_process_client

    cell, data, target = served_cell(tmp_path, query_budget=3)
    server = TargetServer(data, target)
    view = server.open(cell, "s")
    client = in_process_client(server, "s")
    assert (client.k, client.budget) == (5, 3)
    assert client.query(view.query_keys(np.arange(2))).shape == (2, 5)
    with pytest.raises(QueryBudgetExceeded):
        client.query(view.query_keys(np.arange(2)))
    for method in ("counts", "_recommend", "__init__"):
        with pytest.raises(AttributeError, match="the oracle serves query"):
            server.call("s", method)
    assert server.close("s") == {"queries": 2, "items_returned": 10} and server.sessions == 0
