"""A test attack family, registered from outside recsec (`RECSEC_PLUGINS=profiling_family`):
catalogue profiling. The attacker watches the top-K lists the target serves to the users it
knows and ranks the items by how popular it infers they are in the target's training data;
success is the precision of its top-K against the true top-K. Built only on recsec's public
pieces (the family base, the user-id split, the oracle), with no edit to `harness/`."""

from __future__ import annotations

import os
import signal
from typing import Literal

import numpy as np

import profiling_attacks  # noqa: F401  (registers the family's attacks)
from recsec.harness.families import configured_attack, configured_defense
from recsec.attacks.oracle import Oracle, ServingContext
from recsec.attacks.threat import AttackerView, Knowledge
from recsec.harness.families import Family, Success, ThreatModel, register_family
from recsec.attacks.stealing import cells as user_id_cells
from recsec.harness.grid import Strict
from recsec.harness.threat_model import Budget, Length, Share
from recsec.harness.splits import choose_known


class ProfilingConfig(Strict):
    """The grid's `profiling` section: which interactions make an item's true popularity."""

    popularity: Literal["train", "all"] = "train"
    # Tests only: a file that the target's server creates at its first query of the grid, then
    # kills its own process (SIGKILL), as a crash would; no crash while the file exists.
    crash_server_once: str | None = None


def precision_at_k(guess: np.ndarray, truth: np.ndarray, k: int) -> float:
    return len(set(guess[:k].tolist()) & set(truth[:k].tolist())) / k


class ProfilingThreat(ThreatModel):
    """The attacker knows some users' data and watches the lists served to them."""

    sections = ("profiling",)

    known_share: Share = 0.1
    list_length: Length = 50
    query_budget: Budget = None
    profiling: ProfilingConfig = ProfilingConfig()

    @property
    def knowledge(self) -> Knowledge:
        return Knowledge(known_share=self.known_share, list_length=self.list_length, query_budget=self.query_budget)


class Profiling(Family):
    name = "profiling"
    threat_model = ProfilingThreat
    success = Success("popular_precision_at_{k}", "precision of the inferred top-K popular items")

    def runner_modules(self, cell):
        return (__name__, user_id_cells.__name__)

    def train_target(self, cell, data, target_hash, device):
        return user_id_cells.train_target(cell, data, target_hash, device)

    def grant(self, cell, state, auxiliary):
        split = user_id_cells.split_for(cell, state.data)
        rng = np.random.default_rng([cell.seed, 0x9F])
        known, known_interactions = choose_known(split.target_train, cell.threat.knowledge.known_share, "users", rng)
        return AttackerView(split.n_items, known, known_interactions, cell.threat.knowledge)

    def oracle(self, cell, state):
        lists, marker = state.target.lists, cell.threat.profiling.crash_server_once

        def served(users, k):
            if marker is not None and not os.path.exists(marker):
                open(marker, "w").close()
                os.kill(os.getpid(), signal.SIGKILL)
            return lists[users, :k].astype(np.int64)

        split = state.once("split", lambda: user_id_cells.split_for(cell, state.data))
        context = ServingContext(split.target_train, np.asarray(split.target_train.sum(axis=0)).ravel())
        return Oracle(served, context,
                      min(cell.threat.knowledge.list_length, lists.shape[1]), cell.threat.knowledge.query_budget,
                      configured_defense(cell), np.random.default_rng([cell.seed, 0x0C]))

    def run_attack(self, cell, view, oracle, device):
        return configured_attack(cell).run(view, oracle, seed=cell.seed, device=device)

    def grade(self, cell, data, target, view, guess, device):
        split = user_id_cells.split_for(cell, data)
        counted = split.target_train if cell.threat.profiling.popularity == "train" else data.matrix
        truth = np.argsort(-np.asarray(counted.sum(axis=0)).ravel(), kind="stable")
        out = {f"popular_precision_at_{k}": precision_at_k(guess, truth, k)
               for k in cell.metric_ks if k <= split.n_items}
        return {**out, "n_known_users": view.n_known}

    def summary_metrics(self, k, utility):
        return [self.success.label(k), "queries", f"{utility}_at_{k}"]


register_family(Profiling())
