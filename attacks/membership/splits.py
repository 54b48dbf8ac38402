"""User partitions for membership inference: vectorization / shadow / target parts, and within
shadow and target the members (the part's recommender trains on them) and the non-members.

Two sources: `membership_partition` draws a seeded partition of any dataset's users (Zhang et
al., CCS 2021: a third each, half of shadow and target members); `load_dlmia_split`
reads the splits published with DL-MIA (KDD 2022) into the same structure.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from recsec.harness.data.interactions import Interactions
from recsec.harness.data.loaders import RawData, read_table, register_dataset
from recsec.harness.data.preprocess import build_interactions
from recsec.harness.errors import DataError
from recsec.harness.splits import keep_rows
from recsec.harness import streams

PARTITION = streams.purpose("membership: vectorization, shadow and target parts", 0x313A)

PARTS = ("shadow", "target")


@dataclass(frozen=True)
class MembershipPartition:
    """Disjoint sets of user ids (rows of one interaction matrix), each sorted int64.

    `vector` users only serve to learn item vectors; the shadow (target) recommender is trained
    on `shadow_members` (`target_members`) alone.
    """

    vector: np.ndarray
    shadow_members: np.ndarray
    shadow_nonmembers: np.ndarray
    target_members: np.ndarray
    target_nonmembers: np.ndarray

    def __post_init__(self):
        fields = [f.name for f in dataclasses.fields(self)]
        for name in fields:
            object.__setattr__(self, name, np.sort(np.asarray(getattr(self, name), dtype=np.int64)))
        everyone = np.concatenate([getattr(self, name) for name in fields])
        if len(np.unique(everyone)) != len(everyone):
            raise ValueError("membership partition: a user id appears in more than one part")
        for part in PARTS:
            if len(self.members(part)) == 0 or len(self.nonmembers(part)) == 0:
                raise ValueError(f"membership partition: the {part} part needs members and non-members")

    def members(self, part: str) -> np.ndarray:
        return getattr(self, f"{_check_part(part)}_members")

    def nonmembers(self, part: str) -> np.ndarray:
        return getattr(self, f"{_check_part(part)}_nonmembers")

    def labelled(self, part: str) -> tuple[np.ndarray, np.ndarray]:
        """The part's users, members first, and their labels (1 = member, 0 = non-member)."""
        members, nonmembers = self.members(part), self.nonmembers(part)
        labels = np.r_[np.ones(len(members), np.int64), np.zeros(len(nonmembers), np.int64)]
        return np.concatenate([members, nonmembers]), labels

    def training_matrix(self, matrix: sp.csr_matrix, part: str) -> sp.csr_matrix:
        """What the part's recommender trains on: its members' rows, every other row emptied
        (the shape is kept, so user ids stay those of `matrix`)."""
        return keep_rows(matrix, self.members(part))


def membership_partition(
    n_users: int,
    *,
    seed: int,
    vector_share: float = 1 / 3,
    shadow_share: float = 1 / 3,
    member_share: float = 0.5,
) -> MembershipPartition:
    """A seeded random partition of users 0..n_users-1.

    round(vector_share * n) users go to vectorization, round(shadow_share * n) to shadow, the
    rest to target; within shadow and target, round(member_share * size) are members.
    """
    for name, share in (("vector_share", vector_share), ("shadow_share", shadow_share)):
        if not 0 <= share < 1:
            raise ValueError(f"{name} must be in [0, 1), got {share}")
    if vector_share + shadow_share >= 1:
        raise ValueError(f"vector_share + shadow_share must be < 1 (the target part gets the rest), "
                         f"got {vector_share} + {shadow_share}")
    if not 0 < member_share < 1:
        raise ValueError(f"member_share must be in (0, 1), got {member_share}")
    rng = PARTITION.rng(seed)
    order = rng.permutation(n_users)
    n_vector, n_shadow = round(vector_share * n_users), round(shadow_share * n_users)
    vector, shadow, target = np.split(order, [n_vector, n_vector + n_shadow])

    def halves(users):  # already in random order: the first round(share * n) are members
        n_members = round(member_share * len(users))
        return users[:n_members], users[n_members:]

    (shadow_members, shadow_nonmembers), (target_members, target_nonmembers) = halves(shadow), halves(target)
    return MembershipPartition(vector, shadow_members, shadow_nonmembers, target_members, target_nonmembers)


def _check_part(part: str) -> str:
    if part not in PARTS:
        raise ValueError(f"part must be one of {PARTS}, got {part!r}")
    return part


# --------------------------------------------------------------------------- published DL-MIA splits


