"""Fraction-of-training features (Metz et al. 2022, VeLO: Training versatile learned optimizers by
scaling up, arXiv:2211.09760, App. B.3): how far a training run is through its length, so a learned
optimizer can learn warm-up and decay schedules tied to the horizon.

The optimizer is told the length when its state is initialized (`Optimizer.init(..., num_steps)`).
The fraction f = step / num_steps enters as tanh(10 (f - c)) at a few points c, each a soft switch
that flips as training passes c. An unknown length (None, 0, or a never-ending problem's `NEVER`)
gives f = 0 throughout: the features then carry no horizon information rather than a wrong one.
"""
import jax
import jax.numpy as jnp

from lopt.schedules import NEVER

POINTS = (0.03, 0.1, 0.2, 0.4, 0.6, 0.8, 0.9, 1.0, 1.1)
NUM_FEATURES = len(POINTS)


def horizon(num_steps: jax.Array | int | None) -> jax.Array:
    """The length to keep in an optimizer state: `num_steps`, or 0 when unknown."""
    n = jnp.asarray(0 if num_steps is None else num_steps, jnp.int32)
    return jnp.where(n < NEVER, jnp.maximum(n, 0), 0)


def fraction(step: jax.Array, length: jax.Array) -> jax.Array:
    """step / length, clipped to [0, 1.5]; 0 where the length is unknown (0)."""
    f = step.astype(jnp.float32) / jnp.maximum(length, 1).astype(jnp.float32)
    return jnp.where(length > 0, jnp.clip(f, 0.0, 1.5), 0.0)


def features(step: jax.Array, length: jax.Array) -> jax.Array:
    """[NUM_FEATURES] soft switches tanh(10 (fraction - c))."""
    return jnp.tanh(10.0 * (fraction(step, length) - jnp.asarray(POINTS, jnp.float32)))
