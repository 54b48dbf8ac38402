"""SASRec (Kang & McAuley, ICDM 2018): causal self-attention over the item sequence, read at every
position; trained with binary cross-entropy between each next item and one sampled item the user
never interacted with. Item embeddings are scaled by sqrt(hidden) and shared with the output, as
in the paper's code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from recsec.models.registry import register_model
from recsec.models.sequential.base import SequentialRecommender, TransformerConfig
from recsec.models.sequential.layers import TransformerEncoder
from recsec.models.sequential.training import Batch, sampled_binary_cross_entropy


@dataclass(frozen=True)
class SASRecConfig(TransformerConfig):
    model: ClassVar[str] = "sasrec"


@register_model("sasrec")
class SASRec(SequentialRecommender):
    encodes_positions = True
    Config = SASRecConfig
    objective = "bce"
    train_on = "sequences"

    def __init__(self, n_items: int, config: SASRecConfig | None = None):
        super().__init__(n_items, config)
        cfg = self.config
        self.encoder = TransformerEncoder(max_len=cfg.max_len, hidden=cfg.hidden, blocks=cfg.blocks, heads=cfg.heads,
                                          dropout=cfg.dropout, feed_forward=cfg.hidden, activation=nn.ReLU(),
                                          causal=True)
        self._initialize()

    def encode(self, sequences: torch.Tensor) -> torch.Tensor:
        """[b, L] -> [b, L, hidden]: position t has read items up to t."""
        embedded = self.item_embedding(sequences) * self.config.hidden**0.5
        return self.encoder(embedded, sequences != self.pad)

    def query(self, sequences: torch.Tensor) -> torch.Tensor:
        return self.encode(sequences)[:, -1]

    def training_loss(self, batch: Batch) -> torch.Tensor:
        negatives = batch.negatives(per_user=batch.targets.shape[1])
        hidden = self.encode(batch.inputs)
        batch.cache["hidden"] = hidden  # every position's output, for a defense's loss on the same pass
        return sampled_binary_cross_entropy(self, hidden, batch.targets, negatives)
