import jax
import jax.numpy as jnp
import numpy as np

from lopt.estimators.base import TruncatedEstimator, task_norms

ALL = jnp.ones(5, bool)


def test_task_mean_normalizes_each_task_over_all_leaves():
    k1, k2 = jax.random.split(jax.random.PRNGKey(0))
    grads = {"a": jax.random.normal(k1, (5, 3)), "b": 10.0 * jax.random.normal(k2, (5, 2, 2))}
    norms = np.sqrt((grads["a"] ** 2).sum(1) + (grads["b"] ** 2).sum((1, 2)))
    np.testing.assert_allclose(task_norms(grads), norms, rtol=1e-6)
    unit = TruncatedEstimator(normalize_task_grads=True).task_mean(grads, ALL)
    np.testing.assert_allclose(unit["a"], (grads["a"] / norms[:, None]).mean(0), rtol=1e-5)
    np.testing.assert_allclose(unit["b"], (grads["b"] / norms[:, None, None]).mean(0), rtol=1e-5)
    plain = TruncatedEstimator().task_mean(grads, ALL)
    np.testing.assert_allclose(plain["b"], grads["b"].mean(0), rtol=1e-6)


def test_a_zero_task_gradient_stays_zero_when_normalized():
    grads = jnp.zeros((3, 4)).at[0].set(jnp.array([3.0, 4.0, 0.0, 0.0]))
    out = TruncatedEstimator(normalize_task_grads=True).task_mean(grads, jnp.ones(3, bool))
    np.testing.assert_allclose(out, jnp.array([0.6, 0.8, 0.0, 0.0]) / 3, rtol=1e-6)
    assert np.all(np.isfinite(out))
