"""Data-free model extraction of sequential recommenders, and the GRO defense.

Synthesis and budgets are checked exactly on a stand-in target; extraction end to end on ML-100k
through the harness's plain task functions (no Ray), asserting properties: the surrogate agrees
with the target far above a random surrogate, the reverse defense costs the target utility.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from attacks.extraction.synthesis import Prefixes, synthesize
from attacks.oracle import Oracle, QueryBudgetExceeded, SequenceServingContext
from defenses.training.gro import GRO, GROConfig, SwapRegularizer
from harness.data import load_dataset
from harness.grid import expand, parse_grid
from harness.sequential import rank_sequences, sequence_split
from harness.tasks import run_cell, train_target
from models import ModelSpec
from models.losses import pairwise_loss
from models.sampling import make_generator
from models.sequential.sequences import Sequences
from models.sequential.training import WindowSampler

N_ITEMS, K = 40, 5


def stand_in_oracle(budget=None) -> Oracle:
    """A deterministic 'target': after a sequence ending in item i it lists i+1..i+K."""
    recommend = lambda seqs, k: (seqs[:, -1:] + 1 + np.arange(k)) % N_ITEMS  # noqa: E731
    return Oracle(recommend, SequenceServingContext(np.ones(N_ITEMS), pad=N_ITEMS), K, budget)


@pytest.mark.parametrize("mode", ["autoregressive", "random"])
def test_synthesis_queries_every_prefix_and_keeps_every_answer(mode):
    oracle = stand_in_oracle()
    data = synthesize(oracle, n_sequences=7, length=6, n_items=N_ITEMS, pad=N_ITEMS, mode=mode,
                      rng=np.random.default_rng(0), batch=3)
    assert oracle.queries == 7 * 6 and oracle.items_returned == 7 * 6 * K
    assert data.sequences.shape == (7, 6) and data.lists.shape == (7, 6, K)
    expected = (data.sequences[:, :, None] + 1 + np.arange(K)) % N_ITEMS  # answer to each prefix
    assert np.array_equal(data.lists, expected)
    follows_list = np.array([[data.sequences[i, t + 1] in data.lists[i, t] for t in range(5)] for i in range(7)])
    if mode == "autoregressive":
        assert follows_list.all()
    else:
        assert not follows_list.all()


def test_synthesis_stops_at_the_budget():
    with pytest.raises(QueryBudgetExceeded):
        synthesize(stand_in_oracle(budget=5 * 6 - 1), 5, 6, N_ITEMS, N_ITEMS, "autoregressive", np.random.default_rng(0))


def test_prefixes_are_left_padded_views_of_each_sequence():
    prefixes = Prefixes(np.array([[1, 2, 3], [4, 5, 6]]), pad=9)
    assert len(prefixes) == 6
    got = prefixes[torch.tensor([0, 2, 4])]
    assert got.tolist() == [[9, 9, 1], [1, 2, 3], [9, 4, 5]]


def test_gro_swap_matches_the_swap_tensor_gradient_and_trains_the_target():
    """The closed-form swap equals the explicit one-hot swap tensor's gradient argmax, and the
    swap loss reaches the target's weights (lambda 0: it does not)."""
    torch.manual_seed(0)
    target = ModelSpec.of("sasrec", {"hidden": 8, "blocks": 1, "heads": 1, "max_len": 6}).build(0, 12)
    student = ModelSpec.of("sasrec", {"hidden": 8, "blocks": 1, "heads": 1, "max_len": 6}).build(0, 12)
    student.reset_parameters(make_generator(3, student.device))
    inputs = torch.tensor([[12, 12, 1, 2, 3, 4], [5, 6, 7, 8, 9, 10]])

    class Batch:  # what the regularizer reads of a training batch
        pass

    batch = Batch()
    batch.inputs = inputs
    # Explicit swap tensor, as GRO's code builds it.
    k = 4
    target_logits = target.logits(target.query(inputs)).detach()
    listed = target_logits.topk(k, dim=1).indices
    scores = student.score(inputs).detach()
    swap = torch.zeros(2, k, 12)
    swap[torch.arange(2)[:, None], torch.arange(k)[None, :], listed] = 1
    swap.requires_grad_(True)
    listed_scores = torch.bmm(swap, scores.unsqueeze(-1)).squeeze(-1)
    outside = scores.min(1, keepdim=True).values.expand(-1, k) + 0.3  # fixed outside scores: not through S

    def student_loss(listed_scores):
        return (pairwise_loss("hinge", listed_scores[:, :-1], listed_scores[:, 1:], 0.5)
                + pairwise_loss("hinge", listed_scores, outside, 0.5))

    (grad,) = torch.autograd.grad(student_loss(listed_scores), swap)
    explicit = grad.argmax(-1)
    listed_leaf = scores.gather(1, listed).requires_grad_(True)
    (g,) = torch.autograd.grad(student_loss(listed_leaf), listed_leaf)
    closed = torch.where(g > 0, scores.argmax(1, keepdim=True), scores.argmin(1, keepdim=True))
    nonzero = g != 0
    assert nonzero.any()
    assert torch.equal(closed[nonzero], explicit[nonzero])

    for lam, moves in [(1.0, True), (0.0, False)]:
        target.zero_grad(set_to_none=True)
        regularizer = SwapRegularizer(student, GROConfig(lam=lam, k=k, positions="last"), seed=0)
        regularizer(target, batch).backward()
        grads = [p.grad for p in target.parameters() if p.grad is not None]
        moved = any(float(gr.abs().sum()) > 0 for gr in grads)
        assert moved == moves


