import jax
import jax.numpy as jnp
import numpy as np

from lopt.learned import FCLOpt
from lopt.learned.fc_lopt import TIMESCALES
from tests.learned.lopt_checks import PARAMS, assert_meta_training_moves_theta, evaluate_curves, grads, num_meta_params

DECAYS = np.array([0.5, 0.9, 0.99, 0.999, 0.9999])


def test_seed_sizes_31_features_1090_meta_params():
    lopt = FCLOpt()
    assert lopt.num_features == 2 + 4 * 5 + 9 == 31
    assert num_meta_params(lopt.init_theta(jax.random.PRNGKey(0))) == 31 * 32 + 32 + 32 * 2 + 2 == 1090
    deeper = FCLOpt(hidden_layers=2)
    assert num_meta_params(deeper.init_theta(jax.random.PRNGKey(0))) == 1090 + 32 * 32 + 32


def test_nine_timescales_log_spaced_from_3_to_300k():
    assert len(TIMESCALES) == 9
    np.testing.assert_allclose([TIMESCALES[0], TIMESCALES[-1]], [3.0, 3e5])
    np.testing.assert_allclose(np.diff(np.log10(TIMESCALES)), 5 / 8, rtol=1e-6)


def _by_hand(theta, p, gs, step_mult, exp_mult):
    """Metz et al. 2018, Learned optimizers that outperform SGD on wall-clock and test loss
    (arXiv:1810.10180), App. C.1, in float64 numpy: the step after len(gs) gradients, features stacked
    and normalized explicitly, the MLP applied as matrix products."""
    m = v = 0.0
    for g in gs:
        m = DECAYS * m + (1 - DECAYS) * g[..., None]
        v = DECAYS * v + (1 - DECAYS) * g[..., None] ** 2
    g = gs[-1]
    r = 1 / np.sqrt(v + 1e-6)
    feats = np.concatenate([g[..., None], np.asarray(p, np.float64)[..., None], m, v, m * r, r], -1)
    axes = tuple(range(np.ndim(p)))
    feats = feats / np.sqrt(1e-5 + np.mean(feats**2, axis=axes))
    time = np.tanh((len(gs) - 1) / np.asarray(TIMESCALES) - 1)
    x = np.concatenate([feats, np.broadcast_to(time, feats.shape[:-1] + (9,))], -1)
    nn = jax.tree_util.tree_map(lambda a: np.asarray(a, np.float64), theta["nn"])
    out = np.maximum(x @ nn["w0"] + nn["b0"], 0) @ nn["w1"] + nn["b1"]
    return step_mult * out[..., 0] * np.exp(exp_mult * out[..., 1])


def test_step_is_the_direction_magnitude_formula_of_the_mlp():
    lopt = FCLOpt(step_mult=1.0, exp_mult=0.5)  # large temperatures: steps of order 1
    theta = lopt.init_theta(jax.random.PRNGKey(3))
    theta["nn"]["b0"] = jax.random.normal(jax.random.PRNGKey(4), (32,))
    theta["nn"]["b1"] = jnp.array([0.3, -1.0])
    state, params = lopt.init(theta, PARAMS), PARAMS
    gs = [jax.device_get(grads(i)) for i in range(3)]
    for g in gs:
        new, state = lopt.update(theta, state, params, g, 1.0)
        steps = jax.tree_util.tree_map(lambda a, b: np.asarray(b) - np.asarray(a), new, params)
        params = new
    for k in PARAMS:
        p_before = np.asarray(params[k]) + steps[k]
        expected = _by_hand(theta, p_before, [np.asarray(g[k], np.float64) for g in gs], 1.0, 0.5)
        np.testing.assert_allclose(steps[k], expected, rtol=1e-4, atol=1e-6)
    assert int(state.iteration) == 3


def test_meta_training_moves_theta():
    assert_meta_training_moves_theta("fc_lopt")


def test_evaluate_runs_through_the_export(tmp_path):
    result = evaluate_curves(tmp_path, "lopt=fc_lopt")
    assert result["learned"] and np.isfinite(result["curves"]["train/loss"]["per_seed"]).all()
