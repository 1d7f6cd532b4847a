import numpy as np
import pytest

from lopt.evaluation import scores

# Two learning rates x two seeds x five steps; the seeds of each learning rate agree.
FAST = [3.0, 2.0, 1.5, 1.2, 1.0]
SLOW = [3.0, 2.5, 2.0, 1.8, 0.9]
BASELINE = np.array([[FAST, FAST], [SLOW, SLOW]])


def test_smoothing_is_a_debiased_moving_average():
    np.testing.assert_allclose(scores.smooth(np.array([4.0, 2.0]), 0.5), [4.0, (0.25 * 4 + 0.5 * 2) / 0.75])
    np.testing.assert_array_equal(scores.smooth(np.array([4.0, 2.0]), 0.0), [4.0, 2.0])
    assert np.isnan(scores.smooth(np.array([1.0, np.nan, 1.0]), 0.5)[2])  # a divergence stays


def test_envelope_is_the_running_minimum_over_learning_rates_of_seed_means():
    np.testing.assert_allclose(scores.envelope(BASELINE, 0.0), [3.0, 2.0, 1.5, 1.2, 0.9])
    bumpy = np.array([[[3.0, 1.0, 2.0, 0.5]], [[3.0, 2.5, 1.5, 1.0]]])
    np.testing.assert_allclose(scores.envelope(bumpy, 0.0), [3.0, 1.0, 1.0, 0.5])
    # a learning rate whose seed diverged no longer counts from that step on
    diverged = np.array([[[3.0, 1.0, np.nan, 0.1], [3.0, 1.0, 1.0, 0.1]], [[3.0, 2.0, 1.5, 1.2]] * 2])
    np.testing.assert_allclose(scores.envelope(diverged, 0.0), [3.0, 1.0, 1.0, 1.0])


def test_steps_to_reach_inverts_the_envelope():
    env = np.array([3.0, 2.0, 1.5, 1.2, 1.0])
    assert scores.steps_to_reach(env, 1.5) == 3  # after 2 steps: index 2 is the third value
    assert scores.steps_to_reach(env, 1.6) == 3
    assert scores.steps_to_reach(env, 3.0) == 1
    assert scores.steps_to_reach(env, 0.99) is None


def test_task_scores_by_hand():
    evaluated = np.array([[3.0, 2.2, 1.8, 1.6, 1.5],     # final 1.5: the envelope gets there in 3 of 5 steps
                          [3.0, 2.0, 1.2, 0.8, 0.7],     # final 0.7: below anything Adam reaches; it
                                                         # reaches Adam's best (0.9) in 4 steps, Adam in 5
                          [3.0, 9.0, np.inf, np.nan, np.nan]])  # diverged: counts at the loss clip
    s = scores.score_task(evaluated, BASELINE, 0.0, loss_clip=4.0)
    np.testing.assert_allclose(s.final_loss, [1.5, 0.7, 4.0])
    np.testing.assert_allclose(s.speedup, [3 / 5, 5 / 4, 1 / 5])  # the diverged seed "reaches" 4.0 at step 1
    np.testing.assert_array_equal(s.reached, [True, False, True])
    assert s.best_loss == 0.9 and s.initial_loss == 3.0
    np.testing.assert_allclose(s.loss_ratio, [1.5 / 0.9, 0.7 / 0.9, 4.0 / 0.9])
    np.testing.assert_allclose(s.normalized_loss, [(1.5 - 0.9) / 2.1, 0.0, 1.0])
    np.testing.assert_allclose(s.mean_loss, [10.1 / 5, 7.7 / 5, (3.0 + 4.0 * 4) / 5])  # 9, inf, nan at the clip
    point = s.point()
    assert point["reached"] is False and point["beats_adam"] is False
    assert point["final_loss"] == pytest.approx((1.5 + 0.7 + 4.0) / 3)


def test_the_tuned_baseline_scores_one_against_itself():
    s = scores.score_task(BASELINE[0], BASELINE, 0.0, loss_clip=10.0)
    np.testing.assert_allclose(s.speedup, 1.0)
    np.testing.assert_allclose(s.loss_ratio, 1.0 / 0.9)  # the slower rate ends lower: the envelope's best is 0.9


def test_mismatched_lengths_are_refused():
    with pytest.raises(ValueError, match="4 steps, the baseline's 5"):
        scores.score_task(np.ones((2, 4)), BASELINE, 0.0, 10.0)
