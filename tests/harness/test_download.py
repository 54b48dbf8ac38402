"""`download_dataset` against a local HTTP server (these machines have no internet)."""

from __future__ import annotations

import functools
import hashlib
import http.server
import io
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from recsec.harness.cli.data import app
from recsec.harness.data import download
from recsec.harness.data.download import download_dataset
from recsec.harness.data.loaders import get_dataset
from recsec.harness.errors import DataError

U_DATA = "196\t242\t3\t881250949\n186\t302\t3\t891717742\n22\t377\t1\t878887116\n"


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # keep pytest output clean
        pass


@pytest.fixture
def mirror(tmp_path, monkeypatch) -> Iterator[tuple[str, Path]]:
    """(base URL, served folder): an HTTP server on 127.0.0.1 in a thread, ephemeral port."""
    served = tmp_path / "mirror"
    served.mkdir()
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")  # in case a proxy is configured
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    handler = functools.partial(_QuietHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/datasets", served
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _publish_ml100k(served: Path) -> str:
    """Put a small ml-100k.zip (GroupLens layout: top folder ml-100k/) on the mirror; its md5."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        bundle.writestr("ml-100k/u.data", U_DATA)
        bundle.writestr("ml-100k/README", "toy copy\n")
    (served / "datasets").mkdir()
    (served / "datasets" / "ml-100k.zip").write_bytes(buffer.getvalue())
    return hashlib.md5(buffer.getvalue()).hexdigest()


def _leftovers(data_dir: Path) -> list[str]:
    return sorted(p.name for p in data_dir.iterdir()) if data_dir.exists() else []


def test_download_verifies_and_extracts(mirror, tmp_path, monkeypatch):
    base_url, served = mirror
    monkeypatch.setitem(download.CHECKSUMS, "ml-100k", _publish_ml100k(served))
    data_dir = tmp_path / "data"

    target = download_dataset("ml-100k", data_dir, base_url=base_url)

    assert target == data_dir / "ml-100k" and (target / "u.data").read_text() == U_DATA
    assert _leftovers(data_dir) == ["ml-100k"]  # no .part file, no staging folder
    raw = get_dataset("ml-100k").load(data_dir)
    assert raw.users.tolist() == [196, 186, 22] and raw.timestamps is not None


def test_download_base_url_from_env_and_skip_when_present(mirror, tmp_path, monkeypatch):
    base_url, served = mirror
    monkeypatch.setitem(download.CHECKSUMS, "ml-100k", _publish_ml100k(served))
    monkeypatch.setenv(download.BASE_URL_ENV, base_url)
    data_dir = tmp_path / "data"
    download_dataset("ml-100k", data_dir)
    (served / "datasets" / "ml-100k.zip").unlink()  # a second fetch would now fail
    assert download_dataset("ml-100k", data_dir) == data_dir / "ml-100k"


def test_checksum_mismatch_is_refused(mirror, tmp_path):
    base_url, served = mirror
    actual = _publish_ml100k(served)
    data_dir = tmp_path / "data"

    with pytest.raises(DataError) as error:
        download_dataset("ml-100k", data_dir, base_url=base_url)

    message = str(error.value)
    assert f"{base_url}/ml-100k.zip" in message
    assert download.CHECKSUMS["ml-100k"] in message and actual in message
    assert _leftovers(data_dir) == []


def test_http_404_names_url(mirror, tmp_path):
    base_url, _served = mirror
    data_dir = tmp_path / "data"
    with pytest.raises(DataError, match=r"ml-1m\.zip: download failed, HTTP 404") as error:
        download_dataset("ml-1m", data_dir, base_url=base_url)
    assert f"{base_url}/ml-1m.zip" in str(error.value)
    assert _leftovers(data_dir) == []


def test_only_grouplens_datasets_download(tmp_path):
    with pytest.raises(DataError, match="downloadable datasets: ml-100k, ml-1m"):
        download_dataset("ta-feng", tmp_path)


def test_cli_download(mirror, tmp_path, monkeypatch):
    base_url, served = mirror
    data_dir = tmp_path / "data"
    runner = CliRunner()
    failed = runner.invoke(app, ["download", "ml-100k", "--data-dir", str(data_dir),
                                 "--base-url", base_url])
    assert failed.exit_code == 2 and "error: " in failed.stderr and "404" in failed.stderr

    monkeypatch.setitem(download.CHECKSUMS, "ml-100k", _publish_ml100k(served))
    done = runner.invoke(app, ["download", "ml-100k", "--data-dir", str(data_dir),
                               "--base-url", base_url])
    assert done.exit_code == 0, done.output
    assert (data_dir / "ml-100k" / "u.data").is_file()
