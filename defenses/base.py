"""What every defense declares, once, on its class: where it acts, which families and targets it
fits, and how it changes what the target trains on. The grid's checks and the families read
these; nothing asks a defense object what it happens to have.

- `output`: transforms the lists the oracle serves (`__call__`);
- `training`: changes how the target is trained (GRO's `train`), or against poisoning what it
  trains on (`filters_users`: a detector's `flag`) or how (`trains_target`: its own `fit`);
- `input`: transforms item images before the feature extractor (`transforms`), or detects
  adversarial uploads.
"""

from __future__ import annotations

from typing import ClassVar

from recsec.models.registry import Configured

KINDS = ("output", "training", "input")


class Defense(Configured):
    """The base of every registered defense."""

    kind: ClassVar[str] = "output"
    families: ClassVar[tuple[str, ...] | None] = None  # the families it defends; None: any
    # A training defense trains these models (`targets`), or any model of these input kinds.
    targets: ClassVar[tuple[str, ...]] = ()
    target_kinds: ClassVar[tuple[str, ...]] = ()
    filters_users: ClassVar[bool] = False  # poisoning: drops the users it flags before training
    trains_target: ClassVar[bool] = False  # poisoning: trains the target its own way (`fit`)
    transforms: ClassVar[bool] = False  # input: transforms the images (else it only detects)

    def __init__(self, config=None):
        super().__init__(config)
        self.stats: dict[str, float] = {}  # what a training defense measured, logged with its target
