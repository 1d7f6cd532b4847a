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


def _rows(full: FCLOpt, ablated: FCLOpt) -> list[int]:
    """The rows of the full first layer the ablated optimizer keeps (features per decay in the
    order m, rms, m/sqrt(rms), 1/sqrt(rms), each over the decays; then the time features)."""
    n = len(full.decays)
    kept = [0] if ablated.momentum else []
    kept += ([1, 3] if ablated.rms else []) if not ablated.momentum else ([1, 2, 3] if ablated.rms else [])
    rows = [0, 1] + [2 + k * n + i for k in sorted(kept) for i in range(n)]
    return rows + (list(range(full.num_features - len(TIMESCALES), full.num_features)) if ablated.time else [])


def test_ablations_drop_feature_groups_as_zero_weights_would():
    """Metz et al. 2019, Fig. 7 ("No Mom", "No RMS", "Only Grads", "No Time"): an ablated fc_lopt's
    step equals the full one's with the dropped features' first-layer weights set to zero."""
    full = FCLOpt()
    for momentum, rms, time in [(False, True, True), (True, False, True), (False, False, True), (True, True, False)]:
        ablated = FCLOpt(momentum=momentum, rms=rms, time=time)
        assert ablated.num_features == 2 + {(1, 1): 4, (1, 0): 1, (0, 1): 2, (0, 0): 0}[momentum, rms] * 5 + 9 * time
        theta = ablated.init_theta(jax.random.PRNGKey(1))
        rows = _rows(full, ablated)
        assert len(rows) == ablated.num_features
        w0 = jnp.zeros((full.num_features, full.hidden_size)).at[jnp.asarray(rows)].set(theta["nn"]["w0"])
        theta_full = {"nn": {**theta["nn"], "w0": w0}}
        s_full, s_abl = full.init(theta_full, PARAMS), ablated.init(theta, PARAMS)
        p_full = p_abl = PARAMS
        for i in range(3):
            p_full, s_full = full.update(theta_full, s_full, p_full, grads(i), 1.0)
            p_abl, s_abl = ablated.update(theta, s_abl, p_abl, grads(i), 1.0)
        for k in PARAMS:
            np.testing.assert_allclose(p_abl[k], p_full[k], rtol=1e-5, atol=1e-7)
