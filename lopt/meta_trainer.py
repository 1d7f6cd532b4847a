"""The outer problem: estimate a meta-gradient over task variants and apply the outer optimizer.

`MetaTrainer.step` is one outer iteration as a pure function; jitted with the state donated, it is
the single compiled call per truncation (all variants, all tasks, both antithetic branches, every
inner step, the estimator and the outer update). A single task is a task family of one variant.
Each variant has its own unroll, data and estimator state (variants differ in parameter shapes, so
each is its own vectorized unroll, unrolled at trace time in one program), and the meta-gradient is
the mean of the variants' estimates: every variant counts once whatever its size, and with
`estimator.normalize_task_grads=family` (each variant's estimate of unit length) whatever its loss
scale too.
A learned optimizer that names `trainable_keys` has only that part of theta estimated and updated;
the rest stays frozen (`lopt.unroll.partial`).
"""
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from lopt.base import (
    Estimate,
    EstimatorState,
    GradientEstimator,
    LearnedOptimizer,
    Metrics,
    PRNGKey,
    Theta,
    TruncationSchedule,
    Unroll,
)
from lopt.data import Dataset
from lopt.platform.compile_options import jit_once
from lopt.tree import all_finite, where_rows
from lopt.unroll.partial import PartialUnroll, split, trainable_keys

COUNTS = ("inner/resets", "inner/nonfinite")  # metric prefixes summed over variants, not averaged


class MetaTrainState(NamedTuple):
    theta: Theta
    outer_opt_state: optax.OptState
    estimator_state: tuple[EstimatorState, ...]  # one per task variant
    key: PRNGKey
    iteration: jax.Array
    nonfinite_streak: jax.Array  # consecutive outer iterations in which no task was finite


class OuterStep(NamedTuple):
    """What one outer iteration reports: its meta-loss (read by the loop) and logged metrics."""

    meta_loss: jax.Array
    metrics: Metrics


def variant_keys(key: PRNGKey, count: int) -> jax.Array:
    """One key per variant: a single task keeps `key` itself, so its random stream is the same as
    without variants."""
    return key[None] if count == 1 else jax.random.split(key, count)


def combine(names: Sequence[str], estimates: Sequence[Estimate]) -> Estimate:
    """The variants' estimates as one: mean gradient and meta-loss, finite tasks summed, metrics
    averaged except counts (`COUNTS`, summed), plus each variant's loss as `family/<name>/loss`
    when there are several."""
    def total(values: Sequence[jax.Array]) -> jax.Array:
        return jnp.sum(jnp.stack(values), axis=0)

    count = len(estimates)
    metrics = {}
    for key in estimates[0].metrics:
        values = [e.metrics[key] for e in estimates]
        metrics[key] = total(values) if key.startswith(COUNTS) else total(values) / count
    if count > 1:
        metrics.update({f"family/{name}/loss": e.meta_loss for name, e in zip(names, estimates)})
    return Estimate(grad=jax.tree_util.tree_map(lambda *g: total(g) / count, *(e.grad for e in estimates)),
                    state=tuple(e.state for e in estimates),
                    finite_tasks=total([e.finite_tasks for e in estimates]),
                    meta_loss=total([e.meta_loss for e in estimates]) / count, metrics=metrics)


