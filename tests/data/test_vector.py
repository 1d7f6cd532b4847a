"""Vector datasets (lopt.data.vector): scikit-learn's bundled tables and the generated MNIST-1D."""
import random
import sys

import numpy as np
import pytest
import sklearn.datasets

from lopt import data
from lopt.errors import ConfigError, DataUnavailableError

TABLES = {"breast_cancer": ((30,), 2), "wine": ((13,), 3), "diabetes": ((10,), 0)}  # shape, classes (0: regression)


@pytest.fixture(scope="module")
def mnist1d():
    return data.load("mnist1d", "real", 40)


def test_mnist1d_is_the_generators_default_dataset_as_one_channel_signals(mnist1d):
    from mnist1d.data import get_dataset_args, make_dataset

    reference = make_dataset(get_dataset_args())
    assert mnist1d.train_x.shape == (4000, 40, 1) and mnist1d.test_x.shape == (1000, 40, 1)
    assert mnist1d.train_x.dtype == np.float32 and mnist1d.train_y.dtype == np.int32
    np.testing.assert_allclose(np.asarray(mnist1d.train_x)[..., 0], reference["x"], rtol=1e-6)
    np.testing.assert_allclose(np.asarray(mnist1d.test_x)[..., 0], reference["x_test"], rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(mnist1d.train_y), reference["y"])
    np.testing.assert_array_equal(np.asarray(mnist1d.test_y), reference["y_test"])
    assert set(np.unique(mnist1d.train_y)) == set(range(10))


def test_mnist1d_is_deterministic_and_leaves_the_global_rngs_alone(mnist1d):
    np.random.seed(123)
    random.seed(123)
    expected = np.random.rand(), random.random()
    np.random.seed(123)
    random.seed(123)
    again = data.load("mnist1d", "real", 40)  # the generator seeds numpy's and Python's global RNGs with 42
    assert (np.random.rand(), random.random()) == expected
    for a, b in zip(again, mnist1d):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.parametrize("name", TABLES)
def test_tables_split_every_fifth_row_and_standardize_with_train_statistics(name):
    shape, classes = TABLES[name]
    table = getattr(sklearn.datasets, f"load_{name}")()
    test = np.arange(len(table.target)) % 5 == 0
    d = data.load(name, "real", 0)
    assert d.train_x.shape == (int((~test).sum()), *shape) and d.test_x.shape == (int(test.sum()), *shape)
    assert d.train_x.dtype == np.float32
    mean, std = table.data[~test].mean(0), table.data[~test].std(0)
    np.testing.assert_allclose(np.asarray(d.test_x), (table.data[test] - mean) / std, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.asarray(d.train_x).mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(np.asarray(d.train_x).std(0), 1, rtol=1e-4)
    assert abs(np.asarray(d.test_x).mean()) > 1e-4  # the test split's own statistics are not used
    if classes:
        assert d.train_y.dtype == np.int32 and set(np.unique(d.train_y)) == set(range(classes))
        np.testing.assert_array_equal(np.asarray(d.test_y), table.target[test])
    else:
        y_mean, y_std = table.target[~test].mean(), table.target[~test].std()
        assert d.train_y.dtype == np.float32 and float(np.mean(np.asarray(d.train_y) ** 2)) == pytest.approx(1, rel=1e-4)
        np.testing.assert_allclose(np.asarray(d.test_y), (table.target[test] - y_mean) / y_std, rtol=1e-5, atol=1e-5)
    again = data.load(name, "real", 0)
    np.testing.assert_array_equal(np.asarray(again.train_x), np.asarray(d.train_x))


@pytest.mark.parametrize("name, shape, classes", [("mnist1d", (40, 1), 10), *((n, *v) for n, v in TABLES.items())])
def test_synthetic_vectors_have_the_dataset_shapes_and_kind_of_target(name, shape, classes):
    d = data.load(name, "synthetic", 0, synthetic_examples=64, seed=1)
    assert d.train_x.shape == (64, *shape) and d.test_x.shape == (16, *shape) and d.train_x.dtype == np.float32
    assert d.train_y.shape == (64,) and d.test_y.shape == (16,)
    if classes:
        assert d.train_y.dtype == np.int32 and 0 <= int(d.train_y.min()) and int(d.train_y.max()) < classes
    else:
        assert d.train_y.dtype == np.float32 and float(np.std(np.asarray(d.train_y))) > 0.5


@pytest.mark.parametrize("name, modules, message", [
    ("mnist1d", ("mnist1d", "mnist1d.data"), "needs the mnist1d package, which is not installed. Install it with `pip install 'mnist1d>=0.0.2'`"),
    ("wine", ("sklearn", "sklearn.datasets"), "needs the scikit-learn package, which is not installed. Install it with `pip install 'scikit-learn'`"),
])
def test_a_missing_package_is_named_with_its_pip_command(monkeypatch, name, modules, message):
    for module in modules:
        monkeypatch.setitem(sys.modules, module, None)  # `import module` now fails as if not installed
    with pytest.raises(DataUnavailableError) as err:
        data.load(name, "real", 0)
    assert f"Dataset {name!r} {message}" in str(err.value) and "data.source=synthetic" in str(err.value)
    assert data.load(name, "synthetic", 0, synthetic_examples=8).train_x.shape[0] == 8  # no package needed


def test_unknown_dataset_lists_the_vector_datasets_too():
    with pytest.raises(ConfigError, match="Unknown dataset 'iris'. Valid choices: .*breast_cancer, cifar10, diabetes, "
                                          ".*mnist1d, python_stdlib, sample_patches, wine"):
        data.load("iris", "real", 0)
