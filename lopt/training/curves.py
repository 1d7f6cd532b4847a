"""Training curves of any optimizer, hand-designed or learned, on any task, many seeds at once.

All seeds train in one compiled call: `vmap` over seeds, `lax.scan` over evaluation intervals, and
inside each interval a `lax.scan` over training steps. `lopt evaluate` and `lopt baseline-sweep`
record these curves; a learned optimizer goes through its optax export
(`lopt.learned.export.as_optax`), the code path a user's own training loop takes.
"""
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
from jax.sharding import Mesh
from rich.console import Console

from lopt import data as data_lib
from lopt.base import Optimizer, OptState, Params, PRNGKey, Task, Theta
from lopt.config import check
from lopt.platform import distributed, memory


@dataclass(frozen=True)
class CurveSettings:
    """How the curves are recorded (the tutorial's: 200 steps, eval every 5 on 10 batches, 30 at the end)."""

    seed: int = 0
    num_seeds: int = 5
    num_steps: int = 200
    eval_every: int = 5
    eval_batches: int = 10
    last_eval_batches: int = 30

    @property
    def eval_steps(self) -> list[int]:
        """The steps at which the `eval/...` curves are recorded."""
        return list(range(0, self.num_steps + 1, self.eval_every))

    def __post_init__(self):
        for name in ("num_seeds", "num_steps", "eval_every", "eval_batches", "last_eval_batches"):
            check(getattr(self, name) > 0, name, getattr(self, name), "a positive integer")
        check(self.num_steps % self.eval_every == 0, "num_steps", self.num_steps,
              f"a multiple of eval_every={self.eval_every}")


def _evaluate(task: Task, params: Params, data: data_lib.Dataset | None, key: PRNGKey, num_batches: int) -> dict:
    """Mean metrics over `num_batches` random train and test batches."""
    def one(k):
        k_train, k_test = jax.random.split(k)
        train = task.metrics(params, task.sample_batch(data, k_train))
        test = task.metrics(params, task.sample_batch(data, k_test, "test"))
        return {**{f"eval/train/{k}": v for k, v in train.items()}, **{f"eval/test/{k}": v for k, v in test.items()}}

    return jax.tree_util.tree_map(jnp.mean, jax.vmap(one)(jax.random.split(key, num_batches)))


Carry = tuple[Params, OptState]


def train_step(task: Task, optimizer: Optimizer, theta: Theta,
               data: data_lib.Dataset | None) -> Callable[[Carry, PRNGKey], tuple[Carry, jax.Array]]:
    """One training step as a `lax.scan` body: (params, optimizer state), a batch key -> the updated
    pair and the loss before the update."""
    def step(carry: Carry, step_key: PRNGKey) -> tuple[Carry, jax.Array]:
        params, opt_state = carry
        loss, grads = jax.value_and_grad(task.loss)(params, task.sample_batch(data, step_key))
        return optimizer.update(theta, opt_state, params, grads, loss), loss

    return step


def seed_curves(task: Task, optimizer: Optimizer, theta: Theta, data: data_lib.Dataset | None, key: PRNGKey,
                s: CurveSettings) -> dict[str, jax.Array]:
    """Curves of one seed: `train/loss` at every step (before it), `eval/...` at steps
    0, eval_every, ..., num_steps; the last evaluation averages `last_eval_batches` batches."""
    intervals = s.num_steps // s.eval_every
    k_init, k_train, k_eval = jax.random.split(key, 3)
    params = task.init(k_init)
    step = train_step(task, optimizer, theta, data)

    def interval(carry, i):  # evaluate at step i * eval_every (batches from fold_in(k_eval, i)), then train
        evals = _evaluate(task, carry[0], data, jax.random.fold_in(k_eval, i), s.eval_batches)
        carry, losses = jax.lax.scan(step, carry, jax.random.split(jax.random.fold_in(k_train, i), s.eval_every))
        return carry, (losses, evals)

    (params, _), (losses, evals) = jax.lax.scan(interval, (params, optimizer.init(theta, params, s.num_steps)),
                                                jnp.arange(intervals))
    last = _evaluate(task, params, data, jax.random.fold_in(k_eval, intervals + 1), s.last_eval_batches)
    evals = jax.tree_util.tree_map(lambda e, z: jnp.concatenate([e, z[None]]), evals, last)
    return {"train/loss": losses.reshape(-1), **evals}


def seed_keys(key: PRNGKey, s: CurveSettings) -> jax.Array:
    return jax.random.split(key, s.num_seeds)


def training_curves(task: Task, optimizer: Optimizer, theta: Theta, data: data_lib.Dataset | None, key: PRNGKey,
                    s: CurveSettings, mesh: Mesh | None = None) -> dict[str, jax.Array]:
    """`seed_curves` of `num_seeds` seeds, trained at once: leaves [num_seeds, ...]; the seeds are
    split over the devices of `mesh` (lopt.platform.distributed)."""
    return distributed.map_sharded(lambda k: seed_curves(task, optimizer, theta, data, k, s), seed_keys(key, s), mesh)


def compile_curves(task: Task, task_name: str, optimizer: Optimizer, data: data_lib.Dataset | None, key: PRNGKey,
                   s: CurveSettings, mesh: Mesh, console: Console, theta: Theta = None) -> tuple[Any, float]:
    """`training_curves` of every seed compiled ahead of time, after checking that it fits in the
    devices' memory (`lopt.platform.memory`); and the seconds it took. Call it as `compiled(theta, data, key)`:
    `theta` (None for an optimizer without one) is an argument, so one program trains any theta of
    the shapes of the one given here."""
    sizing = memory.Sizing("num_seeds", s.num_seeds, f"{s.num_seeds} seeds x {s.num_steps} steps of {task_name}",
                           "lower num_seeds (several evaluations with other seeds add up to more)",
                           "use a smaller task, or record fewer steps (num_steps)", mesh.size)
    jitted = jax.jit(training_curves, static_argnums=(0, 1, 5, 6))
    return memory.compile_checked(lambda: jitted.lower(task, optimizer, theta, data, key, s, mesh), console,
                                  f"the training of {s.num_seeds} seeds", sizing, mesh,
                                  lambda fp: fp.arguments)
