"""BERT4Rec (Sun et al., CIKM 2019): bidirectional self-attention trained on the cloze task.

Training hides a random share (`mask_prob`) of each window's items and predicts them with softmax
cross-entropy over all items; as in BERT and the extraction paper's code, a chosen item becomes the
mask token 80% of the time, a random item 10%, and stays 10%, and the last item is chosen a little
more often (its probability raised by a tenth of the remainder), since inference asks about the
position after it. Inference appends the mask token and reads its position. The output is the
paper's: GELU projection, then the shared item embeddings plus a per-item bias.
Deviation: one window per user per epoch (the code's sliding windows over long histories are not
generated; they matter only for users with more than max_len items).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from recsec.models.config import check_fields
from recsec.models.registry import register_model
from recsec.models.sequential.base import SequentialRecommender, TransformerConfig
from recsec.models.sequential.layers import TransformerEncoder
from recsec.models.sequential.training import Batch, next_item_cross_entropy


@dataclass(frozen=True)
class BERT4RecConfig(TransformerConfig):
    model: ClassVar[str] = "bert4rec"

    mask_prob: float = 0.2

    def __post_init__(self):
        super().__post_init__()
        check_fields(self.model, self, positive=("mask_prob",))
        if self.mask_prob >= 1:
            raise ValueError(f"{self.model}: mask_prob must be in (0, 1), got {self.mask_prob}")


@register_model("bert4rec")
class BERT4Rec(SequentialRecommender):
    encodes_positions = True
    Config = BERT4RecConfig
    objective = "cloze"
    train_on = "sequences"
    extra_tokens = 2  # padding, then the mask token

    def __init__(self, n_items: int, config: BERT4RecConfig | None = None):
        super().__init__(n_items, config)
        cfg = self.config
        self.mask = n_items + 1
        self.encoder = TransformerEncoder(max_len=cfg.max_len, hidden=cfg.hidden, blocks=cfg.blocks, heads=cfg.heads,
                                          dropout=cfg.dropout, feed_forward=4 * cfg.hidden, activation=nn.GELU(),
                                          causal=False)
        self.head = nn.Sequential(nn.Linear(cfg.hidden, cfg.hidden), nn.GELU())
        self.output_bias = nn.Parameter(torch.zeros(n_items))
        self._initialize()

    def encode(self, tokens: torch.Tensor) -> torch.Tensor:
        """[b, L] item or mask tokens -> [b, L, hidden] output vectors."""
        return self.head(self.encoder(self.item_embedding(tokens), tokens != self.pad))

    def query(self, sequences: torch.Tensor) -> torch.Tensor:
        mask_column = sequences.new_full((sequences.shape[0], 1), self.mask)
        return self.encode(torch.cat([sequences[:, 1:], mask_column], dim=1))[:, -1]

    def training_loss(self, batch: Batch) -> torch.Tensor:
        items = batch.window[:, 1:]  # the latest max_len items: a cloze task needs no shifted pairs
        chosen, replaced = self.cloze(items, batch.generator)
        hidden = self.encode(replaced)
        batch.cache["cloze"] = (chosen, replaced, hidden)
        return next_item_cross_entropy(self, hidden[chosen], items[chosen])

    def cloze(self, items: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Which positions to predict [b, L] (bool), and the input with them replaced [b, L]."""
        p = torch.full(items.shape, self.config.mask_prob, device=items.device)
        p[:, -1] += 0.1 * (1 - self.config.mask_prob)
        draw = lambda: torch.rand(items.shape, generator=generator, device=items.device)  # noqa: E731
        chosen = (draw() < p) & (items != self.pad)
        how = draw()
        replaced = torch.where(chosen & (how < 0.8), self.mask, items)
        randomized = chosen & (how >= 0.8) & (how < 0.9)
        random_items = torch.randint(0, self.n_items, items.shape, generator=generator, device=items.device)
        return chosen, torch.where(randomized, random_items, replaced)
