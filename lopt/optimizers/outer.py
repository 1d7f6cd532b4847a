"""Outer optimizers: the optax transformations that apply meta-gradients to theta."""
from dataclasses import dataclass
from typing import Any, Mapping

import optax

from lopt.config import Registry, check

REGISTRY = Registry("outer optimizer")


@REGISTRY.register("adam_clip")
@dataclass(frozen=True)
class AdamClip:
    """Adam after clipping every meta-gradient value to [-clip, clip] (seed 002 D.1)."""

    lr: float = 3e-3
    clip: float = 3.0
    b1: float = 0.9
    b2: float = 0.999
    eps: float = 1e-8

    def __post_init__(self):
        check(self.lr > 0, "lr", self.lr, "a positive float")
        check(self.clip > 0, "clip", self.clip, "a positive float")
        check(0 <= self.b1 < 1 and 0 <= self.b2 < 1, "b1/b2", (self.b1, self.b2), "in [0, 1)")
        check(self.eps > 0, "eps", self.eps, "a positive float")

    def transform(self) -> optax.GradientTransformation:
        return optax.chain(optax.clip(self.clip), optax.adam(self.lr, self.b1, self.b2, self.eps))


def build(cfg: Mapping[str, Any]) -> Any:
    """The outer optimizer named by the `outer_opt` config node."""
    return REGISTRY.build(cfg, "outer_opt")
