import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lopt.estimators import PES
from tests.quadratic import DATA, LogLrSGD, quadratic_unroll


def _full_unroll_gradient(unroll, theta, key, steps, trunc):
    """d/dtheta of the sum over truncations of each truncation's mean loss, by backprop."""
    def objective(theta):
        state = unroll.init(theta, key, 1, random_offset=False)
        _, out = unroll.run(theta, state, DATA, steps, jnp.zeros((), jnp.int32), theta_batched=False)
        return out.meta_loss.sum() / trunc
    return jax.grad(objective)(theta)


@pytest.mark.parametrize("length", [100, 7, 5])  # no reset; reset mid-truncation; reset on a last step
def test_pes_is_unbiased_for_the_whole_unroll_gradient(length):
    trunc, truncations, num_tasks = 5, 4, 4096
    unroll = quadratic_unroll(length)
    theta = LogLrSGD().init_theta(None)
    pes = PES(std=0.01, trunc_length=trunc)
    key = jax.random.PRNGKey(0)
    state = pes.init(unroll, theta, key, num_tasks, random_offset=False)
    estimate = jax.jit(lambda s, k: pes.estimate(unroll, theta, s, DATA, k, jnp.zeros((), jnp.int32)))
    total = jnp.zeros_like(theta)
    for k in jax.random.split(jax.random.PRNGKey(1), truncations):
        grad, state, _ = estimate(state, k)
        total = total + grad
    # Every problem starts from the same init, so all tasks share this exact gradient.
    exact = _full_unroll_gradient(unroll, theta, key, trunc * truncations, trunc)
    np.testing.assert_allclose(total, exact, rtol=0.1)
