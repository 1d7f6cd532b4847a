"""Outer optimizers: the optax transformations that apply meta-gradients to theta."""
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import jax
import optax

from lopt import learned
from lopt.config import Registry, check
from lopt.io import theta_files
from lopt.learned.export import as_optax
from lopt.optimizers.hand_designed import check_adam_moments


class OuterOptimizer(Protocol):
    """An `outer_opt` config node, validated: it makes the transformation that updates theta."""

    def transform(self) -> optax.GradientTransformation: ...


@dataclass(frozen=True)
class SGD:
    """Plain (optionally heavy-ball momentum) SGD on the meta-gradient."""

    lr: float = 1e-3
    momentum: float = 0.0

    def __post_init__(self):
        check(self.lr > 0, "lr", self.lr, "a positive float")
        check(0 <= self.momentum < 1, "momentum", self.momentum, "in [0, 1)")

    def transform(self) -> optax.GradientTransformation:
        return optax.sgd(self.lr, self.momentum or None)


@dataclass(frozen=True)
class _AdamBase:
    """Adam's hyperparameters and their validation, shared by the clipped Adam variants."""

    lr: float = 3e-3
    b1: float = 0.9
    b2: float = 0.999
    eps: float = 1e-8

    def __post_init__(self):
        check(self.lr > 0, "lr", self.lr, "a positive float")
        check_adam_moments(self.b1, self.b2, self.eps)

    def adam(self) -> optax.GradientTransformation:
        return optax.adam(self.lr, self.b1, self.b2, self.eps)


@dataclass(frozen=True)
class AdamClip(_AdamBase):
    """Adam after clipping every meta-gradient value to [-clip, clip] (Metz et al. 2022, Practical
    tradeoffs between memory, compute, and performance in learned optimizers, arXiv:2203.11860,
    App. D.1)."""

    clip: float = 3.0

    def __post_init__(self):
        super().__post_init__()
        check(self.clip > 0, "clip", self.clip, "a positive float")

    def transform(self) -> optax.GradientTransformation:
        return optax.chain(optax.clip(self.clip), self.adam())


@dataclass(frozen=True)
class Adam(_AdamBase):
    """Adam after scaling the meta-gradient to global norm at most `max_norm` (null: no clipping)."""

    max_norm: float | None = 1.0

    def __post_init__(self):
        super().__post_init__()
        check(self.max_norm is None or self.max_norm > 0, "max_norm", self.max_norm,
              "a positive float or null")

    def transform(self) -> optax.GradientTransformation:
        if self.max_norm is None:
            return self.adam()
        return optax.chain(optax.clip_by_global_norm(self.max_norm), self.adam())


@dataclass(frozen=True)
class AdamW(_AdamBase):
    """AdamW (Adam with decoupled weight decay, optax.adamw) on the meta-gradient, after scaling it
    to global norm at most `max_norm` (null: no clipping): the outer optimizer of Celo (Moudgil,
    Knyazev, Lajoie, Belilovsky 2025, arXiv:2501.12670: learned_optimization's AdamW, weight decay
    1e-4, no clipping)."""

    weight_decay: float = 1e-4
    max_norm: float | None = None

    def __post_init__(self):
        super().__post_init__()
        check(self.weight_decay >= 0, "weight_decay", self.weight_decay, "a non-negative float")
        check(self.max_norm is None or self.max_norm > 0, "max_norm", self.max_norm, "a positive float or null")

    def transform(self) -> optax.GradientTransformation:
        adamw = optax.adamw(self.lr, self.b1, self.b2, self.eps, weight_decay=self.weight_decay)
        return adamw if self.max_norm is None else optax.chain(optax.clip_by_global_norm(self.max_norm), adamw)


@dataclass(frozen=True)
class LearnedOuter:
    """A learned optimizer trains theta: the building block of self-training (Metz et al. 2021,
    Training learned optimizers with randomly initialized learned optimizers), where learned
    optimizers train each other. `lopt` is a `lopt`-group node (architecture and options); `theta`
    names a meta-train run whose trained meta-parameters it uses (loaded by `transform`), else they
    are a fresh init from `seed`."""

    lopt: dict = field(default_factory=lambda: {"name": "small_fc_lopt"})
    seed: int = 0
    theta: str | None = None

    NODE = "outer_opt.lopt"  # the config path of `lopt`, for error messages

    def __post_init__(self):
        learned.build(self.lopt, self.NODE)
        theta_files.theta_path(self.theta, "outer_opt.theta")

    def transform(self) -> optax.GradientTransformationExtraArgs:
        lopt = learned.build(self.lopt, self.NODE)
        path = theta_files.theta_path(self.theta, "outer_opt.theta")
        theta = (lopt.init_theta(jax.random.PRNGKey(self.seed)) if path is None
                 else learned.load_theta(lopt, path, "outer_opt.theta"))
        return as_optax(lopt, theta)


REGISTRY = Registry("outer optimizer", {"sgd": SGD, "adam_clip": AdamClip, "adam": Adam, "adamw": AdamW,
                                        "lopt": LearnedOuter})


def build(cfg: Mapping[str, Any]) -> OuterOptimizer:
    """The outer optimizer named by the `outer_opt` config node."""
    return REGISTRY.build(cfg, "outer_opt")
