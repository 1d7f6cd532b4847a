"""The per-tensor LSTM of the hierarchical learned optimizers (nn_adam, rnn_mlp_lopt, hypernet).

One flax LSTM cell whose weights (in theta) are shared by all tensors of the trained model; its
carry (c, h) has one row per tensor and lives in the optimizer state, and each step runs it once on
a [num tensors, inputs] batch of per-tensor features. The initial carry is zeros.
"""
from collections.abc import Sequence
from typing import Any, cast

import flax.linen as nn
import jax
import jax.numpy as jnp

from lopt.learned import loss_features
from lopt.learned.features import NUM_TENSOR_STATISTICS, TIMESCALES, tanh_time_features, tensor_statistics

Carry = tuple[jax.Array, jax.Array]  # (c, h): [num tensors, size] each; h is the cell's output


def zero_carry(num_tensors: int, size: int) -> Carry:
    zeros = jnp.zeros((num_tensors, size), jnp.float32)
    return zeros, zeros


def init(key: jax.Array, size: int, num_inputs: int) -> Any:
    """LSTM weights for `num_inputs` inputs and `size` units: input kernels (4 * inputs * size) and
    recurrent kernels with biases (4 * (size * size + size))."""
    return nn.LSTMCell(size).init(key, zero_carry(1, size), jnp.zeros((1, num_inputs)))["params"]


def step(params: Any, carry: Carry, inputs: jax.Array) -> tuple[Carry, jax.Array]:
    """One LSTM step of every tensor: the new carry and the outputs [num tensors, size]."""
    return cast(tuple[Carry, jax.Array], nn.LSTMCell(carry[0].shape[-1]).apply({"params": params}, carry, inputs))


NUM_INPUTS = NUM_TENSOR_STATISTICS + len(TIMESCALES) + len(loss_features.DECAYS)


def inputs(tensors: Sequence[tuple[jax.Array, jax.Array, jax.Array, jax.Array]], iteration: jax.Array,
           loss_feats: jax.Array) -> jax.Array:
    """The LSTM inputs of rnn_mlp_lopt and hypernet, [num tensors, NUM_INPUTS]: each tensor's
    statistics of its (parameters, gradient, momentum, second moment), then the tanh time features of
    the step count and the loss features, shared by all tensors."""
    shared = jnp.concatenate([tanh_time_features(iteration), loss_feats])
    return jnp.stack([jnp.concatenate([jnp.stack(tensor_statistics(*t)), shared]) for t in tensors])
