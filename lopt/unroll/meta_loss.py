"""Meta-losses: which clipped inner loss the outer problem minimizes; the `meta_loss/` group names one.

- `mean` (default): the mean clipped training loss over the unrolled steps, each step's loss of the
  params before that step's update, on that step's training batch (Metz et al. 2022, Practical
  tradeoffs between memory, compute, and performance in learned optimizers, App. D.1; the "avg" of
  Metz et al. 2022, VeLO: Training versatile learned optimizers by scaling up).
- `final`: the clipped training loss of each inner problem at its end, i.e. of the params *after*
  its last update, on a fresh training batch (the one its next step would draw; VeLO's "last").
- `valid`: the L_valid of Metz et al. 2018, Learned optimizers that outperform SGD on wall-clock and
  test loss (arXiv:1810.10180): like `mean`, but each step's loss is measured on a batch of the
  held-out ("test") split (dataset-free tasks: another noise key). One extra forward pass per step.

Every value is clipped at the task normalizer (`Task.meta_loss`). `truncation` and `full` turn the
per-step values of an unroll into `Objective` terms whose per-problem sum divided by `norm` is the
objective the estimators differentiate: the truncation's mean for `mean`/`valid` (so ES estimates
keep their 1 / trunc_length normalisation) and the sum of the final losses of the problems that end
in the unroll for `final` (zero for a truncation where no problem ends). PES's accumulator makes
its `final` estimate unbiased for the gradient of the final loss; es, tbptt and merged only see
the last truncation of each problem (the truncated approximation).
"""
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import jax
import jax.numpy as jnp

from lopt.base import Batch, Objective, Params, PRNGKey, Task, TruncationSchedule
from lopt.config import Registry
from lopt.data import Dataset
from lopt.schedules import ENDING, require_ending


def before_first_end(ended: jax.Array) -> jax.Array:
    """[steps, problems] mask of the steps up to and including each problem's first end."""
    return (jnp.cumsum(ended, axis=0) - ended) == 0


@dataclass(frozen=True)
class MeanLoss:
    """The mean clipped training loss over the unrolled steps."""

    at_end: ClassVar[bool] = False  # evaluated once per problem, after its last update

    def evaluate(self, task: Task, data: Dataset | None, params: Params, key: PRNGKey,
                 loss: jax.Array | None = None) -> jax.Array:
        """This step's clipped value; `loss` is the training loss of `params` on the batch of `key`."""
        assert loss is not None, "a per-step meta-loss reads the step's training loss"
        return task.meta_loss(loss)

    def check_schedule(self, schedule: TruncationSchedule) -> None:
        """Raise a ConfigError if this meta-loss is undefined for the schedule's inner problems."""

    def truncation(self, meta_loss: jax.Array, ended: jax.Array, num_steps: int) -> Objective:
        """The objective of a truncation of `num_steps` steps from its [steps, problems] values and
        end flags (a problem reached its schedule length after that step)."""
        return Objective(meta_loss, num_steps, jnp.ones(meta_loss.shape[1], bool))

    def full(self, meta_loss: jax.Array, ended: jax.Array, length: jax.Array) -> Objective:
        """The objective of whole inner problems unrolled from step 0 past their `length`s
        ([problems]): steps after a problem's end are masked out."""
        return Objective(jnp.where(before_first_end(ended), meta_loss, 0.0), length,
                         jnp.ones(meta_loss.shape[1], bool))


@dataclass(frozen=True)
class ValidLoss(MeanLoss):
    """The L_valid of Metz et al. 2018 (arXiv:1810.10180): the mean clipped loss over the unrolled steps
    on held-out batches."""

    def evaluate(self, task: Task, data: Dataset | None, params: Params, key: PRNGKey,
                 loss: jax.Array | None = None) -> jax.Array:
        # fold_in: a key of its own, so a dataset-free task's noise differs from the training batch's
        batch: Batch = task.sample_batch(data, jax.random.fold_in(key, 1), "test")
        return task.meta_loss(task.loss(params, batch))


@dataclass(frozen=True)
class FinalLoss(MeanLoss):
    """The clipped training loss of each inner problem after its last update."""

    at_end: ClassVar[bool] = True

    def evaluate(self, task: Task, data: Dataset | None, params: Params, key: PRNGKey,
                 loss: jax.Array | None = None) -> jax.Array:
        return task.meta_loss(task.loss(params, task.sample_batch(data, key)))

    def check_schedule(self, schedule: TruncationSchedule) -> None:
        require_ending(schedule, "meta_loss=final is the loss at the end of each inner problem",
                       f"Use meta_loss=mean or meta_loss=valid with schedule=never_ending, or {ENDING}.")

    def truncation(self, meta_loss: jax.Array, ended: jax.Array, num_steps: int) -> Objective:
        return Objective(jnp.where(ended, meta_loss, 0.0), 1.0, ended.any(0))

    def full(self, meta_loss: jax.Array, ended: jax.Array, length: jax.Array) -> Objective:
        first_end = ended & before_first_end(ended)
        return Objective(jnp.where(first_end, meta_loss, 0.0), jnp.ones(length.shape), first_end.any(0))


REGISTRY = Registry("meta-loss", {"mean": MeanLoss, "final": FinalLoss, "valid": ValidLoss})


def build(cfg: Mapping[str, Any]) -> MeanLoss:
    """The meta-loss named by the `meta_loss` config node."""
    return REGISTRY.build(cfg, "meta_loss")
