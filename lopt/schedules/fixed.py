"""Schedules whose lengths do not depend on the outer iteration: constant, a choice among a few
lengths, and never-ending inner problems."""
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from lopt.config import check
from lopt.errors import ConfigError

NEVER = int(np.iinfo(np.int32).max)  # a length no step counter reaches: the problem never resets
ENDING = "a schedule whose problems end (constant, linear, log_uniform, choice)"


def require_ending(schedule: Any, requirement: str, alternative: str) -> None:
    """A ConfigError unless `schedule` ends its problems: `requirement` is the choice that needs
    them to end and why, `alternative` what to use instead."""
    if schedule.max_length >= NEVER:
        raise ConfigError(f"{requirement}, but schedule=never_ending never ends them. {alternative}")


@dataclass(frozen=True)
class ConstantSchedule:
    """Every inner problem trains for `length` steps."""

    length: int = 200

    def __post_init__(self):
        check(self.length > 0, "length", self.length, "a positive integer")

    @property
    def min_length(self) -> int:
        return self.length

    @property
    def max_length(self) -> int:
        return self.length

    def sample(self, key: jax.Array, outer_iteration: jax.Array) -> jax.Array:
        """Length of a new inner problem started at `outer_iteration` (traceable)."""
        return jnp.asarray(self.length, jnp.int32)


@dataclass(frozen=True)
class ChoiceSchedule:
    """Each inner problem trains for one of `lengths`, drawn uniformly (Metz et al. 2021, Training
    learned optimizers with randomly initialized learned optimizers, arXiv:2101.07367, resamples the
    truncation length among 200, 300, 400 and 800 steps)."""

    lengths: tuple[int, ...] = (200, 300, 400, 800)

    def __post_init__(self):
        check(len(self.lengths) > 0 and all(n > 0 for n in self.lengths), "lengths",
              list(self.lengths), "a non-empty list of positive integers")

    @property
    def min_length(self) -> int:
        return min(self.lengths)

    @property
    def max_length(self) -> int:
        return max(self.lengths)

    def sample(self, key: jax.Array, outer_iteration: jax.Array) -> jax.Array:
        return jax.random.choice(key, jnp.asarray(self.lengths, jnp.int32))


@dataclass(frozen=True)
class NeverEndingSchedule:
    """Inner problems are never reset: online meta-training on one ever-continuing training run
    per task (its length is `NEVER`, beyond any step count)."""

    @property
    def min_length(self) -> int:
        return NEVER

    @property
    def max_length(self) -> int:
        return NEVER

    def sample(self, key: jax.Array, outer_iteration: jax.Array) -> jax.Array:
        return jnp.asarray(NEVER, jnp.int32)
