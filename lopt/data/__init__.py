"""Datasets: TFDS (the real path), data shipped in installed packages, and synthetic data.

Every source ends as a `Dataset` of device arrays: images at the task's resolution, scaled to
[0, 1] (`DATASETS`), or byte windows of the task's sequence length (`TEXT_DATASETS`, lopt.data.text).
"""
import importlib.util
import os
from collections.abc import Callable
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from lopt.data import text, tfds_source
from lopt.data.dataset import Batch, Dataset, noise_key, sample_batch, sample_split, sample_train
from lopt.data.text import TEXT_DATASETS
from lopt.errors import unknown_choice

__all__ = ["Batch", "Dataset", "DatasetSpec", "SOURCES", "DATASETS", "TEXT_DATASETS", "load", "noise_key",
           "sample_batch", "sample_split", "sample_train"]

SOURCES = ("real", "synthetic")


def _digits(data_dir: str | None, download: bool) -> tuple[np.ndarray, ...]:
    """scikit-learn's 8x8 handwritten digits (1797 images, shipped with the package): every 5th
    image is the test split. Read from the package's CSV file as `load_digits` reads it, without
    importing scikit-learn (a second of the wait before a default run starts)."""
    data = np.loadtxt(_package_file("sklearn", "datasets", "data", "digits.csv.gz"), delimiter=",")
    x = (data[:, :-1].reshape(-1, 8, 8, 1) * (255.0 / 16.0)).round().astype(np.uint8)
    y = data[:, -1].astype(np.int32)
    test = np.arange(len(y)) % 5 == 0
    return x[~test], y[~test], x[test], y[test]


def _package_file(package: str, *parts: str) -> str:
    """The path of a data file inside an installed package, found without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"the {package} package is not installed")
    return os.path.join(spec.submodule_search_locations[0], *parts)


def _tfds(name: str, test_split: str = "test") -> Callable[[str | None, bool], tuple[np.ndarray, ...]]:
    """Loader of TFDS dataset `name`: its train split and `test_split` (our test split)."""
    def load(data_dir: str | None, download: bool) -> tuple[np.ndarray, ...]:
        return (*tfds_source.load_split(name, "train", data_dir, download),
                *tfds_source.load_split(name, test_split, data_dir, download))

    return load


@dataclass(frozen=True)
class DatasetSpec:
    """A known dataset: its native image shape, class count and how to load it as uint8 arrays."""

    shape: tuple[int, int, int]
    num_classes: int
    load_uint8: Callable[[str | None, bool], tuple[np.ndarray, ...]]


DATASETS = {
    "digits": DatasetSpec((8, 8, 1), 10, _digits),
    "cifar10": DatasetSpec((32, 32, 3), 10, _tfds("cifar10")),
    "fashion_mnist": DatasetSpec((28, 28, 1), 10, _tfds("fashion_mnist")),
    # ImageNet downsampled to 16x16 (Chrabaszcz et al. 2017); it has no test split, so its
    # validation split is our test split. Loaded whole: 1.28M train images, ~4 GB as float32.
    "imagenet_resized/16x16": DatasetSpec((16, 16, 3), 1000, _tfds("imagenet_resized/16x16", "validation")),
}


def _to_device(images: np.ndarray, size: int) -> jax.Array:
    """uint8 images -> float32 in [0, 1] at `size`x`size` (bilinear, as tf.image.resize does)."""
    x = jnp.asarray(images, jnp.float32) / 255.0
    if x.shape[1:3] != (size, size):
        x = jax.image.resize(x, (x.shape[0], size, size, x.shape[3]), "bilinear", antialias=False)
    return x


def load(name: str, source: str, size: int, data_dir: str | None = None, download: bool = True,
         synthetic_examples: int = 1024, seed: int = 0) -> Dataset:
    """The dataset `name` from `source` ('real' or 'synthetic') as device arrays; `size` is the
    image side of an image dataset, the sequence length of a text dataset."""
    if name not in DATASETS and name not in TEXT_DATASETS:
        raise unknown_choice("dataset", name, [*DATASETS, *TEXT_DATASETS])
    if source not in SOURCES:
        raise unknown_choice("data.source", source, list(SOURCES))
    if name in TEXT_DATASETS:
        return text.load(TEXT_DATASETS[name], source, size, data_dir, download, synthetic_examples, seed)
    spec = DATASETS[name]
    shape = (size, size, spec.shape[2])
    if source == "synthetic":
        keys = jax.random.split(jax.random.PRNGKey(seed), 4)
        n_test = max(synthetic_examples // 4, 1)
        return Dataset(
            jax.random.uniform(keys[0], (synthetic_examples, *shape)),
            jax.random.randint(keys[1], (synthetic_examples,), 0, spec.num_classes, jnp.int32),
            jax.random.uniform(keys[2], (n_test, *shape)),
            jax.random.randint(keys[3], (n_test,), 0, spec.num_classes, jnp.int32),
        )
    train_x, train_y, test_x, test_y = spec.load_uint8(data_dir, download)
    return Dataset(_to_device(train_x, size), jnp.asarray(train_y, jnp.int32),
                   _to_device(test_x, size), jnp.asarray(test_y, jnp.int32))
