import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lopt.estimators import Merged
from lopt.estimators.merged import merge, rp_weight
from tests.estimators.reference import truncation_gradient
from tests.quadratic import DATA, quadratic_unroll

ZERO = jnp.zeros((), jnp.int32)


def test_merged_is_unbiased_for_the_truncation_gradient():
    trunc, length, num_tasks = 5, 7, 1024  # the second truncation resets mid-way
    unroll = quadratic_unroll(length)
    theta = jnp.log(jnp.array([0.1, 0.2]))
    merged = Merged(std=0.01, trunc_length=trunc)
    state = merged.init(unroll, theta, jax.random.PRNGKey(0), num_tasks, random_offset=False)
    estimate = jax.jit(lambda s, k: merged.estimate(unroll, theta, s, DATA, k, ZERO))
    for i, key in enumerate(jax.random.split(jax.random.PRNGKey(1), 2)):
        est = estimate(state, key)
        grad, state, metrics = est.grad, est.state, est.metrics
        exact = truncation_gradient(theta, i * trunc, length, trunc)
        assert jnp.linalg.norm(grad - exact) < 0.02 * jnp.linalg.norm(exact)
        assert metrics["estimator/rp_weight"] > 0.99  # a smooth short unroll: backprop wins


@pytest.mark.parametrize("std,lr,trunc", [
    (0.01, 0.1, 5),  # stable unroll: backprop has far lower variance
    (0.1, 2.5, 20),  # lr * curvature > 2: backprop explodes, ES has the lower variance
])
def test_merged_variance_is_at_most_the_smaller_of_its_parts(std, lr, trunc):
    """Over many independent estimates (8 tasks each), per meta-parameter."""
    unroll = quadratic_unroll(100)
    theta = jnp.log(jnp.array([lr, lr]))
    merged = Merged(std=std, trunc_length=trunc)
    state = merged.init(unroll, theta, jax.random.PRNGKey(0), 8, random_offset=False)

    @jax.jit
    @jax.vmap
    def sample(key):
        rp, es, _, _ = merged.samples(unroll, theta, state, DATA, key, ZERO)
        return rp.mean(0), es.mean(0), merge(rp, es).mean(0)

    rp, es, combined = sample(jax.random.split(jax.random.PRNGKey(1), 500))
    var_rp, var_es, var_merged = rp.var(0), es.var(0), combined.var(0)
    assert np.all(var_merged <= 1.05 * np.minimum(var_rp, var_es))
    assert np.all(var_merged < 0.5 * np.maximum(var_rp, var_es))


def test_inverse_variance_weights_follow_eq_1():
    rp = jnp.array([[1.0, 0.0, jnp.inf], [3.0, 0.0, 1.0]])  # variances 1, 0, not finite
    es = jnp.array([[0.0, 5.0, 0.0], [4.0, 5.0, 2.0]])  # variances 4, 0, 1
    np.testing.assert_allclose(rp_weight(rp, es), [0.8, 0.5, 0.0])
    np.testing.assert_allclose(merge(rp, es), [[0.8, 2.5, 0.0], [3.2, 2.5, 2.0]], rtol=1e-6)


@pytest.mark.parametrize("lr", [0.1, 2.5])  # a stable unroll; an exploding one
def test_the_logged_variances_are_the_samples_variances_over_tasks(lr):
    """estimator/rp_variance and es_variance (Metz et al. 2018, Fig. 5a): the variance over tasks of
    each estimator's per-task samples, averaged over meta-parameters."""
    unroll = quadratic_unroll(100)
    theta = jnp.log(jnp.array([lr, lr]))
    merged = Merged(std=0.1, trunc_length=20)
    state = merged.init(unroll, theta, jax.random.PRNGKey(0), 16, random_offset=False)
    key = jax.random.PRNGKey(1)
    rp, es, _, _ = jax.jit(lambda: merged.samples(unroll, theta, state, DATA, key, ZERO))()
    metrics = jax.jit(lambda: merged.estimate(unroll, theta, state, DATA, key, ZERO).metrics)()
    expected_rp, expected_es = np.var(np.asarray(rp, np.float64), 0).mean(), np.var(np.asarray(es, np.float64), 0).mean()
    assert float(metrics["estimator/rp_variance"]) == pytest.approx(expected_rp, rel=1e-4)
    assert float(metrics["estimator/es_variance"]) == pytest.approx(expected_es, rel=1e-4)
