import jax
import jax.numpy as jnp
import numpy as np

from lopt.learned import mlp


def _inputs(num_features=5, hidden=4):
    k = jax.random.split(jax.random.PRNGKey(0), 7)
    feats = tuple(jax.random.normal(k[0], (num_features, 3, 4))[i] for i in range(num_features))
    layers = ((jax.random.normal(k[3], (hidden, hidden)), jax.random.normal(k[4], (hidden,))),
              (jax.random.normal(k[5], (hidden, 2)), jax.random.normal(k[6], (2,))))
    return feats, jax.random.normal(k[1], (num_features, hidden)), jax.random.normal(k[2], (hidden,)), layers


def test_per_parameter_mlp_is_the_mlp_of_each_elements_features():
    feats, w0, bias, layers = _inputs()
    x = jnp.stack(feats, axis=-1)  # [3, 4, F]: each element's feature vector
    h = jax.nn.relu(x @ w0 + bias)
    h = jax.nn.relu(h @ layers[0][0] + layers[0][1])
    expected = h @ layers[1][0] + layers[1][1]
    out = mlp.per_parameter_mlp(feats, w0, bias, layers)
    np.testing.assert_allclose(jnp.stack(out, axis=-1), expected, rtol=1e-5, atol=1e-5)


def test_its_matmul_backward_equals_autodiff_of_the_sums():
    feats, w0, bias, layers = _inputs()

    def loss(fn, *args):
        direction, magnitude = fn(*args)
        return jnp.sum(direction**2) + jnp.sum(jnp.sin(magnitude))

    custom = jax.grad(lambda *a: loss(mlp.per_parameter_mlp, *a), argnums=(0, 1, 2, 3))(feats, w0, bias, layers)
    plain = jax.grad(lambda *a: loss(lambda *b: mlp._forward(*b)[0], *a), argnums=(0, 1, 2, 3))(
        feats, w0, bias, layers)
    assert jax.tree_util.tree_structure(custom) == jax.tree_util.tree_structure(plain)
    for a, b in zip(jax.tree_util.tree_leaves(custom), jax.tree_util.tree_leaves(plain)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    vmapped = jax.vmap(jax.grad(lambda w: loss(mlp.per_parameter_mlp, feats, w, bias, layers)))(jnp.stack([w0, 2 * w0]))
    np.testing.assert_allclose(vmapped[0], custom[1], rtol=1e-5, atol=1e-5)
