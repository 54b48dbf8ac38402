"""Datasets: raw loaders, preprocessing, the synthetic generator, the cache and downloads.

Most code needs only `load_dataset(name, data_dir=..., cache_dir=...) -> Interactions`.
"""

from recsec.harness.data import synthetic as _synthetic  # noqa: F401  (registers "synthetic")
from recsec.harness.data.cache import dataset_digest, load_dataset
from recsec.harness.data.interactions import Interactions, csr_from_pairs
from recsec.harness.data.loaders import RawData, dataset_names, get_dataset, register_dataset
from recsec.harness.data.synthetic import generate_synthetic

__all__ = [
    "Interactions",
    "RawData",
    "csr_from_pairs",
    "dataset_digest",
    "dataset_names",
    "generate_synthetic",
    "get_dataset",
    "load_dataset",
    "register_dataset",
]
