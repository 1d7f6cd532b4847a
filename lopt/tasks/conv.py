"""2-D and 1-D convolutions that stay fast inside compiled loops on every backend.

XLA:CPU runs a native convolution inside `lax.scan` ~26x slower than outside it (jax-ml/jax#12868:
backward convolutions get slow layouts there). On CPU we therefore compute the same convolution as
im2col patches + one matmul, which XLA:CPU handles well in loops and under `vmap`; on GPU/TPU the
native convolution is used. Both give the same numbers (tests/tasks/test_conv.py). A 1-D
convolution is computed as the 2-D convolution of a height-1 image, so it takes the same paths.
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


def convolve(x: jax.Array, kernel: jax.Array, stride: int, impl: str) -> jax.Array:
    """'SAME' convolution of NHWC `x` with HWIO `kernel` by implementation `impl` (one of IMPLS)."""
    return (conv_patches if resolve_impl(impl) == "patches" else conv_native)(x, kernel, stride)


class _SameConv(nn.Module):
    """'SAME' convolution with bias over the spatial axes of its input (the kernel `kernel_size`
    wide on each); parameters match `flax.linen.Conv`. A 1-D input runs as a height-1 image."""

    features: int
    kernel_size: int = 3
    stride: int = 1
    impl: str = "auto"
    kernel_init: Callable = nn.initializers.lecun_normal()

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        spatial = x.ndim - 2
        kernel = self.param("kernel", self.kernel_init, (self.kernel_size,) * spatial + (x.shape[-1], self.features))
        bias = self.param("bias", nn.initializers.zeros_init(), (self.features,))
        if spatial == 1:
            return convolve(x[:, None], kernel[None], self.stride, self.impl)[:, 0] + bias
        return convolve(x, kernel, self.stride, self.impl) + bias


class Conv2D(_SameConv):
    """Square-kernel 'SAME' convolution of images [N, H, W, C] with bias."""


class Conv1D(_SameConv):
    """'SAME' convolution of signals [N, L, C] with bias."""
