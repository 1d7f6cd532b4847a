"""Celo: its update against a plain numpy re-derivation of the reference formulas (github.com/amoudgl/celo,
Moudgil et al. 2025, arXiv:2501.12670), its two phases, and the two-phase presets end to end."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lopt import learned
from lopt.config import from_config
from lopt.errors import ConfigError, UserError
from lopt.io import checkpoint, theta_files
from lopt.learned import Celo
from lopt.schedules import NEVER
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
)

NUM_STEPS = 40  # the training length the optimizer is told
LOSSES = [2.0, 1.5, 1.7, 1.1]


def _theta(phase=1, seed=0, **switches):
    """Random MLP biases and scheduler read-out, initial carry and biases (outputs far from zero)."""
    lopt = Celo(phase=phase, step_mult=0.1, exp_mult=0.5, **switches)
    theta = lopt.init_theta(jax.random.PRNGKey(seed))
    keys = iter(jax.random.split(jax.random.PRNGKey(seed + 1), 8))
    mlp, s = theta["mlp"], theta["scheduler"]
    mlp["b0"], mlp["b2"] = (jax.random.normal(next(keys), mlp[k].shape) for k in ("b0", "b2"))
    s["lr"]["w"] = 0.3 * jax.random.normal(next(keys), s["lr"]["w"].shape)
    s["initial_carry"] = {k: 0.5 * jax.random.normal(next(keys), (64,)) for k in ("c", "h")}
    s["mix_max"]["b"] = jax.random.normal(next(keys), (64,))
    return lopt, theta


def _steps(lopt, theta, n=3):
    state, params, out = lopt.init(theta, PARAMS, NUM_STEPS), PARAMS, []
    for i in range(n):
        new, state = lopt.update(theta, state, params, grads(i), jnp.float32(LOSSES[i]))
        out.append(jax.tree_util.tree_map(jnp.subtract, new, params))
        params = new
    return out, state


# ---- an independent re-derivation in numpy (float64), written from the reference's formulas ----

M_DECAYS, V_DECAYS, A_DECAYS = np.array([0.9, 0.99, 0.999]), np.array([0.999]), np.array([0.9, 0.99, 0.999])


def _rsqrt(x):
    return 1.0 / np.sqrt(x)


def _np_tensor(p, g, acc):
    """One reference update of one tensor's accumulators (learned_optimization's vec_rolling_mom,
    vec_rolling_rms, vec_factored_rolling) and its 30 features [*shape, 30], in the reference's order."""
    g = np.clip(g, -1000, 1000)
    if p.ndim == 0:
        p, g = p[None], g[None]
    m = acc.get("m", 0) * M_DECAYS + (1 - M_DECAYS) * g[..., None]
    v = acc.get("v", 0) * V_DECAYS + (1 - V_DECAYS) * g[..., None] ** 2
    g2 = g[..., None] ** 2 + 1e-30
    if p.ndim >= 2:
        d1, d0 = np.argsort(p.shape)[-2:]
        row = acc.get("row", 0) * A_DECAYS + (1 - A_DECAYS) * g2.mean(axis=d0)
        col = acc.get("col", 0) * A_DECAYS + (1 - A_DECAYS) * g2.mean(axis=d1)
        rowcol = row.mean(axis=d1 - 1 if d1 > d0 else d1, keepdims=True)
        rf = np.expand_dims(_rsqrt(np.maximum(row / (rowcol + 1e-9), 1e-9)), d0)
        cf = np.expand_dims(_rsqrt(np.maximum(col, 1e-9)), d1)
        fac_g = g[..., None] * rf * cf
        full = p.shape + (3,)
        row_f = np.broadcast_to(np.expand_dims(row, d0), full)
        col_f = np.broadcast_to(np.expand_dims(col, d1), full)
        fac = [row_f, col_f, _rsqrt(row_f + 1e-8), _rsqrt(col_f + 1e-8), m * rf * cf]
        new = {"m": m, "v": v, "row": row, "col": col}
    else:
        diag = acc.get("diag", 0) * A_DECAYS + (1 - A_DECAYS) * g2
        fac_g = g[..., None] * _rsqrt(np.maximum(diag + 1e-9, 1e-9))
        fac = [diag, diag, _rsqrt(diag + 1e-8), _rsqrt(diag + 1e-8), m * diag**-0.5]
        new = {"m": m, "v": v, "diag": diag}
    r = _rsqrt(v + 1e-6)
    feats = [g[..., None], np.clip(g, -0.1, 0.1)[..., None], p[..., None], m, v, m * r, r, fac_g, g[..., None] * r, *fac]
    return np.concatenate(feats, axis=-1), new


