"""What the gradient estimators share: their settings, schedule checks, antithetic perturbations
and unrolls, the task mean over finite tasks (optionally normalized), backprop through an unroll,
and the `Estimate` they return."""
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, get_args

import jax
import jax.numpy as jnp

from lopt.base import Estimate, EstimatorState, Metrics, PRNGKey, Theta, TruncationSchedule, Unroll
from lopt.config import check
from lopt.data import Dataset
from lopt.errors import ConfigError
from lopt.tree import all_finite, along_rows
from lopt.unroll import InnerState, Objective, StepOutput

tree_map = jax.tree_util.tree_map

NormalizeMode = Literal["none", "family", "problem"]
NORMALIZE_MODES: tuple[str, ...] = get_args(NormalizeMode)


@dataclass(frozen=True)
class Estimator:
    """Settings every estimator has. An estimator sees one task family at a time: one unroll of
    `num_tasks` inner problems (a suite task, or one sampled variant of a `family/` config), each
    problem with its own per-problem estimate g_i (ES/PES: one antithetic pair's
    (L+ - L-) eps / (2 std^2); tbptt: its backprop gradient; merged: the merged sample). With F the
    family's finite problems, `normalize_task_grads` picks the family's meta-gradient:

    - `none`: mean_{i in F} g_i, the plain average (PES stays unbiased).
    - `family`: m / |m| with m = mean_{i in F} g_i: the family's mean estimate scaled to unit length
      (Metz et al. 2022, VeLO: Training versatile learned optimizers by scaling up, App. D.3: each
      task's meta-gradient normalized independently). The direction is that of the unbiased mean,
      and every family then weighs the same in the average over families (`meta_trainer.combine`).
    - `problem`: mean_{i in F} g_i / |g_i|, each problem's estimate scaled to unit length first.
      With one antithetic pair per problem this is sign-ES, mean_i sign(L+_i - L-_i) eps_i / |eps_i|
      (PES: the accumulated perturbation in place of eps_i): the loss differences' magnitudes are
      discarded, so it is no longer an unbiased gradient estimate.

    A zero estimate stays zero; no finite problem gives a zero meta-gradient in every mode."""

    normalize_task_grads: NormalizeMode = "none"
    branches: ClassVar[int] = 2  # unrolls per task and outer iteration (antithetic pairs)

    def __post_init__(self):  # cooperative: every base's checks run
        check(self.normalize_task_grads in NORMALIZE_MODES, "normalize_task_grads",
              self.normalize_task_grads, f"one of {list(NORMALIZE_MODES)}")

    def unroll_length(self, schedule: TruncationSchedule) -> int:
        """Inner steps each problem is unrolled per outer iteration."""
        raise NotImplementedError

    def check_schedule(self, schedule: TruncationSchedule) -> None:
        """Raise a ConfigError if this estimator cannot unroll the schedule's inner problems."""

    def inner_steps(self, num_tasks: int, schedule: TruncationSchedule) -> int:
        """Inner steps one outer iteration takes, every branch of every task counted."""
        return self.branches * num_tasks * self.unroll_length(schedule)

    def task_axes(self, state: EstimatorState) -> Any:
        """Every leaf of the states of lopt's estimators (inner problems, accumulators, task keys)
        has a leading task or problem axis."""
        return tree_map(lambda _: True, state)

    def task_mean(self, grads: Theta, finite: jax.Array) -> Theta:
        """The family's meta-gradient from its per-problem estimates (leading problem axis) of the
        `finite` problems ([problems] bool), the others dropped, as `normalize_task_grads` says."""
        if self.normalize_task_grads == "problem":
            grads = per_task(1.0 / jnp.maximum(task_norms(grads), 1e-30), grads)
        count = jnp.maximum(finite.sum(), 1)
        mean = tree_map(lambda g: jnp.where(along_rows(finite, g), g, 0.0).sum(0) / count, grads)
        if self.normalize_task_grads == "family":
            norm = task_norms(tree_map(lambda m: m[None], mean))[0]
            mean = tree_map(lambda m: m / jnp.maximum(norm, 1e-30), mean)
        return mean

    def finish(self, grads: Theta, state: EstimatorState, objective: Objective, out: StepOutput,
               finite: jax.Array, counted: jax.Array | None = None, **extra: jax.Array) -> Estimate:
        """The `Estimate` of an unroll from its per-task gradients, advanced state, objective,
        [steps, problems] outputs and finite tasks (`counted`: the steps that belong to the
        measured problems, default all; `extra`: more metrics to log)."""
        return Estimate(self.task_mean(grads, finite), state, finite.sum(), objective.mean(),
                        {**unroll_metrics(out, finite.shape[0], counted), **extra})


@dataclass(frozen=True)
class TruncatedEstimator(Estimator):
    """An estimator over truncations of `trunc_length` steps of persistent inner problems."""

    trunc_length: int = 20

    def __post_init__(self):
        super().__post_init__()
        check(self.trunc_length > 0, "trunc_length", self.trunc_length, "a positive integer")

    def unroll_length(self, schedule: TruncationSchedule) -> int:
        return self.trunc_length

    def check_schedule(self, schedule: TruncationSchedule) -> None:
        if self.trunc_length > schedule.min_length:  # a problem resets at most once per truncation
            raise ConfigError(
                f"estimator.trunc_length={self.trunc_length} is longer than the shortest inner problems "
                f"(schedule min length {schedule.min_length}): it must be at most {schedule.min_length}.")

    def objective(self, unroll: Unroll, out: StepOutput) -> Objective:
        """The meta-loss objective of a truncation."""
        return unroll.truncation_objective(out, self.trunc_length)


