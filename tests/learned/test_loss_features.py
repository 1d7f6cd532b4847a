import jax.numpy as jnp
import numpy as np

from lopt.learned import loss_features

LOSSES = [2.3, 2.0, 1.7, 1.9, 1.2, 3.0]


def _features(losses):
    stats, out = loss_features.init(), []
    for loss in losses:
        out.append(np.asarray(loss_features.features(stats, jnp.float32(loss))))
        stats = loss_features.update(stats, jnp.float32(loss))
    return np.array(out)


def _by_hand(losses, d):
    """z-score of each loss against bias-corrected EMAs of the previous losses and of their squared
    deviations from the running corrected mean (float64)."""
    mean = var = 0.0
    out = []
    for n, loss in enumerate(losses):
        c = 1 - d**n
        z = 0.0 if n < 2 else np.clip((loss - mean / c) / np.sqrt(var / c + 1e-8), -5, 5)
        out.append(z)
        dev = 0.0 if n == 0 else loss - mean / c
        mean, var = d * mean + (1 - d) * loss, d * var + (1 - d) * dev**2
    return out


def test_features_are_z_scores_against_the_previous_losses():
    expected = np.stack([_by_hand(LOSSES, d) for d in loss_features.DECAYS], -1)
    np.testing.assert_allclose(_features(LOSSES), expected, rtol=1e-4, atol=1e-5)
    assert np.all(_features(LOSSES)[:2] == 0) and np.abs(_features(LOSSES)[2:]).min() > 0.1


def test_features_ignore_the_losses_scale_and_offset():
    np.testing.assert_allclose(_features(LOSSES), _features([10.0 * x - 7.0 for x in LOSSES]), rtol=1e-3, atol=1e-4)


def test_a_jump_in_the_loss_saturates_at_5():
    assert np.allclose(_features([1.0, 1.01, 0.99, 1.0, 50.0])[-1], 5.0)
