"""Data-free model extraction of sequential recommenders, and the GRO defense.

Synthesis and budgets are checked exactly on a stand-in target; extraction end to end on ML-100k
through the harness's plain task functions (no Ray), asserting properties: the surrogate agrees
with the target far above a random surrogate, the reverse defense costs the target utility.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from recsec.attacks.extraction.synthesis import Prefixes, synthesize
from recsec.attacks.oracle import Oracle, QueryBudgetExceeded, SequenceServingContext
from recsec.defenses.extraction.gro import GRO, GROConfig, SwapRegularizer
from recsec.harness.data import load_dataset
from recsec.harness.grid import expand, parse_grid
from recsec.attacks.stealing.sequence_cells import rank_sequences, sequence_split
from recsec.harness.tasks import run_cell, train_target
from recsec.models import ModelSpec
from recsec.models.losses import pairwise_loss
from recsec.models.sampling import make_generator
from recsec.models.sequential.sequences import Sequences
from recsec.models.sequential.training import WindowSampler

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
    import recsec.defenses.extraction.gro as gro
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
        # select last: at this size (4 epochs, 150 sequences of 10) the held-out last prefixes
        # favour the first epoch, whose surrogate only ranks popular items first (benchmarks/reproduction/extraction.md).
        "attack": [{"name": "dfme", "length": 10, "epochs": 4, "select": "last"},
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
    from recsec.models import model_from_payload
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
    return {(c.attack.name, c.threat.clone.name): run_cell(c, data, target, "c").metrics for c in cells}


def test_stealing_attacks_run_against_a_sequential_target_in_any_clone_pairing(sequential_stealing):
    out = sequential_stealing
    assert set(out) == {("ptd", "sasrec"), ("ptd", "gru4rec"), ("ptaq", "sasrec")}
    for metrics in out.values():
        assert metrics["agr_at_10"] > 0.1  # a random list of 10 from ~1,650 items scores ~0.006
    ptaq = out[("ptaq", "sasrec")]
    assert ptaq["queries"] == ptaq["n_known_users"] > 0  # every known user's sequence queried once
    assert out[("ptd", "sasrec")]["queries"] == 0


# --------------------------------------------------------------------------- faithful options (issue 13)

def explicit_swap_rows(student_scores, listed, outside_scores, margin=0.5):
    """GRO's code: the one-hot swap tensor S, the student loss through it, argmax of dLoss/dS."""
    m, k = listed.shape
    swap = torch.zeros(m, k, student_scores.shape[1])
    swap[torch.arange(m)[:, None], torch.arange(k)[None, :], listed] = 1
    swap.requires_grad_(True)
    listed_scores = torch.bmm(swap, student_scores.unsqueeze(-1)).squeeze(-1)
    loss = (pairwise_loss("hinge", listed_scores[:, :-1], listed_scores[:, 1:], margin)
            + pairwise_loss("hinge", listed_scores, outside_scores, margin))
    (grad,) = torch.autograd.grad(loss, swap)
    return swap.detach(), grad.argmax(-1)


def test_gro_ties_first_item_swaps_with_item_zero_as_the_swap_tensor_argmax_does():
    """A hand-made student: rank 0's hinges hold (its gradient is zero), rank 1 should rise and
    rank 2 fall. GRO's code's argmax picks item 0 for the tied rank; `skip` swaps nothing."""
    from recsec.defenses.extraction.gro import swap_loss, swap_targets

    scores = torch.tensor([[2.5, 5.0, 4.0, 1.0, 3.0, 0.5]])
    listed = torch.tensor([[1, 4, 2]])  # student scores 5, 3, 4: the pair (4, 2) is out of order
    outside = torch.full((1, 3), -10.0)  # listed items far above their sampled items
    swap, explicit = explicit_swap_rows(scores, listed, outside)
    listed_leaf = scores.gather(1, listed).requires_grad_(True)
    loss = (pairwise_loss("hinge", listed_leaf[:, :-1], listed_leaf[:, 1:], 0.5)
            + pairwise_loss("hinge", listed_leaf, outside, 0.5))
    (g,) = torch.autograd.grad(loss, listed_leaf)
    assert g[0, 0] == 0 and g[0, 1] < 0 < g[0, 2]
    assert explicit.tolist() == [[0, 5, 1]]
    assert swap_targets(g, scores, "first_item").tolist() == [[0, 5, 1]]
    assert swap_targets(g, scores, "skip").tolist() == [[-1, 5, 1]]

    z = torch.tensor([[1.0, 3.0, 2.5, 0.0, 2.0, 1.5]])  # the target's logits
    code = swap.clone()
    code[0, torch.arange(3), explicit[0]] -= 1  # S' = S - onehot(argmax)
    code_loss = torch.bmm(code, z.unsqueeze(-1)).clamp(min=0).mean()
    first = swap_loss(z, listed, swap_targets(g, scores, "first_item"))
    assert float(first) == pytest.approx(float(code_loss))
    assert float(first) == pytest.approx(((3.0 - 1.0) + (2.0 - 1.5) + 0.0) / 3)  # z1-z0, z4-z5, relu(z2-z1)
    assert float(swap_loss(z, listed, swap_targets(g, scores, "skip"))) == pytest.approx((2.0 - 1.5) / 3)


