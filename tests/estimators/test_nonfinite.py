"""Non-finite inner problems are dropped from the meta-gradient, counted, and never leak NaN."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lopt.estimators import ES, PES, TBPTT, Merged
from lopt.estimators.base import TruncatedEstimator
from lopt.schedules import ConstantSchedule
from lopt.unroll import FinalLoss, TruncatedUnroll
from tests.estimators.reference import HALF_NAN, params_after, truncation_gradient
from tests.quadratic import CURVATURE, DATA, QUADRATIC, LogLrSGD

ZERO = jnp.zeros((), jnp.int32)
THETA = LogLrSGD().init_theta(None)


def test_task_mean_is_the_mean_of_the_finite_tasks_exactly():
    grads = {"a": jnp.array([[1.0, 2.0], [jnp.nan, 0.0], [3.0, 5.0], [jnp.inf, 1.0]]),
             "b": jnp.array([1.0, 2.0, 4.0, 8.0])}
    finite = jnp.array([True, False, True, False])
    out = TruncatedEstimator().task_mean(grads, finite)
    np.testing.assert_array_equal(out["a"], [2.0, 3.5])
    np.testing.assert_array_equal(out["b"], 2.5)
    for mode in ("family", "problem"):
        none = TruncatedEstimator(normalize_task_grads=mode).task_mean(grads, jnp.zeros(4, bool))
        np.testing.assert_array_equal(none["a"], [0.0, 0.0])  # nothing finite: a zero gradient


def _half_nan(estimator, num_tasks=16):
    unroll = TruncatedUnroll(HALF_NAN, LogLrSGD(), ConstantSchedule(100))
    state = estimator.init(unroll, THETA, jax.random.PRNGKey(0), num_tasks, random_offset=False)
    return unroll, state, jax.jit(lambda s, k: estimator.estimate(unroll, THETA, s, DATA, k, ZERO))


def test_tbptt_drops_the_diverging_tasks_and_keeps_the_exact_gradient_of_the_others():
    tbptt = TBPTT(trunc_length=5)
    unroll, state, estimate = _half_nan(tbptt)
    bad = int((np.asarray(state.params)[:, 0] < 0).sum())
    assert 3 <= bad <= 13
    est = estimate(state, jax.random.PRNGKey(1))
    grad, state, metrics = est.grad, est.state, est.metrics
    np.testing.assert_allclose(grad, truncation_gradient(THETA, 0, 100, 5), rtol=1e-5)
    assert 16 - int(est.finite_tasks) == bad  # the non-finite tasks
    assert int(metrics["inner/nonfinite_resets"]) >= bad  # a successor starting negative resets again
    assert np.isfinite(metrics["inner/loss"]) and np.isfinite(est.meta_loss)
    assert all(np.isfinite(x).all() for x in jax.tree_util.tree_leaves(state))


@pytest.mark.parametrize("cls", [ES, PES, Merged])
def test_antithetic_estimators_drop_diverging_tasks_and_stay_finite(cls):
    unroll, state, estimate = _half_nan(cls(std=0.01, trunc_length=5), num_tasks=256)
    for key in jax.random.split(jax.random.PRNGKey(1), 2):
        est = estimate(state, key)
        grad, state = est.grad, est.state
        assert np.isfinite(grad).all() and 0 < 256 - int(est.finite_tasks) < 256  # some tasks non-finite
        assert all(np.isfinite(x).all() for x in jax.tree_util.tree_leaves(state))
    inner = state.inner if cls is PES else state  # antithetic branches stayed in step
    n = inner.step.shape[0] // 2
    np.testing.assert_array_equal(inner.step[:n], inner.step[n:])
    np.testing.assert_array_equal(inner.key[:n], inner.key[n:])


def test_pes_final_is_unbiased_for_the_final_loss_gradient():
    """Over 4 truncations of 5 steps, problems of length 7 end after steps 7 and 14: the summed PES
    estimates match the gradient of the sum of both problems' final losses."""
    trunc, num_tasks = 5, 4096
    unroll = TruncatedUnroll(QUADRATIC, LogLrSGD(), ConstantSchedule(7), FinalLoss())
    pes = PES(std=0.01, trunc_length=trunc)
    state = pes.init(unroll, THETA, jax.random.PRNGKey(0), num_tasks, random_offset=False)
    estimate = jax.jit(lambda s, k: pes.estimate(unroll, THETA, s, DATA, k, ZERO))
    total = jnp.zeros_like(THETA)
    for k in jax.random.split(jax.random.PRNGKey(1), 4):
        est = estimate(state, k)
        grad, state = est.grad, est.state
        total = total + grad

    def final_losses(theta):  # two identical problems, each ending after its 7th update
        return 2 * 0.5 * jnp.sum(CURVATURE * params_after(theta, 7, 8)[0] ** 2)
    np.testing.assert_allclose(total, jax.grad(final_losses)(THETA), rtol=0.1)
