"""Weights of the small MLPs inside learned optimizers, as plain dicts of arrays (theta is a
pytree that PES perturbs)."""
from collections.abc import Sequence

import jax
import jax.numpy as jnp

from lopt.config import check


def init_mlp(key: jax.Array, sizes: Sequence[int]) -> dict[str, jax.Array]:
    """{w0, b0, w1, b1, ...} for layer widths `sizes`: truncated-normal weights scaled by
    1/sqrt(fan_in), zero biases."""
    keys = jax.random.split(key, len(sizes) - 1)
    nn = {}
    for i, (k, fan_in, fan_out) in enumerate(zip(keys, sizes[:-1], sizes[1:])):
        nn[f"w{i}"] = jax.random.truncated_normal(k, -2.0, 2.0, (fan_in, fan_out)) / jnp.sqrt(fan_in)
        nn[f"b{i}"] = jnp.zeros((fan_out,))
    return nn



def check_hidden(hidden_size: int, hidden_layers: int) -> None:
    """Hidden width must be positive; zero hidden layers is a linear read-out."""
    check(hidden_size > 0, "hidden_size", hidden_size, "a positive integer")
    check(hidden_layers >= 0, "hidden_layers", hidden_layers, "a non-negative integer")
