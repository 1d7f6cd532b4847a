"""The interfaces of lopt, written down as Protocols, and the type aliases every module shares.

In the spirit of optax's `base.py`: each component is a frozen dataclass (its fields are its config)
with pure functions over pytrees, and the Protocols below say which members the rest of lopt calls.

- `Task`: the inner problem (init, loss, batch sampling, metrics, the clipped meta-loss value).
- `Optimizer`: what trains a task; hand-designed optimizers ignore `theta`.
- `LearnedOptimizer`: an `Optimizer` with meta-parameters `theta` (`init_theta`).
- `TruncationSchedule`: how long each inner problem trains before it is replaced.
- `MetaLoss`: which clipped loss the outer problem minimizes and how an unroll's steps add up to it.
- `Unroll`: the vectorized truncated inner training that estimators drive.
- `GradientEstimator`: a meta-gradient from unrolls, returned as an `Estimate`.

And the values they exchange: an unroll's `InnerState` and per-step `StepOutput`, a meta-loss's
`Objective`, an estimator's `Estimate`.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple, Protocol

import jax
import jax.numpy as jnp

if TYPE_CHECKING:
    from lopt.data.dataset import Dataset

Params = Any  # a pytree of arrays: a model's parameters (or gradients shaped like them)
Theta = Any  # a pytree of arrays: a learned optimizer's meta-parameters
OptState = Any  # an optimizer's state pytree
EstimatorState = Any  # a gradient estimator's state pytree (leaves with a leading task axis)
Batch = Any  # what a task's loss reads: a (inputs, labels) pair, or a key for a dataset-free task
PRNGKey = jax.Array
Metrics = dict[str, jax.Array]  # values that are only logged, never read back


class Task(Protocol):
    """A trainable problem as pure functions; the data is passed in, never closed over
    (`lopt.tasks.Task` is the implementation every task kind builds)."""

    @property
    def name(self) -> str: ...

    @property
    def batch_size(self) -> int: ...

    def init(self, key: PRNGKey) -> Params: ...

    def loss(self, params: Params, batch: Batch) -> jax.Array: ...

    def sample_batch(self, data: Dataset | None, key: PRNGKey, split: str = "train") -> Batch:
        """A batch of `split` ("train" or "test"), drawn inside compiled code."""
        ...

    def metrics(self, params: Params, batch: Batch) -> dict[str, jax.Array]:
        """Evaluation metrics of a batch (at least "loss")."""
        ...

    def meta_loss(self, loss: jax.Array) -> jax.Array:
        """The loss clipped at the task's normalizer, NaN-safe: what meta-losses are made of."""
        ...


class Optimizer(Protocol):
    """An inner optimizer as two pure functions that take the meta-parameters explicitly, so the
    same unroll trains a task with Adam or with a learned optimizer whose theta is perturbed."""

    def init(self, theta: Theta, params: Params, num_steps: jax.Array | int | None = None) -> OptState:
        """The state for fresh `params`, about to be trained for `num_steps` updates (None when
        unknown; only optimizers with fraction-of-training inputs use it)."""
        ...

    def update(self, theta: Theta, state: OptState, params: Params, grads: Params,
               loss: jax.Array) -> tuple[Params, OptState]:
        """One step: new parameters and state from the gradient (and loss) at `params`."""
        ...


class LearnedOptimizer(Optimizer, Protocol):
    """An optimizer with meta-parameters (`lopt.learned` registers the architectures).

    Optional attributes: `trainable_keys`, the top-level keys of theta that meta-training moves
    (None or absent: all; the rest is frozen, `lopt.unroll.partial`), and `WARM_START_MAY_CHANGE`,
    the options a run warm-started from another run's theta may set differently (Celo's `phase`)."""

    def init_theta(self, key: PRNGKey) -> Theta:
        """Freshly initialized meta-parameters."""
        ...


class TruncationSchedule(Protocol):
    """Lengths of inner problems: `sample` runs inside the compiled outer step whenever a problem
    starts; `min_length`/`max_length` bound it statically (`lopt.schedules.NEVER`: never ends)."""

    @property
    def min_length(self) -> int: ...

    @property
    def max_length(self) -> int: ...

    def sample(self, key: PRNGKey, outer_iteration: jax.Array) -> jax.Array: ...


class Objective(NamedTuple):
    """What a meta-loss makes of an unroll's steps: each problem's objective, as per-step terms."""

    terms: jax.Array  # [steps, problems]: per-step contributions to each problem's objective
    norm: Any  # scalar or [problems]: each problem's objective is terms.sum(0) / norm
    counted: jax.Array  # [problems]: the problems whose objective this unroll measures (for metrics)

    def values(self) -> jax.Array:
        """Each problem's objective, [problems]."""
        return self.terms.sum(0) / self.norm

    def mean(self) -> jax.Array:
        """The mean objective over the counted problems (NaN if none is counted)."""
        counted = self.counted.sum()
        return jnp.where(counted > 0, jnp.sum(jnp.where(self.counted, self.values(), 0.0))
                         / jnp.maximum(counted, 1), jnp.nan)


