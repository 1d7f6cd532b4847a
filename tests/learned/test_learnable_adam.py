import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from lopt import learned
from lopt.commands import meta_train
from lopt.errors import ConfigError
from lopt.learned import LearnableAdam
from tests.conftest import TINY, compose_meta_train
from tests.learned.lopt_checks import PARAMS, assert_meta_training_moves_theta, evaluate_curves, grads, num_meta_params


def _steps(lopt, theta, n):
    """Updates (new params - params) of `n` consecutive steps."""
    state, params, out = lopt.init(theta, PARAMS), PARAMS, []
    for i in range(n):
        new, state = lopt.update(theta, state, params, grads(i), 1.0)
        out.append(jax.tree_util.tree_map(jnp.subtract, new, params))
        params = new
    return out, state


def test_four_meta_params_in_learned_space():
    theta = LearnableAdam(lr=0.1, b1=0.5, b2=0.99, eps=1e-6).init_theta(jax.random.PRNGKey(0))
    assert num_meta_params(theta) == 4
    np.testing.assert_allclose([theta[k] for k in ("lr", "b1", "b2", "eps")],
                               [0.1 * np.log(0.1), 0.1 * np.log(0.5), 0.1 * np.log(0.01), 0.1 * np.log(1e-6)],
                               rtol=1e-6)


def test_steps_equal_optax_adam_at_the_theta_hyperparameters():
    lopt = LearnableAdam(lr=0.1, b1=0.9, b2=0.999, eps=1e-8)
    ours, _ = _steps(lopt, lopt.init_theta(jax.random.PRNGKey(0)), 3)
    tx, params = optax.adam(0.1, 0.9, 0.999, 1e-8), PARAMS
    state = tx.init(params)
    for i in range(3):
        updates, state = tx.update(grads(i), state, params)
        params = optax.apply_updates(params, updates)
        for k in PARAMS:
            np.testing.assert_allclose(ours[i][k], updates[k], rtol=1e-5, atol=1e-8)


def test_learned_space_offsets_scale_lr_and_set_beta():
    """+0.1 on theta['lr'] multiplies every step by e; theta['b1'] = x gives b1 = 1 - exp(10 x)."""
    lopt = LearnableAdam(lr=0.01)
    theta = lopt.init_theta(jax.random.PRNGKey(0))
    base, _ = _steps(lopt, theta, 1)
    bigger, state = _steps(lopt, {**theta, "lr": theta["lr"] + 0.1, "b1": jnp.asarray(-0.05)}, 1)
    for k in PARAMS:
        np.testing.assert_allclose(bigger[0][k], np.e * base[0][k], rtol=1e-5)
    b1 = 1 - np.exp(-0.5)
    np.testing.assert_allclose(state[0].mu["w"], (1 - b1) * grads(0)["w"], rtol=1e-5)


def test_out_of_range_theta_is_clipped_to_a_finite_adam():
    lopt = LearnableAdam()
    theta = {"lr": jnp.asarray(5.0), "b1": jnp.asarray(1.0), "b2": jnp.asarray(-3.0), "eps": jnp.asarray(-9.0)}
    steps, state = _steps(lopt, theta, 2)
    assert all(np.isfinite(x).all() for s in steps for x in jax.tree_util.tree_leaves(s))
    np.testing.assert_allclose(state[0].mu["w"], grads(1)["w"], rtol=1e-6)  # b1 clipped to 0
    np.testing.assert_allclose(np.abs(steps[0]["w"]), 1e3, rtol=1e-4)  # lr clipped to 1e3, |first step| = lr


def test_bad_initial_values_are_config_errors():
    with pytest.raises(ConfigError, match=r"lopt.b1/b2=\(1.0, 0.999\) is invalid"):
        learned.build({"name": "learnable_adam", "b1": 1.0})
    with pytest.raises(ConfigError, match="lopt.lr=0.0 is invalid"):
        learned.build({"name": "learnable_adam", "lr": 0.0})
    for bad in ([], ["lr", "beta1"]):
        with pytest.raises(ConfigError, match=r"lopt.trainable=.* is invalid: it must be null \(all\) or a non-empty "
                                              r"list of lr, b1, b2, eps"):
            learned.build({"name": "learnable_adam", "trainable": bad})


def test_meta_training_moves_theta():
    assert_meta_training_moves_theta("learnable_adam")


def test_trainable_lr_only_moves_the_learning_rate():
    """lopt.trainable=[lr] (the truncation-bias experiment of Metz et al. 2019): the betas and
    epsilon stay exactly at their configured values."""
    c = meta_train.build(compose_meta_train(*TINY, "lopt=learnable_adam", "lopt.trainable=[lr]"))
    assert c.lopt.trainable_keys == ("lr",)
    state = c.trainer.init(jax.random.PRNGKey(0))
    theta0 = jax.device_get(state.theta)
    state, _ = jax.jit(c.trainer.step)(state, c.load_data())
    assert float(state.theta["lr"]) != float(theta0["lr"])
    for k in ("b1", "b2", "eps"):
        assert float(state.theta[k]) == float(theta0[k])


def test_evaluate_through_the_export_equals_hand_designed_adam(tmp_path):
    ours = evaluate_curves(tmp_path / "learned", "lopt=learnable_adam", "lopt.lr=0.01")
    adam = evaluate_curves(tmp_path / "adam", "optimizer=adam", "optimizer.lr=0.01")
    assert ours["learned"] and not adam["learned"]
    np.testing.assert_allclose(ours["curves"]["train/loss"]["per_seed"], adam["curves"]["train/loss"]["per_seed"],
                               rtol=2e-3)  # lr goes through exp(log): float32 rounding only
