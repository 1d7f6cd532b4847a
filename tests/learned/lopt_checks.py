"""Checks every learned optimizer architecture passes: tiny PES meta-training moves theta and keeps
it finite, and `lopt evaluate` trains a task through its optax export."""
import json
from pathlib import Path

import jax
import numpy as np
from rich.console import Console

from lopt import evaluate, meta_train
from tests.conftest import TINY, compose, compose_meta_train

PARAMS = {"w": np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4), "b": np.ones(4, np.float32),
          "s": np.float32(0.5)}  # a matrix, a bias and a scalar


def grads(seed: int) -> dict:
    return jax.tree_util.tree_map(lambda p: jax.random.normal(jax.random.PRNGKey(seed), np.shape(p)), PARAMS)


def num_meta_params(theta) -> int:
    return sum(x.size for x in jax.tree_util.tree_leaves(theta))


def assert_meta_training_moves_theta(name: str) -> None:
    """3 outer iterations of PES on the tiny synthetic task: theta changes, everything stays finite."""
    c = meta_train.build(compose_meta_train(*TINY, f"lopt={name}"))
    data = meta_train.load_data(c)
    state = c.trainer.init(jax.random.PRNGKey(0))
    theta0 = jax.device_get(state.theta)
    step = jax.jit(c.trainer.step)
    for _ in range(3):
        state, metrics = step(state, data)
        assert np.isfinite(metrics["outer/loss"]) and np.isfinite(metrics["outer/grad_norm"])
    theta = jax.device_get(state.theta)
    assert all(np.isfinite(x).all() for x in jax.tree_util.tree_leaves(theta))
    moved = [np.abs(a - b).max() for a, b in zip(jax.tree_util.tree_leaves(theta), jax.tree_util.tree_leaves(theta0))]
    assert max(moved) > 0


def evaluate_curves(run_dir: Path, *overrides: str) -> dict:
    """`lopt evaluate` on synthetic digits (2 seeds, 20 steps): the curves.json it writes."""
    cfg = compose("evaluate", "data.source=synthetic", "tracking.mode=disabled", "num_seeds=2", "num_steps=20",
                  "eval_every=10", *overrides)
    evaluate.run(cfg, run_dir, Console(quiet=True))
    result = json.loads((run_dir / "curves.json").read_text())
    assert result["summary"]["diverged_seeds"] == 0
    return result
