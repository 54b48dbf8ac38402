"""The visual family (issue 6): EfficientNet-Lite0 features, fashion-image data, VBPR/AMR, targeted
FGSM/PGD, the TAaMR protocol, input defenses and the visual metrics.

CI-sized: a few real images at a time. Tests that need semantics run the CNN at its 224x224
input; tests of mechanics run it on the 80x80 images directly (`native_cnn`, about 8x cheaper).
"""

from __future__ import annotations

import shutil

import numpy as np
import scipy.sparse as sp
import pytest
import torch

from recsec.attacks.visual import choose_classes, create_visual_attack, run_taamr, visual_attack_names
from recsec.defenses.visual import create_input_defense, input_defense_names
from recsec.attacks.visual.data import (
    generate_visual_interactions,
    item_features,
    load_fashion_images,
    load_taamr_dataset,
)
from recsec.harness.data import load_dataset
from recsec.harness.errors import DataError, GridError
from recsec.harness.grid import expand, load_grid, parse_grid
from recsec.harness.tasks import run_cell, train_target
from recsec.harness.metrics import recall_at_k
from recsec.harness.splits import holdout
from recsec.attacks.visual.metrics import (
    chr_at_k,
    chr_ndcg_at_k,
    class_hit_ratios,
    detection_metrics,
    feature_distance,
    psnr,
    ssim,
    taamr_metrics,
)
from recsec.models import create_model, model_class
from recsec.models.visual import (
    FEATURE_DIM,
    IMAGENET_CLASSES,
    EfficientNetLite0,
    EfficientNetLiteConfig,
    create_visual_model,
    packaged_weights_path,
    visual_model_from_payload,
    visual_model_names,
)

JERSEY, SWEATSHIRT, JEAN, RUNNING_SHOE = 610, 841, 608, 770
FOOTWEAR = {IMAGENET_CLASSES.index(name) for name in ("Loafer", "clog", "running shoe", "sandal", "cowboy boot")}


@pytest.fixture(scope="module")
def fashion(shared_data_dir):
    root = shared_data_dir / "fashion-images"
    if not root.is_dir():
        pytest.skip(f"fashion images not found at {root}")
    return load_fashion_images(root)


@pytest.fixture(scope="module")
def cnn():
    return EfficientNetLite0()


@pytest.fixture(scope="module")
def native_cnn():
    return EfficientNetLite0(EfficientNetLiteConfig(input_size=None))


def first_of(fashion, article_type: str, n: int) -> np.ndarray:
    return np.flatnonzero(fashion.categories == fashion.category_names.index(article_type))[:n]


# -- the CNN -------------------------------------------------------------------------------------
def test_cnn_loads_the_packaged_weights_strictly(cnn, tmp_path):
    state = torch.load(packaged_weights_path(), map_location="cpu", weights_only=True)
    assert set(cnn.state_dict()) == set(state)
    assert cnn.weights_path == packaged_weights_path()
    missing = dict(state)
    missing.pop("_fc.bias")
    torch.save(missing, tmp_path / "missing.pth")
    with pytest.raises(ValueError, match="missing keys"):
        EfficientNetLite0(EfficientNetLiteConfig(weights=str(tmp_path / "missing.pth")))
    extra = dict(state, **{"_blocks.0._se_reduce.weight": torch.zeros(8, 32, 1, 1)})
    torch.save(extra, tmp_path / "extra.pth")
    with pytest.raises(ValueError, match="unexpected keys"):
        EfficientNetLite0(EfficientNetLiteConfig(weights=str(tmp_path / "extra.pth")))
    with pytest.raises(FileNotFoundError):
        EfficientNetLite0(EfficientNetLiteConfig(weights=str(tmp_path / "absent.pth")))


