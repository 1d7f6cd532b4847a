"""Device-resident datasets and the in-graph batch sampler."""
from typing import NamedTuple

import jax
import jax.numpy as jnp

Batch = tuple[jax.Array, jax.Array]


class Dataset(NamedTuple):
    """Train and test splits as device arrays: images float32 [N, H, W, C] in [0, 1] and labels int32
    [N], byte inputs and next-byte targets uint8 [N, L] (lopt.data.text), or rows [N, F] and signals
    [N, L, C] float32 with int32 labels or float32 regression targets [N] (lopt.data.vector).

    A Dataset is passed to compiled functions as an argument (never closed over), so it is not
    baked into the executable as a constant.
    """

    train_x: jax.Array
    train_y: jax.Array
    test_x: jax.Array
    test_y: jax.Array


def sample_batch(x: jax.Array, y: jax.Array, key: jax.Array, batch_size: int) -> Batch:
    """Draw `batch_size` examples uniformly with replacement, inside compiled code."""
    idx = jax.random.randint(key, (batch_size,), 0, x.shape[0])
    return jnp.take(x, idx, axis=0), jnp.take(y, idx, axis=0)


def sample_train(data: Dataset, key: jax.Array, batch_size: int) -> Batch:
    return sample_batch(data.train_x, data.train_y, key, batch_size)


def sample_split(data: Dataset, key: jax.Array, batch_size: int, split: str = "train") -> Batch:
    """A batch of the "train" or "test" split."""
    if split == "train":
        return sample_train(data, key, batch_size)
    return sample_batch(data.test_x, data.test_y, key, batch_size)


def noise_key(data: None, key: jax.Array, batch_size: int, split: str = "train") -> jax.Array:
    """The batch of a dataset-free task (its data is None): the key itself, from which its loss
    draws any noise. Both splits are the same distribution."""
    return key
