"""A deterministic quadratic inner problem trained by SGD with learned per-coordinate log-lrs:
small enough that meta-gradients can be computed exactly by backprop through the unroll."""
from dataclasses import dataclass

import jax.numpy as jnp

from lopt.data import Dataset
from lopt.schedules import ConstantSchedule
from lopt.tasks import Task
from lopt.unroll import TruncatedUnroll

CURVATURE = jnp.array([1.0, 0.3])

QUADRATIC = Task(
    name="quadratic",
    init=lambda key: jnp.array([1.0, -2.0]),  # deterministic: every problem is the same
    loss=lambda p, batch: 0.5 * jnp.sum(CURVATURE * p**2) + 0.0 * jnp.sum(batch[0]),
    batch_size=1,
    loss_clip=1e6,
)

DATA = Dataset(jnp.zeros((4, 1)), jnp.zeros((4,), jnp.int32), jnp.zeros((4, 1)), jnp.zeros((4,), jnp.int32))


@dataclass(frozen=True)
class LogLrSGD:
    def init_theta(self, key):
        return jnp.log(jnp.array([0.1, 0.2]))

    def init(self, theta, params, num_steps=None):
        return ()

    def update(self, theta, state, params, grads, loss):
        return params - jnp.exp(theta) * grads, state


def quadratic_unroll(length: int) -> TruncatedUnroll:
    return TruncatedUnroll(QUADRATIC, LogLrSGD(), ConstantSchedule(length))
