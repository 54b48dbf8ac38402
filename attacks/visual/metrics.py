"""Metrics of the visual family (TAaMR and its defenses). Pure functions: arrays in, numbers out.

- Category hit ratio: `chr_at_k` is the share of the users' top-K slots taken by items of a class
  (TAaMR's CHR@K; its code reports the count per user, K times this), averaged over users.
  `chr_ndcg_at_k` weighs slot r by 1 / log2(r + 1) and divides by the sum of the K weights, so
  it is 1 when a class fills every slot and rewards the top ranks: a class moved from rank 50 to
  rank 1 counts more than one moved from 50 to 40.
- Image quality against the clean image, per image: `psnr` and `ssim`, both with an explicit
  data range, 1.0 for images in [0, 1] (the harness's convention). SSIM is Wang et al. (2004):
  an 11x11 Gaussian window with sigma 1.5, K1 = 0.01, K2 = 0.03, over the valid region, per
  channel, averaged.
- `feature_distance`: L2 distance between feature vectors, per item.
- Attack success on the CNN: targeted (the image now has the target class) and untargeted (it
  no longer has the origin class).
- Detection: accuracy at a threshold and ROC AUC, with adversarial images labelled 1.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from recsec.attacks.visual.selection import class_hit_ratios, top_k as _top  # noqa: F401  (CHR of every class)
from recsec.harness.metrics import accuracy
from recsec.harness.units import PerUnit, mean_over, per_user
from recsec.models.evaluation import roc_auc


# -- category hit ratio --------------------------------------------------------------------------
def chr_at_k(lists: np.ndarray, item_classes: np.ndarray, cls: int, k: int) -> float:
    """Share of the top-k slots, over all users, holding an item of class `cls`."""
    top = _top(lists, k)
    if top.shape[0] == 0:
        return float("nan")
    return float(np.mean(np.asarray(item_classes)[top] == cls))


def chr_per_user(lists: np.ndarray, item_classes: np.ndarray, cls: int, k: int) -> np.ndarray:
    """Each user's share of top-k slots holding an item of class `cls` (their mean is `chr_at_k`)."""
    return (np.asarray(item_classes)[_top(lists, k)] == cls).mean(axis=1)


def chr_ndcg_at_k(lists: np.ndarray, item_classes: np.ndarray, cls: int, k: int) -> float:
    """Rank-discounted CHR: mean over users of sum_r [class(r) = cls] / log2(r + 1), divided by
    the same sum for a list made only of the class."""
    top = _top(lists, k)
    if top.shape[0] == 0:
        return float("nan")
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    hits = np.asarray(item_classes)[top] == cls
    return float(np.mean(hits @ discounts) / discounts.sum())


# -- image quality -------------------------------------------------------------------------------
def psnr(clean: torch.Tensor, other: torch.Tensor, data_range: float = 1.0) -> np.ndarray:
    """Peak signal-to-noise ratio in dB per image, 10 log10(range^2 / MSE); inf for identical
    images. Images [n, C, H, W] (or one [C, H, W])."""
    clean, other = _pair(clean, other)
    mse = (clean - other).square().flatten(1).mean(1)
    with np.errstate(divide="ignore"):
        return (10 * np.log10(data_range**2 / mse.numpy())).astype(np.float64)


def ssim(clean: torch.Tensor, other: torch.Tensor, data_range: float = 1.0, window: int = 11,
         sigma: float = 1.5) -> np.ndarray:
    """Structural similarity per image (Wang et al., 2004), mean over channels and positions."""
    clean, other = _pair(clean, other)
    if min(clean.shape[-2:]) < window:
        raise ValueError(f"ssim: images of {tuple(clean.shape[-2:])} are smaller than the {window}x{window} window")
    channels = clean.shape[1]
    coords = torch.arange(window, dtype=torch.float64) - (window - 1) / 2
    g = torch.exp(-coords.square() / (2 * sigma**2))
    g = g / g.sum()
    kernel = (g[:, None] * g[None, :]).expand(channels, 1, window, window).contiguous()
    blur = lambda x: F.conv2d(x, kernel, groups=channels)  # noqa: E731  (valid region only)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mu_x, mu_y = blur(clean), blur(other)
    var_x = blur(clean * clean) - mu_x.square()
    var_y = blur(other * other) - mu_y.square()
    cov = blur(clean * other) - mu_x * mu_y
    index = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x.square() + mu_y.square() + c1) * (var_x + var_y + c2))
    return index.flatten(1).mean(1).numpy()


