import jax
import numpy as np
import pytest

from lopt import meta_train
from lopt.errors import ConfigError
from tests.conftest import TINY, compose_meta_train


def _run_steps(cfg, n):
    c = meta_train.build(cfg)
    data = meta_train.load_data(c)
    step = jax.jit(c.trainer.step, donate_argnums=0)
    state = c.trainer.init(jax.random.PRNGKey(c.settings.seed))
    history = []
    for _ in range(n):
        state, metrics = step(state, data)
        history.append(jax.device_get(metrics))
    return step, state, history


def test_one_compile_for_all_outer_iterations(tiny_cfg):
    step, state, history = _run_steps(tiny_cfg, 4)
    assert step._cache_size() == 1
    assert int(state.iteration) == 4
    assert all(np.isfinite(h["outer/loss"]) and np.isfinite(h["outer/grad_norm"]) for h in history)


def test_same_seed_same_theta_other_seed_differs():
    cfg = compose_meta_train(*TINY)
    _, a, _ = _run_steps(cfg, 2)
    _, b, _ = _run_steps(compose_meta_train(*TINY), 2)
    _, c, _ = _run_steps(compose_meta_train(*TINY, "seed=1"), 2)
    for x, y in zip(jax.tree_util.tree_leaves(a.theta), jax.tree_util.tree_leaves(b.theta)):
        np.testing.assert_array_equal(x, y)
    assert any(not np.array_equal(x, y) for x, y in
               zip(jax.tree_util.tree_leaves(a.theta), jax.tree_util.tree_leaves(c.theta)))


def test_outer_step_applies_clipped_adam_to_the_pes_gradient(tiny_cfg):
    """theta moves by at most lr per value per Adam step (Adam's first step is lr * sign(g))."""
    c = meta_train.build(tiny_cfg)
    data = meta_train.load_data(c)
    state = c.trainer.init(jax.random.PRNGKey(0))
    theta0 = state.theta
    new, _ = jax.jit(c.trainer.step)(state, data)
    moves = jax.tree_util.tree_map(lambda a, b: np.abs(np.asarray(a) - np.asarray(b)), new.theta, theta0)
    biggest = max(float(m.max()) for m in jax.tree_util.tree_leaves(moves))
    assert 0 < biggest <= 3e-3 * (1 + 1e-4)


def test_meta_training_reduces_the_outer_loss():
    """A short real run on the offline digits task: PES + Adam must improve the learned optimizer."""
    cfg = compose_meta_train("tracking.mode=disabled", "num_tasks=4", "schedule.length=40",
                             "estimator.trunc_length=10", "outer_opt.lr=0.03")
    _, _, history = _run_steps(cfg, 200)
    first = np.mean([h["outer/loss"] for h in history[:20]])
    last = np.mean([h["outer/loss"] for h in history[-40:]])
    assert first > 2.25  # the untrained optimizer barely trains: loss stays near ln(10)
    assert last < first - 0.3


def test_trunc_longer_than_schedule_is_rejected():
    with pytest.raises(ConfigError, match="estimator.trunc_length=30 is longer"):
        meta_train.build(compose_meta_train("estimator.trunc_length=30", "schedule.length=20"))
