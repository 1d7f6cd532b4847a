import numpy as np
import pytest

from lopt.evaluation import aggregate


def test_iqm_is_the_mean_of_the_middle_half():
    assert aggregate.iqm(np.arange(1.0, 9.0)) == pytest.approx(4.5)  # mean of 3, 4, 5, 6
    assert aggregate.iqm(np.array([1.0, 2.0, 3.0, 100.0])) == pytest.approx(2.5)  # the outlier is trimmed


def test_pooled_statistics_and_their_stratified_intervals():
    tasks = [np.array([1.0, 2.0, 3.0, 4.0]), np.array([2.0, 3.0, 5.0, 9.0])]
    est = aggregate.estimate(tasks, aggregate.STATISTICS["iqm"], seed=0)
    assert est["value"] == pytest.approx(3.0)  # pooled: 1 2 2 3 3 4 5 9 -> mean of 2 3 3 4
    low, high = est["ci"]
    assert 1.0 <= low < 3.0 < high <= 9.0
    assert aggregate.estimate(tasks, aggregate.STATISTICS["iqm"], seed=0) == est  # seeded: reproducible
    # seeds that agree within every task leave nothing to resample: the interval is the value
    constant = aggregate.estimate([np.full(3, 1.0), np.full(3, 2.0)], aggregate.STATISTICS["mean"], seed=0)
    assert constant == {"value": 1.5, "ci": [1.5, 1.5]}
    # one seed per task: no interval
    assert aggregate.estimate([np.array([1.0]), np.array([2.0])], aggregate.STATISTICS["mean"], 0)["ci"] is None


def test_a_stratified_resample_keeps_every_task():
    """With two tasks of very different scores, a resample that dropped a task would put the mean
    near 1 or 100; stratified, every resample holds both tasks' seeds in equal numbers."""
    tasks = [np.array([0.9, 1.0, 1.1]), np.array([99.0, 100.0, 101.0])]
    low, high = aggregate.estimate(tasks, aggregate.STATISTICS["mean"], seed=0)["ci"]
    assert 49.9 <= low <= 50.5 <= high <= 51.1


def test_summary_of_a_suite():
    speedups = [np.array([2.0, 2.0]), np.array([0.5, 0.5])]
    ratios = [np.array([0.8, 0.9]), np.array([1.2, 1.4])]
    out = aggregate.summarize(speedups, ratios, seed=0)
    assert out["num_tasks"] == 2
    assert out["speedup_over_adam"]["median"]["value"] == pytest.approx(1.25)
    assert out["loss_ratio"]["mean"]["value"] == pytest.approx(1.075)
    assert out["win_fraction"]["value"] == 0.5  # the first task beats Adam on average, the second does not
    assert out["win_fraction"]["ci"] == [0.5, 0.5]  # on every resample too


def test_baseline_draws_widen_the_interval_by_the_baselines_error():
    """Seeds that agree leave nothing to resample, but a baseline whose draws disagree does: each
    resample takes one draw per task."""
    seeds = [np.full(3, 1.0), np.full(3, 2.0)]
    draws = [np.array([[0.5] * 3, [1.5] * 3]), np.array([[2.0] * 3] * 2)]  # [draws, seeds]
    est = aggregate.estimate(seeds, aggregate.STATISTICS["mean"], 0, draws)
    assert est["value"] == 1.5  # the point estimate is the scores', not the draws'
    assert est["ci"] == pytest.approx([1.25, 1.75])  # (0.5 + 2) / 2 and (1.5 + 2) / 2: both draws are taken
    assert aggregate.estimate(seeds, aggregate.STATISTICS["mean"], 0, draws) == est  # seeded: reproducible
    agreeing = [np.array([[1.0] * 3] * 2), np.array([[2.0] * 3] * 2)]
    assert aggregate.estimate(seeds, aggregate.STATISTICS["mean"], 0, agreeing)["ci"] == [1.5, 1.5]
