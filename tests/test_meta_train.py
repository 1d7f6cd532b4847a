import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from lopt.commands import meta_train
from lopt.errors import ConfigError, UserError
from lopt.estimators import ES
from lopt.meta_trainer import MetaTrainer, metric_record
from lopt.schedules import ConstantSchedule
from lopt.unroll import TruncatedUnroll
from tests.conftest import CHEAP, TINY, compose_meta_train
from tests.estimators.reference import HALF_NAN
from tests.quadratic import DATA as QDATA
from tests.quadratic import LogLrSGD, quadratic_unroll


def _run_steps(cfg, n, **jit_options):
    """`n` outer iterations of `cfg`: the jitted step, the final state, each iteration's metrics, and
    theta before the first iteration and after each (host copies: the state is donated)."""
    c = meta_train.build(cfg)
    data = c.load_data()
    step = jax.jit(c.trainer.step, donate_argnums=0, **jit_options)
    state = c.trainer.init(jax.random.PRNGKey(c.settings.seed))
    history, thetas = [], [jax.device_get(state.theta)]
    for _ in range(n):
        state, report = step(state, data)
        history.append(metric_record(report))
        thetas.append(jax.device_get(state.theta))
    return step, state, history, thetas


@pytest.fixture(scope="module")
def tiny_run():
    """4 outer iterations of the tiny config, compiled once for the tests that read them."""
    return _run_steps(compose_meta_train(*TINY), 4)


def test_one_compile_for_all_outer_iterations(tiny_run):
    step, state, history, _ = tiny_run
    assert step._cache_size() == 1
    assert int(state.iteration) == 4
    assert all(np.isfinite(h["outer/loss"]) and np.isfinite(h["outer/grad_norm"]) for h in history)


def test_same_seed_same_theta_other_seed_differs(tiny_run):
    a = tiny_run[3][2]  # theta after 2 of its iterations
    b = _run_steps(compose_meta_train(*TINY), 2)[3][-1]
    c = _run_steps(compose_meta_train(*TINY, "seed=1"), 2)[3][-1]
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)):
        np.testing.assert_array_equal(x, y)
    assert any(not np.array_equal(x, y) for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(c)))


def test_outer_step_applies_clipped_adam_to_the_pes_gradient(tiny_run):
    """theta moves by at most lr per value per Adam step (Adam's first step is lr * sign(g))."""
    theta0, theta1 = tiny_run[3][:2]
    moves = jax.tree_util.tree_map(lambda a, b: np.abs(a - b), theta1, theta0)
    biggest = max(float(m.max()) for m in jax.tree_util.tree_leaves(moves))
    assert 0 < biggest <= 3e-3 * (1 + 1e-4)


def test_meta_training_reduces_the_outer_loss():
    """A short real run on the offline digits task: PES + Adam must improve the learned optimizer.
    Compiled with LLVM's optimizations (conftest.py turns them off for short runs), its 200
    iterations take a third of the time, more than paying for the slower compile."""
    cfg = compose_meta_train("tracking.mode=disabled", "num_tasks=4", "schedule.length=40",
                             "estimator.trunc_length=10", "outer_opt.lr=0.03")
    _, _, history, _ = _run_steps(cfg, 200, compiler_options={"xla_backend_optimization_level": 2})
    first = np.mean([h["outer/loss"] for h in history[:20]])
    last = np.mean([h["outer/loss"] for h in history[-40:]])
    assert first > 2.25  # the untrained optimizer barely trains: loss stays near ln(10)
    assert last < first - 0.3


def test_trunc_longer_than_schedule_is_rejected():
    with pytest.raises(ConfigError, match="estimator.trunc_length=30 is longer"):
        meta_train.build(compose_meta_train("estimator.trunc_length=30", "schedule.length=20"))


def _quadratic_trainer(unroll, num_tasks=8):
    return MetaTrainer((unroll,), ("quadratic",), LogLrSGD(), ES(std=0.01, trunc_length=10), optax.adam(0.1),
                       unroll.schedule, num_tasks, random_initial_offset=False)


def test_diverging_problems_leave_theta_unchanged_and_count_the_streak():
    """lr 1000 on the quadratic overflows within 7 steps: every task of every truncation is dropped."""
    trainer = _quadratic_trainer(quadratic_unroll(100))
    state = trainer.init(jax.random.PRNGKey(0), theta=jnp.log(jnp.array([1e3, 1e3])))
    theta0, opt0 = jax.device_get((state.theta, state.outer_opt_state))
    step = jax.jit(trainer.step)
    for i in range(1, 4):
        state, report = step(state, (QDATA,))
        metrics = metric_record(report)
        assert int(metrics["outer/nonfinite_tasks"]) == 8 and int(metrics["inner/nonfinite_resets"]) >= 8
        assert int(metrics["outer/nonfinite_streak"]) == int(state.nonfinite_streak) == i
    np.testing.assert_array_equal(state.theta, theta0)
    for a, b in zip(jax.tree_util.tree_leaves(state.outer_opt_state), jax.tree_util.tree_leaves(opt0)):
        np.testing.assert_array_equal(a, b)
    assert all(np.isfinite(x).all() for x in jax.tree_util.tree_leaves(state.estimator_state))


