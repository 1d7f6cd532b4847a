"""Baseline sweeps: a hand-designed optimizer over many hyperparameter configurations x seeds at once.

Every configuration and seed trains in one compiled call: the swept hyperparameters are traced
values (`vmap` over configurations, or `lax.map` in chunks of `batch_size` when memory is short),
the seeds a second `vmap`, each training the `lopt.evaluate` curves. Configurations come from a
learning-rate grid or from the optimizer's random-search space (seed 002 App. F). A
configuration whose loss went non-finite on a seed is marked diverged; its statistics use only its
finite seeds, and it ranks after every converged configuration.
"""
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh
from omegaconf import DictConfig, OmegaConf
from rich.console import Console
from rich.table import Table

from lopt import data as data_lib, distributed, evaluate, tasks
from lopt.config import check, from_config
from lopt.optimizers import hand_designed
from lopt.optimizers.hand_designed import HandDesigned
from lopt.results import pyplot, save_figure, write_json
from lopt.settings import DataSettings, TrackingSettings, data_and_tracking, write_run_config
from lopt.tasks import Task
from lopt.tracking import Tracker

GROUPS = ("task", "optimizer", "data", "tracking", "sweep", "distributed")
PLOTTED_CURVES = 10  # the best configurations whose curves sweep.png shows
TABLE_ROWS = 20  # the best configurations the console table shows
CRITERIA = {  # name -> curve whose value (at the end, or averaged over training) ranks configurations
    "final_train_loss": ("eval/train/loss", "final"),
    "mean_train_loss": ("eval/train/loss", "mean"),
    "final_test_loss": ("eval/test/loss", "final"),
}


def half_decade_grid(low: float, high: float) -> tuple[float, ...]:
    """1, 3 x 10^k learning rates from `low` to `high` (seed 002's grids)."""
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
        check(len(self.lrs) > 0 and all(lr > 0 for lr in self.lrs), "lrs", self.lrs, "a non-empty list of positive floats")
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


def sweep_curves(task: Task, optimizer: HandDesigned, hparams: Mapping[str, jax.Array], data: data_lib.Dataset,
                 key: jax.Array, s: evaluate.Settings, batch_size: int | None = None,
                 mesh: Mesh | None = None) -> dict[str, jax.Array]:
    """Curves of every configuration x seed, leaves [configurations, num_seeds, ...]. `hparams`
    holds the swept hyperparameters (arrays over configurations, traced); the rest are as
    configured. All configurations use the same seeds (initializations and batches), so they
    differ only by their hyperparameters. `batch_size` configurations train at once, split over
    the devices of `mesh` (lopt.distributed)."""
    keys = evaluate.seed_keys(key, s)

    def one_configuration(hp):
        opt = optimizer.build(s.num_steps, **hp)
        return jax.vmap(lambda k: evaluate.seed_curves(task, opt, None, data, k, s))(keys)

    return distributed.map_sharded(one_configuration, hparams, mesh, batch_size)


def _stat(values: np.ndarray) -> dict[str, Any]:
    finite = values[np.isfinite(values)]
    if not finite.size:
        return {"mean": None, "std": None}
    return {"mean": float(finite.mean()), "std": float(finite.std())}


