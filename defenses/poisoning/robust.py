"""What a robust-training defense against poisoning is: it trains the target itself, on the data
it is given (real and injected users alike), instead of the target's own `fit`."""

from __future__ import annotations

from typing import ClassVar

import scipy.sparse as sp

from recsec.models.base import EpochCallback
from recsec.defenses.base import Defense


class RobustTraining(Defense):
    kind: ClassVar[str] = "training"
    families: ClassVar[tuple[str, ...]] = ("poisoning",)
    trains_target: ClassVar[bool] = True
    targets: ClassVar[tuple[str, ...]] = ()  # the target models it knows how to train

    def fit(self, model, train: sp.csr_matrix, *, seed: int = 0, on_epoch: EpochCallback | None = None):
        raise NotImplementedError
