import math

import jax.numpy as jnp
import numpy as np
import pytest

from lopt.learned import loss_buffer


def _features(losses, num_steps):
    """The features after each loss (the scheduler reads them after including the step's loss)."""
    buf, out = loss_buffer.init(jnp.asarray(num_steps)), []
    for loss in losses:
        buf = loss_buffer.update(buf, jnp.float32(loss))
        out.append(np.asarray(loss_buffer.features(buf)))
    return np.array(out), buf


def _by_hand(losses, num_steps):
    """The reference's buffer as plain Python floats (float64): clip each loss at twice the largest
    bias-corrected mean (corrected with the count after it), EMA, running min of the corrected means;
    features (m_k - r_k) / max(1e-8, m_{k+1} - r_k) - 1 clipped to [-1, 1], 0 up to the 2nd loss."""
    lives = [10 ** (1 + k * (math.log10(num_steps) - 1) / 9) for k in range(10)]
    d = [math.exp(-1 / h) for h in lives]
    means, low, out = [0.0] * 10, [1e12] * 10, []
    for t, loss in enumerate(losses):
        largest = loss if t == 0 else max(m / (1 - dk ** (t + 1)) for m, dk in zip(means, d))
        loss = min(abs(largest) * 2, loss)
        means = [m * dk + loss * (1 - dk) for m, dk in zip(means, d)]
        corrected = [m / (1 - dk ** (t + 1)) for m, dk in zip(means, d)]
        low = [min(r, c) for r, c in zip(low, corrected)]
        f = [min(1.0, max(-1.0, (corrected[k] - low[k]) / max(1e-8, corrected[k + 1] - low[k]) - 1)) for k in range(9)]
        out.append([0.0] * 9 if t + 1 <= 2 else f)
    return np.array(out)


def test_half_lives_are_log_spaced_from_10_to_the_training_length():
    np.testing.assert_allclose(loss_buffer.decays(jnp.asarray(100)),
                               np.exp(-1 / np.logspace(1, 2, 10)), rtol=1e-6)
    np.testing.assert_allclose(loss_buffer.decays(jnp.asarray(0)),  # unknown: UNKNOWN_LENGTH steps
                               np.exp(-1 / np.logspace(1, 3, 10)), rtol=1e-6)


def test_hand_computed_example_with_equal_decays():
    """With a 10-step training every half-life is 10, so the 10 averages are equal: while the loss
    falls each average is its running minimum (0 / max(1e-8, 0) - 1 = -1); once it rises above the
    minimum, (m - r) / (m - r) - 1 = 0. The first two losses give 0. The loss of 100 is clipped at
    twice the largest bias-corrected mean before it enters the averages."""
    feats, buf = _features([4.0, 2.0, 1.0, 100.0], 10)
    np.testing.assert_array_equal(feats[:2], 0.0)
    np.testing.assert_array_equal(feats[2], -1.0)
    np.testing.assert_allclose(feats[3], 0.0, atol=1e-6)
    d = math.exp(-0.1)
    means = 0.0
    for t, loss in enumerate([4.0, 2.0, 1.0]):
        largest = loss if t == 0 else means / (1 - d ** (t + 1))
        means = d * means + (1 - d) * min(2 * largest, loss)
    clipped = 2 * means / (1 - d**4)  # the 4th loss, clipped (100 > it)
    np.testing.assert_allclose(buf.means, d * means + (1 - d) * clipped, rtol=1e-5)
    assert int(buf.count) == 4


@pytest.mark.parametrize("num_steps", [100, 1000])
def test_features_match_the_reference_formulas(num_steps):
    losses = 2.3 * np.exp(-np.linspace(0, 3, 40)) + 0.3 * np.sin(np.arange(40))
    losses[25] = 50.0  # a spike, clipped
    ours, _ = _features(losses, num_steps)
    expected = _by_hand(losses, num_steps)
    assert np.abs(expected[3:]).max() > 0.1 and (np.abs(expected[3:]) < 1).any()  # values inside the clip range
    # After 3 losses the averages differ by ~1e-3 of their value: float32 cancellation in the ratio.
    np.testing.assert_allclose(ours[2], expected[2], atol=1e-2)
    np.testing.assert_allclose(np.delete(ours, 2, 0), np.delete(expected, 2, 0), rtol=1e-3, atol=1e-4)
