"""The `vector` task kind: MLPs and 1-D convnets on rows and signals, classification and regression."""
import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lopt import tasks
from lopt.errors import ConfigError
from lopt.tasks.conv import Conv1D
from lopt.tasks.vector import VectorConfig


def _parse(**overrides):
    return tasks.parse({"name": "t", "kind": "vector", "dataset": "wine", "hidden": [8], **overrides})


@pytest.mark.parametrize("overrides, message", [
    ({"dataset": "iris"}, "task.dataset='iris' is invalid: it must be one of ['breast_cancer', 'diabetes', 'mnist1d', 'wine']."),
    ({"dataset": "digits"}, "task.dataset='digits' is invalid: it must be one of ['breast_cancer', 'diabetes', 'mnist1d', 'wine']."),
    ({"model": "conv"}, "task.model='conv' is invalid: it must be one of ['mlp', 'conv1d']."),
    ({"hidden": []}, "task.hidden=() is invalid: it must be a non-empty list for an mlp model."),
    ({"hidden": [8, 0]}, "task.hidden/channels/strides=(8, 0) is invalid: it must be positive integers."),
    ({"model": "conv1d", "channels": [4], "strides": [1]},
     "task.dataset='wine' is invalid: it must be a dataset of 1-D signals for model conv1d: one of ['mnist1d']."),
    ({"model": "conv1d", "dataset": "mnist1d"}, "task.channels=() is invalid: it must be a non-empty list for a conv1d model."),
    ({"model": "conv1d", "dataset": "mnist1d", "channels": [4, 4], "strides": [1]},
     "task.strides=(1,) is invalid: it must be a list as long as channels."),
    ({"kernel_size": 0}, "task.kernel_size=0 is invalid: it must be a positive integer."),
    ({"activation": "elu"}, "task.activation='elu' is invalid: it must be one of ['relu', 'tanh', 'gelu', 'swish']."),
    ({"batch_size": 0}, "task.batch_size=0 is invalid: it must be a positive integer."),
    ({"loss_clip_factor": 0}, "task.loss_clip_factor=0.0 is invalid: it must be positive."),
])
def test_bad_values_are_one_line_errors_naming_the_value_and_the_choices(overrides, message):
    with pytest.raises(ConfigError) as err:
        _parse(**overrides)
    assert str(err.value) == message


def test_example_size_is_the_examples_length():
    assert _parse().example_size == 13 and _parse(dataset="mnist1d").example_size == 40


def test_conv1d_is_flax_conv_with_same_padding_by_both_implementations():
    x = jax.random.normal(jax.random.PRNGKey(0), (3, 11, 2))
    reference = nn.Conv(4, (5,), strides=(2,), padding="SAME")
    params = reference.init(jax.random.PRNGKey(1), x)
    params = jax.tree_util.tree_map(lambda p: p + 0.1, params)  # a nonzero bias
    expected = reference.apply(params, x)
    assert expected.shape == (3, 6, 4)
    for impl in ("patches", "native"):
        conv = Conv1D(4, 5, 2, impl)
        assert jax.tree_util.tree_map(jnp.shape, conv.init(jax.random.PRNGKey(1), x)) == \
            jax.tree_util.tree_map(jnp.shape, params)
        np.testing.assert_allclose(conv.apply(params, x), expected, rtol=1e-5, atol=1e-5)

    def loss(impl, p):
        return jnp.sum(jnp.sin(Conv1D(4, 5, 2, impl).apply(p, x)))

    for a, b in zip(*(jax.tree_util.tree_leaves(jax.grad(loss, argnums=1)(impl, params)) for impl in ("patches", "native"))):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


def test_conv1d_net_shapes_and_classification_metrics():
    cfg = _parse(dataset="mnist1d", model="conv1d", channels=[4, 6], strides=[2, 1], kernel_size=5)
    task = cfg.build()
    params = task.init(jax.random.PRNGKey(0))
    shapes = {k: {n: v.shape for n, v in p.items()} for k, p in params.items()}
    assert shapes == {"Conv1D_0": {"kernel": (5, 1, 4), "bias": (4,)}, "Conv1D_1": {"kernel": (5, 4, 6), "bias": (6,)},
                      "Dense_0": {"kernel": (6, 10), "bias": (10,)}}
    batch = (jax.random.normal(jax.random.PRNGKey(1), (8, 40, 1)), jnp.arange(8))
    metrics = task.metrics(params, batch)
    assert metrics.keys() == {"loss", "accuracy"} and abs(float(metrics["loss"]) - math.log(10)) < 0.5
    assert task.loss_clip == pytest.approx(1.5 * math.log(10)) and task.batch_size == 32


def test_regression_is_the_mean_squared_error_of_one_output_clipped_absolutely():
    task = _parse(dataset="diabetes", loss_clip_factor=2.0).build()
    params = jax.tree_util.tree_map(jnp.zeros_like, task.init(jax.random.PRNGKey(0)))
    params["Dense_1"]["bias"] = jnp.array([0.5])  # predicts 0.5 everywhere
    assert params["Dense_1"]["kernel"].shape == (8, 1)
    y = jnp.array([0.5, 1.5, -0.5, 2.5])
    metrics = task.metrics(params, (jnp.ones((4, 10)), y))
    assert metrics.keys() == {"loss"} and float(metrics["loss"]) == pytest.approx((0 + 1 + 1 + 4) / 4)
    assert task.loss_clip == 2.0


def test_vector_is_a_task_kind():
    assert tasks.KINDS.get("vector") is VectorConfig and isinstance(_parse(), VectorConfig)
