"""Byte-level text for language modeling: texts -> UTF-8 bytes -> fixed-length windows.

Each dataset cuts its text into windows of `seq_len + 1` bytes. A sentence dataset, as
learned_optimization's LM1B byte tasks do, gives one window per sentence: its first `seq_len + 1`
bytes, padded with byte 0 (which UTF-8 text does not contain) when shorter. A file dataset
(python_stdlib, lopt.data.stdlib) cuts each file into consecutive windows. A window is split into
inputs (bytes 0..seq_len-1) and next-byte targets (bytes 1..seq_len), held as uint8 device arrays,
so batches are drawn in-graph by `sample_split` like image rows.
"""
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from lopt.data import stdlib, tfds_source
from lopt.data.dataset import Dataset

PAD = 0  # the padding byte; positions whose input is PAD are not scored
PRINTABLE = (32, 127)  # synthetic text uses the printable ASCII bytes [32, 127)
SYNTHETIC_SUCCESSORS = 4  # each synthetic byte is followed by one of 4 fixed bytes: entropy <= ln 4

# (data_dir, download, window length) -> the (train, test) windows, uint8 [N, length] each
WindowLoader = Callable[[str | None, bool, int], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class TextSpec:
    """A known text dataset: its vocabulary (bytes: 256) and how to cut its (train, test) splits
    into uint8 windows [N, length], given a data dir, the download flag and the window length.
    The windows are held whole on the device, so each loader caps the windows of a split."""

    vocab_size: int
    load_windows: WindowLoader


def _tfds_sentences(name: str, max_train: int, max_test: int, test_split: str = "test") -> WindowLoader:
    """Loader of TFDS text dataset `name`: one window per sentence of its first `max_train` train
    and `max_test` `test_split` sentences."""
    def load(data_dir: str | None, download: bool, length: int) -> tuple[np.ndarray, np.ndarray]:
        return (windows(tfds_source.load_texts(name, "train", data_dir, download, max_train), length),
                windows(tfds_source.load_texts(name, test_split, data_dir, download, max_test), length))

    return load


TEXT_DATASETS = {
    # One Billion Word benchmark (Chelba et al. 2013), 30.3M training sentences. The first 2^20
    # (34.6 MB of windows at seq_len 32) are read: 8192 steps of batch 128 before a repeat.
    "lm1b": TextSpec(256, _tfds_sentences("lm1b", max_train=2**20, max_test=2**14)),
    # The Python standard library's source files (lopt.data.stdlib): 2^16 train, 2^13 test windows.
    "python_stdlib": TextSpec(256, stdlib.load_windows),
}


def windows(texts: Iterable[bytes | str], length: int) -> np.ndarray:
    """Each text's first `length` UTF-8 bytes, padded with PAD: uint8 [num_texts, length]."""
    rows = [t.encode("utf-8") if isinstance(t, str) else bytes(t) for t in texts]
    out = np.full((len(rows), length), PAD, np.uint8)
    for i, row in enumerate(rows):
        row = row[:length]
        out[i, : len(row)] = np.frombuffer(row, np.uint8)
    return out


def synthetic_windows(table_key: jax.Array, key: jax.Array, num: int, length: int) -> jax.Array:
    """`num` windows of a random first-order Markov chain over printable ASCII: the chain (each
    byte's SYNTHETIC_SUCCESSORS possible next bytes, equally likely) is fixed by `table_key`, the
    walks by `key`. Learnable text for offline runs: a model can go from ln 256 to about ln 4."""
    k_start, k_steps = jax.random.split(key)
    size = PRINTABLE[1] - PRINTABLE[0]
    successors = jax.random.randint(table_key, (size, SYNTHETIC_SUCCESSORS), 0, size)
    start = jax.random.randint(k_start, (num,), 0, size)
    picks = jax.random.randint(k_steps, (length - 1, num), 0, SYNTHETIC_SUCCESSORS)

    def step(symbol, pick):
        nxt = successors[symbol, pick]
        return nxt, nxt

    _, rest = jax.lax.scan(step, start, picks)
    walk = jnp.concatenate([start[None], rest]).T
    return (walk + PRINTABLE[0]).astype(jnp.uint8)


def _split(w: np.ndarray | jax.Array) -> tuple[jax.Array, jax.Array]:
    """Windows [N, L + 1] -> (inputs, next-byte targets), each uint8 [N, L] on the device."""
    w = jnp.asarray(w, jnp.uint8)
    return w[:, :-1], w[:, 1:]


def load(spec: TextSpec, source: str, seq_len: int, data_dir: str | None, download: bool,
         synthetic_examples: int, seed: int) -> Dataset:
    """Train/test (inputs, targets) of `seq_len` bytes from `spec` (source 'real') or from the
    synthetic Markov text ('synthetic': `synthetic_examples` train windows, a quarter as many test)."""
    if source == "synthetic":
        k_table, k_train, k_test = jax.random.split(jax.random.PRNGKey(seed), 3)
        train: jax.Array | np.ndarray = synthetic_windows(k_table, k_train, synthetic_examples, seq_len + 1)
        test: jax.Array | np.ndarray = synthetic_windows(k_table, k_test, max(synthetic_examples // 4, 1), seq_len + 1)
    else:
        train, test = spec.load_windows(data_dir, download, seq_len + 1)
    return Dataset(*_split(train), *_split(test))