FRACTION_POINTS = np.array([0.03, 0.1, 0.2, 0.4, 0.6, 0.8, 0.9, 1.0, 1.1])


def _np_mlp_step(p, feats, mlp, lopt, fraction, p0):
    """Each feature scaled to unit second moment over the tensor, the MLP (with fraction_features,
    also reading the unnormalized fraction-of-training switches), and the step
    d * (param_scale * exp(m * exp_mult)) * step_mult (param_scale: of p, of the initial p, or 1)."""
    shape = p.shape
    p = p.reshape(feats.shape[:-1])
    axes = tuple(range(p.ndim))
    x = feats / np.sqrt(1e-5 + np.mean(feats**2, axis=axes, keepdims=True))
    w = {k: np.asarray(v, np.float64) for k, v in mlp.items()}
    if lopt.fraction_features:
        x = np.concatenate([x, np.broadcast_to(np.tanh((fraction - FRACTION_POINTS) * 10), (*x.shape[:-1], 9))], -1)
    h = np.maximum(x @ w["w0"] + w["b0"], 0)
    h = np.maximum(h @ w["w1"] + w["b1"], 0)
    o = h @ w["w2"] + w["b2"]
    scale = {"rms": np.sqrt(np.mean(p**2) + 1e-9), "initial_rms": np.sqrt(np.mean(p0**2) + 1e-9),
             "none": 1.0}[lopt.step_scale]
    if lopt.width_scaling and len(shape) >= 2 and shape[0] > lopt.base_width:  # muLO: 1/fan_in per entry
        scale *= (lopt.base_width / shape[0]) ** (1.0 if lopt.step_scale == "none" else 0.5)
    return (o[..., 0] * (scale * np.exp(o[..., 1] * lopt.exp_mult)) * lopt.step_mult).reshape(shape)


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def _np_lr_mult(theta, loss_feats, fraction, carry, count):
    """The scheduler as the reference computes it with haiku's LSTM: inputs [fraction(9), loss(9)] per
    tensor, mix (one effective relu layer, max over tensors), hk.LSTM (one Linear over [x, h], gates
    i g f o, +1 inside the forget sigmoid: its bias is flax's forget bias - 1), lr = 0.1 exp(Linear(h))."""
    s = jax.tree_util.tree_map(lambda a: np.asarray(a, np.float64), theta["scheduler"])
    frac = np.tanh((fraction - np.array([0.03, 0.1, 0.2, 0.4, 0.6, 0.8, 0.9, 1.0, 1.1])) * 10)
    x = np.tile(np.concatenate([frac, loss_feats]), (count, 1))
    v = np.max(np.maximum(x @ s["mix_max"]["w"] + s["mix_max"]["b"], 0), axis=0, keepdims=True)
    x = x @ s["mix_in"]["w"] + s["mix_in"]["b"] + v
    lstm = s["lstm"]
    w = np.concatenate([np.concatenate([lstm[f"i{k}"]["kernel"], lstm[f"h{k}"]["kernel"]]) for k in "igfo"], axis=1)
    b = np.concatenate([lstm[f"h{k}"]["bias"] - (1.0 if k == "f" else 0.0) for k in "igfo"])
    c, h = carry
    i, g, f, o = np.split(np.concatenate([x, h], axis=1) @ w + b, 4, axis=1)
    c = _sigmoid(f + 1) * c + _sigmoid(i) * np.tanh(g)
    h = _sigmoid(o) * np.tanh(c)
    return 0.1 * np.exp(h @ s["lr"]["w"][:, 0] + s["lr"]["b"][0]), (c, h)


