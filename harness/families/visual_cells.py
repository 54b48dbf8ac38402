"""Visual-family cells (TAaMR, Di Noia et al. 2020; defenses after Yin et al.): plain functions that
the visual family runs; no Ray, no MLflow.

- The target task trains the visual recommender (VBPR, its TAaMR variant, AMR) on the training
  part of the fashion items' interactions, over the CNN features of the item images as the
  platform processes them: through the cell's input defense when it transforms images (JPEG,
  median filtering, a purifier trained on clean/perturbed pairs), so each such defense has its
  own target and its utility cost is the recommender's recall with it in place.
- The cell chooses the origin and target classes (from the grid, or from the clean lists' class
  hit ratios), perturbs the origin class's item images toward the target class, passes them
  through the same input defense, recomputes their features, re-ranks every user with the same
  recommender, and grades the outcome (CHR before/after, success on the CNN, PSNR, SSIM, feature
  distance). A detector instead is trained on clean/perturbed pairs and graded on the attacked
  images against their clean versions.

Pairs for training a purifier or a detector come from a fixed attack (PGD, eps 8, toward random
classes) on a seeded sample of items outside the origin class, never on the images graded.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp
import torch

from attacks.visual import PGD, PGDConfig, choose_classes, run_taamr
from harness.data import Interactions
from harness.data.visual import ItemImages, fashion_world, item_features
from harness.families.visual_metrics import class_hit_ratios, detection_metrics, taamr_metrics
from harness.metrics import utility_metrics
from harness.plugins import load_plugins
from harness.records import LISTS_WIDTH, CellRecord, TargetRecord, finish_cell, peak_rss_mb
from harness.settings import default_cache_dir, default_data_dir
from harness.splits import holdout
from models import model_from_payload
from models.visual import create_visual_model

PAIR_ITEMS = 128  # items whose clean/perturbed pairs train a purifier or a detector

if TYPE_CHECKING:
    from harness.grid import Cell


@dataclass
class VisualWorld:
    """The dataset's items as images (rows aligned with the interaction matrix's items), the
    CNN, its clean features and classes, and the interactions split into train and test."""

    images: ItemImages
    cnn: torch.nn.Module
    features: np.ndarray
    classes: np.ndarray
    train: sp.csr_matrix
    test: sp.csr_matrix


def cache_dir_of(data: Interactions) -> Path:
    """The run's `--cache-dir`, carried with the data to every worker (their own environment and
    working directory may differ from the driver's)."""
    return Path(data.meta.get("cache_dir") or default_cache_dir())


def world_for(cell: Cell, data: Interactions) -> VisualWorld:
    if cell.dataset.name != "fashion-images":
        raise ValueError(f"visual cells run on the fashion-images dataset, not {cell.dataset.name!r}")
    source = data.meta.get("source_dir") or default_data_dir()
    images, cnn, feats = fashion_world(source, limit=cell.dataset.params.get("limit"), cache_dir=cache_dir_of(data))
    row_of = {int(item_id): row for row, item_id in enumerate(images.item_ids)}
    rows = np.array([row_of[int(label)] for label in data.item_labels], dtype=np.int64)
    train, test = holdout(data.matrix, cell.split.holdout, np.random.default_rng([cell.seed, 0x715]))
    return VisualWorld(images.subset(rows), cnn, feats.features[rows], feats.classes[rows], train, test)


