import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lopt.estimators import TBPTT
from tests.estimators.reference import truncation_gradient
from tests.quadratic import DATA, LogLrSGD, quadratic_unroll


@pytest.mark.parametrize("length", [100, 7, 5])  # no reset; reset mid-truncation; on a last step
def test_tbptt_is_the_exact_gradient_of_each_truncation(length):
    trunc, num_tasks = 5, 3
    unroll = quadratic_unroll(length)
    theta = LogLrSGD().init_theta(None)
    tbptt = TBPTT(trunc_length=trunc)
    state = tbptt.init(unroll, theta, jax.random.PRNGKey(0), num_tasks, random_offset=False)
    estimate = jax.jit(lambda s: tbptt.estimate(unroll, theta, s, DATA, jax.random.PRNGKey(1),
                                                jnp.zeros((), jnp.int32)))
    for i in range(3):
        est = estimate(state)
        grad, state, metrics = est.grad, est.state, est.metrics
        np.testing.assert_allclose(grad, truncation_gradient(theta, i * trunc, length, trunc),
                                   rtol=1e-5, atol=1e-7)
        assert np.all(np.asarray(state.step) == (i + 1) * trunc % length)
        assert metrics["inner/resets"] == num_tasks * ((i + 1) * trunc // length - i * trunc // length)
    assert tbptt.inner_steps(num_tasks, unroll.schedule) == num_tasks * trunc  # one branch per task


@pytest.mark.parametrize("mode", ["family", "problem"])
def test_normalized_tbptt_is_the_unit_direction(mode):
    unroll = quadratic_unroll(100)
    theta = LogLrSGD().init_theta(None)
    grads = []
    for normalize in ("none", mode):
        tbptt = TBPTT(trunc_length=5, normalize_task_grads=normalize)
        state = tbptt.init(unroll, theta, jax.random.PRNGKey(0), 4, random_offset=False)
        grads.append(jax.jit(tbptt.estimate, static_argnums=0)(
            unroll, theta, state, DATA, jax.random.PRNGKey(1), jnp.zeros((), jnp.int32)).grad)
    plain, unit = grads  # identical tasks: the mean of equal unit vectors is that unit vector
    np.testing.assert_allclose(jnp.linalg.norm(unit), 1.0, rtol=1e-6)
    np.testing.assert_allclose(unit, plain / jnp.linalg.norm(plain), rtol=1e-6)
