"""What an attack family is to the harness: one object that owns everything family-specific.

The generic layer (grid validation, planning, the driver, reports, the leaderboard) asks a cell's
family; it never names one. A family says:
- its threat model (`threat_model`, a `harness.threat_model.ThreatModel`): the matrix axes it
  reads, their types, defaults and checks, and its top-level grid sections; a grid that sets
  anything else for it is an error;
- its pairing checks (`check`), and what the data must allow once loaded (`check_data`);
- what identifies its targets and auxiliary models (`target_identity`, `auxiliary_identity`), on
  which dataset the auxiliary model trains, and the modules whose code makes each result;
- its tasks: `train_target`, `train_auxiliary`, and a cell's three steps, `grant` and `oracle`
  (where the target is served), `run_attack` (where only an oracle client is) and `grade`;
  plain functions of a cell, the data and the records; no Ray, no MLflow;
- its success metric for the leaderboard (`success`), the metric its plots show (`headline`)
  and its summary columns (`summary_metrics`).

Register one with `register_family` (a plugin module named in `$RECSEC_PLUGINS` may); an attack
class names its family in its `family` class attribute.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Callable, ClassVar

import numpy as np
import pandas as pd

from recsec import attacks
from recsec import defenses
from recsec import models
from recsec.harness.threat_model import ThreatModel

if TYPE_CHECKING:
    from recsec.attacks.oracle import Oracle
    from recsec.harness.cell import Cell
    from recsec.harness.data import Interactions
    from recsec.harness.grid_schema import Component, DatasetConfig, Grid
    from recsec.harness.records import TargetRecord
    from recsec.harness.serving_state import ServingState

DATA_CODE = "recsec.harness.data.cache"  # loading and preprocessing: what every result's data went through


@dataclass(frozen=True)
class Success:
    """How a family's attack success is read from a cell's metrics (the leaderboard's number)."""

    metric: str  # a metric name, with {k} where it has a cutoff
    meaning: str
    # For a success derived from several metrics: (frame, k) -> values. Default: the column.
    derive: Callable[[pd.DataFrame, int], pd.Series] | None = None
    # An AUC of 0.1 is as much leakage as 0.9 (flip the scores): protection is measured on
    # max(v, 1 - v), while tables show the value as measured.
    folded: bool = False
    # The metric whose logged Ks say which K a table can show (default: `metric` itself).
    k_metric: str = ""

    @property
    def uses_k(self) -> bool:
        return "{k}" in self.metric

    def label(self, k: int) -> str:
        return self.metric.format(k=k)

    def value(self, frame: pd.DataFrame, k: int) -> pd.Series:
        return self.derive(frame, k) if self.derive is not None else column(frame, self.label(k))

    def leakage(self, values: pd.Series) -> pd.Series:
        return np.maximum(values, 1 - values) if self.folded else values

    def measured_ks(self, frame: pd.DataFrame) -> list[int]:
        """The Ks at which these runs logged the success metric."""
        pattern = self.k_metric or self.metric
        if "{k}" not in pattern:
            return []
        head, tail = pattern.split("{k}")
        ks = set()
        for name in (c.removeprefix("metrics.") for c in frame.columns if c.startswith("metrics.")):
            if name.startswith(head) and name.endswith(tail) and frame[f"metrics.{name}"].notna().any():
                middle = name[len(head):len(name) - len(tail)] if tail else name[len(head):]
                if middle.isdigit():
                    ks.add(int(middle))
        return sorted(ks)


def column(frame: pd.DataFrame, metric: str) -> pd.Series:
    """A metric's column of a runs frame (all NaN when no run logged it)."""
    name = f"metrics.{metric}"
    return frame[name] if name in frame else pd.Series(np.nan, index=frame.index)


class Family:
    """The base every family extends; its defaults fit a family whose target is a model of the
    grid's target axis trained on the grid's dataset, attacked through the oracle."""

    name: ClassVar[str]
    threat_model: ClassVar[type[ThreatModel]] = ThreatModel  # the base reads no axis and no section
    # The defenses its cells take: only those that name the family in their `families` (a
    # family whose defenses are its own), and only of these kinds (None: any).
    own_defenses_only: ClassVar[bool] = False
    defense_kinds: ClassVar[tuple[str, ...] | None] = None
    success: ClassVar[Success]
    headline: ClassVar[str] = ""  # what plots show; default: the success metric

    # -- the grid ---------------------------------------------------------------------------

    def check(self, grid: Grid, source: str) -> list[str]:
        """Problems with how the grid pairs this family's attacks with targets, clones and
        defenses; each names the file and the key."""
        return []

    def check_data(self, grid: Grid, data: Interactions, source: str, cells: list[Cell]) -> None:
        """Raise (a RecsecError) when the loaded data cannot serve these cells of this family."""

    # -- identities -------------------------------------------------------------------------

    def target_identity(self, cell: Cell) -> dict:
        """What the target depends on: changing any of it trains another target."""
        out = {k: cell.normalized()[k] for k in ("dataset", "split", "target", "seed")}
        out.update({name: getattr(cell.threat, name).model_dump() for name in cell.threat.sections})
        if shapes_target(cell.defense):
            out["defense"] = cell.defense.model_dump()
        return out

    def needs_auxiliary(self, cell: Cell) -> bool:
        return attacks.attack_class(cell.attack.name).needs_auxiliary

    def auxiliary_identity(self, cell: Cell) -> dict:
        """What the attacker's auxiliary model depends on (never the target); asked only of the
        cells whose attack `needs_auxiliary`."""
        raise NotImplementedError(f"family {self.name}: {cell.attack.name} needs an auxiliary model; "
                                  f"define auxiliary_identity()")

    def auxiliary_dataset(self, cell: Cell) -> DatasetConfig:
        """The dataset the auxiliary task trains on."""
        return cell.dataset

    # -- code identity ----------------------------------------------------------------------

    def runner_modules(self, cell: Cell) -> tuple[str, ...]:
        """The modules that run this cell's tasks (with what they import: harness.code_identity)."""
        return (self.cell_module(cell).__name__,)

    def target_modules(self, cell: Cell) -> tuple[str, ...]:
        modules = (DATA_CODE, *self.runner_modules(cell), model_module(cell.target.name))
        if shapes_target(cell.defense):
            modules += (defenses.defense_class(cell.defense.name).__module__,)
        return modules

    def auxiliary_modules(self, cell: Cell) -> tuple[str, ...]:
        return (DATA_CODE, *self.runner_modules(cell), *_attacker_model_modules(cell))

    def cell_modules(self, cell: Cell) -> tuple[str, ...]:
        modules = self.target_modules(cell) + (*_attacker_model_modules(cell),
                                               attacks.attack_class(cell.attack.name).__module__)
        if cell.defense.name != "none":
            modules += (defenses.defense_class(cell.defense.name).__module__,)
        return modules

    # -- tasks ----------------------------------------------------------------------------
    # A cell runs in three places (harness.serving): the server opens its session (`grant`, and
    # `oracle` over the target), the attack runs with the view and an oracle client
    # (`run_attack`), and the grader measures the result against the target (`grade`). By
    # default each is the function of that name in the cell's module (`cell_module`).

    def cell_module(self, cell: Cell) -> ModuleType:
        """The module whose functions run this cell's tasks and steps."""
        raise NotImplementedError(f"family {self.name} names no module for its cells: define cell_module() "
                                  f"or each task and step")

    def train_target(self, cell: Cell, data: Interactions, target_hash: str, device: str) -> TargetRecord:
        return self.cell_module(cell).train_target(cell, data, target_hash, device)

    def train_auxiliary(self, cell: Cell, data: Interactions, auxiliary_hash: str, device: str) -> TargetRecord:
        return self.cell_module(cell).train_auxiliary(cell, data, auxiliary_hash, device)

    def grant(self, cell: Cell, state: ServingState, auxiliary: TargetRecord | None):
        """The attacker's view: what its threat model gives it, built where the target is served
        (`state`: the data, the target, a memo) and shipped to the attack."""
        return self.cell_module(cell).grant(cell, state, auxiliary)

    def oracle(self, cell: Cell, state: ServingState) -> Oracle:
        """The cell's oracle over the served target: its list length, budget and output defense."""
        return self.cell_module(cell).oracle(cell, state)

    def run_attack(self, cell: Cell, view, oracle, device: str):
        """Run the cell's attack (in the attack's process: `oracle` is a client)."""
        return self.cell_module(cell).run_attack(cell, view, oracle, device)

    def grade(self, cell: Cell, data: Interactions, target: TargetRecord, view, result, device: str) -> dict:
        """The attack's success and the defended target's utility, measured against the target;
        with `n_known_users` (how many users the attacker knew)."""
        return self.cell_module(cell).grade(cell, data, target, view, result, device)

    # -- reports ----------------------------------------------------------------------------

    def headline_metric(self, k: int) -> str:
        return (self.headline or self.success.metric).format(k=k)

    def summary_metrics(self, k: int, utility: str) -> list[str]:
        """The end-of-run table's columns at K, success first. `utility` is `recall` for general
        recommenders, `hr` for next-item ones."""
        return [self.success.label(k), f"{utility}_at_{k}", f"defended_{utility}_at_{k}"]


def model_module(name: str) -> str:
    """The module that defines a recommender (of the model registry, or a visual one)."""
    try:
        return models.model_class(name).__module__
    except (KeyError, ValueError):
        from recsec.models.visual import visual_model_class
        return visual_model_class(name).__module__


def _attacker_model_modules(cell: Cell) -> tuple[str, ...]:
    """The modules of the models the cell's threat model names (the attacker's own)."""
    return tuple(model_module(getattr(cell.threat, axis).name) for axis in cell.threat.model_axes())


def shapes_target(defense: Component) -> bool:
    """A training defense trains the target; an input defense transforms the item data the
    target's features come from. Either way each such defense has its own target."""
    return defenses.defense_class(defense.name).kind in ("training", "input")


def trains_target(defense: Component) -> bool:
    """Whether the defense is one that trains the target its own way."""
    return defenses.defense_class(defense.name).kind == "training"


def configured_attack(cell: Cell, **init):
    """The cell's attack, configured; `init` adds constructor arguments (a clone's spec)."""
    cls = attacks.attack_class(cell.attack.name)
    return cls(cls.Config(**cell.attack.params), **init)


def configured_defense(cell: Cell):
    """The cell's defense, configured; None for `none`."""
    return None if cell.defense.name == "none" else defenses.create_defense(cell.defense.name, **cell.defense.params)
