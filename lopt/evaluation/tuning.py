"""Making a suite task's baseline: a hand-designed optimizer's sweep over `horizon_mult` times the
task's length, widened until the best learning rate (at the task's length) is inside the grid, stored
under the task's key (`lopt.evaluation.baselines`)."""
import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh
from rich.console import Console

from lopt import tasks
from lopt.config import config_file, override_value
from lopt.data.settings import DataSettings
from lopt.errors import ConfigError, UserError, unknown_choice
from lopt.evaluation import scores
from lopt.evaluation.baselines import BASELINE_SEEDS, BaselineSettings, BaselineStore, key_fields
from lopt.evaluation.suite import Suite, SuiteTask
from lopt.optimizers import hand_designed
from lopt.optimizers.hand_designed import HandDesigned
from lopt.training import curves
from lopt.training.sweep import SweepSettings, compile_sweep, half_decade_grid

NUM_SEEDS = 5  # seeds of a baseline made by `lopt evaluate baselines.run_missing=true` (baseline-sweep's default)
WIDENINGS = 2  # at most this many decades are added on the side where the best learning rate sits


@dataclass(frozen=True)
class Tuning:
    """How every task of a suite is tuned: the optimizer (and its config's name), the search
    (`sweep.num_samples` random configurations, else the learning-rate `grid`), the seeds, the
    smoothing that picks the best configuration as the scores measure losses, and how many times
    each task's length the baseline runs (`horizon_mult`)."""

    optimizer: HandDesigned
    name: str
    sweep: SweepSettings
    grid: tuple[float, ...]
    num_seeds: int
    seed: int
    smoothing: float
    data: DataSettings
    horizon_mult: int

    @classmethod
    def of(cls, optimizer: HandDesigned, name: str, sweep: SweepSettings, suite: Suite, num_seeds: int, seed: int,
           smoothing: float, data: DataSettings, horizon_mult: int) -> "Tuning":
        """The tuning of `suite`'s tasks: the grid is `sweep.lr_range`'s when given, else the suite's."""
        grid = sweep.grid if sweep.lr_range is not None else half_decade_grid(*suite.lr_range)
        return cls(optimizer, name, sweep, grid, num_seeds, seed, smoothing, data, horizon_mult)

    def swept(self) -> list[str]:
        if self.sweep.num_samples is None:
            return ["lr"]
        return sorted(self.optimizer.search_space(np.random.default_rng(0), 1))

    def fields(self, entry: SuiteTask) -> dict[str, Any]:
        return key_fields(entry.config, entry.num_steps, self.horizon_mult, self.optimizer, self.name, self.swept(),
                          self.data)

    def configurations(self) -> dict[str, np.ndarray]:
        if self.sweep.num_samples is None:
            return {"lr": np.asarray(self.grid)}
        return self.optimizer.search_space(np.random.default_rng(self.seed), self.sweep.num_samples)


def best_configuration(train_loss: np.ndarray, num_steps: int, smoothing: float, loss_clip: float) -> int:
    """The configuration with the lowest seed-mean smoothed training loss after `num_steps` steps
    (the task's length; the baseline's curves [configurations, seeds, steps] may run longer)."""
    return int(np.argmin([scores.final_losses(c[:, :num_steps], smoothing, loss_clip).mean() for c in train_loss]))


def widened(grid: list[float], best: float) -> list[float]:
    """The half-decade learning rates of the next decade beyond the grid's edge where `best` lies
    (none when it lies inside)."""
    low, high = min(grid), max(grid)
    if best == low:
        return [lr for lr in half_decade_grid(low / 10, low) if lr < low * (1 - 1e-9)]
    if best == high:
        return [lr for lr in half_decade_grid(high, high * 10) if lr > high * (1 + 1e-9)]
    return []


def tune(entry: SuiteTask, eval_every: int, t: Tuning, store: BaselineStore, mesh: Mesh, console: Console,
         write: bool = True) -> tuple[dict[str, Any], dict[str, Any]]:
    """Sweep `entry` with `t` over `t.horizon_mult` times its length (a learning-rate schedule, e.g.
    NAdamW's, spans the task's length as when the tuned optimizer is evaluated, then holds its last
    value: the first num_steps of the baseline are that optimizer's run), widen a learning-rate grid whose
    best value (at the task's length) is at its edge (up to `WIDENINGS` decades), store the baseline
    (when `write`: process 0 of a multi-process run) and return its summary row and the baseline (as
    `BaselineStore.load` would read it back)."""
    num_steps = entry.num_steps * t.horizon_mult
    console.print(f"[bold]{entry.name}[/]: tuning {t.name} ({entry.num_steps} steps, the baseline runs {num_steps})",
                  highlight=False)
    task = tasks.build(entry.config)
    dataset = tasks.load_data(entry.config, t.data, t.seed)
    s = curves.CurveSettings(t.seed, t.num_seeds, num_steps, eval_every)
    key = jax.random.fold_in(jax.random.PRNGKey(t.seed), BASELINE_SEEDS)
    swept = t.configurations()
    compiled: dict[int, Any] = {}  # configurations trained at once -> program (a widening reuses one)
    compile_s = 0.0

    def train(values: dict[str, np.ndarray]) -> np.ndarray:
        nonlocal compile_s
        args = ({k: jnp.asarray(v, jnp.float32) for k, v in values.items()}, dataset, key)
        count = len(values["lr"])
        if count not in compiled:
            compiled[count], seconds = compile_sweep(task, entry.name, t.optimizer, args, s, t.sweep, mesh, console,
                                                     schedule_steps=entry.num_steps)
            compile_s += seconds
        with console.status(f"{entry.name}: {count} configurations x {t.num_seeds} seeds x {num_steps} steps"):
            return np.asarray(jax.device_get(compiled[count](*args)["train/loss"]), float)

    train_loss = train(swept)
    best = best_configuration(train_loss, entry.num_steps, t.smoothing, task.loss_clip)
    for _ in range(WIDENINGS if t.sweep.num_samples is None else 0):
        extra = widened(list(swept["lr"]), float(swept["lr"][best]))
        if not extra:
            break
        console.print(f"{entry.name}: the best learning rate {swept['lr'][best]:.3g} is at the grid's edge; "
                      f"adding {', '.join(f'{lr:.3g}' for lr in extra)}", markup=False, highlight=False)
        swept = {"lr": np.concatenate([swept["lr"], extra])}
        train_loss = np.concatenate([train_loss, train({"lr": np.asarray(extra)})])
        best = best_configuration(train_loss, entry.num_steps, t.smoothing, task.loss_clip)
    at_edge = None
    if t.sweep.num_samples is None and widened(list(swept["lr"]), float(swept["lr"][best])):
        at_edge = "low" if swept["lr"][best] == min(swept["lr"]) else "high"
    hyperparameters = [{**t.optimizer.hyperparameters(), **{k: float(v[i]) for k, v in swept.items()}}
                       for i in range(len(swept["lr"]))]
    baseline = store.document(t.fields(entry), hyperparameters, train_loss, best, at_edge)
    if write:
        store.write(baseline)
    final = scores.final_losses(train_loss[best][:, :entry.num_steps], t.smoothing, task.loss_clip).mean()
    return {"task": entry.name, "configurations": len(hyperparameters), "best_lr": hyperparameters[best]["lr"],
            "best_final_loss": float(final), "at_edge": at_edge, "compile_s": round(compile_s, 2),
            "file": baseline["path"]}, baseline


