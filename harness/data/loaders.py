"""Raw dataset loaders: one registered function per dataset, reading files into id arrays.

A loader only parses. It returns every observed row as one implicit interaction, with raw ids
exactly as in the files; deduplication, k-core filtering and id remapping live in `preprocess`,
caching in `cache`. Each registered dataset also names the files it would read (`locate`), so the
cache key can be computed by hashing those files without parsing them.
"""

from __future__ import annotations

import inspect
import io
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from recsec.harness.errors import DataError
from recsec.models.registry import load_entry_points


@dataclass(frozen=True)
class RawData:
    """Observed rows of one dataset: parallel arrays of raw user ids, raw item ids and times.

    `timestamps` (int64, any monotone unit) is None when the source has no time order;
    `files` lists the raw files read, in a fixed order, for digests and error messages.
    """

    users: np.ndarray
    items: np.ndarray
    timestamps: np.ndarray | None
    files: tuple[Path, ...]

    def __len__(self) -> int:
        return len(self.users)


Locator = Callable[[Path], list[Path]]
Loader = Callable[..., RawData]


@dataclass(frozen=True)
class DatasetSpec:
    """A registered dataset: how to find its raw files and how to parse them."""

    name: str
    description: str
    loader: Loader
    locate: Locator
    """Raw files under `data_dir` the loader would read; raises DataError naming what is missing."""

    def files_present(self, data_dir: Path) -> bool:
        try:
            self.locate(Path(data_dir))
        except DataError:
            return False
        return True

    def load(self, data_dir: Path, params: dict[str, Any] | None = None) -> RawData:
        """Run the loader, turning unknown `params` into a DataError instead of a TypeError."""
        params = dict(params or {})
        accepted = list(inspect.signature(self.loader).parameters)[1:]
        unknown = sorted(set(params) - set(accepted))
        if unknown:
            raise DataError(f"dataset {self.name!r} does not accept params {unknown} "
                            f"(accepted: {', '.join(accepted) or 'none'})")
        return self.loader(Path(data_dir), **params)


_REGISTRY: dict[str, DatasetSpec] = {}


def register_dataset(
    name: str, *, description: str, locate: Locator | None = None
) -> Callable[[Loader], Loader]:
    """Register `loader(data_dir, **params) -> RawData` under `name` (a data_dir folder name).

    `locate(data_dir)` returns the raw files to hash; None means the dataset reads no files.
    """

    def decorator(loader: Loader) -> Loader:
        if name in _REGISTRY:
            raise ValueError(f"dataset {name!r} registered twice")
        _REGISTRY[name] = DatasetSpec(name, description, loader, locate or (lambda _d: []))
        return loader

    return decorator


DATASETS_GROUP = "recsec.datasets"  # entry points: the modules that register datasets beyond these


def dataset_names() -> list[str]:
    """Registered dataset names, sorted."""
    load_entry_points(DATASETS_GROUP)
    return sorted(_REGISTRY)


def get_dataset(name: str) -> DatasetSpec:
    """The spec registered under `name`; an unknown name raises DataError listing known ones."""
    load_entry_points(DATASETS_GROUP)
    try:
        return _REGISTRY[name]
    except KeyError:
        raise DataError(
            f"unknown dataset {name!r}; known datasets: {', '.join(sorted(_REGISTRY))}"
        ) from None


# --------------------------------------------------------------------------- file helpers


def _dataset_dir(data_dir: Path, folder: str) -> Path:
    path = Path(data_dir) / folder
    if not path.is_dir():
        raise DataError(f"{path}: dataset folder not found (expected {folder}/ under the data dir)")
    return path


def _first_existing(data_dir: Path, folder: str, candidates: list[str], what: str) -> Path:
    """The first of `candidates` present in `data_dir/folder`, else a DataError naming them all."""
    directory = _dataset_dir(data_dir, folder)
    for candidate in candidates:
        if (directory / candidate).is_file():
            return directory / candidate
    raise DataError(f"{directory}: none of {', '.join(candidates)} found (expected {what})")