@dataclass(frozen=True)
class MetaTrainer:
    """The components of one meta-training run and its pure outer step: `num_tasks` inner problems
    of each task variant (`unrolls` and their `names`), all trained by `lopt`."""

    unrolls: tuple[Unroll, ...]
    names: tuple[str, ...]
    lopt: LearnedOptimizer
    estimator: GradientEstimator
    outer_opt: optax.GradientTransformation
    schedule: TruncationSchedule
    num_tasks: int
    random_initial_offset: bool = True

    def init(self, key: PRNGKey, theta: Theta | None = None) -> MetaTrainState:
        """A fresh meta-training state; `theta` (e.g. from a checkpoint) replaces a random init.
        One compiled program (`compile_options.jit_once`): run op by op, making every task's
        problem and accumulators takes seconds. Traced inside another function, it is part of
        that function's program."""
        if isinstance(key, jax.core.Tracer):
            return self._init(key, theta)
        return self._compiled_init(key, theta)

    @cached_property
    def _compiled_init(self) -> Any:
        return jit_once(self._init)

    def _init(self, key: PRNGKey, theta: Theta | None) -> MetaTrainState:
        k_theta, k_est, k_next = jax.random.split(key, 3)
        theta = self.lopt.init_theta(k_theta) if theta is None else theta
        trainable, unrolls = self.trainable(theta), self.partial_unrolls(theta)
        keys = variant_keys(k_est, len(unrolls))
        est = tuple(self.estimator.init(u, trainable, k, self.num_tasks, self.random_initial_offset)
                    for u, k in zip(unrolls, keys))
        return MetaTrainState(theta, self.outer_opt.init(trainable), est, k_next, jnp.zeros((), jnp.int32),
                              jnp.zeros((), jnp.int32))  # two buffers: the state is donated

    def trainable(self, theta: Theta) -> Theta:
        """The part of theta meta-training moves (all of it unless the learned optimizer names
        `trainable_keys`): what the estimator perturbs and the outer optimizer updates."""
        keys = trainable_keys(self.lopt)
        return theta if keys is None else split(theta, keys)[0]

    def partial_unrolls(self, theta: Theta) -> tuple[Unroll, ...]:
        """The unrolls driven with `trainable(theta)`: theta's frozen part is merged back in."""
        keys = trainable_keys(self.lopt)
        return self.unrolls if keys is None else tuple(PartialUnroll(u, split(theta, keys)[1]) for u in self.unrolls)

    def estimate(self, theta: Theta, states: tuple[EstimatorState, ...], data: tuple[Dataset | None, ...],
                 key: PRNGKey, outer_iteration: jax.Array) -> Estimate:
        """The combined estimate of every variant (variant i with `variant_keys(key, n)[i]`): a
        meta-gradient of `trainable(theta)`."""
        keys = variant_keys(key, len(self.unrolls))
        trainable = self.trainable(theta)
        return combine(self.names, [self.estimator.estimate(u, trainable, s, d, k, outer_iteration)
                                    for u, s, d, k in zip(self.partial_unrolls(theta), states, data, keys)])

    def step(self, state: MetaTrainState, data: tuple[Dataset | None, ...]) -> tuple[MetaTrainState, OuterStep]:
        """One outer iteration over the variants' `data`. Non-finite tasks are dropped; when none is
        finite, or the outer optimizer's update is not (a learned outer optimizer can overflow on
        finite gradients), theta and the outer-optimizer state stay as they are and
        `nonfinite_streak` counts the iteration."""
        key, k_est = jax.random.split(state.key)
        est = self.estimate(state.theta, state.estimator_state, data, k_est, state.iteration)
        trainable = self.trainable(state.theta)
        updates, opt_state = self.outer_opt.update(est.grad, state.outer_opt_state, trainable)
        moved = optax.apply_updates(trainable, updates)
        bad_update = (est.finite_tasks > 0) & ~(all_finite(moved) & all_finite(opt_state))
        skip = (est.finite_tasks == 0) | bad_update
        theta = where_rows(skip, state.theta, moved if trainable is state.theta else {**state.theta, **moved})
        opt_state = where_rows(skip, state.outer_opt_state, opt_state)
        streak = jnp.where(skip, state.nonfinite_streak + 1, 0)
        metrics = {"outer/nonfinite_tasks": self.num_tasks * len(self.unrolls) - est.finite_tasks, **est.metrics,
                   "outer/grad_norm": optax.tree.norm(est.grad), "outer/theta_norm": optax.tree.norm(theta),
                   "outer/nonfinite_update": bad_update.astype(jnp.int32), "outer/nonfinite_streak": streak}
        new = MetaTrainState(theta, opt_state, est.state, key, state.iteration + 1, streak)
        return new, OuterStep(est.meta_loss, metrics)

    def task_axes(self, state: MetaTrainState) -> MetaTrainState:
        """Which leaves of `state` have a leading task axis (sharded over devices): those the
        estimator declares; theta, the outer-optimizer state, key and counters are replicated."""
        replicated = jax.tree_util.tree_map(lambda _: False, state)
        return replicated._replace(estimator_state=tuple(self.estimator.task_axes(s) for s in state.estimator_state))

    @property
    def inner_steps_per_iteration(self) -> int:
        """Inner steps one outer iteration computes over all variants, every branch (e.g.
        antithetic pair) counted (full_es: the schedule's max_length steps per problem)."""
        return len(self.unrolls) * self.estimator.inner_steps(self.num_tasks, self.schedule)


def metric_record(step: OuterStep) -> dict[str, Any]:
    """The logged values of an outer iteration, `outer/loss` first, as Python floats."""
    values = jax.device_get({"outer/loss": step.meta_loss, **step.metrics})
    return {k: float(v) for k, v in values.items()}
