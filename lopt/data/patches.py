"""Square patches of the two photographs scikit-learn ships (china.jpg and flower.jpg, uint8
427x640x3 each, read with Pillow): a small natural-image dataset for autoencoders, offline.

The patches are cut at positions drawn by a fixed-seed generator. Train patches lie in the top
3/4 of each photograph's rows, test patches in the bottom 1/4, so no test pixel is seen in
training. The photographs have no classes: every label is 0.
"""
import numpy as np

from lopt.data.packages import require

SIZE = 8  # patch side
NUM_TRAIN, NUM_TEST = 8192, 2048  # split evenly between the two photographs
SEED = 0


def crops(image: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """`count` SIZE x SIZE patches of `image` [H, W, C] with top-left corners uniform over the
    positions where a patch fits: [count, SIZE, SIZE, C]."""
    rows = rng.integers(0, image.shape[0] - SIZE + 1, count)[:, None, None] + np.arange(SIZE)[:, None]
    cols = rng.integers(0, image.shape[1] - SIZE + 1, count)[:, None, None] + np.arange(SIZE)
    return image[rows, cols]


def train_rows(image: np.ndarray) -> int:
    """The number of top rows of `image` that train patches are cut from."""
    return image.shape[0] * 3 // 4


def load_uint8(data_dir: str | None, download: bool) -> tuple[np.ndarray, ...]:
    """Train patches, their labels, test patches, their labels (uint8 [N, SIZE, SIZE, 3], int32
    zeros); the photographs ship with scikit-learn, so `data_dir` and `download` are unused."""
    require("PIL", "Pillow", "sample_patches")
    images = require("sklearn.datasets", "scikit-learn", "sample_patches").load_sample_images().images
    rng = np.random.default_rng(SEED)
    train = np.concatenate([crops(im[: train_rows(im)], NUM_TRAIN // len(images), rng) for im in images])
    test = np.concatenate([crops(im[train_rows(im):], NUM_TEST // len(images), rng) for im in images])
    return train, np.zeros(len(train), np.int32), test, np.zeros(len(test), np.int32)
