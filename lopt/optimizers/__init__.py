"""Optimizers: optax adapters for hand-designed inner optimizers, and the outer optimizers
(the inner interface, `Optimizer`, is in `lopt.base`)."""
from lopt.base import Optimizer
from lopt.optimizers.hand_designed import OptaxOptimizer

__all__ = ["Optimizer", "OptaxOptimizer"]