def test_cnn_gives_plausible_imagenet_classes_for_fashion_products(cnn, fashion):
    """A wrong architecture (padding, activation, normalization) gives confident nonsense."""
    groups = {"Tshirts": {JERSEY, SWEATSHIRT}, "Jeans": {JEAN}, "Casual Shoes": FOOTWEAR}
    rows = np.concatenate([first_of(fashion, name, 4) for name in groups])
    with torch.no_grad():
        logits, features = cnn.forward_both(fashion.images[rows])
    top = logits.argmax(1).numpy()
    expected = [allowed for allowed in groups.values() for _ in range(4)]
    wrong = [(IMAGENET_CLASSES[t], sorted(IMAGENET_CLASSES[a] for a in ok))
             for t, ok in zip(top, expected) if t not in ok]
    assert not wrong, f"implausible top classes: {wrong}"
    assert features.shape == (len(rows), FEATURE_DIM)
    assert (features >= 0).all() and (features <= 6).all()  # pooled ReLU6 activations
    torch.testing.assert_close(logits.softmax(1).sum(1), torch.ones(len(rows)))


# -- data ----------------------------------------------------------------------------------------
def test_fashion_images_are_padded_white_squares_with_categories(fashion):
    assert fashion.images.shape == (1000, 3, 80, 80) and fashion.images.dtype == torch.float32
    assert 0 <= float(fashion.images.min()) and float(fashion.images.max()) <= 1
    # 60 px wide images padded by 10 white columns on each side.
    assert bool((fashion.images[:, :, :, :10] == 1).all()) and bool((fashion.images[:, :, :, -10:] == 1).all())
    assert len(fashion.category_names) == 44 and fashion.categories.max() == 43
    sub = fashion.subset(np.array([5, 2]))
    assert list(sub.item_ids) == [fashion.item_ids[5], fashion.item_ids[2]]


def test_loaders_report_missing_files(tmp_path):
    with pytest.raises(DataError, match="styles.csv"):
        load_fashion_images(tmp_path)
    with pytest.raises(DataError, match="train.tsv"):
        load_taamr_dataset(tmp_path)


def test_taamr_layout_loader(fashion, shared_data_dir, tmp_path):
    (tmp_path / "images").mkdir()
    for item in range(3):
        source = shared_data_dir / "fashion-images" / "images" / f"{fashion.item_ids[item]}.jpg"
        shutil.copy(source, tmp_path / "images" / f"{item}.jpg")
    (tmp_path / "train.tsv").write_text("0\t0\n0\t1\n1\t2\n")
    (tmp_path / "test.tsv").write_text("1\t0\n")
    data = load_taamr_dataset(tmp_path, size=64)
    assert data.train.shape == data.test.shape == (2, 3)
    assert data.train.nnz == 3 and data.test[1, 0] == 1
    assert data.images.images.shape == (3, 3, 64, 64)
    as_bytes = load_taamr_dataset(tmp_path, size=64, as_uint8=True).images.images
    assert as_bytes.dtype == torch.uint8
    (tmp_path / "test.tsv").write_text("1\t3\n")  # item 3 has no image
    with pytest.raises(DataError, match="3.jpg"):
        load_taamr_dataset(tmp_path, size=64)


def test_feature_cache_is_keyed_by_images_and_reused(native_cnn, fashion, tmp_path, monkeypatch):
    images = fashion.images[:4]
    first = item_features(images, native_cnn, cache_dir=tmp_path)
    assert first.features.shape == (4, FEATURE_DIM) and first.classes.shape == (4,)
    assert (tmp_path / "visual-features" / f"{first.key}.npz").is_file()

    def refuse(*args, **kwargs):
        raise AssertionError("features were recomputed instead of read from the cache")

    monkeypatch.setattr(native_cnn, "extract", refuse)
    again = item_features(images, native_cnn, cache_dir=tmp_path)
    np.testing.assert_array_equal(again.features, first.features)
    np.testing.assert_array_equal(again.classes, first.classes)
    monkeypatch.undo()
    changed = images.clone()
    changed[0, 0, 0, 0] = 0.5
    assert item_features(changed, native_cnn, cache_dir=tmp_path).key != first.key


@pytest.fixture(scope="module")
def small_world(fashion, native_cnn):
    """300 real items, their CNN features, and a semi-synthetic train/test split over them."""
    items = fashion.subset(np.arange(300))
    features = item_features(items.images, native_cnn)
    generated = generate_visual_interactions(items.categories, features.features, n_users=400, seed=0)
    train, test = holdout(generated.matrix, 0.2, np.random.default_rng(0))
    return items, features, generated, train, test


