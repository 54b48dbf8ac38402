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

from recsec.harness.families import configured_attack, configured_defense
from recsec.attacks.oracle import Oracle
from recsec.attacks.visual import PGD, PGDConfig
from recsec.attacks.visual.taamr import (CatalogueView, TAaMROutcome, UploadResult, features_as_seen,
                                  with_item_features)
from recsec.harness.data import Interactions
from recsec.attacks.visual.data import ItemImages, fashion_world, item_features
from recsec.attacks.visual.metrics import detection_metrics, taamr_metrics, taamr_units
from recsec.harness.metrics import utility_metrics
from recsec.harness.plugins import load_plugins
from recsec.harness.records import LISTS_WIDTH, TargetRecord, peak_rss_mb
from recsec.harness.settings import default_cache_dir, default_data_dir
from recsec.harness.splits import holdout
from recsec.models import model_from_payload
from recsec.models.visual import create_visual_model
from recsec.harness import streams

HOLDOUT = streams.purpose("visual: held-out interactions", 0x715)
DEFENSE_PAIRS = streams.purpose("visual: clean and adversarial images a defense trains on", 0x9A1)

PAIR_ITEMS = 128  # items whose clean/perturbed pairs train a purifier or a detector

if TYPE_CHECKING:
    from recsec.harness.cell import Cell
    from recsec.harness.serving_state import ServingState


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
    train, test = holdout(data.matrix, cell.split.holdout, HOLDOUT.rng(cell.seed))
    return VisualWorld(images.subset(rows), cnn, feats.features[rows], feats.classes[rows], train, test)


def training_pairs(world: VisualWorld, exclude_class: int | None, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Clean images of a seeded sample of items (none of class `exclude_class`) and their PGD
    (eps 8) versions toward random classes."""
    rng = DEFENSE_PAIRS.rng(seed)
    pool = np.flatnonzero(world.classes != exclude_class) if exclude_class is not None else np.arange(len(world.classes))
    rows = rng.choice(pool, size=min(PAIR_ITEMS, len(pool)), replace=False)
    clean = world.images.images[torch.from_numpy(rows)]
    targets = torch.from_numpy(rng.integers(0, 1000, size=len(rows)))
    return clean, PGD(PGDConfig(eps=8.0)).perturb(world.cnn, clean, targets, seed=seed)


def input_transform(cell: Cell, world: VisualWorld, state: dict | None = None):
    """The cell's image transform (None for `none` and for a detector), fit or restored."""
    defense = configured_defense(cell)
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


class CatalogueOracle(Oracle):
    """The platform as the attacker meets it: it serves users' top-K lists and takes item-image
    uploads, which go through its input defense and its CNN into the (not retrained)
    recommender's item features. Both are counted."""

    QUERIES = ("query", "upload")

    def __init__(self, model, world: VisualWorld, transform, clean_lists: np.ndarray, k: int):
        super().__init__(self._recommend, None, k)
        self._clean_model, self._model, self._world, self._transform = model, None, world, transform
        self._clean_lists = clean_lists
        self.uploads = 0

    def _recommend(self, users, k: int) -> np.ndarray:
        if self._model is None:  # nothing uploaded: the lists ranked at training
            return self._clean_lists[users, :k]
        return self._model.recommend(users, k, self._world.train)

    def upload(self, items, images: torch.Tensor) -> None:
        features, _, _ = features_as_seen(self._world.cnn, images, self._transform)
        self._model = with_item_features(self._model or self._clean_model, np.asarray(items), features)
        self.uploads += len(items)

    def counts(self) -> dict[str, int]:
        return {**super().counts(), "uploads": self.uploads}


def grant(cell: Cell, state: ServingState, auxiliary: TargetRecord | None) -> CatalogueView:
    """The catalogue's images, the public CNN and its classes of them; every user is watched."""
    world = state.once("visual:world", lambda: world_for(cell, state.data))
    return CatalogueView(world.images.images, world.cnn, world.classes, np.arange(state.data.n_users), cell.threat.knowledge)


def oracle(cell: Cell, state: ServingState) -> Oracle:
    world = state.once("visual:world", lambda: world_for(cell, state.data))
    model = state.once("visual:model", lambda: model_from_payload(state.target.payload["model"]))
    transform = state.once("visual:transform",
                           lambda: input_transform(cell, world, state.target.payload.get("transform")))
    k = min(cell.threat.knowledge.list_length, state.data.n_items)
    return CatalogueOracle(model, world, transform, state.target.lists.astype(np.int64), k)


def run_attack(cell: Cell, view: CatalogueView, oracle, device: str = "cpu") -> UploadResult:
    return configured_attack(cell).run(view, oracle, seed=cell.seed, device=device)


def grade(cell: Cell, data: Interactions, target: TargetRecord, view: CatalogueView, result: UploadResult,
          device: str = "cpu") -> dict:
    """TAaMR's measures of the upload (CHR before and after, success on the CNN, image quality,
    feature distance), and a detector's, when the defense is one."""
    world = world_for(cell, data)
    model = model_from_payload(target.payload["model"])
    transform = input_transform(cell, world, target.payload.get("transform"))
    rows = torch.from_numpy(result.attacked_items)
    features, adversarial_classes, defended_classes = features_as_seen(world.cnn, result.adversarial_images, transform)
    outcome = TAaMROutcome(
        origin=result.origin, target=result.target, attacked_items=result.attacked_items,
        clean_images=world.images.images[rows], adversarial_images=result.adversarial_images,
        clean_features=model.features.detach().cpu()[rows].numpy(), adversarial_features=features.numpy(),
        adversarial_classes=adversarial_classes, defended_classes=defended_classes, users=view.users,
        clean_lists=result.clean_lists, attacked_lists=result.attacked_lists)
    k = result.clean_lists.shape[1]
    ks = tuple(kk for kk in cell.metric_ks if kk <= k)
    out = {**taamr_metrics(outcome, world.classes, ks), **taamr_units(outcome, world.classes, ks)}
    defense = configured_defense(cell)
    if defense is not None and not defense.transforms:
        detector = defense.build()
        detector.fit(*training_pairs(world, result.origin, cell.seed), seed=cell.seed)
        scores = np.r_[detector.score(outcome.clean_images), detector.score(outcome.adversarial_images)]
        labels = np.r_[np.zeros(len(outcome.clean_images)), np.ones(len(outcome.adversarial_images))]
        out.update(detection_metrics(scores, labels, detector.config.threshold))
    out["n_known_users"] = view.n_known
    return out
