import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lopt.estimators import ES
from tests.estimators.reference import truncation_gradient
from tests.quadratic import DATA, LogLrSGD, quadratic_unroll


@pytest.mark.parametrize("length", [100, 7, 5])  # no reset; reset mid-truncation; on a last step
def test_es_is_unbiased_for_each_truncation_gradient(length):
    """Without PES's accumulator, ES estimates the gradient of the current truncation only."""
    trunc, num_tasks = 5, 8192
    unroll = quadratic_unroll(length)
    theta = LogLrSGD().init_theta(None)
    es = ES(std=0.01, trunc_length=trunc)
    state = es.init(unroll, theta, jax.random.PRNGKey(0), num_tasks, random_offset=False)
    estimate = jax.jit(lambda s, k: es.estimate(unroll, theta, s, DATA, k, jnp.zeros((), jnp.int32)))
    for i, key in enumerate(jax.random.split(jax.random.PRNGKey(1), 2)):
        est = estimate(state, key)
        grad, state = est.grad, est.state
        exact = truncation_gradient(theta, i * trunc, length, trunc)
        assert jnp.linalg.norm(grad - exact) < 0.05 * jnp.linalg.norm(exact)


@pytest.mark.parametrize("mode", ["family", "problem"])
def test_normalized_es_of_one_problem_gives_unit_gradients(mode):
    unroll = quadratic_unroll(100)
    theta = LogLrSGD().init_theta(None)
    es = ES(std=0.01, trunc_length=5, normalize_task_grads=mode)
    state = es.init(unroll, theta, jax.random.PRNGKey(0), 1, random_offset=False)
    estimate = jax.jit(lambda s, k: es.estimate(unroll, theta, s, DATA, k, jnp.zeros((), jnp.int32)))
    for key in jax.random.split(jax.random.PRNGKey(1), 3):
        est = estimate(state, key)
        grad, state = est.grad, est.state
        np.testing.assert_allclose(jnp.linalg.norm(grad), 1.0, rtol=1e-5)
