import jax
import numpy as np
import pytest
import tensorflow_datasets as tfds

from lopt import data
from lopt.data import tfds_source
from lopt.errors import ConfigError, DataUnavailableError


def test_synthetic_has_the_task_shapes():
    d = data.load("cifar10", "synthetic", 16, synthetic_examples=40)
    assert d.train_x.shape == (40, 16, 16, 3) and d.test_x.shape == (10, 16, 16, 3)
    assert d.train_y.dtype == np.int32 and 0 <= int(d.train_y.min()) and int(d.train_y.max()) < 10
    assert 0.0 <= float(d.train_x.min()) and float(d.train_x.max()) <= 1.0


def test_digits_ship_with_scikit_learn():
    from sklearn.datasets import load_digits

    d = data.load("digits", "real", 8)
    assert d.train_x.shape == (1437, 8, 8, 1) and d.test_x.shape == (360, 8, 8, 1)
    assert float(d.train_x.max()) == 1.0 and set(np.unique(d.train_y)) == set(range(10))
    reference = load_digits()  # lopt reads the package's file without importing scikit-learn: same images
    test = np.arange(1797) % 5 == 0
    expected = np.round(reference.images[test] * (255.0 / 16.0)) / 255.0  # stored as uint8 like every dataset
    np.testing.assert_allclose(np.asarray(d.test_x)[..., 0], expected, atol=1e-6)
    np.testing.assert_array_equal(np.asarray(d.train_y), reference.target[~test])


def test_sample_batch_draws_rows_of_the_split():
    d = data.load("digits", "real", 8)
    x, y = jax.jit(data.sample_train, static_argnums=2)(d, jax.random.PRNGKey(0), 16)
    assert x.shape == (16, 8, 8, 1)
    flat = np.asarray(d.train_x).reshape(len(d.train_x), -1)
    for xi, yi in zip(np.asarray(x).reshape(16, -1), np.asarray(y)):
        rows = np.flatnonzero((flat == xi).all(axis=1))
        assert len(rows) and yi in np.asarray(d.train_y)[rows]


def test_tfds_path_reads_prepared_data_and_resizes():
    with tfds.testing.mock_data(num_examples=12, policy=tfds.testing.MockPolicy.USE_CODE):
        d = data.load("cifar10", "real", 16, data_dir="/nonexistent")
    assert d.train_x.shape == (12, 16, 16, 3) and d.test_x.shape == (12, 16, 16, 3)
    assert d.train_x.dtype == np.float32 and float(d.train_x.max()) <= 1.0


def test_tfds_resize_is_the_2x2_mean_like_tf_image_resize():
    images = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    out = np.asarray(data._to_device(images, 16))
    expected = images.astype(np.float32).reshape(2, 16, 2, 16, 2, 3).mean(axis=(2, 4)) / 255
    np.testing.assert_allclose(out, expected, atol=1e-6)


@pytest.mark.parametrize("name,size", [("cifar10", 16), ("lm1b", 32)])  # images and text
def test_tfds_offline_gives_one_clear_paragraph(monkeypatch, tmp_path, name, size):
    def offline(self, *args, **kwargs):
        raise ConnectionError("Failed to resolve host\nmore lines")

    monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare", offline)
    with pytest.raises(DataUnavailableError) as err:
        data.load(name, "real", size, data_dir=str(tmp_path))
    msg = str(err.value)
    assert f"'{name}' is not prepared in" in msg and str(tmp_path) in msg
    assert "ConnectionError: Failed to resolve host" in msg and "more lines" not in msg
    assert "data.source=synthetic" in msg and "TFDS_DATA_DIR" in msg and f"tfds build {name}" in msg


def test_tfds_no_download_says_so(tmp_path):
    with pytest.raises(DataUnavailableError, match="data.download=false"):
        tfds_source.load_split("fashion_mnist", "train", str(tmp_path), download=False)


def test_unknown_source_lists_choices():
    with pytest.raises(ConfigError, match="Unknown data.source 'web'. Valid choices: real, synthetic"):
        data.load("digits", "web", 8)


def test_imagenet16_reads_train_and_validation_through_tfds():
    with tfds.testing.mock_data(num_examples=6, policy=tfds.testing.MockPolicy.USE_CODE):
        d = data.load("imagenet_resized/16x16", "real", 16, data_dir="/nonexistent")
    assert d.train_x.shape == (6, 16, 16, 3) and d.test_x.shape == (6, 16, 16, 3)
    assert 0.0 <= float(d.train_x.min()) and float(d.train_x.max()) <= 1.0
    assert 0 <= int(d.train_y.min()) and int(d.train_y.max()) < 1000


def test_imagenet16_offline_gives_one_clear_paragraph(monkeypatch, tmp_path):
    def offline(self, *args, **kwargs):
        raise ConnectionError("Failed to resolve host")

    monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare", offline)
    with pytest.raises(DataUnavailableError, match="'imagenet_resized/16x16' is not prepared in"):
        data.load("imagenet_resized/16x16", "real", 16, data_dir=str(tmp_path))


def test_imagenet16_synthetic_has_its_shapes_and_classes():
    d = data.load("imagenet_resized/16x16", "synthetic", 16, synthetic_examples=4000)
    assert d.train_x.shape == (4000, 16, 16, 3) and int(d.train_y.max()) > 900
