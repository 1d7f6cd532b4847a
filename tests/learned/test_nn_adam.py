import jax
import jax.numpy as jnp
import numpy as np
import optax

from lopt.learned import NNAdam
from lopt.learned.nn_adam import tensor_features
from tests.learned.lopt_checks import PARAMS, assert_meta_training_moves_theta, evaluate_curves, grads, num_meta_params

LOPT = NNAdam(lr=0.1, b1=0.9, b2=0.999, eps=1e-8)


def _random_lstm_theta():
    """Random LSTM weights and biases, so its output is far from zero."""
    theta = LOPT.init_theta(jax.random.PRNGKey(0))
    leaves, treedef = jax.tree_util.tree_flatten(theta["lstm"])
    keys = jax.random.split(jax.random.PRNGKey(1), len(leaves))
    theta["lstm"] = treedef.unflatten([jax.random.normal(k, x.shape) for k, x in zip(keys, leaves)])
    return theta


def _updates(theta, n):
    state, params, out = LOPT.init(theta, PARAMS), PARAMS, []
    for i in range(n):
        new, state = LOPT.update(theta, state, params, grads(i), 1.0)
        out.append(jax.tree_util.tree_map(jnp.subtract, new, params))
        params = new
    return out, state


def _adam_updates(lrs):
    """optax Adam updates with learning rate lrs[i] at step i (Adam's state does not depend on lr)."""
    state, params, out = optax.adam(1.0).init(PARAMS), PARAMS, []
    for i, lr in enumerate(lrs):
        updates, state = optax.adam(lr, 0.9, 0.999, 1e-8).update(grads(i), state, params)
        out.append(updates)
        params = optax.apply_updates(params, updates)
    return out


def test_meta_param_count_matches_lstm_readout_and_base_values():
    h, f = 32, 19
    lstm = 4 * f * h + 4 * (h * h + h)  # input kernels; recurrent kernels with biases (i, f, g, o)
    assert num_meta_params(NNAdam().init_theta(jax.random.PRNGKey(0))) == lstm + (h * 4 + 4) + 4 == 6792


def test_zero_readout_is_adam_at_the_base_hyperparameters():
    theta = _random_lstm_theta()
    ours, state = _updates(theta, 3)
    for a, b in zip(ours, _adam_updates([0.1] * 3)):
        for k in PARAMS:
            np.testing.assert_allclose(a[k], b[k], rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(state.hparams["lr"], [0.1 * np.log(0.1)] * 3, rtol=1e-6)
    assert np.abs(np.asarray(state.lstm[1])).max() > 0.01  # the LSTM ran; only its read-out is zero


def test_readout_moves_each_tensors_hyperparameters_by_output_scale():
    """A read-out bias of 1 on the lr output adds 0.01 to 0.1 log(lr) per step: lr grows by e^0.1."""
    theta = _random_lstm_theta()
    theta["out"]["b"] = jnp.array([1.0, 0.0, 0.0, 0.0])
    ours, state = _updates(theta, 3)
    np.testing.assert_allclose(state.hparams["lr"], 0.1 * np.log(0.1) + 0.03, rtol=1e-5)
    np.testing.assert_allclose(state.hparams["b1"], 0.1 * np.log(0.1), rtol=1e-6)
    for a, b in zip(ours, _adam_updates([0.1, 0.1 * np.exp(0.1), 0.1 * np.exp(0.2)])):
        for k in PARAMS:
            np.testing.assert_allclose(a[k], b[k], rtol=1e-5, atol=1e-8)


def sq(x):
    return 0.5 * np.clip(np.log(1e-8 + abs(x)), -5, 5)


def test_tensor_features_are_squashed_statistics():
    p, g = jnp.array([1.0, 3.0]), jnp.array([-2.0, 0.0])
    m, v = jnp.array([-0.2, 0.0]), jnp.array([0.4, 0.0])
    hp = {"lr": jnp.asarray(-0.5), "b1": jnp.asarray(-0.2), "b2": jnp.asarray(-0.3), "eps": jnp.asarray(-30.0)}
    expected = [sq(-0.1), -1, sq(0.01), sq(0.2), 1, sq(0.04), sq(2.0), 1, sq(1.0), sq(-1.0), -1, sq(1.0), sq(1.0),
                -1, 1, -0.1, -0.04, -0.06, -1.0]
    np.testing.assert_allclose(tensor_features(p, g, m, v, hp), expected, rtol=1e-5, atol=1e-7)


def test_meta_training_moves_theta():
    assert_meta_training_moves_theta("nn_adam")


def test_evaluate_runs_through_the_export(tmp_path):
    result = evaluate_curves(tmp_path, "lopt=nn_adam")
    assert result["learned"] and np.isfinite(result["curves"]["train/loss"]["per_seed"]).all()
