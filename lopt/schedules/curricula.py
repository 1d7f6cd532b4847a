"""Schedules whose lengths change over meta-training: a linear curriculum with jitter (Metz et al.
2018, Learned optimizers that outperform SGD on wall-clock and test loss, arXiv:1810.10180, Sec. 4.3
and App. C.3) and log-uniform lengths between (optionally ramped) bounds."""
from dataclasses import dataclass

import jax
import jax.numpy as jnp

from lopt.config import check


def ramp(start: float, end: float, iterations: int, outer_iteration: jax.Array) -> jax.Array:
    """`start` at outer iteration 0, moving linearly to `end` at `iterations`, then `end`."""
    frac = jnp.clip(outer_iteration / max(iterations, 1), 0.0, 1.0)
    return start + (end - start) * frac


@dataclass(frozen=True)
class LinearSchedule:
    """A curriculum: the length grows linearly from `start` to `end` over `iterations` outer
    iterations and each sampled length is scaled by 1 + u, u ~ U(-jitter, jitter) (Metz et al.
    2018: 50 -> 10k steps over 5k outer iterations, jittered by up to 20%)."""

    start: int = 50
    end: int = 10000
    iterations: int = 5000
    jitter: float = 0.2

    def __post_init__(self):
        check(self.start > 0, "start", self.start, "a positive integer")
        check(self.end > 0, "end", self.end, "a positive integer")
        check(self.iterations > 0, "iterations", self.iterations, "a positive integer")
        check(0 <= self.jitter < 1, "jitter", self.jitter, "in [0, 1)")
        check(self.min_length > 0, "jitter", self.jitter, "small enough that lengths stay >= 1")

    @property
    def min_length(self) -> int:
        return int(round(min(self.start, self.end) * (1 - self.jitter)))

    @property
    def max_length(self) -> int:
        return int(round(max(self.start, self.end) * (1 + self.jitter)))

    def sample(self, key: jax.Array, outer_iteration: jax.Array) -> jax.Array:
        base = ramp(self.start, self.end, self.iterations, outer_iteration)
        scale = 1.0 + jax.random.uniform(key, minval=-self.jitter, maxval=self.jitter)
        return jnp.clip(jnp.round(base * scale), self.min_length, self.max_length).astype(jnp.int32)


@dataclass(frozen=True)
class LogUniformSchedule:
    """Lengths log-uniform in [low, high]; with `final_low`/`final_high` the bounds move linearly
    to those values over `iterations` outer iterations (a curriculum over length ranges)."""

    low: int = 50
    high: int = 1000
    final_low: int | None = None
    final_high: int | None = None
    iterations: int = 1000

    def __post_init__(self):
        for name, low, high in (("low/high", self.low, self.high),
                                ("final_low/final_high", self._final_low, self._final_high)):
            check(0 < low <= high, name, (low, high), "positive integers with low <= high")
        check(self.iterations > 0, "iterations", self.iterations, "a positive integer")

    @property
    def _final_low(self) -> int:
        return self.low if self.final_low is None else self.final_low

    @property
    def _final_high(self) -> int:
        return self.high if self.final_high is None else self.final_high

    @property
    def min_length(self) -> int:
        return min(self.low, self._final_low)

    @property
    def max_length(self) -> int:
        return max(self.high, self._final_high)

    def bounds(self, outer_iteration: jax.Array) -> tuple[jax.Array, jax.Array]:
        """The (low, high) bounds at `outer_iteration`."""
        return (ramp(self.low, self._final_low, self.iterations, outer_iteration),
                ramp(self.high, self._final_high, self.iterations, outer_iteration))

    def sample(self, key: jax.Array, outer_iteration: jax.Array) -> jax.Array:
        low, high = self.bounds(outer_iteration)
        # floor(exp(U(log low, log(high + 1)))) gives every integer in [low, high] its log mass.
        log_len = jax.random.uniform(key, minval=jnp.log(low), maxval=jnp.log(high + 1.0))
        return jnp.clip(jnp.floor(jnp.exp(log_len)), self.min_length, self.max_length).astype(jnp.int32)
