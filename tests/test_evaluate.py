import jax
import numpy as np
import pytest

from lopt import tasks
from lopt.commands import evaluate
from lopt.errors import ConfigError, UserError
from lopt.optimizers import hand_designed
from lopt.training.curves import CurveSettings, training_curves
from tests.conftest import compose
from tests.quadratic import CURVATURE, DATA, QUADRATIC


def test_curves_follow_the_closed_form_of_sgd_on_a_quadratic():
    """SGD on 0.5 * sum(c p^2) from p0: loss_t = 0.5 * sum(c (1 - lr c)^(2t) p0^2)."""
    s = CurveSettings(num_seeds=3, num_steps=12, eval_every=4, eval_batches=2, last_eval_batches=5)
    lr = 0.3
    curves = training_curves(QUADRATIC, hand_designed.SGD(lr).build(s.num_steps), None, DATA,
                             jax.random.PRNGKey(0), s)
    p0, c = np.array([1.0, -2.0]), np.asarray(CURVATURE)
    exact = np.array([0.5 * np.sum(c * (1 - lr * c) ** (2 * t) * p0**2) for t in range(13)])
    assert curves["train/loss"].shape == (3, 12)
    np.testing.assert_allclose(curves["train/loss"], np.broadcast_to(exact[:12], (3, 12)), rtol=1e-5)
    for name in ("eval/train/loss", "eval/test/loss"):
        assert curves[name].shape == (3, 4)
        np.testing.assert_allclose(curves[name], np.broadcast_to(exact[::4], (3, 4)), rtol=1e-5)


def test_classification_curves_improve_and_stay_in_range():
    cfg = compose("evaluate", "data.source=synthetic", "num_seeds=2", "num_steps=20", "eval_every=10",
                  "optimizer.lr=0.01")
    c = evaluate.build(cfg)
    data = tasks.load_data(c.task_config, c.shared.data, 0)
    curves = jax.device_get(training_curves(c.task, c.evaluated.optimizer(c.settings.num_steps), None, data, jax.random.PRNGKey(0), c.settings))
    assert set(curves) == {"train/loss", "eval/train/loss", "eval/train/accuracy", "eval/test/loss",
                           "eval/test/accuracy"}
    assert (curves["eval/train/loss"][:, -1] < curves["eval/train/loss"][:, 0]).all()
    assert ((0 <= curves["eval/test/accuracy"]) & (curves["eval/test/accuracy"] <= 1)).all()
    assert not np.array_equal(curves["train/loss"][0], curves["train/loss"][1])  # seeds differ


@pytest.mark.parametrize("override, error, message", [
    ("num_steps=7", ConfigError, "num_steps=7 is invalid: it must be a multiple of eval_every=5"),
    ("optimizer.lr=-1", ConfigError, "optimizer.lr=-1.0 is invalid: it must be a non-negative float"),
    ("tuned=grid", ConfigError, "tuned=grid evaluates adam at each suite task's best stored configuration: it "
                                "needs suite=<"),
])
def test_bad_evaluate_config(override, error, message):
    with pytest.raises(error, match=message):
        evaluate.build(compose("evaluate", override))


def test_missing_checkpoint_names_the_path(tmp_path):
    with pytest.raises(UserError, match=f"theta='{tmp_path / 'nope'}' does not exist"):
        evaluate.build(compose("evaluate", "lopt=small_fc_lopt", f"theta={tmp_path / 'nope'}"))
