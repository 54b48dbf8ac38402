"""What every attack declares, once, on its class: the generic checks (a grid's pairings) and the
families read these, and nothing asks an attack object what it happens to have.

An attack's one verb is `run(view, oracle, *, seed, device)`: the view is what its threat model
grants, the oracle its only access to the target; the harness grades what it returns.
"""

from __future__ import annotations

from typing import Any, ClassVar

from recsec.models.registry import Configured


class Attack(Configured):
    """The base of every registered attack (built from its frozen `Config`)."""

    family: ClassVar[str]  # the family that serves, runs and grades it
    # The input kinds of the targets it attacks: "users" (user ids), "sequences", "images".
    target_kinds: ClassVar[tuple[str, ...]] = ("users",)
    # It uses a model the attacker trained on its own auxiliary data (trained once per setting).
    needs_auxiliary: ClassVar[bool] = False
    # It fine-tunes its clone by gradient, so the clone must have weights to learn.
    fine_tunes_clone: ClassVar[bool] = False

    def run(self, view, oracle, *, seed: int, device: str = "cpu") -> Any:
        raise NotImplementedError