def _pair(clean: torch.Tensor, other: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    clean, other = torch.as_tensor(clean), torch.as_tensor(other)
    if clean.shape != other.shape:
        raise ValueError(f"images differ in shape: {tuple(clean.shape)} vs {tuple(other.shape)}")
    if clean.ndim == 3:
        clean, other = clean.unsqueeze(0), other.unsqueeze(0)
    if clean.ndim != 4:
        raise ValueError(f"images must be [n, C, H, W] or [C, H, W], got {tuple(clean.shape)}")
    # uint8 images are 0..255: compare them on the [0, 1] scale the data range refers to.
    to_float = lambda x: x.double() / 255 if x.dtype == torch.uint8 else x.double()  # noqa: E731
    return to_float(clean.detach().cpu()), to_float(other.detach().cpu())


# -- features and attack success ----------------------------------------------------------------
def feature_distance(clean: np.ndarray, other: np.ndarray) -> np.ndarray:
    """L2 distance between matching rows."""
    clean, other = np.asarray(clean, dtype=np.float64), np.asarray(other, dtype=np.float64)
    if clean.shape != other.shape:
        raise ValueError(f"features differ in shape: {clean.shape} vs {other.shape}")
    return np.linalg.norm(clean - other, axis=-1)


def targeted_success_rate(predicted: np.ndarray, target: int) -> float:
    """Share of the adversarial images the CNN now puts in the target class."""
    predicted = np.asarray(predicted)
    return float(np.mean(predicted == target)) if predicted.size else float("nan")


def untargeted_success_rate(predicted: np.ndarray, origin: int) -> float:
    """Share of the adversarial images the CNN no longer puts in the origin class."""
    predicted = np.asarray(predicted)
    return float(np.mean(predicted != origin)) if predicted.size else float("nan")


# -- detection -----------------------------------------------------------------------------------
def detection_metrics(scores: np.ndarray, labels: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    """A detector's grades from its scores (higher: more likely adversarial; labels 1 for
    adversarial images, 0 for clean): `detection_accuracy` at `threshold`, `detection_roc_auc`."""
    scores, labels = np.asarray(scores, dtype=np.float64).ravel(), np.asarray(labels).ravel()
    if scores.shape != labels.shape:
        raise ValueError(f"{len(scores)} scores but {len(labels)} labels")
    return {
        "detection_accuracy": accuracy((scores >= threshold).astype(np.int64), labels) if len(labels) else float("nan"),
        "detection_roc_auc": roc_auc(scores, labels),
    }


# -- the TAaMR protocol's grades -----------------------------------------------------------------
def taamr_metrics(outcome, item_classes: np.ndarray, k_values: tuple[int, ...] = (10, 20, 50, 100)) -> dict[str, float]:
    """Grades of a `attacks.visual.TAaMROutcome`: the origin class's CHR (and its rank-discounted
    form) in the clean and attacked lists, the target class's CHR, success on the CNN, image
    quality and feature distance of the attacked items (means over them). Classes are the items'
    clean classes throughout: what moves is where the attacked items rank, not their label."""
    item_classes = np.asarray(item_classes)
    out: dict[str, float] = {"n_attacked_items": float(len(outcome.attacked_items)),
                             "origin_class": float(outcome.origin), "target_class": float(outcome.target)}
    for k in k_values:
        if k > outcome.clean_lists.shape[1]:
            continue
        for when, lists in (("clean", outcome.clean_lists), ("attacked", outcome.attacked_lists)):
            out[f"chr_at_{k}_{when}"] = chr_at_k(lists, item_classes, outcome.origin, k)
            out[f"chr_ndcg_at_{k}_{when}"] = chr_ndcg_at_k(lists, item_classes, outcome.origin, k)
            out[f"target_chr_at_{k}_{when}"] = chr_at_k(lists, item_classes, outcome.target, k)
    out["targeted_success_rate"] = targeted_success_rate(outcome.adversarial_classes, outcome.target)
    out["untargeted_success_rate"] = untargeted_success_rate(outcome.adversarial_classes, outcome.origin)
    if outcome.defended_classes is not None:
        out["defended_targeted_success_rate"] = targeted_success_rate(outcome.defended_classes, outcome.target)
        out["defended_untargeted_success_rate"] = untargeted_success_rate(outcome.defended_classes, outcome.origin)
    out["psnr"] = float(np.mean(psnr(outcome.clean_images, outcome.adversarial_images)))
    out["ssim"] = float(np.mean(ssim(outcome.clean_images, outcome.adversarial_images)))
    out["feature_distance"] = float(np.mean(feature_distance(outcome.clean_features, outcome.adversarial_features)))
    return out


def taamr_units(outcome, item_classes: np.ndarray, k_values: tuple[int, ...]) -> dict[str, PerUnit]:
    """The success's units: per watched user, the origin class's CHR@K clean and attacked and
    their difference (`chr_shift_at_K`, the leaderboard's success); per attacked image, whether
    the CNN now sees the target class."""
    out: dict[str, PerUnit] = {}
    for k in k_values:
        if k > outcome.clean_lists.shape[1]:
            continue
        clean = chr_per_user(outcome.clean_lists, item_classes, outcome.origin, k)
        attacked = chr_per_user(outcome.attacked_lists, item_classes, outcome.origin, k)
        out[f"chr_at_{k}_clean"] = per_user(outcome.users, clean)
        out[f"chr_at_{k}_attacked"] = per_user(outcome.users, attacked)
        out[f"chr_shift_at_{k}"] = per_user(outcome.users, attacked - clean)
    if len(outcome.attacked_items):
        out["targeted_success_rate"] = mean_over("image", outcome.attacked_items,
                                                 np.asarray(outcome.adversarial_classes) == outcome.target)
    return out
