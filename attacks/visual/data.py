"""Item images and interactions for visually-aware recommenders (TAaMR and its defenses).

Three sources, one shape:
- `load_fashion_images`: the 1,000 product images of `fashion-images/` (60x80 JPEGs from the
  Kaggle "Fashion Product Images (Small)" sample) with their `styles.csv` categories. They have no
  users, so `generate_visual_interactions` draws a semi-synthetic interaction matrix over them.
- `load_taamr_dataset`: a user's own data in the layout of the TAaMR code: `train.tsv` and
  `test.tsv` with `user_id<TAB>item_id` rows (ids 0..n-1) and `images/<item_id>.jpg`.
- `item_features`: EfficientNet features and ImageNet classes of an image set, cached on disk.

Images are float tensors [n, 3, S, S] in [0, 1] (or uint8 on request, for large catalogues): each
image is padded to a square with white (product photos sit on white) and, when `size` is given,
resized to size x size. The fashion images default to their own resolution, 80x80 after padding:
that is the item image an attacker would upload, attacks perturb it, and the CNN resizes it to
its 224x224 input inside the model (models/visual/efficientnet_lite.py), exactly as a platform's
pipeline would. It also keeps the 1,000 images at 77 MB instead of 600 MB at 224x224, and makes
the purification and detection networks cheap to train on a CPU.

The semi-synthetic generator (`generate_visual_interactions`), step by step, all from one seed:
1. Item popularity: log w_i ~ Normal(0, popularity_sigma^2), a long tail.
2. A visual space: the item features are standardized, projected on their top `visual_dim`
   principal components and scaled to unit length: z_i.
3. Each user picks `n_favourite` distinct favourite categories, with probability proportional to a
   category's number of items (large categories have more fans), and splits its category
   preference over them with Dirichlet(1) weights; a share `explore` of the preference is spread
   evenly over all categories, so nothing has probability zero.
4. Each user's visual taste v_u is the normalized mean of z over `taste_items` items drawn from
   its favourite categories, plus Gaussian noise of scale `taste_noise`: a style within them.
5. A user's affinity to item i: log w_i + category_weight * log pref_u(category_i)
   + visual_weight * <v_u, z_i>.
6. Activity: k_u = min_items + Poisson(mean_items - min_items) items (at most half the catalogue),
   drawn without replacement with probabilities proportional to exp(affinity) (Gumbel-top-k).
A visual recommender can learn steps 3 and 4 from the features (categories and styles are visible
in them); a most-popular baseline only step 1. It is semi-synthetic: real images and categories,
simulated users; results on it say how an attack or defense behaves, not what a shop would see.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from PIL import Image

from recsec.harness.data.interactions import csr_from_pairs
from recsec.harness.errors import DataError

FEATURE_CACHE_VERSION = 1
"""Bump when feature extraction changes what it produces, to invalidate old cache entries."""

_PAD_VALUE = 255  # white


@dataclass
class ItemImages:
    """Images of items 0..n-1 with their categories (codes into `category_names`)."""

    images: torch.Tensor  # [n, 3, S, S], float in [0, 1] (or uint8 0..255)
    item_ids: np.ndarray  # the source's own ids (fashion: product ids; TAaMR: item ids)
    categories: np.ndarray  # int64 [n]
    category_names: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.item_ids)

    def subset(self, rows: np.ndarray) -> "ItemImages":
        rows = np.asarray(rows, dtype=np.int64)
        return ItemImages(self.images[torch.from_numpy(rows)], self.item_ids[rows], self.categories[rows],
                          self.category_names)


def load_images(paths: list[Path], size: int | None = None, *, as_uint8: bool = False) -> torch.Tensor:
    """Read images (any mode: converted to RGB), pad each to a square with white, centred, and
    resize to size x size (PIL bilinear, antialiased when shrinking). Without `size` every image
    must give the same square."""
    if size is not None and size < 1:
        raise DataError(f"image size must be >= 1, got {size}")
    arrays = []
    for path in paths:
        try:
            with Image.open(path) as image:
                image = image.convert("RGB")
        except (OSError, ValueError) as exc:
            raise DataError(f"{path}: not a readable image ({exc})") from None
        image = _pad_square(image)
        if size is not None and image.size != (size, size):
            image = image.resize((size, size), Image.BILINEAR)
        arrays.append(np.asarray(image))
    if not arrays:
        side = size or 1
        return torch.zeros(0, 3, side, side, dtype=torch.uint8 if as_uint8 else torch.float32)
    shapes = {a.shape for a in arrays}
    if len(shapes) > 1:
        raise DataError(f"images have different sizes after padding ({sorted(shapes)[:3]}...): pass size=")
    stacked = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()
    return stacked if as_uint8 else stacked.float().div_(255)


def _pad_square(image: Image.Image) -> Image.Image:
    width, height = image.size
    side = max(width, height)
    if width == height:
        return image
    canvas = Image.new("RGB", (side, side), (_PAD_VALUE,) * 3)
    canvas.paste(image, ((side - width) // 2, (side - height) // 2))
    return canvas


def load_fashion_images(
    root: Path, *, size: int | None = None, category: str = "articleType", limit: int | None = None,
) -> ItemImages:
    """The fashion-images folder: items in `styles.csv` order, categories from its `category`
    column (articleType: 44 types; also masterCategory, subCategory, baseColour, ...)."""
    root = Path(root)
    styles_path = root / "styles.csv"
    if not styles_path.is_file():
        raise DataError(f"{styles_path}: not found (expected the fashion-images folder with styles.csv and images/)")
    styles = pd.read_csv(styles_path)
    for column in ("id", category):
        if column not in styles.columns:
            raise DataError(f"{styles_path}: no column {column!r}; columns: {', '.join(styles.columns)}")
    if limit is not None:
        styles = styles.iloc[:limit]
    paths = [root / "images" / f"{item_id}.jpg" for item_id in styles["id"]]
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise DataError(f"{missing[0]}: image not found ({len(missing)} of {len(paths)} missing)")
    labels = styles[category].fillna("unknown").astype(str).to_numpy()
    names, codes = np.unique(labels, return_inverse=True)
    return ItemImages(load_images(paths, size), styles["id"].to_numpy(np.int64), codes.astype(np.int64),
                      tuple(names.tolist()))


@dataclass
class TAaMRData:
    train: sp.csr_matrix  # users x items
    test: sp.csr_matrix
    images: ItemImages  # categories: one category (0, "item"); use the CNN's classes instead


def load_taamr_dataset(
    root: Path, *, train: str = "train.tsv", test: str = "test.tsv", image_dir: str = "images",
    size: int = 224, as_uint8: bool = False,
) -> TAaMRData:
    """A dataset in the TAaMR code's layout: `user_id<TAB>item_id` rows (no header, ids from 0)
    in the train and test files, and `<image_dir>/<item_id>.jpg` for every item 0..n-1. Images
    are resized to `size` (their sizes differ); `as_uint8` keeps them as bytes (a quarter of the
    memory; `EfficientNetLite0.extract` converts batch by batch)."""
    root = Path(root)
    frames = [_read_pairs(root / name) for name in (train, test)]
    n_users = int(max(f["u"].max() for f in frames if len(f)) + 1)
    n_items = int(max(f["i"].max() for f in frames if len(f)) + 1)
    matrices = [csr_from_pairs(f["u"].to_numpy(), f["i"].to_numpy(), (n_users, n_items)) for f in frames]
    paths = [root / image_dir / f"{item}.jpg" for item in range(n_items)]
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise DataError(f"{missing[0]}: image not found ({len(missing)} of {n_items} items have none; "
                        f"every item id 0..{n_items - 1} needs {image_dir}/<item_id>.jpg)")
    images = ItemImages(load_images(paths, size, as_uint8=as_uint8), np.arange(n_items),
                        np.zeros(n_items, dtype=np.int64), ("item",))
    return TAaMRData(matrices[0], matrices[1], images)


def _read_pairs(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise DataError(f"{path}: not found (expected user_id<TAB>item_id rows)")
    try:
        frame = pd.read_csv(path, sep="\t", header=None, usecols=[0, 1], names=["u", "i"], dtype=np.int64)
    except (ValueError, pd.errors.ParserError) as exc:
        raise DataError(f"{path}: expected two integer columns user_id<TAB>item_id ({exc})") from None
    if len(frame) and (frame.to_numpy() < 0).any():
        raise DataError(f"{path}: ids must be >= 0")
    return frame


@dataclass
class VisualInteractions:
    """A semi-synthetic interaction matrix and the generator's ground truth (for diagnostics)."""

    matrix: sp.csr_matrix  # users x items, binary
    favourite_categories: np.ndarray  # int64 [n_users, n_favourite]
    category_preference: np.ndarray  # float [n_users, n_categories], rows sum to 1
    visual_taste: np.ndarray  # float [n_users, visual_dim]