def _np_loss_features(losses, num_steps):
    """The reference's BufferLossAccumulators after `losses` (float64)."""
    d = np.exp(-1 / np.logspace(1, math.log10(num_steps), 10))
    means, low = np.zeros(10), np.full(10, 1e12)
    for t, loss in enumerate(losses):
        largest = loss if t == 0 else np.max(means / (1 - d ** (t + 1)))
        means = means * d + min(abs(largest) * 2, loss) * (1 - d)
        low = np.minimum(low, means / (1 - d ** (t + 1)))
    c = means / (1 - d ** len(losses))
    f = np.clip((c[:-1] - low[:-1]) / np.maximum(1e-8, c[1:] - low[:-1]) - 1, -1, 1)
    return f if len(losses) > 2 else 0 * f


def _np_steps(lopt, theta, n=3):
    """n reference updates of PARAMS with gradients grads(i) and losses LOSSES[i]."""
    params = {k: np.asarray(v, np.float64) for k, v in PARAMS.items()}
    initial, accs = dict(params), {k: {} for k in params}
    carry = tuple(np.tile(np.asarray(theta["scheduler"]["initial_carry"][k], np.float64), (3, 1)) for k in "ch")
    out = []
    for i in range(n):
        g = {k: np.asarray(v, np.float64) for k, v in grads(i).items()}
        if lopt.phase == 2:
            loss_feats = _np_loss_features(LOSSES[: i + 1], NUM_STEPS)
            lr, carry = _np_lr_mult(theta, loss_feats, i / NUM_STEPS, carry, len(params))
        steps = {}
        for j, k in enumerate(sorted(params)):  # tensors in the params tree's (sorted-key) order
            feats, accs[k] = _np_tensor(params[k], g[k], accs[k])
            steps[k] = -_np_mlp_step(params[k], feats, theta["mlp"], lopt, i / NUM_STEPS, initial[k]) * (
                lr[j] if lopt.phase == 2 else 1.0)
        params = {k: params[k] + steps[k] for k in params}
        out.append(steps)
    return out


# ---- the tests ----


def test_meta_params_are_a_30_4_4_2_mlp_and_an_lstm_64_scheduler():
    lopt = Celo()
    theta = lopt.init_theta(jax.random.PRNGKey(0))
    mlp = 30 * 4 + 4 + 4 * 4 + 4 + 4 * 2 + 2
    mix, cell, carry, readout = 2 * (18 * 64 + 64), 4 * 64 * 64 + 4 * (64 * 64 + 64), 2 * 64, 64 + 1
    assert lopt.num_features == 30 and num_meta_params(theta["mlp"]) == mlp == 154
    assert num_meta_params(theta["scheduler"]) == mix + cell + carry + readout == 35649
    assert num_meta_params(theta) == 35803
    # haiku's initialization: forget bias 1 (the +1 folded in), zero initial carry
    np.testing.assert_array_equal(theta["scheduler"]["lstm"]["hf"]["bias"], 1.0)
    np.testing.assert_array_equal(theta["scheduler"]["lstm"]["hi"]["bias"], 0.0)
    np.testing.assert_array_equal(theta["scheduler"]["initial_carry"]["h"], 0.0)
    w = np.asarray(theta["scheduler"]["lstm"]["ii"]["kernel"])
    assert np.abs(w).max() <= 2 / math.sqrt(128) and 0.7 < w.std() * math.sqrt(128) < 1.0  # truncated N(0, 1/128)


@pytest.mark.parametrize("phase", [1, 2])
def test_updates_match_a_numpy_rederivation_of_the_reference(phase):
    """Three updates of a matrix, a bias and a scalar: features, normalization, MLP, step and (phase
    2) the loss buffer, fraction features, mixing layer, haiku-convention LSTM and lr_mult."""
    lopt, theta = _theta(phase)
    ours, _ = _steps(lopt, theta)
    for i, (a, b) in enumerate(zip(ours, _np_steps(lopt, theta))):
        for k in PARAMS:
            assert np.abs(b[k]).max() > 1e-3
            np.testing.assert_allclose(a[k], b[k], rtol=2e-4, atol=1e-7, err_msg=f"update {i}, {k}")


@pytest.mark.parametrize("switches", [{"fraction_features": True}, {"step_scale": "none"},
                                      {"step_scale": "initial_rms"}, {"fraction_features": True, "step_scale": "none"},
                                      {"width_scaling": True, "base_width": 2},
                                      {"width_scaling": True, "base_width": 2, "step_scale": "none"}])