_PANDAS_FIELDS = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")


def read_table(
    source: Path,
    *,
    columns: list[str],
    expected: str,
    sep: str = ",",
    header: bool = False,
    integer_columns: tuple[str, ...] = (),
    usecols: list[str] | None = None,
    dtype: dict[str, Any] | None = None,
    member: str | None = None,
) -> pd.DataFrame:
    """Read a delimited file with a fixed column layout; any deviation becomes a DataError.

    `expected` describes the layout in the error ("4 tab-separated columns (user item rating
    timestamp)"). Short lines, long lines, a wrong header and non-integer ids are all reported
    with the file path and 1-based line number. `member` reads one file inside a zip archive.
    A multi-character `sep` (ML-1M's "::") is rewritten to a tab first so pandas' fast C parser
    can be used instead of the slow Python engine.
    """
    label = f"{source}!{member}" if member else str(source)
    try:
        if member is not None:
            with zipfile.ZipFile(source) as archive:
                buffer: Any = io.BytesIO(archive.read(member))
        elif len(sep) > 1:
            buffer = io.BytesIO(source.read_bytes().replace(sep.encode(), b"\t"))
            sep = "\t"
        else:
            buffer = source  # pandas handles paths and infers .gz compression
        options: dict[str, Any] = dict(
            sep=sep,
            encoding="utf-8-sig",  # Ta-Feng's CSV starts with a byte-order mark
            encoding_errors="replace",
            compression=None if isinstance(buffer, io.BytesIO) else "infer",
        )
        if header:  # pandas would silently replace a wrong header by `names`: check it first
            head = [str(c).strip() for c in pd.read_csv(buffer, nrows=0, **options).columns]
            if head != columns:
                raise DataError(f"{label}: expected {expected}, found header {','.join(head)}")
            if isinstance(buffer, io.BytesIO):
                buffer.seek(0)
        frame = pd.read_csv(
            buffer,
            header=0 if header else None,
            names=columns,
            usecols=usecols,
            dtype=dtype,
            index_col=False,
            skip_blank_lines=False,  # keeps row index == line number, so errors can cite lines
            **options,
        )
    except FileNotFoundError:
        raise DataError(f"{label}: file not found (expected {expected})") from None
    except KeyError:
        raise DataError(f"{source}: archive has no member {member} (expected {expected})") from None
    except (zipfile.BadZipFile, EOFError, OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{label}: unreadable ({exc}); expected {expected}") from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{label}: file is empty (expected {expected})") from None
    except pd.errors.ParserError as exc:
        found = _PANDAS_FIELDS.search(str(exc))
        where = f"line {found[2]} has {found[3]}" if found else str(exc).strip()
        raise DataError(f"{label}: expected {expected}, {where}") from None
    return _validate(frame, label=label, expected=expected, header=header,
                     integer_columns=integer_columns)


def _validate(
    frame: pd.DataFrame,
    *,
    label: str,
    expected: str,
    header: bool,
    integer_columns: tuple[str, ...],
) -> pd.DataFrame:
    offset = 2 if header else 1  # frame row 0 is file line 1, or line 2 after a header
    frame = frame.dropna(how="all")  # blank lines (e.g. a trailing one) are harmless
    if frame.empty:
        raise DataError(f"{label}: no rows (expected {expected})")
    short = frame.isna().any(axis=1).to_numpy()
    if short.any():
        row = int(np.flatnonzero(short)[0])
        n_fields = int(frame.iloc[row].notna().sum())
        raise DataError(f"{label}: expected {expected}, line {frame.index[row] + offset} "
                        f"has {n_fields}")
    for column in integer_columns:
        values = frame[column]
        if pd.api.types.is_integer_dtype(values):
            continue
        # A blank line makes pandas parse ids as float; accept them when every value is integral.
        numeric = pd.to_numeric(values, errors="coerce")
        bad = numeric.isna().to_numpy() | (numeric.to_numpy(dtype=float) % 1 != 0)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise DataError(f"{label}: expected {expected}, line {frame.index[row] + offset} "
                            f"has {column}={values.iloc[row]}, not an integer")
        frame[column] = numeric.astype(np.int64)
    return frame


