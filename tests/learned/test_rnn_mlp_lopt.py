import jax
import numpy as np

from lopt.learned import FCLOpt, RNNMLPLOpt, tensor_lstm
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

LOPT = RNNMLPLOpt(step_mult=1.0, exp_mult=0.5)  # large temperatures: steps of order 1
FC = FCLOpt(step_mult=1.0, exp_mult=0.5)


def _theta(seed=0):
    theta = LOPT.init_theta(jax.random.PRNGKey(seed))
    theta["nn"]["b0"] = jax.random.normal(jax.random.PRNGKey(seed + 1), (32,))
    return theta


def test_meta_param_count_is_lstm_plus_fc_mlp_with_lstm_inputs():
    lstm = 4 * 28 * 32 + 4 * (32 * 32 + 32)
    mlp = (31 + 32) * 32 + 32 + 32 * 2 + 2
    assert tensor_lstm.NUM_INPUTS == 28
    assert num_meta_params(RNNMLPLOpt().init_theta(jax.random.PRNGKey(0))) == lstm + mlp == 9922


def test_zero_lstm_weights_in_the_mlp_is_fc_lopt():
    theta = _theta()
    theta["nn"]["w0"] = theta["nn"]["w0"].at[31:].set(0.0)
    fc_theta = {"nn": {**theta["nn"], "w0": theta["nn"]["w0"][:31]}}
    ours, state = run_steps(LOPT, theta, 3)
    for a, b in zip(ours, run_steps(FC, fc_theta, 3)[0]):
        for k in PARAMS:
            np.testing.assert_allclose(a[k], b[k], rtol=1e-5, atol=1e-7)
    assert np.abs(np.asarray(state.lstm[1])).max() > 0.01  # the LSTM ran; the MLP ignores it


def test_each_tensor_gets_its_lstm_output_as_extra_mlp_inputs():
    """Step 3 of each tensor equals fc_lopt's step from the same state with the tensor's LSTM output h
    appended to every element's input: first-layer bias b0 + h @ w0[31:]."""
    theta = _theta()
    steps, state = run_steps(LOPT, theta, 3)
    prev_steps, prev = run_steps(LOPT, theta, 2)
    params = jax.tree_util.tree_map(lambda p, *s: p + sum(s), PARAMS, *prev_steps)
    h = np.asarray(state.lstm[1])  # the LSTM outputs of step 3, leaves in order b, s, w
    assert np.abs(h[0] - h[2]).max() > 0.01  # tensors get different conditioning
    for i, k in enumerate(sorted(PARAMS)):
        nn = {**theta["nn"], "w0": theta["nn"]["w0"][:31], "b0": theta["nn"]["b0"] + h[i] @ theta["nn"]["w0"][31:]}
        new, _ = FC.update({"nn": nn}, prev.fc, params, grads(2), 3.0)
        np.testing.assert_allclose(steps[2][k], np.asarray(new[k]) - np.asarray(params[k]), rtol=1e-4, atol=1e-6)


def test_the_loss_history_changes_the_step_but_not_its_scale():
    theta = _theta()
    base, _ = run_steps(LOPT, theta, 4, losses=[2.0, 1.5, 1.4, 1.0])
    scaled, _ = run_steps(LOPT, theta, 4, losses=[20.0, 15.0, 14.0, 10.0])
    rising, _ = run_steps(LOPT, theta, 4, losses=[2.0, 1.5, 1.4, 3.0])
    np.testing.assert_allclose(base[-1]["w"], scaled[-1]["w"], rtol=1e-4, atol=1e-6)
    assert np.abs(base[-1]["w"] - rising[-1]["w"]).max() > 1e-4


def test_vmapped_over_tasks_and_jitted():
    assert_vmapped_tasks_match_single(LOPT, _theta())


def test_export_passes_the_loss():
    assert_export_matches_update(LOPT, _theta())


def test_meta_training_moves_theta():
    assert_meta_training_moves_theta("rnn_mlp_lopt")


def test_evaluate_runs_through_the_export(tmp_path):
    result = evaluate_curves(tmp_path, "lopt=rnn_mlp_lopt")
    assert result["learned"] and np.isfinite(result["curves"]["train/loss"]["per_seed"]).all()
