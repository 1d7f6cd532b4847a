import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lopt.tasks.conv import conv_native, conv_patches, same_padding


@pytest.mark.parametrize("size, kernel, stride, expected", [
    (16, 3, 2, (0, 1)), (8, 3, 1, (1, 1)), (7, 3, 2, (1, 1)), (5, 1, 1, (0, 0))])
def test_same_padding_matches_xla(size, kernel, stride, expected):
    assert same_padding(size, kernel, stride) == expected


@pytest.mark.parametrize("shape, stride", [((2, 16, 16, 3), 2), ((2, 8, 8, 5), 1), ((1, 7, 9, 2), 2)])
def test_patches_equals_native_conv_values_and_gradients(shape, stride):
    kx, kk = jax.random.split(jax.random.PRNGKey(0))
    x = jax.random.normal(kx, shape)
    k = jax.random.normal(kk, (3, 3, shape[-1], 4))
    np.testing.assert_allclose(conv_patches(x, k, stride), conv_native(x, k, stride), rtol=1e-5, atol=1e-5)

    def loss(conv, x, k):
        return jnp.sum(jnp.sin(conv(x, k, stride)))

    g_patch = jax.grad(lambda x, k: loss(conv_patches, x, k), argnums=(0, 1))(x, k)
    g_native = jax.grad(lambda x, k: loss(conv_native, x, k), argnums=(0, 1))(x, k)
    for a, b in zip(g_patch, g_native):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


def test_patches_equals_native_under_vmap_with_per_task_kernels():
    x = jax.random.normal(jax.random.PRNGKey(1), (3, 2, 8, 8, 4))
    k = jax.random.normal(jax.random.PRNGKey(2), (3, 3, 3, 4, 6))
    a = jax.vmap(lambda x, k: conv_patches(x, k, 1))(x, k)
    b = jax.vmap(lambda x, k: conv_native(x, k, 1))(x, k)
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
