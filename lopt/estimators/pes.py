"""Persistent Evolution Strategies (PES, Vicol et al. 2021) with antithetic pairs.

Each task unrolls twice per truncation, with theta + eps and theta - eps, sharing batches and
resets. A per-task accumulator holds the sum of the perturbations its current inner problem has
seen, which makes the estimate unbiased for the gradient of the meta-loss over whole inner
trainings (with `meta_loss=final`: of the final loss), not only over the current truncation. Steps
after a reset inside a truncation belong to a new problem that has seen only this truncation's eps.
"""
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from lopt.data import Dataset
from lopt.estimators.base import (AntitheticEstimator, branch_difference, finite_tasks, metrics,
                                  per_task)
from lopt.unroll import InnerState, TruncatedUnroll

tree_map = jax.tree_util.tree_map


class PESState(NamedTuple):
    inner: InnerState  # leading axis 2 * num_tasks: positive branches, then negative ones
    accum: Any  # theta-shaped leaves with a leading num_tasks axis


@dataclass(frozen=True)
class PES(AntitheticEstimator):
    """Antithetic PES with Gaussian perturbations of standard deviation `std`."""

    def init(self, unroll: TruncatedUnroll, theta: Any, key: jax.Array, num_tasks: int,
             random_offset: bool = True) -> PESState:
        inner = super().init(unroll, theta, key, num_tasks, random_offset)
        return PESState(inner, tree_map(lambda t: jnp.zeros((num_tasks,) + t.shape, t.dtype), theta))

    def estimate(self, unroll: TruncatedUnroll, theta: Any, state: PESState, data: Dataset,
                 key: jax.Array, outer_iteration: jax.Array) -> tuple[Any, PESState, dict]:
        """Meta-gradient averaged over finite tasks, the advanced state and metrics of the truncation."""
        eps, inner, out = self.antithetic_run(unroll, theta, state.inner, data, key, outer_iteration)
        n = out.reset.shape[1] // 2
        objective = self.objective(unroll, out)
        delta = branch_difference(objective.terms)  # [steps, tasks]
        reset = out.reset[:, :n]  # ended or non-finite: either way a fresh problem follows
        after_reset = (jnp.cumsum(reset, axis=0) - reset) > 0
        total = tree_map(jnp.add, state.accum, eps)
        grads = tree_map(jnp.add, self.es_grads(jnp.where(after_reset, 0.0, delta), objective.norm, total),
                         self.es_grads(jnp.where(after_reset, delta, 0.0), objective.norm, eps))
        # A problem reset during the truncation has seen only eps since (nothing if reset last).
        keep = 1.0 - reset.any(0)
        since_reset = 1.0 - reset[-1]
        accum = tree_map(jnp.add, per_task(keep, total), per_task((1.0 - keep) * since_reset, eps))
        finite = finite_tasks(grads, out.nonfinite)
        return self.task_mean(grads, finite), PESState(inner, accum), metrics(objective, out, finite)
