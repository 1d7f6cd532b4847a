import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lopt.errors import ConfigError
from lopt.estimators import FullES
from lopt.schedules import ChoiceSchedule, NeverEndingSchedule
from lopt.unroll import FinalLoss, MeanLoss, TruncatedUnroll
from tests.estimators.reference import HALF_NAN, params_after
from tests.quadratic import CURVATURE, DATA, QUADRATIC, LogLrSGD

ZERO = jnp.zeros((), jnp.int32)
THETA = jnp.log(jnp.array([0.1, 0.2]))


def whole_problem_gradient(meta_loss, length):
    """d/dtheta of a whole `length`-step problem's mean loss (before each update) or final loss
    (after the last one), by backprop through a plain loop."""
    def objective(theta):
        if isinstance(meta_loss, FinalLoss):
            return 0.5 * jnp.sum(CURVATURE * params_after(theta, length, length + 1)[0] ** 2)
        return sum(0.5 * jnp.sum(CURVATURE * params_after(theta, t, length + 1)[0] ** 2)
                   for t in range(length)) / length
    return jax.grad(objective)(THETA)


def estimate(meta_loss, lengths, num_tasks, normalize="none", key=1):
    unroll = TruncatedUnroll(QUADRATIC, LogLrSGD(), ChoiceSchedule(lengths), meta_loss)
    full = FullES(std=0.01, normalize_task_grads=normalize)
    keys = full.init(unroll, THETA, jax.random.PRNGKey(0), num_tasks)
    est = jax.jit(lambda k: full.estimate(unroll, THETA, keys, DATA, k, ZERO))(jax.random.PRNGKey(key))
    np.testing.assert_array_equal(est.state, keys)  # nothing persists but the task keys
    return est


@pytest.mark.parametrize("meta_loss", [MeanLoss(), FinalLoss()], ids=["mean", "final"])
def test_full_es_is_unbiased_for_the_whole_problem_gradient(meta_loss):
    est = estimate(meta_loss, (6,), 4096)
    exact = whole_problem_gradient(meta_loss, 6)
    np.testing.assert_allclose(est.grad, exact, rtol=0.1)
    assert int(est.metrics["inner/resets"]) == 4096 and 4096 - int(est.finite_tasks) == 0  # no non-finite task


@pytest.mark.parametrize("meta_loss", [MeanLoss(), FinalLoss()], ids=["mean", "final"])
def test_steps_past_a_sampled_length_are_masked(meta_loss):
    """Lengths 2 or 8 in an 8-step scan: the estimate is the average of the two problems' gradients,
    not that of 8 steps (the 2-step problems' successors train on but are not counted)."""
    est = estimate(meta_loss, (2, 8), 4096)
    grad, metrics = est.grad, est.metrics
    g2, g8 = whole_problem_gradient(meta_loss, 2), whole_problem_gradient(meta_loss, 8)
    expected = 0.5 * (g2 + g8)
    np.testing.assert_allclose(grad, expected, rtol=0.1)
    assert np.linalg.norm(grad - g8) > 3 * np.linalg.norm(grad - expected)
    assert int(metrics["inner/resets"]) == 4096  # each problem ends once, its successor not counted


def test_outer_loss_is_the_whole_problem_mean_loss():
    est = estimate(MeanLoss(), (4,), 8)
    losses = [0.5 * jnp.sum(CURVATURE * params_after(THETA, t, 5)[0] ** 2) for t in range(4)]
    np.testing.assert_allclose(est.meta_loss, np.mean(losses), rtol=1e-3)  # std-perturbed


@pytest.mark.parametrize("mode", ["family", "problem"])
def test_normalized_full_es_of_one_problem_gives_unit_gradients(mode):
    grad = estimate(MeanLoss(), (4,), 1, normalize=mode).grad
    np.testing.assert_allclose(jnp.linalg.norm(grad), 1.0, rtol=1e-5)


def test_full_es_needs_problems_that_end_and_counts_max_length_steps():
    full = FullES()
    full.check_schedule(ChoiceSchedule((3, 9)))
    assert full.inner_steps(5, ChoiceSchedule((3, 9))) == 2 * 5 * 9
    with pytest.raises(ConfigError, match="estimator=full_es .* schedule=never_ending"):
        full.check_schedule(NeverEndingSchedule())


def test_a_diverging_task_is_dropped():
    """Problems whose init is negative have a NaN loss: their tasks are dropped, the others kept."""
    unroll = TruncatedUnroll(HALF_NAN, LogLrSGD(), ChoiceSchedule((5,)))
    full = FullES(std=0.01)
    keys = full.init(unroll, THETA, jax.random.PRNGKey(0), 512)
    est = jax.jit(lambda k: full.estimate(unroll, THETA, keys, DATA, k, ZERO))(jax.random.PRNGKey(1))
    grad = est.grad
    assert 150 < 512 - int(est.finite_tasks) < 360 and np.isfinite(grad).all()  # non-finite tasks
    np.testing.assert_allclose(grad, whole_problem_gradient(MeanLoss(), 5), rtol=0.2)