def test_the_ablation_switches_match_the_numpy_rederivation(switches):
    """fraction_features: 9 more MLP inputs (w0 grows to 39 rows), the fraction-of-training switches
    at each step; step_scale none: steps without the tensor's RMS factor, initial_rms: with the
    factor of the tensor at init; width_scaling: the 3x4 matrix (fan-in 3 > base_width 2) steps
    sqrt(2/3) as far (2/3 with absolute steps), the bias and the scalar as without it."""
    lopt, theta = _theta(1, **switches)
    assert theta["mlp"]["w0"].shape[0] == 30 + (9 if lopt.fraction_features else 0)
    theta["mlp"]["w0"] = theta["mlp"]["w0"].at[30:].multiply(5.0)  # make the fraction inputs matter
    ours, _ = _steps(lopt, theta)
    for i, (a, b) in enumerate(zip(ours, _np_steps(lopt, theta))):
        for k in PARAMS:
            np.testing.assert_allclose(a[k], b[k], rtol=2e-4, atol=1e-7, err_msg=f"update {i}, {k}")
    if lopt.fraction_features:  # the second step of a 3-step training is not that of a 40-step one
        def second(num_steps):
            state = lopt.init(theta, PARAMS, num_steps)
            params, state = lopt.update(theta, state, PARAMS, grads(0), jnp.float32(1.0))
            return np.asarray(lopt.update(theta, state, params, grads(1), jnp.float32(1.0))[0]["w"])
        assert not np.allclose(second(3), second(NUM_STEPS))


def test_phase_1_does_not_depend_on_the_scheduler():
    lopt, theta = _theta(1)
    other = {**theta, "scheduler": Celo().init_theta(jax.random.PRNGKey(7))["scheduler"]}
    for a, b in zip(_steps(lopt, theta)[0], _steps(lopt, other)[0]):
        for k in PARAMS:
            np.testing.assert_array_equal(a[k], b[k])


def test_phase_2_step_is_the_phase_1_step_times_each_tensors_lr_mult():
    """From the same state, phase 2's step of each tensor is phase 1's times 0.1 exp(w . h + b), h the
    scheduler's new LSTM output for that tensor; the lr_mults move with the losses and the step count."""
    one, theta = _theta(1)
    two = Celo(phase=2, step_mult=one.step_mult, exp_mult=one.exp_mult)
    state, params, mults = two.init(theta, PARAMS, NUM_STEPS), PARAMS, []
    for i in range(3):
        new2, state2 = two.update(theta, state, params, grads(i), jnp.float32(LOSSES[i]))
        new1, _ = one.update(theta, state, params, grads(i), jnp.float32(LOSSES[i]))
        h = np.asarray(state2.lstm[1])
        lr = 0.1 * np.exp(h @ np.asarray(theta["scheduler"]["lr"]["w"])[:, 0] + float(theta["scheduler"]["lr"]["b"][0]))
        for j, k in enumerate(sorted(PARAMS)):
            np.testing.assert_allclose(new2[k] - params[k], lr[j] * (new1[k] - params[k]), rtol=1e-4, atol=1e-9)
        mults.append(lr[0])
        state, params = state2, new2
    assert len({round(float(m), 6) for m in mults}) == 3


def test_the_training_length_steers_phase_2_and_an_unknown_one_reads_as_fraction_zero():
    lopt, theta = _theta(2)

    def steps(num_steps):
        state, params, out = lopt.init(theta, PARAMS, num_steps), PARAMS, []
        for i in range(3):
            params, state = lopt.update(theta, state, params, grads(i), jnp.float32(LOSSES[i]))
            out.append(params["w"])
        return np.array(out)

    unknown = steps(None)
    np.testing.assert_array_equal(steps(NEVER), unknown)
    np.testing.assert_array_equal(steps(0), unknown)
    assert np.isfinite(unknown).all() and np.abs(steps(4) - unknown).max() > 1e-6


def test_vmapped_over_tasks_and_jitted():
    assert_vmapped_tasks_match_single(*_theta(2))


def test_export_passes_the_loss():
    assert_export_matches_update(*_theta(2))


def test_trainable_keys_follow_the_phase():
    assert Celo(phase=1).trainable_keys == ("mlp",)
    assert Celo(phase=2).trainable_keys == ("scheduler",)
    assert Celo(phase=2, train_partial=False).trainable_keys is None


