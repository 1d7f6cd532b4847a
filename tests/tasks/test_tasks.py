import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lopt import tasks
from lopt.tasks import num_params
from tests.conftest import compose_meta_train


# Hand counts: conv 9*cin*cout + cout per layer; dense in*out + out.
# cifar_conv32: (27*32+32) + 2*(288*32+32) + (32*10+10) = 19,722.
# imagenet16_mlp: (768*256+256) + 2*(256*256+256) + (256*1000+1000) = 585,448.
# cifar_ae: (3072*128+128) + (128*32+32) + (32*128+128) + (128*3072+3072) = 797,984.
@pytest.mark.parametrize("task, expected", [
    ("conv_cifar", 56_970), ("fmnist_mlp", 118_282), ("digits_mlp", 3_466), ("cifar_conv32", 19_722),
    ("imagenet16_mlp", 585_448), ("cifar_ae", 797_984), ("quadratic", 16), ("two_minima", 1),
    ("lm1b_lstm", 148_480)])
def test_task_parameter_counts(task, expected):
    t = tasks.build(compose_meta_train(f"task={task}").task)
    assert num_params(t.init(jax.random.PRNGKey(0))) == expected


def test_conv_cifar_matches_seed_architecture():
    params = tasks.build(compose_meta_train("task=conv_cifar").task).init(jax.random.PRNGKey(0))
    shapes = {k: {n: v.shape for n, v in p.items()} for k, p in params.items()}
    assert shapes == {
        "Conv2D_0": {"kernel": (3, 3, 3, 32), "bias": (32,)},
        "Conv2D_1": {"kernel": (3, 3, 32, 64), "bias": (64,)},
        "Conv2D_2": {"kernel": (3, 3, 64, 64), "bias": (64,)},
        "Dense_0": {"kernel": (64, 10), "bias": (10,)},
    }


def test_conv_impls_give_the_same_loss():
    cfg = compose_meta_train("task=conv_cifar").task
    patches = tasks.build({**cfg, "conv_impl": "patches"})
    native = tasks.build({**cfg, "conv_impl": "native"})
    params = patches.init(jax.random.PRNGKey(0))
    batch = (jax.random.uniform(jax.random.PRNGKey(1), (4, 16, 16, 3)), jnp.arange(4))
    np.testing.assert_allclose(patches.loss(params, batch), native.loss(params, batch), rtol=1e-5)


def test_loss_at_init_is_near_log_num_classes_and_meta_loss_is_clipped_nan_safe():
    task = tasks.build(compose_meta_train().task)
    params = task.init(jax.random.PRNGKey(0))
    batch = (jax.random.uniform(jax.random.PRNGKey(1), (128, 8, 8, 1)), jnp.arange(128) % 10)
    assert abs(float(task.loss(params, batch)) - math.log(10)) < 0.3
    clip = 1.5 * math.log(10)
    assert task.loss_clip == pytest.approx(clip)
    out = task.meta_loss(jnp.array([1.0, 100.0, jnp.nan, jnp.inf]))
    np.testing.assert_allclose(out, [1.0, clip, clip, clip], rtol=1e-6)