def _int_ids(frame: pd.DataFrame, column: str) -> np.ndarray:
    return frame[column].to_numpy(dtype=np.int64)


# --------------------------------------------------------------------------- MovieLens


def _locate_ml1m(data_dir: Path) -> list[Path]:
    # The official ratings.dat has timestamps; the shared copy's ratings.csv.gz does not.
    return [_first_existing(data_dir, "ml-1m", ["ratings.dat", "ratings.csv.gz", "ratings.csv"],
                            "MovieLens 1M ratings")]


@register_dataset("ml-1m", locate=_locate_ml1m,
                  description="MovieLens 1M: 1,000,209 ratings, 6,040 users, 3,706 movies")
def load_ml1m(data_dir: Path) -> RawData:
    (path,) = _locate_ml1m(data_dir)
    if path.name == "ratings.dat":
        frame = read_table(path, sep="::", columns=["user", "item", "rating", "timestamp"],
                           expected="4 '::'-separated columns (UserID MovieID Rating Timestamp)",
                           integer_columns=("user", "item", "timestamp"))
        timestamps = _int_ids(frame, "timestamp")
    else:
        frame = read_table(path, header=True, columns=["user_id", "movie_id", "rating"],
                           expected="3 comma-separated columns with header user_id,movie_id,rating",
                           integer_columns=("user_id", "movie_id"))
        frame = frame.rename(columns={"user_id": "user", "movie_id": "item"})
        timestamps = None
    return RawData(_int_ids(frame, "user"), _int_ids(frame, "item"), timestamps, (path,))


def _locate_ml100k(data_dir: Path) -> list[Path]:
    return [_first_existing(data_dir, "ml-100k", ["u.data"], "MovieLens 100K u.data")]


@register_dataset("ml-100k", locate=_locate_ml100k,
                  description="MovieLens 100K: 100,000 ratings, 943 users, 1,682 movies, times")
def load_ml100k(data_dir: Path) -> RawData:
    (path,) = _locate_ml100k(data_dir)
    frame = read_table(path, sep="\t", columns=["user", "item", "rating", "timestamp"],
                       expected="4 tab-separated columns (user item rating timestamp)",
                       integer_columns=("user", "item", "timestamp"))
    return RawData(_int_ids(frame, "user"), _int_ids(frame, "item"),
                   _int_ids(frame, "timestamp"), (path,))


# --------------------------------------------------------------------------- Steam


def _locate_steam(data_dir: Path) -> list[Path]:
    return [_first_existing(data_dir, "steam-200k", ["steam-200k.csv"], "Kaggle steam-200k.csv")]


_STEAM_BEHAVIORS = {"purchase", "play"}


@register_dataset("steam-200k", locate=_locate_steam,
                  description="Steam 200k: purchases and plays, 12,393 users, 5,155 games, no time")
def load_steam(data_dir: Path) -> RawData:
    """Every purchase or play row counts; a game bought and played collapses to one pair later."""
    (path,) = _locate_steam(data_dir)
    expected = "5 comma-separated columns (user_id,game_title,behavior,value,0)"
    frame = read_table(path, columns=["user", "item", "behavior", "value", "zero"],
                       expected=expected, integer_columns=("user",),
                       dtype={"item": str, "behavior": str})
    unknown = ~frame["behavior"].isin(_STEAM_BEHAVIORS).to_numpy()
    if unknown.any():
        row = int(np.flatnonzero(unknown)[0])
        raise DataError(f"{path}: expected behavior purchase or play, line {frame.index[row] + 1} "
                        f"has {frame['behavior'].iloc[row]!r}")
    return RawData(_int_ids(frame, "user"), frame["item"].to_numpy(dtype=str), None, (path,))


