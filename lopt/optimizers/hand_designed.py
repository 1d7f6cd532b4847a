"""Hand-designed inner optimizers: thin adapters around optax transformations.

The `optimizer/` config group names one of the registered classes; `.build()` gives the
`Optimizer` used by inner training and evaluation.
"""
import abc
from dataclasses import dataclass
from typing import Any, Mapping

import jax
import optax

from lopt.config import Registry, check
from lopt.optimizers.base import MetaParams, OptState, Params

REGISTRY = Registry("optimizer")


@dataclass(frozen=True)
class OptaxOptimizer:
    """Any optax transformation behind the `Optimizer` interface (theta is ignored). The loss is
    passed as an extra argument, which transformations that want it (an exported learned
    optimizer) use and the others ignore."""

    tx: optax.GradientTransformation

    def init(self, theta: MetaParams, params: Params) -> OptState:
        return self.tx.init(params)

    def update(self, theta: MetaParams, state: OptState, params: Params, grads: Params,
               loss: jax.Array) -> tuple[Params, OptState]:
        updates, state = optax.with_extra_args_support(self.tx).update(grads, state, params, loss=loss)
        return optax.apply_updates(params, updates), state


def _check_lr(lr: float) -> None:
    check(lr >= 0, "lr", lr, "a non-negative float")


class _LearningRateOptimizer(abc.ABC):
    """Hand-designed optimizers are built at their configured `lr` or, for vectorized sweeps, at
    any (traced) learning rate with the other hyperparameters as configured."""

    lr: float

    @abc.abstractmethod
    def with_lr(self, lr: Any) -> OptaxOptimizer:
        """This optimizer at learning rate `lr` (a float or a traced scalar)."""

    def build(self) -> OptaxOptimizer:
        return self.with_lr(self.lr)


@REGISTRY.register("sgd")
@dataclass(frozen=True)
class SGD(_LearningRateOptimizer):
    lr: float = 0.1

    def __post_init__(self):
        _check_lr(self.lr)

    def with_lr(self, lr: Any) -> OptaxOptimizer:
        return OptaxOptimizer(optax.sgd(lr))


@REGISTRY.register("sgdm")
@dataclass(frozen=True)
class SGDM(_LearningRateOptimizer):
    lr: float = 0.01
    momentum: float = 0.9

    def __post_init__(self):
        _check_lr(self.lr)
        check(0 <= self.momentum < 1, "momentum", self.momentum, "in [0, 1)")

    def with_lr(self, lr: Any) -> OptaxOptimizer:
        return OptaxOptimizer(optax.sgd(lr, momentum=self.momentum))


@REGISTRY.register("adam")
@dataclass(frozen=True)
class Adam(_LearningRateOptimizer):
    lr: float = 1e-3
    b1: float = 0.9
    b2: float = 0.999
    eps: float = 1e-8

    def __post_init__(self):
        _check_lr(self.lr)
        check(0 <= self.b1 < 1 and 0 <= self.b2 < 1, "b1/b2", (self.b1, self.b2), "in [0, 1)")
        check(self.eps > 0, "eps", self.eps, "a positive float")

    def with_lr(self, lr: Any) -> OptaxOptimizer:
        return OptaxOptimizer(optax.adam(lr, self.b1, self.b2, self.eps))


def from_config(cfg: Mapping[str, Any]) -> Any:
    """The hand-designed optimizer config named by the `optimizer` node (`.build()`, `.with_lr()`)."""
    return REGISTRY.build(cfg, "optimizer")


def build(cfg: Mapping[str, Any]) -> OptaxOptimizer:
    """The inner optimizer named by the `optimizer` config node."""
    return from_config(cfg).build()
