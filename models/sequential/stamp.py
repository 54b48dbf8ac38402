"""STAMP (Liu et al., KDD 2018): a short-term attention/memory priority model. The session's mean
embedding (general interest) and last item (current interest) steer an attention over the items;
the attended memory and the last item each pass through a tanh layer, and their product is matched
to the item embeddings. Trained, as in the paper, on every prefix with softmax cross-entropy.

Deviation: the paper passes the trilinear score through a sigmoid before the softmax; bounded
logits make the softmax nearly flat over thousands of items, so the raw score is used (as in
RecBole). Embedding dropout is added (the paper has none).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from recsec.models.registry import register_model
from recsec.models.sequential.base import SequentialConfig, SequentialRecommender


@dataclass(frozen=True)
class STAMPConfig(SequentialConfig):
    model: ClassVar[str] = "stamp"
    epochs: int = 20  # an epoch visits every prefix: far more steps than a per-user epoch


@register_model("stamp")
class STAMP(SequentialRecommender):
    Config = STAMPConfig

    def __init__(self, n_items: int, config: STAMPConfig | None = None):
        super().__init__(n_items, config)
        d = self.config.hidden
        self.dropout = nn.Dropout(self.config.dropout)
        self.attend_item = nn.Linear(d, d, bias=False)  # W1
        self.attend_last = nn.Linear(d, d, bias=False)  # W2
        self.attend_mean = nn.Linear(d, d)  # W3, with the attention bias b_a
        self.attention = nn.Linear(d, 1, bias=False)  # W0
        self.memory_layer = nn.Linear(d, d)  # MLP cell A, for the attended memory
        self.last_layer = nn.Linear(d, d)  # MLP cell B, for the last item
        self._initialize()

    def query(self, sequences: torch.Tensor) -> torch.Tensor:
        real = (sequences != self.pad).unsqueeze(-1)
        items = self.dropout(self.item_embedding(sequences)) * real  # [b, L, d]
        mean = items.sum(1) / real.sum(1).clamp(min=1)
        last = items[:, -1]
        energy = self.attention(torch.sigmoid(
            self.attend_item(items) + self.attend_last(last).unsqueeze(1) + self.attend_mean(mean).unsqueeze(1)))
        memory = (energy * real * items).sum(1)
        return torch.tanh(self.memory_layer(memory)) * torch.tanh(self.last_layer(last))