def generate_visual_interactions(
    categories: np.ndarray,
    features: np.ndarray,
    *,
    n_users: int = 1000,
    min_items: int = 10,
    mean_items: int = 25,
    n_favourite: int = 2,
    explore: float = 0.05,
    category_weight: float = 1.0,
    visual_dim: int = 16,
    visual_weight: float = 4.0,
    taste_items: int = 3,
    taste_noise: float = 0.3,
    popularity_sigma: float = 1.0,
    seed: int = 0,
) -> VisualInteractions:
    """Draw users' interactions over real items (see the module docstring for the process)."""
    categories = np.asarray(categories, dtype=np.int64)
    features = np.asarray(features, dtype=np.float64)
    n_items = len(categories)
    if features.ndim != 2 or features.shape[0] != n_items:
        raise DataError(f"visual interactions: features must be [n_items={n_items}, d], got {features.shape}")
    n_categories = int(categories.max()) + 1 if n_items else 0
    if n_users < 1 or n_items < 2:
        raise DataError(f"visual interactions: need n_users >= 1 and >= 2 items, got {n_users} and {n_items}")
    if not 1 <= n_favourite <= n_categories:
        raise DataError(f"visual interactions: n_favourite must be in [1, {n_categories}], got {n_favourite}")
    if not 1 <= min_items <= mean_items <= n_items // 2:
        raise DataError(f"visual interactions: need 1 <= min_items <= mean_items <= n_items // 2 = {n_items // 2}, "
                        f"got {min_items} and {mean_items}")
    if not 0 < explore <= 1:
        raise DataError(f"visual interactions: explore must be in (0, 1], got {explore}")
    rng = np.random.default_rng(seed)

    log_popularity = rng.normal(0.0, popularity_sigma, size=n_items)
    z = _visual_space(features, visual_dim)

    sizes = np.bincount(categories, minlength=n_categories).astype(np.float64)
    favourites = np.stack([rng.choice(n_categories, size=n_favourite, replace=False, p=sizes / sizes.sum())
                           for _ in range(n_users)])
    weights = rng.dirichlet(np.ones(n_favourite), size=n_users)
    preference = np.full((n_users, n_categories), explore / n_categories)
    np.add.at(preference, (np.repeat(np.arange(n_users), n_favourite), favourites.ravel()),
              (1 - explore) * weights.ravel())

    members = [np.flatnonzero(categories == c) for c in range(n_categories)]
    taste = np.empty((n_users, z.shape[1]))
    for u in range(n_users):
        pool = np.concatenate([members[c] for c in favourites[u]])
        picks = rng.choice(pool, size=min(taste_items, len(pool)), replace=False)
        taste[u] = z[picks].mean(0) + taste_noise * rng.normal(size=z.shape[1]) / np.sqrt(z.shape[1])
    taste /= np.maximum(np.linalg.norm(taste, axis=1, keepdims=True), 1e-12)

    affinity = (log_popularity[None, :] + category_weight * np.log(preference[:, categories])
                + visual_weight * taste @ z.T)
    counts = np.minimum(min_items + rng.poisson(mean_items - min_items, size=n_users), n_items // 2)
    keys = affinity + rng.gumbel(size=affinity.shape)
    order = np.argsort(-keys, axis=1)
    chosen = np.arange(n_items)[None, :] < counts[:, None]
    users = np.repeat(np.arange(n_users), counts)
    matrix = csr_from_pairs(users, order[chosen], (n_users, n_items))
    return VisualInteractions(matrix, favourites, preference, taste)


def _visual_space(features: np.ndarray, dim: int) -> np.ndarray:
    """Standardized features projected on their top `dim` principal components, unit rows."""
    centred = features - features.mean(0)
    centred /= np.maximum(centred.std(0), 1e-8)
    dim = max(1, min(dim, *centred.shape))
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    z = centred @ vt[:dim].T
    return z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)