def test_per_parameter_clipping_clips_each_tensor_on_its_own():
    from recsec.models.sequential.training import clip_gradients

    def params():
        a, b = torch.zeros(2, requires_grad=True), torch.zeros(1, requires_grad=True)
        a.grad, b.grad = torch.tensor([6.0, 8.0]), torch.tensor([1.0])  # norms 10 and 1
        return a, b

    a, b = params()
    clip_gradients([a, b], 5.0, "per_parameter")
    assert a.grad.norm().item() == pytest.approx(5.0) and b.grad.item() == pytest.approx(1.0)
    a, b = params()
    clip_gradients([a, b], 5.0, "global")
    scale = 5.0 / 101**0.5
    assert a.grad.norm().item() == pytest.approx(10 * scale, rel=1e-4) and b.grad.item() == pytest.approx(scale, rel=1e-4)


def test_softmax_negatives_still_draw_listed_items_e_times_less_often():
    from recsec.models.sampling import softmax_negatives

    listed = torch.tensor([[0, 1]]).expand(20000, 2)
    drawn = softmax_negatives(listed, 4, make_generator(0, torch.device("cpu"))).flatten()
    share = torch.bincount(drawn, minlength=4).float() / drawn.numel()
    e = float(np.e)
    assert share[:2].tolist() == pytest.approx([1 / (2 + 2 * e)] * 2, abs=0.01)
    assert share[2:].tolist() == pytest.approx([e / (2 + 2 * e)] * 2, abs=0.01)


def test_distillation_keeps_the_best_held_out_epoch_and_never_trains_on_it(monkeypatch):
    """select best_last_prefix: each epoch is scored on the last prefix of every sequence, which
    no batch trains on, and the weights of the best-scoring epoch (not the last) are returned."""
    import recsec.attacks.extraction.distill as distill_module
    from recsec.attacks.extraction.dfme import DFMEConfig

    length, n_items = 4, 12
    sequences = np.arange(6 * length).reshape(6, length) % n_items
    lists = np.stack([(np.arange(5) + e) % n_items for e in range(6 * length)])
    model = ModelSpec.of("sasrec", {"hidden": 8, "blocks": 1, "heads": 1, "max_len": length}).build(0, n_items)
    prefixes = Prefixes(sequences, model.pad)
    trained_on, states, scripted = [], [], iter([0.2, 0.9, 0.4])
    real_score_pairs = model.score_pairs

    def held_out(model_, prefixes_, lists_, examples, ranking):
        assert (examples % length == length - 1).all() and len(examples) == 6
        states.append({k: v.clone() for k, v in model_.state_dict().items()})
        return next(scripted)

    def recording(contexts, items):
        trained_on.append(contexts)
        return real_score_pairs(contexts, items)

    monkeypatch.setattr(distill_module, "held_out_ndcg", held_out)
    monkeypatch.setattr(model, "score_pairs", recording)
    distill_module.distill(model, prefixes, lists, DFMEConfig(epochs=3, batch_users=5), seed=0)
    assert len(states) == 3
    assert all(torch.equal(v, states[1][k]) for k, v in model.state_dict().items())
    assert not all(torch.equal(v, states[2][k]) for k, v in model.state_dict().items())
    full_sequences = torch.from_numpy(sequences)
    for contexts in trained_on:  # no trained prefix is a whole sequence (the held-out one)
        assert not (contexts.unsqueeze(1) == full_sequences.unsqueeze(0)).all(-1).any()


