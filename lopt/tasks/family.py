"""Parametric task families: a `family/` config option describes a space of task configs, and
`num_variants` of them are sampled from it with the option's `seed` when the run is built.

Each variant is an ordinary task config (its own shapes, so its own vectorized unroll, compiled
once), and, for a family that samples horizons, the number of steps its inner problems train
(else the run's schedule decides); inner problems within a variant still draw their own
initializations and data order. The `family` node holds one entry per selected option
(`family=[mlp_family,quadratic_family]`), each with a `kind` that picks its class; no entry means
no family (meta-training uses `task=`).
"""
import functools
import math
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, NamedTuple

import jax
import numpy as np

from lopt.config import Registry, check, join, to_plain
from lopt.data import DATASETS
from lopt.errors import ConfigError
from lopt.tasks.analytic import QuadraticConfig
from lopt.tasks.autoencoder import AutoencoderConfig
from lopt.tasks.base import num_params
from lopt.tasks.classification import LABELED, ClassificationConfig
from lopt.tasks.language import LanguageModelConfig
from lopt.tasks.models import ACTIVATIONS
from lopt.tasks.vector import VectorConfig

__all__ = ["KINDS", "MLPFamily", "OfflineFamily", "QuadraticFamily", "Variant", "load_data", "parse", "variants"]


class Variant(NamedTuple):
    """One sampled task config, and the steps its inner problems train (None: the schedule's)."""

    config: Any
    horizon: int | None = None


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

    def variant(self, name: str, draw: _Sampler) -> Variant:
        dataset = draw.choice(self.datasets)
        hidden = tuple(draw.choice(self.widths) for _ in range(draw.integer(*self.depth)))
        return Variant(ClassificationConfig(
            name, dataset, self.image_size or DATASETS[dataset].shape[0], batch_size=draw.choice(self.batch_sizes),
            model="mlp", hidden=hidden, activation=draw.choice(self.activations),
            loss_clip_factor=self.loss_clip_factor))


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

    def variant(self, name: str, draw: _Sampler) -> Variant:
        return Variant(QuadraticConfig(
            name, dim=draw.integer(*self.dim), min_curvature=draw.log_uniform(*self.min_curvature),
            max_curvature=draw.log_uniform(*self.max_curvature), init_scale=self.init_scale,
            noise_std=draw.uniform(*self.noise_std), problem_seed=draw.integer(0, 2**31 - 2),
            loss_clip_factor=self.loss_clip_factor))


# The model kinds each offline dataset trains (OfflineFamily): MLP classifiers or regressors, a
# 1-D convnet on signals, an MLP autoencoder on image patches, a byte-level LSTM language model.
FITS: dict[str, tuple[str, ...]] = {
    "digits": ("mlp",), "mnist1d": ("mlp", "conv1d"), "breast_cancer": ("mlp",), "wine": ("mlp",),
    "diabetes": ("mlp",), "sample_patches": ("autoencoder",), "python_stdlib": ("lstm",),
}
MODELS = ("mlp", "conv1d", "autoencoder", "lstm")
EMBED_DIMS = (16, 32, 64)  # an LSTM variant's byte-embedding width is one of these
SEQ_LEN = 32  # an LSTM variant's window, in bytes
MAX_DRAWS = 1000  # draws per variant before a family whose bounds nothing meets is refused


def _cost(cfg: Any) -> float:
    """A variant's per-step cost: parameters x batch x the positions every weight is applied at
    (a convnet's signal length, an LSTM's window; 1 for an MLP), from shapes alone (computed once
    per architecture: redrawn variants repeat them)."""
    return _architecture_cost(_architecture(cfg))


@functools.cache
def _architecture_cost(cfg: Any) -> float:
    params = num_params(jax.eval_shape(cfg.build().init, jax.random.PRNGKey(0)))
    positions = SEQ_LEN if isinstance(cfg, LanguageModelConfig) else (
        cfg.example_size if getattr(cfg, "model", None) == "conv1d" else 1)
    return float(params * cfg.batch_size * positions)


def _architecture(cfg: Any) -> Any:
    """`cfg` without what does not make it another task for exclusion: its name, its init scale."""
    return replace(cfg, name="", init_scale=1.0)


