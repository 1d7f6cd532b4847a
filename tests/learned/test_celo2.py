"""celo2 against an independent re-derivation of the update of Moudgil, Knyazev and Belilovsky 2026,
Celo2: Towards learned optimization free lunch (arXiv:2602.19142), as github.com/amoudgl/celo
computes it, and the properties that update implies."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from lopt.errors import ConfigError
from lopt.io import checkpoint
from lopt.learned import REGISTRY, Celo2, build
from tests.conftest import TINY, compose_meta_train
from tests.learned.lopt_checks import (
    PARAMS,
    assert_export_matches_update,
    assert_meta_training_moves_theta,
    assert_vmapped_tasks_match_single,
    evaluate_curves,
    grads,
    num_meta_params,
    run_every_family,
    run_steps,
)

CELO2 = Celo2()
BASE = Celo2(orthogonalize=False, adam_1d=False)  # the reference's Celo2Base
KERNEL = {"k": np.linspace(-1, 1, 120, dtype=np.float32).reshape(2, 3, 5, 4)}  # a conv kernel: 6 matrices 5x4


def _theta(lopt=CELO2, seed=0):
    theta = lopt.init_theta(jax.random.PRNGKey(seed))
    theta["nn"]["b0"] = 0.3 * jax.random.normal(jax.random.PRNGKey(seed + 1), theta["nn"]["b0"].shape)
    return theta


# --- The reference update, re-derived in float64 numpy from its formulas -------------------------

def _rsqrt(x):
    return 1.0 / np.sqrt(x)


def _ema(decays, old, new):
    return decays * old + (1.0 - decays) * new


def _factored(decays, acc, g):
    """AdaFactor accumulators (learned_optimization's factored_rolling) and the preconditioned g."""
    gs = (g * g + 1e-30)[..., None]
    if g.ndim < 2:
        v = _ema(decays, acc["v"], gs)
        return {"v": v}, g[..., None] / np.sqrt(np.maximum(v + 1e-9, 1e-9))
    d1, d0 = (int(i) for i in np.argsort(g.shape)[-2:])
    row = _ema(decays, acc["row"], gs.mean(axis=d0))
    col = _ema(decays, acc["col"], gs.mean(axis=d1))
    reduced_d1 = d1 - 1 if d1 > d0 else d1
    row_factor = _rsqrt(np.maximum(row / (row.mean(axis=reduced_d1, keepdims=True) + 1e-9), 1e-9))
    col_factor = _rsqrt(np.maximum(col, 1e-9))
    rf, cf = np.expand_dims(row_factor, d0), np.expand_dims(col_factor, d1)
    return {"row": row, "col": col, "rf": rf, "cf": cf, "d1": d1, "d0": d0}, g[..., None] * rf * cf


def _ns(x, coeffs, iters, eps):
    """Newton-Schulz on the last two axes (the reference's orthogonalize_via_newton_schulz)."""
    transposed = x.shape[-2] > x.shape[-1]
    if transposed:
        x = np.swapaxes(x, -2, -1)
    x = x / (np.sqrt((x**2).sum(axis=(-2, -1), keepdims=True)) + eps)
    for _ in range(iters):
        a = x @ np.swapaxes(x, -2, -1)
        x = coeffs[0] * x + (coeffs[1] * a + coeffs[2] * a @ a) @ x
    return np.swapaxes(x, -2, -1) if transposed else x


def _mlp_direction(lopt, nn, p, g, m, rms, fac, fac_g):
    """The reference's per-tensor MLP (its _ff_mod) at exp_mult 0: inputs, normalization, MLP,
    orthogonalization, output normalization."""
    shape = p.shape
    if p.ndim == 0:
        p, g, m, rms, fac_g = (x[None] for x in (p, g, m, rms, fac_g))
    rs = _rsqrt(rms + 1e-8)
    inps = [g[..., None], np.clip(g, -0.1, 0.1)[..., None], p[..., None], m, rms, m * rs, rs, fac_g, g[..., None] * rs]
    if p.ndim >= 2:
        full = p.shape + (len(lopt.adafactor_decays),)
        row = np.broadcast_to(np.expand_dims(fac["row"], fac["d0"]), full)
        col = np.broadcast_to(np.expand_dims(fac["col"], fac["d1"]), full)
        inps += [row, col, _rsqrt(row + 1e-8), _rsqrt(col + 1e-8), m * fac["rf"] * fac["cf"]]
    axis = tuple(range(p.ndim))[-2:]
    if lopt.normalize_input:
        inps = [x / np.sqrt(1e-9 + (x**2).mean(axis=axis, keepdims=True)) for x in inps]
    x = np.concatenate(inps, axis=-1)
    w = {k: np.asarray(v, np.float64) for k, v in nn.items()}
    x = np.maximum(x @ w["w0"][: x.shape[-1]] + w["b0"], 0)
    x = np.maximum(x @ w["w1"] + w["b1"], 0)
    d = (x @ w["w2"] + w["b2"])[..., 0]
    if lopt.orthogonalize and d.ndim >= 2:
        d = _ns(d, lopt.ns_coeffs, lopt.ns_iters, lopt.ns_eps)
    if lopt.normalize_output:
        d = d / np.sqrt(1e-9 + (d**2).mean(axis=axis, keepdims=True))
    return d.reshape(shape)


def reference_steps(lopt, theta, params, n):
    """`n` updates of `params` with gradients grads(i): the list of new - old params per update."""
    nn = jax.tree_util.tree_map(np.asarray, theta["nn"])
    params = {k: np.asarray(v, np.float64) for k, v in params.items()}
    state, out = {}, []
    md, rd, fd = (np.asarray(getattr(lopt, k)) for k in ("momentum_decays", "rms_decays", "adafactor_decays"))
    for i in range(n):
        g_tree = {k: np.asarray(g, np.float64) for k, g in grads(i, params).items()}
        new = {}
        for k, p in params.items():
            g = g_tree[k]
            if lopt.adam_1d and p.ndim <= 1:  # Adam: no bias correction, eps inside the sqrt, no clip
                m, v = state.get(k, (0.0, 0.0))
                m, v = _ema(lopt.adam_b1, m, g), _ema(lopt.adam_b2, v, g * g)
                state[k] = (m, v)
                new[k] = p - lopt.step_mult * lopt.mult_1d * (m / np.sqrt(v + lopt.adam_eps) + lopt.weight_decay * p)
                continue
            g = np.clip(g, -1000.0, 1000.0)
            zeros = np.zeros(p.shape + (1,))
            m, rms, fac = state.get(k, (zeros, zeros, None))
            if fac is None:
                fac = ({"v": zeros} if p.ndim < 2 else
                       {"row": 0.0, "col": 0.0})  # broadcast zeros: the first EMA gives the shapes
            m, rms = _ema(md, m, g[..., None]), _ema(rd, rms, (g * g)[..., None])
            fac, fac_g = _factored(fd, fac, g)
            state[k] = (m, rms, fac)
            d = _mlp_direction(lopt, nn, p, g, m, rms, fac, fac_g)
            new[k] = p - lopt.step_mult * (d + lopt.weight_decay * p)
        out.append({k: new[k] - params[k] for k in params})
        params = new
    return out


@pytest.mark.parametrize("lopt", [
    CELO2, BASE, Celo2(normalize_input=False, normalize_output=False, weight_decay=0.1, step_mult=0.01, mult_1d=3.0),
], ids=["celo2", "celo2_base", "unnormalized_wd"])
@pytest.mark.parametrize("params", [PARAMS, KERNEL], ids=["matrix_bias_scalar", "kernel"])
def test_updates_match_the_reference_rederived(lopt, params):
    theta = _theta(lopt)
    ours, _ = run_steps(lopt, theta, 3, params=params)
    for i, (a, b) in enumerate(zip(ours, reference_steps(lopt, theta, params, 3))):
        for k in params:
            scale = np.abs(b[k]).max()
            assert scale > 1e-5, (i, k)  # every tensor moves
            np.testing.assert_allclose(a[k], b[k], rtol=2e-4, atol=2e-4 * scale, err_msg=f"update {i}, {k}")


def test_meta_param_count_is_the_used_outputs_of_the_reference_mlp():
    theta = CELO2.init_theta(jax.random.PRNGKey(0))
    assert CELO2.num_features == 30 and theta["nn"]["w0"].shape == (30, 8) and theta["nn"]["w2"].shape == (8, 1)
    assert num_meta_params(theta) == 30 * 8 + 8 + 8 * 8 + 8 + 8 + 1 == 329  # the reference: 347 with 2 unread outputs


def test_vectors_and_scalars_by_rank_take_uncorrected_adam():
    """The first step of a bias or scalar is step_mult * mult_1d * (1 - b1) g / sqrt((1 - b2) g^2 + eps),
    whatever theta: not optax.adam's, whose bias correction makes it lr * g / (|g| + eps)."""
    lr = CELO2.step_mult * CELO2.mult_1d
    (step,), _ = run_steps(CELO2, _theta(seed=4), 1)
    (other,), _ = run_steps(CELO2, _theta(seed=7), 1)
    g = grads(0)
    for k in ("b", "s"):
        expected = -lr * 0.1 * g[k] / np.sqrt(0.05 * g[k] ** 2 + 1e-8)
        np.testing.assert_allclose(step[k], expected, rtol=1e-5)
        np.testing.assert_array_equal(step[k], other[k])
        optax_step, _ = optax.adam(lr, 0.9, 0.95, 1e-8).update(g[k], optax.adam(lr, 0.9, 0.95).init(g[k]))
        np.testing.assert_allclose(optax_step / step[k], np.sqrt(0.05) / 0.1, rtol=5e-3)  # 2.24x larger
    assert np.abs(step["w"] - other["w"]).max() > 1e-5  # the matrix's step is the MLP's


def test_every_matrix_step_has_rms_step_mult_and_orthogonal_directions():
    """Each matrix's step is step_mult times an orthogonalized matrix scaled to unit RMS: its
    singular values are sqrt(max dim) times values near 1 (the quintic Newton-Schulz iteration puts
    them in about [0.7, 1.2]); without orthogonalization they spread over an order of magnitude."""
    params = {"w": jax.random.normal(jax.random.PRNGKey(2), (16, 24)) * 0.1}

    def singular_values(lopt):
        (step,), _ = run_steps(lopt, _theta(lopt, seed=3), 1, params=params)
        return np.linalg.svd(np.asarray(step["w"], np.float64) / lopt.step_mult, compute_uv=False)

    s = singular_values(CELO2)
    np.testing.assert_allclose(np.sqrt(np.mean(s**2)), np.sqrt(24), rtol=1e-4)  # unit RMS over 16 x 24
    assert 0.6 < s.min() / np.sqrt(24) and s.max() / np.sqrt(24) < 1.3, s / np.sqrt(24)
    raw = singular_values(Celo2(normalize_output=False))  # the Newton-Schulz output itself
    assert 0.6 < raw.min() and raw.max() < 1.3, raw
    plain = singular_values(Celo2(orthogonalize=False))
    assert plain.max() / plain.min() > 3 * s.max() / s.min()


def test_steps_are_invariant_to_the_gradient_scale():
    """With normalized features and outputs every feature is homogeneous in the gradient scale (the
    clipped-gradient one too while |g| >= 0.1 stays clipped), and Adam's m / sqrt(v) is: scaling
    all gradients by 10 leaves every step of every tensor as it is; without input normalization it
    does not."""
    base = jax.tree_util.tree_map(lambda g: jnp.sign(g) * (0.2 + jnp.abs(g)), grads(0))

    def steps(lopt, scale):
        theta, state, params, out = _theta(lopt, seed=5), lopt.init(None, PARAMS), PARAMS, []
        for i in range(3):
            g = jax.tree_util.tree_map(lambda x, i=i: scale * x * (1.0 + 0.5 * i), base)
            new, state = lopt.update(theta, state, params, g, jnp.float32(1.0))
            out.append(jax.tree_util.tree_map(jnp.subtract, new, params))
            params = new
        return out

    for a, b in zip(steps(CELO2, 1.0), steps(CELO2, 10.0)):
        for k in PARAMS:
            np.testing.assert_allclose(a[k], b[k], rtol=1e-4, atol=5e-7)  # float32 rounding of p - step
    unnormalized = Celo2(normalize_input=False)
    a, b = steps(unnormalized, 1.0)[-1], steps(unnormalized, 10.0)[-1]
    assert np.abs(a["w"] - b["w"]).max() > 1e-5


def test_weight_decay_is_decoupled_at_each_path_s_step_size():
    ours, _ = run_steps(Celo2(weight_decay=0.5), _theta(), 1)
    plain, _ = run_steps(CELO2, _theta(), 1)
    for k, mult in (("w", 1.0), ("b", 20.0), ("s", 20.0)):
        np.testing.assert_allclose(ours[0][k] - plain[0][k], -1e-3 * mult * 0.5 * PARAMS[k], rtol=1e-4,
                                   atol=3e-7)  # float32 rounding of p - step


def test_state_keeps_adam_moments_for_vectors_and_mlp_accumulators_for_matrices():
    state = CELO2.init(None, PARAMS)
    assert state.tensors["b"].m.shape == (4, 1) and state.tensors["s"].v.shape == (1,)
    assert state.tensors["w"].mom.shape == (3, 4, 3) and state.tensors["w"].fac.v_row.shape == (3, 3)
    base = BASE.init(None, PARAMS)
    assert base.tensors["b"].mom.shape == (4, 3) and base.tensors["b"].fac.v_diag.shape == (4, 3)


@pytest.mark.parametrize("override, message", [
    ({"ns_coeffs": [1.0, 2.0]}, "lopt.ns_coeffs=(1.0, 2.0) is invalid: it must be 3 coefficients"),
    ({"adam_b2": 1.0}, "lopt.adam_b2=1.0 is invalid: it must be a decay in [0, 1)."),
    ({"adam_eps": 0.0}, "lopt.adam_eps=0.0 is invalid: it must be a positive float."),
    ({"mult_1d": -1.0}, "lopt.mult_1d=-1.0 is invalid: it must be a positive float."),
    ({"rms_decays": [0.9, 0.99]}, "lopt.rms_decays=(0.9, 0.99) is invalid: it must be 1 decay or as many"),
    ({"ns_iters": -1}, "lopt.ns_iters=-1 is invalid: it must be a non-negative integer."),
    ({"weight_decay": -0.1}, "lopt.weight_decay=-0.1 is invalid: it must be a non-negative float."),
    ({"orthogonalize": "yes"}, "lopt.orthogonalize='yes' has the wrong type: expected bool."),
])
def test_bad_options_are_config_errors_naming_value_and_valid_values(override, message):
    with pytest.raises(ConfigError) as err:
        build({"name": "celo2", **override})
    assert str(err.value).startswith(message)


def test_registered_with_defaults():
    assert REGISTRY.get("celo2") is Celo2 and build({"name": "celo2"}) == CELO2


def test_vmapped_over_tasks_and_jitted():
    assert_vmapped_tasks_match_single(CELO2, _theta())


def test_export_matches_update():
    assert_export_matches_update(CELO2, _theta())


def test_meta_training_moves_theta():
    assert_meta_training_moves_theta("celo2")


def test_evaluate_runs_through_the_export(tmp_path):
    result = evaluate_curves(tmp_path, "lopt=celo2")
    assert result["learned"] and np.isfinite(result["curves"]["train/loss"]["per_seed"]).all()


def test_experiment_preset_meta_trains_its_task_families_on_their_offline_data(tmp_path):
    """+experiment=celo2, shrunk (two of its four task families, 2 problems each, lengths 5-7,
    truncations of 3, 2 outer iterations) but on its real data: each task family logs a finite loss
    and theta moves."""
    tiny = [o for o in TINY if not o.startswith(("schedule.", "data."))]  # log-uniform lengths, real data
    cfg = compose_meta_train(*tiny, "+experiment=celo2", "schedule.low=5", "schedule.high=7", "outer_iterations=2",
                             "checkpoint_every=0", "suite_tasks=[celo_digits,celo_wine]")
    assert (cfg.lopt.name, cfg.suite.name, cfg.estimator.trunc_length, cfg.data.source) == (
        "celo2", "celo_offline", 3, "real")
    c = run_every_family(cfg, tmp_path)
    theta0 = c.trainer.init(jax.random.PRNGKey(c.settings.seed)).theta
    theta = checkpoint.load_tree(tmp_path / "final_theta", theta0)
    assert max(np.abs(np.asarray(a) - np.asarray(b)).max()
               for a, b in zip(jax.tree_util.tree_leaves(theta), jax.tree_util.tree_leaves(theta0))) > 0
