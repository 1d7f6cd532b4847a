"""`lopt baseline-sweep`: tune a hand-designed optimizer over a learning-rate grid or a random
search, every configuration x seed trained in one compiled call (`lopt.training.sweep`); ranked results,
the best configuration, a figure and a W&B table. With `suite=`, every task of the suite is tuned
(one compiled call per task) and stored as that task's baseline (`lopt.evaluation`)."""
import dataclasses
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from omegaconf import DictConfig
from rich.console import Console
from rich.table import Table

from lopt import tasks
from lopt.base import Task
from lopt.commands.base import Job, Shared, prepare, settings
from lopt.data import Dataset
from lopt.evaluation.baselines import BaselineStore, StoreSettings
from lopt.evaluation.scores import check_smoothing
from lopt.evaluation.suite import Suite
from lopt.evaluation.suite import parse as parse_suite
from lopt.evaluation.tuning import Tuning, tune
from lopt.figures.sweep import figure as sweep_figure
from lopt.io.tracking import NullTracker, Tracker
from lopt.optimizers import hand_designed
from lopt.optimizers.hand_designed import HandDesigned
from lopt.training import curves
from lopt.training.sweep import Configuration, Stat, SweepSettings, compile_sweep, configuration_results

TABLE_ROWS = 20  # the best configurations the console table shows


@dataclass(frozen=True)
class Settings(curves.CurveSettings):
    """Top-level sweep settings: how each configuration's curves are recorded, and the sweep."""

    sweep: SweepSettings = field(default_factory=SweepSettings)
    baselines: StoreSettings = field(default_factory=StoreSettings)  # suite mode: where baselines go
    smoothing: float = 0.95  # suite mode: EMA decay of the training losses that pick the best configuration

    def __post_init__(self):
        super().__post_init__()
        check_smoothing(self.smoothing)


class Components(NamedTuple):
    """The one-task mode's components: the optimizer swept on the task."""

    settings: Settings
    shared: Shared
    optimizer: HandDesigned
    optimizer_name: str  # its config option (`adam`)
    task_config: tasks.TaskConfig
    task: Task

    def load_data(self) -> Dataset | None:
        """The task's dataset on the device (None for a dataset-free task)."""
        return tasks.load_data(self.task_config, self.shared.data, self.settings.seed)


class SuiteComponents(NamedTuple):
    """The suite mode's components: the optimizer tuned on every task of the suite."""

    settings: Settings
    shared: Shared
    optimizer: HandDesigned
    optimizer_name: str
    suite: Suite


def build(cfg: Mapping[str, Any]) -> Components | SuiteComponents:
    """Validate the config and build the components of its mode; loads no data, compiles nothing."""
    s, shared = settings(Settings, cfg), Shared.parse(cfg)
    optimizer, name = hand_designed.from_config(cfg["optimizer"]), str(cfg["optimizer"]["name"])
    if cfg.get("suite") is not None:
        return SuiteComponents(s, shared, optimizer, name, parse_suite(cfg["suite"]))
    task_config = tasks.parse(cfg["task"])
    return Components(s, shared, optimizer, name, task_config, tasks.build(task_config))


def _fmt(stat: Stat) -> str:
    return "-" if stat.mean is None else f"{stat.mean:.3f}±{stat.std:.3f}"


def _table(results: list[Configuration], swept: list[str], criterion: str) -> Table:
    shown = results[:TABLE_ROWS]
    more = f" (best {len(shown)} of {len(results)})" if len(shown) < len(results) else ""
    table = Table(title=f"configurations by {criterion}{more}")
    table.add_column("configuration", overflow="fold", ratio=1)
    for col in ("final train", "mean train", "final test", "diverged"):
        table.add_column(col, justify="right", no_wrap=True)
    for r in shown:
        m = r.metrics
        table.add_row(" ".join(f"{k}={r.hyperparameters[k]:.3g}" for k in swept), _fmt(m["final/eval/train/loss"]),
                      _fmt(m["mean/eval/train/loss"]), _fmt(m["final/eval/test/loss"]), str(r.diverged_seeds))
    return table


def _log(tracker: Tracker | NullTracker, results: list[Configuration], swept: list[str], criterion: str) -> None:
    """One record per configuration (in rank order) and the W&B table of all configurations."""
    metric_names = sorted(results[0].metrics)
    rows = []
    for rank, r in enumerate(results):
        values = {**{k: r.hyperparameters[k] for k in swept}, "diverged_seeds": r.diverged_seeds,
                  **{k: r.metrics[k].mean for k in metric_names}}
        tracker.log({"rank": rank, **values}, step=rank)
        rows.append([rank, *values.values()])
    tracker.table("configurations", ["rank", *swept, "diverged_seeds", *metric_names], rows)
    best = results[0]
    tracker.summary({**{f"best/{k}": best.hyperparameters[k] for k in swept},
                     f"best/{criterion}": best.value(criterion)})


def overridden_by_sweep(optimizer: HandDesigned, swept: list[str], sweep: SweepSettings) -> str | None:
    """The line saying which configured hyperparameters (set away from the optimizer's defaults,
    e.g. `optimizer.lr=0.01`) the sweep replaces with its own values; None if there are none."""
    defaults = {f.name: float(f.default) for f in dataclasses.fields(optimizer)  # type: ignore[arg-type]
                if isinstance(f.default, (int, float))}
    configured = optimizer.hyperparameters()
    changed = [k for k in swept if k in defaults and configured[k] != defaults[k]]
    if not changed:
        return None
    if sweep.num_samples is not None:
        source = f"the random search (sweep.num_samples={sweep.num_samples})"
    elif sweep.lr_range is not None:
        source = f"sweep.lr_range={list(sweep.lr_range)} (grid {[float(f'{v:.3g}') for v in sweep.grid]})"
    else:
        source = f"sweep.lrs={list(sweep.lrs)}"
    values = ", ".join(f"optimizer.{k}={getattr(optimizer, k)!r}" for k in changed)
    return f"{values} {'is' if len(changed) == 1 else 'are'} swept over by {source}: the sweep's values are used."


