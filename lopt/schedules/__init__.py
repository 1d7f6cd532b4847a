"""Truncation schedules: how many steps each inner problem trains before it is reset."""
from dataclasses import dataclass
from typing import Any, Mapping

import jax
import jax.numpy as jnp

from lopt.config import Registry, check

REGISTRY = Registry("truncation schedule")


@REGISTRY.register("constant")
@dataclass(frozen=True)
class ConstantSchedule:
    """Every inner problem trains for `length` steps."""

    length: int = 200

    def __post_init__(self):
        check(self.length > 0, "length", self.length, "a positive integer")

    @property
    def max_length(self) -> int:
        return self.length

    def sample(self, key: jax.Array, outer_iteration: jax.Array) -> jax.Array:
        """Length of a new inner problem started at `outer_iteration` (traceable)."""
        return jnp.asarray(self.length, jnp.int32)


def build(cfg: Mapping[str, Any]) -> Any:
    """The schedule named by the `schedule` config node."""
    return REGISTRY.build(cfg, "schedule")
