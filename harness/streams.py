"""Every random stream of a cell comes from the cell's seed and a named purpose.

A purpose is declared once, in the module whose code draws from it, with the salt that keeps
today's numbers:

    KNOWN_USERS = streams.purpose("known users", 0xA77)
    rng = KNOWN_USERS.rng(cell.seed)            # numpy: default_rng([seed, 0xA77])
    torch_seed = STUDENT_INIT.seed(seed)        # an int for torch: seed + offset, or a draw

A salted purpose seeds numpy with the entropy `[seed, *salt, *index]`, so purposes with
different salts give independent streams. One purpose has no salt and an index instead
(poisoning's r-th retraining, `[seed, r]`): its keys meet the one-int salts at r = 9 and 12 (the
query order's and the oracle's), kept so that numbers stay identical. An offset purpose (`offset=1`)
is `seed + offset`, the form torch generators were seeded with; it is kept so that numbers stay
identical, and is not independent of its neighbours (seed 3 + 1 is seed 4 + 0).

A salt declared under two names is refused unless the second names the first in `shares`: the
purposes that reuse one stream say so where they are declared: on purpose (a defense's draw
redrawn at grading, so that the lists graded are the lists served), or kept from before this
module so that numbers stay identical (a later change may give each its own). `declared()`
lists them all.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SEED_RANGE = 2**31  # the ints handed to torch and to attacks: non-negative, fit in an int32


@dataclass(frozen=True)
class Purpose:
    """A named random stream of a cell. `salt` (a tuple of ints) or `offset` (an int), not both."""

    name: str
    salt: tuple[int, ...] | None = None
    offset: int | None = None

    def rng(self, seed: int, *index: int) -> np.random.Generator:
        """The purpose's numpy stream for this seed (`index`: one of a family of streams, e.g. the
        r-th retraining)."""
        if self.salt is None:
            raise TypeError(f"stream {self.name!r} is an offset ({self.offset}); use .seed()")
        return np.random.default_rng([int(seed), *self.salt, *map(int, index)])

    def seed(self, seed: int, *index: int) -> int:
        """An int seed for torch or an attack: `seed + offset`, or one draw of the salted stream."""
        if self.offset is not None:
            return int(seed) + self.offset
        return int(self.rng(seed, *index).integers(SEED_RANGE))


_BY_NAME: dict[str, Purpose] = {}
_BY_KEY: dict[tuple, Purpose] = {}


def purpose(name: str, *salt: int, offset: int | None = None, shares: Purpose | None = None) -> Purpose:
    """Declare a purpose (`salt`, or `offset` for a torch seed). Declaring the same name with the
    same salt again (a module imported twice) returns it; a salt or offset already taken by
    another name is refused unless `shares` names that purpose."""
    declared_purpose = Purpose(name, tuple(salt) if offset is None else None, offset)
    key = ("offset", offset) if offset is not None else ("salt",) + tuple(salt)
    if name in _BY_NAME:
        if _BY_NAME[name] != declared_purpose:
            raise ValueError(f"stream {name!r} is declared twice, as {_BY_NAME[name]} and {declared_purpose}")
        return _BY_NAME[name]
    holder = _BY_KEY.get(key)
    if holder is not None and holder is not shares:
        raise ValueError(f"stream {name!r} reuses the {key[0]} of {holder.name!r}; "
                         f"give it its own, or declare it with shares={holder.name}")
    _BY_NAME[name] = declared_purpose
    _BY_KEY.setdefault(key, declared_purpose)
    return declared_purpose


def declared() -> list[Purpose]:
    """Every purpose declared so far (import the families first to see theirs)."""
    return list(_BY_NAME.values())


# Purposes every family may draw from (each family's own are declared in its modules).
DATA_SPLIT = purpose("data split", 0x5E1)      # who trains the target / which items are held out
KNOWN_USERS = purpose("known users", 0xA77)    # which users (and how much of them) the attacker knows
ORACLE = purpose("oracle", 0x0C)               # the oracle's own draws (a defense applied as lists are served)
SECOND_TRAINING = purpose("second training", offset=1)  # torch seed of a training that follows another
