import jax.numpy as jnp
import numpy as np
import pytest

from lopt.optimizers.lr_schedules import warmup_constant_cosine


def test_warmup_then_constant_then_cosine_to_the_min_multiplier():
    f = warmup_constant_cosine(0.1, 100, warmup_fraction=0.1, constant_fraction=0.5, min_lr_mult=0.01)
    lr = np.array([f(jnp.asarray(t)) for t in range(101)])
    np.testing.assert_allclose(lr[:10], 0.1 * np.arange(10) / 10, rtol=1e-6)  # linear warmup from 0
    np.testing.assert_allclose(lr[10:51], 0.1, rtol=1e-6)  # held until half of training
    assert lr[75] == pytest.approx((0.1 + 0.001) / 2, rel=1e-5)  # the cosine's midpoint
    assert lr[100] == pytest.approx(0.001, rel=1e-5)
    assert np.all(np.diff(lr[50:]) <= 1e-9)


def test_no_warmup_and_no_constant_is_plain_cosine_decay():
    f = warmup_constant_cosine(1.0, 10, 0.0, 0.0, 0.0)
    np.testing.assert_allclose([f(t) for t in range(11)], 0.5 * (1 + np.cos(np.pi * np.arange(11) / 10)), atol=1e-6)