def test_a_nonfinite_outer_update_on_finite_tasks_leaves_theta_unchanged_and_counts_the_streak():
    """An outer optimizer that overflows on finite meta-gradients (as a learned one can) moves nothing."""
    unroll = quadratic_unroll(100)
    trainer = MetaTrainer((unroll,), ("quadratic",), LogLrSGD(), ES(std=0.01, trunc_length=10),
                          optax.scale(float("inf")), unroll.schedule, 8, random_initial_offset=False)
    state = trainer.init(jax.random.PRNGKey(0))
    theta0 = jax.device_get(state.theta)
    step = jax.jit(trainer.step)
    for i in range(1, 3):
        state, report = step(state, (QDATA,))
        metrics = metric_record(report)
        assert int(metrics["outer/nonfinite_tasks"]) == 0 and np.isfinite(metrics["outer/grad_norm"])
        assert int(metrics["outer/nonfinite_update"]) == 1
        assert int(metrics["outer/nonfinite_streak"]) == int(state.nonfinite_streak) == i
    np.testing.assert_array_equal(state.theta, theta0)


def test_a_step_with_some_finite_tasks_updates_theta_and_resets_the_streak():
    trainer = _quadratic_trainer(TruncatedUnroll(HALF_NAN, LogLrSGD(), ConstantSchedule(100)))
    state = trainer.init(jax.random.PRNGKey(0))._replace(nonfinite_streak=jnp.asarray(5, jnp.int32))
    new, report = jax.jit(trainer.step)(state, (QDATA,))
    metrics = metric_record(report)
    assert 0 < int(metrics["outer/nonfinite_tasks"]) < 8 and int(new.nonfinite_streak) == 0
    assert np.isfinite(new.theta).all() and not np.array_equal(new.theta, state.theta)


@pytest.mark.parametrize("overrides", [
    ["estimator=full_es"], ["estimator=full_es", "meta_loss=final"],
    pytest.param(["estimator=full_es", "meta_loss=valid"], marks=pytest.mark.slow),  # full_es-mean, pes-valid
    pytest.param(["meta_loss=final"], marks=pytest.mark.slow),  # full_es-final; pes final: tests/estimators
    ["meta_loss=valid"]],
    ids=["full_es-mean", "full_es-final", "full_es-valid", "pes-final", "pes-valid"])
def test_tiny_meta_training_with_each_meta_loss(overrides):
    full = "estimator=full_es" in overrides  # it has no trunc_length
    cfg = compose_meta_train(*[o for o in CHEAP if not (full and o.startswith("estimator."))], *overrides)
    step, state, history, _ = _run_steps(cfg, 3)
    assert step._cache_size() == 1 and all(np.isfinite(x).all() for x in jax.tree_util.tree_leaves(state.theta))
    clip = 1.5 * np.log(10)
    for h in history:
        assert int(h["outer/nonfinite_tasks"]) == 0 and int(h["outer/nonfinite_streak"]) == 0
        assert int(h["outer/nonfinite_update"]) == 0
        if full:  # every problem trains its 7 steps from step 0 and ends once
            assert int(h["inner/resets"]) == 2
        if "meta_loss=final" in overrides and not full and int(h["inner/resets"]) == 0:
            assert np.isnan(h["outer/loss"])  # no problem ended in this truncation
        else:
            assert 0 < h["outer/loss"] <= clip
        if not any(o.startswith("meta_loss") for o in overrides):  # mean: nothing clipped here
            np.testing.assert_allclose(h["outer/loss"], h["inner/loss"], rtol=1e-5)
        elif "meta_loss=valid" in overrides:  # the test split, not the training batches
            assert abs(h["outer/loss"] - h["inner/loss"]) > 1e-4
    if full:
        c = meta_train.build(cfg)
        assert c.trainer.inner_steps_per_iteration == 2 * 2 * 7