@pytest.mark.parametrize("name", ["sasrec", "bert4rec"])
def test_gro_at_every_position_covers_each_labelled_position_and_trains_the_target(name):
    """positions 'all' (GRO's code): one swap row per labelled position (every real next item for
    SASRec, every masked item for BERT4Rec), and the loss reaches the target's weights."""
    params = {"hidden": 8, "blocks": 1, "heads": 1, "max_len": 6}
    sequences = Sequences.from_lists([[1, 2, 3, 4, 5, 6, 7], [8, 9, 10], [2, 4, 6, 8]], 12)
    target = ModelSpec.of(name, params).build(0, 12)
    student = ModelSpec.of(name, params).build(0, 12)
    generator = make_generator(0, torch.device("cpu"))
    sampler = WindowSampler(sequences, unit=target.train_on, length=7, pad=target.pad, device="cpu",
                            generator=generator)
    batch = next(sampler.batches(8))
    regularizer = SwapRegularizer(student, GROConfig(lam=1.0, k=4), seed=0)
    target_logits, student_scores = regularizer.logits(target, batch)
    if name == "sasrec":
        assert target_logits.shape == (int((batch.targets != target.pad).sum()), 12)
    else:
        assert 1 <= target_logits.shape[0] <= int((batch.window[:, 1:] != target.pad).sum())
    assert student_scores.shape == target_logits.shape
    regularizer(target, batch).backward()
    assert any(float(p.grad.abs().sum()) > 0 for p in target.parameters() if p.grad is not None)


def test_gro_pretrained_fine_tunes_the_trained_target(monkeypatch):
    """pretrained: the target first trains as usual, then GRO continues from those weights for
    its own epochs; otherwise GRO trains from a fresh initialization."""
    import defenses.training.gro as gro

    calls = []
    real = gro.train_next_item

    def recording(model, train, **kwargs):
        calls.append((kwargs.get("extra_loss") is not None, kwargs.get("reset", True), kwargs.get("epochs")))
        return real(model, train, **kwargs)

    monkeypatch.setattr(gro, "train_next_item", recording)
    params = {"hidden": 8, "blocks": 1, "heads": 1, "max_len": 6, "epochs": 1}
    sequences = Sequences.from_lists([[1, 2, 3, 4, 5, 6, 7], [8, 9, 10, 11], [2, 4, 6, 8]], 12)
    GRO(GROConfig(lam=0.5, k=4, epochs=2)).train(ModelSpec.of("sasrec", params).build(0, 12), sequences, seed=0)
    assert calls == [(False, True, None), (True, False, 2)]
    calls.clear()
    GRO(GROConfig(lam=0.5, k=4, pretrained=False)).train(ModelSpec.of("sasrec", params).build(0, 12), sequences,
                                                         seed=0)
    assert calls == [(True, True, None)]


def test_gro_rejects_another_student_at_every_position():
    sequences = Sequences.from_lists([[1, 2, 3], [4, 5, 6]], 8)
    target = ModelSpec.of("sasrec", {"hidden": 8, "blocks": 1, "heads": 1, "max_len": 4, "epochs": 1}).build(0, 8)
    with pytest.raises(ValueError, match="positions: last"):
        GRO(GROConfig(student="gru4rec")).train(target, sequences, seed=0)


# --------------------------------------------------------------------------- end to end, ML-100k

