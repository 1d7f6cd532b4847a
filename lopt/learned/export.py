"""Export a learned optimizer with fixed meta-parameters as an optax transformation.

The result is an `optax.GradientTransformationExtraArgs`: `update(grads, state, params, loss=...)`
returns updates for `optax.apply_updates`, so a trained optimizer drops into any optax training
loop. It needs `params` (learned optimizers look at parameter values) and takes the loss as an
extra argument (0 when not given; small_fc_lopt does not use it). `num_steps`, the length of the
training it will run, feeds the optimizers with fraction-of-training inputs (hypernet).
"""
from typing import Any

import jax
import jax.numpy as jnp
import optax


def as_optax(lopt: Any, theta: Any, num_steps: int | None = None) -> optax.GradientTransformationExtraArgs:
    """`lopt` with meta-parameters `theta` as an optax transformation for a training of `num_steps`
    updates (None: unknown)."""

    def init(params):
        return lopt.init(theta, params, num_steps)

    def update(grads, state, params=None, *, loss=None, **extra_args):
        if params is None:
            raise ValueError("A learned optimizer needs the parameters: call update(grads, state, params).")
        loss = jnp.asarray(0.0 if loss is None else loss, jnp.float32)
        new_params, state = lopt.update(theta, state, params, grads, loss)
        return jax.tree_util.tree_map(jnp.subtract, new_params, params), state

    return optax.GradientTransformationExtraArgs(init, update)
