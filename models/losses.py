"""Pairwise ranking losses shared by target training and every attack that fits a clone."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def bpr_loss(pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
    """-ln sigmoid(pos - neg), averaged: Rendle et al.'s BPR objective."""
    return -F.logsigmoid(pos - neg).mean()


def hinge_loss(pos: torch.Tensor, neg: torch.Tensor, margin: float = 0.5) -> torch.Tensor:
    """max(0, margin - (pos - neg)), averaged: the margin ranking loss."""
    return F.relu(margin - (pos - neg)).mean()


def pairwise_loss(kind: str, pos: torch.Tensor, neg: torch.Tensor, margin: float) -> torch.Tensor:
    if kind == "bpr":
        return bpr_loss(pos, neg)
    if kind == "hinge":
        return hinge_loss(pos, neg, margin)
    raise ValueError(f"unknown pairwise loss {kind!r}; expected 'bpr' or 'hinge'")


PAIRWISE_LOSSES = ("bpr", "hinge")


def list_loss(listed_scores: torch.Tensor, negative_scores: torch.Tensor, margin: float,
              ranking: str = "hinge", item: str = "hinge") -> torch.Tensor:
    """Consecutive listed items in order, and each listed item above its sampled item: [m, k]
    each. Both hinge (margin ranking) in the papers' code."""
    return (pairwise_loss(ranking, listed_scores[:, :-1], listed_scores[:, 1:], margin)
            + pairwise_loss(item, listed_scores, negative_scores, margin))