def test_semi_synthetic_interactions_follow_the_users_categories(small_world, fashion):
    items, features, generated, _, _ = small_world
    again = generate_visual_interactions(items.categories, features.features, n_users=400, seed=0)
    assert (generated.matrix != again.matrix).nnz == 0
    other = generate_visual_interactions(items.categories, features.features, n_users=400, seed=1)
    assert (generated.matrix != other.matrix).nnz > 0
    counts = np.diff(generated.matrix.indptr)
    assert counts.min() >= 10 and counts.max() <= len(items) // 2
    # Users' items fall in their favourite categories far more often than the categories' size says.
    coo = generated.matrix.tocoo()
    in_favourite = (generated.favourite_categories[coo.row] == items.categories[coo.col][:, None]).any(1)
    sizes = np.bincount(items.categories, minlength=len(items.category_names)) / len(items)
    by_chance = sizes[generated.favourite_categories].sum(1).mean()
    assert in_favourite.mean() > 2 * by_chance


# -- recommenders --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def vbpr(small_world):
    items, features, _, train, _ = small_world
    return create_visual_model("vbpr", train.shape[0], features.features, epochs=20, lr=3e-3).fit(train, seed=0)


def test_vbpr_beats_most_popular_on_semi_synthetic_data(small_world, vbpr):
    _, features, _, train, test = small_world
    users = np.arange(train.shape[0])
    popular = create_model("pop", *train.shape).fit(train)
    taamr = create_visual_model("vbpr", train.shape[0], features.features, variant="taamr", epochs=20,
                                lr=3e-3).fit(train, seed=0)
    pop_recall = recall_at_k(popular.recommend(users, 20, exclude=train), test, 20)
    for model in (vbpr, taamr):
        assert recall_at_k(model.recommend(users, 20, exclude=train), test, 20) > pop_recall


@torch.no_grad()
def test_with_features_rescores_without_retraining(small_world, vbpr):
    users = torch.arange(10)
    same = vbpr.with_features(vbpr.features)
    torch.testing.assert_close(same.score(users), vbpr.score(users))
    changed_features = vbpr.features.clone()
    changed_features[3] *= 2
    changed = vbpr.with_features(changed_features)
    diff = (changed.score(users) - vbpr.score(users)).abs().sum(0)
    assert diff[3] > 0 and float(diff[torch.arange(len(diff)) != 3].max()) == 0
    assert torch.equal(vbpr.features, torch.as_tensor(small_world[1].features))  # the original is untouched
    restored = visual_model_from_payload(vbpr.to_payload())
    torch.testing.assert_close(restored.score(users), vbpr.score(users))
    with pytest.raises(ValueError, match="new features"):
        vbpr.with_features(vbpr.features[:5])


def test_amr_trains_adversarially_and_differs_from_vbpr(small_world):
    _, features, _, train, _ = small_world
    params = dict(epochs=4, lr=3e-3)
    plain = create_visual_model("vbpr", train.shape[0], features.features, **params).fit(train, seed=0)
    losses = []
    amr = create_visual_model("amr", train.shape[0], features.features, **params)
    amr.fit(train, seed=0, on_epoch=lambda epoch, loss: losses.append(loss))
    users = torch.arange(20)
    # Same seed and data: only the adversarial term (on from half the epochs) tells them apart.
    with torch.no_grad():
        assert not torch.allclose(amr.score(users), plain.score(users))
    assert len(losses) == 4 and all(np.isfinite(losses))
    with pytest.raises(ValueError, match="adv_weight"):
        create_visual_model("amr", 5, features.features, adv_weight=0.0)


