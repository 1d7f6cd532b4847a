"""Persistent Evolution Strategies (PES, Vicol et al. 2021) with antithetic pairs.

Each task unrolls twice per truncation, with theta + eps and theta - eps, sharing batches and
resets. A per-task accumulator holds the sum of the perturbations its current inner problem has
seen, which makes the estimate unbiased for the gradient of the loss over whole inner trainings,
not only over the current truncation. Steps after a reset inside a truncation belong to a new
problem that has seen only this truncation's eps.
"""
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from lopt.config import check
from lopt.data import Dataset
from lopt.unroll import InnerState, TruncatedUnroll

tree_map = jax.tree_util.tree_map


class PESState(NamedTuple):
    inner: InnerState  # leading axis 2 * num_tasks: positive branches, then negative ones
    accum: Any  # theta-shaped leaves with a leading num_tasks axis


def _normal_like(key: jax.Array, tree: Any, num: int, std: float) -> Any:
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    keys = jax.random.split(key, len(leaves))
    return treedef.unflatten([std * jax.random.normal(k, (num,) + x.shape, x.dtype)
                              for k, x in zip(keys, leaves)])


def _per_task(weights: jax.Array, tree: Any) -> Any:
    """Multiply each task's slice of `tree` ([tasks, ...] leaves) by its weight."""
    return tree_map(lambda x: x * weights.reshape((-1,) + (1,) * (x.ndim - 1)), tree)


@dataclass(frozen=True)
class PES:
    """Antithetic PES with Gaussian perturbations of standard deviation `std`."""

    std: float = 0.01
    trunc_length: int = 20

    def __post_init__(self):
        check(self.std > 0, "std", self.std, "a positive float")
        check(self.trunc_length > 0, "trunc_length", self.trunc_length, "a positive integer")

    def init(self, unroll: TruncatedUnroll, theta: Any, key: jax.Array, num_tasks: int,
             random_offset: bool = True) -> PESState:
        inner = unroll.init(theta, key, num_tasks, random_offset)
        both = tree_map(lambda x: jnp.concatenate([x, x]), inner)
        return PESState(both, tree_map(lambda t: jnp.zeros((num_tasks,) + t.shape, t.dtype), theta))

    def estimate(self, unroll: TruncatedUnroll, theta: Any, state: PESState, data: Dataset,
                 key: jax.Array, outer_iteration: jax.Array) -> tuple[Any, PESState, dict]:
        """Meta-gradient averaged over tasks, the advanced state and metrics of the truncation."""
        n = jax.tree_util.tree_leaves(state.accum)[0].shape[0]
        eps = _normal_like(key, theta, n, self.std)
        thetas = tree_map(lambda t, e: jnp.concatenate([t + e, t - e]), theta, eps)
        inner, out = unroll.run(thetas, state.inner, data, self.trunc_length, outer_iteration)

        delta = out.meta_loss[:, :n] - out.meta_loss[:, n:]  # [steps, tasks]
        reset = out.reset[:, :n]
        after_reset = (jnp.cumsum(reset, axis=0) - reset) > 0
        d_old = jnp.sum(jnp.where(after_reset, 0.0, delta), axis=0)
        d_new = jnp.sum(jnp.where(after_reset, delta, 0.0), axis=0)
        scale = 1.0 / (2.0 * self.std**2 * self.trunc_length * n)
        total = tree_map(jnp.add, state.accum, eps)
        grad = tree_map(lambda a, b: scale * (a + b).sum(0),
                        _per_task(d_old, total), _per_task(d_new, eps))
        # A problem reset during the truncation has seen only eps since (nothing if reset last).
        keep = 1.0 - reset.any(0)
        since_reset = 1.0 - reset[-1]
        accum = tree_map(jnp.add, _per_task(keep, total), _per_task((1.0 - keep) * since_reset, eps))
        metrics = {
            "outer/loss": jnp.mean(out.meta_loss),
            "inner/loss": jnp.nanmean(jnp.where(jnp.isfinite(out.loss), out.loss, jnp.nan)),
            "inner/resets": jnp.sum(reset),
        }
        return grad, PESState(inner, accum), metrics