def configuration_results(hparams: list[dict[str, float]], curves: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    """Per configuration (its full hyperparameters): mean/std over seeds of final and average
    losses, the curves, and how many seeds diverged."""
    results = []
    for i, hp in enumerate(hparams):
        c = {name: v[i] for name, v in curves.items()}  # [seeds, ...]
        metrics = {}
        for name, v in c.items():
            if name.startswith("eval/"):
                metrics[f"final/{name}"] = _stat(v[:, -1])
                metrics[f"mean/{name}"] = _stat(v.mean(axis=1))
        diverged = int((~np.isfinite(c["train/loss"])).any(axis=1).sum())
        results.append({
            "hyperparameters": hp, "diverged_seeds": diverged, "diverged": diverged > 0, "metrics": metrics,
            "curves": {name: np.where(np.isfinite(v), v, np.nan).tolist() for name, v in c.items()},
        })
    return results


def criterion_value(result: dict[str, Any], criterion: str) -> float:
    name, how = CRITERIA[criterion]
    value = result["metrics"][f"{how}/{name}"]["mean"]
    return math.inf if value is None or result["diverged"] else value


class Components(NamedTuple):
    settings: evaluate.Settings
    sweep: SweepSettings
    data: DataSettings
    tracking: TrackingSettings
    task_config: tasks.TaskConfig
    task: Task
    optimizer: HandDesigned


def build(cfg: Mapping[str, Any]) -> Components:
    """Validate the config and build the components; loads no data, compiles nothing."""
    settings = from_config(evaluate.Settings, {k: v for k, v in cfg.items() if k not in GROUPS}, "")
    distributed.parse(cfg.get("distributed"))  # checked before any run directory is written
    task_config = tasks.parse(cfg["task"])
    return Components(settings, from_config(SweepSettings, cfg["sweep"], "sweep"), *data_and_tracking(cfg),
                      task_config, tasks.build(task_config), hand_designed.from_config(cfg["optimizer"]))


def _label(result: dict[str, Any], swept: list[str]) -> str:
    return ", ".join(f"{k} {result['hyperparameters'][k]:.3g}" for k in swept[:2])


def _plot(results: list[dict[str, Any]], swept: list[str], xs: list[int], title: str, path: Path) -> None:
    """Mean eval/train/loss curves of the best `PLOTTED_CURVES` configurations, and final and
    mean training loss against the learning rate (a line over a grid, points for a random search)."""
    plt = pyplot()
    fig, (curves_ax, lr_ax) = plt.subplots(1, 2, figsize=(13, 4.5))
    for r in sorted(results[:PLOTTED_CURVES], key=lambda r: r["hyperparameters"]["lr"]):
        curves_ax.plot(xs, np.nanmean(np.asarray(r["curves"]["eval/train/loss"], float), axis=0), label=_label(r, swept))
    curves_ax.set_xlabel("training iteration")
    curves_ax.set_ylabel("eval/train/loss")
    curves_ax.legend(fontsize=7)
    by_lr = sorted(results, key=lambda r: r["hyperparameters"]["lr"])
    lrs = [r["hyperparameters"]["lr"] for r in by_lr]
    for how in ("final", "mean"):
        values = [r["metrics"][f"{how}/eval/train/loss"]["mean"] for r in by_lr]
        lr_ax.semilogx(lrs, [np.nan if v is None else v for v in values], "o-" if swept == ["lr"] else "o",
                       label=f"{how} loss", alpha=1.0 if swept == ["lr"] else 0.6)
    lr_ax.set_xlabel("learning rate")
    lr_ax.set_ylabel("training loss")
    lr_ax.legend()
    fig.suptitle(title)
    save_figure(fig, path)


def _fmt(stat: dict[str, Any]) -> str:
    return "-" if stat["mean"] is None else f"{stat['mean']:.3f}±{stat['std']:.3f}"


def _table(results: list[dict[str, Any]], swept: list[str], criterion: str) -> Table:
    shown = results[:TABLE_ROWS]
    more = f" (best {len(shown)} of {len(results)})" if len(shown) < len(results) else ""
    table = Table(title=f"configurations by {criterion}{more}")
    table.add_column("configuration", overflow="fold", ratio=1)
    for col in ("final train", "mean train", "final test", "diverged"):
        table.add_column(col, justify="right", no_wrap=True)
    for r in shown:
        m = r["metrics"]
        table.add_row(" ".join(f"{k}={r['hyperparameters'][k]:.3g}" for k in swept), _fmt(m["final/eval/train/loss"]),
                      _fmt(m["mean/eval/train/loss"]), _fmt(m["final/eval/test/loss"]), str(r["diverged_seeds"]))
    return table


def _log(tracker: Tracker, results: list[dict[str, Any]], swept: list[str], criterion: str) -> None:
    """One record per configuration (in rank order) and the W&B table of all configurations."""
    metric_names = sorted(results[0]["metrics"])
    rows = []
    for rank, r in enumerate(results):
        values = {**{k: r["hyperparameters"][k] for k in swept}, "diverged_seeds": r["diverged_seeds"],
                  **{k: r["metrics"][k]["mean"] for k in metric_names}}
        tracker.log({"rank": rank, **values}, step=rank)
        rows.append([rank, *values.values()])
    tracker.table("configurations", ["rank", *swept, "diverged_seeds", *metric_names], rows)
    best = results[0]
    tracker.summary({**{f"best/{k}": best["hyperparameters"][k] for k in swept},
                     f"best/{criterion}": criterion_value(best, criterion)})


def run(cfg: DictConfig, run_dir: Path, console: Console) -> dict[str, Any]:
    """Sweep the configurations; write sweep.json, best.json, sweep.png and W&B logs to `run_dir`."""
    c = build(cfg)
    s, criterion = c.settings, c.sweep.criterion
    mesh = distributed.setup(cfg.get("distributed"))  # multi-host start-up precedes any device use
    swept_values = c.sweep.configurations(c.optimizer, s.seed)
    swept = list(swept_values)
    count = len(swept_values["lr"])
    hparams = [{**c.optimizer.hyperparameters(), **{k: float(v[i]) for k, v in swept_values.items()}}
               for i in range(count)]
    dataset = c.data.load(c.task_config, s.seed)
    write_run_config(run_dir, cfg)
    name = cfg["optimizer"]["name"]
    with console.status(f"training {count} configurations x {s.num_seeds} seeds x {s.num_steps} steps"):
        curves = jax.jit(sweep_curves, static_argnums=(0, 1, 5, 6, 7))(
            c.task, c.optimizer, {k: jnp.asarray(v, jnp.float32) for k, v in swept_values.items()}, dataset,
            jax.random.PRNGKey(s.seed), s, c.sweep.batch_size, mesh)
        curves = {k: np.asarray(v) for k, v in jax.device_get(curves).items()}
    results = sorted(configuration_results(hparams, curves), key=lambda r: criterion_value(r, criterion))
    xs = s.eval_steps
    header = {"task": c.task_config.name, "optimizer": name, "criterion": criterion,
              "search": "grid" if c.sweep.num_samples is None else "random", "swept": swept,
              "num_seeds": s.num_seeds, "num_steps": s.num_steps, "eval/xs": xs,
              "optimizer_config": OmegaConf.to_container(cfg["optimizer"], resolve=True)}
    write_json(run_dir / "sweep.json", {**header, "configurations": results})
    best = results[0]
    write_json(run_dir / "best.json", {**header, "configuration": best})
    _plot(results, swept, xs, f"{c.task_config.name}: {name} {header['search']} search", run_dir / "sweep.png")
    console.print(_table(results, swept, criterion))
    tracker = c.tracking.open(run_dir, cfg, "baseline-sweep", console)
    _log(tracker, results, swept, criterion)
    tracker.finish(0)
    return {"task": c.task_config.name, "optimizer": name, "configurations": count, "num_seeds": s.num_seeds,
            **{f"best_{k}": best["hyperparameters"][k] for k in swept},
            f"best_{criterion}": criterion_value(best, criterion),
            "diverged_configurations": sum(r["diverged"] for r in results), "run_dir": str(run_dir),
            "wrote": "config.yaml, sweep.json, best.json, sweep.png"}
