"""What the truncated gradient estimators share: their settings, antithetic perturbations and
unrolls, per-task weighting and normalization, backprop through an unroll, and metrics."""
from dataclasses import dataclass
from typing import Any, ClassVar

import jax
import jax.numpy as jnp

from lopt.config import check
from lopt.data import Dataset
from lopt.unroll import InnerState, StepOutput, TruncatedUnroll

tree_map = jax.tree_util.tree_map


@dataclass(frozen=True)
class TruncatedEstimator:
    """Settings every truncated estimator has. With `normalize_task_grads` each task's
    meta-gradient is scaled to unit length before the average over tasks, so every task
    contributes equally (seed 004, App. D.3)."""

    trunc_length: int = 20
    normalize_task_grads: bool = False
    branches: ClassVar[int] = 2  # unrolls per task and truncation (antithetic pairs)

    def __post_init__(self):
        check(self.trunc_length > 0, "trunc_length", self.trunc_length, "a positive integer")

    def inner_steps(self, num_tasks: int) -> int:
        """Inner steps one outer iteration takes, every branch of every task counted."""
        return self.branches * num_tasks * self.trunc_length

    def task_mean(self, grads: Any) -> Any:
        """The meta-gradient: the mean over the leading task axis of per-task gradients."""
        if self.normalize_task_grads:
            grads = per_task(1.0 / jnp.maximum(task_norms(grads), 1e-30), grads)
        return tree_map(lambda g: g.mean(0), grads)


@dataclass(frozen=True)
class AntitheticEstimator(TruncatedEstimator):
    """A truncated estimator that unrolls each task at theta + eps and theta - eps,
    eps ~ N(0, std^2 I), sharing batches and resets between the two branches."""

    std: float = 0.01

    def __post_init__(self):
        super().__post_init__()
        check(self.std > 0, "std", self.std, "a positive float")

    def init(self, unroll: TruncatedUnroll, theta: Any, key: jax.Array, num_tasks: int,
             random_offset: bool = True) -> InnerState:
        """`num_tasks` inner problems, each twice: positive branches, then negative ones."""
        inner = unroll.init(theta, key, num_tasks, random_offset)
        return tree_map(lambda x: jnp.concatenate([x, x]), inner)

    def perturb(self, key: jax.Array, theta: Any, num_tasks: int) -> tuple[Any, Any]:
        """Per-task perturbations eps and the [2 * num_tasks] thetas (theta + eps, theta - eps)."""
        eps = normal_like(key, theta, num_tasks, self.std)
        return eps, tree_map(lambda t, e: jnp.concatenate([t + e, t - e]), theta, eps)

    def antithetic_run(self, unroll: TruncatedUnroll, theta: Any, inner: InnerState, data: Dataset,
                       key: jax.Array, outer_iteration: jax.Array
                       ) -> tuple[Any, InnerState, StepOutput]:
        """Perturb theta per task and unroll both branches over one truncation: the perturbations,
        the advanced inner states and the [steps, 2 * tasks] outputs."""
        eps, thetas = self.perturb(key, theta, inner.step.shape[0] // 2)
        inner, out = unroll.run(thetas, inner, data, self.trunc_length, outer_iteration)
        return eps, inner, out

    def es_grads(self, delta: jax.Array, eps: Any) -> Any:
        """Per-task antithetic ES gradients sum_t (L+_t - L-_t) eps / (2 std^2 T) of the mean
        loss over a truncation; `delta` is [steps, tasks]."""
        return per_task(delta.sum(0) / (2.0 * self.std**2 * self.trunc_length), eps)


def normal_like(key: jax.Array, tree: Any, num: int, std: float) -> Any:
    """`num` independent N(0, std^2) draws shaped like `tree`, stacked on a leading axis."""
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    keys = jax.random.split(key, len(leaves))
    return treedef.unflatten([std * jax.random.normal(k, (num,) + x.shape, x.dtype)
                              for k, x in zip(keys, leaves)])


def per_task(weights: jax.Array, tree: Any) -> Any:
    """Multiply each task's slice of `tree` ([tasks, ...] leaves) by its weight."""
    return tree_map(lambda x: x * weights.reshape((-1,) + (1,) * (x.ndim - 1)), tree)


def task_norms(tree: Any) -> jax.Array:
    """The Euclidean norm of each task's slice of `tree` ([tasks, ...] leaves)."""
    return jnp.sqrt(sum(jnp.sum(x.reshape(x.shape[0], -1) ** 2, axis=1)
                        for x in jax.tree_util.tree_leaves(tree)))


def branch_difference(values: jax.Array) -> jax.Array:
    """Positive minus negative branch of [..., 2 * tasks] values."""
    n = values.shape[-1] // 2
    return values[..., :n] - values[..., n:]


def branch_mean(tree: Any) -> Any:
    """Mean of the positive and negative branch of [2 * tasks, ...] leaves."""
    return tree_map(lambda x: 0.5 * (x[: x.shape[0] // 2] + x[x.shape[0] // 2:]), tree)


def backprop_unroll(unroll: TruncatedUnroll, thetas: Any, inner: InnerState, data: Dataset,
                    num_steps: int, outer_iteration: jax.Array
                    ) -> tuple[Any, tuple[InnerState, StepOutput]]:
    """Per-problem gradients d/d(thetas[i]) of problem i's mean meta-loss over the unroll, by
    backprop through the scan (`thetas` has a leading problem axis). A problem reset inside the
    unroll contributes through its successor's init only: the reset cuts the graph to the old one.
    """
    def total(thetas):
        new, out = unroll.run(thetas, inner, data, num_steps, outer_iteration)
        return out.meta_loss.mean(0).sum(), (new, out)

    return jax.grad(total, has_aux=True)(thetas)


def unroll_metrics(out: StepOutput, num_tasks: int) -> dict:
    """The metrics of a truncation (`out` is [steps, problems]; resets counted per task)."""
    return {
        "outer/loss": jnp.mean(out.meta_loss),
        "inner/loss": jnp.nanmean(jnp.where(jnp.isfinite(out.loss), out.loss, jnp.nan)),
        "inner/resets": jnp.sum(out.reset[:, :num_tasks]),
    }

