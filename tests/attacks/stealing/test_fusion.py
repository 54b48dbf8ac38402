"""PTA's attention fusion: shapes, fixed auxiliary vectors, and the two limits of the softmax."""

from __future__ import annotations

import pytest
import torch

from recsec import models
from recsec.attacks.stealing.fusion import FusedItemClone


@pytest.mark.parametrize("name", ["bpr", "lmf", "ncf"])
def test_fused_clone_scores_every_item_and_keeps_auxiliary_vectors_fixed(name):
    clone = models.create_model(name, 5, 12, dim=8)
    auxiliary = {k: torch.randn_like(t) for k, t in clone.item_tables().items()}
    fused = FusedItemClone(clone, auxiliary)
    users = torch.arange(5)
    assert fused.score(users).shape == (5, 12)
    loss = fused.score_pairs(users, torch.randint(0, 12, (5, 3))).sum()
    loss.backward()
    assert fused.attention.grad is not None
    assert all(not buf.requires_grad for buf in fused.buffers())  # auxiliary tables never train


def test_fusion_weights_follow_the_attention_scores():
    clone = models.create_model("bpr", 2, 4, dim=3)
    auxiliary = {"item": torch.zeros(4, 3)}
    fused = FusedItemClone(clone, auxiliary)
    with torch.no_grad():
        clone.embedding.copy_(torch.ones_like(clone.embedding))  # p_u * q_c > 0 everywhere
        fused.attention.fill_(100.0)  # alpha >> beta = b: the clone's own vectors win
    items = torch.arange(4).expand(2, -1)
    assert torch.allclose(fused.score_pairs(torch.arange(2), items), clone.score_pairs(torch.arange(2), items))
    with torch.no_grad():
        fused.attention.fill_(-100.0)  # alpha << beta: the (zero) auxiliary vectors win
    assert torch.allclose(fused.score_pairs(torch.arange(2), items), torch.zeros(2, 4), atol=1e-6)


def test_mismatched_tables_are_refused_when_built():
    clone = models.create_model("ncf", 3, 6, dim=4)
    with pytest.raises(ValueError, match="do not match"):
        FusedItemClone(clone, {"item": torch.zeros(6, 4)})
