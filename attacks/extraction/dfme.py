"""Data-free model extraction (Yue et al., RecSys 2021): synthesize query sequences against the
target (synthesis.py), then distill a surrogate from the (prefix, answer) pairs with margin
ranking losses, as the official code does (distill.py).

The threat model's `query_budget` counts synthetic sequences; each costs `length` oracle queries,
and the oracle is given exactly that many.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar


from recsec.attacks.base import Attack
from recsec.attacks.extraction.distill import OPTIMIZERS, SELECTION_RANKINGS, SELECTIONS, distill
from recsec.attacks.extraction.synthesis import MODES, Prefixes, synthesize
from recsec.attacks.lists import ListLossConfig
from recsec.attacks.registry import register_attack
from recsec.attacks.threat import Knowledge, SequenceView
from recsec.models import ModelSpec
from recsec.models.sampling import NEGATIVE_RULES, make_generator
from recsec.models.sequential.training import CLIP_MODES
from recsec.harness import streams

SYNTHESIS = streams.purpose("dfme: synthetic sequences", 0xDF)


@dataclass(frozen=True)
class DFMEConfig(ListLossConfig):
    ranking_loss: str = "hinge"  # margin ranking between consecutive list items (margin 0.5)...
    item_loss: str = "hinge"  # ...and between each list item and one sampled outside the list
    synthesis: str = "autoregressive"  # or "random"
    length: int = 50  # items per synthetic sequence (the paper: the target's maximum length)
    sequences: int = 3000  # synthetic sequences when the grid sets no query_budget (GRO's code)
    # Distillation as the code runs it (distill.py): an epoch budget (GRO's distill_gro.py: 200),
    # the best epoch on the held-out last prefixes, AdamW, clipping per parameter, and the
    # sampled item from a softmax that still allows listed items. Ours: select last, adam,
    # clip none, negative_sampling outside.
    epochs: int = 200
    batch_users: int = 128  # prefixes per distillation batch (the code's batch size)
    select: str = "best_last_prefix"
    select_ranking: str = "listed"  # Yue et al.'s validation; "all": GRO's distill_gro.py --rankall
    optimizer: str = "adamw"
    weight_decay: float = 0.01
    clip: str = "per_parameter"
    clip_norm: float = 5.0
    negative_sampling: str = "softmax"

    def __post_init__(self):
        super().__post_init__()
        for name, allowed in (("synthesis", MODES), ("select", SELECTIONS), ("select_ranking", SELECTION_RANKINGS),
                              ("optimizer", OPTIMIZERS),
                              ("clip", CLIP_MODES), ("negative_sampling", NEGATIVE_RULES)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"dfme: {name} must be one of {allowed}, got {getattr(self, name)!r}")
        if self.length < 1 or self.sequences < 1:
            raise ValueError("dfme: length and sequences must be >= 1")
        if self.negatives != 1:
            raise ValueError(f"dfme: negatives must be 1 (one sampled item per listed item), got {self.negatives}")
        if self.weight_decay < 0 or self.clip_norm <= 0:
            raise ValueError("dfme: weight_decay must be >= 0 and clip_norm > 0")


@dataclass
class ExtractionResult:
    surrogate: object  # a SequentialRecommender
    synthetic_sequences: int


@register_attack("dfme")
class DataFreeExtraction(Attack):
    family: ClassVar[str] = "extraction"
    Config = DFMEConfig
    fine_tunes_clone: ClassVar[bool] = True
    target_kinds: ClassVar[tuple[str, ...]] = ("sequences",)

    def __init__(self, config: DFMEConfig, clone: ModelSpec):
        super().__init__(config)
        self.clone_spec = clone

    def sequence_budget(self, knowledge: Knowledge) -> int:
        return self.config.sequences if knowledge.query_budget is None else knowledge.query_budget

    def query_allowance(self, knowledge: Knowledge) -> int:
        """Oracle queries the threat model grants: one per prefix of every synthetic sequence."""
        return self.sequence_budget(knowledge) * self.config.length

    def run(self, view: SequenceView, oracle, *, seed: int, device: str = "cpu") -> ExtractionResult:
        cfg = self.config
        surrogate = self.clone_spec.build(0, view.n_items).to(device)
        surrogate.reset_parameters(make_generator(seed, surrogate.device))
        n = self.sequence_budget(view.knowledge)
        data = synthesize(oracle, n, cfg.length, view.n_items, surrogate.pad, cfg.synthesis,
                          SYNTHESIS.rng(seed))
        distill(surrogate, Prefixes(data.sequences, surrogate.pad, surrogate.device), data.flat_lists(), cfg,
                seed=seed)
        return ExtractionResult(surrogate, synthetic_sequences=n)
