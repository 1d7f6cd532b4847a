import jax
import numpy as np
import pytest

from lopt import estimators
from lopt.commands import meta_train
from lopt.meta_trainer import metric_record
from tests.conftest import CHEAP, TINY, compose_meta_train


@pytest.mark.parametrize("name,cls,branches", [
    ("pes", estimators.PES, 2), ("es", estimators.ES, 2), ("tbptt", estimators.TBPTT, 1),
    ("merged", estimators.Merged, 2)])
def test_each_estimator_config_builds_and_counts_its_inner_steps(name, cls, branches):
    c = meta_train.build(compose_meta_train(*TINY, f"estimator={name}"))
    assert type(c.trainer.estimator) is cls and c.trainer.estimator.normalize_task_grads == "none"
    assert c.trainer.inner_steps_per_iteration == branches * c.settings.num_tasks * 3


@pytest.mark.parametrize("overrides", [
    ["estimator=es", "estimator.normalize_task_grads=family"], ["estimator=tbptt"], ["estimator=merged"]])
def test_tiny_meta_training_moves_theta_and_stays_finite(overrides):
    """learnable_adam: backprop through small_fc_lopt's unroll compiles for minutes on XLA:CPU."""
    c = meta_train.build(compose_meta_train(*CHEAP, *overrides))
    data = c.load_data()
    step = jax.jit(c.trainer.step, donate_argnums=0)
    state = c.trainer.init(jax.random.PRNGKey(0))
    theta0 = jax.device_get(state.theta)
    for _ in range(3):
        state, report = step(state, data)
        metrics = metric_record(report)
        assert all(np.isfinite(v) for v in metrics.values())
        assert int(metrics["outer/nonfinite_tasks"]) == 0  # no task's meta-gradient was dropped
    assert step._cache_size() == 1
    moved = [np.abs(np.asarray(a) - b).max() for a, b in
             zip(jax.tree_util.tree_leaves(state.theta), jax.tree_util.tree_leaves(theta0))]
    assert max(moved) > 0 and all(np.isfinite(m) for m in moved)
