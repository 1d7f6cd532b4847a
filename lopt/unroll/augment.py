"""Task augmentation for meta-training: reparameterized weights (learned_optimization's
ReparamWeights / ReparamWeightsFamily, used by Moudgil, Knyazev, Lajoie, Belilovsky 2025, Celo:
Training Versatile Learned Optimizers on a Compute Diet, TMLR, arXiv:2501.12670, at level "global"
with scales in [1e-3, 1e3]).

Each inner problem draws a scale s when it is (re)initialized and keeps it for its lifetime: it
trains parameters p' = p0 / s (p0 the task's init) on the loss L(p' * s). The function the task
computes is unchanged, but the optimizer sees parameters 1/s as large and gradients s times as
large, so a learned optimizer must cope with parameter scales it would otherwise never meet. s is
log-uniform in `range`: one value for every parameter (`global`), one per tensor (`tensor`) or one
per parameter (`parameter`); `none` leaves tasks as they are. Only meta-training's inner problems
are augmented, never evaluation's.
"""
import math
from dataclasses import dataclass

import jax
import jax.numpy as jnp

from lopt.base import Params, PRNGKey
from lopt.config import check

LEVELS = ("none", "global", "tensor", "parameter")


@dataclass(frozen=True)
class Augmentation:
    """The `augment` node of meta-training: reparameterize each inner problem's weights by a random
    scale at `level` (none, global, tensor, parameter), log-uniform in `range` = [low, high]."""

    level: str = "none"
    range: tuple[float, ...] = (1e-3, 1e3)

    def __post_init__(self):
        check(self.level in LEVELS, "level", self.level, f"one of {', '.join(LEVELS)}")
        check(len(self.range) == 2 and 0 < self.range[0] <= self.range[1], "range", list(self.range),
              "[low, high] with 0 < low <= high")

    def sample(self, key: PRNGKey, params: Params) -> Params | None:
        """A new problem's scales for its `params`: None without augmentation, else a tree like
        `params` whose leaves broadcast against them (scalars at `global` and `tensor` level)."""
        if self.level == "none":
            return None
        low, high = (math.log(x) for x in self.range)
        leaves, treedef = jax.tree_util.tree_flatten(params)
        if self.level == "global":
            scales = [jnp.exp(jax.random.uniform(key, (), minval=low, maxval=high))] * len(leaves)
        else:
            keys = jax.random.split(key, len(leaves))
            scales = [jnp.exp(jax.random.uniform(k, () if self.level == "tensor" else jnp.shape(p), minval=low,
                                                 maxval=high)) for k, p in zip(keys, leaves)]
        return jax.tree_util.tree_unflatten(treedef, scales)


def reparameterize(params: Params, scale: Params | None) -> Params:
    """The parameters a problem trains: p0 / s (`params` itself without augmentation)."""
    return params if scale is None else jax.tree_util.tree_map(jnp.divide, params, scale)


def effective(params: Params, scale: Params | None) -> Params:
    """The task's parameters that trained parameters `params` stand for: p' * s."""
    return params if scale is None else jax.tree_util.tree_map(jnp.multiply, params, scale)