SuiteTasks = Callable[[str], Sequence[Any]]  # a suite's name -> its task configs (what a family excludes)


@dataclass(frozen=True)
class OfflineFamily:
    """`kind: offline`: every dataset that runs offline, with the model kinds that fit it (`FITS`).

    Each variant draws, in this order: a dataset from `datasets`; a model kind from `models` that
    fits it; a depth in `depth` = [min, max] and each layer's width from `widths` (an MLP's hidden
    layers, a 1-D convnet's channels, each with stride 1 or 2 and kernel 5; an autoencoder's
    encoder widths in decreasing order, mirrored by its decoder; an LSTM's units, one layer, with a
    byte embedding from EMBED_DIMS); an activation from `activations` (MLPs and convnets); a batch
    size from `batch_sizes`; an init scale log-uniform in `init_scale` (every initial weight
    multiplied by it); and a horizon log-uniform in `horizon`, the steps its inner problems train.

    A draw is redrawn (from the same stream, so the sample stays seeded) while its per-step cost
    (`_cost`: parameters x batch x positions) exceeds `max_cost`, so that a meta-batch of variants
    fits a CPU, or while it has the architecture of a task of `exclude_suite` on its dataset (its
    tasks stay unseen by meta-training on this family).
    """

    num_variants: int = 16
    seed: int = 0
    datasets: tuple[str, ...] = tuple(FITS)
    models: tuple[str, ...] = MODELS
    depth: tuple[int, ...] = (1, 3)
    widths: tuple[int, ...] = (16, 32, 64, 128, 256)
    activations: tuple[str, ...] = tuple(ACTIVATIONS)
    batch_sizes: tuple[int, ...] = (16, 32, 64, 128)
    init_scale: tuple[float, ...] = (0.5, 2.0)
    horizon: tuple[int, ...] = (50, 3000)
    max_cost: float = 1.0e7
    exclude_suite: str | None = "offline_heldout"
    loss_clip_factor: float = 1.5

    def __post_init__(self):
        check(self.num_variants > 0, "num_variants", self.num_variants, "a positive integer")
        _check_choices("datasets", self.datasets, FITS.__contains__, f"offline datasets from {list(FITS)}")
        _check_choices("models", self.models, MODELS.__contains__, f"model kinds from {list(MODELS)}")
        for dataset in self.datasets:
            check(any(m in self.models for m in FITS[dataset]), "models", list(self.models),
                  f"a list with a model kind for every dataset ({dataset} trains one of {list(FITS[dataset])})")
        _check_range("depth", self.depth, 1, "integers")
        _check_choices("widths", self.widths, lambda w: w > 0, "positive integers")
        _check_choices("activations", self.activations, ACTIVATIONS.__contains__,
                       f"activations from {list(ACTIVATIONS)}")
        _check_choices("batch_sizes", self.batch_sizes, lambda b: b > 0, "positive integers")
        _check_range("init_scale", self.init_scale, 1e-12)
        _check_range("horizon", self.horizon, 1, "integers")
        check(self.max_cost > 0, "max_cost", self.max_cost, "positive")
        check(self.loss_clip_factor > 0, "loss_clip_factor", self.loss_clip_factor, "positive")

    def _draw(self, name: str, dataset: str, model: str, draw: _Sampler) -> Any:
        """One draw of everything but the dataset and the model kind."""
        widths = tuple(draw.choice(self.widths) for _ in range(draw.integer(*self.depth)))
        activation, batch_size = draw.choice(self.activations), draw.choice(self.batch_sizes)
        common = {"batch_size": batch_size, "init_scale": draw.log_uniform(*self.init_scale)}
        if model == "lstm":
            return LanguageModelConfig(name, dataset, SEQ_LEN, embed_dim=draw.choice(EMBED_DIMS), hidden=widths[0],
                                       loss_clip_factor=self.loss_clip_factor, **common)
        if model == "autoencoder":
            encoder = tuple(sorted(widths, reverse=True))
            return AutoencoderConfig(name, dataset, DATASETS[dataset].shape[0],
                                     hidden=encoder + encoder[-2::-1], **common)
        net = {"activation": activation, "loss_clip_factor": self.loss_clip_factor, **common}
        if model == "conv1d":
            strides = tuple(draw.choice((1, 2)) for _ in widths)
            return VectorConfig(name, dataset, model="conv1d", channels=widths, strides=strides, kernel_size=5, **net)
        if dataset in DATASETS:
            return ClassificationConfig(name, dataset, DATASETS[dataset].shape[0], model="mlp", hidden=widths, **net)
        return VectorConfig(name, dataset, model="mlp", hidden=widths, **net)

    def variant(self, name: str, draw: _Sampler, excluded: Collection[Any] = ()) -> Variant:
        """The dataset and model kind are drawn once (so the cost bound does not skew them); the
        rest is redrawn until the variant is within bounds and its architecture (`_architecture`)
        not in `excluded` (those of `exclude_suite`'s tasks)."""
        dataset = draw.choice(self.datasets)
        model = draw.choice([m for m in FITS[dataset] if m in self.models])
        for _ in range(MAX_DRAWS):
            cfg = self._draw(name, dataset, model, draw)
            horizon = round(draw.log_uniform(*self.horizon))
            if _architecture(cfg) not in excluded and _cost(cfg) <= self.max_cost:
                return Variant(cfg, horizon)
        raise ConfigError(f"max_cost={self.max_cost:g} is invalid for this family: no {model} on {dataset} of "
                          f"{MAX_DRAWS} draws costs at most that (parameters x batch x positions) outside suite "
                          f"{self.exclude_suite}; raise max_cost or narrow widths, depth and batch_sizes.")


