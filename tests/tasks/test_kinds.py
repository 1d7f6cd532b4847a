"""The task kinds beyond classification, and what every shipped task must do."""
import math
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lopt import tasks
from lopt.commands import evaluate, meta_train
from lopt.errors import ConfigError
from lopt.meta_trainer import metric_record
from lopt.tasks.models import ConvNet
from lopt.training.curves import training_curves
from tests.conftest import CHEAP, compose, compose_meta_train

TASKS = sorted(p.stem for p in (Path(__file__).parents[2] / "conf" / "task").glob("*.yaml"))
NEW = ["cifar_conv32", "imagenet16_mlp", "cifar_ae", "quadratic", "two_minima", "lm1b_lstm", "mnist1d_conv"]
CLASSIFIERS = ("cifar_conv32", "imagenet16_mlp")
RANDOM_LABELS = (*CLASSIFIERS, "mnist1d_conv")  # synthetic data: labels the inputs do not predict


def _small(name):
    """Overrides that keep a task's test fast: small batches of 8x8 images for the image tasks,
    of 8-byte sequences for the language model, of 8 signals for the 1-D convnet."""
    if name == "lm1b_lstm":
        return [f"task={name}", "task.batch_size=8", "task.seq_len=8"]
    if name == "mnist1d_conv":
        return [f"task={name}", "task.batch_size=8"]
    return [f"task={name}"] + (["task.batch_size=8", "task.image_size=8"] if name in CLASSIFIERS + ("cifar_ae",) else [])


def _build(name, *overrides):
    return tasks.build(compose_meta_train(f"task={name}", *overrides).task)


def test_cifar_conv32_is_metz_2018_app_c2():
    """Metz et al. 2018, Learned optimizers that outperform SGD on wall-clock and test loss
    (arXiv:1810.10180), App. C.2: 3x3 convs of 32, strides 2, 2, 1 (32 -> 16 -> 8 -> 8), Glorot-uniform
    kernels."""
    cfg = tasks.parse(compose_meta_train("task=cifar_conv32").task)
    params = cfg.build().init(jax.random.PRNGKey(0))
    model = ConvNet(cfg.channels, cfg.strides, 10)
    _, inter = model.apply({"params": params}, jnp.zeros((1, 32, 32, 3)), capture_intermediates=True)
    sizes = [inter["intermediates"][f"Conv2D_{i}"]["__call__"][0].shape for i in range(3)]
    assert sizes == [(1, 16, 16, 32), (1, 8, 8, 32), (1, 8, 8, 32)]
    k = np.asarray(params["Conv2D_0"]["kernel"])  # fan_in 27, fan_out 288
    assert np.abs(k).max() <= math.sqrt(6 / 315) and k.var() == pytest.approx(2 / 315, rel=0.15)


def test_quadratic_minimum_is_zero_at_the_optimum_and_clip_is_the_expected_init_loss():
    cfg = tasks.parse(compose_meta_train("task=quadratic").task)
    c, opt = (np.asarray(a) for a in cfg.problem())
    task = cfg.build()
    keys = jax.random.split(jax.random.PRNGKey(1), 4000)
    assert np.all(np.asarray(jax.vmap(lambda k: task.loss(jnp.asarray(opt), k))(keys)) == 0.0)
    quiet = tasks.build({**compose_meta_train("task=quadratic").task, "noise_std": 0.0})
    assert float(quiet.loss(jnp.asarray(opt + 1.0), keys[0])) == pytest.approx(0.5 * c.sum(), rel=1e-5)
    # Gradient noise: at p* the gradient is noise_std * eps, mean 0 and std noise_std per coordinate.
    g = np.asarray(jax.vmap(jax.grad(task.loss), in_axes=(None, 0))(jnp.asarray(opt), keys))
    assert np.abs(g.mean(0)).max() < 0.01 and g.std(0) == pytest.approx(np.full(16, 0.1), rel=0.1)
    assert 0.01 <= c.min() and c.max() <= 10.0
    expected = 0.5 * np.sum(c * (1.0 + opt**2))
    assert task.loss_clip == pytest.approx(1.5 * expected, rel=1e-6)
    init_losses = jax.vmap(lambda k: quiet.loss(quiet.init(k), k))(keys)
    assert float(init_losses.mean()) == pytest.approx(expected, rel=0.05)


