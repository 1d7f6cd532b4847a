"""Antithetic ES over full-length unrolls (Metz et al. 2022, VeLO: Training versatile learned
optimizers by scaling up, App. D.2).

Every outer iteration each task starts a fresh inner problem, whose length the schedule samples,
and unrolls it at theta + eps and theta - eps (same init, same batches) from step 0 to its end in
one `lax.scan` of the schedule's `max_length` steps; steps after a problem's end are masked out of
its meta-loss (`mean`: VeLO's "avg" over the problem's own steps; `final`: its "last"). No inner
state persists between outer iterations, so the estimate is unbiased for the gradient of the
Gaussian-smoothed whole-training meta-loss, at the cost of unrolling every problem to its end.
"""
from dataclasses import dataclass

import jax
import jax.numpy as jnp

from lopt.base import Estimate, PRNGKey, Theta, TruncationSchedule, Unroll
from lopt.data import Dataset
from lopt.estimators.base import Antithetic, branch_difference, finite_tasks
from lopt.schedules import ENDING, require_ending
from lopt.unroll.meta_loss import before_first_end


@dataclass(frozen=True)
class FullES(Antithetic):
    """Antithetic ES over whole inner problems with Gaussian perturbations of standard deviation `std`."""

    def unroll_length(self, schedule: TruncationSchedule) -> int:
        """Every problem is unrolled for the longest length the schedule samples (static shape)."""
        return schedule.max_length

    def check_schedule(self, schedule: TruncationSchedule) -> None:
        require_ending(schedule, "estimator=full_es unrolls every inner problem to its end",
                       f"Use {ENDING}, or a truncated estimator (pes, es, tbptt, merged) with "
                       "schedule=never_ending.")

    def init(self, unroll: Unroll, theta: Theta, key: PRNGKey, num_tasks: int,
             random_offset: bool = True) -> jax.Array:
        """The only state: one key per task, from which each outer iteration's fresh problem
        derives (problems always start at step 0, so `random_offset` does not apply)."""
        return jax.random.split(key, num_tasks)

    def estimate(self, unroll: Unroll, theta: Theta, task_keys: jax.Array, data: Dataset | None,
                 key: PRNGKey, outer_iteration: jax.Array) -> Estimate:
        """Meta-gradient averaged over finite tasks, the (unchanged) task keys and the loss."""
        n = task_keys.shape[0]
        eps, thetas = self.perturb(key, theta, n)
        keys = jax.vmap(jax.random.fold_in, in_axes=(0, None))(task_keys, outer_iteration)
        inner = jax.vmap(unroll.fresh, in_axes=(0, 0, None))(
            thetas, jnp.concatenate([keys, keys]), outer_iteration)
        _, out = unroll.run(thetas, inner, data, unroll.max_length, outer_iteration, branches=2)
        objective = unroll.full_objective(out, inner.length)
        grads = self.es_grads(branch_difference(objective.terms), objective.norm[:n], eps)
        counted = before_first_end(out.ended)  # a problem's own steps; its successor's are masked
        finite = finite_tasks(grads, out.nonfinite & counted)
        return self.finish(grads, task_keys, objective, out, finite, counted)
