"""The sequential recommender interface: next-item scores from a user's recent items.

A model writes `query(sequences) -> [b, hidden]`, the representation of what comes next, and its
published `training_loss`; scoring against the item table, ranking, padding, seeded training,
devices and save/load are written once here and in `training.py`.

Token ids: real items are 0..n_items-1, as in the data; `pad = n_items`; a model may add tokens
after it (BERT4Rec's mask is n_items + 1). Inputs are left-padded
(`harness.data.sequences.pad_batch`), so the most recent item is always in the last column.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar, Sequence

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from recsec.models.sequential.sequences import Sequences
from recsec.models.base import EpochCallback, gather_rows
from recsec.models.config import check_fields
from recsec.models.ranking import recommend_top_k
from recsec.models.sampling import make_generator
from recsec.models.sequential.training import CLIP_MODES, Batch, next_item_cross_entropy, train_next_item

SELECTIONS = ("last", "best_valid")


@torch.no_grad()
def recommend_after(model, sequences, k: int, exclude: sp.csr_matrix | None, batch_size: int) -> np.ndarray:
    """Top-k next items after each sequence by `model.score` ([b, L] left-padded -> [b, n_items]);
    written once for sequential models and wrappers around them (e.g. a fused stealing clone)."""
    if not isinstance(sequences, Sequences):
        sequences = Sequences.from_lists(sequences, model.n_items)
    elif sequences.n_items != model.n_items:
        raise ValueError(f"{model.name}: sequences over {sequences.n_items} items, model has {model.n_items}")

    def score_rows(rows: torch.Tensor) -> torch.Tensor:
        padded = sequences.padded(rows.numpy(), model.config.max_len, model.pad)
        return model.score(padded.to(model.device))

    was_training = model.training
    model.eval()
    try:
        # Row ids stay on the CPU (they only index `sequences`); scores live on the model's device.
        return recommend_top_k(score_rows, np.arange(len(sequences)), k, exclude, torch.device("cpu"), batch_size)
    finally:
        model.train(was_training)


@dataclass(frozen=True)
class SequentialConfig:
    """Fields every sequential model shares; defaults follow the extraction paper's code."""

    model: ClassVar[str] = "sequential"  # names the model in validation errors

    hidden: int = 64
    max_len: int = 50  # the paper uses 200 for MovieLens, 50 for Amazon data
    dropout: float = 0.1
    epochs: int = 100  # grids set their own; the paper's code runs long and keeps the best epoch
    batch_size: int = 128
    lr: float = 1e-3  # AdamW
    weight_decay: float = 0.01  # on weight matrices and embeddings, not on biases or norms
    clip_norm: float = 5.0  # gradient clipping at this norm...
    clip: str = "global"  # ...over all parameters together, or "per_parameter" (the papers' code)
    # Which epoch's weights training keeps: the "last", or the "best_valid" by NDCG@10 on the
    # validation items (the papers' code: their targets are best_acc_model.pth).
    select: str = "last"
    init_std: float = 0.02  # truncated normal for every weight matrix

    def __post_init__(self):
        check_fields(self.model, self, at_least_one=("hidden", "max_len", "epochs", "batch_size"),
                     positive=("lr", "clip_norm", "init_std"), non_negative=("weight_decay",))
        if not 0 <= self.dropout < 1:
            raise ValueError(f"{self.model}: dropout must be in [0, 1), got {self.dropout}")
        if self.clip not in CLIP_MODES:
            raise ValueError(f"{self.model}: clip must be one of {CLIP_MODES}, got {self.clip!r}")
        if self.select not in SELECTIONS:
            raise ValueError(f"{self.model}: select must be one of {SELECTIONS}, got {self.select!r}")


@dataclass(frozen=True)
class TransformerConfig(SequentialConfig):
    """SASRec's and BERT4Rec's fields: the stack of self-attention blocks."""

    blocks: int = 2
    heads: int = 2

    def __post_init__(self):
        super().__post_init__()
        check_fields(self.model, self, at_least_one=("blocks", "heads"))
        if self.hidden % self.heads:
            raise ValueError(f"{self.model}: hidden ({self.hidden}) must be a multiple of heads ({self.heads})")


def init_weights_(module: nn.Module, generator: torch.Generator, std: float) -> None:
    """Seeded initialization of every parameter: layer norms to identity, biases to zero, every
    other tensor truncated normal (mean 0, `std`, cut at 2 std), as BERT4Rec's code does."""
    with torch.no_grad():
        for owner in module.modules():
            for name, param in owner.named_parameters(recurse=False):
                if isinstance(owner, nn.LayerNorm):
                    param.fill_(1.0 if name == "weight" else 0.0)
                elif param.dim() == 1:
                    param.zero_()
                else:
                    nn.init.trunc_normal_(param, std=std, a=-2 * std, b=2 * std, generator=generator)