@dataclass(frozen=True)
class PublishedSplit:
    """A published split as one matrix (rows: the parts' users, stacked) and its partition.

    `unaligned_vector` holds a vectorization part whose item ids cannot be mapped to the
    matrix's items (see `load_dlmia_split`); `notes` says how parts and members were defined.
    """

    interactions: Interactions
    partition: MembershipPartition
    unaligned_vector: sp.csr_matrix | None
    notes: tuple[str, ...]


def load_dlmia_split(name: str, data_dir: Path) -> PublishedSplit:
    """Read `dl-mia/beauty/` or `dl-mia/digital-music/` under `data_dir`.

    What the files hold, as checked against them and the DL-MIA / MIARS code:

    - Users. Each part numbers its users from 0 in its own file; here a part's users are stacked
      (vector, shadow, target) into one matrix and `user_labels` keeps the id in its file.
    - Members. The published code makes the first half of each part's users members: Beauty
      (DL-MIA-SR `preprocess.py`) takes ids < round(n / 2) with Python's round; Digital Music
      (MIARS README and `lfm_recommendations.py`) takes ids < n // 2.
    - Items. Beauty's shadow and target share `Beauty_itemmap`'s ids; `beauty_vector` was
      renumbered by first appearance and the map back (`beauty_itemDict`) is not in the shared
      copy, so it is returned apart as `unaligned_vector` and `partition.vector` is empty.
      Digital Music's shadow and target share one id space (remapped here to 0..n-1, the file ids
      kept in `item_labels`); its published vectorization is precomputed item vectors, not
      interactions, and is not in the shared copy, so there is no vector part.
    - Digital Music's shadow and target are not disjoint users: row u of both files is the same
      person, whose interactions were split between the two (per-user counts correlate at 0.99).
      They stay separate rows here, and a person's membership is the same in both parts.

    Every row counts as one interaction; repeated (user, item) rows collapse to one; no k-core
    filter is applied (the published parts are used as published).
    """
    data_dir = Path(data_dir)
    if name == "beauty":
        return _load_beauty(data_dir / "dl-mia" / "beauty")
    if name == "digital-music":
        return _load_digital_music(data_dir / "dl-mia" / "digital-music")
    raise DataError(f"unknown DL-MIA split {name!r}; known: beauty, digital-music")


_BEAUTY_COLUMNS = ["SessionID", "ItemID", "Rating", "Time"]


def _beauty_parts(folder: Path) -> dict:
    parts = {}
    for part in PARTS:
        frame = read_table(folder / f"beauty_{part}", header=True, columns=_BEAUTY_COLUMNS,
                           expected="CSV with header SessionID,ItemID,Rating,Time",
                           integer_columns=("SessionID", "ItemID", "Time"))
        parts[part] = (frame["SessionID"].to_numpy(np.int64), frame["ItemID"].to_numpy(np.int64),
                       frame["Time"].to_numpy(np.int64))
    return parts


def _load_beauty(folder: Path) -> PublishedSplit:
    parts = _beauty_parts(folder)
    vector = read_table(folder / "beauty_vector", sep="\t", header=True, columns=_BEAUTY_COLUMNS[:3],
                        expected="tab-separated with header SessionID ItemID Rating",
                        integer_columns=("SessionID", "ItemID"))
    v_users, v_items = vector["SessionID"].to_numpy(np.int64), vector["ItemID"].to_numpy(np.int64)
    unaligned = sp.csr_matrix((np.ones(len(v_users), np.float32), (v_users, v_items)))
    unaligned.sum_duplicates()
    unaligned.data[:] = 1
    split = _assemble("dl-mia-beauty", parts, first_half=lambda n: round(n / 2),
                      files=tuple(folder / f"beauty_{p}" for p in PARTS))
    notes = ("members: ids < round(n / 2) in each part's file (DL-MIA-SR preprocess.py)",
             "beauty_vector uses its own item ids (map not shared): returned as unaligned_vector")
    return dataclasses.replace(split, unaligned_vector=unaligned, notes=notes)


def _music_parts(folder: Path) -> dict:
    parts = {}
    for part in PARTS:
        frame = read_table(folder / f"amazon_music_{part}", sep="\t", columns=["user", "item", "value"],
                           expected="3 tab-separated columns (user item 1)",
                           integer_columns=("user", "item"))
        parts[part] = (frame["user"].to_numpy(np.int64), frame["item"].to_numpy(np.int64), None)
    return parts


def _load_digital_music(folder: Path) -> PublishedSplit:
    parts = _music_parts(folder)
    split = _assemble("dl-mia-digital-music", parts, first_half=lambda n: n // 2,
                      files=tuple(folder / f"amazon_music_{p}" for p in PARTS))
    notes = ("members: ids < n // 2 in each part's file (MIARS convention)",
             "shadow row u and target row u are one person's interactions split in two",
             "no vectorization part in the shared copy")
    return dataclasses.replace(split, notes=notes)