@dataclass
class ItemFeatures:
    features: np.ndarray  # float32 [n, feature_dim], the CNN's pooled features
    classes: np.ndarray  # int64 [n], the CNN's top ImageNet class
    key: str  # the cache key: digest of the images, the weights and the extractor config


def item_features(images: torch.Tensor, cnn, cache_dir: Path | None = None, batch_size: int = 64) -> ItemFeatures:
    """Features and classes of an image set from `cnn` (an `EfficientNetLite0`), read from
    `cache_dir/visual-features/<key>.npz` when present, else computed and written there (atomic
    rename, so concurrent workers never read half a file). No cache_dir: computed every time."""
    key = feature_key(images, cnn)
    path = Path(cache_dir) / "visual-features" / f"{key}.npz" if cache_dir is not None else None
    if path is not None and path.is_file():
        try:
            with np.load(path) as entry:
                return ItemFeatures(entry["features"], entry["classes"], key)
        except (OSError, ValueError, KeyError):
            pass  # a damaged entry is only a lost speed-up: recompute and overwrite it
    features, classes = cnn.extract(images, batch_size=batch_size)
    result = ItemFeatures(features.numpy().astype(np.float32), classes.numpy().astype(np.int64), key)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{key[:16]}.", suffix=".tmp")
        try:
            with os.fdopen(handle, "wb") as file:
                np.savez(file, features=result.features, classes=result.classes)
            os.replace(temp, path)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
    return result


