"""Antithetic truncated Evolution Strategies: PES without the persistent accumulator.

Each task unrolls at theta + eps and theta - eps over one truncation (shared batches and resets)
and the estimate uses this truncation's eps only. It is unbiased for the gradient of the
Gaussian-smoothed meta-loss of the truncation from the current inner state, i.e. it has the
truncation bias of truncated backprop (Metz et al. 2018, Learned optimizers that outperform SGD on
wall-clock and test loss, arXiv:1810.10180, §2.4) without its exploding gradients.
"""
from dataclasses import dataclass

import jax

from lopt.base import Estimate, PRNGKey, Theta, Unroll
from lopt.data import Dataset
from lopt.estimators.base import AntitheticEstimator, branch_difference, finite_tasks
from lopt.unroll import InnerState


@dataclass(frozen=True)
class ES(AntitheticEstimator):
    """Antithetic ES over truncations with Gaussian perturbations of standard deviation `std`."""

    def estimate(self, unroll: Unroll, theta: Theta, state: InnerState, data: Dataset | None,
                 key: PRNGKey, outer_iteration: jax.Array) -> Estimate:
        """Meta-gradient averaged over finite tasks, the advanced state and the truncation's loss."""
        eps, inner, out = self.antithetic_run(unroll, theta, state, data, key, outer_iteration)
        objective = self.objective(unroll, out)
        grads = self.es_grads(branch_difference(objective.terms), objective.norm, eps)
        finite = finite_tasks(grads, out.nonfinite)
        return self.finish(grads, inner, objective, out, finite)
