"""A population member's outer iteration: its theta is moved by the learned optimizer run with its
trainer's theta on its own meta-gradient (checked against the same step made by hand), the hand-
designed control moves it as meta-train's outer optimizer does, and an exploit restart takes the
winner's theta with fresh states; the local engine's vmapped iteration equals member-by-member
steps and compiles once per truncation length and number of members sharing it."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from lopt.commands import meta_train, population
from lopt.population.engine import LocalEngine, groups
from lopt.population.member import MemberProgram, member
from tests.conftest import compose

CFG = ["data.source=synthetic", "data.synthetic_examples=64", "tracking.mode=disabled", "num_tasks=2",
       "schedule.length=50", "lopt=learnable_adam"]
ZERO = jnp.zeros((), jnp.float32)


def leaves(tree):
    return [np.asarray(x) for x in jax.tree_util.tree_leaves(tree)]


def close(a, b, rtol=1e-6):
    for x, y in zip(leaves(a), leaves(b), strict=True):
        np.testing.assert_allclose(x, y, rtol=rtol, atol=1e-7)


def perturbed(thetas, key):
    """learnable_adam's init is deterministic: distinct members for the tests that need them."""
    keys = jax.random.split(key, len(jax.tree_util.tree_leaves(thetas)))
    flat, tree = jax.tree_util.tree_flatten(thetas)
    return tree.unflatten([x + 0.3 * jax.random.normal(k, x.shape) for x, k in zip(flat, keys)])


@pytest.fixture(scope="module")
def setup():
    c = meta_train.build(compose("meta_train", *CFG))
    prog = MemberProgram(c.trainer, self_training=True)
    outer = jnp.asarray([1, 2, 0], jnp.int32)  # 0 <- 1, 1 <- 2, 2 <- 0
    members = jax.jit(prog.initial, static_argnums=1)(jax.random.PRNGKey(0), 3, outer)
    thetas = perturbed(members.theta, jax.random.PRNGKey(1))
    members = jax.vmap(prog.init)(members.key, thetas, member(thetas, outer))
    return c, prog, outer, members, c.load_data()


def test_members_start_from_different_random_thetas_with_their_trainers_outer_state():
    c = meta_train.build(compose("meta_train", *CFG, "lopt=small_fc_lopt"))
    prog = MemberProgram(c.trainer, self_training=True)
    members = jax.jit(prog.initial, static_argnums=1)(jax.random.PRNGKey(0), 3, jnp.asarray([1, 2, 0]))
    thetas = [member(members.theta, i) for i in range(3)]
    assert any(not np.allclose(a, b) for a, b in zip(leaves(thetas[0]), leaves(thetas[1])))
    close(member(members.outer_opt_state, 0), c.trainer.lopt.init(thetas[1], thetas[0]))


def test_a_members_theta_moves_by_its_trainers_learned_optimizer(setup):
    c, prog, outer, members, data = setup
    lopt = c.trainer.lopt
    i, length = 0, 3
    state, trainer_theta = member(members, i), member(members.theta, int(outer[i]))
    new, report = jax.jit(prog.step, static_argnums=0)(length, state, trainer_theta, data)
    # by hand: the meta-gradient of a truncation of `length` steps, then one learned-optimizer step
    # with the trainer's theta on it, from the member's own outer state
    _, k_est = jax.random.split(state.key)
    at = prog.at(length, trainer_theta)
    est = jax.jit(at.estimate)(state.theta, state.estimator_state, data, k_est, state.iteration)
    by_hand, _ = lopt.update(trainer_theta, state.outer_opt_state, state.theta, est.grad, ZERO)
    close(new.theta, by_hand, rtol=1e-5)
    assert float(report.meta_loss) == pytest.approx(float(est.meta_loss), rel=1e-6)
    assert max(np.abs(a - b).max() for a, b in zip(leaves(new.theta), leaves(state.theta))) > 0
    # another trainer gives another step: the assignment matters
    other, _ = jax.jit(prog.step, static_argnums=0)(length, state, member(members.theta, 2), data)
    assert any(not np.allclose(a, b) for a, b in zip(leaves(other.theta), leaves(new.theta)))


