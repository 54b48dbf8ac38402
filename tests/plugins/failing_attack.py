"""Test plugins: an attack that always raises, one that crashes its worker once, one that holds
the grid open until the test releases it, a target that cannot be trained, an attack that looks
for the target in its own process, and one that asks past its budget."""

import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from recsec.attacks.registry import register_attack
from recsec.attacks.stealing.base import CloneTraining, StealingAttack, StealingResult
from recsec.models.popularity import MostPopular
from recsec.models.registry import register_model


@dataclass(frozen=True)
class ExplodeConfig:
    pass


@register_attack("explode")
class Explode(StealingAttack):
    Config = ExplodeConfig

    def run(self, view, oracle, *, seed, device="cpu"):
        raise RuntimeError("boom: this attack always fails")


@dataclass(frozen=True)
class CrashOnceConfig(CloneTraining):
    pass


@register_attack("crash_once")
class CrashOnce(StealingAttack):
    """Kills its worker process the first time it runs (a crash, not an exception); Ray must
    retry the task on a new worker, where it succeeds as PTD would."""

    Config = CrashOnceConfig

    def run(self, view, oracle, *, seed, device="cpu"):
        marker = Path(os.environ["RECSEC_TEST_CRASH_MARKER"])
        if not marker.exists():
            marker.write_text("crashed once")
            os._exit(1)
        clone = self.pretrained_clone(view, seed, device)
        return StealingResult(clone, queried_rows=np.empty(0, dtype=np.int64))


@dataclass(frozen=True)
class GateConfig(CloneTraining):
    pass


@register_attack("gate")
class Gate(StealingAttack):
    """Holds the grid open at a known point, so a test can kill it there without racing a clock.

    The first cell of this attack to start claims `$RECSEC_TEST_GATE_DIR/claimed` and waits until
    the test creates `release` there; every other one (and the claimer once released) runs as PTD.
    """

    Config = GateConfig

    def run(self, view, oracle, *, seed, device="cpu"):
        gate = Path(os.environ["RECSEC_TEST_GATE_DIR"])
        try:
            os.close(os.open(gate / "claimed", os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            claimed = True
        except FileExistsError:
            claimed = False
        while claimed and not (gate / "release").exists():
            time.sleep(0.1)
        clone = self.pretrained_clone(view, seed, device)
        return StealingResult(clone, queried_rows=np.empty(0, dtype=np.int64))


@register_model("broken_pop")
class BrokenPopularity(MostPopular):
    """A target whose training always raises: the cells that attack it fail, the others run."""

    def fit(self, *args, **kwargs):
        raise RuntimeError("this target cannot be trained")


FORBIDDEN = ("Recommender", "TargetRecord", "Interactions", "ServingContext", "ServingState", "TargetServer",
             "Oracle", "csr_matrix")


def _held(root, depth: int = 4) -> set[str]:
    """Type names reachable from `root` through attributes, closures and containers."""
    import gc
    import inspect

    seen, found, todo = set(), set(), [(root, 0)]
    while todo:
        obj, level = todo.pop()
        if id(obj) in seen or level > depth or inspect.ismodule(obj) or isinstance(obj, type):
            continue
        seen.add(id(obj))
        found.update(cls.__name__ for cls in type(obj).__mro__)
        todo.extend((ref, level + 1) for ref in gc.get_referents(obj))
    return found


@dataclass(frozen=True)
class SnoopConfig(CloneTraining):
    pass


@register_attack("snoop")
class Snoop(StealingAttack):
    """Looks for the target in its own process: through its oracle (attributes, closures) and
    its callers' frames. Runs as PTD (after one query) if it finds nothing; else fails naming
    what it found."""

    Config = SnoopConfig

    def run(self, view, oracle, *, seed, device="cpu"):
        import inspect

        oracle.query(view.query_keys(np.arange(1)))
        found = _held(oracle) & set(FORBIDDEN)
        for frame in inspect.stack()[1:]:
            for value in frame.frame.f_locals.values():
                found |= {name for name in FORBIDDEN if name in {c.__name__ for c in type(value).__mro__}}
        if found:
            raise RuntimeError(f"the attack's process holds: {', '.join(sorted(found))}")
        clone = self.pretrained_clone(view, seed, device)
        return StealingResult(clone, queried_rows=np.arange(1))


@dataclass(frozen=True)
class GreedyConfig(CloneTraining):
    pass


@register_attack("greedy")
class Greedy(StealingAttack):
    """Asks for one list more than its budget allows."""

    Config = GreedyConfig

    def run(self, view, oracle, *, seed, device="cpu"):
        oracle.query(view.query_keys(np.arange(oracle.budget + 1)))
        raise AssertionError("the oracle served past the budget")
