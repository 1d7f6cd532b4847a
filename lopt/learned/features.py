"""Feature helpers shared by per-parameter learned optimizers."""
import jax
import jax.numpy as jnp

TIMESCALES = (1, 3, 10, 30, 100, 300, 1000, 3000, 10000, 30000, 100000)


def tanh_time_features(step: jax.Array, timescales: tuple[float, ...] = TIMESCALES) -> jax.Array:
    """tanh(t / x - 1) for each timescale x: where in training we are, at many scales."""
    return jnp.tanh(step.astype(jnp.float32) / jnp.asarray(timescales, jnp.float32) - 1.0)


def second_moment_scale(features: jax.Array, axes: tuple[int, ...], eps: float = 1e-5) -> jax.Array:
    """Per-feature factor that gives each feature unit second moment over a tensor's `axes`."""
    return jax.lax.rsqrt(eps + jnp.mean(jnp.square(features), axis=axes))


def decay_to_param(decay: jax.Array) -> jax.Array:
    """Decays are learned in log(1 - decay) / 10 space, so steps move timescales smoothly."""
    return jnp.log(1.0 - decay) / 10.0


def param_to_decay(x: jax.Array) -> jax.Array:
    return 1.0 - jnp.exp(10.0 * x)
