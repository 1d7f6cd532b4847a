import itertools

import jax
import pytest

from lopt import tasks
from lopt.optimizers.hand_designed import SGD, Adam
from lopt.training import step_cost

TASK = tasks.build({"name": "quadratic", "kind": "quadratic", "dim": 6})


def test_state_bytes_count_the_accumulators_and_the_program_holds_parameters_and_state():
    """SGD keeps no state; Adam keeps two float32 moments per parameter and an int32 step count."""
    costs = step_cost.measure(TASK, {"sgd": SGD(0.1).build(20), "adam": Adam(0.1).build(20)}, None, steps=4,
                              rounds=1)
    params = TASK.init(jax.random.PRNGKey(0))
    n = sum(x.size for x in jax.tree_util.tree_leaves(params))
    assert costs["sgd"].param_bytes == costs["adam"].param_bytes == 4 * n
    assert costs["sgd"].state_bytes == 0
    assert costs["adam"].state_bytes == 2 * 4 * n + 4
    for c in costs.values():
        assert c.program_bytes is not None and c.program_bytes >= c.param_bytes + c.state_bytes
        assert c.step_s > 0 and c.compile_s > 0


def test_each_optimizer_keeps_its_best_round_per_step_and_overhead_divides_by_the_reference():
    """A clock that advances 1, 2, 3, ... s per reading: the optimizers take turns, so in round r
    (0-based) "a" is timed over the 2r+1-th interval and "b" the 2r+2-th; the best are the first."""
    ticks = itertools.accumulate(itertools.count(1))  # 1, 3, 6, 10, ...: the k-th interval lasts k+1 s
    costs = step_cost.measure(TASK, {"a": SGD(0.1).build(10), "b": SGD(0.1).build(10)}, None, steps=4, rounds=3,
                              clock=lambda: float(next(ticks)))
    assert costs["a"].step_s == pytest.approx(2 / 4)  # readings 1, 3: 2 s over 4 steps
    assert costs["b"].step_s == pytest.approx(4 / 4)  # readings 6, 10
    assert step_cost.overhead(costs, "a") == pytest.approx({"a": 1.0, "b": 2.0})
    assert costs["a"].to_json()["step_ms"] == pytest.approx(500.0)


def test_bad_counts_are_refused():
    with pytest.raises(ValueError, match="steps=0"):
        step_cost.measure(TASK, {"sgd": SGD(0.1).build(10)}, None, steps=0)


class _SharedZeros:
    """An optimizer whose state holds one array twice (as a state of fresh zeros may)."""

    def init(self, theta, params, num_steps=None):
        zeros = jax.tree_util.tree_map(jax.numpy.zeros_like, params)
        return zeros, zeros

    def update(self, theta, state, params, grads, loss):
        m, v = state
        m = jax.tree_util.tree_map(lambda a, g: 0.9 * a + g, m, grads)
        return jax.tree_util.tree_map(lambda p, a: p - 0.1 * a, params, m), (m, v)


def test_a_state_holding_one_array_twice_is_timed():
    costs = step_cost.measure(TASK, {"shared": _SharedZeros()}, None, steps=3, rounds=2)
    assert costs["shared"].state_bytes == 2 * costs["shared"].param_bytes