KINDS = Registry("family kind", {"mlp": MLPFamily, "quadratic": QuadraticFamily, "offline": OfflineFamily},
                 key="kind")
Family = MLPFamily | QuadraticFamily | OfflineFamily


def parse(node: Mapping[str, Any], path: str) -> Family:
    """The validated family of one `family.<option>` node (its `kind` picks the class)."""
    return KINDS.build(node, path)


def sample(family: Family, option: str, suite_tasks: SuiteTasks | None = None) -> list[Variant]:
    """The family's `num_variants` variants, named `<option>_<i>`; variant i depends only on the
    family's settings, its seed and i. `suite_tasks` gives the tasks of an offline family's
    `exclude_suite` (the suites are built on tasks, so the caller resolves them)."""
    key = jax.random.PRNGKey(family.seed)
    draw = family.variant
    if isinstance(family, OfflineFamily) and family.exclude_suite:
        if suite_tasks is None:
            raise ValueError(f"exclude_suite={family.exclude_suite}: sample() needs suite_tasks to resolve it")
        draw = functools.partial(family.variant, excluded={_architecture(c) for c in suite_tasks(family.exclude_suite)})
    return [draw(f"{option}_{i}", _Sampler(jax.random.fold_in(key, i))) for i in range(family.num_variants)]


def variants(node: Mapping[str, Any] | None, path: str = "family", suite_tasks: SuiteTasks | None = None
             ) -> list[Variant]:
    """The variants of every family in the `family` config node, in its order (`sample`); an empty
    list when the node is missing or empty (no family: meta-training uses `task=`)."""
    values = to_plain(node) or {}
    if not isinstance(values, dict):
        raise ConfigError(f"{path}={values!r} is invalid: it must be a mapping of family options "
                          f"(select them with family=<option> or family=[<option>,<option>]).")
    return [v for option, sub in values.items() for v in sample(parse(sub, join(path, option)), option, suite_tasks)]


def load_data(configs: Sequence[Any], load: Callable[[Any], Any]) -> tuple:
    """`load(cfg)` of every config, each distinct (dataset, example size) loaded once and shared,
    so variants on one dataset hold one copy of it on the device."""
    loaded: dict[tuple, Any] = {}
    for cfg in configs:
        key = (cfg.dataset, getattr(cfg, "example_size", None))
        if key not in loaded:
            loaded[key] = load(cfg)
    return tuple(loaded[(cfg.dataset, getattr(cfg, "example_size", None))] for cfg in configs)
