"""Truncated backpropagation through time (Metz et al. 2018, Learned optimizers that outperform SGD on
wall-clock and test loss, arXiv:1810.10180, §2.2): the exact gradient of each task's meta-loss
objective over the current truncation, by `jax.grad` through the vectorized scan.

One unroll per task, no perturbations. The inner state entering the truncation is a constant, so
the estimate is biased towards short horizons (§2.4) and can explode for long
truncations (§2.3). A problem reset inside the truncation contributes through its fresh
successor from its init on.
"""
from dataclasses import dataclass
from typing import ClassVar

import jax
import jax.numpy as jnp

from lopt.base import Estimate, PRNGKey, Theta, Unroll
from lopt.data import Dataset
from lopt.estimators.base import TruncatedEstimator, backprop_unroll, finite_tasks
from lopt.unroll import InnerState


@dataclass(frozen=True)
class TBPTT(TruncatedEstimator):
    """Backprop through each truncation of `trunc_length` steps."""

    branches: ClassVar[int] = 1

    def init(self, unroll: Unroll, theta: Theta, key: PRNGKey, num_tasks: int,
             random_offset: bool = True) -> InnerState:
        return unroll.init(theta, key, num_tasks, random_offset)

    def estimate(self, unroll: Unroll, theta: Theta, state: InnerState, data: Dataset | None,
                 key: PRNGKey, outer_iteration: jax.Array) -> Estimate:
        """Meta-gradient averaged over finite tasks, the advanced state and the truncation's loss."""
        n = state.step.shape[0]
        thetas = jax.tree_util.tree_map(lambda t: jnp.broadcast_to(t, (n,) + t.shape), theta)
        grads, (inner, out) = backprop_unroll(unroll, self, thetas, state, data, outer_iteration)
        finite = finite_tasks(grads, out.nonfinite)
        return self.finish(grads, inner, self.objective(unroll, out), out, finite)
