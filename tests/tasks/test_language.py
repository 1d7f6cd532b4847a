"""The byte-level LSTM language model (task=lm1b_lstm)."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from lopt import data, tasks
from lopt.tasks.models import LSTMLanguageModel
from tests.conftest import compose_meta_train


def _config(**overrides):
    return tasks.parse({**compose_meta_train("task=lm1b_lstm").task, **overrides})


def test_lm1b_lstm_is_practical_tradeoffs_architecture():
    """Metz et al. 2022, Practical tradeoffs between memory, compute, and performance in learned
    optimizers (arXiv:2203.11860), App. E.1. Embedding 256x64; LSTM 128: 4 gates x (64x128 input +
    128x128 recurrent + 128 bias); learned initial state 2x128; linear 128x256+256: 16,384 + 98,816 +
    256 + 33,024 = 148,480."""
    cfg = _config()
    assert (cfg.seq_len, cfg.batch_size, cfg.embed_dim, cfg.hidden, cfg.dataset) == (32, 128, 64, 128, "lm1b")
    params = cfg.build().init(jax.random.PRNGKey(0))
    assert tasks.num_params(params) == 148_480
    assert params["Embed_0"]["embedding"].shape == (256, 64) and params["Dense_0"]["kernel"].shape == (128, 256)
    assert not np.asarray(params["initial_c"]).any() and not np.asarray(params["initial_h"]).any()


def test_loss_at_init_is_ln_256_and_meta_loss_clips_at_its_multiple():
    task = _config(batch_size=32).build()
    d = data.load("lm1b", "synthetic", 32, synthetic_examples=256)
    batch = task.sample_batch(d, jax.random.PRNGKey(1))
    assert batch[0].shape == (32, 32)
    metrics = task.metrics(task.init(jax.random.PRNGKey(0)), batch)
    assert abs(float(metrics["loss"]) - math.log(256)) < 0.05
    assert 0.0 <= float(metrics["accuracy"]) < 0.05
    assert task.loss_clip == pytest.approx(1.5 * math.log(256))


def test_padding_positions_are_not_scored():
    cfg = _config(seq_len=6)
    task, model = cfg.build(), LSTMLanguageModel(256, cfg.embed_dim, cfg.hidden)
    params = task.init(jax.random.PRNGKey(0))
    x = jnp.array([[72, 105, 33, 0, 0, 0], [65, 66, 67, 68, 69, 70]], jnp.uint8)
    y = jnp.array([[105, 33, 0, 0, 0, 0], [66, 67, 68, 69, 70, 71]], jnp.uint8)
    logp = np.asarray(jax.nn.log_softmax(model.apply({"params": params}, x)))
    nll = [-logp[0, t, y[0, t]] for t in range(3)] + [-logp[1, t, y[1, t]] for t in range(6)]
    assert float(task.loss(params, (x, y))) == pytest.approx(np.mean(nll), rel=1e-5)
    hits = [logp[0, t].argmax() == y[0, t] for t in range(3)] + [logp[1, t].argmax() == y[1, t] for t in range(6)]
    assert float(task.metrics(params, (x, y))["accuracy"]) == pytest.approx(np.mean(hits))


def test_adam_learns_the_synthetic_markov_text():
    """The synthetic text has at most ln 4 nats per byte: Adam gets well below ln 256 quickly."""
    task = _config(seq_len=16, batch_size=16).build()
    d = data.load("lm1b", "synthetic", 16, synthetic_examples=512)
    opt = optax.adam(1e-2)

    def train(key):
        params = task.init(key)

        def step(carry, k):
            params, state = carry
            loss, grads = jax.value_and_grad(task.loss)(params, task.sample_batch(d, k))
            updates, state = opt.update(grads, state)
            return (optax.apply_updates(params, updates), state), loss

        _, losses = jax.lax.scan(step, (params, opt.init(params)), jax.random.split(key, 100))
        return losses

    losses = np.asarray(jax.jit(train)(jax.random.PRNGKey(0)))
    assert losses[0] > 5.0 and losses[-10:].mean() < 3.0
