"""2-D convolution that stays fast inside compiled loops on every backend.

XLA:CPU runs a native convolution inside `lax.scan` ~26x slower than outside it (jax-ml/jax#12868:
backward convolutions get slow layouts there). On CPU we therefore compute the same convolution as
im2col patches + one matmul, which XLA:CPU handles well in loops and under `vmap`; on GPU/TPU the
native convolution is used. Both give the same numbers (tests/tasks/test_conv.py).
"""
from collections.abc import Callable

import jax
import jax.numpy as jnp
from flax import linen as nn

IMPLS = ("auto", "patches", "native")


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """(low, high) padding of TensorFlow/XLA 'SAME' for one spatial dimension."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def conv_patches(x: jax.Array, kernel: jax.Array, stride: int) -> jax.Array:
    """'SAME' convolution of NHWC `x` with HWIO `kernel` as im2col + matmul."""
    kh, kw, cin, cout = kernel.shape
    _, h, w, _ = x.shape
    (ph_lo, ph_hi), (pw_lo, pw_hi) = same_padding(h, kh, stride), same_padding(w, kw, stride)
    xp = jnp.pad(x, ((0, 0), (ph_lo, ph_hi), (pw_lo, pw_hi), (0, 0)))
    oh, ow = -(-h // stride), -(-w // stride)
    cols = [
        xp[:, i : i + stride * (oh - 1) + 1 : stride, j : j + stride * (ow - 1) + 1 : stride, :]
        for i in range(kh)
        for j in range(kw)
    ]
    patches = jnp.concatenate(cols, axis=-1)  # [N, oh, ow, kh*kw*cin], (i, j, c) order = HWIO
    return patches @ kernel.reshape(kh * kw * cin, cout)


def conv_native(x: jax.Array, kernel: jax.Array, stride: int) -> jax.Array:
    """'SAME' convolution of NHWC `x` with HWIO `kernel` through XLA's convolution."""
    return jax.lax.conv_general_dilated(
        x, kernel, (stride, stride), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
    )


def resolve_impl(impl: str) -> str:
    """'auto' picks patches on CPU and the native convolution elsewhere."""
    if impl == "auto":
        return "patches" if jax.default_backend() == "cpu" else "native"
    return impl


class Conv2D(nn.Module):
    """Square-kernel 'SAME' convolution with bias; parameters match `flax.linen.Conv`."""

    features: int
    kernel_size: int = 3
    stride: int = 1
    impl: str = "auto"
    kernel_init: Callable = nn.initializers.lecun_normal()

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        k = self.kernel_size
        kernel = self.param("kernel", self.kernel_init, (k, k, x.shape[-1], self.features))
        bias = self.param("bias", nn.initializers.zeros_init(), (self.features,))
        conv = conv_patches if resolve_impl(self.impl) == "patches" else conv_native
        return conv(x, kernel, self.stride) + bias
