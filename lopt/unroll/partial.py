"""Meta-training part of theta: the rest stays frozen.

A learned optimizer may name the top-level keys of its theta that meta-training moves, as a
`trainable_keys` attribute (a tuple of keys, or None: all of theta); Celo's phases use it (phase 1
trains its MLP update rule, phase 2 its scheduler). The meta-trainer then splits theta into the
trainable part and the frozen part and hands the estimator only the trainable part, with unrolls
that put the frozen part back (`PartialUnroll`). So the frozen leaves are

- never perturbed: ES/PES perturb only the trainable leaves, which lowers the variance of the
  estimate (the reference of Celo, github.com/amoudgl/celo, perturbs all of theta and multiplies the
  frozen leaves' meta-gradient by 0);
- never differentiated (tbptt, merged), and hold no estimator state (PES accumulators);
- never seen by the outer optimizer, so they stay exactly as they were (in the reference, AdamW's
  weight decay still shrinks the frozen leaves, by 3e-8 of their value per outer step at its
  lr 3e-4 and decay 1e-4).

The whole theta (both parts) is what is checkpointed, evaluated and exported.
"""
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp

from lopt.base import Theta, Unroll
from lopt.data import Dataset


def trainable_keys(lopt: Any) -> tuple[str, ...] | None:
    """The top-level theta keys `lopt` meta-trains (None: all of theta)."""
    keys = getattr(lopt, "trainable_keys", None)
    return None if keys is None else tuple(keys)


def split(theta: Theta, keys: tuple[str, ...]) -> tuple[dict, dict]:
    """(trainable, frozen): theta's entries under `keys`, and the others."""
    unknown = sorted(set(keys) - set(theta))
    if unknown or not keys:
        raise ValueError(f"trainable keys {list(keys)} must be a non-empty subset of theta's keys {sorted(theta)}")
    return {k: theta[k] for k in theta if k in keys}, {k: theta[k] for k in theta if k not in keys}


def merge(trainable: dict, frozen: dict) -> dict:
    """The whole theta from its two parts."""
    return {**frozen, **trainable}


@dataclass(frozen=True, eq=False)
class PartialUnroll:
    """`unroll` driven with the trainable part of theta only: `frozen` (shared by every problem) is
    merged back in before the inner optimizer sees theta. Where the trainable part has a leading
    problem axis (perturbed per task), the frozen part is broadcast along it."""

    unroll: Unroll
    frozen: dict

    @property
    def max_length(self) -> int:
        return self.unroll.max_length

    def _whole(self, trainable: dict, batched: bool) -> dict:
        if not batched:
            return merge(trainable, self.frozen)
        n = jax.tree_util.tree_leaves(trainable)[0].shape[0]
        return merge(trainable, jax.tree_util.tree_map(lambda x: jnp.broadcast_to(x, (n,) + x.shape), self.frozen))

    def fresh(self, theta: Theta, key: jax.Array, outer_iteration: jax.Array) -> Any:
        return self.unroll.fresh(merge(theta, self.frozen), key, outer_iteration)

    def init(self, theta: Theta, key: jax.Array, num_tasks: int, random_offset: bool = True) -> Any:
        return self.unroll.init(merge(theta, self.frozen), key, num_tasks, random_offset)

    def run(self, theta: Theta, states: Any, data: Dataset | None, num_steps: int, outer_iteration: jax.Array,
            theta_batched: bool = True, branches: int = 1) -> Any:
        return self.unroll.run(self._whole(theta, theta_batched), states, data, num_steps, outer_iteration,
                               theta_batched, branches)

    def truncation_objective(self, out: Any, num_steps: int) -> Any:
        return self.unroll.truncation_objective(out, num_steps)

    def full_objective(self, out: Any, length: jax.Array) -> Any:
        return self.unroll.full_objective(out, length)
