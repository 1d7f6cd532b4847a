"""Outer optimizers: updates on known meta-gradients against closed forms and the optax export
of learned optimizers, and tiny meta-trainings driven by each."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from lopt import learned
from lopt.commands import meta_train
from lopt.errors import ConfigError, UserError
from lopt.io import checkpoint
from lopt.learned.export import as_optax
from lopt.meta_trainer import metric_record
from lopt.optimizers import outer
from tests.conftest import CHEAP, compose_meta_train

G1 = {"w": jnp.array([[3.0, -4.0], [0.5, 0.0]]), "b": jnp.array([12.0])}  # global norm 13.0
G2 = jax.tree_util.tree_map(lambda g: -0.5 * g + 0.25, G1)
PARAMS = jax.tree_util.tree_map(jnp.ones_like, G1)


def build(*overrides: str):
    return outer.build(compose_meta_train(*overrides).outer_opt)


def two_updates(tx: optax.GradientTransformation, params=PARAMS):
    state = tx.init(params)
    u1, state = tx.update(G1, state, params)
    u2, _ = tx.update(G2, state, optax.apply_updates(params, u1))
    return u1, u2


def adam_second_update(c1, c2, lr, b1=0.9, b2=0.999, eps=1e-8):
    """Adam's second update (bias-corrected) after (already clipped) gradients c1, c2."""
    def leaf(a, b):
        m = (b1 * (1 - b1) * a + (1 - b1) * b) / (1 - b1**2)
        v = (b2 * (1 - b2) * a**2 + (1 - b2) * b**2) / (1 - b2**2)
        return -lr * m / (jnp.sqrt(v) + eps)
    return jax.tree_util.tree_map(leaf, c1, c2)


def assert_trees_close(a, b, rtol=1e-5, atol=1e-7):
    jax.tree_util.tree_map(lambda x, y: np.testing.assert_allclose(x, y, rtol=rtol, atol=atol), a, b)


def test_sgd_with_momentum_matches_closed_form():
    u1, u2 = two_updates(build("outer_opt=sgd", "outer_opt.lr=0.1", "outer_opt.momentum=0.5").transform())
    assert_trees_close(u1, jax.tree_util.tree_map(lambda g: -0.1 * g, G1))
    assert_trees_close(u2, jax.tree_util.tree_map(lambda a, b: -0.1 * (b + 0.5 * a), G1, G2))


def test_adam_clips_the_global_norm_before_adam():
    lr, max_norm = 0.01, 2.0
    _, u2 = two_updates(build("outer_opt=adam", f"outer_opt.lr={lr}", f"outer_opt.max_norm={max_norm}").transform())
    scales = [min(1.0, max_norm / float(optax.tree.norm(g))) for g in (G1, G2)]
    clipped = [jax.tree_util.tree_map(lambda x, s=s: x * s, g) for g, s in zip((G1, G2), scales)]
    assert float(optax.tree.norm(G2)) > max_norm  # both gradients are rescaled, by different factors
    assert_trees_close(u2, adam_second_update(*clipped, lr))
    _, u2 = two_updates(build("outer_opt=adam", f"outer_opt.lr={lr}", "outer_opt.max_norm=null").transform())
    assert_trees_close(u2, adam_second_update(G1, G2, lr))


def test_adam_clip_clips_each_value_before_adam():
    _, u2 = two_updates(build("outer_opt=adam_clip", "outer_opt.lr=0.01", "outer_opt.clip=1.0").transform())
    clip = lambda g: jax.tree_util.tree_map(lambda x: jnp.clip(x, -1.0, 1.0), g)  # noqa: E731
    assert_trees_close(u2, adam_second_update(clip(G1), clip(G2), 0.01))


@pytest.mark.parametrize("overrides, match", [
    (["outer_opt=adam", "outer_opt.max_norm=0"], "outer_opt.max_norm=0.0 is invalid"),
    (["outer_opt=adam", "outer_opt.b1=1"], r"outer_opt.b1/b2=\(1.0, 0.999\) is invalid"),
    (["outer_opt=adam_clip", "outer_opt.b2=1"], r"outer_opt.b1/b2=\(0.9, 1.0\) is invalid"),
    (["outer_opt=sgd", "outer_opt.momentum=1"], "outer_opt.momentum=1.0 is invalid"),
    (["outer_opt=lopt", "outer_opt.lopt.hidden_size=0"], "outer_opt.lopt.hidden_size=0 is invalid"),
    (["outer_opt=lopt", "outer_opt.lopt.name=nope"], r"outer_opt.lopt.name"),
])
def test_bad_outer_optimizer_values_are_rejected(overrides, match):
    with pytest.raises(ConfigError, match=match):
        build(*overrides)


