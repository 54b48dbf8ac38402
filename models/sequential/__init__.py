"""Sequential (next-item) recommenders: SASRec, BERT4Rec, NARM, GRU4Rec and STAMP.

They share one interface (`SequentialRecommender`: `score(sequences)`, `fit(train: Sequences)`,
`recommend(sequences, k)`), one training loop and one set of layers; each module holds one paper's
model and loss. They register in the model registry by name with `input_kind = "sequences"`, and
are built as `model_class(name)(n_items, config)`.
"""

from recsec.models.sequential.base import SequentialConfig, SequentialRecommender, TransformerConfig

__all__ = ["SequentialConfig", "SequentialRecommender", "TransformerConfig"]
