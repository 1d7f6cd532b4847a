import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lopt.base import Estimate
from lopt.config import from_config
from lopt.errors import ConfigError
from lopt.estimators import ES
from lopt.estimators.base import TruncatedEstimator, branch_difference, task_norms
from lopt.meta_trainer import combine
from tests.quadratic import DATA, LogLrSGD, quadratic_unroll

ALL = jnp.ones(5, bool)
# Two families' per-problem estimates (rows), the first with a non-finite problem that is dropped.
FAMILY_A = jnp.array([[2.0, 0.0], [4.0, 0.0], [0.0, 6.0], [jnp.nan, 1.0]])
FINITE_A = jnp.array([True, True, True, False])
FAMILY_B = jnp.array([[0.0, -3.0], [0.0, -1.0]])
# By hand. A's finite mean is (2, 2), B's is (0, -2).
#   none:    ((2, 2) + (0, -2)) / 2 = (1, 0)
#   family:  ((1, 1) / sqrt(2) + (0, -1)) / 2 = (1 / (2 sqrt(2)), (1 / sqrt(2) - 1) / 2)
#   problem: A's unit rows (1, 0), (1, 0), (0, 1) average to (2/3, 1/3), B's (0, -1), (0, -1) to
#            (0, -1); ((2/3, 1/3) + (0, -1)) / 2 = (1/3, -1/3)
BY_HAND = {"none": [1.0, 0.0], "family": [0.35355339, -0.14644661], "problem": [1 / 3, -1 / 3]}


@pytest.mark.parametrize("mode", sorted(BY_HAND))
def test_each_mode_matches_the_hand_computation_over_two_families(mode):
    estimator = TruncatedEstimator(normalize_task_grads=mode)
    families = [estimator.task_mean(FAMILY_A, FINITE_A), estimator.task_mean(FAMILY_B, jnp.ones(2, bool))]
    estimates = [Estimate(g, None, jnp.array(1), jnp.array(0.0), {}) for g in families]
    np.testing.assert_allclose(combine(("a", "b"), estimates).grad, BY_HAND[mode], rtol=1e-6, atol=1e-7)


def test_family_on_a_single_family_is_its_normalized_mean_over_all_leaves():
    k1, k2 = jax.random.split(jax.random.PRNGKey(0))
    grads = {"a": jax.random.normal(k1, (5, 3)), "b": 10.0 * jax.random.normal(k2, (5, 2, 2))}
    mean = {k: v.mean(0) for k, v in grads.items()}
    norm = np.sqrt((mean["a"] ** 2).sum() + (mean["b"] ** 2).sum())
    unit = TruncatedEstimator(normalize_task_grads="family").task_mean(grads, ALL)
    np.testing.assert_allclose(unit["a"], mean["a"] / norm, rtol=1e-5)
    np.testing.assert_allclose(unit["b"], mean["b"] / norm, rtol=1e-5)


def test_problem_normalizes_each_problem_over_all_leaves_and_none_is_the_plain_mean():
    k1, k2 = jax.random.split(jax.random.PRNGKey(0))
    grads = {"a": jax.random.normal(k1, (5, 3)), "b": 10.0 * jax.random.normal(k2, (5, 2, 2))}
    norms = np.sqrt((grads["a"] ** 2).sum(1) + (grads["b"] ** 2).sum((1, 2)))
    np.testing.assert_allclose(task_norms(grads), norms, rtol=1e-6)
    unit = TruncatedEstimator(normalize_task_grads="problem").task_mean(grads, ALL)
    np.testing.assert_allclose(unit["a"], (grads["a"] / norms[:, None]).mean(0), rtol=1e-5)
    np.testing.assert_allclose(unit["b"], (grads["b"] / norms[:, None, None]).mean(0), rtol=1e-5)
    assert TruncatedEstimator().normalize_task_grads == "none"
    plain = TruncatedEstimator().task_mean(grads, ALL)
    np.testing.assert_allclose(plain["b"], grads["b"].mean(0), rtol=1e-6)


def test_problem_with_one_antithetic_pair_is_sign_es():
    """mean_i sign(L+_i - L-_i) eps_i / |eps_i|: the loss differences' sizes are dropped."""
    unroll, theta, key, zero = quadratic_unroll(100), LogLrSGD().init_theta(None), jax.random.PRNGKey(1), jnp.zeros((), jnp.int32)
    es = ES(std=0.01, trunc_length=5, normalize_task_grads="problem")
    state = es.init(unroll, theta, jax.random.PRNGKey(0), 6, random_offset=False)
    eps, _, out = es.antithetic_run(unroll, theta, state, DATA, key, zero)
    delta = branch_difference(es.objective(unroll, out).terms).sum(0)
    assert 0 < int((delta > 0).sum()) < 6  # both signs occur
    sign_es = (jnp.sign(delta)[:, None] * eps / jnp.linalg.norm(eps, axis=1, keepdims=True)).mean(0)
    np.testing.assert_allclose(es.estimate(unroll, theta, state, DATA, key, zero).grad, sign_es, rtol=1e-5)


@pytest.mark.parametrize("mode", ["family", "problem"])
def test_a_zero_gradient_stays_zero_when_normalized(mode):
    grads = jnp.zeros((3, 4)).at[0].set(jnp.array([3.0, 4.0, 0.0, 0.0]))
    expected = jnp.array([0.6, 0.8, 0.0, 0.0]) / (3 if mode == "problem" else 1)
    np.testing.assert_allclose(TruncatedEstimator(normalize_task_grads=mode).task_mean(grads, jnp.ones(3, bool)),
                               expected, rtol=1e-6)
    zero = TruncatedEstimator(normalize_task_grads=mode).task_mean(jnp.zeros((3, 4)), jnp.ones(3, bool))
    np.testing.assert_array_equal(zero, 0.0)


@pytest.mark.parametrize("value", [True, False, "sign", 1])
def test_the_old_boolean_and_unknown_modes_are_refused_naming_the_choices(value):
    with pytest.raises(ConfigError) as err:
        from_config(ES, {"normalize_task_grads": value}, "estimator")
    assert str(err.value) == (f"estimator.normalize_task_grads={value!r} is invalid: "
                              "it must be one of ['none', 'family', 'problem'].")
    with pytest.raises(ValueError, match="normalize_task_grads=.* must be one of"):
        ES(normalize_task_grads=value)
