"""Parametric task families: a `family/` config option describes a space of task configs, and
`num_variants` of them are sampled from it with the option's `seed` when the run is built.

Each variant is an ordinary task config (its own shapes, so its own vectorized unroll, compiled
once); inner problems within a variant still draw their own initializations and data order. The
`family` node holds one entry per selected option (`family=[mlp_family,quadratic_family]`), each
with a `kind` that picks its class; no entry means no family (meta-training uses `task=`).
"""
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jax
import numpy as np

from lopt.config import Registry, check, join, to_plain
from lopt.data import DATASETS
from lopt.errors import ConfigError
from lopt.tasks.analytic import QuadraticConfig
from lopt.tasks.classification import LABELED, ClassificationConfig
from lopt.tasks.models import ACTIVATIONS

__all__ = ["KINDS", "MLPFamily", "QuadraticFamily", "load_data", "parse", "variants"]


def _check_range(name: str, value: tuple, lowest: float, kind: str = "numbers") -> None:
    """A `[low, high]` range with lowest <= low <= high."""
    check(len(value) == 2 and lowest <= value[0] <= value[1], name, list(value),
          f"a range [low, high] of {kind} with {lowest} <= low <= high")


def _check_choices(name: str, value: tuple, valid: Callable[[Any], bool], what: str) -> None:
    check(len(value) > 0 and all(valid(v) for v in value), name, list(value), f"a non-empty list of {what}")


class _Sampler:
    """Host-side draws from one jax.random key stream (a variant's), for building configs: 32-bit
    uniforms drawn a block at a time (one device call per block, not per draw)."""

    BLOCK = 32

    def __init__(self, key: jax.Array):
        self.key, self.block = key, np.zeros(0)

    def _u(self) -> float:
        """Uniform in [0, 1)."""
        if not len(self.block):
            self.key, sub = jax.random.split(self.key)
            self.block = np.asarray(jax.random.bits(sub, (self.BLOCK,), np.uint32), np.float64) / 2.0**32
        u, self.block = float(self.block[0]), self.block[1:]
        return u

    def choice(self, options: Sequence[Any]) -> Any:
        return options[int(self._u() * len(options))]

    def integer(self, low: int, high: int) -> int:
        """Uniform in [low, high]."""
        return low + int(self._u() * (high - low + 1))

    def uniform(self, low: float, high: float) -> float:
        return low + self._u() * (high - low)

    def log_uniform(self, low: float, high: float) -> float:
        return math.exp(self.uniform(math.log(low), math.log(high)))


@dataclass(frozen=True)
class MLPFamily:
    """`kind: mlp`: image-classification MLPs. Each variant draws a dataset from `datasets`, a
    depth in `depth` = [min, max] hidden layers, each layer's width from `widths`, one activation
    from `activations` and a batch size from `batch_sizes`."""

    num_variants: int = 4
    seed: int = 0
    datasets: tuple[str, ...] = ("digits",)
    image_size: int | None = None
    depth: tuple[int, ...] = (1, 3)
    widths: tuple[int, ...] = (16, 32, 64, 128)
    activations: tuple[str, ...] = tuple(ACTIVATIONS)
    batch_sizes: tuple[int, ...] = (32, 64, 128)
    loss_clip_factor: float = 1.5

    def __post_init__(self):
        check(self.num_variants > 0, "num_variants", self.num_variants, "a positive integer")
        _check_choices("datasets", self.datasets, LABELED.__contains__, f"datasets from {LABELED}")
        check(self.image_size is None or self.image_size > 0, "image_size", self.image_size,
              "null (each dataset's own size) or a positive integer")
        _check_range("depth", self.depth, 1, "integers")
        _check_choices("widths", self.widths, lambda w: w > 0, "positive integers")
        _check_choices("activations", self.activations, ACTIVATIONS.__contains__,
                       f"activations from {list(ACTIVATIONS)}")
        _check_choices("batch_sizes", self.batch_sizes, lambda b: b > 0, "positive integers")
        check(self.loss_clip_factor > 0, "loss_clip_factor", self.loss_clip_factor, "positive")

    def variant(self, name: str, draw: _Sampler) -> ClassificationConfig:
        dataset = draw.choice(self.datasets)
        hidden = tuple(draw.choice(self.widths) for _ in range(draw.integer(*self.depth)))
        return ClassificationConfig(
            name, dataset, self.image_size or DATASETS[dataset].shape[0], batch_size=draw.choice(self.batch_sizes),
            model="mlp", hidden=hidden, activation=draw.choice(self.activations),
            loss_clip_factor=self.loss_clip_factor)


