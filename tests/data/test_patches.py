"""8x8 patches of scikit-learn's sample photographs (lopt.data.patches)."""
import sys

import numpy as np
import pytest
import sklearn.datasets
from sklearn.utils import Bunch

from lopt import data
from lopt.data import patches
from lopt.errors import DataUnavailableError


@pytest.fixture(scope="module")
def raw():
    return patches.load_uint8(None, False)


def test_patches_are_uint8_8x8x3_with_zero_labels_and_load_scaled_to_unit_range(raw):
    train_x, train_y, test_x, test_y = raw
    assert train_x.shape == (8192, 8, 8, 3) and test_x.shape == (2048, 8, 8, 3) and train_x.dtype == np.uint8
    assert train_y.dtype == np.int32 and not train_y.any() and not test_y.any() and len(test_y) == 2048
    assert train_x.std() > 20  # natural image content, not a constant
    d = data.load("sample_patches", "real", 8)
    np.testing.assert_allclose(np.asarray(d.train_x), train_x / 255.0, atol=1e-6)
    np.testing.assert_allclose(np.asarray(d.test_x), test_x / 255.0, atol=1e-6)
    assert data.DATASETS["sample_patches"].shape == (8, 8, 3)


def test_patches_are_deterministic(raw):
    for a, b in zip(patches.load_uint8(None, False), raw):
        np.testing.assert_array_equal(a, b)


def test_train_patches_come_from_the_top_three_quarters_test_patches_from_the_rest(monkeypatch):
    """Photographs whose pixels hold their own row (channels 0-1) and photograph index (channel 2)."""
    rows = np.arange(427)[:, None] * np.ones((1, 640), int)
    photos = [np.stack([rows % 256, rows // 256, np.full_like(rows, i)], -1).astype(np.uint8) for i in range(2)]
    monkeypatch.setattr(sklearn.datasets, "load_sample_images", lambda: Bunch(images=photos))
    train_x, _, test_x, _ = patches.load_uint8(None, False)
    for x, low, high in ((train_x, 0, 320), (test_x, 320, 427)):
        row = x[..., 0] + 256 * x[..., 1].astype(int)
        assert low <= row.min() and row.max() < high
        assert (np.diff(row, axis=1) == 1).all() and (np.diff(row, axis=2) == 0).all()  # whole 8x8 crops
        assert (np.bincount(x[:, 0, 0, 2]) == len(x) // 2).all()  # half of each split from each photograph
    assert np.unique(train_x[:, 0, 0, 0]).size > 200  # positions spread over the region's rows


def test_synthetic_patches_have_the_shape_and_zero_labels():
    d = data.load("sample_patches", "synthetic", 8, synthetic_examples=32)
    assert d.train_x.shape == (32, 8, 8, 3) and d.test_x.shape == (8, 8, 8, 3)
    assert not np.asarray(d.train_y).any() and 0.0 <= float(d.train_x.min()) and float(d.train_x.max()) <= 1.0


def test_missing_pillow_is_named_with_its_pip_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "PIL", None)
    with pytest.raises(DataUnavailableError, match="Dataset 'sample_patches' needs the Pillow package, which is not "
                                                   "installed. Install it with `pip install 'Pillow'`"):
        data.load("sample_patches", "real", 8)
