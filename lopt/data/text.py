"""Byte-level text for language modeling: sentences -> UTF-8 bytes -> fixed-length windows.

As learned_optimization's LM1B byte tasks do, each sentence gives one window: its first
`seq_len + 1` bytes, padded with byte 0 (which UTF-8 text does not contain) when shorter. A window
is split into inputs (bytes 0..seq_len-1) and next-byte targets (bytes 1..seq_len), held as uint8
device arrays, so batches are drawn in-graph by `sample_split` like image rows.
"""
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from lopt.data import tfds_source
from lopt.data.dataset import Dataset

PAD = 0  # the padding byte; positions whose input is PAD are not scored
PRINTABLE = (32, 127)  # synthetic text uses the printable ASCII bytes [32, 127)
SYNTHETIC_SUCCESSORS = 4  # each synthetic byte is followed by one of 4 fixed bytes: entropy <= ln 4


@dataclass(frozen=True)
class TextSpec:
    """A known text dataset: its vocabulary (bytes: 256), how to read its (train, test) sentences
    given a data dir, the download flag and a per-split sentence limit, and that limit for each
    split (the windows are held whole on the device)."""

    vocab_size: int
    load_texts: Callable[[str | None, bool, int, int], tuple[list[bytes], list[bytes]]]
    max_train: int
    max_test: int


def _tfds_text(name: str, test_split: str = "test") -> Callable[..., tuple[list[bytes], list[bytes]]]:
    def load(data_dir: str | None, download: bool, max_train: int, max_test: int):
        return (tfds_source.load_texts(name, "train", data_dir, download, max_train),
                tfds_source.load_texts(name, test_split, data_dir, download, max_test))

    return load


TEXT_DATASETS = {
    # One Billion Word benchmark (Chelba et al. 2013), 30.3M training sentences. The first 2^20
    # (34.6 MB of windows at seq_len 32) are read: 8192 steps of batch 128 before a repeat.
    "lm1b": TextSpec(256, _tfds_text("lm1b"), max_train=2**20, max_test=2**14),
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
        train_texts, test_texts = spec.load_texts(data_dir, download, spec.max_train, spec.max_test)
        train, test = windows(train_texts, seq_len + 1), windows(test_texts, seq_len + 1)
    return Dataset(*_split(train), *_split(test))
