"""The TAaMR protocol (Di Noia, Malitesta, Merra, DSN-W 2020): perturb the images of every item
whose CNN class is the origin class toward the target class, recompute those items' features,
and re-rank every user with the same, not retrained, recommender.

`run_taamr` returns what happened (images, features, CNN classes, top-K lists before and after);
the harness grades it (`attacks.visual.metrics.taamr_metrics`), so the attack never grades
itself. Departures from the published code:
- the perturbation lives in pixel space, clipped to [0, 1], unless the attack's `space` is
  `normalized` (the code's unclipped normalized tensors);
- the recommender's feature scale is the clean features' (fixed preprocessing), where the code
  divided each feature file by its own maximum;
- an input defense (`transform`) may sit before the feature extractor; the recommender should then
  have been trained on features of transformed clean images, which is the caller's part.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import scipy.sparse as sp
import torch

from recsec.attacks.visual.base import ImageAttack

ImageTransform = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class TAaMROutcome:
    origin: int
    target: int
    attacked_items: np.ndarray  # item ids whose clean class is the origin
    clean_images: torch.Tensor  # [m, 3, H, W] of the attacked items
    adversarial_images: torch.Tensor  # what the attack produced (pixel space)
    clean_features: np.ndarray  # [m, d]: the features the recommender had
    adversarial_features: np.ndarray  # [m, d]: the features it has after the attack
    adversarial_classes: np.ndarray  # [m]: the CNN's class of each adversarial image as attacked
    defended_classes: np.ndarray | None  # [m]: the same after the input transform, if any
    users: np.ndarray
    clean_lists: np.ndarray  # [n_users, k], best first
    attacked_lists: np.ndarray


def run_taamr(
    recommender,
    cnn,
    images: torch.Tensor,
    item_classes: np.ndarray,
    attack: ImageAttack,
    *,
    origin: int,
    target: int,
    users: np.ndarray,
    k: int,
    exclude: sp.csr_matrix | None = None,
    transform: ImageTransform | None = None,
    seed: int = 0,
    batch_size: int = 64,
    clean_lists: np.ndarray | None = None,
) -> TAaMROutcome:
    """`recommender` is a visual model (`with_features`, `features`) over the items of `images`;
    `item_classes` the CNN's classes of the clean images; `exclude` each user's training items;
    `clean_lists` the recommender's top-k lists of `users` when the caller already has them."""
    item_classes = np.asarray(item_classes, dtype=np.int64)
    if len(item_classes) != len(images) or len(images) != recommender.n_items:
        raise ValueError(f"taamr: {len(images)} images, {len(item_classes)} classes, "
                         f"{recommender.n_items} items in the recommender: they must agree")
    items = np.flatnonzero(item_classes == origin)
    if len(items) == 0:
        raise ValueError(f"taamr: no item has the origin class {origin}")
    users = np.asarray(users, dtype=np.int64)
    rows = torch.from_numpy(items)
    clean_images = images[rows]
    adversarial = attack.perturb(cnn, clean_images, target, seed=seed)
    features_seen, adversarial_classes, defended_classes = features_as_seen(cnn, adversarial, transform, batch_size)
    clean_features = recommender.features.detach().cpu()
    attacked_model = with_item_features(recommender, items, features_seen)
    if clean_lists is None:
        clean_lists = recommender.recommend(users, k, exclude)
    attacked_lists = attacked_model.recommend(users, k, exclude)
    return TAaMROutcome(
        origin=int(origin),
        target=int(target),
        attacked_items=items,
        clean_images=clean_images,
        adversarial_images=adversarial,
        clean_features=clean_features[rows].numpy(),
        adversarial_features=features_seen.numpy(),
        adversarial_classes=adversarial_classes,
        defended_classes=defended_classes,
        users=users,
        clean_lists=clean_lists,
        attacked_lists=attacked_lists,
    )


def features_as_seen(cnn, images: torch.Tensor, transform: ImageTransform | None = None, batch_size: int = 64
                     ) -> tuple[torch.Tensor, np.ndarray, np.ndarray | None]:
    """What the platform makes of uploaded images: their features after its input transform (if
    any); with the CNN's class of each image as uploaded, and after the transform."""
    features, classes = cnn.extract(images, batch_size=batch_size)
    if transform is None:
        return features, classes.numpy(), None
    features, defended = cnn.extract(transform(images), batch_size=batch_size)
    return features, classes.numpy(), defended.numpy()


def with_item_features(recommender, items: np.ndarray, features: torch.Tensor):
    """The same recommender, not retrained, with `items`' features replaced."""
    new_features = recommender.features.detach().cpu().clone()
    new_features[torch.from_numpy(np.asarray(items))] = features.to(new_features.dtype)
    return recommender.with_features(new_features)


@dataclass(frozen=True)
class CatalogueView:
    """A visual attack's grant: the catalogue's item images and the public CNN with its classes of
    them, the users whose lists the attacker watches, and its threat model."""

    images: torch.Tensor
    cnn: torch.nn.Module
    item_classes: np.ndarray
    users: np.ndarray
    knowledge: object

    @property
    def n_known(self) -> int:
        return len(self.users)


@dataclass
class UploadResult:
    """What a visual attack did: the classes it chose, the items whose images it replaced and
    with what, and the watched users' lists before and after the upload (as the oracle served)."""

    origin: int
    target: int
    attacked_items: np.ndarray
    adversarial_images: torch.Tensor
    clean_lists: np.ndarray
    attacked_lists: np.ndarray
