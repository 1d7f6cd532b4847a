"""Flax models of the image-classification tasks."""
from typing import Sequence

import jax
import jax.numpy as jnp
from flax import linen as nn

from lopt.tasks.conv import Conv2D


class MLP(nn.Module):
    """Flatten, ReLU hidden layers, linear logits."""

    hidden: Sequence[int]
    num_classes: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        x = x.reshape(x.shape[0], -1)
        for width in self.hidden:
            x = nn.relu(nn.Dense(width)(x))
        return nn.Dense(self.num_classes)(x)


class ConvNet(nn.Module):
    """3x3 'SAME' ReLU convolutions, global mean pool, linear logits (seed 002 B.2)."""

    channels: Sequence[int]
    strides: Sequence[int]
    num_classes: int
    kernel_size: int = 3
    conv_impl: str = "auto"

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        for width, stride in zip(self.channels, self.strides):
            x = nn.relu(Conv2D(width, self.kernel_size, stride, self.conv_impl)(x))
        return nn.Dense(self.num_classes)(jnp.mean(x, axis=(1, 2)))
