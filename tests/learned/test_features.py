import jax
import jax.numpy as jnp
import numpy as np

from lopt.learned.features import second_moment_scale, second_moment_scales


def test_one_pass_scales_equal_each_features_own():
    a, b, c = (jax.random.normal(jax.random.PRNGKey(i), (3, 5, 2)) * (i + 1) for i in range(3))
    axes = (0, 1, 2)
    expected = [second_moment_scale(f, axes) for f in (a, b, c)]
    np.testing.assert_allclose(second_moment_scales([a, b, c]), expected, rtol=1e-6)
    np.testing.assert_allclose(second_moment_scales([a])[0], 1 / np.sqrt(1e-5 + np.mean(np.square(a))), rtol=1e-6)


def test_one_pass_scales_have_the_derivatives_of_each_features_own():
    a, b = (jax.random.normal(jax.random.PRNGKey(i), (4, 3)) for i in range(2))

    def one_pass(x):
        return jnp.sum(second_moment_scales([x, x * b]) * jnp.array([1.0, 2.0]))

    def each(x):
        return second_moment_scale(x, (0, 1)) + 2.0 * second_moment_scale(x * b, (0, 1))

    np.testing.assert_allclose(jax.grad(one_pass)(a), jax.grad(each)(a), rtol=1e-5)
    np.testing.assert_allclose(jax.jvp(one_pass, (a,), (b,))[1], jax.jvp(each, (a,), (b,))[1], rtol=1e-5)
