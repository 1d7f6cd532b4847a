"""Flax models of the tasks."""
from typing import Callable, Sequence

import jax
import jax.numpy as jnp
from flax import linen as nn

from lopt.tasks.conv import Conv2D

# Weight initializers a task config can name: flax's default, and Glorot & Bengio (2010)'s uniform
# one that seed 001 C.2 uses for its convnet.
KERNEL_INITS: dict[str, Callable] = {
    "lecun_normal": nn.initializers.lecun_normal(),
    "glorot_uniform": nn.initializers.glorot_uniform(),
}


class MLP(nn.Module):
    """Flatten, ReLU hidden layers, linear outputs (logits, or a reconstruction)."""

    hidden: Sequence[int]
    num_outputs: int
    kernel_init: Callable = KERNEL_INITS["lecun_normal"]

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        x = x.reshape(x.shape[0], -1)
        for width in self.hidden:
            x = nn.relu(nn.Dense(width, kernel_init=self.kernel_init)(x))
        return nn.Dense(self.num_outputs, kernel_init=self.kernel_init)(x)


class ConvNet(nn.Module):
    """3x3 'SAME' ReLU convolutions, global mean pool, linear logits (seed 002 B.2, seed 001 C.2)."""

    channels: Sequence[int]
    strides: Sequence[int]
    num_classes: int
    kernel_size: int = 3
    conv_impl: str = "auto"
    kernel_init: Callable = KERNEL_INITS["lecun_normal"]

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        for width, stride in zip(self.channels, self.strides):
            x = nn.relu(Conv2D(width, self.kernel_size, stride, self.conv_impl, self.kernel_init)(x))
        return nn.Dense(self.num_classes, kernel_init=self.kernel_init)(jnp.mean(x, axis=(1, 2)))
