"""Truncated unrolls of many inner problems at once.

Each inner problem (a task trained by an optimizer with meta-parameters theta) carries its own
step counter, length and RNG key. One call to `TruncatedUnroll.run` advances all of them by
`num_steps` inside a single `lax.scan`, sampling each step's batch in-graph from device data and
resetting (re-initializing) any problem that reaches its length, so a truncation never leaves
compiled code.
"""
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from lopt.data import Dataset
from lopt.optimizers.base import Optimizer
from lopt.schedules import NEVER
from lopt.tasks.base import Task


class InnerState(NamedTuple):
    params: Any
    opt_state: Any
    step: jax.Array  # steps taken on the current problem
    length: jax.Array  # steps the current problem trains for before it is reset
    key: jax.Array  # the current problem's key: init, batches and the next problem derive from it


class StepOutput(NamedTuple):
    loss: jax.Array  # training loss before the step
    meta_loss: jax.Array  # clipped, NaN-safe loss used as meta-objective
    reset: jax.Array  # the problem reached its length after this step and was re-initialized


def _where(cond: jax.Array, a: Any, b: Any) -> Any:
    return jax.tree_util.tree_map(lambda x, y: jnp.where(cond, x, y), a, b)


@dataclass(frozen=True)
class TruncatedUnroll:
    """Trains a task with an optimizer in truncations; schedule lengths decide the resets."""

    task: Task
    optimizer: Optimizer
    schedule: Any

    def fresh(self, theta: Any, key: jax.Array, outer_iteration: jax.Array) -> InnerState:
        """A newly initialized inner problem (unbatched)."""
        k_init, k_len, k_next = jax.random.split(key, 3)
        params = self.task.init(k_init)
        return InnerState(params, self.optimizer.init(theta, params), jnp.zeros((), jnp.int32),
                          self.schedule.sample(k_len, outer_iteration), k_next)

    def init(self, theta: Any, key: jax.Array, num_tasks: int, random_offset: bool = True) -> InnerState:
        """`num_tasks` fresh problems; with `random_offset` each starts at a random step of its
        length, so their resets are spread over the truncations rather than all at once."""
        k_tasks, k_off = jax.random.split(key)
        states = jax.vmap(lambda k: self.fresh(theta, k, jnp.zeros((), jnp.int32)))(
            jax.random.split(k_tasks, num_tasks))
        if random_offset:  # never-ending problems start at step 0: they have no end to spread
            u = jax.random.uniform(k_off, (num_tasks,))
            offset = jnp.floor(u * states.length).astype(jnp.int32)
            states = states._replace(step=jnp.where(states.length == NEVER, 0, offset))
        return states

    def step(self, theta: Any, state: InnerState, fresh: InnerState, data: Dataset
             ) -> tuple[InnerState, StepOutput]:
        """One training step of one inner problem; it is replaced by `fresh` when it reaches its
        length."""
        batch = self.task.sample_batch(data, jax.random.fold_in(state.key, state.step))
        loss, grads = jax.value_and_grad(self.task.loss)(state.params, batch)
        params, opt_state = self.optimizer.update(theta, state.opt_state, state.params, grads, loss)
        advanced = state._replace(params=params, opt_state=opt_state, step=state.step + 1)
        reset = advanced.step >= state.length
        return _where(reset, fresh, advanced), StepOutput(loss, self.task.meta_loss(loss), reset)

    def run(self, theta: Any, states: InnerState, data: Dataset, num_steps: int,
            outer_iteration: jax.Array, theta_batched: bool = True) -> tuple[InnerState, StepOutput]:
        """Advance every problem `num_steps` steps. `theta` has a leading task axis when
        `theta_batched` (e.g. perturbed per task), else it is shared. Outputs are [steps, tasks].

        The problem that replaces each one at its reset is initialized once, before the loop, from
        the current problem's key: a problem resets at most once per truncation (lengths are at
        least the truncation length), and problems sharing a key (antithetic branches) get the
        same successor.
        """
        axis = 0 if theta_batched else None
        successor = jax.vmap(self.fresh, in_axes=(axis, 0, None))(theta, states.key, outer_iteration)
        vstep = jax.vmap(self.step, in_axes=(axis, 0, 0, None))

        def body(s, _):
            return vstep(theta, s, successor, data)

        return jax.lax.scan(body, states, None, length=num_steps)