def test_two_minima_matches_metz_2018_toy():
    """The 1-D toy of Metz et al. 2018, Sec. 2.3 / Fig. 3a."""
    task = _build("two_minima")
    w0 = task.init(jax.random.PRNGKey(0))
    assert w0.shape == () and float(w0) == pytest.approx(-1.2)
    assert float(task.loss(w0, None)) == pytest.approx(5.2 * 4.2 * 1.44, rel=1e-6)  # 31.4496
    assert task.loss_clip == pytest.approx(1.5 * 31.4496)
    w_global = (21 + math.sqrt(57)) / 8  # roots of l'(w) = w (4w^2 - 21w + 24)
    grad = jax.grad(task.loss)
    for w, value in [(0.0, 0.0), (w_global, (w_global - 4) * (w_global - 3) * w_global**2)]:
        assert float(task.loss(jnp.float32(w), None)) == pytest.approx(value, abs=1e-5)
        assert abs(float(grad(jnp.float32(w), None))) < 1e-4
    assert value == pytest.approx(-3.1238, abs=1e-4)  # the global minimum
    with pytest.raises(ConfigError, match="task.init=3.5 is invalid"):
        tasks.parse({**compose_meta_train("task=two_minima").task, "init": 3.5})


def test_autoencoder_with_zero_weights_has_the_mean_square_of_the_input():
    task = _build("cifar_ae", "task.image_size=8")
    params = jax.tree_util.tree_map(jnp.zeros_like, task.init(jax.random.PRNGKey(0)))
    x = jax.random.uniform(jax.random.PRNGKey(1), (4, 8, 8, 3))
    assert float(task.loss(params, (x, jnp.zeros(4, jnp.int32)))) == pytest.approx(float(jnp.mean(x**2)), rel=1e-6)
    assert task.metrics(params, (x, jnp.zeros(4, jnp.int32))).keys() == {"loss"}
    assert task.loss_clip == 1.0


def test_unknown_kind_lists_the_kinds():
    with pytest.raises(ConfigError, match="Unknown task kind \\(task.kind\\) 'rl'. Valid choices: autoencoder, "
                                          "classification, language_model, quadratic, two_minima, vector\\."):
        tasks.parse({**compose_meta_train().task, "kind": "rl"})


def test_every_task_config_has_a_kind():
    for name in TASKS:
        assert compose_meta_train(f"task={name}").task.kind in tasks.KINDS.names()


@pytest.mark.parametrize("name", NEW)
def test_adam_lowers_the_loss_on_synthetic_data(name):
    """Through `lopt evaluate`'s code path; dataset-free tasks get no data (None) and noise keys."""
    cfg = compose("evaluate", *_small(name), "data.source=synthetic", "data.synthetic_examples=64",
                  "num_seeds=2", "num_steps=20", "eval_every=10", "eval_batches=2", "last_eval_batches=2",
                  "optimizer.lr=0.01")
    c = evaluate.build(cfg)
    data = tasks.load_data(c.task_config, c.shared.data, 0)
    assert (data is None) == (c.task_config.dataset is None)
    curves = jax.device_get(jax.jit(training_curves, static_argnums=(0, 1, 5))(
        c.task, c.evaluated.optimizer(c.settings.num_steps), None, data, jax.random.PRNGKey(0), c.settings))
    loss = curves["eval/train/loss"]
    # Random labels are learned slowly in 20 steps; the other tasks lose at least 10%.
    drop = 1.0 if name in RANDOM_LABELS else 0.9
    assert np.isfinite(loss).all() and (loss[:, -1] < drop * loss[:, 0]).all()
    assert ("eval/test/accuracy" in curves) == (name in (*RANDOM_LABELS, "lm1b_lstm"))


@pytest.mark.parametrize("name", NEW)
def test_tiny_meta_training_runs(name):
    c = meta_train.build(compose_meta_train(*CHEAP, *_small(name)))
    data = c.load_data()
    step = jax.jit(c.trainer.step, donate_argnums=0)
    state = c.trainer.init(jax.random.PRNGKey(0))
    theta0 = jax.tree_util.tree_map(np.asarray, state.theta)
    for _ in range(2):
        state, report = step(state, data)
    assert step._cache_size() == 1
    metrics = metric_record(report)
    loss = float(metrics["outer/loss"])
    assert np.isfinite(loss) and loss <= c.trainer.unrolls[0].task.loss_clip
    assert np.isfinite(float(metrics["outer/grad_norm"]))
    moved = jax.tree_util.tree_map(lambda a, b: np.abs(np.asarray(b) - a).max(), theta0, state.theta)
    assert max(jax.tree_util.tree_leaves(moved)) > 0