# -- attacks -------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["vbpr", "amr"])
def test_fits_repeat_bit_for_bit_when_batches_are_split_across_threads(name, two_threads):
    # AMR's feature perturbation and both models' gathers must not add rows in thread order.
    interactions = sp.random(400, 300, density=0.1, random_state=1, format="csr", dtype=np.float32)
    interactions.data[:] = 1
    features = np.random.default_rng(0).normal(size=(300, 64)).astype(np.float32)
    cls = model_class(name)
    fit = lambda: cls(400, 300, cls.Config(epochs=2, batch_size=4096), features=features).fit(interactions, seed=0)  # noqa: E731
    first, second = fit(), fit()
    with torch.no_grad():
        assert torch.equal(first.score(torch.arange(400)), second.score(torch.arange(400)))


@pytest.mark.parametrize("name,params", [("fgsm", {}), ("pgd", {"steps": 3})])
def test_attacks_stay_in_the_eps_ball_and_in_pixel_range(native_cnn, fashion, name, params):
    x = fashion.images[:2]
    eps = 4.0
    attack = create_visual_attack(name, eps=eps, **params)
    adv = attack.perturb(native_cnn, x, RUNNING_SHOE, seed=0)
    assert adv.shape == x.shape
    assert float((adv - x).abs().max()) <= eps / 255 + 1e-6
    assert float(adv.min()) >= 0 and float(adv.max()) <= 1
    assert float((adv - x).abs().max()) > eps / 255 / 2  # it did perturb


def test_normalized_space_option_bounds_the_normalized_tensor_and_does_not_clip(native_cnn, fashion):
    x = fashion.images[:2]
    eps = 4.0
    adv = create_visual_attack("pgd", eps=eps, steps=2, space="normalized").perturb(native_cnn, x, RUNNING_SHOE)
    shift = native_cnn.normalize(adv) - native_cnn.normalize(x)
    assert float(shift.abs().max()) <= eps / 255 + 1e-5
    assert float(adv.max()) > 1  # white background pushed past 1: nothing clipped


def test_pgd_is_seeded(native_cnn, fashion):
    attack = create_visual_attack("pgd", steps=2)
    x = fashion.images[:1]
    first = attack.perturb(native_cnn, x, RUNNING_SHOE, seed=3)
    assert torch.equal(first, attack.perturb(native_cnn, x, RUNNING_SHOE, seed=3))
    assert not torch.equal(first, attack.perturb(native_cnn, x, RUNNING_SHOE, seed=4))


def test_targeted_attacks_raise_the_target_class_probability(cnn, fashion):
    rows = first_of(fashion, "Tshirts", 3)
    x = fashion.images[rows]
    with torch.no_grad():
        before = cnn.probabilities(x)[:, RUNNING_SHOE]
        after_pgd = cnn.probabilities(create_visual_attack("pgd").perturb(cnn, x, RUNNING_SHOE))[:, RUNNING_SHOE]
        after_fgsm = cnn.probabilities(create_visual_attack("fgsm").perturb(cnn, x, RUNNING_SHOE))[:, RUNNING_SHOE]
    assert bool((after_pgd > before).all()), (before, after_pgd)
    assert float(after_fgsm.mean()) > float(before.mean())


def test_choose_classes_low_hit_ratio_toward_high():
    hit_ratios = np.array([0.5, 0.1, 0.0, 0.4])
    item_classes = np.array([0, 0, 0, 1, 1, 1, 2, 3, 3, 3])
    # Class 2 has the lowest ratio but a single item (< min_items): class 1 is the origin.
    assert choose_classes(hit_ratios, item_classes, min_items=2) == (1, 0)
    assert choose_classes(hit_ratios, item_classes, min_items=1) == (2, 0)
    assert choose_classes(hit_ratios, item_classes, min_items=2, target=3) == (1, 3)
    assert choose_classes(hit_ratios, item_classes, origin=3) == (3, 0)
    with pytest.raises(ValueError, match="same class"):
        choose_classes(hit_ratios, item_classes, origin=0, target=0)
    with pytest.raises(ValueError, match="no items"):
        choose_classes(np.zeros(5), item_classes, origin=4)