class SequentialRecommender(nn.Module):
    name: ClassVar[str]
    Config: ClassVar[type[SequentialConfig]]
    # What a model consumes: the harness keeps these apart from the user-id models.
    input_kind: ClassVar[str] = "sequences"
    learnable: ClassVar[bool] = True
    can_warm_start: ClassVar[bool] = False
    fold_in: ClassVar[str | None] = None  # it scores any sequence: no user to fold in
    # It encodes every position of a sequence (`encode`, then `logits`): training defenses may
    # read a hidden state at every position, not only the last.
    encodes_positions: ClassVar[bool] = False
    # The loss fit() optimizes: "ce" (softmax over all items), "bce" (one sampled negative) or "cloze".
    objective: ClassVar[str] = "ce"
    # Training examples (see training.WindowSampler): "prefixes" (every prefix, labelled with its
    # next item: the session-based papers' augmentation) or "sequences" (windows of each user's
    # history, with a loss at every position).
    train_on: ClassVar[str] = "prefixes"
    # Tokens after the real items: the padding token, and a model's own (e.g. a mask).
    extra_tokens: ClassVar[int] = 1
    # Sequences scored at once in full ranking.
    ranking_batch_size: ClassVar[int] = 256

    def __init__(self, n_items: int, config: SequentialConfig | None = None):
        super().__init__()
        config = type(self).Config() if config is None else config
        if not isinstance(config, type(self).Config):
            raise TypeError(f"{type(self).__name__} takes a {type(self).Config.__name__}, got {type(config).__name__}")
        if n_items <= 0:
            raise ValueError(f"need at least one item, got {n_items}")
        self.n_items = n_items
        self.config = config
        self.pad = n_items
        self.item_embedding = nn.Embedding(n_items + self.extra_tokens, config.hidden, padding_idx=self.pad)
        # A per-item output bias, for models whose paper has one (BERT4Rec sets it).
        self.register_parameter("output_bias", None)

    # -- hooks a model implements -------------------------------------------------------------
    def query(self, sequences: torch.Tensor) -> torch.Tensor:
        """[b, max_len] left-padded item ids -> [b, hidden]: what the next item should match."""
        raise NotImplementedError

    def training_loss(self, batch: Batch) -> torch.Tensor:
        """Softmax cross-entropy over every item for the item after each prefix (NARM, STAMP)."""
        return next_item_cross_entropy(self, self.query(batch.inputs), batch.targets[:, -1])

    def reset_parameters(self, generator: torch.Generator) -> None:
        """Re-draw every learned weight from `generator` (so equal seeds give equal models)."""
        init_weights_(self, generator, self.config.init_std)
        with torch.no_grad():
            self.item_embedding.weight[self.pad].zero_()

    # -- written once for every model ---------------------------------------------------------
    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """[..., hidden] -> [..., n_items]: inner products with every real item's embedding."""
        scores = hidden @ self.item_embedding.weight[: self.n_items].T
        return scores if self.output_bias is None else scores + self.output_bias

    def score(self, sequences: torch.Tensor) -> torch.Tensor:
        """[b, L] left-padded item ids -> [b, n_items] scores of the next item. Differentiable."""
        return self.logits(self.query(self.fit_length(sequences)))

    def score_pairs(self, sequences: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Scores of `items` [b, m] after `sequences` [b, L]: [b, m], equal to `score` gathered."""
        hidden = self.query(self.fit_length(sequences))
        scores = torch.einsum("bd,bmd->bm", hidden, self.item_embedding(items))
        return scores if self.output_bias is None else scores + gather_rows(self.output_bias, items)

    def fit_length(self, sequences: torch.Tensor) -> torch.Tensor:
        """Left-pad or cut [b, L] to [b, max_len], keeping the most recent items."""
        max_len = self.config.max_len
        if sequences.shape[1] >= max_len:
            return sequences[:, -max_len:]
        padding = sequences.new_full((sequences.shape[0], max_len - sequences.shape[1]), self.pad)
        return torch.cat([padding, sequences], dim=1)

    def fit(self, train: Sequences, *, seed: int = 0, on_epoch: EpochCallback | None = None,
            valid: tuple[Sequences, np.ndarray] | None = None):
        """Train from a seeded initialization on `train`; returns self.

        `valid` = (prefixes, next items): after each epoch the model is scored by NDCG@10 on it,
        and the best epoch's weights are kept (the extraction paper's code selects this way).
        """
        return train_next_item(self, train, seed=seed, on_epoch=on_epoch, valid=valid)

    @property
    def device(self) -> torch.device:
        return self.item_embedding.weight.device

    def recommend(
        self,
        sequences: Sequences | Sequence[Sequence[int]],
        k: int,
        exclude: sp.csr_matrix | None = None,
        batch_size: int | None = None,
    ) -> np.ndarray:
        """Top-k next items after each sequence, best first: int64 [len(sequences), k].

        History is not excluded by default (the published protocol); `exclude` is a matrix whose
        row r lists items never to recommend after sequence r (e.g. `sequences.to_matrix()`).
        """
        return recommend_after(self, sequences, k, exclude, batch_size or self.ranking_batch_size)

    # -- item-table hooks: what lets the stealing family fuse or initialize item vectors ------
    def item_tables(self) -> dict[str, torch.Tensor]:
        """The output item table (shared with the input embedding): real items only."""
        return {"item": self.item_embedding.weight[: self.n_items]}

    def user_vectors(self, sequences: torch.Tensor) -> dict[str, torch.Tensor]:
        """The 'user' side that meets the item table: each sequence's next-item query."""
        return {"item": self.query(self.fit_length(sequences))}

    def score_with_item_vectors(self, sequences: torch.Tensor, items: torch.Tensor,
                                vectors: dict[str, torch.Tensor]) -> torch.Tensor:
        hidden = self.query(self.fit_length(sequences))
        scores = torch.einsum("bd,bmd->bm", hidden, vectors["item"])
        return scores if self.output_bias is None else scores + gather_rows(self.output_bias, items)

    def load_item_tables(self, tables: dict[str, torch.Tensor]) -> None:
        with torch.no_grad():
            self.item_embedding.weight[: self.n_items].copy_(tables["item"].to(self.device))

    def to_payload(self) -> dict:
        """The saved form: plain tensors and primitives (`models.registry.model_from_payload`)."""
        return {
            "model": self.name,
            "n_items": self.n_items,
            "config": dataclasses.asdict(self.config),
            "state": {k: v.detach().cpu() for k, v in self.state_dict().items()},
        }

    def _initialize(self) -> None:
        """Called at the end of each constructor: equal configs give equal untrained models."""
        self.reset_parameters(make_generator(0, torch.device("cpu")))
