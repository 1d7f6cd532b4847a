"""MetaTrainer over task variants: one estimator over several task variants in one compiled call."""
import jax
import numpy as np
import pytest

from lopt import estimators, learned, schedules, tasks
from lopt.base import Estimate
from lopt.data.settings import DataSettings
from lopt.meta_trainer import MetaTrainer, combine, metric_record
from lopt.optimizers import outer as outer_lib
from lopt.tasks import family
from lopt.unroll import TruncatedUnroll
from tests.conftest import CHEAP, compose_meta_train


def _cfg(value, *overrides):
    return compose_meta_train(*CHEAP, f"family={value}", *overrides)


def _parts(cfg):
    configs = [v.config for v in family.variants(cfg.family)]
    lopt, schedule = learned.build(cfg.lopt), schedules.build(cfg.schedule)
    unrolls = tuple(TruncatedUnroll(tasks.build(c), lopt, schedule) for c in configs)
    datas = family.load_data(configs, lambda c: tasks.load_data(c, DataSettings(source="synthetic", synthetic_examples=64), 0))
    return configs, lopt, schedule, unrolls, datas


def _trainer(cfg, configs, lopt, schedule, unrolls, estimator, num_tasks=2):
    return MetaTrainer(unrolls, tuple(c.name for c in configs), lopt, estimator,
                       outer_lib.build(cfg.outer_opt).transform(), schedule, num_tasks)


def test_combined_gradient_is_the_mean_of_the_variants_estimates():
    cfg = _cfg("quadratic_family", "family.quadratic_family.num_variants=2",
               "family.quadratic_family.dim=[3,9]", "family.quadratic_family.seed=1")
    configs, lopt, schedule, unrolls, datas = _parts(cfg)
    assert len({c.dim for c in configs}) == 2  # different parameter shapes
    base = estimators.build(cfg.estimator)
    trainer = _trainer(cfg, configs, lopt, schedule, unrolls, base)
    theta = lopt.init_theta(jax.random.PRNGKey(0))
    k_init, k_est, it = jax.random.PRNGKey(1), jax.random.PRNGKey(2), np.int32(0)
    states = tuple(base.init(u, theta, k, 2) for u, k in zip(unrolls, jax.random.split(k_init, 2)))
    est = jax.jit(trainer.estimate)(theta, states, datas, k_est, it)
    keys = jax.random.split(k_est, 2)
    singles = [jax.jit(base.estimate, static_argnums=0)(u, theta, s, d, k, it)
               for u, s, d, k in zip(unrolls, states, datas, keys)]
    expected = jax.tree_util.tree_map(lambda a, b: (a + b) / 2, singles[0].grad, singles[1].grad)
    for got, want in zip(jax.tree_util.tree_leaves(est.grad), jax.tree_util.tree_leaves(expected)):
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-6, atol=1e-9)
    assert max(float(np.abs(g).max()) for g in jax.tree_util.tree_leaves(est.grad)) > 0
    for got, single in zip(est.state, singles):  # each variant's state advances as alone
        for a, b in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(single.state)):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6)
    losses = [float(s.meta_loss) for s in singles]
    assert float(est.meta_loss) == pytest.approx(np.mean(losses), rel=1e-6)
    assert [float(est.metrics[f"family/{c.name}/loss"]) for c in configs] == pytest.approx(losses, rel=1e-6)
    assert float(est.metrics["inner/resets"]) == sum(float(s.metrics["inner/resets"]) for s in singles)
    assert trainer.estimator is base  # every variant runs the configured estimator itself, unwrapped


def test_counts_are_summed_and_the_rest_averaged():
    a = Estimate(grad={"w": 1.0}, state="state a", finite_tasks=1, meta_loss=1.0,
                 metrics={"inner/resets": 2, "inner/nonfinite_resets": 0, "x": 4.0})
    b = Estimate(grad={"w": 3.0}, state="state b", finite_tasks=2, meta_loss=3.0,
                 metrics={"inner/resets": 5, "inner/nonfinite_resets": 2, "x": 0.0})
    m = combine(("a", "b"), [a, b])
    assert m.metrics == {"inner/resets": 7, "inner/nonfinite_resets": 2, "x": 2.0,
                         "family/a/loss": 1.0, "family/b/loss": 3.0}
    assert m.meta_loss == 2.0 and m.finite_tasks == 3  # the outer loss averaged, finite tasks summed
    assert m.grad == {"w": 2.0} and m.state == ("state a", "state b")


def test_tiny_meta_training_over_an_mlp_and_a_quadratic_compiles_once():
    cfg = _cfg("[mlp_family,quadratic_family]", "family.mlp_family.num_variants=1",
               "family.quadratic_family.num_variants=1", "family.mlp_family.widths=[8]")
    configs, lopt, schedule, unrolls, datas = _parts(cfg)
    shapes = [jax.tree_util.tree_map(np.shape, u.task.init(jax.random.PRNGKey(0))) for u in unrolls]
    assert shapes[0] != shapes[1] and datas[1] is None
    base = estimators.build(cfg.estimator)
    trainer = _trainer(cfg, configs, lopt, schedule, unrolls, base)
    step = jax.jit(trainer.step, donate_argnums=0)
    state = trainer.init(jax.random.PRNGKey(0))
    theta0 = jax.tree_util.tree_map(np.asarray, state.theta)
    for _ in range(3):
        state, report = step(state, datas)
    assert step._cache_size() == 1
    metrics = metric_record(report)
    assert set(metrics) >= {"outer/loss", "family/mlp_family_0/loss", "family/quadratic_family_0/loss"}
    losses = [float(metrics[f"family/{c.name}/loss"]) for c in configs]  # a noisy quadratic's can be < 0
    assert 0 < losses[0] <= unrolls[0].task.loss_clip and np.isfinite(losses[1])
    assert losses[1] <= unrolls[1].task.loss_clip
    assert float(metrics["outer/loss"]) == pytest.approx(np.mean(losses), rel=1e-5)
    assert np.isfinite(float(metrics["outer/grad_norm"]))
    moved = jax.tree_util.tree_map(lambda a, b: np.abs(np.asarray(b) - a).max(), theta0, state.theta)
    assert max(jax.tree_util.tree_leaves(moved)) > 0
    assert trainer.inner_steps_per_iteration == 2 * base.inner_steps(2, schedule)