@dataclass(frozen=True)
class Antithetic(Estimator):
    """An estimator that unrolls each task at theta + eps and theta - eps,
    eps ~ N(0, std^2 I), sharing inits, batches and resets between the two branches."""

    std: float = 0.01

    def __post_init__(self):
        super().__post_init__()
        check(self.std > 0, "std", self.std, "a positive float")

    def perturb(self, key: PRNGKey, theta: Theta, num_tasks: int) -> tuple[Theta, Theta]:
        """Per-task perturbations eps and the [2 * num_tasks] thetas (theta + eps, theta - eps)."""
        eps = normal_like(key, theta, num_tasks, self.std)
        return eps, tree_map(lambda t, e: jnp.concatenate([t + e, t - e]), theta, eps)

    def es_grads(self, delta: jax.Array, norm: Any, eps: Theta) -> Theta:
        """Per-task antithetic ES gradients sum_t (L+_t - L-_t) eps / (2 std^2 norm) of the
        objective sum_t L_t / norm; `delta` is [steps, tasks], `norm` a scalar or [tasks]."""
        return per_task(delta.sum(0) / (2.0 * self.std**2 * norm), eps)


@dataclass(frozen=True)
class AntitheticEstimator(TruncatedEstimator, Antithetic):
    """A truncated antithetic estimator: persistent antithetic pairs of inner problems."""

    def init(self, unroll: Unroll, theta: Theta, key: PRNGKey, num_tasks: int,
             random_offset: bool = True) -> EstimatorState:
        """`num_tasks` inner problems, each twice: positive branches, then negative ones."""
        inner = unroll.init(theta, key, num_tasks, random_offset)
        return tree_map(lambda x: jnp.concatenate([x, x]), inner)

    def antithetic_run(self, unroll: Unroll, theta: Theta, inner: InnerState, data: Dataset | None,
                       key: PRNGKey, outer_iteration: jax.Array) -> tuple[Theta, InnerState, StepOutput]:
        """Perturb theta per task and unroll both branches over one truncation: the perturbations,
        the advanced inner states and the [steps, 2 * tasks] outputs."""
        eps, thetas = self.perturb(key, theta, inner.step.shape[0] // 2)
        inner, out = unroll.run(thetas, inner, data, self.trunc_length, outer_iteration, branches=2)
        return eps, inner, out


def normal_like(key: PRNGKey, tree: Any, num: int, std: float) -> Any:
    """`num` independent N(0, std^2) draws shaped like `tree`, stacked on a leading axis."""
    treedef: Any  # a PyTreeDef (jaxlib's type is opaque to the type checker)
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    keys = jax.random.split(key, len(leaves))
    return treedef.unflatten([std * jax.random.normal(k, (num,) + x.shape, x.dtype)
                              for k, x in zip(keys, leaves)])


def per_task(weights: jax.Array, tree: Any) -> Any:
    """Multiply each task's slice of `tree` ([tasks, ...] leaves) by its weight."""
    return tree_map(lambda x: x * along_rows(weights, x), tree)


def task_norms(tree: Any) -> jax.Array:
    """The Euclidean norm of each task's slice of `tree` ([tasks, ...] leaves)."""
    return jnp.sqrt(sum(jnp.sum(x.reshape(x.shape[0], -1) ** 2, axis=1)
                        for x in jax.tree_util.tree_leaves(tree)))


def finite_tasks(grads: Any, nonfinite: jax.Array) -> jax.Array:
    """[tasks] whether a task's gradient ([tasks, ...] leaves) is finite and none of its problems
    went non-finite (`nonfinite`: [steps, branches * tasks] flags of the steps that count)."""
    n = jax.tree_util.tree_leaves(grads)[0].shape[0]
    return ~nonfinite.any(0)[:n] & jax.vmap(all_finite)(grads)


def branch_difference(values: jax.Array) -> jax.Array:
    """Positive minus negative branch of [..., 2 * tasks] values."""
    n = values.shape[-1] // 2
    return values[..., :n] - values[..., n:]


def branch_mean(tree: Any) -> Any:
    """Mean of the positive and negative branch of [2 * tasks, ...] leaves."""
    return tree_map(lambda x: 0.5 * (x[: x.shape[0] // 2] + x[x.shape[0] // 2:]), tree)


def backprop_unroll(unroll: Unroll, estimator: TruncatedEstimator, thetas: Theta, inner: InnerState,
                    data: Dataset | None, outer_iteration: jax.Array
                    ) -> tuple[Theta, tuple[InnerState, StepOutput]]:
    """Per-problem gradients d/d(thetas[i]) of problem i's meta-loss objective over one
    truncation, by backprop through the scan (`thetas` has a leading problem axis). A problem reset
    inside the unroll contributes through its successor's init only: the reset cuts the graph to
    the old one."""
    def total(thetas):
        new, out = unroll.run(thetas, inner, data, estimator.trunc_length, outer_iteration,
                              branches=estimator.branches)
        return estimator.objective(unroll, out).values().sum(), (new, out)

    return jax.grad(total, has_aux=True)(thetas)


def unroll_metrics(out: StepOutput, num_tasks: int, counted: jax.Array | None = None) -> Metrics:
    """The logged metrics of an unroll (`out` is [steps, problems], the first `num_tasks` problems
    counted for resets; `counted`: the [steps, problems] steps that belong to the measured
    problems, default all)."""
    counted = jnp.ones(out.reset.shape, bool) if counted is None else counted
    loss = jnp.where(counted & jnp.isfinite(out.loss), out.loss, jnp.nan)
    return {
        "inner/loss": jnp.nanmean(loss),
        "inner/resets": jnp.sum((out.ended & counted)[:, :num_tasks]),
        "inner/nonfinite_resets": jnp.sum((out.nonfinite & counted)[:, :num_tasks]),
    }
