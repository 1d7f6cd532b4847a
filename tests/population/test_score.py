"""The population's default score, log_relative_loss, needs no baseline and is unclipped: checked
by hand, against the Adam-normalized score it replaces as the default, and as a bad setting."""
import math

import numpy as np
import pytest

from lopt.config import from_config
from lopt.errors import ConfigError
from lopt.evaluation import baseline_free, scores
from lopt.population import pbt
from lopt.population.settings import PopulationSettings
from tests.population.test_pbt import LENGTHS, A, draws


def result(train_loss: np.ndarray, baseline: np.ndarray) -> dict:
    """One task's evaluation as `TaskEvaluation` returns it (no smoothing, loss clip 10)."""
    sc = scores.score_task(train_loss, baseline, 0.0, 10.0)
    return {"scores": sc.point(), "curves": {"train_loss": sc.smoothed.mean(axis=0).tolist()}}


def test_log_relative_loss_by_hand():
    """Two seeds starting at 2 and 4 (mean 3) and ending at 0.5 and 1 (mean 0.75): log(0.75 / 3)."""
    losses = np.array([[2.0, 1.0, 0.5], [4.0, 2.0, 1.0]])
    r = result(losses, losses[None])
    assert baseline_free.task_score(r, "log_relative_loss") == pytest.approx(math.log(0.25))
    assert baseline_free.task_score(r, "final_loss") == pytest.approx(0.75)
    assert baseline_free.log_relative_loss(2.0, 1.0) == pytest.approx(math.log(2.0))  # worse than the start: > 0
    assert baseline_free.log_relative_loss(0.0, 1.0) == pytest.approx(math.log(np.finfo(float).tiny))
    for final, initial in [(1.0, None), (1.0, 0.0), (1.0, -1.0), (1.0, float("nan")), (float("inf"), 1.0)]:
        assert math.isnan(baseline_free.log_relative_loss(final, initial))


def test_two_members_that_both_beat_adam_tie_under_normalized_loss_but_not_under_the_default():
    """Tuned Adam goes 2 -> 0.5; member 0 ends at 0.3, member 3 at 0.1: both normalized losses
    clip to 0 (the lower index wins the tie), the default score ranks member 3 first."""
    steps = np.linspace(0.0, 1.0, 10)
    adam = (2.0 - 1.5 * steps)[None, None]
    good, better = (2.0 - 1.7 * steps)[None], (2.0 - 1.9 * steps)[None]
    members = {0: result(good, adam), 3: result(better, adam)}
    assert [baseline_free.task_score(members[i], "normalized_loss") for i in (0, 3)] == [0.0, 0.0]
    default = PopulationSettings().score
    assert default == "log_relative_loss" and not PopulationSettings().needs_baselines
    assert [baseline_free.task_score(members[i], default) for i in (0, 3)] == pytest.approx(
        [math.log(0.3 / 2.0), math.log(0.1 / 2.0)])
    for pair in [(0, 3), (3, 0)]:
        for score, winner in [("normalized_loss", 0), (default, 3)]:
            values = [baseline_free.task_score(members[i], score) for i in pair]
            _, event = pbt.exploit_explore(A, values, draws(pair=pair), LENGTHS)
            assert event.winner == winner, (pair, score)


def test_the_adam_normalized_score_stays_selectable_and_an_unknown_one_is_refused():
    assert PopulationSettings(score="normalized_loss").needs_baselines
    assert not PopulationSettings(score="mean_loss").needs_baselines
    with pytest.raises(ConfigError, match=r"population.score='bogus' is invalid: it must be one of final_loss, "
                                          r"speedup_over_adam, loss_ratio, normalized_loss, mean_loss, "
                                          r"log_relative_loss"):
        from_config(PopulationSettings, {"score": "bogus"}, "population")
