import jax
import jax.numpy as jnp
import numpy as np

from lopt.learned import Hypernet, SmallFCLOpt, tensor_lstm
from lopt.schedules import NEVER
from tests.learned.lopt_checks import (
    PARAMS,
    assert_export_matches_update,
    assert_meta_training_moves_theta,
    assert_vmapped_tasks_match_single,
    evaluate_curves,
    grads,
    num_meta_params,
    run_steps,
)

LOPT = Hypernet(step_mult=1.0, exp_mult=0.5)  # large temperatures: steps of order 1
SMALL = SmallFCLOpt(step_mult=1.0, exp_mult=0.5)


def _theta():
    """Random LSTM and bank biases (so outputs are far from zero) and learned decay offsets."""
    theta = LOPT.init_theta(jax.random.PRNGKey(0))
    theta["bank"]["b0"] = jax.random.normal(jax.random.PRNGKey(1), theta["bank"]["b0"].shape)
    theta["bank"]["b2"] = jax.random.normal(jax.random.PRNGKey(2), theta["bank"]["b2"].shape)
    theta["momentum_decays"] = jnp.array([0.05, -0.1, 0.02])
    return theta


def _small_theta(theta, nn):
    """small_fc_lopt's theta with the MLP `nn` (zero weights on its time features) and theta's decays."""
    w0 = jnp.concatenate([nn["w0"], jnp.zeros((11, nn["w0"].shape[1]))])
    return {**{k: theta[k] for k in ("momentum_decays", "rms_decays", "adafactor_decays")}, "nn": {**nn, "w0": w0}}


def _assert_steps_equal(ours, theirs):
    for a, b in zip(ours, theirs):
        for k in PARAMS:
            np.testing.assert_allclose(a[k], b[k], rtol=1e-4, atol=1e-6)


def test_meta_param_count_is_bank_mixer_lstm_readout_and_decays():
    f, h, k, lstm = 28, 4, 8, 32
    bank = k * (f * h + h + h * h + h + h * 2 + 2)
    mixer = 2 * ((28 + 9) * lstm + lstm)  # LSTM inputs and fraction-of-training features
    cell = 4 * lstm * lstm + 4 * (lstm * lstm + lstm)
    assert LOPT.num_features == f
    assert num_meta_params(Hypernet().init_theta(jax.random.PRNGKey(0))) == (
        bank + mixer + cell + (lstm * k + k) + 7) == 12191


def test_zero_readout_is_small_fc_lopt_with_the_banks_mean_mlp():
    theta = _theta()
    mean_nn = jax.tree_util.tree_map(lambda w: w.mean(0), theta["bank"])
    ours, state = run_steps(LOPT, theta, 3)
    _assert_steps_equal(ours, run_steps(SMALL, _small_theta(theta, mean_nn), 3)[0])
    assert np.abs(np.asarray(state.lstm[1])).max() > 0.01  # the LSTM ran; only its read-out is zero


def test_one_hot_controls_select_one_mlp_of_the_bank():
    theta = _theta()
    theta["controls"]["b"] = jnp.eye(8)[5] - 1 / 8
    bank_5 = jax.tree_util.tree_map(lambda w: w[5], theta["bank"])
    _assert_steps_equal(run_steps(LOPT, theta, 3)[0], run_steps(SMALL, _small_theta(theta, bank_5), 3)[0])


def test_controls_are_linear_in_the_lstm_output_per_tensor():
    """With a random read-out, each tensor's step is small_fc_lopt's with the bank mixed by
    1/8 + h @ W, h that tensor's LSTM output; tensors get different MLPs."""
    theta = _theta()
    theta["controls"]["w"] = jax.random.normal(jax.random.PRNGKey(5), (32, 8))
    steps, state = run_steps(LOPT, theta, 1)
    h = np.asarray(state.lstm[1])
    controls = 1 / 8 + h @ np.asarray(theta["controls"]["w"])
    assert np.abs(controls[0] - controls[2]).max() > 0.05
    for i, k in enumerate(sorted(PARAMS)):
        nn = jax.tree_util.tree_map(lambda w, c=controls[i]: jnp.tensordot(c, w, 1), theta["bank"])
        np.testing.assert_allclose(steps[0][k], run_steps(SMALL, _small_theta(theta, nn), 1)[0][0][k],
                                   rtol=1e-4, atol=1e-6)


def test_the_training_length_steers_the_steps_through_the_fraction_features():
    """Told different lengths, the LSTM (and so the generated MLPs) differ; an unknown length is
    fraction 0; with the fraction rows of the mixing layer zeroed the length has no effect."""
    theta = _theta()
    theta["controls"]["w"] = jax.random.normal(jax.random.PRNGKey(5), (32, 8))

    def steps(num_steps, theta=theta):
        state, out = LOPT.init(theta, PARAMS, num_steps), []
        params = PARAMS
        for i in range(3):
            new, state = LOPT.update(theta, state, params, grads(i), jnp.float32(1.0 + i))
            out.append(jax.tree_util.tree_map(jnp.subtract, new, params))
            params = new
        return out

    short, long_, unknown = steps(4), steps(4000), steps(None)
    assert max(float(np.abs(a[k] - b[k]).max()) for a, b in zip(short, long_) for k in PARAMS) > 1e-4
    _assert_steps_equal(steps(NEVER), unknown)
    rows = slice(tensor_lstm.NUM_INPUTS, None)
    blind = {**theta, **{m: {**theta[m], "w": theta[m]["w"].at[rows].set(0.0)} for m in ("mix_in", "mix_max")}}
    _assert_steps_equal(steps(4, blind), steps(4000, blind))


def test_vmapped_over_tasks_and_jitted():
    assert_vmapped_tasks_match_single(LOPT, _theta())


def test_export_passes_the_loss():
    theta = _theta()
    theta["controls"]["w"] = jax.random.normal(jax.random.PRNGKey(5), (32, 8))
    assert_export_matches_update(LOPT, theta)


def test_meta_training_moves_theta():
    assert_meta_training_moves_theta("hypernet")


def test_evaluate_runs_through_the_export(tmp_path):
    result = evaluate_curves(tmp_path, "lopt=hypernet")
    assert result["learned"] and np.isfinite(result["curves"]["train/loss"]["per_seed"]).all()