def test_taamr_protocol_end_to_end(small_world, vbpr, native_cnn):
    items, features, _, train, _ = small_world
    users = np.arange(train.shape[0])
    clean_lists = vbpr.recommend(users, 20, exclude=train)
    n_classes = len(IMAGENET_CLASSES)
    origin, target = choose_classes(class_hit_ratios(clean_lists, features.classes, n_classes, 20),
                                    features.classes, min_items=2)
    outcome = run_taamr(vbpr, native_cnn, items.images, features.classes, create_visual_attack("fgsm"),
                        origin=origin, target=target, users=users, k=50, exclude=train,
                        transform=create_input_defense("median"))
    attacked = np.flatnonzero(features.classes == origin)
    np.testing.assert_array_equal(outcome.attacked_items, attacked)
    np.testing.assert_array_equal(outcome.clean_lists[:, :20], clean_lists)
    assert outcome.attacked_lists.shape == (len(users), 50)
    assert outcome.adversarial_features.shape == (len(attacked), FEATURE_DIM)
    assert outcome.defended_classes is not None
    assert torch.equal(vbpr.features, torch.as_tensor(features.features))  # the recommender is untouched

    metrics = taamr_metrics(outcome, features.classes, k_values=(10, 20, 50, 100))
    assert "chr_at_100_clean" not in metrics  # longer than the lists
    for k in (10, 20, 50):
        for when in ("clean", "attacked"):
            assert 0 <= metrics[f"chr_at_{k}_{when}"] <= 1 and 0 <= metrics[f"chr_ndcg_at_{k}_{when}"] <= 1
        assert metrics[f"chr_at_{k}_clean"] == chr_at_k(outcome.clean_lists, features.classes, origin, k)
    for name in ("targeted_success_rate", "untargeted_success_rate", "defended_untargeted_success_rate"):
        assert 0 <= metrics[name] <= 1
    assert np.isfinite(metrics["psnr"]) and 0 < metrics["ssim"] < 1 and metrics["feature_distance"] > 0


# -- defenses ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def adversarial_pairs(fashion, native_cnn):
    """24 items from outside the first 300, PGD-attacked toward random classes (eps 8)."""
    x = fashion.images[300:324]
    targets = torch.from_numpy(np.random.default_rng(0).integers(0, 1000, len(x)))
    return x, create_visual_attack("pgd", steps=5).perturb(native_cnn, x, targets, seed=0)


def mean_feature_distance(cnn, clean, other) -> float:
    return float(feature_distance(cnn.extract(clean)[0].numpy(), cnn.extract(other)[0].numpy()).mean())


def test_purification_lowers_the_feature_distance_of_attacked_images(adversarial_pairs, native_cnn):
    clean, adv = adversarial_pairs
    train, test = slice(0, 16), slice(16, 24)
    purifier = create_input_defense("purify", channels=16, depth=4, epochs=15).fit(clean[train], adv[train], seed=0)
    attacked = mean_feature_distance(native_cnn, clean[test], adv[test])
    purified = mean_feature_distance(native_cnn, clean[test], purifier(adv[test]))
    assert purified < attacked
    # ... while it changes clean images less than the attack did.
    assert mean_feature_distance(native_cnn, clean[test], purifier(clean[test])) < attacked
    for squeeze in (create_input_defense("jpeg"), create_input_defense("median")):
        assert mean_feature_distance(native_cnn, clean[test], squeeze(adv[test])) < attacked


def test_detector_separates_held_out_perturbed_images(adversarial_pairs):
    clean, adv = adversarial_pairs
    train, test = slice(0, 16), slice(16, 24)
    detector = create_input_defense("detect", channels=8, epochs=10, head_epochs=20)
    detector.fit(clean[train], adv[train], seed=0)
    scores = np.concatenate([detector.score(clean[test]), detector.score(adv[test])])
    labels = np.r_[np.zeros(8), np.ones(8)]
    metrics = detection_metrics(scores, labels)
    assert metrics["detection_roc_auc"] > 0.5 and metrics["detection_accuracy"] > 0.5
    assert set(np.unique(detector.predict(adv[test]))) <= {0, 1}


