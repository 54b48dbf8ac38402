"""Which class to attack, and toward which: TAaMR picks an origin class whose items users rarely
see in their top-K lists and a target class they see often, from the category hit ratios of the
clean lists the attacker observes (`class_hit_ratios`)."""

from __future__ import annotations

import numpy as np


def class_hit_ratios(lists: np.ndarray, item_classes: np.ndarray, n_classes: int, k: int) -> np.ndarray:
    """CHR@k of every class at once: float [n_classes], summing to 1 over the classes."""
    top = top_k(lists, k)
    classes = np.asarray(item_classes, dtype=np.int64)[top]
    return np.bincount(classes.ravel(), minlength=n_classes)[:n_classes] / max(1, top.size)


def top_k(lists: np.ndarray, k: int) -> np.ndarray:
    lists = np.asarray(lists)
    if lists.ndim != 2 or lists.shape[1] < k or k < 1:
        raise ValueError(f"need lists [n_users, >= k] and k >= 1, got shape {lists.shape} and k={k}")
    return lists[:, :k]


def choose_classes(
    hit_ratios: np.ndarray,
    item_classes: np.ndarray,
    *,
    min_items: int = 5,
    origin: int | None = None,
    target: int | None = None,
) -> tuple[int, int]:
    """(origin, target) classes. Unless given: the target is the class with the highest hit
    ratio; the origin the class with the lowest among those with at least `min_items` items
    (ties: the one with more items, so more images are attacked), other than the target."""
    hit_ratios = np.asarray(hit_ratios, dtype=np.float64)
    item_classes = np.asarray(item_classes, dtype=np.int64)
    n_classes = len(hit_ratios)
    counts = np.bincount(item_classes, minlength=n_classes)[:n_classes]
    for name, value in (("origin", origin), ("target", target)):
        if value is not None and not 0 <= value < n_classes:
            raise ValueError(f"{name} class must be in [0, {n_classes}), got {value}")
    if origin is not None and counts[origin] == 0:
        raise ValueError(f"origin class {origin} has no items to attack")
    if target is None:
        present = np.flatnonzero(counts > 0)
        if len(present) == 0:
            raise ValueError("no item has a class: nothing to choose from")
        candidates = present[present != origin] if origin is not None else present
        if len(candidates) == 0:
            raise ValueError(f"no class other than the origin {origin} to target")
        target = int(candidates[np.argmax(hit_ratios[candidates])])
    if origin is None:
        eligible = np.flatnonzero((counts >= min_items) & (np.arange(n_classes) != target))
        if len(eligible) == 0:
            raise ValueError(f"no class other than the target {target} has >= {min_items} items")
        # lexsort: the last key is primary (lowest hit ratio), then the most items.
        order = np.lexsort((-counts[eligible], hit_ratios[eligible]))
        origin = int(eligible[order[0]])
    if origin == target:
        raise ValueError(f"origin and target are the same class ({origin})")
    return int(origin), int(target)