def feature_key(images: torch.Tensor, cnn) -> str:
    """sha256 over the image tensor (dtype, shape, bytes), the weights file's bytes and the
    extractor's config (normalization, input size)."""
    digest = hashlib.sha256()
    header = {"version": FEATURE_CACHE_VERSION, "dtype": str(images.dtype), "shape": list(images.shape),
              "config": {k: v for k, v in vars(cnn.config).items() if k != "weights"},
              "architecture": type(cnn).__name__}
    digest.update(json.dumps(header, sort_keys=True, default=str).encode())
    digest.update(images.detach().cpu().contiguous().numpy().tobytes())
    if cnn.weights_path is not None:
        digest.update(_file_digest(Path(cnn.weights_path)).encode())
    else:  # weights set some other way: hash the tensors themselves
        for name, tensor in cnn.state_dict().items():
            digest.update(name.encode())
            digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


# --------------------------------------------------------------------------- as a grid dataset


def _locate_fashion(data_dir: Path) -> list[Path]:
    path = Path(data_dir) / "fashion-images" / "styles.csv"
    if not path.is_file():
        raise DataError(f"{path}: not found (the fashion-images folder with styles.csv and images/)")
    return [path]


def fashion_cnn():
    """The CNN whose features and classes the fashion dataset and the visual cells share."""
    from recsec.models.visual import EfficientNetLite0

    return EfficientNetLite0()


def fashion_world(data_dir: Path, *, limit: int | None = None, cache_dir: Path | None = None):
    """(images, CNN, features) of the fashion items: the dataset's generator and the visual cells
    read the same cached features. Kept per process, so a worker running many cells decodes the
    images and builds the CNN once."""
    from recsec.harness.settings import default_cache_dir

    return _fashion_world(str(Path(data_dir).resolve()), limit, str(cache_dir or default_cache_dir()))


@functools.lru_cache(maxsize=2)
def _fashion_world(data_dir: str, limit: int | None, cache_dir: str):
    images = load_fashion_images(Path(data_dir) / "fashion-images", limit=limit)
    cnn = fashion_cnn()
    return images, cnn, item_features(images.images, cnn, Path(cache_dir))


def load_fashion_interactions(data_dir: Path, *, n_users: int = 1000, mean_items: int = 25, min_items: int = 10,
                              limit: int | None = None, seed: int = 0):
    """The `fashion-images` grid dataset: `generate_visual_interactions` over the real images
    (semi-synthetic users; see the module docstring). Item ids are the products' ids."""
    from recsec.harness.data.loaders import RawData

    images, _, features = fashion_world(data_dir, limit=limit)
    drawn = generate_visual_interactions(images.categories, features.features, n_users=n_users,
                                         mean_items=mean_items, min_items=min_items, seed=seed)
    coo = drawn.matrix.tocoo()
    return RawData(coo.row.astype(np.int64), images.item_ids[coo.col], None, tuple(_locate_fashion(data_dir)))


def _register() -> None:
    from recsec.harness.data.loaders import register_dataset

    register_dataset("fashion-images", locate=_locate_fashion,
                     description="1,000 fashion product images with semi-synthetic users (visual family)"
                     )(load_fashion_interactions)


_register()