def command(suite: str, optimizer: str, search: str, store: str, data: DataSettings, horizon_mult: int) -> str:
    """The one command that makes a suite's baselines of `optimizer`."""
    words = [f"lopt baseline-sweep suite={suite} optimizer={optimizer}"]
    if search == "random":
        words.append("sweep.num_samples=<N>")
    if store != BaselineSettings.dir:
        words.append(f"baselines.dir={store}")
    if horizon_mult != BaselineSettings.horizon_mult:
        words.append(f"baselines.horizon_mult={horizon_mult}")
    words += [f"data.{f.name}={override_value(getattr(data, f.name))}" for f in dataclasses.fields(DataSettings)
              if getattr(data, f.name) != f.default]  # the data the baselines are keyed on
    return " ".join(words)


def suite_tuning(optimizer: HandDesigned, name: str, search: str, suite: Suite, seed: int, smoothing: float,
                 data: DataSettings, horizon_mult: int) -> Tuning:
    """A suite's baselines of `optimizer`: what their keys hold, and how a missing one is made
    (baseline-sweep's defaults: a grid over the suite's range). Only a grid is ever run from here;
    for a random search (num_samples set) only the hyperparameters it tunes matter."""
    sweep = SweepSettings(num_samples=None if search == "grid" else 1)
    return Tuning.of(optimizer, name, sweep, suite, NUM_SEEDS, seed, smoothing, data, horizon_mult)


class References(NamedTuple):
    """A suite's tuned reference baselines: how they are keyed and made, where they are stored, and
    those found (a task without one is absent)."""

    tuning: Tuning
    store: BaselineStore
    found: dict[str, dict[str, Any]]


def references(suite: Suite, b: BaselineSettings, seed: int, smoothing: float, data: DataSettings,
               node: str = "baselines", sources: Sequence[str] | None = None) -> References:
    """The stored reference baselines of `suite` (config node `node`): a missing one is an error
    naming the commands that make them, unless `b.run_missing` (then `complete` makes it).
    `sources`: the shipped suites whose `lopt baseline-sweep` makes every baseline of `suite`
    (default: `suite` itself; none when `suite` holds tasks outside a shipped suite)."""
    if b.optimizer not in hand_designed.REGISTRY.names():
        raise unknown_choice(f"{node}.optimizer", b.optimizer, hand_designed.REGISTRY.names())
    make = " and ".join(command(name, b.optimizer, b.search, b.dir, data, b.horizon_mult)
                        for name in ([suite.name] if sources is None else sources)) or None
    if b.search == "random" and b.run_missing:
        raise ConfigError(f"{node}.run_missing=true sweeps a learning-rate grid; a random-search baseline "
                          f"({node}.search=random) is made by "
                          + (f"`{make}`." if make else f"`lopt baseline-sweep suite=<name> sweep.num_samples=<N>` "
                                                       f"for a shipped suite's tasks only: use {node}.search=grid."))
    reference = hand_designed.from_config(config_file("optimizer", f"{b.optimizer}.yaml"))
    t = suite_tuning(reference, b.optimizer, b.search, suite, seed, smoothing, data, b.horizon_mult)
    store = BaselineStore(b.dir)
    found: dict[str, dict[str, Any]] = {}
    for entry in suite.tasks:
        try:
            found[entry.name] = store.load(t.fields(entry), make, node)
        except UserError:
            if not b.run_missing:
                raise
    return References(t, store, found)


def complete(refs: References, suite: Suite, mesh: Mesh, console: Console, write: bool) -> dict[str, dict[str, Any]]:
    """Every task's reference baseline: the stored ones, and the missing ones swept now (used as
    swept, not read back: every process of a multi-process run has them, not only the writer)."""
    found = dict(refs.found)
    for entry in suite.tasks:
        if entry.name not in found:
            console.print(f"{entry.name}: no {refs.tuning.name} baseline yet; sweeping it first",
                          markup=False, highlight=False)
            _, found[entry.name] = tune(entry, suite.eval_every, refs.tuning, refs.store, mesh, console, write=write)
    return found