class MetaLoss(Protocol):
    """What each unrolled step contributes to the outer objective (`lopt.unroll.meta_loss`)."""

    at_end: ClassVar[bool]  # evaluated once per problem, after its last update (else at every step)

    def evaluate(self, task: Task, data: Dataset | None, params: Params, key: PRNGKey,
                 loss: jax.Array | None = None) -> jax.Array:
        """The clipped value at `params`; `loss` is the training loss on the batch of `key` (not
        given for an `at_end` meta-loss, evaluated after the last update)."""
        ...

    def check_schedule(self, schedule: TruncationSchedule) -> None:
        """A ConfigError if the meta-loss is undefined for the schedule's problems."""
        ...

    def truncation(self, meta_loss: jax.Array, ended: jax.Array, num_steps: int) -> Objective:
        """The objective of a truncation from its [steps, problems] values and end flags."""
        ...

    def full(self, meta_loss: jax.Array, ended: jax.Array, length: jax.Array) -> Objective:
        """The objective of whole problems unrolled from step 0 past their `length`s."""
        ...


class InnerState(NamedTuple):
    """One inner problem's training state inside an unroll (a leading task axis when vectorized)."""

    params: Params
    opt_state: OptState
    step: jax.Array  # steps taken on the current problem
    length: jax.Array  # steps the current problem trains for before it is reset
    key: jax.Array  # the current problem's key: init, batches and the next problem derive from it
    scale: Params = None  # with task augmentation: the problem's weight scales (params trains p0 / s)


class StepOutput(NamedTuple):
    """What each inner step of an unroll reports."""

    loss: jax.Array  # training loss before the step
    meta_loss: jax.Array  # the meta-loss's clipped, NaN-safe value (`final`: set where `ended` only)
    reset: jax.Array  # the problem was replaced by its successor after this step (ended or nonfinite)
    nonfinite: jax.Array  # ... because its (or an antithetic partner's) loss/grads/params were not finite

    @property
    def ended(self) -> jax.Array:
        """The problem reached its schedule length after this step."""
        return self.reset & ~self.nonfinite


class Unroll(Protocol):
    """Vectorized truncated training of many inner problems (`lopt.unroll.TruncatedUnroll`)."""

    @property
    def max_length(self) -> int:
        """The longest inner problem the unroll's schedule starts."""
        ...

    def fresh(self, theta: Theta, key: PRNGKey, outer_iteration: jax.Array) -> InnerState: ...

    def init(self, theta: Theta, key: PRNGKey, num_tasks: int, random_offset: bool = True) -> InnerState: ...

    def run(self, theta: Theta, states: InnerState, data: Dataset | None, num_steps: int,
            outer_iteration: jax.Array, theta_batched: bool = True, branches: int = 1
            ) -> tuple[InnerState, StepOutput]: ...

    def truncation_objective(self, out: StepOutput, num_steps: int) -> Objective: ...

    def full_objective(self, out: StepOutput, length: jax.Array) -> Objective: ...


class Estimate(NamedTuple):
    """What a gradient estimator returns for one outer iteration (cf. learned_optimization's
    `GradientEstimatorOut`): the outer step reads the first four, and only logs `metrics`."""

    grad: Theta  # the meta-gradient: the mean over finite tasks (zeros when none is finite)
    state: EstimatorState  # the advanced estimator state
    finite_tasks: jax.Array  # how many tasks' gradients entered the mean
    meta_loss: jax.Array  # the mean meta-loss objective of the unroll (NaN when no problem counted)
    metrics: Metrics  # inner/..., estimator/...: logged only


class GradientEstimator(Protocol):
    """A meta-gradient estimator over an `Unroll` (`lopt.estimators` registers them)."""

    def unroll_length(self, schedule: TruncationSchedule) -> int:
        """Inner steps each problem is unrolled per outer iteration."""
        ...

    def check_schedule(self, schedule: TruncationSchedule) -> None:
        """A ConfigError if the estimator cannot unroll the schedule's problems."""
        ...

    def inner_steps(self, num_tasks: int, schedule: TruncationSchedule) -> int:
        """Inner steps one outer iteration takes, every branch of every task counted."""
        ...

    def init(self, unroll: Unroll, theta: Theta, key: PRNGKey, num_tasks: int,
             random_offset: bool = True) -> EstimatorState: ...

    def estimate(self, unroll: Unroll, theta: Theta, state: EstimatorState, data: Dataset | None,
                 key: PRNGKey, outer_iteration: jax.Array) -> Estimate: ...

    def task_axes(self, state: EstimatorState) -> Any:
        """A tree of bools shaped like `state`: which leaves have a leading task (or problem) axis,
        to be sharded over devices; the others are replicated."""
        ...
