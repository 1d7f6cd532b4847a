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


def init_haiku_style(key: jax.Array, size: int, num_inputs: int) -> Any:
    """`init`'s weights drawn as haiku's hk.LSTM draws its own, for optimizers defined with it (Celo).

    hk.LSTM computes its four gates with one Linear over [inputs, h] (a truncated normal kernel with
    standard deviation 1/sqrt(num_inputs + size), zero bias) and adds a constant 1 to the forget
    gate's pre-activation inside the sigmoid; flax's LSTMCell has a kernel per gate and input kind
    (their order in haiku's split, i g f o, does not matter: each gate is its own block) and no
    forget offset. The two are one function family: haiku's cell with bias b is flax's with the
    forget bias b_f + 1. So every block is drawn from haiku's distribution, and the forget bias
    starts at 1. Because the offset is a translation of one bias, ES perturbations and gradients
    are the same in either parameterization."""
    std = 1.0 / jnp.sqrt(num_inputs + size)
    keys = iter(jax.random.split(key, 8))
    params = {}
    for gate in "ifgo":
        params[f"i{gate}"] = {"kernel": std * jax.random.truncated_normal(next(keys), -2.0, 2.0, (num_inputs, size))}
        params[f"h{gate}"] = {"kernel": std * jax.random.truncated_normal(next(keys), -2.0, 2.0, (size, size)),
                              "bias": jnp.full((size,), 1.0 if gate == "f" else 0.0)}
    return params


def mix_tensors(mix_in: Any, mix_max: Any, x: jax.Array) -> jax.Array:
    """VeLO's cross-tensor mixing layer on per-tensor inputs `x` [num tensors, inputs]:
    W x + b + max over tensors of relu(W' x + b') (`mix_in` = {w, b}, `mix_max` = {w', b'}), so each
    tensor's LSTM input also sees the others (Metz et al. 2022, VeLO: Training versatile learned
    optimizers by scaling up, arXiv:2211.09760, App. B)."""
    mixed = jax.nn.relu(x @ mix_max["w"] + mix_max["b"])
    return x @ mix_in["w"] + mix_in["b"] + jnp.max(mixed, axis=0)


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
