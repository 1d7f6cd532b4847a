"""Optimizers: the shared inner interface, optax adapters and outer optimizers."""
from lopt.optimizers.base import Optimizer
from lopt.optimizers.hand_designed import OptaxOptimizer

__all__ = ["Optimizer", "OptaxOptimizer"]
