"""Baseline sweeps: a hand-designed optimizer over many hyperparameter configurations x seeds at once.

Every configuration and seed trains in one compiled call: the swept hyperparameters are traced
values (`vmap` over configurations, or `lax.map` in chunks of `batch_size` when memory is short),
the seeds a second `vmap`, each training the `lopt.training.curves` curves. Configurations come from a
learning-rate grid or from the optimizer's random-search space (Metz et al. 2022, Practical tradeoffs
between memory, compute, and performance in learned optimizers, arXiv:2203.11860, App. F). A
configuration whose loss went non-finite on a seed is marked diverged; its statistics use only its
finite seeds, and it ranks after every converged configuration.
"""
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import numpy as np
from jax.sharding import Mesh
from rich.console import Console

from lopt import data as data_lib
from lopt.base import PRNGKey, Task
from lopt.config import check
from lopt.optimizers.hand_designed import HandDesigned
from lopt.platform import distributed, memory
from lopt.training import curves

CRITERIA = {  # name -> curve whose value (at the end, or averaged over training) ranks configurations
    "final_train_loss": ("eval/train/loss", "final"),
    "mean_train_loss": ("eval/train/loss", "mean"),
    "final_test_loss": ("eval/test/loss", "final"),
}


def half_decade_grid(low: float, high: float) -> tuple[float, ...]:
    """1, 3 x 10^k learning rates from `low` to `high` (the grids of Practical tradeoffs, §2.1)."""
    values = []
    for k in range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1):
        values += [m * 10.0**k for m in (1, 3) if low * (1 - 1e-9) <= m * 10.0**k <= high * (1 + 1e-9)]
    return tuple(values)


@dataclass(frozen=True)
class SweepSettings:
    """The `sweep` node. Grid search over learning rates (an explicit list, or a half-decade grid
    over `lr_range`) with the other hyperparameters as configured, or, with `num_samples`, random
    search over the optimizer's whole search space. `batch_size` caps how many configurations
    train at once (memory); `criterion` picks the best configuration."""

    lrs: tuple[float, ...] = (1e-4, 3e-4, 1e-3, 3e-3, 5e-3, 7e-3, 1e-2, 2e-2, 3e-2)
    lr_range: tuple[float, ...] | None = None
    num_samples: int | None = None
    batch_size: int | None = None
    criterion: str = "mean_train_loss"

    def __post_init__(self):
        check(len(self.lrs) > 0 and all(lr > 0 for lr in self.lrs), "lrs", self.lrs,
              "a non-empty list of positive floats")
        check(self.lr_range is None or (len(self.lr_range) == 2 and 0 < self.lr_range[0] <= self.lr_range[1]),
              "lr_range", self.lr_range, "null or [low, high] with 0 < low <= high")
        for name in ("num_samples", "batch_size"):
            check(getattr(self, name) is None or getattr(self, name) > 0, name, getattr(self, name),
                  "null or a positive integer")
        check(self.criterion in CRITERIA, "criterion", self.criterion, f"one of {sorted(CRITERIA)}")

    @property
    def grid(self) -> tuple[float, ...]:
        return self.lrs if self.lr_range is None else half_decade_grid(*self.lr_range)

    def configurations(self, optimizer: HandDesigned, seed: int) -> dict[str, np.ndarray]:
        """The swept hyperparameters, each an array over configurations."""
        if self.num_samples is None:
            return {"lr": np.asarray(self.grid)}
        return optimizer.search_space(np.random.default_rng(seed), self.num_samples)


def sweep_curves(task: Task, optimizer: HandDesigned, hparams: Mapping[str, jax.Array], data: data_lib.Dataset | None,
                 key: PRNGKey, s: curves.CurveSettings, batch_size: int | None = None,
                 mesh: Mesh | None = None, schedule_steps: int | None = None) -> dict[str, jax.Array]:
    """Curves of every configuration x seed, leaves [configurations, num_seeds, ...]. `hparams`
    holds the swept hyperparameters (arrays over configurations, traced); the rest are as
    configured. All configurations use the same seeds (initializations and batches), so they
    differ only by their hyperparameters. `batch_size` configurations train at once, split over
    the devices of `mesh` (lopt.platform.distributed). Learning-rate schedules span `schedule_steps`
    (default: the whole run) and hold their last value after it."""
    keys = curves.seed_keys(key, s)

    def one_configuration(hp):
        opt = optimizer.build(schedule_steps or s.num_steps, **hp)
        return jax.vmap(lambda k: curves.seed_curves(task, opt, None, data, k, s))(keys)

    return distributed.map_sharded(one_configuration, hparams, mesh, batch_size)