def test_sampled_negatives_are_distinct_unseen_and_the_same_for_a_seed():
    from recsec.attacks.stealing.sequence_cells import SAMPLED_NEGATIVES, sampled_negatives

    n_items = SAMPLED_NEGATIVES + 3
    prefixes = Sequences.from_lists([[0, 1], [5, 5, 7]], n_items)  # a repeated item counts once
    targets = np.array([2, 9])
    negatives = sampled_negatives(prefixes, targets, seed=0)
    assert negatives.shape == (2, SAMPLED_NEGATIVES)
    # Exactly the 100 items each user never had, each once.
    assert sorted(negatives[0].tolist()) == list(range(3, n_items))
    assert sorted(negatives[1].tolist()) == sorted(set(range(n_items)) - {5, 7, 9})
    assert np.array_equal(negatives, sampled_negatives(prefixes, targets, seed=0))
    with pytest.raises(ValueError, match="fewer than"):
        sampled_negatives(Sequences.from_lists([[0, 1, 3, 4]], n_items), np.array([2]), seed=0)


def test_gro_reads_the_targets_own_cloze_draw():
    """BERT4Rec under GRO: the swap loss covers exactly the positions the target's loss masked
    in this batch (GRO's code: the same batch), and runs on that forward pass."""
    params = {"hidden": 8, "blocks": 1, "heads": 1, "max_len": 6}
    sequences = Sequences.from_lists([[1, 2, 3, 4, 5, 6, 7], [8, 9, 10], [2, 4, 6, 8]], 12)
    target, student = (ModelSpec.of("bert4rec", params).build(0, 12) for _ in range(2))
    sampler = WindowSampler(sequences, unit="sequences", length=7, pad=target.pad, device="cpu",
                            generator=make_generator(0, torch.device("cpu")))
    batch = next(sampler.batches(8))
    target.training_loss(batch)
    chosen = batch.cache["cloze"][0]
    target.cloze = None  # a second draw would fail
    target_logits, _ = SwapRegularizer(student, GROConfig(k=4), seed=0).logits(target, batch)
    assert target_logits.shape[0] == int(chosen.sum()) >= 1


@pytest.mark.parametrize("params, key", [({"clip": "norm"}, "clip"), ({"select": "best"}, "select")])
def test_bad_sequential_training_options_name_the_key(params, key):
    with pytest.raises(ValueError, match=f"{key} must be one of"):
        ModelSpec.of("sasrec", params).build(0, 10)


@pytest.mark.parametrize("params, key", [({"ties": "last"}, "ties"), ({"negatives": "all"}, "negatives"),
                                         ({"clip": "l2"}, "clip")])
def test_bad_gro_options_name_the_key(params, key):
    with pytest.raises(ValueError, match=f"gro: {key} must be one of"):
        GROConfig(**params)


@pytest.mark.parametrize("learn", ["distill", "finetune_on_lists"])
def test_a_surrogate_with_dropout_learns_the_same_weights_from_the_same_seed(learn):
    """Dropout takes no generator: torch seeds its global one at random in each process, so
    without a seeded global stream two runs of one cell would train two different surrogates."""
    from recsec.attacks import lists as lists_module
    from recsec.attacks.extraction import distill as distill_module
    from recsec.attacks.extraction.dfme import DFMEConfig

    length, n_items = 5, 11
    sequences = np.arange(6 * length).reshape(6, length) % n_items
    lists = np.stack([(np.arange(5) + e) % n_items for e in range(6 * length)])

    def trained() -> dict:
        torch.manual_seed(np.random.SeedSequence().entropy % 2**63)  # whatever came before in the process
        model = ModelSpec.of("sasrec", {"hidden": 8, "blocks": 1, "heads": 1, "max_len": length,
                                        "dropout": 0.5}).build(0, n_items)
        model.reset_parameters(make_generator(0, model.device))
        prefixes = Prefixes(sequences, model.pad)
        if learn == "distill":
            distill_module.distill(model, prefixes, lists, DFMEConfig(epochs=2, batch_users=5), seed=3)
        else:
            contexts = torch.stack([prefixes[torch.tensor([e])][0] for e in range(len(lists))])
            lists_module.finetune_on_lists(model, contexts, lists, lists_module.ListLossConfig(epochs=2), seed=3,
                                           dropout_seed=4)
        return {k: v.clone() for k, v in model.state_dict().items()}

    first, second = trained(), trained()
    assert all(torch.equal(first[k], second[k]) for k in first)
