"""Tiny meta-trainings with each schedule: problems reset exactly at the lengths it samples."""
import jax
import numpy as np

from lopt.commands import meta_train
from lopt.meta_trainer import metric_record
from tests.conftest import CHEAP, compose_meta_train

BASE = [o for o in CHEAP if not o.startswith("schedule.")]  # trunc_length 3, 2 tasks
T = 3


def run_checking_resets(*overrides: str, iterations: int = 8) -> list[int]:
    """Meta-train and check every truncation of every task against the schedule: a problem at
    step s of length L resets iff s + T >= L; its successor has step s + T - L and the length the
    schedule samples from the problem's key at that outer iteration. Returns the sampled lengths."""
    c = meta_train.build(compose_meta_train(*BASE, *overrides))
    schedule, data = c.trainer.unrolls[0].schedule, c.load_data()
    step = jax.jit(c.trainer.step)
    state = c.trainer.init(jax.random.PRNGKey(0))
    lengths = []
    for it in range(iterations):
        before = jax.device_get(state.estimator_state[0].inner)  # the one task's PES state
        state, report = step(state, data)
        metrics = metric_record(report)
        after = jax.device_get(state.estimator_state[0].inner)
        n = before.step.shape[0] // 2
        np.testing.assert_array_equal(after.length[:n], after.length[n:])  # branches share resets
        np.testing.assert_array_equal(after.step[:n], after.step[n:])
        reset = before.step[:n] + T >= before.length[:n]
        assert int(metrics["inner/resets"]) == reset.sum()
        for i in range(n):
            if reset[i]:
                k_len = jax.random.split(before.key[i], 3)[1]
                expected = int(schedule.sample(k_len, np.int32(it)))
                assert after.length[i] == expected and after.step[i] == before.step[i] + T - before.length[i]
                lengths.append(expected)
            else:
                assert after.length[i] == before.length[i] and after.step[i] == before.step[i] + T
        assert schedule.min_length <= after.length[:n].min() and after.length[:n].max() <= schedule.max_length
        assert np.isfinite(float(metrics["outer/loss"]))
    assert step._cache_size() == 1
    return lengths


def test_linear_schedule_resets_at_growing_jittered_lengths():
    lengths = run_checking_resets("schedule=linear", "schedule.start=4", "schedule.end=12",
                                  "schedule.iterations=8", "schedule.jitter=0.25", iterations=10)
    assert len(lengths) >= 4 and lengths[-1] > lengths[0]


def test_log_uniform_schedule_resets_at_sampled_lengths():
    lengths = run_checking_resets("schedule=log_uniform", "schedule.low=3", "schedule.high=9")
    assert len(lengths) >= 3 and set(lengths) <= set(range(3, 10))


def test_choice_schedule_resets_at_listed_lengths():
    lengths = run_checking_resets("schedule=choice", "schedule.lengths=[3,5,8]")
    assert len(lengths) >= 3 and set(lengths) <= {3, 5, 8}


def test_never_ending_problems_are_never_reset():
    """With random initial offsets (the default) too: step counters only count up, by T per truncation."""
    assert run_checking_resets("schedule=never_ending") == []