@dataclass(frozen=True)
class QuadraticFamily:
    """`kind: quadratic`: noisy quadratics (lopt.tasks.analytic.QuadraticConfig). Each variant
    draws its dimension uniformly in `dim`, its smallest and largest curvature log-uniformly in
    `min_curvature` and `max_curvature`, its gradient-noise std uniformly in `noise_std` and its
    own problem_seed (so its curvatures and optimum)."""

    num_variants: int = 4
    seed: int = 0
    dim: tuple[int, ...] = (2, 64)
    min_curvature: tuple[float, ...] = (1e-3, 1e-1)
    max_curvature: tuple[float, ...] = (1.0, 100.0)
    noise_std: tuple[float, ...] = (0.0, 1.0)
    init_scale: float = 1.0
    loss_clip_factor: float = 1.5

    def __post_init__(self):
        check(self.num_variants > 0, "num_variants", self.num_variants, "a positive integer")
        _check_range("dim", self.dim, 1, "integers")
        _check_range("min_curvature", self.min_curvature, 1e-12)
        _check_range("max_curvature", self.max_curvature, 1e-12)
        check(self.min_curvature[1] <= self.max_curvature[0], "min_curvature", list(self.min_curvature),
              f"a range that ends at or below the start of max_curvature={list(self.max_curvature)}")
        _check_range("noise_std", self.noise_std, 0.0)
        check(self.init_scale >= 0, "init_scale", self.init_scale, "non-negative")
        check(self.loss_clip_factor > 0, "loss_clip_factor", self.loss_clip_factor, "positive")

    def variant(self, name: str, draw: _Sampler) -> QuadraticConfig:
        return QuadraticConfig(
            name, dim=draw.integer(*self.dim), min_curvature=draw.log_uniform(*self.min_curvature),
            max_curvature=draw.log_uniform(*self.max_curvature), init_scale=self.init_scale,
            noise_std=draw.uniform(*self.noise_std), problem_seed=draw.integer(0, 2**31 - 2),
            loss_clip_factor=self.loss_clip_factor)


KINDS = Registry("family kind", {"mlp": MLPFamily, "quadratic": QuadraticFamily}, key="kind")
Family = MLPFamily | QuadraticFamily


def parse(node: Mapping[str, Any], path: str) -> Family:
    """The validated family of one `family.<option>` node (its `kind` picks the class)."""
    return KINDS.build(node, path)


def sample(family: Family, option: str) -> list:
    """The family's `num_variants` task configs, named `<option>_<i>`; variant i depends only on
    the family's settings, its seed and i."""
    key = jax.random.PRNGKey(family.seed)
    return [family.variant(f"{option}_{i}", _Sampler(jax.random.fold_in(key, i)))
            for i in range(family.num_variants)]


def variants(node: Mapping[str, Any] | None, path: str = "family") -> list:
    """The task configs of every family in the `family` config node, in its order; an empty list
    when the node is missing or empty (no family: meta-training uses `task=`)."""
    values = to_plain(node) or {}
    if not isinstance(values, dict):
        raise ConfigError(f"{path}={values!r} is invalid: it must be a mapping of family options "
                          f"(select them with family=<option> or family=[<option>,<option>]).")
    return [cfg for option, sub in values.items() for cfg in sample(parse(sub, join(path, option)), option)]


def load_data(configs: Sequence[Any], load: Callable[[Any], Any]) -> tuple:
    """`load(cfg)` of every config, each distinct (dataset, example size) loaded once and shared,
    so variants on one dataset hold one copy of it on the device."""
    loaded: dict[tuple, Any] = {}
    for cfg in configs:
        key = (cfg.dataset, getattr(cfg, "example_size", None))
        if key not in loaded:
            loaded[key] = load(cfg)
    return tuple(loaded[(cfg.dataset, getattr(cfg, "example_size", None))] for cfg in configs)
