"""Learning-rate schedules of hand-designed optimizers, as optax schedules of the step count."""
from typing import Any

import jax.numpy as jnp
import optax


def warmup_constant_cosine(base_lr: Any, num_steps: int, warmup_fraction: Any, constant_fraction: Any,
                           min_lr_mult: Any) -> optax.Schedule:
    """The NAdamW schedule of Metz et al. 2022, Practical tradeoffs between memory, compute, and
    performance in learned optimizers (arXiv:2203.11860), App. F, taken from Metz et al. 2020, Using a
    thousand optimization tasks to learn hyperparameter search strategies (arXiv:2002.11887): a
    linear warmup from 0 over the first `warmup_fraction` of the `num_steps` steps, then `base_lr`
    held until `constant_fraction` of training (the warmup counts towards it), then a half-cosine
    decay to `min_lr_mult * base_lr` at the last step. Every argument except `num_steps` may be
    traced, so one compiled sweep covers many schedules."""
    total = float(num_steps)
    warmup_steps = warmup_fraction * total
    constant_steps = jnp.maximum(constant_fraction, warmup_fraction) * total
    min_lr = min_lr_mult * base_lr

    def schedule(count: Any) -> Any:
        t = jnp.minimum(jnp.asarray(count, jnp.float32), total)
        progress = jnp.clip((t - constant_steps) / jnp.maximum(total - constant_steps, 1.0), 0.0, 1.0)
        decayed = min_lr + (base_lr - min_lr) * 0.5 * (1.0 + jnp.cos(jnp.pi * progress))
        return jnp.where(t < warmup_steps, base_lr * t / jnp.maximum(warmup_steps, 1.0), decayed)

    return schedule
