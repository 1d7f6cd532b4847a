"""Flax models of the tasks."""
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import jax
import jax.numpy as jnp
from flax import linen as nn

from lopt.config import check
from lopt.tasks.conv import IMPLS, Conv1D, Conv2D

# Weight initializers a task config can name: flax's default, and Glorot & Bengio (2010)'s uniform
# one that Metz et al. 2018, Learned optimizers that outperform SGD on wall-clock and test loss
# (arXiv:1810.10180), App. C.2 uses for its convnet.
KERNEL_INITS: dict[str, Callable] = {
    "lecun_normal": nn.initializers.lecun_normal(),
    "glorot_uniform": nn.initializers.glorot_uniform(),
}

# Hidden-layer nonlinearities a task config can name (`activation`); relu is every shipped task's.
ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "relu": nn.relu, "tanh": jnp.tanh, "gelu": nn.gelu, "swish": nn.swish,
}


@dataclass(frozen=True, kw_only=True)
class NetworkConfig:
    """The network fields every task config with an MLP or a convnet shares (keyword-only: a
    task's own fields come first), and their checks."""

    hidden: tuple[int, ...] = ()
    channels: tuple[int, ...] = ()
    strides: tuple[int, ...] = ()
    conv_impl: str = "auto"
    kernel_init: str = "lecun_normal"
    activation: str = "relu"
    init_scale: float = 1.0  # every initial weight multiplied by this (tasks.base.scaled_init)
    loss_clip_factor: float = 1.5

    def __post_init__(self):
        widths = self.hidden + self.channels + self.strides
        check(all(w > 0 for w in widths), "hidden/channels/strides", widths, "positive integers")
        check(len(self.channels) == len(self.strides), "strides", self.strides, "a list as long as channels")
        check(self.conv_impl in IMPLS, "conv_impl", self.conv_impl, f"one of {list(IMPLS)}")
        check(self.kernel_init in KERNEL_INITS, "kernel_init", self.kernel_init, f"one of {list(KERNEL_INITS)}")
        check(self.activation in ACTIVATIONS, "activation", self.activation, f"one of {list(ACTIVATIONS)}")
        check(self.init_scale > 0, "init_scale", self.init_scale, "positive")
        check(self.loss_clip_factor > 0, "loss_clip_factor", self.loss_clip_factor, "positive")


class MLP(nn.Module):
    """Flatten, hidden layers (ReLU unless `activation` says otherwise), linear outputs (logits, or
    a reconstruction)."""

    hidden: Sequence[int]
    num_outputs: int
    kernel_init: Callable = KERNEL_INITS["lecun_normal"]
    activation: Callable[[jax.Array], jax.Array] = nn.relu

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        x = x.reshape(x.shape[0], -1)
        for width in self.hidden:
            x = self.activation(nn.Dense(width, kernel_init=self.kernel_init)(x))
        return nn.Dense(self.num_outputs, kernel_init=self.kernel_init)(x)


class ConvNet(nn.Module):
    """3x3 'SAME' convolutions (ReLU unless `activation` says otherwise), global mean pool, linear
    logits (Metz et al. 2022, Practical tradeoffs between memory, compute, and performance in learned
    optimizers, App. B.2; Metz et al. 2018, App. C.2). On signals [N, L, C] instead of images
    [N, H, W, C], the convolutions are 1-D, `kernel_size` wide, and the pool is over positions."""

    channels: Sequence[int]
    strides: Sequence[int]
    num_classes: int
    kernel_size: int = 3
    conv_impl: str = "auto"
    kernel_init: Callable = KERNEL_INITS["lecun_normal"]
    activation: Callable[[jax.Array], jax.Array] = nn.relu

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        conv = Conv1D if x.ndim == 3 else Conv2D
        for width, stride in zip(self.channels, self.strides):
            x = self.activation(conv(width, self.kernel_size, stride, self.conv_impl, self.kernel_init)(x))
        return nn.Dense(self.num_classes, kernel_init=self.kernel_init)(jnp.mean(x, axis=tuple(range(1, x.ndim - 1))))


class LSTMLanguageModel(nn.Module):
    """Token embedding, one LSTM layer from a learned initial state, linear next-token logits
    (learned_optimization's TeacherForcedRNNLM with an LSTM core). Tokens [B, L] -> logits [B, L, V]."""

    vocab_size: int
    embed_dim: int
    hidden: int

    @nn.compact
    def __call__(self, tokens: jax.Array) -> jax.Array:
        x = nn.Embed(self.vocab_size, self.embed_dim)(tokens.astype(jnp.int32))
        initial = (self.param("initial_c", nn.initializers.zeros, (self.hidden,)),
                   self.param("initial_h", nn.initializers.zeros, (self.hidden,)))
        carry = tuple(jnp.broadcast_to(c, (tokens.shape[0], self.hidden)) for c in initial)
        x = nn.RNN(nn.OptimizedLSTMCell(self.hidden))(x, initial_carry=carry)
        return nn.Dense(self.vocab_size)(x)
