"""Celo's training-loss features (Moudgil, Knyazev, Lajoie, Belilovsky 2025, Celo: Training
Versatile Learned Optimizers on a Compute Diet, TMLR, arXiv:2501.12670; the `BufferLossAccumulators`
of its code, github.com/amoudgl/celo, reproduced here formula for formula). Not the z-scores of
`loss_features`: these say where the recent loss stands between its running minimum and its
longer-horizon average.

The state keeps exponential moving averages of the training loss at NUM_DECAYS decays
d_k = exp(-1 / h_k), their half-lives h_k log-spaced from 10 to the length of the training
(`logspace(1, log10(num_steps), 10)`), and the running minimum of each bias-corrected average. Each
loss is first clipped at twice the largest bias-corrected average so far (the first loss: at twice
itself). NUM_DECAYS - 1 features compare consecutive averages: with m_k the bias-corrected average
at decay k and r_k its running minimum,

    clip((m_k - r_k) / max(1e-8, m_{k+1} - r_k) - 1, -1, 1),

which is 0 for the first 2 losses. Decreasing losses keep every average at its minimum (feature -1);
a loss that rises above the minimum moves the features towards 0 and above.

As in the reference, the average before an update is bias-corrected with the count after it
(1 - d^(t+1) for the clipping threshold), and an unknown training length (0) stands for
UNKNOWN_LENGTH steps (the reference always knows it).
"""
from typing import NamedTuple

import jax
import jax.numpy as jnp

NUM_DECAYS = 10
NUM_FEATURES = NUM_DECAYS - 1
UNKNOWN_LENGTH = 1000  # the horizon of the half-lives when the training's length is unknown
_NO_MIN = 999999999999.0  # the running minimum before any loss


class LossBuffer(NamedTuple):
    means: jax.Array  # [NUM_DECAYS] EMAs of the (clipped) loss, not bias-corrected
    running_min: jax.Array  # [NUM_DECAYS] running minimum of the bias-corrected EMAs
    decays: jax.Array  # [NUM_DECAYS]
    count: jax.Array  # type: ignore[assignment]  # losses seen (the name shadows tuple.count)


def decays(num_steps: jax.Array) -> jax.Array:
    """exp(-1 / h) for half-lives h log-spaced in [10, num_steps] (UNKNOWN_LENGTH when 0)."""
    n = jnp.where(num_steps > 0, num_steps, UNKNOWN_LENGTH).astype(jnp.float32)
    half_lives = 10.0 ** jnp.linspace(1.0, jnp.log10(n), NUM_DECAYS)
    return jnp.exp(-1.0 / half_lives)


def init(num_steps: jax.Array) -> LossBuffer:
    """An empty buffer for a training of `num_steps` updates (0: unknown)."""
    zeros = jnp.zeros((NUM_DECAYS,), jnp.float32)
    return LossBuffer(zeros, jnp.full((NUM_DECAYS,), _NO_MIN, jnp.float32), decays(num_steps),
                      jnp.zeros((), jnp.int32))


def update(buf: LossBuffer, loss: jax.Array) -> LossBuffer:
    """The buffer with `loss` included."""
    d, t = buf.decays, buf.count
    largest = jnp.where(t == 0, loss, jnp.max(buf.means / (1.0 - d ** (t + 1))))
    loss = jnp.minimum(jnp.abs(largest) * 2.0, loss)
    means = buf.means * d + loss * (1.0 - d)
    return LossBuffer(means, jnp.minimum(buf.running_min, means / (1.0 - d ** (t + 1))), d, t + 1)


def features(buf: LossBuffer) -> jax.Array:
    """[NUM_FEATURES] features of a buffer that has seen at least one loss."""
    corrected = buf.means / (1.0 - buf.decays ** buf.count)
    low = buf.running_min[:-1]
    f = (corrected[:-1] - low) / jnp.maximum(1e-8, corrected[1:] - low) - 1.0
    return jnp.where(buf.count <= 2, 0.0, jnp.clip(f, -1.0, 1.0))