def test_learned_outer_optimizer_without_checkpoint_is_a_seeded_fresh_init():
    lopt = learned.build(compose_meta_train().lopt)
    got = {seed: two_updates(build("outer_opt=lopt", f"outer_opt.seed={seed}").transform()) for seed in (0, 3)}
    for seed, updates in got.items():
        assert_trees_close(updates, two_updates(as_optax(lopt, lopt.init_theta(jax.random.PRNGKey(seed)))))
    assert not np.allclose(got[0][0]["w"], got[3][0]["w"])


def test_learned_outer_optimizer_from_checkpoint_reproduces_the_export(tmp_path):
    lopt = learned.build(compose_meta_train().lopt)
    theta = jax.tree_util.tree_map(lambda t: t + 0.3, lopt.init_theta(jax.random.PRNGKey(5)))
    checkpoint.save_tree(tmp_path / "final_theta", theta)
    tx = build("outer_opt=lopt", f"outer_opt.theta={tmp_path}").transform()
    got, want = two_updates(tx), two_updates(as_optax(lopt, theta))
    assert_trees_close(got, want)
    assert float(optax.tree.norm(got[1])) > 0


def test_learned_outer_optimizer_missing_checkpoint_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="outer_opt.theta=.* does not exist"):
        build("outer_opt=lopt", f"outer_opt.theta={tmp_path / 'nope'}")


def run_meta_training(*overrides: str, iterations: int = 3):
    c = meta_train.build(compose_meta_train(*CHEAP, *overrides))
    data = c.load_data()
    step = jax.jit(c.trainer.step)
    state = c.trainer.init(jax.random.PRNGKey(0))
    thetas, history = [state.theta], []
    for _ in range(iterations):
        state, report = step(state, data)
        thetas.append(state.theta)
        history.append(metric_record(report))
    assert step._cache_size() == 1
    for theta in thetas:
        assert all(np.isfinite(x).all() for x in jax.tree_util.tree_leaves(theta))
    moves = [float(optax.tree.norm(jax.tree_util.tree_map(jnp.subtract, b, a)))
             for a, b in zip(thetas, thetas[1:])]
    return moves, history


def test_meta_training_with_sgd_moves_theta_by_lr_times_the_meta_gradient():
    moves, history = run_meta_training("outer_opt=sgd", "outer_opt.lr=0.01")
    np.testing.assert_allclose(moves, [0.01 * h["outer/grad_norm"] for h in history], rtol=1e-4)
    assert min(moves) > 0


def test_meta_training_with_adam_takes_bounded_steps():
    moves, history = run_meta_training("outer_opt=adam", "outer_opt.lr=0.001")
    n = sum(x.size for x in jax.tree_util.tree_leaves(learned.build(compose_meta_train(*CHEAP).lopt)
                                                     .init_theta(jax.random.PRNGKey(0))))
    assert 0 < moves[0] <= 0.001 * np.sqrt(n) * (1 + 1e-4)  # Adam's first step: at most lr per value


def test_meta_training_with_a_learned_outer_optimizer_moves_theta():
    moves, history = run_meta_training("outer_opt=lopt", "outer_opt.seed=1")
    assert min(moves) > 0 and all(np.isfinite(h["outer/loss"]) for h in history)


def test_adamw_adds_decoupled_weight_decay_to_adams_step():
    """The first AdamW update is Adam's, -lr g / (|g| + eps), minus lr * weight_decay * theta;
    without max_norm the meta-gradient is not clipped (G1's norm is 13)."""
    lr, wd = 0.01, 0.1
    u1, _ = two_updates(build("outer_opt=adamw", f"outer_opt.lr={lr}", f"outer_opt.weight_decay={wd}").transform())
    assert_trees_close(u1, jax.tree_util.tree_map(lambda g, p: -lr * (g / (jnp.abs(g) + 1e-8) + wd * p), G1, PARAMS))
    _, u2 = two_updates(build("outer_opt=adamw", f"outer_opt.lr={lr}", "outer_opt.weight_decay=0.0").transform())
    assert_trees_close(u2, adam_second_update(G1, G2, lr))
    with pytest.raises(ConfigError, match=r"outer_opt\.weight_decay=-1\.0 is invalid: it must be a non-negative float"):
        build("outer_opt=adamw", "outer_opt.weight_decay=-1.0")
