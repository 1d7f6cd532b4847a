"""Persistent Evolution Strategies (Vicol, Metz, Sohl-Dickstein 2021, Unbiased gradient estimation
in unrolled computation graphs with persistent evolution strategies) with antithetic pairs.

Each task unrolls twice per truncation, with theta + eps and theta - eps, sharing batches and
resets. A per-task accumulator holds the sum of the perturbations its current inner problem has
seen, which makes the estimate unbiased for the gradient of the meta-loss over whole inner
trainings (with `meta_loss=final`: of the final loss), not only over the current truncation.

A problem that resets inside a truncation is replaced by a successor that the unroll initialized
from this truncation's perturbed theta (the successors are built before the scan), so the successor
has seen this truncation's eps, and only it: its steps in this truncation are weighted by eps, and
its accumulator starts at eps, even when the reset is on the truncation's last step. The successor's
init depends on theta when the optimizer's state does (e.g. nn_adam's initial hyperparameters), so
dropping that eps would bias the estimate. The loss of the step that ends a problem is the ending
problem's, never its successor's.
"""
from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp

from lopt.base import Estimate, PRNGKey, Theta, Unroll
from lopt.data import Dataset
from lopt.estimators.base import AntitheticEstimator, branch_difference, finite_tasks
from lopt.tree import where_rows
from lopt.unroll import InnerState

tree_map = jax.tree_util.tree_map


class PESState(NamedTuple):
    inner: InnerState  # leading axis 2 * num_tasks: positive branches, then negative ones
    accum: Theta  # theta-shaped leaves with a leading num_tasks axis


@dataclass(frozen=True)
class PES(AntitheticEstimator):
    """Antithetic PES with Gaussian perturbations of standard deviation `std`."""

    def init(self, unroll: Unroll, theta: Theta, key: PRNGKey, num_tasks: int,
             random_offset: bool = True) -> PESState:
        inner = super().init(unroll, theta, key, num_tasks, random_offset)
        return PESState(inner, tree_map(lambda t: jnp.zeros((num_tasks,) + t.shape, t.dtype), theta))

    def estimate(self, unroll: Unroll, theta: Theta, state: PESState, data: Dataset | None,
                 key: PRNGKey, outer_iteration: jax.Array) -> Estimate:
        """Meta-gradient averaged over finite tasks, the advanced state and the truncation's loss."""
        eps, inner, out = self.antithetic_run(unroll, theta, state.inner, data, key, outer_iteration)
        n = out.reset.shape[1] // 2
        objective = self.objective(unroll, out)
        delta = branch_difference(objective.terms)  # [steps, tasks]
        reset = out.reset[:, :n]  # ended or non-finite: either way a fresh problem follows
        after_reset = (jnp.cumsum(reset, axis=0) - reset) > 0
        total = tree_map(jnp.add, state.accum, eps)
        grads = tree_map(jnp.add, self.es_grads(jnp.where(after_reset, 0.0, delta), objective.norm, total),
                         self.es_grads(jnp.where(after_reset, delta, 0.0), objective.norm, eps))
        accum = where_rows(reset.any(0), eps, total)  # a successor has seen this truncation's eps
        finite = finite_tasks(grads, out.nonfinite)
        return self.finish(grads, PESState(inner, accum), objective, out, finite)
