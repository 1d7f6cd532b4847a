"""The shipped tasks on offline data (MNIST-1D, scikit-learn's tables and photographs, the Python
standard library): their architectures, and that Adam trains each on its real data."""
import math

import jax
import numpy as np
import optax
import pytest

from lopt import data, tasks
from tests.conftest import compose_meta_train

# Hand counts: dense in*out + out; conv1d k*cin*cout + cout; LSTM 4*(in*h + h*h + h) + 2h initial state.
# mnist1d_mlp: (40*64+64) + (64*64+64) + (64*10+10) = 7,434.
# mnist1d_conv: (5*1*32+32) + 2*(5*32*32+32) + (32*10+10) = 10,826.
# patches_ae: (192*64+64) + (64*16+16) + (16*64+64) + (64*192+192) = 26,960.
# stdlib_lstm: 256*32 + 4*(32*64 + 64*64 + 64) + 2*64 + (64*256+256) = 49,792.
PARAMS = {"mnist1d_mlp": 7_434, "mnist1d_conv": 10_826, "breast_cancer_mlp": 1_058, "wine_mlp": 547,
          "diabetes_mlp": 385, "patches_ae": 26_960, "stdlib_lstm": 49_792}
UNIFORM = {"mnist1d_mlp": 10, "mnist1d_conv": 10, "breast_cancer_mlp": 2, "wine_mlp": 3, "stdlib_lstm": 256}
STEPS = 50


@pytest.fixture(scope="module")
def loaded():
    """name -> (task config, its real dataset); a dataset is loaded once for the tasks sharing it."""
    configs = {name: tasks.parse(compose_meta_train(f"task={name}").task) for name in PARAMS}
    datasets = {cfg.dataset: data.load(cfg.dataset, "real", cfg.example_size) for cfg in configs.values()}
    return {name: (cfg, datasets[cfg.dataset]) for name, cfg in configs.items()}


@pytest.mark.parametrize("name", PARAMS)
def test_init_shapes_and_finite_loss_on_real_data(loaded, name):
    cfg, d = loaded[name]
    task = cfg.build()
    params = task.init(jax.random.PRNGKey(0))
    assert tasks.num_params(params) == PARAMS[name]
    batch = task.sample_batch(d, jax.random.PRNGKey(1))
    assert batch[0].shape[0] == task.batch_size == cfg.batch_size
    metrics = task.metrics(params, batch)
    assert all(np.isfinite(float(v)) for v in metrics.values())
    assert ("accuracy" in metrics) == (name in UNIFORM)
    if name in UNIFORM:  # classifiers start near the uniform prediction and clip at 1.5x its loss
        assert abs(float(metrics["loss"]) - math.log(UNIFORM[name])) < 0.6
        assert task.loss_clip == pytest.approx(1.5 * math.log(UNIFORM[name]))
    else:  # the regression and the autoencoder start below their absolute clip
        assert float(metrics["loss"]) < task.loss_clip


def test_shipped_architectures(loaded):
    shapes = {name: jax.tree_util.tree_map(np.shape, loaded[name][0].build().init(jax.random.PRNGKey(0)))
              for name in ("mnist1d_conv", "patches_ae")}
    assert [shapes["mnist1d_conv"][f"Conv1D_{i}"]["kernel"] for i in range(3)] == [(5, 1, 32), (5, 32, 32), (5, 32, 32)]
    assert [shapes["patches_ae"][f"Dense_{i}"]["kernel"] for i in range(4)] == [(192, 64), (64, 16), (16, 64), (64, 192)]


@pytest.mark.parametrize("name", PARAMS)
def test_adam_lowers_the_training_loss_in_50_steps(loaded, name):
    cfg, d = loaded[name]
    task, opt = cfg.build(), optax.adam(1e-2)
    probe = task.sample_batch(d, jax.random.PRNGKey(99))  # one fixed batch, so the drop is not sampling noise

    @jax.jit
    def train(key):
        params = task.init(key)

        def step(carry, k):
            params, state = carry
            grads = jax.grad(task.loss)(params, task.sample_batch(d, k))
            updates, state = opt.update(grads, state)
            return (optax.apply_updates(params, updates), state), None

        (trained, _), _ = jax.lax.scan(step, (params, opt.init(params)), jax.random.split(key, STEPS))
        return task.loss(params, probe), task.loss(trained, probe)

    before, after = (float(v) for v in train(jax.random.PRNGKey(0)))
    assert np.isfinite(after) and after < 0.8 * before, (before, after)
