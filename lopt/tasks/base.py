"""The inner problem: a model, its data and its loss."""
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp

from lopt.base import Batch, Params
from lopt.data import Dataset, sample_split


@dataclass(frozen=True)
class Task:
    """A trainable problem as pure functions; the data is passed in, never closed over.

    `loss_clip` is the task's normalizer: meta-losses are clipped at it (and NaN/inf maps to it),
    so one diverging inner problem cannot dominate a meta-gradient. `eval_metrics` gives the
    evaluation metrics of a batch (at least "loss"; "accuracy" for classification). `sampler`
    draws a batch in-graph, `sampler(data, key, batch_size, split)`: rows of a Dataset, or for a
    dataset-free task (data None) `lopt.data.noise_key`, whose batch is a key for the loss's noise.
    """

    name: str
    init: Callable[[jax.Array], Params]
    loss: Callable[[Params, Batch], jax.Array]
    batch_size: int
    loss_clip: float
    eval_metrics: Callable[[Params, Batch], dict[str, jax.Array]] | None = None
    sampler: Callable[[Any, jax.Array, int, str], Batch] = sample_split

    def metrics(self, params: Params, batch: Batch) -> dict[str, jax.Array]:
        if self.eval_metrics is None:
            return {"loss": self.loss(params, batch)}
        return self.eval_metrics(params, batch)

    def sample_batch(self, data: Dataset | None, key: jax.Array, split: str = "train") -> Batch:
        """A batch of `split` ("train" or "test"), drawn inside compiled code."""
        return self.sampler(data, key, self.batch_size, split)

    def meta_loss(self, loss: jax.Array) -> jax.Array:
        """NaN-safe clipped loss used as the meta-objective."""
        return jnp.where(jnp.isfinite(loss), jnp.clip(loss, None, self.loss_clip), self.loss_clip)


def scaled_init(init: Callable[[jax.Array], Params], scale: float) -> Callable[[jax.Array], Params]:
    """`init` with every parameter multiplied by `scale` (a task config's `init_scale`; 1: `init`
    itself): the same network started at another weight scale, for task families that vary it."""
    if scale == 1.0:
        return init
    return lambda key: jax.tree_util.tree_map(lambda p: p * scale, init(key))


def num_params(params: Params) -> int:
    return sum(int(x.size) for x in jax.tree_util.tree_leaves(params))
