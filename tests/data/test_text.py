"""Byte-level text data: windows of sentences, the TFDS path, the synthetic Markov text."""
import jax
import numpy as np
import pytest
import tensorflow_datasets as tfds

from lopt import data
from lopt.data import text, tfds_source
from lopt.errors import DataUnavailableError


def test_each_sentence_is_one_window_cropped_or_zero_padded():
    w = text.windows(["ab", "héllo world", b"\x01\x02\x03"], 5)
    assert w.dtype == np.uint8 and w.shape == (3, 5)
    assert bytes(w[0]) == b"ab\0\0\0" and bytes(w[1]) == "héllo".encode()[:5] == b"h\xc3\xa9ll"
    assert bytes(w[2]) == b"\x01\x02\x03\0\0"


def test_lm1b_tfds_path_gives_the_sentence_bytes_as_inputs_and_next_byte_targets():
    with tfds.testing.mock_data(num_examples=7, policy=tfds.testing.MockPolicy.USE_CODE):
        d = data.load("lm1b", "real", 8, data_dir="/nonexistent")
        builder = tfds.builder("lm1b", data_dir="/nonexistent")
        sentences = {s: [r["text"] for r in builder.as_data_source(split=s)] for s in ("train", "test")}
    for (x, y), split in [((d.train_x, d.train_y), "train"), ((d.test_x, d.test_y), "test")]:
        expected = np.zeros((7, 9), np.uint8)
        for i, sentence in enumerate(sentences[split]):
            raw = sentence.encode("utf-8")[:9]
            expected[i, : len(raw)] = list(raw)
        assert x.dtype == np.uint8 and x.shape == (7, 8) and y.shape == (7, 8)
        np.testing.assert_array_equal(np.asarray(x), expected[:, :-1])
        np.testing.assert_array_equal(np.asarray(y), expected[:, 1:])
    assert (np.asarray(d.train_x)[:, 0] != text.PAD).all()  # mock sentences are non-empty


def test_synthetic_text_is_a_fixed_sparse_markov_chain_over_printable_bytes():
    d = data.load("lm1b", "synthetic", 16, synthetic_examples=256, seed=3)
    assert d.train_x.shape == (256, 16) and d.test_x.shape == (64, 16) and d.train_x.dtype == np.uint8
    windows = [np.concatenate([np.asarray(x), np.asarray(y)[:, -1:]], axis=1)
               for x, y in ((d.train_x, d.train_y), (d.test_x, d.test_y))]
    np.testing.assert_array_equal(np.asarray(d.train_y)[:, :-1], np.asarray(d.train_x)[:, 1:])
    successors = {}
    for w in windows:  # train and test share the chain: each byte has at most 4 successors
        assert 32 <= w.min() and w.max() < 127
        for a, b in zip(w[:, :-1].ravel(), w[:, 1:].ravel()):
            successors.setdefault(int(a), set()).add(int(b))
    assert max(len(s) for s in successors.values()) <= text.SYNTHETIC_SUCCESSORS
    assert len(successors) > 80  # the walks visit most of the 95 printable bytes
    again = data.load("lm1b", "synthetic", 16, synthetic_examples=256, seed=3)
    np.testing.assert_array_equal(np.asarray(again.train_x), np.asarray(d.train_x))
    assert not np.array_equal(np.asarray(d.train_x[:64]), np.asarray(d.test_x))


def test_text_batches_are_sampled_in_graph_as_aligned_rows():
    d = data.load("lm1b", "synthetic", 8, synthetic_examples=32)
    x, y = jax.jit(data.sample_split, static_argnums=(2, 3))(d, jax.random.PRNGKey(0), 16, "test")
    assert x.shape == y.shape == (16, 8)
    rows = {bytes(r) for r in np.asarray(d.test_x)}
    assert all(bytes(r) in rows for r in np.asarray(x))
    np.testing.assert_array_equal(np.asarray(y)[:, :-1], np.asarray(x)[:, 1:])


def test_without_tensorflow_missing_data_fails_before_any_download(monkeypatch, tmp_path):
    def download(self, *args, **kwargs):
        raise AssertionError("no download may start")

    monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare", download)
    monkeypatch.setattr(tfds_source, "can_prepare", lambda: False)
    with pytest.raises(DataUnavailableError, match="'lm1b' is not prepared in .* needs TensorFlow"):
        data.load("lm1b", "real", 32, data_dir=str(tmp_path))
