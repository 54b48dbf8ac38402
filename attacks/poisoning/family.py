"""Data poisoning by fake-user injection (DL-Attack, Huang et al. 2021; the shilling heuristics):
the attacker registers fake users whose interactions push target items into real users' lists.
Its budget (fake users as a share of the real ones, filler items per fake user) and its target
items are this family's own axes. The clean target is cached and shared; every cell retrains
the target on the real and injected users (through a detector, if defended) to grade."""

from __future__ import annotations

from types import ModuleType
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import Field

from recsec import defenses, models
from recsec.attacks.family_threat import DEFAULT, FamilyThreat, KnownShare, KnownUnit
from recsec.attacks.poisoning import cells
from recsec.harness.families.base import Family, Success
from recsec.attacks.poisoning.split import Stratum
from recsec.harness.families.registry import register_family
from recsec.harness.threat_model import Length, Section

if TYPE_CHECKING:
    from recsec.harness.cell import Cell
    from recsec.harness.grid_schema import Grid


class PoisoningConfig(Section):
    """How the target is trained and graded: the grid's `poisoning` section. DL-Attack's code:
    `split: leave_one_out, selection: sampled_hr, retrainings: 30, attacker_sees_holdout: true`."""

    split: Literal["leave_one_out", "holdout"] = Field(
        "leave_one_out", description="each user's latest item held out, or split.holdout of its items")
    selection: Literal["last", "sampled_hr"] = Field(
        "last", description="the target's epoch: its last, or its best by HR@10 of the held-out item among 99 sampled")
    retrainings: int = Field(1, ge=1, description="poisoned targets trained per cell (different seeds), averaged")
    attacker_sees_holdout: bool = Field(
        False, description="the attacker holds its known users' held-out items (to select its surrogate's epoch)")
    retraining: Literal["scratch", "warm"] = Field(
        "scratch", description="a poisoned target trains from scratch, or from the clean target's weights "
                               "(fake users' rows fresh) for warm_epochs more epochs: cheaper, but the poison "
                               "acts on fewer epochs")
    warm_epochs: int = Field(5, ge=1, description="epochs of a warm-started poisoned retraining")
    batch_retrainings: bool = Field(
        True, description="train a cell's retrainings as one model-batched fit (models/batched/) where batching "
                          "the target's model pays (NeuMF, LMF on a CPU); each retraining ends with the weights its "
                          "lone fit ends with, bit for bit, so only the time changes")
    how_it_runs = ("batch_retrainings",)


class PoisoningThreat(FamilyThreat):
    """The attacker knows some users' data, registers fake users (its budget) and picks the items
    it promotes."""

    sections = ("poisoning",)

    known_share: KnownShare = DEFAULT.known_share
    known_unit: KnownUnit = DEFAULT.known_unit
    fake_share: Annotated[float, Field(ge=0, le=1, description="fake users as a share of the real users")] = 0.01
    filler_items: Annotated[int, Field(ge=0, description="items each fake user rates besides the targets")] = 30
    target_items: Annotated[Length, Field(description="how many items are promoted")] = 1
    target_stratum: Annotated[Stratum, Field(description="the popularity third the target items are drawn from")] = \
        "random"
    poisoning: PoisoningConfig = PoisoningConfig()


class Poisoning(Family):
    name = "poisoning"
    threat_model = PoisoningThreat
    success = Success("target_hr_gain_at_{k}",
                      "rise of the target items' HR@K over the real users who did not train on them "
                      "(poisoned - clean target)")
    headline = "target_hr_at_{k}"

    own_defenses_only = True

    def check(self, grid: Grid, source: str) -> list[str]:
        return _check_warm_start(grid, source) if grid.sections["poisoning"].retraining == "warm" else []

    def target_identity(self, cell: Cell) -> dict:
        out = super().target_identity(cell)
        # The clean target depends on how it is split and selected, not on how cells are graded.
        out["poisoning"] = cell.threat.poisoning.model_dump(include={"split", "selection"})
        return out

    def cell_module(self, cell: Cell) -> ModuleType:
        return cells

    def summary_metrics(self, k: int, utility: str) -> list[str]:
        return [f"target_hr_gain_at_{k}", f"target_hr_at_{k}_clean", f"target_hr_at_{k}", f"target_hr_all_at_{k}",
                "fake_users", f"{utility}_at_{k}", f"poisoned_{utility}_at_{k}"]


def _check_warm_start(grid: Grid, source: str) -> list[str]:
    """A warm start continues the target's own training: the model must know how (`warm_fit`),
    and no defense may train the target its own way."""
    problems = []
    for i, target in enumerate(grid.matrix.target):
        if target.name in models.model_names() and not models.model_class(target.name).can_warm_start:
            warm = [n for n in models.model_names() if models.model_class(n).can_warm_start]
            problems.append(f"{source}: poisoning.retraining: warm needs targets that can continue training "
                            f"({', '.join(warm)}), not matrix.target[{i}] {target.name}")
    for j, defense in enumerate(grid.matrix.defense):
        if defense.name in defenses.defense_names() and defenses.defense_class(defense.name).trains_target:
            problems.append(f"{source}: poisoning.retraining: warm cannot continue {defense.name}'s own training "
                            f"(matrix.defense[{j}]); use retraining: scratch")
    return problems


register_family(Poisoning())
