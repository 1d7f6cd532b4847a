import jax
import jax.numpy as jnp
import numpy as np

from lopt.schedules import ConstantSchedule
from lopt.unroll import TruncatedUnroll
from tests.quadratic import DATA, QUADRATIC, LogLrSGD, quadratic_unroll

ZERO = jnp.zeros((), jnp.int32)


def test_problems_reset_at_their_length_and_restart_from_init():
    unroll = quadratic_unroll(4)
    theta = LogLrSGD().init_theta(None)
    state = unroll.init(theta, jax.random.PRNGKey(0), 1, random_offset=False)
    first_key = state.key
    state, out = unroll.run(theta, state, DATA, 4, ZERO, theta_batched=False)
    np.testing.assert_array_equal(out.reset[:, 0], [0, 0, 0, 1])
    assert int(state.step[0]) == 0 and not np.array_equal(state.key, first_key)  # a new problem
    state, out2 = unroll.run(theta, state, DATA, 3, ZERO, theta_batched=False)
    # the new problem restarts from the (deterministic) init: same losses as the first one
    np.testing.assert_allclose(out2.loss[:, 0], out.loss[:3, 0], rtol=1e-6)
    assert out.loss[0, 0] > out.loss[3, 0]
    assert int(state.step[0]) == 3


def test_random_offsets_spread_the_problems_over_their_length():
    unroll = quadratic_unroll(50)
    state = unroll.init(LogLrSGD().init_theta(None), jax.random.PRNGKey(0), 64)
    steps = np.asarray(state.step)
    assert steps.min() >= 0 and steps.max() < 50 and len(np.unique(steps)) > 20


class HorizonSGD(LogLrSGD):
    """LogLrSGD that keeps, as its state, the training length it was told at init."""

    def init(self, theta, params, num_steps=None):
        return jnp.asarray(num_steps, jnp.int32)


def test_optimizers_are_told_how_many_steps_each_problem_has_left():
    """A problem started at a random offset trains for the rest of its length; its successor for
    the whole of it."""
    unroll = TruncatedUnroll(QUADRATIC, HorizonSGD(), ConstantSchedule(6))
    theta = LogLrSGD().init_theta(None)
    state = unroll.init(theta, jax.random.PRNGKey(0), 16)
    assert len(np.unique(np.asarray(state.step))) > 1
    np.testing.assert_array_equal(state.opt_state, 6 - state.step)
    state, out = unroll.run(theta, state, DATA, 6, ZERO, theta_batched=False)
    assert np.asarray(out.reset).any(0).all()
    np.testing.assert_array_equal(state.opt_state, 6)


def test_batched_theta_trains_each_problem_with_its_own_theta():
    unroll = quadratic_unroll(100)
    theta = jnp.log(jnp.array([[0.1, 0.1], [0.5, 0.5]]))
    state = unroll.init(theta[0], jax.random.PRNGKey(0), 2, random_offset=False)
    _, out = unroll.run(theta, state, DATA, 5, ZERO)
    assert out.loss.shape == (5, 2)
    assert out.loss[-1, 1] < out.loss[-1, 0]  # the larger learning rate descends faster


def test_batches_are_shared_by_problems_with_the_same_key():
    """Antithetic branches copy one state; they must then see identical batches."""
    from lopt import data as data_lib
    from lopt.optimizers.hand_designed import Adam
    from lopt.schedules import ConstantSchedule
    from lopt.tasks import build
    from tests.conftest import compose_meta_train

    task = build(compose_meta_train().task)
    unroll = TruncatedUnroll(task, Adam(1e-2).build(10), ConstantSchedule(10))
    d = data_lib.load("digits", "synthetic", 8, synthetic_examples=256)
    one = unroll.init(None, jax.random.PRNGKey(0), 1)
    both = jax.tree_util.tree_map(lambda x: jnp.concatenate([x, x]), one)
    _, out = unroll.run(None, both, d, 4, ZERO, theta_batched=False)
    np.testing.assert_array_equal(out.loss[:, 0], out.loss[:, 1])
