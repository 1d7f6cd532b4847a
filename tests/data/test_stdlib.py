"""Byte windows of the Python standard library's source files (lopt.data.stdlib, `python_stdlib`)."""
import sysconfig
import zlib
from pathlib import Path

import numpy as np
import pytest

from lopt import data
from lopt.data import stdlib

ROOT = Path(sysconfig.get_paths()["stdlib"])


@pytest.fixture(scope="module")
def files():
    return stdlib.source_files(ROOT)


@pytest.fixture(scope="module")
def loaded():
    return data.load("python_stdlib", "real", 32)


def _blob(paths):
    """The files' bytes, joined by a byte no window can span (0 does not occur in the sources)."""
    return b"\0".join((ROOT / p).read_bytes() for p in paths)


def test_files_are_the_stdlibs_modules_and_packages_in_sorted_order(files):
    assert files == sorted(files) and len(files) > 500 and all(p.endswith(".py") for p in files)
    assert {"os.py", "json/__init__.py", "json/decoder.py", "email/mime/text.py"} <= set(files)
    assert not any("site-packages" in p for p in files)
    for path in files:  # every directory on the way is a package
        parts = path.split("/")[:-1]
        assert all((ROOT.joinpath(*parts[: i + 1]) / "__init__.py").is_file() for i in range(len(parts)))


def test_a_tenth_of_the_files_by_the_crc_of_their_path_are_the_test_split(files):
    test = [p for p in files if stdlib.is_test(p)]
    assert test == [p for p in files if zlib.crc32(p.encode()) % 10 == 0]
    assert 0.05 < len(test) / len(files) < 0.15


def test_windows_are_capped_aligned_and_cut_from_their_splits_files(loaded, files):
    assert loaded.train_x.shape == (stdlib.MAX_TRAIN, 32) and loaded.test_x.shape == (stdlib.MAX_TEST, 32)
    assert loaded.train_x.dtype == np.uint8 and loaded.test_y.shape == (stdlib.MAX_TEST, 32)
    for x, y, test in ((loaded.train_x, loaded.train_y, False), (loaded.test_x, loaded.test_y, True)):
        x, y = np.asarray(x), np.asarray(y)
        np.testing.assert_array_equal(y[:, :-1], x[:, 1:])
        windows = np.concatenate([x, y[:, -1:]], axis=1)  # the 33 bytes of each window
        split = [p for p in files if stdlib.is_test(p) == test]
        blob = _blob(split)
        assert all(bytes(w) in blob for w in windows[:: len(windows) // 64])
        # spread over the whole split: the last window is from its last files, not its first
        assert bytes(windows[-1]) in _blob(split[-len(split) // 10:])
        assert bytes(windows[-1]) not in _blob(split[: len(split) // 2])


def test_files_are_cut_into_consecutive_windows_and_capped_evenly():
    np.testing.assert_array_equal(stdlib.cut(b"abcdefgh", 3), [list(b"abc"), list(b"def")])
    assert stdlib.cut(b"ab", 3).shape == (0, 3)
    np.testing.assert_array_equal(stdlib.spread(np.arange(10)[:, None], 4)[:, 0], [0, 2, 5, 7])
    assert len(stdlib.spread(np.arange(3)[:, None], 4)) == 3


def test_windows_are_deterministic(loaded):
    train, test = stdlib.load_windows(None, False, 33)
    np.testing.assert_array_equal(train[:, :-1], np.asarray(loaded.train_x))
    np.testing.assert_array_equal(test[:, 1:], np.asarray(loaded.test_y))


def test_synthetic_stdlib_text_has_the_window_shape():
    d = data.load("python_stdlib", "synthetic", 16, synthetic_examples=64)
    assert d.train_x.shape == (64, 16) and d.test_x.shape == (16, 16) and d.train_x.dtype == np.uint8