def compile_sweep(task: Task, task_name: str, optimizer: HandDesigned, args: tuple[Any, Any, Any],
                  s: curves.CurveSettings, sweep: SweepSettings, mesh: Mesh, console: Console,
                  schedule_steps: int | None = None) -> tuple[Any, float]:
    """`sweep_curves` of the configurations in `args` (hyperparameters, data, key) compiled ahead of
    time, after checking that the configurations trained at once (all, or `sweep.batch_size`) fit
    in the devices' memory (`lopt.platform.memory`); and the seconds it took. Call it as `compiled(*args)`."""
    count = len(next(iter(args[0].values())))
    at_once = min(sweep.batch_size or count, count)
    subject = (f"Training {count} configurations x {s.num_seeds} seeds "
               + ("at once" if at_once == count else f"{at_once} configurations at a time "
                                                      f"(sweep.batch_size={sweep.batch_size})"))
    sizing = memory.Sizing(
        "sweep.batch_size", at_once, f"{s.num_steps} steps of {task_name} per configuration and seed",
        "set sweep.batch_size={largest} (configurations then train that many at a time, in the same compiled "
        "call), or lower num_seeds", "lower num_seeds, or use a smaller task", mesh.size, subject)
    jitted = jax.jit(sweep_curves, static_argnums=(0, 1, 5, 6, 7, 8))
    return memory.compile_checked(
        lambda: jitted.lower(task, optimizer, *args, s, sweep.batch_size, mesh, schedule_steps), console,
        "the sweep", sizing, mesh,
        lambda fp: fp.arguments + fp.outputs)  # the results of all configurations stay


class Stat(NamedTuple):
    """A metric over a configuration's finite seeds: mean and standard deviation (None when every
    seed diverged)."""

    mean: float | None
    std: float | None

    @classmethod
    def of(cls, values: np.ndarray) -> "Stat":
        finite = values[np.isfinite(values)]
        return cls(float(finite.mean()), float(finite.std())) if finite.size else cls(None, None)


@dataclass(frozen=True)
class Configuration:
    """One swept configuration's result: its full hyperparameters, how many seeds diverged, each
    metric's `Stat` over seeds (`final/<curve>`: at the last evaluation, `mean/<curve>`: averaged
    over training) and the curves, [seeds, evaluations] each (non-finite values as NaN). As
    sweep.json and best.json hold it: `to_json`, `from_json`."""

    hyperparameters: dict[str, float]
    diverged_seeds: int
    metrics: dict[str, Stat]
    curves: dict[str, list]

    @property
    def diverged(self) -> bool:
        return self.diverged_seeds > 0

    def value(self, criterion: str) -> float:
        """The value that ranks configurations by `criterion` (one of CRITERIA), lower first;
        infinite for a configuration with a diverged seed."""
        name, how = CRITERIA[criterion]
        value = self.metrics[f"{how}/{name}"].mean
        return math.inf if value is None or self.diverged else value

    def to_json(self) -> dict[str, Any]:
        return {"hyperparameters": self.hyperparameters, "diverged_seeds": self.diverged_seeds,
                "diverged": self.diverged, "metrics": {k: v._asdict() for k, v in self.metrics.items()},
                "curves": self.curves}

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> "Configuration":
        return cls(dict(doc["hyperparameters"]), int(doc["diverged_seeds"]),
                   {k: Stat(**v) for k, v in doc["metrics"].items()}, dict(doc["curves"]))


def configuration_results(hparams: list[dict[str, float]], curves: dict[str, np.ndarray]) -> list[Configuration]:
    """Per configuration (its full hyperparameters): the statistics over seeds of the final and
    average value of every evaluated curve, the curves, and how many seeds diverged."""
    results = []
    for i, hp in enumerate(hparams):
        c = {name: v[i] for name, v in curves.items()}  # [seeds, ...]
        metrics = {}
        for name, v in c.items():
            if name.startswith("eval/"):
                metrics[f"final/{name}"] = Stat.of(v[:, -1])
                metrics[f"mean/{name}"] = Stat.of(v.mean(axis=1))
        results.append(Configuration(
            hp, int((~np.isfinite(c["train/loss"])).any(axis=1).sum()), metrics,
            {name: np.where(np.isfinite(v), v, np.nan).tolist() for name, v in c.items()}))
    return results
