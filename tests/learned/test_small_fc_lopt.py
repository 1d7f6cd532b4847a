import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lopt.config import from_config
from lopt.errors import ConfigError
from lopt.learned import accumulators as acc
from lopt.learned.features import tanh_time_features
from lopt.learned.small_fc_lopt import SmallFCLOpt, _tensor_features

PARAMS = {"w": jnp.linspace(-1, 1, 12).reshape(3, 4), "b": jnp.ones(4), "s": jnp.asarray(0.5)}


def _grads(key):
    return jax.tree_util.tree_map(lambda p: jax.random.normal(key, p.shape), PARAMS)


def test_seed_sizes_39_features_197_meta_params():
    lopt = SmallFCLOpt()
    theta = lopt.init_theta(jax.random.PRNGKey(0))
    assert lopt.num_features == 39
    assert sum(x.size for x in jax.tree_util.tree_leaves(theta)) == 197
    assert theta["nn"]["w0"].shape == (39, 4) and theta["nn"]["w2"].shape == (4, 2)


def test_step_is_step_mult_d_exp_exp_mult_m():
    lopt = SmallFCLOpt()
    theta = jax.tree_util.tree_map(jnp.zeros_like, lopt.init_theta(jax.random.PRNGKey(0)))
    d, m = 2.0, 500.0
    theta["nn"]["b2"] = jnp.array([d, m])
    new, _ = lopt.update(theta, lopt.init(theta, PARAMS), PARAMS, _grads(jax.random.PRNGKey(1)), 1.0)
    step = 1e-3 * d * np.exp(1e-3 * m)
    for k in PARAMS:
        np.testing.assert_allclose(new[k], PARAMS[k] - step, rtol=1e-6)


def test_features_are_normalized_inside_the_first_layer():
    """Folding the unit-second-moment normalization into w0 equals normalizing the features."""
    lopt = SmallFCLOpt()
    theta = lopt.init_theta(jax.random.PRNGKey(3))
    p, g = PARAMS["w"], _grads(jax.random.PRNGKey(4))["w"]
    state = lopt.init(theta, {"w": p})
    m = acc.momentum(jnp.array([0.9, 0.99, 0.999]), state.mom["w"], g)
    rms = acc.second_moment(jnp.array([0.999]), state.rms["w"], g)
    fac, fac_g = acc.factored_update(jnp.array([0.9, 0.99, 0.999]), state.fac["w"], g)
    feats = jnp.stack(_tensor_features(p, g, m, rms, fac_g, fac), axis=-1)
    assert feats.shape == (3, 4, 28)
    # Unit second moment over the tensor: Metz et al. 2022, Practical tradeoffs between memory, compute,
    # and performance in learned optimizers (arXiv:2203.11860), App. A.
    normed = feats / jnp.sqrt(1e-5 + jnp.mean(feats**2, axis=(0, 1)))
    t = jnp.broadcast_to(tanh_time_features(jnp.asarray(0)), (3, 4, 11))
    net = jnp.concatenate([normed, t], -1)
    nn = theta["nn"]
    for i in range(3):
        net = net @ nn[f"w{i}"] + nn[f"b{i}"]
        net = jax.nn.relu(net) if i < 2 else net
    expected = p - 1e-3 * net[..., 0] * jnp.exp(1e-3 * net[..., 1])
    new, _ = lopt.update(theta, state, {"w": p}, {"w": g}, 1.0)
    np.testing.assert_allclose(new["w"], expected, rtol=1e-5, atol=1e-7)


def test_accumulators_use_the_learned_decays():
    lopt = SmallFCLOpt()
    theta = lopt.init_theta(jax.random.PRNGKey(0))
    grads = _grads(jax.random.PRNGKey(2))
    _, state = lopt.update(theta, lopt.init(theta, PARAMS), PARAMS, grads, 1.0)
    np.testing.assert_allclose(state.mom["w"], grads["w"][..., None] * (1 - jnp.array([0.9, 0.99, 0.999])), rtol=1e-4)
    np.testing.assert_allclose(state.rms["b"][..., 0], grads["b"] ** 2 * 1e-3, rtol=1e-3)
    assert state.fac["w"].v_row.shape == (3, 3) and state.fac["w"].v_col.shape == (4, 3)
    assert state.fac["b"].v_diag.shape == (4, 3) and state.fac["b"].v_row is None
    assert int(state.iteration) == 1
    theta["momentum_decays"] = theta["momentum_decays"].at[0].set(0.1)  # log(1-0.9)/10 + 0.1
    _, state2 = lopt.update(theta, lopt.init(theta, PARAMS), PARAMS, grads, 1.0)
    decay = 1 - np.exp(10 * (np.log(0.1) / 10 + 0.1))
    np.testing.assert_allclose(state2.mom["w"][..., 0], grads["w"] * (1 - decay), rtol=1e-4)


def test_time_features_are_tanh_t_over_timescale_minus_one():
    np.testing.assert_allclose(tanh_time_features(jnp.asarray(30))[:4],
                               np.tanh(30 / np.array([1, 3, 10, 30]) - 1), rtol=1e-6)


def test_rms_decays_must_be_one_or_as_many_as_momentum_decays():
    node = {"momentum_decays": [0.9, 0.99, 0.999], "rms_decays": [0.9, 0.99]}
    with pytest.raises(ConfigError, match=r"^lopt\.rms_decays=\(0\.9, 0\.99\) is invalid: it must be 1 "
                                          r"decay or as many as momentum_decays \(3\)"):
        from_config(SmallFCLOpt, node, "lopt")
    with pytest.raises(ConfigError, match=r"lopt\.rms_decays=.* as many as momentum_decays \(1\)"):
        from_config(SmallFCLOpt, {"momentum_decays": [0.9], "adafactor_decays": [0.9],
                                  "rms_decays": [0.9, 0.99]}, "lopt")


@pytest.mark.parametrize("rms_decays", [[0.999], [0.9, 0.99, 0.999]])
def test_valid_rms_decays_lengths_update(rms_decays):
    lopt = from_config(SmallFCLOpt, {"momentum_decays": [0.9, 0.99, 0.999], "rms_decays": rms_decays}, "lopt")
    theta = lopt.init_theta(jax.random.PRNGKey(0))
    assert theta["nn"]["w0"].shape[0] == lopt.num_features
    new, state = lopt.update(theta, lopt.init(theta, PARAMS), PARAMS, _grads(jax.random.PRNGKey(1)), 1.0)
    assert state.rms["w"].shape == (3, 4, len(rms_decays))
    for k in PARAMS:
        assert new[k].shape == PARAMS[k].shape and bool(jnp.isfinite(new[k]).all())
