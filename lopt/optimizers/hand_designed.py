"""Hand-designed inner optimizers: thin adapters around optax transformations."""
from dataclasses import dataclass
from typing import Any

import jax
import optax

from lopt.optimizers.base import MetaParams, OptState, Params


@dataclass(frozen=True)
class OptaxOptimizer:
    """Any `optax.GradientTransformation` behind the `Optimizer` interface (theta is ignored)."""

    tx: optax.GradientTransformation

    def init(self, theta: MetaParams, params: Params) -> OptState:
        return self.tx.init(params)

    def update(self, theta: MetaParams, state: OptState, params: Params, grads: Params,
               loss: jax.Array) -> tuple[Params, OptState]:
        updates, state = self.tx.update(grads, state, params)
        return optax.apply_updates(params, updates), state


def adam(learning_rate: float, **kwargs: Any) -> OptaxOptimizer:
    return OptaxOptimizer(optax.adam(learning_rate, **kwargs))