def training_pairs(world: VisualWorld, exclude_class: int | None, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Clean images of a seeded sample of items (none of class `exclude_class`) and their PGD
    (eps 8) versions toward random classes."""
    rng = np.random.default_rng([seed, 0x9A1])
    pool = np.flatnonzero(world.classes != exclude_class) if exclude_class is not None else np.arange(len(world.classes))
    rows = rng.choice(pool, size=min(PAIR_ITEMS, len(pool)), replace=False)
    clean = world.images.images[torch.from_numpy(rows)]
    targets = torch.from_numpy(rng.integers(0, 1000, size=len(rows)))
    return clean, PGD(PGDConfig(eps=8.0)).perturb(world.cnn, clean, targets, seed=seed)


def input_transform(cell: Cell, world: VisualWorld, state: dict | None = None):
    """The cell's image transform (None for `none` and for a detector), fit or restored."""
    defense = cell.defense_instance()
    if defense is None or not defense.transforms:
        return None
    transform = defense.build()
    if transform.trainable:
        if state is not None:
            transform.load_state(state)
        else:
            transform.fit(*training_pairs(world, None, cell.seed), seed=cell.seed)
    return transform


def train_target(cell: Cell, data: Interactions, target_hash: str, device: str = "cpu") -> TargetRecord:
    """The recommender over the features of the images as the platform processes them."""
    load_plugins()
    world = world_for(cell, data)
    start = time.perf_counter()
    transform = input_transform(cell, world)
    features = world.features
    if transform is not None:  # cached by image content, like the clean features
        features = item_features(transform(world.images.images), world.cnn, cache_dir_of(data)).features
    model = create_visual_model(cell.target.name, data.n_users, features, **cell.target.params).to(device)
    model.fit(world.train, seed=cell.seed)
    train_seconds = time.perf_counter() - start
    ks = [k for k in cell.metric_ks if k <= data.n_items]
    width = min(max(ks + [LISTS_WIDTH]), data.n_items)
    lists = model.recommend(np.arange(data.n_users), width, exclude=world.train)
    record = utility_metrics(lists, world.test, ks)
    record.update(train_seconds=train_seconds, peak_rss_mb=peak_rss_mb())
    payload = {"model": model.cpu().to_payload()}
    if transform is not None and transform.trainable:
        payload["transform"] = transform.state()
    params = {"n_users": data.n_users, "n_items": data.n_items, "device": device,
              "n_train_interactions": int(world.train.nnz)}
    return TargetRecord(target_hash, payload, record, params, lists=lists.astype(np.int32))


def run_cell(cell: Cell, data: Interactions, target: TargetRecord, cell_hash: str, device: str = "cpu",
             auxiliary: TargetRecord | None = None) -> CellRecord:
    load_plugins()
    start = time.perf_counter()
    world = world_for(cell, data)
    model = model_from_payload(target.payload["model"])
    grid_attack = cell.attack_instance()
    choice = grid_attack.config
    k = min(cell.knowledge.list_length, data.n_items)
    clean_lists = target.lists[:, :k].astype(np.int64)
    origin, target_class = choose_classes(class_hit_ratios(clean_lists, world.classes, 1000, k), world.classes,
                                          min_items=choice.min_items, origin=choice.origin, target=choice.target)
    transform = input_transform(cell, world, target.payload.get("transform"))
    outcome = run_taamr(model, world.cnn, world.images.images, world.classes, grid_attack.image_attack(),
                        origin=origin, target=target_class, users=np.arange(data.n_users), k=k,
                        exclude=world.train, transform=transform, seed=cell.seed, clean_lists=clean_lists)
    attack_seconds = time.perf_counter() - start

    eval_start = time.perf_counter()
    out = taamr_metrics(outcome, world.classes, tuple(kk for kk in cell.metric_ks if kk <= k))
    defense = cell.defense_instance()
    if defense is not None and not defense.transforms:
        detector = defense.build()
        detector.fit(*training_pairs(world, origin, cell.seed), seed=cell.seed)
        scores = np.r_[detector.score(outcome.clean_images), detector.score(outcome.adversarial_images)]
        labels = np.r_[np.zeros(len(outcome.clean_images)), np.ones(len(outcome.adversarial_images))]
        out.update(detection_metrics(scores, labels, detector.config.threshold))
    n = len(outcome.attacked_items)
    return finish_cell(cell_hash, out, queries=n, items_returned=0, n_known=data.n_users, target=target,
                       start=start, attack_seconds=attack_seconds, eval_start=eval_start)
