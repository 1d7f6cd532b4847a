"""Distributions of the lengths each truncation schedule samples, traced inside jit."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lopt import schedules
from lopt.commands import meta_train
from lopt.errors import ConfigError
from lopt.unroll import TruncatedUnroll
from tests.conftest import compose_meta_train
from tests.quadratic import QUADRATIC, LogLrSGD

N = 8000  # samples per distribution


def build(*overrides: str):
    return schedules.build(compose_meta_train(*overrides).schedule)


def samples(schedule, outer_iteration: int, n: int = N) -> np.ndarray:
    """`n` lengths sampled at `outer_iteration`, which is traced (as in the outer step)."""
    draw = jax.jit(jax.vmap(schedule.sample, in_axes=(0, None)))
    keys = jax.random.split(jax.random.PRNGKey(outer_iteration), n)
    out = draw(keys, jnp.asarray(outer_iteration, jnp.int32))
    assert out.dtype == jnp.int32
    return np.asarray(out)


def test_linear_defaults_follow_metz_2018_curriculum_with_20_percent_jitter():
    """Metz et al. 2018, Learned optimizers that outperform SGD on wall-clock and test loss
    (arXiv:1810.10180), Sec. 4.3: 50 -> 10k steps over 5k outer iterations, jittered by up to 20%."""
    s = build("schedule=linear")
    assert (s.min_length, s.max_length) == (40, 12000)
    for it, base in [(0, 50), (1000, 50 + 9950 * 0.2), (2500, 5025), (5000, 10000), (9000, 10000)]:
        x = samples(s, it)
        assert x.min() >= round(0.8 * base) and x.max() <= round(1.2 * base)
        assert x.min() <= 0.81 * base and x.max() >= 1.19 * base  # the jitter spans all of +-20%
        assert abs(x.mean() / base - 1) < 0.01  # uniform jitter is centred on the ramp
        if base >= 1000:  # uniform jitter: a quarter of the samples in each 10% band
            np.testing.assert_allclose(np.mean(x < base * 0.9), 0.25, atol=0.02)


def test_linear_lengths_grow_over_outer_iterations():
    s = build("schedule=linear", "schedule.start=10", "schedule.end=110", "schedule.iterations=100",
              "schedule.jitter=0.0")
    means = [samples(s, it, 64).mean() for it in (0, 25, 50, 100, 200)]
    np.testing.assert_array_equal(means, [10, 35, 60, 110, 110])


def test_log_uniform_lengths_are_uniform_in_log_space():
    s = build("schedule=log_uniform", "schedule.low=10", "schedule.high=1000")
    x = samples(s, 0)
    assert x.min() == 10 and 990 <= x.max() <= 1000
    # each decade holds half the samples; the mean of log-lengths is the log midpoint
    np.testing.assert_allclose(np.mean(x < 100), 0.5, atol=0.02)
    np.testing.assert_allclose(np.mean(np.log(x + 0.5)), 0.5 * (np.log(10) + np.log(1001)), atol=0.03)


def test_log_uniform_bounds_move_linearly():
    s = build("schedule=log_uniform", "schedule.low=10", "schedule.high=100", "schedule.final_low=100",
              "schedule.final_high=1000", "schedule.iterations=100")
    assert (s.min_length, s.max_length) == (10, 1000)
    for it, (low, high) in [(0, (10, 100)), (50, (55, 550)), (100, (100, 1000)), (300, (100, 1000))]:
        x = samples(s, it)
        assert x.min() >= low - 1 and x.max() <= high
        assert x.min() <= low * 1.01 and x.max() >= high * 0.99
        np.testing.assert_allclose(np.median(x), np.sqrt(low * (high + 1)), rtol=0.05)


def test_choice_draws_each_length_equally_often():
    s = build("schedule=choice")
    assert (s.min_length, s.max_length) == (200, 800)
    values, counts = np.unique(samples(s, 7), return_counts=True)
    np.testing.assert_array_equal(values, [200, 300, 400, 800])
    np.testing.assert_allclose(counts / N, 0.25, atol=0.02)


def test_never_ending_problems_start_at_step_0_and_are_never_reset():
    s = build("schedule=never_ending")
    assert s.min_length == s.max_length == schedules.NEVER == 2**31 - 1
    assert (samples(s, 3, 16) == schedules.NEVER).all()
    unroll = TruncatedUnroll(QUADRATIC, LogLrSGD(), s)
    states = unroll.init(jnp.zeros(()), jax.random.PRNGKey(0), 64, random_offset=True)
    assert (np.asarray(states.step) == 0).all()  # no random offset into an endless problem


def test_constant_min_equals_max():
    s = build("schedule.length=30")
    assert s.min_length == s.max_length == 30 and (samples(s, 0, 8) == 30).all()


@pytest.mark.parametrize("overrides, match", [
    (["schedule=linear", "schedule.jitter=1.0"], "schedule.jitter=1.0 is invalid"),
    (["schedule=linear", "schedule.start=0"], "schedule.start=0 is invalid"),
    (["schedule=log_uniform", "schedule.low=50", "schedule.high=20"], "schedule.low/high=.50, 20. is invalid"),
    (["schedule=log_uniform", "schedule.final_high=10"], "schedule.final_low/final_high=.50, 10. is invalid"),
    (["schedule=choice", "schedule.lengths=[]"], r"schedule.lengths=\[\] is invalid"),
    (["schedule=choice", "schedule.lengths=[10,0]"], r"schedule.lengths=\[10, 0\] is invalid"),
])
def test_bad_schedule_values_are_rejected(overrides, match):
    with pytest.raises(ConfigError, match=match):
        build(*overrides)


def test_truncation_must_fit_the_shortest_problem():
    # linear: the shortest problem is start * (1 - jitter) = 40 steps
    meta_train.build(compose_meta_train("schedule=linear", "estimator.trunc_length=40"))
    with pytest.raises(ConfigError, match="trunc_length=41 is longer .*schedule min length 40"):
        meta_train.build(compose_meta_train("schedule=linear", "estimator.trunc_length=41"))
    with pytest.raises(ConfigError, match="schedule min length 200"):
        meta_train.build(compose_meta_train("schedule=choice", "estimator.trunc_length=201"))
