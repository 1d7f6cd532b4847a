"""Hand-designed inner optimizers: thin adapters around optax transformations.

The `optimizer/` config group names one of the registered classes. Its fields are the configured
hyperparameters; `build(num_steps, **overrides)` gives the `Optimizer` for a training run of
`num_steps` steps at those values or at overridden (possibly traced) ones, which is how a sweep
trains many configurations in one compiled call. `search_space` samples the random search of
Metz et al. 2022, Practical tradeoffs between memory, compute, and performance in learned
optimizers (arXiv:2203.11860), section 2.1 and App. F.
"""
import abc
import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from lopt.base import OptState, Params, Theta
from lopt.config import Registry, check
from lopt.optimizers.lr_schedules import warmup_constant_cosine

LR_SEARCH_RANGE = (1e-7, 1.0)  # Practical tradeoffs (sec. 2.1) searches SGD/SGDM/Adam learning rates here


@dataclass(frozen=True)
class OptaxOptimizer:
    """Any optax transformation behind the `Optimizer` interface (theta is ignored). The loss is
    passed as an extra argument, which transformations that want it (an exported learned
    optimizer) use and the others ignore."""

    tx: optax.GradientTransformation

    def init(self, theta: Theta, params: Params, num_steps: jax.Array | int | None = None) -> OptState:
        return self.tx.init(params)

    def update(self, theta: Theta, state: OptState, params: Params, grads: Params,
               loss: jax.Array) -> tuple[Params, OptState]:
        updates, state = optax.with_extra_args_support(self.tx).update(grads, state, params, loss=loss)
        return optax.apply_updates(params, updates), state


def log_uniform(rng: np.random.Generator, low: float, high: float, n: int) -> np.ndarray:
    return np.exp(rng.uniform(np.log(low), np.log(high), n))


