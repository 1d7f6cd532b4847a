"""Baseline sweeps: a hand-designed optimizer over a learning-rate grid x seeds, all at once.

Every configuration and seed trains in one compiled call: the learning rate is a traced value
(`vmap` over the grid), the seeds a second `vmap`, each training the `lopt.evaluate` curves. A
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
from omegaconf import DictConfig, OmegaConf
from rich.console import Console
from rich.table import Table

from lopt import data as data_lib, evaluate, tasks
from lopt.config import check, from_config
from lopt.optimizers import hand_designed
from lopt.results import pyplot, save_figure, write_json
from lopt.settings import DataSettings, TrackingSettings, data_and_tracking, write_run_config
from lopt.tasks import Task

GROUPS = ("task", "optimizer", "data", "tracking", "sweep")
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
    """The `sweep` node: the learning rates (an explicit list, or a half-decade grid over
    `lr_range`) and the criterion that picks the best configuration."""

    lrs: tuple[float, ...] = (1e-4, 3e-4, 1e-3, 3e-3, 5e-3, 7e-3, 1e-2, 2e-2, 3e-2)
    lr_range: tuple[float, ...] | None = None
    criterion: str = "mean_train_loss"

    def __post_init__(self):
        check(len(self.lrs) > 0 and all(lr > 0 for lr in self.lrs), "lrs", self.lrs, "a non-empty list of positive floats")
        check(self.lr_range is None or (len(self.lr_range) == 2 and 0 < self.lr_range[0] <= self.lr_range[1]),
              "lr_range", self.lr_range, "null or [low, high] with 0 < low <= high")
        check(self.criterion in CRITERIA, "criterion", self.criterion, f"one of {sorted(CRITERIA)}")

    @property
    def grid(self) -> tuple[float, ...]:
        return self.lrs if self.lr_range is None else half_decade_grid(*self.lr_range)


def sweep_curves(task: Task, optimizer: Any, lrs: jax.Array, data: data_lib.Dataset, key: jax.Array,
                 s: evaluate.Settings) -> dict[str, jax.Array]:
    """Curves of every learning rate x seed, leaves [len(lrs), num_seeds, ...]. All learning rates
    use the same seeds (initializations and batches), so they differ only by the learning rate."""
    keys = evaluate.seed_keys(key, s)

    def one_lr(lr):
        opt = optimizer.with_lr(lr)
        return jax.vmap(lambda k: evaluate.seed_curves(task, opt, None, data, k, s))(keys)

    return jax.vmap(one_lr)(lrs)


def _stat(values: np.ndarray) -> dict[str, Any]:
    finite = values[np.isfinite(values)]
    if not finite.size:
        return {"mean": None, "std": None}
    return {"mean": float(finite.mean()), "std": float(finite.std())}


def configuration_results(lrs: tuple[float, ...], curves: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    """Per learning rate: mean/std over seeds of final and average losses, curves, divergence."""
    results = []
    for i, lr in enumerate(lrs):
        c = {name: v[i] for name, v in curves.items()}  # [seeds, ...]
        metrics = {}
        for name, v in c.items():
            if name.startswith("eval/"):
                metrics[f"final/{name}"] = _stat(v[:, -1])
                metrics[f"mean/{name}"] = _stat(v.mean(axis=1))
        diverged = int((~np.isfinite(c["train/loss"])).any(axis=1).sum())
        results.append({
            "lr": lr, "diverged_seeds": diverged, "diverged": diverged > 0, "metrics": metrics,
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
    optimizer: Any


def build(cfg: Mapping[str, Any]) -> Components:
    """Validate the config and build the components; loads no data, compiles nothing."""
    settings = from_config(evaluate.Settings, {k: v for k, v in cfg.items() if k not in GROUPS}, "")
    task_config = from_config(tasks.TaskConfig, cfg["task"], "task")
    return Components(settings, from_config(SweepSettings, cfg["sweep"], "sweep"), *data_and_tracking(cfg),
                      task_config, tasks.build(task_config), hand_designed.from_config(cfg["optimizer"]))


def _plot(results: list[dict[str, Any]], xs: list[int], title: str, path: Path) -> None:
    plt = pyplot()
    fig, (curves_ax, lr_ax) = plt.subplots(1, 2, figsize=(13, 4.5))
    for r in results:
        curves_ax.plot(xs, np.nanmean(np.asarray(r["curves"]["eval/train/loss"], float), axis=0), label=f"lr {r['lr']:g}")
    curves_ax.set_xlabel("training iteration")
    curves_ax.set_ylabel("eval/train/loss")
    curves_ax.legend(fontsize=7)
    lrs = [r["lr"] for r in results]
    for how in ("final", "mean"):
        values = [r["metrics"][f"{how}/eval/train/loss"]["mean"] for r in results]
        lr_ax.semilogx(lrs, [np.nan if v is None else v for v in values], "o-", label=f"{how} loss")
    lr_ax.set_xlabel("learning rate")
    lr_ax.set_ylabel("training loss")
    lr_ax.legend()
    fig.suptitle(title)
    save_figure(fig, path)


def _table(results: list[dict[str, Any]], criterion: str) -> Table:
    table = Table(title=f"configurations by {criterion}")
    for col in ("lr", "final train", "mean train", "final test", "diverged"):
        table.add_column(col, justify="right")

    def fmt(stat):
        return "-" if stat["mean"] is None else f"{stat['mean']:.3f}±{stat['std']:.3f}"

    for r in results:
        m = r["metrics"]
        table.add_row(f"{r['lr']:g}", fmt(m["final/eval/train/loss"]), fmt(m["mean/eval/train/loss"]),
                      fmt(m["final/eval/test/loss"]), str(r["diverged_seeds"]))
    return table


def run(cfg: DictConfig, run_dir: Path, console: Console) -> dict[str, Any]:
    """Sweep the grid; write sweep.json, best.json, sweep.png and W&B logs to `run_dir`."""
    c = build(cfg)
    s, grid = c.settings, c.sweep.grid
    dataset = c.data.load(c.task_config, s.seed)
    write_run_config(run_dir, cfg)
    name = cfg["optimizer"]["name"]
    with console.status(f"training {len(grid)} learning rates x {s.num_seeds} seeds x {s.num_steps} steps"):
        curves = jax.jit(sweep_curves, static_argnums=(0, 1, 5))(
            c.task, c.optimizer, jnp.asarray(grid, jnp.float32), dataset, jax.random.PRNGKey(s.seed), s)
        curves = {k: np.asarray(v) for k, v in jax.device_get(curves).items()}
    results = sorted(configuration_results(grid, curves), key=lambda r: criterion_value(r, c.sweep.criterion))
    xs = list(range(0, s.num_steps + 1, s.eval_every))
    header = {"task": c.task_config.name, "optimizer": name, "criterion": c.sweep.criterion,
              "num_seeds": s.num_seeds, "num_steps": s.num_steps, "eval/xs": xs,
              "optimizer_config": OmegaConf.to_container(cfg["optimizer"], resolve=True)}
    write_json(run_dir / "sweep.json", {**header, "configurations": results})
    best = results[0]
    write_json(run_dir / "best.json", {**header, "configuration": best})
    _plot(sorted(results, key=lambda r: r["lr"]), xs, f"{c.task_config.name}: {name} learning-rate sweep",
          run_dir / "sweep.png")
    console.print(_table(results, c.sweep.criterion))
    tracker = c.tracking.open(run_dir, cfg, "baseline-sweep", console)
    for r in results:
        tracker.log({"lr": r["lr"], "diverged_seeds": r["diverged_seeds"],
                     **{k: v["mean"] for k, v in r["metrics"].items()}}, step=grid.index(r["lr"]))
    tracker.summary({"best/lr": best["lr"], f"best/{c.sweep.criterion}": criterion_value(best, c.sweep.criterion)})
    tracker.finish(0)
    return {"task": c.task_config.name, "optimizer": name, "configurations": len(grid), "num_seeds": s.num_seeds,
            "best_lr": best["lr"], f"best_{c.sweep.criterion}": criterion_value(best, c.sweep.criterion),
            "diverged_configurations": sum(r["diverged"] for r in results), "run_dir": str(run_dir),
            "wrote": "config.yaml, sweep.json, best.json, sweep.png"}
