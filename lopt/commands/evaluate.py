"""`lopt evaluate`: training curves of one optimizer, hand-designed or learned, on one task, many
seeds at once (`lopt.training.curves`), optionally side by side with a tuned baseline (`compare_to`). With
`suite=`, every task of the suite is trained and scored against its stored tuned baseline, the
suite summarized with interquartile means and bootstrap intervals (`lopt.evaluation`)."""
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

import jax
import numpy as np
from omegaconf import DictConfig
from rich.console import Console

from lopt import tasks
from lopt.base import Task
from lopt.commands import evaluate_suite, evaluated
from lopt.commands.base import Shared, prepare, settings
from lopt.commands.evaluated import Evaluated, Settings
from lopt.config import config_groups
from lopt.data import Dataset
from lopt.errors import ConfigError
from lopt.evaluation.suite import parse_selected
from lopt.figures.curves import figure as curves_figure
from lopt.training import comparison, curves

__all__ = ["Components", "Settings", "build", "run"]


class Components(NamedTuple):
    """The curves mode's components (one task, many seeds); `suite=` builds the suite mode's
    (`evaluate_suite.Components`) instead."""

    settings: Settings
    shared: Shared
    task_config: tasks.TaskConfig
    task: Task
    evaluated: Evaluated
    baseline: comparison.Baseline | None  # compare_to: the tuned baseline's curves

    def load_data(self) -> Dataset | None:
        """The task's dataset on the device (None for a dataset-free task)."""
        return tasks.load_data(self.task_config, self.shared.data, self.settings.seed)


def build(cfg: Mapping[str, Any]) -> Components | evaluate_suite.Components:
    """Validate the config and build the components of its mode; loads no data, compiles nothing."""
    s = settings(Settings, cfg)
    what = evaluated.build(cfg, s)
    shared = Shared.parse(cfg)
    if cfg.get("suite") is not None:
        return evaluate_suite.Components(s, shared, what, evaluate_suite.plan(cfg, s, shared, what))
    parse_selected(None, s.suite_tasks)  # refuses suite_tasks without a suite
    if s.tuned is not None:
        raise ConfigError(f"tuned={s.tuned} evaluates {what.name} at each suite task's best stored configuration: "
                          f"it needs suite=<{'|'.join(config_groups()['suite'])}>.")
    task_config = tasks.parse(cfg["task"])
    baseline = None if s.compare_to is None else comparison.load_baseline(s.compare_to, task_config.name,
                                                                          s.eval_steps)
    return Components(s, shared, task_config, tasks.build(task_config), what, baseline)


def _summarize(values: dict[str, np.ndarray], s: Settings) -> dict[str, Any]:
    """Curves (mean and std over all seeds, NaN where one diverged) and the summary: final and mean
    values over the seeds whose eval/train/loss stayed finite (like a sweep's statistics), "diverged"
    when none did, and how many diverged."""
    with np.errstate(all="ignore"):  # inf/NaN of diverged seeds overflow the std: it is NaN/inf, no warning
        stats = {name: {"mean": v.mean(0).tolist(), "std": v.std(0).tolist(), "per_seed": v.tolist()}
                 for name, v in values.items()}
    train = values["eval/train/loss"]
    kept = np.isfinite(train).all(1)  # the seeds that did not diverge

    def over_kept(v: np.ndarray) -> float | str:
        return float(v[kept].mean()) if kept.any() else "diverged"

    final = {f"final/{k}": over_kept(v[:, -1]) for k, v in values.items() if k.startswith("eval/")}
    return {"eval/xs": s.eval_steps, "train/xs": list(range(s.num_steps)), "curves": stats,
            "summary": {**final, "mean/eval/train/loss": over_kept(train.mean(1)),
                        "diverged_seeds": int((~kept).sum())}}


def run(cfg: DictConfig, run_dir: Path, console: Console,
        components: Components | evaluate_suite.Components | None = None) -> dict[str, Any]:
    """Train `num_seeds` seeds and write curves.json, curves.png and W&B logs to `run_dir` (with
    `suite=`, the suite mode: `evaluate_suite.run`)."""
    job, c = prepare(build, cfg, run_dir, console, components)
    if isinstance(c, evaluate_suite.Components):
        return evaluate_suite.run(job, c, console)
    s, what = c.settings, c.evaluated
    dataset = c.load_data()
    key = jax.random.PRNGKey(s.seed)
    compiled, compile_s = curves.compile_curves(c.task, c.task_config.name, what.optimizer(s.num_steps), dataset,
                                               key, s, job.mesh, console)  # refuses what cannot fit
    job.write_config()
    with console.status(f"training {s.num_seeds} seeds x {s.num_steps} steps of {c.task_config.name} "
                        f"with {what.name}"):
        values = compiled(None, dataset, key)  # the arguments that are not static
        values = {k: np.asarray(v) for k, v in jax.device_get(values).items()}
    result = {"task": c.task_config.name, "optimizer": what.name, "learned": what.learned,
              "checkpoint": None if what.checkpoint is None else str(what.checkpoint), **_summarize(values, s)}
    if c.baseline is not None:
        result["comparison"] = comparison.compare(values, c.baseline)
        result["summary"].update(comparison.flat(result["comparison"]))
        console.print(comparison.table(result["comparison"], what.name))
    job.write_json("curves.json", result)
    job.save_figure(curves_figure(result, what.label, c.baseline, job.dir), "curves.png")
    with job.tracker("evaluate") as tracker:
        for i, x in enumerate(result["eval/xs"]):
            tracker.log({"step": x, **{k: v["mean"][i] for k, v in result["curves"].items()
                                       if k.startswith("eval/")}}, step=x)
        tracker.summary(result["summary"])
    return {"task": c.task_config.name, "optimizer": what.name, "num_seeds": s.num_seeds, "num_steps": s.num_steps,
            "compile_s": compile_s, **result["summary"], "run_dir": str(job.dir),
            **job.wrote("config.yaml, curves.json, curves.png")}
