"""Download the official GroupLens MovieLens archives into a data dir, checksum-verified.

Only datasets whose licence allows fetching from the official source are offered; the others must
be obtained by the user. Checksums are pinned so a changed or corrupted archive is refused rather
than silently producing different benchmark numbers.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from recsec.harness.errors import DataError

DEFAULT_BASE_URL = "https://files.grouplens.org/datasets/movielens/"
BASE_URL_ENV = "RECSEC_DOWNLOAD_BASE_URL"


@dataclass(frozen=True)
class Archive:
    """An official archive: its file name, the top folder inside it, and a file proving success."""

    filename: str
    folder: str
    required: str


ARCHIVES: dict[str, Archive] = {
    "ml-1m": Archive("ml-1m.zip", "ml-1m", "ratings.dat"),
    "ml-100k": Archive("ml-100k.zip", "ml-100k", "u.data"),
}

CHECKSUMS: dict[str, str] = {
    # md5 as published by GroupLens next to each archive.
    "ml-1m": "c4d9eecfca2ab87c1945afe126590906",
    "ml-100k": "0e33842e24a9c977be4e0107933c0723",
}

_BLOCK = 1 << 20


def downloadable() -> list[str]:
    """Names `download_dataset` accepts."""
    return sorted(ARCHIVES)


def download_dataset(name: str, data_dir: Path, *, base_url: str | None = None,
                     force: bool = False, timeout: float = 60.0) -> Path:
    """Fetch, verify and extract `name` so that `data_dir/<name>/` holds the official files.

    `base_url` (else `$RECSEC_DOWNLOAD_BASE_URL`, else GroupLens) allows mirrors. Returns the
    dataset folder; if its files are already there nothing is fetched unless `force`.
    """
    if name not in ARCHIVES:
        raise DataError(f"cannot download {name!r}; downloadable datasets: "
                        f"{', '.join(downloadable())} (get the others yourself)")
    archive = ARCHIVES[name]
    data_dir = Path(data_dir)
    target = data_dir / archive.folder
    if (target / archive.required).is_file() and not force:
        return target
    base = base_url or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL
    url = base.rstrip("/") + "/" + archive.filename

    data_dir.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(dir=data_dir, prefix=f".{archive.filename}.",
                                         suffix=".part")
    temp = Path(temp_name)
    try:
        with os.fdopen(handle, "wb") as file:
            actual = _fetch(url, file, timeout)
        expected = CHECKSUMS[name]
        if actual != expected:
            raise DataError(f"{url}: checksum mismatch, expected md5 {expected}, got {actual} "
                            "(corrupted download or a changed archive; nothing was extracted)")
        _extract(temp, data_dir, archive, url)
    finally:
        temp.unlink(missing_ok=True)
    return target


def _fetch(url: str, file, timeout: float) -> str:
    """Stream `url` into `file`; return the md5 hex digest of the bytes."""
    md5 = hashlib.md5(usedforsecurity=False)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            while block := response.read(_BLOCK):
                md5.update(block)
                file.write(block)
    except urllib.error.HTTPError as exc:
        raise DataError(f"{url}: download failed, HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        raise DataError(f"{url}: download failed, {exc.reason}") from None
    except (OSError, ValueError) as exc:  # timeouts, resets, malformed URLs
        raise DataError(f"{url}: download failed, {exc}") from None
    return md5.hexdigest()


def _extract(zip_path: Path, data_dir: Path, archive: Archive, url: str) -> None:
    """Extract into a temp folder, then move the dataset folder into place.

    Staging keeps a failed extraction from leaving a half-filled dataset folder that would later
    look "present". Member paths are checked so an archive cannot write outside the data dir.
    """
    staging = Path(tempfile.mkdtemp(dir=data_dir, prefix=f".{archive.folder}.extract."))
    try:
        try:
            with zipfile.ZipFile(zip_path) as bundle:
                for member in bundle.namelist():
                    parts = PurePosixPath(member).parts
                    if PurePosixPath(member).is_absolute() or ".." in parts:
                        raise DataError(f"{url}: unsafe path {member!r} in archive")
                bundle.extractall(staging)
        except zipfile.BadZipFile as exc:
            raise DataError(f"{url}: not a valid zip archive ({exc})") from None
        source = staging / archive.folder
        if not (source / archive.required).is_file():
            raise DataError(f"{url}: archive lacks {archive.folder}/{archive.required}")
        target = data_dir / archive.folder
        target.mkdir(exist_ok=True)
        for item in source.iterdir():  # merge, so user files already in the folder survive
            destination = target / item.name
            if destination.is_dir() and item.is_dir():
                shutil.rmtree(destination)
            os.replace(item, destination)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