@pytest.mark.parametrize("node, match", [
    ({"phase": 3}, r"^lopt\.phase=3 is invalid: it must be 1 \(meta-train the MLP update rule\) or 2 "),
    ({"lstm_size": 0}, r"^lopt\.lstm_size=0 is invalid: it must be a positive integer"),
    ({"rms_decays": [0.9, 0.99]}, r"^lopt\.rms_decays=\(0\.9, 0\.99\) is invalid"),
])
def test_bad_options_are_config_errors(node, match):
    with pytest.raises(ConfigError, match=match):
        from_config(Celo, node, "lopt")


def test_meta_training_moves_theta():
    assert_meta_training_moves_theta("celo")


def test_evaluate_runs_phase_2_through_the_export(tmp_path):
    result = evaluate_curves(tmp_path, "lopt=celo", "lopt.phase=2")
    assert result["learned"] and np.isfinite(result["curves"]["train/loss"]["per_seed"]).all()


def test_a_warm_start_may_change_the_phase_and_nothing_else(tmp_path):
    (tmp_path / "config.yaml").write_text("lopt:\n  name: celo\n  phase: 1\n")
    learned.check_architecture(Celo(phase=2), tmp_path, warm_start=True)
    learned.check_architecture(Celo(phase=2, train_partial=False), tmp_path, warm_start=True)
    with pytest.raises(UserError, match=r"meta-trained with lopt=celo \(lstm_size=64\) but lopt=celo \(lstm_size=32\)"):
        learned.check_architecture(Celo(phase=2, lstm_size=32), tmp_path, warm_start=True)
    with pytest.raises(UserError, match=r"meta-trained with lopt=celo \(phase=1\) but lopt=celo \(phase=2\)"):
        learned.check_architecture(Celo(phase=2), tmp_path)  # evaluating it: its own phase, or an error


# The presets on the tiny synthetic config: log-uniform lengths 7-9 instead of TINY's constant 7.
PRESET_TINY = [o for o in TINY if not o.startswith("schedule.")] + [
    "schedule.low=7", "schedule.high=9", "outer_iterations=2", "checkpoint_every=0"]


def _leaves(tree):
    return [np.asarray(x) for x in jax.tree_util.tree_leaves(tree)]


def test_two_phase_presets_freeze_the_other_part_across_a_warm_start(tmp_path):
    """Phase 1 moves only the MLP; phase 2, warm-started from phase 1's run, keeps that MLP exactly
    and moves only the scheduler."""
    init = Celo().init_theta(jax.random.PRNGKey(0))
    # two of the preset's four task families (suite celo_offline): each family is a compile of its own
    two = "suite_tasks=[celo_digits,celo_wine]"
    cfg1 = compose_meta_train("+experiment=celo", *PRESET_TINY, two)
    assert (cfg1.lopt.phase, cfg1.estimator.trunc_length, cfg1.outer_opt.name, cfg1.augment.level) == (1, 3, "adamw", "global")
    c1 = run_every_family(cfg1, tmp_path / "p1")
    theta1 = checkpoint.load_tree(tmp_path / "p1" / "final_theta", init)
    theta0 = c1.trainer.init(jax.random.PRNGKey(c1.settings.seed)).theta  # the run's initial theta
    assert max(np.abs(a - b).max() for a, b in zip(_leaves(theta1["mlp"]), _leaves(theta0["mlp"]))) > 0
    for a, b in zip(_leaves(theta1["scheduler"]), _leaves(theta0["scheduler"])):
        np.testing.assert_array_equal(a, b)

    cfg2 = compose_meta_train("+experiment=celo_phase2", *PRESET_TINY, f"theta={tmp_path / 'p1'}", two)
    assert cfg2.lopt.phase == 2
    run_every_family(cfg2, tmp_path / "p2")
    theta2 = checkpoint.load_tree(tmp_path / "p2" / "final_theta", init)
    for a, b in zip(_leaves(theta2["mlp"]), _leaves(theta1["mlp"])):
        np.testing.assert_array_equal(a, b)
    assert max(np.abs(a - b).max() for a, b in zip(_leaves(theta2["scheduler"]), _leaves(theta1["scheduler"]))) > 0
    # the run records its own phase; evaluating it uses phase 2's steps
    assert theta_files.stored_architecture(tmp_path / "p2")["phase"] == 2