@pytest.mark.parametrize("overrides,match", [
    (["estimator=full_es", "schedule=never_ending"], "estimator=full_es unrolls every inner problem to its end"),
    (["meta_loss=final", "schedule=never_ending"], "meta_loss=final is the loss at the end"),
    (["meta_loss.name=last"], "Unknown meta-loss .meta_loss.name. 'last'. Valid choices: final, mean, valid"),
    (["max_nonfinite_iterations=0"], "max_nonfinite_iterations=0 is invalid"),
])
def test_bad_meta_loss_and_estimator_choices_are_rejected(overrides, match):
    with pytest.raises(ConfigError, match=match):
        meta_train.build(compose_meta_train(*overrides))


def test_task_families_train_every_variant_in_one_compiled_step():
    """Two families x 2 variants (different parameter shapes): one compile, the outer loss is the
    mean of the variants' losses, and every variant's problems are counted."""
    cfg = compose_meta_train(*CHEAP, "family=[mlp_family,quadratic_family]",
                             "family.mlp_family.num_variants=2", "family.quadratic_family.num_variants=2")
    c = meta_train.build(cfg)
    assert len(c.trainer.unrolls) == 4  # variants
    assert c.trainer.inner_steps_per_iteration == 4 * 2 * 2 * 3  # variants x branches x tasks x steps
    shapes = {tuple(jax.tree_util.tree_leaves(jax.eval_shape(u.task.init, jax.random.PRNGKey(0)))[0].shape)
              for u in c.trainer.unrolls}
    assert len(shapes) > 1
    step, state, history, _ = _run_steps(cfg, 3)
    assert step._cache_size() == 1
    for h in history:
        losses = [v for k, v in h.items() if k.startswith("family/")]
        assert len(losses) == 4
        np.testing.assert_allclose(h["outer/loss"], np.mean(losses), rtol=1e-6)
    assert np.all(np.isfinite(np.concatenate([np.ravel(x) for x in jax.tree_util.tree_leaves(state.theta)])))


def test_meta_training_on_suite_tasks_builds_each_task_as_the_suite_defines_it():
    """suite=smoke: one unroll per suite task, with the suite's overrides (digits_mlp hidden [16]);
    suite_tasks picks some of them, and adds them to a family's variants."""
    c = meta_train.build(compose_meta_train(*CHEAP, "suite=smoke"))
    assert c.trainer.names == ("digits_mlp", "quadratic")
    w0 = jax.eval_shape(c.trainer.unrolls[0].task.init, jax.random.PRNGKey(0))
    assert sorted(x.shape for x in jax.tree_util.tree_leaves(w0)) == [(10,), (16,), (16, 10), (64, 16)]
    c = meta_train.build(compose_meta_train(*CHEAP, "suite=smoke", "suite_tasks=[quadratic]",
                                            "family=quadratic_family", "family.quadratic_family.num_variants=1"))
    assert c.trainer.names == ("quadratic_family_0", "quadratic")
    assert c.task_configs[1].noise_std == 0.0  # the suite's override


def test_a_family_variant_trains_for_its_own_horizon_and_other_tasks_follow_the_schedule():
    family = ["family=offline_family", "family.offline_family.num_variants=2",
              "family.offline_family.datasets=[wine,diabetes]", "family.offline_family.horizon=[40,60]"]
    c = meta_train.build(compose_meta_train(*CHEAP, *family, "suite=smoke", "suite_tasks=[quadratic]"))
    assert c.trainer.names == ("offline_family_0", "offline_family_1", "quadratic")
    horizons = [u.schedule for u in c.unrolls[:2]]
    assert all(isinstance(h, ConstantSchedule) and 40 <= h.length <= 60 for h in horizons)
    assert c.unrolls[2].schedule == c.schedule  # the suite task: the run's schedule
    # a truncation longer than a variant's horizon is refused, naming the variant
    with pytest.raises(ConfigError, match=r"family variant offline_family_0 trains \d+ steps \(its horizon\)"):
        meta_train.build(compose_meta_train(*CHEAP, *family, "estimator.trunc_length=70", "schedule.length=100"))


@pytest.mark.parametrize("overrides, match", [
    (["suite_tasks=[quadratic]"], r"suite_tasks=\['quadratic'\] needs suite=<name>"),
    (["suite=smoke", "suite_tasks=[nope]"], "Unknown suite_tasks entry 'nope'. Valid choices: digits_mlp, quadratic"),
    (["suite=smoke", "suite_tasks=[quadratic,quadratic]"], "names a task twice"),
    (["eval.every=2", "eval.training_tasks=true"], "eval.training_tasks=true needs meta-training on suite tasks"),
])
def test_bad_suite_task_settings_are_rejected(overrides, match):
    with pytest.raises(UserError, match=match):
        meta_train.build(compose_meta_train(*CHEAP, *overrides))
