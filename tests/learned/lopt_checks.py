"""Checks every learned optimizer architecture passes: tiny PES meta-training moves theta and keeps
it finite, and `lopt evaluate` trains a task through its optax export."""
import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
from rich.console import Console

from lopt.commands import evaluate, meta_train
from lopt.learned.export import as_optax
from lopt.meta_trainer import metric_record
from tests.conftest import TINY, compose, compose_meta_train

PARAMS = {"w": np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4), "b": np.ones(4, np.float32),
          "s": np.float32(0.5)}  # a matrix, a bias and a scalar


def grads(seed: int, params=PARAMS) -> dict:
    return jax.tree_util.tree_map(lambda p: jax.random.normal(jax.random.PRNGKey(seed), np.shape(p)), params)


def num_meta_params(theta) -> int:
    return sum(x.size for x in jax.tree_util.tree_leaves(theta))


def assert_meta_training_moves_theta(name: str, *overrides: str, base: tuple[str, ...] = tuple(TINY),
                                     iterations: int = 3) -> None:
    """`iterations` outer iterations of PES on the tiny synthetic task (`base`, then `overrides`):
    theta changes, everything stays finite."""
    c = meta_train.build(compose_meta_train(*base, f"lopt={name}", *overrides))
    data = c.load_data()
    state = c.trainer.init(jax.random.PRNGKey(0))
    theta0 = jax.device_get(state.theta)
    step = jax.jit(c.trainer.step)
    for _ in range(iterations):
        state, report = step(state, data)
        metrics = metric_record(report)
        assert np.isfinite(metrics["outer/loss"]) and np.isfinite(metrics["outer/grad_norm"])
    theta = jax.device_get(state.theta)
    assert all(np.isfinite(x).all() for x in jax.tree_util.tree_leaves(theta))
    moved = [np.abs(a - b).max() for a, b in zip(jax.tree_util.tree_leaves(theta), jax.tree_util.tree_leaves(theta0))]
    assert max(moved) > 0


def run_every_family(cfg, run_dir: Path) -> meta_train.Components:
    """`lopt meta-train` with `cfg` (a preset of several task families, shrunk) into `run_dir`: its
    last logged record has a finite loss for each family. Returns the run's components."""
    meta_train.run(cfg, run_dir, Console(quiet=True))
    c = meta_train.build(cfg)
    record = json.loads((run_dir / "metrics.jsonl").read_text().splitlines()[-1])
    names = [t.name for t in c.task_configs]
    assert len(names) > 1 and all(np.isfinite(record[f"family/{name}/loss"]) for name in names), record
    return c


def evaluate_curves(run_dir: Path, *overrides: str) -> dict:
    """`lopt evaluate` on synthetic digits (2 seeds, 20 steps): the curves.json it writes."""
    cfg = compose("evaluate", "data.source=synthetic", "tracking.mode=disabled", "num_seeds=2", "num_steps=20",
                  "eval_every=10", *overrides)
    evaluate.run(cfg, run_dir, Console(quiet=True))
    result = json.loads((run_dir / "curves.json").read_text())
    assert result["summary"]["diverged_seeds"] == 0
    return result


def run_steps(lopt, theta, n: int, losses=None, params=PARAMS):
    """`n` updates of `params` (PARAMS) with gradients grads(i, params) and losses 1 + i (or `losses`):
    the list of steps (new - old params) and the final state."""
    state, steps = lopt.init(theta, params), []
    for i in range(n):
        loss = jnp.float32(1.0 + i if losses is None else losses[i])
        new, state = lopt.update(theta, state, params, grads(i, params), loss)
        steps.append(jax.tree_util.tree_map(jnp.subtract, new, params))
        params = new
    return steps, state


def assert_vmapped_tasks_match_single(lopt, theta) -> None:
    """A jitted update vmapped over 2 tasks (different parameters, gradients and losses) gives each
    task's own update."""
    tasks = [PARAMS, jax.tree_util.tree_map(lambda p: 2.0 * p - 0.3, PARAMS)]
    stacked = jax.tree_util.tree_map(lambda *x: jnp.stack(x), *tasks)
    g = jax.tree_util.tree_map(lambda *x: jnp.stack(x), grads(0), grads(1))
    losses = jnp.array([0.5, 2.0])
    states = jax.vmap(lambda p: lopt.init(theta, p))(stacked)
    update = jax.jit(jax.vmap(lopt.update, in_axes=(None, 0, 0, 0, 0)))
    for _ in range(2):
        stacked, states = update(theta, states, stacked, g, losses)
    for i, p in enumerate(tasks):
        state = lopt.init(theta, p)
        for _ in range(2):
            p_new, state = lopt.update(theta, state, p, jax.tree_util.tree_map(lambda x, i=i: x[i], g), losses[i])
            p = p_new
        for a, b in zip(jax.tree_util.tree_leaves(p), jax.tree_util.tree_leaves(stacked)):
            np.testing.assert_allclose(a, b[i], rtol=1e-5, atol=1e-6)


def assert_export_matches_update(lopt, theta) -> None:
    """The optax export, given the loss, makes the same updates as the optimizer itself."""
    tx, params = as_optax(lopt, theta), PARAMS
    state = tx.init(params)
    steps, _ = run_steps(lopt, theta, 3)
    for i, expected in enumerate(steps):
        updates, state = tx.update(grads(i), state, params, loss=1.0 + i)
        params = optax.apply_updates(params, updates)
        for a, b in zip(jax.tree_util.tree_leaves(updates), jax.tree_util.tree_leaves(expected)):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-9)
