"""Reparameterization and ES gradients merged by inverse variance (Metz et al. 2018, Learned optimizers
that outperform SGD on wall-clock and test loss, arXiv:1810.10180, §3, eq. 1).

Both are unbiased for the gradient of the Gaussian-smoothed truncation loss
E_{eps ~ N(0, std^2 I)} L(theta + eps) and are computed from the same antithetic pairs: per task,
g_rp = grad_theta (L+ + L-) / 2 by backprop through both branches and
g_es = (L+ - L-) eps / (2 std^2). Per meta-parameter, with the empirical variances over tasks,
g = (g_rp / var_rp + g_es / var_es) / (1 / var_rp + 1 / var_es), whose variance is at most the
smaller of the two: backprop where it is well-behaved, ES where backprop explodes.
"""
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp

from lopt.base import Estimate, PRNGKey, Theta, Unroll
from lopt.data import Dataset
from lopt.estimators.base import AntitheticEstimator, backprop_unroll, branch_difference, branch_mean, finite_tasks
from lopt.tree import along_rows
from lopt.unroll import InnerState, StepOutput

tree_map = jax.tree_util.tree_map


def variances(rp: jax.Array, es: jax.Array, finite: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
    """Per-element empirical variances over the `finite` tasks ([tasks] bool, default all) of the
    backprop and ES samples ([tasks, ...])."""
    where = None if finite is None else jnp.broadcast_to(along_rows(finite, rp), rp.shape)
    return jnp.var(rp, axis=0, where=where), jnp.var(es, axis=0, where=where)


def weight(var_rp: jax.Array, var_es: jax.Array) -> jax.Array:
    """Per-element weight var_es / (var_rp + var_es) of the backprop samples in eq. 1; 1/2 where
    both variances vanish, 0 where backprop's is not finite."""
    total = var_rp + var_es
    w = jnp.where(total > 0, var_es / jnp.where(total > 0, total, 1.0), 0.5)
    return jnp.where(jnp.isfinite(var_rp), w, 0.0)


def rp_weight(rp: jax.Array, es: jax.Array, finite: jax.Array | None = None) -> jax.Array:
    """The eq. 1 `weight` of the backprop samples ([tasks, ...]) from their `variances`."""
    return weight(*variances(rp, es, finite))


def combine(w: jax.Array, rp: jax.Array, es: jax.Array) -> jax.Array:
    """Per-task samples w * rp + (1 - w) * es (a sample with weight 0 is left out, even if infinite)."""
    return jnp.where(w > 0, w * rp, 0.0) + jnp.where(w < 1, (1.0 - w) * es, 0.0)


def merge(rp: jax.Array, es: jax.Array, finite: jax.Array | None = None) -> jax.Array:
    """Per-task samples w * rp + (1 - w) * es; their mean over the `finite` tasks is eq. 1."""
    return combine(rp_weight(rp, es, finite), rp, es)


@dataclass(frozen=True)
class Merged(AntitheticEstimator):
    """Inverse-variance merge of antithetic reparameterization and ES gradients."""

    std: float = 0.1  # sigma^2 = 0.01 as in Metz et al. 2018 (arXiv:1810.10180), section 3; others: 0.01

    def samples(self, unroll: Unroll, theta: Theta, state: InnerState, data: Dataset | None,
                key: PRNGKey, outer_iteration: jax.Array) -> tuple[Theta, Theta, InnerState, StepOutput]:
        """Per-task g_rp and g_es of one truncation, the advanced state and the unroll outputs."""
        eps, thetas = self.perturb(key, theta, state.step.shape[0] // 2)
        grads, (inner, out) = backprop_unroll(unroll, self, thetas, state, data, outer_iteration)
        objective = self.objective(unroll, out)
        es = self.es_grads(branch_difference(objective.terms), objective.norm, eps)
        return branch_mean(grads), es, inner, out

    def estimate(self, unroll: Unroll, theta: Theta, state: InnerState, data: Dataset | None,
                 key: PRNGKey, outer_iteration: jax.Array) -> Estimate:
        """Meta-gradient averaged over finite tasks, the advanced state and the truncation's loss.
        A task is finite when its ES gradient is (its backprop one may explode: eq. 1 then gives
        it weight 0); the merge weights are estimated from the finite tasks only."""
        rp, es, inner, out = self.samples(unroll, theta, state, data, key, outer_iteration)
        finite = finite_tasks(es, out.nonfinite)
        var = tree_map(lambda r, e: variances(r, e, finite), rp, es)  # per leaf: (var_rp, var_es)
        weights = tree_map(lambda r, v: weight(*v), rp, var)
        merged = tree_map(combine, weights, rp, es)
        var_rp, var_es = tree_map(lambda r, v: v[0], rp, var), tree_map(lambda r, v: v[1], rp, var)
        return self.finish(merged, inner, self.objective(unroll, out), out, finite,
                           **{"estimator/rp_weight": _mean_over(weights), "estimator/rp_variance": _mean_over(var_rp),
                              "estimator/es_variance": _mean_over(var_es)})


def _mean_over(tree: Any) -> jax.Array:
    """The mean of per-meta-parameter values (a tree of them) over every meta-parameter."""
    return jnp.mean(jnp.concatenate([x.ravel() for x in jax.tree_util.tree_leaves(tree)]))
