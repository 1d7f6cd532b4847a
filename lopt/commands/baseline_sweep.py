"""`lopt baseline-sweep`: tune a hand-designed optimizer over a learning-rate grid or a random
search, every configuration x seed trained in one compiled call (`lopt.sweep`); ranked results,
the best configuration, a figure and a W&B table."""
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from omegaconf import DictConfig, OmegaConf
from rich.console import Console
from rich.table import Table

from lopt import curves, tasks
from lopt.base import Task
from lopt.commands.base import Shared, prepare, settings
from lopt.optimizers import hand_designed
from lopt.optimizers.hand_designed import HandDesigned
from lopt.results import pyplot
from lopt.sweep import SweepSettings, configuration_results, criterion_value, sweep_curves
from lopt.tracking import NullTracker, Tracker

PLOTTED_CURVES = 10  # the best configurations whose curves sweep.png shows
TABLE_ROWS = 20  # the best configurations the console table shows


@dataclass(frozen=True)
class Settings(curves.CurveSettings):
    """Top-level sweep settings: how each configuration's curves are recorded, and the sweep."""

    sweep: SweepSettings = field(default_factory=SweepSettings)


class Components(NamedTuple):
    settings: Settings
    shared: Shared
    task_config: tasks.TaskConfig
    task: Task
    optimizer: HandDesigned


def build(cfg: Mapping[str, Any]) -> Components:
    """Validate the config and build the components; loads no data, compiles nothing."""
    task_config = tasks.parse(cfg["task"])
    return Components(settings(Settings, cfg), Shared.parse(cfg), task_config, tasks.build(task_config),
                      hand_designed.from_config(cfg["optimizer"]))


def _label(result: dict[str, Any], swept: list[str]) -> str:
    return ", ".join(f"{k} {result['hyperparameters'][k]:.3g}" for k in swept[:2])


def _plot(results: list[dict[str, Any]], swept: list[str], xs: list[int], title: str) -> Any:
    """Mean eval/train/loss curves of the best `PLOTTED_CURVES` configurations, and final and
    mean training loss against the learning rate (a line over a grid, points for a random search)."""
    plt = pyplot()
    fig, (curves_ax, lr_ax) = plt.subplots(1, 2, figsize=(13, 4.5))
    for r in sorted(results[:PLOTTED_CURVES], key=lambda r: r["hyperparameters"]["lr"]):
        mean = np.nanmean(np.asarray(r["curves"]["eval/train/loss"], float), axis=0)
        curves_ax.plot(xs, mean, label=_label(r, swept))
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
    return fig


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


def _log(tracker: Tracker | NullTracker, results: list[dict[str, Any]], swept: list[str], criterion: str) -> None:
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
    job, c = prepare(build, cfg, run_dir, console)
    s, criterion = c.settings, c.settings.sweep.criterion
    swept_values = s.sweep.configurations(c.optimizer, s.seed)
    swept = list(swept_values)
    count = len(swept_values["lr"])
    hparams = [{**c.optimizer.hyperparameters(), **{k: float(v[i]) for k, v in swept_values.items()}}
               for i in range(count)]
    dataset = job.load(c.task_config)
    job.write_config()
    name = cfg["optimizer"]["name"]
    with console.status(f"training {count} configurations x {s.num_seeds} seeds x {s.num_steps} steps"):
        values = jax.jit(sweep_curves, static_argnums=(0, 1, 5, 6, 7))(
            c.task, c.optimizer, {k: jnp.asarray(v, jnp.float32) for k, v in swept_values.items()}, dataset,
            jax.random.PRNGKey(s.seed), s, s.sweep.batch_size, job.mesh)
        values = {k: np.asarray(v) for k, v in jax.device_get(values).items()}
    results = sorted(configuration_results(hparams, values), key=lambda r: criterion_value(r, criterion))
    xs = s.eval_steps
    header = {"task": c.task_config.name, "optimizer": name, "criterion": criterion,
              "search": "grid" if s.sweep.num_samples is None else "random", "swept": swept,
              "num_seeds": s.num_seeds, "num_steps": s.num_steps, "eval/xs": xs,
              "optimizer_config": OmegaConf.to_container(cfg["optimizer"], resolve=True)}
    job.write_json("sweep.json", {**header, "configurations": results})
    best = results[0]
    job.write_json("best.json", {**header, "configuration": best})
    job.save_figure(_plot(results, swept, xs, f"{c.task_config.name}: {name} {header['search']} search"), "sweep.png")
    console.print(_table(results, swept, criterion))
    with job.tracker("baseline-sweep") as tracker:
        _log(tracker, results, swept, criterion)
    return {"task": c.task_config.name, "optimizer": name, "configurations": count, "num_seeds": s.num_seeds,
            **{f"best_{k}": best["hyperparameters"][k] for k in swept},
            f"best_{criterion}": criterion_value(best, criterion),
            "diverged_configurations": sum(r["diverged"] for r in results), "run_dir": str(job.dir),
            "wrote": "config.yaml, sweep.json, best.json, sweep.png"}