class HandDesigned(abc.ABC):
    """A hand-designed optimizer config: its dataclass fields are its hyperparameters."""

    lr: float

    def __post_init__(self):
        check(self.lr >= 0, "lr", self.lr, "a non-negative float")

    @abc.abstractmethod
    def transformation(self, hp: Mapping[str, Any], num_steps: int) -> optax.GradientTransformation:
        """The optax transformation at hyperparameters `hp` (floats or traced scalars) for a run of
        `num_steps` steps (the horizon of learning-rate schedules)."""

    def hyperparameters(self) -> dict[str, float]:
        """The configured hyperparameters as floats (booleans become 0.0/1.0)."""
        fields = dataclasses.fields(self)  # type: ignore[arg-type]  # every subclass is a dataclass
        return {f.name: float(getattr(self, f.name)) for f in fields}

    def build(self, num_steps: int, **overrides: Any) -> OptaxOptimizer:
        """The optimizer for `num_steps` steps, at the configured hyperparameters or `overrides`."""
        unknown = set(overrides) - set(self.hyperparameters())
        if unknown:
            raise TypeError(f"{type(self).__name__} has no hyperparameters {sorted(unknown)}")
        return OptaxOptimizer(self.transformation({**self.hyperparameters(), **overrides}, num_steps))

    def search_space(self, rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
        """`n` random-search configurations: log-uniform learning rates over `LR_SEARCH_RANGE`."""
        return {"lr": log_uniform(rng, *LR_SEARCH_RANGE, n)}


@dataclass(frozen=True)
class SGD(HandDesigned):
    lr: float = 0.1

    def transformation(self, hp: Mapping[str, Any], num_steps: int) -> optax.GradientTransformation:
        return optax.sgd(hp["lr"])


@dataclass(frozen=True)
class SGDM(HandDesigned):
    lr: float = 0.01
    momentum: float = 0.9

    def __post_init__(self):
        super().__post_init__()
        check(0 <= self.momentum < 1, "momentum", self.momentum, "in [0, 1)")

    def transformation(self, hp: Mapping[str, Any], num_steps: int) -> optax.GradientTransformation:
        return optax.sgd(hp["lr"], momentum=hp["momentum"])


def check_adam_moments(b1: float, b2: float, eps: float) -> None:
    check(0 <= b1 < 1 and 0 <= b2 < 1, "b1/b2", (b1, b2), "in [0, 1)")
    check(eps > 0, "eps", eps, "a positive float")


@dataclass(frozen=True)
class Adam(HandDesigned):
    lr: float = 1e-3
    b1: float = 0.9
    b2: float = 0.999
    eps: float = 1e-8

    def __post_init__(self):
        super().__post_init__()
        check_adam_moments(self.b1, self.b2, self.eps)

    def transformation(self, hp: Mapping[str, Any], num_steps: int) -> optax.GradientTransformation:
        return optax.adam(hp["lr"], hp["b1"], hp["b2"], hp["eps"])


def scale_by_adam_or_nadam(b1: Any, b2: Any, eps: Any, nesterov: Any) -> optax.GradientTransformation:
    """optax's Adam scaling, with Nesterov momentum (NAdam, Dozat 2016) when `nesterov` is 1. Both
    variants keep the same state, so a traced `nesterov` selects between them per configuration."""
    if not isinstance(nesterov, jax.Array):
        return optax.scale_by_adam(b1, b2, eps, nesterov=bool(nesterov))
    adam = optax.scale_by_adam(b1, b2, eps)
    nadam = optax.scale_by_adam(b1, b2, eps, nesterov=True)

    def update(updates, state, params=None):
        plain, new_state = adam.update(updates, state)
        accelerated, _ = nadam.update(updates, state)
        return jax.tree_util.tree_map(lambda a, b: jnp.where(nesterov > 0.5, b, a), plain, accelerated), new_state

    return optax.GradientTransformation(adam.init, update)


@dataclass(frozen=True)
class NAdamW(HandDesigned):
    """NAdamW of Practical tradeoffs, App. F: Adam or NAdam with L2 regularization (added to the
    gradient) and AdamW weight decay (scaled by the learning rate), under a warmup-constant-cosine
    schedule. Its 10 hyperparameters are the fields; `search_space` samples App. F.2."""

    lr: float = 1e-3
    b1: float = 0.9
    b2: float = 0.999
    eps: float = 1e-8
    l2_weight_decay: float = 0.0
    adamw_weight_decay: float = 0.0
    nesterov: bool = True
    warmup_fraction: float = 0.0
    constant_fraction: float = 0.0
    min_lr_mult: float = 0.0

    def __post_init__(self):
        super().__post_init__()
        check_adam_moments(self.b1, self.b2, self.eps)
        for name in ("l2_weight_decay", "adamw_weight_decay", "min_lr_mult"):
            check(getattr(self, name) >= 0, name, getattr(self, name), "a non-negative float")
        for name in ("warmup_fraction", "constant_fraction"):
            check(0 <= getattr(self, name) <= 1, name, getattr(self, name), "in [0, 1]")

    def transformation(self, hp: Mapping[str, Any], num_steps: int) -> optax.GradientTransformation:
        schedule = warmup_constant_cosine(hp["lr"], num_steps, hp["warmup_fraction"], hp["constant_fraction"],
                                          hp["min_lr_mult"])
        return optax.chain(
            optax.add_decayed_weights(hp["l2_weight_decay"]),
            scale_by_adam_or_nadam(hp["b1"], hp["b2"], hp["eps"], hp["nesterov"]),
            optax.add_decayed_weights(hp["adamw_weight_decay"]),
            optax.scale_by_learning_rate(schedule),
        )

    def search_space(self, rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
        """App. F.2: log-uniform lr in [1e-5, 1], 1-b1 in [1e-3, 1], 1-b2 in [1e-5, 1], eps in
        [1e-8, 1e4]; Nesterov half the time; both weight decays log-uniform in [1e-5, 0.1], with
        equal chances of keeping both, zeroing the L2 term or zeroing the AdamW term; half the
        time a min-lr multiplier log-uniform in [1e-5, 1] (else 0) and a warmup fraction
        log-uniform in [1e-5, 0.1] (else 0); a constant fraction uniform in [0, 1]."""
        which_decay = rng.integers(0, 3, n)
        return {
            "lr": log_uniform(rng, 1e-5, 1.0, n),
            "b1": 1.0 - log_uniform(rng, 1e-3, 1.0, n),
            "b2": 1.0 - log_uniform(rng, 1e-5, 1.0, n),
            "eps": log_uniform(rng, 1e-8, 1e4, n),
            "nesterov": (rng.random(n) < 0.5).astype(float),
            "l2_weight_decay": np.where(which_decay == 1, 0.0, log_uniform(rng, 1e-5, 0.1, n)),
            "adamw_weight_decay": np.where(which_decay == 2, 0.0, log_uniform(rng, 1e-5, 0.1, n)),
            "min_lr_mult": np.where(rng.random(n) < 0.5, log_uniform(rng, 1e-5, 1.0, n), 0.0),
            "warmup_fraction": np.where(rng.random(n) < 0.5, log_uniform(rng, 1e-5, 0.1, n), 0.0),
            "constant_fraction": rng.uniform(0.0, 1.0, n),
        }


REGISTRY = Registry("optimizer", {"sgd": SGD, "sgdm": SGDM, "adam": Adam, "nadamw": NAdamW})


def from_config(cfg: Mapping[str, Any]) -> HandDesigned:
    """The hand-designed optimizer config named by the `optimizer` node."""
    return REGISTRY.build(cfg, "optimizer")
