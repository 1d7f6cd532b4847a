"""Training-loss features of the hierarchical learned optimizers (seed 004 B.3: they tell whether
optimization is converging or diverging).

The optimizer state keeps exponential moving averages of the loss and of its squared deviation at
a few decays; the features are the current loss as a z-score against each average,
clip((loss - mean) / sqrt(var), -5, 5), as in learned_optimization's RNNMLPLOpt. They are invariant
to the loss's scale and offset, and zero until two losses have been seen (no variance before that).
"""
from typing import NamedTuple

import jax
import jax.numpy as jnp

DECAYS = (0.9, 0.99)


class LossStats(NamedTuple):
    mean: jax.Array  # [decays] EMA of the loss (not bias-corrected)
    var: jax.Array  # [decays] EMA of the squared deviation from the previous corrected mean
    count: jax.Array  # losses seen


def init() -> LossStats:
    zeros = jnp.zeros((len(DECAYS),), jnp.float32)
    return LossStats(zeros, zeros, jnp.zeros((), jnp.int32))


def _corrected(stats: LossStats) -> tuple[jax.Array, jax.Array]:
    """Bias-corrected mean and variance (garbage-free zeros before the first loss)."""
    c = 1.0 - jnp.asarray(DECAYS, jnp.float32) ** stats.count.astype(jnp.float32)
    c = jnp.where(stats.count > 0, c, 1.0)
    return stats.mean / c, stats.var / c


def features(stats: LossStats, loss: jax.Array) -> jax.Array:
    """[decays] z-scores of `loss` against the statistics of the previous losses."""
    mean, var = _corrected(stats)
    z = jnp.clip((loss - mean) * jax.lax.rsqrt(var + 1e-8), -5.0, 5.0)
    return jnp.where(stats.count >= 2, z, 0.0)


def update(stats: LossStats, loss: jax.Array) -> LossStats:
    """The statistics with `loss` included."""
    d = jnp.asarray(DECAYS, jnp.float32)
    mean, _ = _corrected(stats)
    deviation = jnp.where(stats.count > 0, loss - mean, 0.0)
    return LossStats(d * stats.mean + (1 - d) * loss, d * stats.var + (1 - d) * jnp.square(deviation),
                     stats.count + 1)