# --------------------------------------------------------------------------- Ta-Feng


_TAFENG_MEMBER = "ta_feng_all_months_merged.csv"
_TAFENG_COLUMNS = ["TRANSACTION_DT", "CUSTOMER_ID", "AGE_GROUP", "PIN_CODE", "PRODUCT_SUBCLASS",
                   "PRODUCT_ID", "AMOUNT", "ASSET", "SALES_PRICE"]


def _locate_tafeng(data_dir: Path) -> list[Path]:
    return [_first_existing(data_dir, "ta-feng", [_TAFENG_MEMBER, "ta_feng.csv.zip"],
                            f"Ta-Feng ta_feng.csv.zip or {_TAFENG_MEMBER}")]


@register_dataset("ta-feng", locate=_locate_tafeng,
                  description="Ta-Feng grocery baskets: 32,266 customers, 23,812 products, dates")
def load_tafeng(data_dir: Path) -> RawData:
    """Customer x product with the transaction date (seconds since the epoch) as time."""
    (path,) = _locate_tafeng(data_dir)
    frame = read_table(path, member=_TAFENG_MEMBER if path.suffix == ".zip" else None,
                       header=True, columns=_TAFENG_COLUMNS,
                       usecols=["TRANSACTION_DT", "CUSTOMER_ID", "PRODUCT_ID"],
                       expected=f"a CSV with header {','.join(_TAFENG_COLUMNS)}",
                       integer_columns=("CUSTOMER_ID", "PRODUCT_ID"),
                       dtype={"TRANSACTION_DT": str})
    dates = pd.to_datetime(frame["TRANSACTION_DT"], format="%m/%d/%Y", errors="coerce")
    if dates.isna().any():
        row = int(np.flatnonzero(dates.isna().to_numpy())[0])
        raise DataError(f"{path}: expected TRANSACTION_DT as month/day/year, line "
                        f"{frame.index[row] + 2} has {frame['TRANSACTION_DT'].iloc[row]!r}")
    seconds = dates.to_numpy().astype("datetime64[s]").astype(np.int64)
    return RawData(_int_ids(frame, "CUSTOMER_ID"), _int_ids(frame, "PRODUCT_ID"), seconds, (path,))


# --------------------------------------------------------------------------- Amazon Beauty


def _locate_beauty(data_dir: Path) -> list[Path]:
    return [_first_existing(data_dir, "amazon-beauty", ["Beauty.txt"], "Amazon Beauty.txt")]


@register_dataset("amazon-beauty", locate=_locate_beauty,
                  description="Amazon Beauty 5-core sequences: 22,363 users, 12,101 items, order")
def load_beauty(data_dir: Path) -> RawData:
    """One line per user, `user item item ...` in time order; the position is the timestamp."""
    (path,) = _locate_beauty(data_dir)
    expected = "lines of space-separated integers `user item [item ...]`"
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: unreadable ({exc}); expected {expected}") from None
    users: list[np.ndarray] = []
    items: list[np.ndarray] = []
    for lineno, line in enumerate(lines, start=1):  # per line (22k), not per interaction
        if not line.strip():
            continue
        try:
            ids = np.array(line.split(), dtype=np.int64)
        except ValueError:
            raise DataError(f"{path}: expected {expected}, line {lineno} has a non-integer "
                            f"field") from None
        if len(ids) < 2:
            raise DataError(f"{path}: expected {expected}, line {lineno} has {len(ids)} field")
        items.append(ids[1:])
        users.append(np.full(len(ids) - 1, ids[0], dtype=np.int64))
    if not items:
        raise DataError(f"{path}: no rows (expected {expected})")
    positions = np.concatenate([np.arange(len(seq), dtype=np.int64) for seq in items])
    return RawData(np.concatenate(users), np.concatenate(items), positions, (path,))