SMALL = {"hidden": 32, "blocks": 1, "heads": 1, "max_len": 20}
GRID = {
    "name": "test-extraction",
    "dataset": {"name": "ml-100k"},
    "split": {"target_share": 1.0},
    "matrix": {
        "target": [{"name": "sasrec", "epochs": 20, "lr": 0.005, **SMALL}],
        "attack": [{"name": "dfme", "length": 10, "epochs": 4},
                   {"name": "dfme", "length": 10, "epochs": 0}],  # an untrained surrogate: the baseline
        "defense": ["none", "reverse"],
        "query_budget": [150],
        "list_length": [100],
    },
    "exclude": [{"attack": {"name": "dfme", "length": 10, "epochs": 0}, "defense": "reverse"}],
    "metrics": {"k": [1, 10, 20]},
}


@pytest.fixture(scope="module")
def ml100k(shared_data_dir, tmp_path_factory):
    return load_dataset("ml-100k", data_dir=shared_data_dir, cache_dir=tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="module")
def extraction(ml100k):
    data = ml100k
    cells = expand(parse_grid(GRID, source="test_extraction"))
    target = train_target(cells[0], data, "t")
    out = {(c.attack.params["epochs"], c.defense.name): run_cell(c, data, target, "c").metrics for c in cells}
    return data, target, out


def test_the_sequential_target_beats_popularity(extraction):
    data, target, _ = extraction
    split = sequence_split(data).target
    popular = np.argsort(-data.item_popularity(), kind="stable")[:10]
    popularity_hr = np.isin(split.test_target, popular).mean()
    assert target.metrics["hr_at_10"] > 1.2 * popularity_hr


def test_extraction_agrees_with_the_target_far_above_an_untrained_surrogate(extraction):
    _, _, out = extraction
    trained, untrained = out[(4, "none")], out[(0, "none")]
    # An untrained surrogate already shares the target's taste for the last few items (about 0.1
    # here; a random list of 10 scores about 0.007): the trained one must double it.
    assert trained["agr_at_10"] > max(2 * untrained["agr_at_10"], 0.15)
    assert trained["queries"] == 150 * 10 and trained["synthetic_sequences"] == 150
    assert trained["items_returned"] == 150 * 10 * 100


def test_reverse_costs_the_target_utility_and_the_attacker_agreement(extraction):
    _, target, out = extraction
    none, reverse = out[(4, "none")], out[(4, "reverse")]
    assert none["defended_hr_at_10"] == pytest.approx(target.metrics["hr_at_10"])
    assert reverse["defended_hr_at_10"] < none["defended_hr_at_10"]
    assert reverse["agr_at_10"] < none["agr_at_10"]


def test_rank_sequences_matches_the_models_own_ranking(extraction):
    data, target, _ = extraction
    from models import model_from_payload
    model = model_from_payload(target.payload)
    split = sequence_split(data).target
    rows = np.arange(5)
    padded = split.test_prefix.padded(rows, model.config.max_len, model.pad).numpy()
    assert np.array_equal(rank_sequences(model, padded, 10), model.recommend(split.test_prefix, 10)[:5])


# --------------------------------------------------------------------------- stealing a sequential target

STEALING_GRID = {
    "name": "test-stealing-sequential",
    "dataset": {"name": "ml-100k"},
    "split": {"target_share": 0.5},
    "matrix": {
        "target": [{"name": "sasrec", "epochs": 20, "lr": 0.005, **SMALL}],
        "clone": ["same", {"name": "gru4rec", "hidden": 32, "max_len": 20, "epochs": 10, "lr": 0.005}],
        "attack": ["ptd", {"name": "ptaq", "clone_epochs": 5, "epochs": 5}],
        "known_share": [0.3],
        "list_length": [50],
    },
    "exclude": [{"clone": {"name": "gru4rec", "hidden": 32, "max_len": 20, "epochs": 10, "lr": 0.005},
                 "attack": {"name": "ptaq", "clone_epochs": 5, "epochs": 5}}],
    "metrics": {"k": [10, 20]},
}


@pytest.fixture(scope="module")
def sequential_stealing(ml100k):
    data = ml100k
    cells = expand(parse_grid(STEALING_GRID, source="test_extraction"))
    target = train_target(cells[0], data, "t")
    return {(c.attack.name, c.clone.name): run_cell(c, data, target, "c").metrics for c in cells}


def test_stealing_attacks_run_against_a_sequential_target_in_any_clone_pairing(sequential_stealing):
    out = sequential_stealing
    assert set(out) == {("ptd", "sasrec"), ("ptd", "gru4rec"), ("ptaq", "sasrec")}
    for metrics in out.values():
        assert metrics["agr_at_10"] > 0.1  # a random list of 10 from ~1,650 items scores ~0.006
    ptaq = out[("ptaq", "sasrec")]
    assert ptaq["queries"] == ptaq["n_known_users"] > 0  # every known user's sequence queried once
    assert out[("ptd", "sasrec")]["queries"] == 0