def _stack(name, parts, *, first_half, files) -> tuple[RawData, dict]:
    """The parts' rows stacked (shadow users first, then target) and each part's
    (start, stop, first non-member) in the stacked ids."""
    users, items, times, bounds, offset = [], [], [], {}, 0
    for part in PARTS:
        part_users, part_items, part_times = parts[part]
        n = int(part_users.max()) + 1
        if len(np.unique(part_users)) != n:
            raise DataError(f"{name}: {part} user ids are not 0..{n - 1} without gaps")
        users.append(part_users + offset)
        items.append(part_items)
        times.append(part_times)
        bounds[part] = (offset, offset + n, offset + first_half(n))
        offset += n
    timed = all(t is not None for t in times)
    raw = RawData(np.concatenate(users), np.concatenate(items),
                  np.concatenate(times) if timed else None, files)
    return raw, bounds


def _assemble(name, parts, *, first_half, files) -> PublishedSplit:
    """Stack the parts' users (shadow rows first, then target) into one `Interactions`."""
    raw, bounds = _stack(name, parts, first_half=first_half, files=files)
    interactions = build_interactions(raw, name=name, min_user_interactions=1, min_item_interactions=1,
                                      meta={"parts": {p: list(bounds[p][:2]) for p in PARTS}})
    # Row ids equal the stacked ids (every user keeps >= 1 interaction and remap sorts them).
    file_ids = np.concatenate([np.arange(bounds[p][1] - bounds[p][0]) for p in PARTS])
    interactions = dataclasses.replace(interactions, user_labels=file_ids)
    start_s, stop_s, mid_s = bounds["shadow"]
    start_t, stop_t, mid_t = bounds["target"]
    partition = MembershipPartition(
        vector=np.empty(0, np.int64),
        shadow_members=np.arange(start_s, mid_s), shadow_nonmembers=np.arange(mid_s, stop_s),
        target_members=np.arange(start_t, mid_t), target_nonmembers=np.arange(mid_t, stop_t),
    )
    return PublishedSplit(interactions, partition, None, ())


# --------------------------------------------------------------------------- as grid datasets

# Grid dataset name -> (folder under dl-mia/, file prefix, parts reader, first non-member id).
_PUBLISHED = {
    "dl-mia-beauty": ("beauty", "beauty", _beauty_parts, lambda n: round(n / 2)),
    "dl-mia-digital-music": ("digital-music", "amazon_music", _music_parts, lambda n: n // 2),
}
DLMIA_DATASETS = tuple(_PUBLISHED)


def published_files(name: str, data_dir: Path) -> list[Path]:
    folder, prefix, _, _ = _PUBLISHED[name]
    files = [Path(data_dir) / "dl-mia" / folder / f"{prefix}_{part}" for part in PARTS]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise DataError(f"{name}: missing {', '.join(missing)} (the DL-MIA published splits)")
    return files


def published_raw(name: str, data_dir: Path) -> RawData:
    """A published split's shadow and target parts as one dataset's rows (shadow users first):
    what the grid datasets `dl-mia-beauty` and `dl-mia-digital-music` load."""
    folder, _, read_parts, first_half = _PUBLISHED[name]
    files = tuple(published_files(name, data_dir))
    raw, _ = _stack(name, read_parts(Path(data_dir) / "dl-mia" / folder), first_half=first_half, files=files)
    return raw


def published_partition(data: Interactions) -> MembershipPartition:
    """The published members and non-members of a `dl-mia-*` dataset loaded by a grid. Its rows
    must be the files' users unfiltered, so the grid's dataset needs min_user_interactions and
    min_item_interactions of 1."""
    folder, _, _, _ = _PUBLISHED[data.name]
    split = load_dlmia_split(folder, Path(data.meta["source_dir"]))
    if split.interactions.matrix.shape != data.matrix.shape:
        raise DataError(f"{data.name}: dataset.min_user_interactions and dataset.min_item_interactions must be 1 "
                        f"(the published parts are used as published); got {data.n_users} users x "
                        f"{data.n_items} items instead of {split.interactions.n_users} x {split.interactions.n_items}")
    return split.partition


# DL-MIA's published splits as grid datasets: `dl-mia-beauty` and `dl-mia-digital-music`, the
# shadow and target parts stacked (shadow users first). A membership cell on them uses the
# published members and non-members, not a seeded partition; set the dataset's
# `min_user_interactions` and `min_item_interactions` to 1.
for _name, _description in (
        ("dl-mia-beauty", "DL-MIA's published Beauty shadow and target parts (members: ids < round(n/2))"),
        ("dl-mia-digital-music", "DL-MIA's published Digital Music shadow and target parts (members: ids < n//2)")):
    register_dataset(_name, locate=lambda data_dir, name=_name: published_files(name, data_dir),
                     description=_description)(lambda data_dir, name=_name: published_raw(name, data_dir))
