import jax.numpy as jnp
import numpy as np

from lopt.learned import training_fraction as tf
from lopt.schedules import NEVER


def test_fraction_is_step_over_length_and_zero_when_the_length_is_unknown():
    steps = jnp.array([0, 25, 100, 400])
    np.testing.assert_allclose(tf.fraction(steps, tf.horizon(100)), [0.0, 0.25, 1.0, 1.5])
    for unknown in (None, 0, NEVER):
        assert int(tf.horizon(unknown)) == 0
        np.testing.assert_array_equal(tf.fraction(steps, tf.horizon(unknown)), 0.0)


def test_features_switch_on_as_training_passes_each_point():
    """Halfway through, the switches at 0.03..0.4 are on (> 0.7) and those at 0.6..1.1 off (< -0.7)."""
    f = np.asarray(tf.features(jnp.asarray(50), tf.horizon(100)))
    assert f.shape == (tf.NUM_FEATURES,)
    np.testing.assert_allclose(f, np.tanh(10 * (0.5 - np.asarray(tf.POINTS))), rtol=1e-6)
    assert (f[np.asarray(tf.POINTS) < 0.5] > 0.7).all() and (f[np.asarray(tf.POINTS) > 0.5] < -0.7).all()