def test_the_learned_outer_update_is_clipped_per_value(setup):
    """With max_update m every value of the learned outer update is the unclipped one clipped to
    [-m, m]; m is set to half the largest unclipped value, so the clip binds and a program that
    ignored it would fail. The population's programs clip (population.max_update)."""
    c, prog, outer, members, data = setup
    state, trainer_theta = member(members, 0), member(members.theta, int(outer[0]))
    free, _ = jax.jit(prog.step, static_argnums=0)(3, state, trainer_theta, data)
    step = jax.tree_util.tree_map(jnp.subtract, free.theta, state.theta)
    m = 0.5 * max(float(jnp.max(jnp.abs(x))) for x in jax.tree_util.tree_leaves(step))
    clipped_prog = MemberProgram(c.trainer, self_training=True, max_update=m)
    clipped, _ = jax.jit(clipped_prog.step, static_argnums=0)(3, state, trainer_theta, data)
    close(clipped.theta, jax.tree_util.tree_map(lambda t, u: t + jnp.clip(u, -m, m), state.theta, step), rtol=1e-5)
    assert max(float(jnp.max(jnp.abs(a - b))) for a, b in zip(leaves(clipped.theta), leaves(state.theta))) <= m * (1 + 1e-5)
    close(clipped.outer_opt_state, free.outer_opt_state)  # the clip leaves the learned optimizer's state alone
    pop = meta_train.build(compose("meta_train", *CFG, "population=self_training", "eval.tasks=[wine_mlp]"))
    assert population.program(pop).max_update == pop.population.max_update == 0.003


def test_the_control_is_trained_by_the_hand_designed_outer_optimizer(setup):
    c, _, _, _, data = setup
    control = MemberProgram(c.trainer, self_training=False)
    state = control.init(jax.random.PRNGKey(3), c.trainer.lopt.init_theta(jax.random.PRNGKey(4)), None)
    new, _ = jax.jit(control.step, static_argnums=0)(3, state, None, data)
    _, k_est = jax.random.split(state.key)
    est = jax.jit(control.at(3, None).estimate)(state.theta, state.estimator_state, data, k_est, state.iteration)
    updates, _ = c.trainer.outer_opt.update(est.grad, state.outer_opt_state, state.theta)  # adam_clip
    close(new.theta, optax.apply_updates(state.theta, updates), rtol=1e-5)


def test_a_restart_takes_the_winners_theta_and_fresh_states_keeping_the_count(setup):
    c, prog, outer, members, data = setup
    state = member(members, 0)
    moved, _ = jax.jit(prog.step, static_argnums=0)(3, state, member(members.theta, 1), data)
    winner, trainer = member(members.theta, 2), member(members.theta, 1)
    restarted = jax.jit(prog.restart)(moved, winner, trainer)
    close(restarted.theta, winner)
    close(restarted.outer_opt_state, c.trainer.lopt.init(trainer, winner))
    assert int(restarted.iteration) == int(moved.iteration) == 1
    fresh = jax.jit(prog.init)(moved.key, winner, trainer)
    close(restarted.estimator_state, fresh.estimator_state)


def test_the_local_engine_equals_member_by_member_steps_and_compiles_once_per_group_shape(setup):
    c, prog, outer, members, data = setup
    lengths = (3, 5, 3)
    trainers = member(members.theta, outer)
    expected = []
    step = jax.jit(prog.step, static_argnums=0)
    for i in range(3):  # every member trained by its trainer's theta from before the iteration
        expected.append(step(lengths[i], member(members, i), member(members.theta, int(outer[i])), data))
    engine = LocalEngine(prog, data, jax.tree_util.tree_map(jnp.copy, members), jax.tree_util.tree_map(jnp.copy, trainers))
    report = engine.advance(tuple(outer.tolist()), lengths, refresh=True)
    got, snapshots = engine.state()
    for i in range(3):
        close(member(got, i), expected[i][0], rtol=1e-5)
        assert float(report.meta_loss[i]) == pytest.approx(float(expected[i][1].meta_loss), rel=1e-5)
    close(snapshots, trainers)
    assert groups(lengths) == ((3, (0, 2)), (5, (1,)))
    engine.advance(tuple(outer.tolist()), lengths, refresh=False)
    engine.advance(tuple(outer.tolist()), lengths, refresh=True)
    assert engine._advance._cache_size() == 2  # (3, two members), (5, one)
    engine.advance(tuple(outer.tolist()), (5, 3, 3), refresh=False)  # the same groups' shapes, other members
    assert engine._advance._cache_size() == 2
    engine.advance(tuple(outer.tolist()), (5, 5, 3), refresh=False)  # (3, one), (5, two): their own programs
    assert engine._advance._cache_size() == 4