def test_squeezing_transforms():
    flat = torch.full((1, 3, 16, 16), 0.5)
    spiked = flat.clone()
    spiked[0, :, 8, 8] = 1.0
    torch.testing.assert_close(create_input_defense("median")(spiked), flat)
    noisy = (flat + 0.1 * torch.randn(flat.shape, generator=torch.Generator().manual_seed(0))).clamp(0, 1)
    high, low = create_input_defense("jpeg", quality=95)(noisy), create_input_defense("jpeg", quality=10)(noisy)
    assert high.shape == noisy.shape and float(high.min()) >= 0 and float(high.max()) <= 1
    assert psnr(noisy, high)[0] > psnr(noisy, low)[0]
    # Images the normalized-space attack pushed out of [0, 1] are clipped first.
    out = create_input_defense("median")(torch.full((1, 3, 8, 8), 1.2))
    assert float(out.max()) <= 1


# -- metrics -------------------------------------------------------------------------------------
def test_category_hit_ratio_on_a_hand_made_example():
    item_classes = np.array([7, 7, 8, 9, 7])
    lists = np.array([[0, 2, 3], [1, 4, 2]])
    # Class 7 holds slot 1 of user 0 and slots 1, 2 of user 1: 3 of 6 slots.
    assert chr_at_k(lists, item_classes, 7, 3) == pytest.approx(3 / 6)
    assert chr_at_k(lists, item_classes, 7, 1) == pytest.approx(1.0)
    assert chr_at_k(lists, item_classes, 9, 3) == pytest.approx(1 / 6)
    w = 1 / np.log2([2, 3, 4])
    expected = (w[0] / w.sum() + (w[0] + w[1]) / w.sum()) / 2
    assert chr_ndcg_at_k(lists, item_classes, 7, 3) == pytest.approx(expected)
    assert chr_ndcg_at_k(np.array([[0, 1, 4]]), item_classes, 7, 3) == pytest.approx(1.0)
    ratios = class_hit_ratios(lists, item_classes, 10, 3)
    assert ratios.sum() == pytest.approx(1.0)
    assert ratios[7] == pytest.approx(3 / 6) and ratios[8] == pytest.approx(2 / 6)
    with pytest.raises(ValueError):
        chr_at_k(lists, item_classes, 7, 4)


def test_psnr_and_ssim():
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 32, 32, generator=generator) * 0.8
    assert np.isinf(psnr(x, x)).all()
    np.testing.assert_allclose(ssim(x, x), 1.0, atol=1e-9)
    # A uniform shift of 0.1 on a data range of 1: MSE 0.01, PSNR exactly 20 dB.
    np.testing.assert_allclose(psnr(x, x + 0.1), 20.0, atol=1e-6)
    np.testing.assert_allclose(psnr(x, x + 0.1, data_range=2.0), 20.0 + 20 * np.log10(2), atol=1e-6)
    small = x + 0.02 * torch.randn(x.shape, generator=generator)
    large = x + 0.2 * torch.randn(x.shape, generator=generator)
    assert (ssim(x, large) < ssim(x, small)).all() and (ssim(x, small) < 1).all()
    np.testing.assert_allclose(ssim(x, small), ssim(small, x))
    # uint8 images are compared on the [0, 1] scale.
    a, b = (x * 255).round().to(torch.uint8), (small.clamp(0, 1) * 255).round().to(torch.uint8)
    np.testing.assert_allclose(psnr(a, b), psnr(a.float() / 255, b.float() / 255))
    with pytest.raises(ValueError, match="window"):
        ssim(torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 8, 8))


def test_detection_metrics():
    metrics = detection_metrics(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1]))
    assert metrics["detection_roc_auc"] == pytest.approx(0.75)
    assert metrics["detection_accuracy"] == pytest.approx(0.75)


# -- registries and configs -----------------------------------------------------------------------
def test_registries_and_config_errors(small_world):
    assert visual_model_names() == ["amr", "vbpr"]
    assert visual_attack_names() == ["fgsm", "pgd"]
    assert input_defense_names() == ["detect", "jpeg", "median", "purify"]
    features = small_world[1].features
    with pytest.raises(ValueError, match="eps"):
        create_visual_attack("pgd", eps=0)
    with pytest.raises(ValueError, match="space"):
        create_visual_attack("fgsm", space="lab")
    with pytest.raises(ValueError, match="variant"):
        create_visual_model("vbpr", 3, features, variant="deepstyle")
    with pytest.raises(TypeError):
        create_visual_model("vbpr", 3, features, depth=2)
    with pytest.raises(ValueError, match="kernel"):
        create_input_defense("median", kernel=2)
    with pytest.raises(KeyError, match="unknown visual attack"):
        create_visual_attack("cw")
    with pytest.raises(RuntimeError, match="fit"):
        create_input_defense("purify")(torch.zeros(1, 3, 8, 8))


