"""Truncated unrolls of many inner problems at once.

Each inner problem (a task trained by an optimizer with meta-parameters theta) carries its own
step counter, length and RNG key. One call to `TruncatedUnroll.run` advances all of them by
`num_steps` inside a single `lax.scan`, sampling each step's batch in-graph from device data and
resetting (re-initializing) any problem that reaches its length, so a truncation never leaves
compiled code. A problem whose loss, gradient or new params are not finite is reset the same way
(with its antithetic partners) and flagged, so a diverging problem never propagates NaN/inf. With
task augmentation (`lopt.unroll.augment`) each problem draws its weights' scale when it starts and
trains the reparameterized weights.
"""
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp

from lopt.base import (
    InnerState,
    MetaLoss,
    Objective,
    Optimizer,
    PRNGKey,
    StepOutput,
    Task,
    Theta,
    TruncationSchedule,
)
from lopt.data import Dataset
from lopt.schedules import NEVER
from lopt.tree import all_finite, where_rows
from lopt.unroll.augment import Augmentation, effective, reparameterize
from lopt.unroll.meta_loss import MeanLoss


def tie_branches(flags: jax.Array, branches: int) -> jax.Array:
    """[..., branches * tasks] flags -> whether any branch of the same task is flagged."""
    split = flags.reshape(flags.shape[:-1] + (branches, -1))
    return jnp.tile(split.any(-2), branches)


@dataclass(frozen=True)
class TruncatedUnroll:
    """Trains a task with an optimizer in truncations; schedule lengths decide the resets and the
    meta-loss what each step contributes to the meta-objective."""

    task: Task
    optimizer: Optimizer
    schedule: TruncationSchedule
    meta_loss: MetaLoss = field(default_factory=MeanLoss)
    augment: Augmentation = field(default_factory=Augmentation)

    @property
    def max_length(self) -> int:
        """The longest inner problem the schedule starts."""
        return self.schedule.max_length

    def truncation_objective(self, out: StepOutput, num_steps: int) -> Objective:
        """The meta-loss objective of a truncation of `num_steps` steps ([steps, problems] `out`)."""
        return self.meta_loss.truncation(out.meta_loss, out.ended, num_steps)

    def full_objective(self, out: StepOutput, length: jax.Array) -> Objective:
        """The meta-loss objective of whole problems of `length`s ([problems]) unrolled from step 0."""
        return self.meta_loss.full(out.meta_loss, out.ended, length)

    def fresh(self, theta: Theta, key: PRNGKey, outer_iteration: jax.Array) -> InnerState:
        """A newly initialized inner problem (unbatched); with augmentation its scale is drawn from
        its key (a stream of its own, so the other draws are those of an unaugmented run)."""
        k_init, k_len, k_next = jax.random.split(key, 3)
        params, length = self.task.init(k_init), self.schedule.sample(k_len, outer_iteration)
        scale = self.augment.sample(jax.random.fold_in(k_init, 1), params)
        params = reparameterize(params, scale)
        return InnerState(params, self.optimizer.init(theta, params, length), jnp.zeros((), jnp.int32),
                          length, k_next, scale)

    def init(self, theta: Theta, key: PRNGKey, num_tasks: int, random_offset: bool = True) -> InnerState:
        """`num_tasks` fresh problems; with `random_offset` each starts at a random step of its
        length, so their resets are spread over the truncations rather than all at once."""
        k_tasks, k_off = jax.random.split(key)
        states = jax.vmap(lambda k: self.fresh(theta, k, jnp.zeros((), jnp.int32)))(
            jax.random.split(k_tasks, num_tasks))
        if random_offset:  # never-ending problems start at step 0: they have no end to spread
            u = jax.random.uniform(k_off, (num_tasks,))
            offset = jnp.where(states.length == NEVER, 0, jnp.floor(u * states.length).astype(jnp.int32))
            # the optimizer trains these first problems for the rest of their length
            opt_state = jax.vmap(self.optimizer.init, in_axes=(None, 0, 0))(theta, states.params,
                                                                             states.length - offset)
            states = states._replace(step=offset, opt_state=opt_state)
        return states

    def step(self, theta: Theta, state: InnerState, data: Dataset | None) -> tuple[InnerState, StepOutput]:
        """One training step of one inner problem, before any reset: the advanced state and its
        output (`reset`: it reached its length; `nonfinite`: its loss, grads or params are not)."""
        key = jax.random.fold_in(state.key, state.step)
        batch = self.task.sample_batch(data, key)
        loss, grads = jax.value_and_grad(lambda p: self.task.loss(effective(p, state.scale), batch))(state.params)
        params, opt_state = self.optimizer.update(theta, state.opt_state, state.params, grads, loss)
        advanced = state._replace(params=params, opt_state=opt_state, step=state.step + 1)
        value = (jnp.zeros_like(loss) if self.meta_loss.at_end else
                 self.meta_loss.evaluate(self.task, data, effective(state.params, state.scale), key, loss))
        finite = jnp.isfinite(loss) & all_finite(grads) & all_finite(params)
        return advanced, StepOutput(loss, value, advanced.step >= state.length, ~finite)

    def end_losses(self, advanced: InnerState, ended: jax.Array, data: Dataset | None) -> jax.Array:
        """The at-end meta-loss of the problems that just ended (0 elsewhere), each on the batch its
        next step would draw; computed only at steps where some problem ends."""
        def evaluate(_):
            keys = jax.vmap(jax.random.fold_in)(advanced.key, advanced.step)
            params = jax.vmap(effective)(advanced.params, advanced.scale)
            return jax.vmap(lambda p, k: self.meta_loss.evaluate(self.task, data, p, k))(params, keys)

        values = jax.lax.cond(ended.any(), evaluate, lambda _: jnp.zeros(ended.shape), None)
        return jnp.where(ended, values, 0.0)

    def run(self, theta: Theta, states: InnerState, data: Dataset | None, num_steps: int,
            outer_iteration: jax.Array, theta_batched: bool = True, branches: int = 1
            ) -> tuple[InnerState, StepOutput]:
        """Advance every problem `num_steps` steps. `theta` has a leading task axis when
        `theta_batched` (e.g. perturbed per task), else it is shared. Outputs are [steps, problems].
        Problems are laid out [branches * tasks] (antithetic branches: positive then negative); a
        non-finite value in any branch of a task resets all its branches, keeping them in step.

        The problem that replaces each one at its reset is initialized once, before the loop, from
        the current problem's key: a problem resets at most once per truncation at its length
        (lengths are at least the truncation length; a successor that goes non-finite restarts
        from its init), and problems sharing a key (antithetic branches) get the same successor.
        """
        axis = 0 if theta_batched else None
        successor = jax.vmap(self.fresh, in_axes=(axis, 0, None))(theta, states.key, outer_iteration)
        vstep = jax.vmap(self.step, in_axes=(axis, 0, None))

        def body(s, _):
            advanced, out = vstep(theta, s, data)
            nonfinite = tie_branches(out.nonfinite, branches)
            if self.meta_loss.at_end:
                out = out._replace(meta_loss=self.end_losses(advanced, out.reset & ~nonfinite, data))
            reset = out.reset | nonfinite
            return where_rows(reset, successor, advanced), out._replace(reset=reset, nonfinite=nonfinite)

        return jax.lax.scan(body, states, None, length=num_steps)
