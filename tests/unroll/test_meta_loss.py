"""Each meta-loss takes exactly the right steps, params and batches (checked by hand), and the
unroll replaces non-finite problems (with their antithetic partners) instead of propagating NaN."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lopt.data import Dataset, noise_key
from lopt.errors import ConfigError
from lopt.schedules import ConstantSchedule, NeverEndingSchedule
from lopt.tasks import Task
from lopt.unroll import FinalLoss, MeanLoss, TruncatedUnroll, ValidLoss
from tests.quadratic import CURVATURE, QUADRATIC, LogLrSGD, quadratic_unroll
from tests.quadratic import DATA as QDATA

ZERO = jnp.zeros((), jnp.int32)
LR = jnp.array([0.1, 0.2])
THETA = jnp.log(LR)
CLIP = 100.0


def quad(p):
    return 0.5 * jnp.sum(CURVATURE * p**2)


def noise(key):
    return jax.random.normal(key)


# Dataset-free: the batch is a key, which shifts the loss (not its gradient) by a N(0, 1) draw.
NOISY = Task("noisy", lambda k: jnp.array([1.0, -2.0]), lambda p, k: quad(p) + noise(k), 1, CLIP,
             sampler=noise_key)
# With data: the loss is shifted by the batch mean, 0 on the train split and 1 on the test split.
SHIFTED = Task("shifted", lambda k: jnp.array([1.0, -2.0]), lambda p, b: quad(p) + jnp.mean(b[0]), 4, CLIP)
DATA = Dataset(jnp.zeros((8, 1)), jnp.zeros((8,), jnp.int32), jnp.ones((8, 1)), jnp.zeros((8,), jnp.int32))


def params_at(t):
    """The SGD iterate after t steps from the init (no reset)."""
    return jnp.array([1.0, -2.0]) * (1 - LR * CURVATURE) ** t


def one_problem(task, meta_loss, length, steps, data=None):
    unroll = TruncatedUnroll(task, LogLrSGD(), ConstantSchedule(length), meta_loss)
    state = unroll.init(THETA, jax.random.PRNGKey(0), 1, random_offset=False)
    _, out = unroll.run(THETA, state, data, steps, ZERO, theta_batched=False)
    return state.key[0], out


def test_mean_is_the_clipped_training_loss_before_each_update():
    key, out = one_problem(NOISY, MeanLoss(), 100, 4)
    expected = [quad(params_at(t)) + noise(jax.random.fold_in(key, t)) for t in range(4)]
    np.testing.assert_allclose(out.meta_loss[:, 0], expected, rtol=1e-5)
    np.testing.assert_allclose(out.loss[:, 0], expected, rtol=1e-5)


def test_valid_is_the_loss_of_the_current_params_on_another_batch():
    key, out = one_problem(NOISY, ValidLoss(), 100, 4)
    expected = [quad(params_at(t)) + noise(jax.random.fold_in(jax.random.fold_in(key, t), 1)) for t in range(4)]
    np.testing.assert_allclose(out.meta_loss[:, 0], expected, rtol=1e-5)
    assert np.all(np.abs(out.meta_loss[:, 0] - out.loss[:, 0]) > 1e-3)  # not the training batch
    _, out = one_problem(SHIFTED, ValidLoss(), 100, 4, DATA)  # the test split (batch mean 1)
    np.testing.assert_allclose(out.meta_loss[:, 0], [quad(params_at(t)) + 1.0 for t in range(4)], rtol=1e-6)
    np.testing.assert_allclose(out.loss[:, 0], [quad(params_at(t)) for t in range(4)], rtol=1e-6)


def test_final_is_the_loss_after_the_last_update_at_the_end_step_only():
    key, out = one_problem(NOISY, FinalLoss(), 3, 8)  # ends after steps 3 and 6
    successor_key = jax.random.split(key, 3)[2]
    expected = np.zeros(8)
    expected[2] = quad(params_at(3)) + noise(jax.random.fold_in(key, 3))  # the batch step 3 would draw
    expected[5] = quad(params_at(3)) + noise(jax.random.fold_in(successor_key, 3))
    np.testing.assert_allclose(out.meta_loss[:, 0], expected, rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(out.ended[:, 0], [0, 0, 1, 0, 0, 1, 0, 0])


def test_values_are_clipped_at_the_task_normalizer():
    task = Task("big", QUADRATIC.init, lambda p, b: 1e3 * quad(p), 1, 5.0, sampler=noise_key)
    for meta_loss in (MeanLoss(), ValidLoss(), FinalLoss()):
        _, out = one_problem(task, meta_loss, 2, 2)
        assert float(out.meta_loss.max()) == 5.0


def test_objectives_weight_the_right_steps():
    values = jnp.arange(1.0, 13.0).reshape(4, 3)  # [steps, problems]
    ended = jnp.zeros((4, 3), bool).at[1, 0].set(True).at[3, 0].set(True).at[2, 2].set(True)
    mean = MeanLoss().truncation(values, ended, 4)
    np.testing.assert_allclose(mean.values(), values.mean(0))
    final = FinalLoss().truncation(values, ended, 4)
    np.testing.assert_allclose(final.values(), [values[1, 0] + values[3, 0], 0.0, values[2, 2]])
    np.testing.assert_allclose(final.mean(), (values[1, 0] + values[3, 0] + values[2, 2]) / 2)
    length = jnp.array([2, 4, 3])  # full unrolls: only each problem's own steps, to its first end
    full = MeanLoss().full(values, ended, length)
    np.testing.assert_allclose(full.values(), [values[:2, 0].mean(), values[:, 1].mean(), values[:3, 2].mean()])
    np.testing.assert_allclose(FinalLoss().full(values, ended, length).values(), [values[1, 0], 0.0, values[2, 2]])


def test_final_needs_problems_that_end():
    FinalLoss().check_schedule(ConstantSchedule(10))
    with pytest.raises(ConfigError, match="meta_loss=final .* schedule=never_ending"):
        FinalLoss().check_schedule(NeverEndingSchedule())


def test_a_diverging_branch_resets_both_branches_and_is_flagged():
    """lr * curvature = 1000: the iterate grows 1000x per step and overflows float32 within 7 steps."""
    unroll = quadratic_unroll(100)
    thetas = jnp.log(jnp.array([[0.1, 0.1], [1e3, 1e3]]))  # [positive, negative] branch of one task
    state = unroll.init(thetas[0], jax.random.PRNGKey(0), 1, random_offset=False)
    pair = jax.tree_util.tree_map(lambda x: jnp.concatenate([x, x]), state)
    new, out = unroll.run(thetas, pair, QDATA, 10, ZERO, branches=2)
    bad = np.asarray(out.nonfinite[:, 0])
    assert bad.sum() == 1 and np.array_equal(out.nonfinite[:, 0], out.nonfinite[:, 1])
    first = int(np.argmax(bad))
    assert 3 <= first <= 8 and np.isfinite(out.loss[:first, 1]).all()  # it takes a few steps to overflow
    np.testing.assert_array_equal(out.reset, out.nonfinite)  # no schedule end here
    assert not np.asarray(out.ended).any()
    # both restarted from the init at the same step, so they are in step again
    np.testing.assert_array_equal(new.step, [10 - first - 1] * 2)
    np.testing.assert_array_equal(new.key[0], new.key[1])
    assert all(np.isfinite(x).all() for x in jax.tree_util.tree_leaves(new))
    np.testing.assert_allclose(out.loss[first + 1, 0], quad(jnp.array([1.0, -2.0])), rtol=1e-6)
    assert np.isfinite(out.meta_loss).all()