# --------------------------------------------------------------------------- as grid cells

from helpers import REPO


@pytest.mark.parametrize("path", sorted((REPO / "grids" / "visual").glob("*.yaml")), ids=lambda p: p.name)
def test_visual_grids_validate_and_plan(path):
    cells = expand(load_grid(path))
    assert cells and {cell.family for cell in cells} == {"visual"}
    assert len({cell.cell_hash("d") for cell in cells}) == len(cells)
    # An input defense shapes the target (the recommender trains on what it makes of the images).
    by_defense = {cell.defense.name: cell.target_hash("d") for cell in cells if cell.target.name == "vbpr"
                  and not cell.target.params.get("variant")}
    assert len(set(by_defense.values())) == len(by_defense)


def test_visual_grids_reject_defenses_of_other_families():
    grid = {"name": "g", "dataset": {"name": "fashion-images"},
            "matrix": {"target": ["vbpr"], "attack": ["pgd"], "defense": ["reverse"]}}
    with pytest.raises(GridError, match="does not defend visual attacks"):
        parse_grid(grid, source="g.yaml")
    stealing = {"name": "g", "matrix": {"target": ["bpr"], "attack": ["ptd"], "defense": ["jpeg"]}}
    with pytest.raises(GridError, match="jpeg defends against visual attacks only"):
        parse_grid(stealing, source="g.yaml")
    wrong_target = {"name": "g", "matrix": {"target": ["bpr"], "attack": ["pgd"]}}
    with pytest.raises(GridError, match="pgd attacks recommenders of"):
        parse_grid(wrong_target, source="g.yaml")


def test_a_visual_cell_attacks_and_a_jpeg_defended_target_trains_on_squeezed_images(shared_data_dir, tmp_path,
                                                                                    monkeypatch):
    """Through the task functions: a PGD cell moves the origin class's items and grades it; the
    JPEG cell's target is trained on its own (defended) features."""
    monkeypatch.setenv("RECSEC_CACHE_DIR", str(tmp_path))
    grid = {"name": "tiny-visual",
            "dataset": {"name": "fashion-images", "params": {"n_users": 120, "limit": 60}, "min_item_interactions": 1},
            "matrix": {"target": [{"name": "vbpr", "epochs": 10}],
                       "attack": [{"name": "pgd", "eps": 8, "steps": 3, "min_items": 2}],
                       "defense": ["none", "jpeg"], "list_length": [20]},
            "metrics": {"k": [20]}}
    cells = expand(parse_grid(grid))
    data = load_dataset("fashion-images", data_dir=shared_data_dir, cache_dir=tmp_path,
                        params={"n_users": 120, "limit": 60}, min_item_interactions=1)
    got = {}
    for cell in cells:
        target = train_target(cell, data, cell.target_hash("d"))
        got[cell.defense.name] = (target, run_cell(cell, data, target, "cell").metrics)
    (plain_target, plain), (jpeg_target, jpeg) = got["none"], got["jpeg"]
    assert plain["n_attacked_items"] >= 2 and plain["targeted_success_rate"] > 0.5
    assert 0 <= plain["chr_at_20_clean"] <= 1 and 0 <= plain["chr_at_20_attacked"] <= 1
    assert plain["psnr"] > 25 and 0 < plain["ssim"] < 1
    assert "recall_at_20" in plain and "recall_at_20" in jpeg
    # The JPEG target's item features are those of re-compressed images, not the clean ones.
    assert not torch.equal(plain_target.payload["model"]["state"]["features"],
                           jpeg_target.payload["model"]["state"]["features"])
