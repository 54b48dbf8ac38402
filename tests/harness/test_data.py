"""The data layer: loaders, k-core, remapping, cache, synthetic generator, `recsec data` CLI."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.sparse.linalg import svds
from typer.testing import CliRunner

from recsec.harness.cli.data import app
from recsec.harness.data import (
    Interactions,
    RawData,
    dataset_digest,
    dataset_names,
    generate_synthetic,
    get_dataset,
    load_dataset,
)
from recsec.harness.data import cache as cache_module
from recsec.harness.data.preprocess import build_interactions, kcore, remap
from recsec.harness.errors import DataError

# --------------------------------------------------------------------------- preprocessing


def test_kcore_needs_several_passes():
    # Rows 0-3: a 2x2 core. Then a chain: user 3 has one item (2), so it goes in pass 1; item 2
    # is then left with one user and goes in pass 2; user 2 is then left with one item, pass 3.
    users = np.array([0, 0, 1, 1, 2, 2, 3])
    items = np.array([0, 1, 0, 1, 1, 2, 2])
    one_pass = (np.bincount(users)[users] >= 2) & (np.bincount(items)[items] >= 2)
    assert one_pass.sum() == 6  # a single pass is not enough here

    keep = kcore(users, items, min_user=2, min_item=2)

    assert keep.tolist() == [True] * 4 + [False] * 3


def test_kcore_result_is_a_core():
    rng = np.random.default_rng(0)
    users, items = rng.zipf(1.5, 5000) % 300, rng.zipf(1.3, 5000) % 400
    pairs = np.unique(np.stack([users, items], 1), axis=0)
    keep = kcore(pairs[:, 0], pairs[:, 1], min_user=5, min_item=3)
    kept = pairs[keep]
    assert 0 < len(kept) < len(pairs)
    assert np.bincount(kept[:, 0])[np.unique(kept[:, 0])].min() >= 5
    assert np.bincount(kept[:, 1])[np.unique(kept[:, 1])].min() >= 3
    assert kcore(pairs[:, 0], pairs[:, 1], 1, 1).all()


@pytest.mark.parametrize("raw", [[30, 10, 20, 10], ["c", "a", "b", "a"]])
def test_remap_keeps_labels(raw):
    codes, labels = remap(np.array(raw))
    assert codes.tolist() == [2, 0, 1, 0]
    assert labels[codes].tolist() == raw
    assert labels.dtype != object  # savable without pickle


def test_build_interactions_dedupes_and_keeps_time_order():
    # User 7 sees items 300, 100, 200 in that order (and 100 again later); user 5 sees 200, 100.
    raw = RawData(
        users=np.array([7, 7, 7, 5, 5, 7]),
        items=np.array([300, 100, 200, 200, 100, 100]),
        timestamps=np.array([1, 2, 3, 4, 5, 9]),
        files=(),
    )
    data = build_interactions(raw, name="toy", min_user_interactions=1, min_item_interactions=1)

    assert isinstance(data, Interactions) and data.name == "toy"
    assert data.user_labels.tolist() == [5, 7] and data.item_labels.tolist() == [100, 200, 300]
    assert data.n_interactions == 5  # the repeated (7, 100) counts once, with its first time
    m = data.matrix
    start, stop = m.indptr[1], m.indptr[2]  # user 7
    by_time = m.indices[start:stop][np.argsort(data.timestamps[start:stop])]
    assert data.item_labels[by_time].tolist() == [300, 100, 200]
    assert sorted(data.timestamps[start:stop]) == [1, 2, 3]
    assert data.meta["raw_rows"] == 6 and data.meta["raw_users"] == 2


# --------------------------------------------------------------------------- real loaders

REAL_COUNTS = {  # (rows, users, items) from shared/data/README.md
    "ml-100k": (100_000, 943, 1_682),
    "ml-1m": (1_000_209, 6_040, 3_706),
    "steam-200k": (200_000, 12_393, 5_155),
    "amazon-beauty": (198_502, 22_363, 12_101),
    "ta-feng": (817_741, 32_266, 23_812),  # ~1.5 s to parse the 64 MB CSV
}


@pytest.mark.parametrize("name", sorted(REAL_COUNTS))
def test_real_loader_raw_counts(shared_data_dir, name):
    if not (shared_data_dir / name).is_dir():
        pytest.skip(f"{shared_data_dir / name} absent")
    raw = get_dataset(name).load(shared_data_dir)
    rows, users, items = REAL_COUNTS[name]
    assert (len(raw), len(np.unique(raw.users)), len(np.unique(raw.items))) == (rows, users, items)
    assert all(path.is_file() for path in raw.files)
    has_time = name in {"ml-100k", "ta-feng", "amazon-beauty"}
    assert (raw.timestamps is not None) == has_time


def test_ml1m_prefers_timestamped_ratings_dat(tmp_path):
    folder = tmp_path / "ml-1m"
    folder.mkdir()
    (folder / "ratings.csv.gz").write_bytes(gzip.compress(b"user_id,movie_id,rating\n1,2,3\n"))
    raw = get_dataset("ml-1m").load(tmp_path)
    assert raw.timestamps is None and raw.items.tolist() == [2]

    (folder / "ratings.dat").write_text("1::1193::5::978300760\n2::661::3::978302109\n")
    raw = get_dataset("ml-1m").load(tmp_path)
    assert raw.users.tolist() == [1, 2] and raw.items.tolist() == [1193, 661]
    assert raw.timestamps.tolist() == [978300760, 978302109]
    assert raw.files == (folder / "ratings.dat",)


def test_malformed_file_names_file_and_line(tmp_path):
    path = tmp_path / "ml-100k" / "u.data"
    path.parent.mkdir()
    path.write_text("196\t242\t3\t881250949\n186\t302\t3\t891717742\n22\t377\n")
    with pytest.raises(DataError) as error:
        get_dataset("ml-100k").load(tmp_path)
    assert str(path) in str(error.value)
    assert "4 tab-separated columns" in str(error.value) and "line 3 has 2" in str(error.value)

    path.write_text("196\t242\t3\t881250949\n186\tabc\t3\t891717742\n")
    with pytest.raises(DataError, match=r"line 2 has item=abc"):
        get_dataset("ml-100k").load(tmp_path)


def test_missing_dir_names_path(tmp_path):
    with pytest.raises(DataError) as error:
        load_dataset("ml-100k", data_dir=tmp_path / "nowhere", cache_dir=tmp_path / "cache")
    assert str(tmp_path / "nowhere" / "ml-100k") in str(error.value)


def test_unknown_dataset_and_params_are_clear_errors(tmp_path):
    with pytest.raises(DataError, match="known datasets: .*ml-1m"):
        load_dataset("ml-2m", data_dir=tmp_path, cache_dir=tmp_path)
    with pytest.raises(DataError, match=r"does not accept params \['colour'\]"):
        load_dataset("synthetic", data_dir=tmp_path, cache_dir=tmp_path, params={"colour": 1})
    assert {"ml-1m", "ml-100k", "steam-200k", "ta-feng", "amazon-beauty",
            "synthetic"} <= set(dataset_names())


# --------------------------------------------------------------------------- cache


def _same(a: Interactions, b: Interactions) -> bool:
    arrays = ("timestamps", "user_labels", "item_labels")
    return ((a.matrix != b.matrix).nnz == 0 and a.matrix.shape == b.matrix.shape
            and a.name == b.name and a.meta == b.meta
            and all(np.array_equal(getattr(a, k), getattr(b, k)) for k in arrays))


SMALL = {"n_users": 200, "n_items": 300, "n_interactions": 8_000}


def test_cache_hit_returns_equal_data(tmp_path, monkeypatch):
    first = load_dataset("synthetic", data_dir=tmp_path, cache_dir=tmp_path, params=SMALL)
    entry = tmp_path / "datasets" / f"{first.meta['digest']}.npz"
    assert entry.is_file() and first.name == "synthetic"
    assert not [p for p in entry.parent.iterdir() if p.suffix == ".tmp"]

    def no_rebuild(*args, **kwargs):
        raise AssertionError("cache miss: preprocessing ran again")

    monkeypatch.setattr(cache_module, "build_interactions", no_rebuild)
    second = load_dataset("synthetic", data_dir=tmp_path, cache_dir=tmp_path, params=SMALL)
    assert _same(first, second)
    assert sp.isspmatrix_csr(second.matrix) and second.matrix.dtype == np.float32


def test_cache_key_follows_files_and_options(tmp_path):
    folder = tmp_path / "ml-100k"
    folder.mkdir()
    (folder / "u.data").write_text("1\t1\t5\t10\n1\t2\t5\t11\n2\t1\t5\t12\n")
    digest = dataset_digest("ml-100k", data_dir=tmp_path)
    assert digest != dataset_digest("ml-100k", data_dir=tmp_path, min_user_interactions=1)
    data = load_dataset("ml-100k", data_dir=tmp_path, cache_dir=tmp_path,
                        min_user_interactions=1, min_item_interactions=1)
    assert data.n_interactions == 3

    (folder / "u.data").write_text("1\t1\t5\t10\n2\t1\t5\t12\n")
    assert dataset_digest("ml-100k", data_dir=tmp_path) != digest
    data = load_dataset("ml-100k", data_dir=tmp_path, cache_dir=tmp_path,
                        min_user_interactions=1, min_item_interactions=1)
    assert data.n_interactions == 2


def test_damaged_cache_entry_is_rebuilt(tmp_path):
    first = load_dataset("synthetic", data_dir=tmp_path, cache_dir=tmp_path, params=SMALL)
    (tmp_path / "datasets" / f"{first.meta['digest']}.npz").write_bytes(b"garbage")
    with pytest.warns(UserWarning, match="unreadable cache entry"):
        again = load_dataset("synthetic", data_dir=tmp_path, cache_dir=tmp_path, params=SMALL)
    assert _same(first, again)


def test_real_dataset_roundtrips_through_cache(shared_data_dir, tmp_path):
    if not (shared_data_dir / "ml-100k").is_dir():
        pytest.skip("ml-100k absent")
    first = load_dataset("ml-100k", data_dir=shared_data_dir, cache_dir=tmp_path)
    second = load_dataset("ml-100k", data_dir=shared_data_dir, cache_dir=tmp_path)
    assert _same(first, second)
    assert (first.n_users, first.n_items, first.n_interactions) == (943, 1349, 99_287)
    assert first.user_activity().min() >= 5 and first.item_popularity().min() >= 5


# --------------------------------------------------------------------------- synthetic


def test_synthetic_is_deterministic_per_seed():
    a, b, c = generate_synthetic(seed=1), generate_synthetic(seed=1), generate_synthetic(seed=2)
    assert np.array_equal(a.users, b.users) and np.array_equal(a.items, b.items)
    assert np.array_equal(a.timestamps, b.timestamps)
    assert not (len(a) == len(c) and np.array_equal(a.items, c.items))


@pytest.fixture(scope="module")
def synthetic_default() -> Interactions:
    return build_interactions(generate_synthetic(), name="synthetic",
                              min_user_interactions=1, min_item_interactions=1)


def test_synthetic_size_and_marginals(synthetic_default):
    data = synthetic_default
    assert data.n_users == 943 and data.n_items > 0.95 * 1682
    assert data.n_interactions == 100_000
    assert data.user_activity().min() >= 20
    activity = data.user_activity()
    assert activity.max() > 5 * np.median(activity)  # heavy-tailed users
    popularity = np.sort(data.item_popularity())[::-1]
    assert popularity[: len(popularity) // 10].sum() > 0.35 * popularity.sum()  # long tail


def test_synthetic_respects_size_params():
    raw = generate_synthetic(n_users=50, n_items=120, n_interactions=2_000,
                             min_user_interactions=10, seed=3)
    assert set(np.unique(raw.users)) == set(range(50))
    assert raw.items.max() < 120 and len(raw) == 2_000
    assert np.bincount(raw.users).min() >= 10
    with pytest.raises(DataError, match="n_interactions"):
        generate_synthetic(n_users=50, n_interactions=100, min_user_interactions=10)


def _recall_at(scores: np.ndarray, train: sp.csr_matrix, test: sp.csr_matrix, k: int) -> float:
    scores = np.where(train.toarray() > 0, -np.inf, scores)
    top = np.argpartition(-scores, k, axis=1)[:, :k]
    hits = np.take_along_axis(test.toarray(), top, axis=1).sum(axis=1)
    n_test = np.asarray(test.sum(axis=1)).ravel()
    mask = n_test > 0
    return float((hits[mask] / np.minimum(n_test[mask], k)).mean())


def test_synthetic_has_learnable_structure(synthetic_default):
    """A rank-32 PureSVD must clearly beat most-popular on held-out interactions."""
    coo = synthetic_default.matrix.tocoo()
    held_out = np.random.default_rng(0).random(coo.nnz) < 0.2

    def part(mask):
        return sp.csr_matrix((coo.data[mask], (coo.row[mask], coo.col[mask])), shape=coo.shape)

    train, test = part(~held_out), part(held_out)
    popularity = np.asarray(train.sum(axis=0)).ravel()
    u, s, vt = svds(train.astype(np.float64), k=32, random_state=0)
    most_popular = _recall_at(np.tile(popularity, (train.shape[0], 1)), train, test, k=20)
    pure_svd = _recall_at((u * s) @ vt, train, test, k=20)
    assert pure_svd > most_popular + 0.1, (pure_svd, most_popular)


# --------------------------------------------------------------------------- CLI


def test_cli_list_info_and_errors(tmp_path):
    runner = CliRunner()
    env = {"RECSEC_DATA_DIR": str(tmp_path), "RECSEC_CACHE_DIR": str(tmp_path / "cache")}
    listed = runner.invoke(app, ["list"], env=env)
    assert listed.exit_code == 0, listed.output
    assert "ml-1m" in listed.output and "missing" in listed.output and "built-in" in listed.output

    info = runner.invoke(app, ["info", "synthetic", "--param", "n_users=100",
                               "--param", "n_items=200", "--param", "n_interactions=4000"],
                         env=env)
    assert info.exit_code == 0, info.output
    assert "users:        100" in info.output and "density:" in info.output

    missing = runner.invoke(app, ["info", "ml-100k", "--data-dir", str(tmp_path / "none")])
    assert missing.exit_code == 2
    assert missing.stderr.startswith("error: ") and str(tmp_path / "none") in missing.stderr


def test_the_data_carries_the_runs_directories_to_every_worker(tmp_path, monkeypatch):
    """A Ray worker on another node has its own environment and working directory: what it
    reads besides the interactions (item images) and what it caches (their CNN features) must
    follow the run's --data-dir and --cache-dir, which travel with the data, cached or not."""
    from recsec.attacks.visual.cells import cache_dir_of

    monkeypatch.setenv("RECSEC_CACHE_DIR", str(tmp_path / "elsewhere"))
    for _ in range(2):  # parsed, then read back from the cache
        data = load_dataset("synthetic", data_dir=tmp_path / "raw", cache_dir=tmp_path / "run-cache", params=SMALL)
        assert data.meta["source_dir"] == str((tmp_path / "raw").resolve())
        assert cache_dir_of(data) == (tmp_path / "run-cache").resolve()
