"""The optimizer interface shared by learned and hand-designed optimizers.

An inner optimizer is a pair of pure functions that take the meta-parameters `theta` explicitly
(hand-designed optimizers have none and ignore them), so the same unroll code trains a task with
Adam or with a learned optimizer whose `theta` is being perturbed or differentiated.
"""
from typing import Any, Protocol

import jax

Params = Any
OptState = Any
MetaParams = Any


class Optimizer(Protocol):
    def init(self, theta: MetaParams, params: Params, num_steps: jax.Array | int | None = None) -> OptState:
        """The optimizer state for fresh `params`, about to be trained for `num_steps` updates (None
        when unknown). Only optimizers with fraction-of-training inputs (hypernet) use the length."""

    def update(self, theta: MetaParams, state: OptState, params: Params, grads: Params,
               loss: jax.Array) -> tuple[Params, OptState]:
        """One step: new parameters and state from the gradient (and loss) at `params`."""
