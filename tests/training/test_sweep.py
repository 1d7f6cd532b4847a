import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lopt import tasks
from lopt.commands import baseline_sweep
from lopt.errors import ConfigError
from lopt.optimizers import hand_designed
from lopt.training import sweep
from lopt.training.curves import CurveSettings, training_curves
from tests.conftest import compose
from tests.quadratic import DATA, QUADRATIC

SETTINGS = CurveSettings(num_seeds=2, num_steps=8, eval_every=4, eval_batches=2, last_eval_batches=3)


def test_vectorized_sweep_equals_evaluating_each_learning_rate():
    cfg = compose("baseline_sweep", "data.source=synthetic", "data.synthetic_examples=64")
    c = baseline_sweep.build(cfg)
    data = tasks.load_data(c.task_config, c.shared.data, 0)
    lrs = (1e-3, 1e-2)
    key = jax.random.PRNGKey(3)
    swept = sweep.sweep_curves(c.task, c.optimizer, {"lr": jnp.asarray(lrs)}, data, key, SETTINGS)
    for i, lr in enumerate(lrs):
        single = training_curves(c.task, hand_designed.Adam(lr).build(SETTINGS.num_steps), None, data, key, SETTINGS)
        for name in single:
            np.testing.assert_allclose(swept[name][i], single[name], rtol=2e-5, atol=1e-6)


def test_random_search_in_chunks_equals_evaluating_each_configuration():
    """nadamw's random search, 5 configurations trained 2 at a time (lax.map), vs one by one."""
    cfg = compose("baseline_sweep", "optimizer=nadamw", "sweep.num_samples=5", "sweep.batch_size=2")
    c = baseline_sweep.build(cfg)
    space = c.settings.sweep.configurations(c.optimizer, seed=1)
    assert set(space) == set(c.optimizer.hyperparameters()) and len(space["lr"]) == 5
    key = jax.random.PRNGKey(0)
    swept = jax.jit(sweep.sweep_curves, static_argnums=(0, 1, 5, 6))(
        QUADRATIC, c.optimizer, {k: jnp.asarray(v, jnp.float32) for k, v in space.items()}, DATA, key, SETTINGS, 2)
    for i in range(5):
        opt = hand_designed.NAdamW(**{k: float(v[i]) if k != "nesterov" else bool(v[i]) for k, v in space.items()})
        single = training_curves(QUADRATIC, opt.build(SETTINGS.num_steps), None, DATA, key, SETTINGS)
        for name in single:
            np.testing.assert_allclose(swept[name][i], single[name], rtol=1e-4, atol=1e-6)


def test_a_schedule_spans_schedule_steps_then_holds_its_last_value():
    """A baseline runs longer than the task (horizon_mult) with NAdamW's schedule spanning the task's
    length: its first steps are the run of NAdamW scheduled for that length, and it goes on after."""
    nadamw = hand_designed.NAdamW(lr=0.05, warmup_fraction=0.25, constant_fraction=0.5, min_lr_mult=0.1)
    key, short = jax.random.PRNGKey(0), CurveSettings(num_seeds=2, num_steps=8, eval_every=4)
    longer = CurveSettings(num_seeds=2, num_steps=24, eval_every=4)
    swept = sweep.sweep_curves(QUADRATIC, nadamw, {"lr": jnp.asarray([0.05])}, DATA, key, longer, schedule_steps=8)
    own = training_curves(QUADRATIC, nadamw.build(8), None, DATA, key, short)["train/loss"]
    np.testing.assert_allclose(swept["train/loss"][0, :, :8], own, rtol=1e-5)
    spanning = sweep.sweep_curves(QUADRATIC, nadamw, {"lr": jnp.asarray([0.05])}, DATA, key, longer)
    assert not np.allclose(spanning["train/loss"][0, :, :8], own)  # scheduled over all 24 steps: another run
    assert np.all(np.diff(np.asarray(swept["train/loss"][0, :, 8:]).mean(axis=0)) < 0)  # still training at 0.1 lr


def test_diverged_configurations_are_flagged_and_ranked_last():
    lrs = (0.1, 1e4)  # SGD on the quadratic: the second one blows up to inf/nan
    curves = jax.device_get(sweep.sweep_curves(QUADRATIC, hand_designed.SGD(), {"lr": jnp.asarray(lrs)}, DATA,
                                               jax.random.PRNGKey(0), SETTINGS))
    results = sweep.configuration_results([{"lr": lr} for lr in lrs], {k: np.asarray(v) for k, v in curves.items()})
    ok, bad = results
    assert not ok.diverged and bad.diverged and bad.diverged_seeds == 2
    assert bad.metrics["final/eval/train/loss"] == sweep.Stat(None, None)
    assert np.isfinite(ok.metrics["final/eval/train/loss"].mean)
    ranked = sorted(results, key=lambda r: r.value("final_train_loss"))
    assert [r.hyperparameters["lr"] for r in ranked] == [0.1, 1e4] and bad.value("final_train_loss") == np.inf
    for r in results:  # as sweep.json holds it: JSON with the keys it always had, read back whole
        doc = json.loads(json.dumps(r.to_json()))
        assert set(doc) == {"hyperparameters", "diverged_seeds", "diverged", "metrics", "curves"}
        assert doc["metrics"]["final/eval/train/loss"].keys() == {"mean", "std"} and doc["diverged"] == r.diverged
        again = sweep.Configuration.from_json(doc)
        assert (again.hyperparameters, again.diverged_seeds, again.metrics) == (r.hyperparameters, r.diverged_seeds,
                                                                                 r.metrics)


def test_half_decade_grid():
    np.testing.assert_allclose(sweep.half_decade_grid(1e-4, 1.0), [1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0])
    assert baseline_sweep.build(compose("baseline_sweep", "sweep.lr_range=[1e-3,1e-2]")).settings.sweep.grid == pytest.approx((1e-3, 3e-3, 1e-2))


def test_bad_sweep_settings():
    with pytest.raises(ConfigError, match="sweep.criterion='best' is invalid"):
        baseline_sweep.build(compose("baseline_sweep", "sweep.criterion=best"))
    with pytest.raises(ConfigError, match="sweep.lrs=.* is invalid"):
        baseline_sweep.build(compose("baseline_sweep", "sweep.lrs=[]"))
    with pytest.raises(ConfigError, match="sweep.num_samples=0 is invalid"):
        baseline_sweep.build(compose("baseline_sweep", "sweep.num_samples=0"))
