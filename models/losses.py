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