def _suite_table(rows: list[dict[str, Any]], title: str) -> Table:
    table = Table(title=title)
    for col in ("task", "configurations", "best lr", "best final loss", "at grid edge"):
        table.add_column(col, justify="left" if col == "task" else "right")
    for r in rows:
        table.add_row(r["task"], str(r["configurations"]), f"{r['best_lr']:.3g}", f"{r['best_final_loss']:.4f}",
                      r["at_edge"] or "-")
    return table


def _run_suite(job: Job, c: SuiteComponents, console: Console) -> dict[str, Any]:
    """Tune the optimizer on every task of the suite and store each task's baseline; write
    baselines.json (a row per task) and log the table."""
    s, suite, name = c.settings, c.suite, c.optimizer_name
    store = BaselineStore(s.baselines.dir)
    tuning = Tuning.of(c.optimizer, name, s.sweep, suite, s.num_seeds, s.seed, s.smoothing, c.shared.data,
                       s.baselines.horizon_mult)
    start = time.perf_counter()
    rows = [tune(entry, suite.eval_every, tuning, store, job.mesh, console, write=job.main)[0] for entry in suite.tasks]
    seconds = time.perf_counter() - start
    job.write_config()  # only now: a task that fails (missing data) leaves no run directory behind
    job.write_json("baselines.json", {"suite": suite.name, "optimizer": name, "num_seeds": s.num_seeds,
                                      "seconds": seconds, "tasks": rows})
    console.print(_suite_table(rows, f"{name} baselines of suite {suite.name}"))
    with job.tracker("baseline-sweep") as tracker:
        columns = list(rows[0])
        tracker.table("baselines", columns, [[r[k] for k in columns] for r in rows])
        tracker.summary({"seconds": seconds, "tasks": len(rows)})
    edges = [r["task"] for r in rows if r["at_edge"]]
    return {"suite": suite.name, "optimizer": name, "tasks": len(rows), "num_seeds": s.num_seeds,
            "seconds": round(seconds, 1), "best at grid edge": ", ".join(edges) or "none",
            "baselines": str(store.root), "run_dir": str(job.dir), **job.wrote("config.yaml, baselines.json")}


def run(cfg: DictConfig, run_dir: Path, console: Console,
        components: Components | SuiteComponents | None = None) -> dict[str, Any]:
    """Sweep the configurations; write sweep.json, best.json, sweep.png and W&B logs to `run_dir`
    (with a suite: every task's baseline, and baselines.json)."""
    job, c = prepare(build, cfg, run_dir, console, components)
    if isinstance(c, SuiteComponents):
        return _run_suite(job, c, console)
    s, criterion = c.settings, c.settings.sweep.criterion
    swept_values = s.sweep.configurations(c.optimizer, s.seed)
    swept = list(swept_values)
    notice = overridden_by_sweep(c.optimizer, swept, s.sweep)
    if notice is not None:
        console.print(notice, style="yellow", markup=False, highlight=False, soft_wrap=True)
    count = len(swept_values["lr"])
    hparams = [{**c.optimizer.hyperparameters(), **{k: float(v[i]) for k, v in swept_values.items()}}
               for i in range(count)]
    dataset = c.load_data()
    args = ({k: jnp.asarray(v, jnp.float32) for k, v in swept_values.items()}, dataset, jax.random.PRNGKey(s.seed))
    compiled, compile_s = compile_sweep(c.task, c.task_config.name, c.optimizer, args, s, s.sweep, job.mesh,
                                        console)  # refuses what cannot fit
    job.write_config()
    name = c.optimizer_name
    with console.status(f"training {count} configurations x {s.num_seeds} seeds x {s.num_steps} steps"):
        values = compiled(*args)
        values = {k: np.asarray(v) for k, v in jax.device_get(values).items()}
    results = sorted(configuration_results(hparams, values), key=lambda r: r.value(criterion))
    xs = s.eval_steps
    header = {"task": c.task_config.name, "optimizer": name, "criterion": criterion,
              "search": "grid" if s.sweep.num_samples is None else "random", "swept": swept,
              "num_seeds": s.num_seeds, "num_steps": s.num_steps, "eval/xs": xs,
              "optimizer_config": {"name": name, **vars(c.optimizer)}}
    job.write_json("sweep.json", {**header, "configurations": [r.to_json() for r in results]})
    best = results[0]
    job.write_json("best.json", {**header, "configuration": best.to_json()})
    job.save_figure(sweep_figure(results, header, job.dir), "sweep.png")
    console.print(_table(results, swept, criterion))
    with job.tracker("baseline-sweep") as tracker:
        _log(tracker, results, swept, criterion)
    return {"task": c.task_config.name, "optimizer": name, "configurations": count, "num_seeds": s.num_seeds,
            "compile_s": compile_s,
            **{f"best_{k}": best.hyperparameters[k] for k in swept}, f"best_{criterion}": best.value(criterion),
            "diverged_configurations": sum(r.diverged for r in results), "run_dir": str(job.dir),
            **job.wrote("config.yaml, sweep.json, best.json, sweep.png")}
