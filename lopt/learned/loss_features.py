"""Training-loss features of the hierarchical learned optimizers, which tell whether optimization
is converging or diverging (the role of VeLO's loss features: Metz et al. 2022, VeLO: Training
versatile learned optimizers by scaling up, App. B.3). The definition below is this module's own.

The state keeps, at each of the decays d in DECAYS = (0.9, 0.99), an exponential moving average
of the losses seen so far and one of their squared deviations: each loss's squared deviation from
the bias-corrected mean of the losses before it (the first loss contributes a zero deviation).
Both are bias-corrected by dividing by 1 - d^n after n losses. One feature per decay is the z-score
of the current loss against the statistics of the previous losses (the current one not included),

    clip((loss - mean) / sqrt(var + 1e-8), -5, 5),

which is 0 for the first two losses (until two previous losses give a variance). The features do
not change when the loss is scaled by a positive factor or offset (up to the 1e-8).
"""
from typing import NamedTuple

import jax
import jax.numpy as jnp

DECAYS = (0.9, 0.99)


class LossStats(NamedTuple):
    mean: jax.Array  # [decays] EMA of the loss (not bias-corrected)
    var: jax.Array  # [decays] EMA of the squared deviation from the previous corrected mean
    count: jax.Array  # type: ignore[assignment]  # losses seen (the name shadows tuple.count)


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
