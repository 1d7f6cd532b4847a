"""Antithetic truncated Evolution Strategies: PES without the persistent accumulator.

Each task unrolls at theta + eps and theta - eps over one truncation (shared batches and resets)
and the estimate uses this truncation's eps only. It is unbiased for the gradient of the
Gaussian-smoothed meta-loss of the truncation from the current inner state, i.e. it has the
truncation bias of truncated backprop (seed 001, §2.4) without its exploding gradients.
"""
from dataclasses import dataclass
from typing import Any

import jax

from lopt.data import Dataset
from lopt.estimators.base import AntitheticEstimator, branch_difference, finite_tasks, metrics
from lopt.unroll import InnerState, TruncatedUnroll


@dataclass(frozen=True)
class ES(AntitheticEstimator):
    """Antithetic ES over truncations with Gaussian perturbations of standard deviation `std`."""

    def estimate(self, unroll: TruncatedUnroll, theta: Any, state: InnerState, data: Dataset,
                 key: jax.Array, outer_iteration: jax.Array) -> tuple[Any, InnerState, dict]:
        """Meta-gradient averaged over finite tasks, the advanced state and metrics of the truncation."""
        eps, inner, out = self.antithetic_run(unroll, theta, state, data, key, outer_iteration)
        objective = self.objective(unroll, out)
        grads = self.es_grads(branch_difference(objective.terms), objective.norm, eps)
        finite = finite_tasks(grads, out.nonfinite)
        return self.task_mean(grads, finite), inner, metrics(objective, out, finite)
