"""`lopt evaluate`: training curves of one optimizer, hand-designed or learned, on one task, many
seeds at once (`lopt.curves`), optionally side by side with a tuned baseline (`compare_to`)."""
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import jax
import numpy as np
from omegaconf import DictConfig
from rich.console import Console

from lopt import comparison, curves, learned, tasks
from lopt.base import Optimizer, Task
from lopt.commands.base import Shared, prepare, settings
from lopt.learned.export import as_optax
from lopt.optimizers import hand_designed
from lopt.results import pyplot


@dataclass(frozen=True)
class Settings(curves.CurveSettings):
    """Top-level evaluation settings: how the curves are recorded, the trained meta-parameters of a
    learned optimizer (`theta`), and the baseline to compare with."""

    theta: str | None = None  # a meta-train run (or its final_theta/) whose theta `lopt` is evaluated with
    compare_to: str | None = None  # best.json or sweep.json of a baseline-sweep on this task


class Components(NamedTuple):
    settings: Settings
    shared: Shared
    task_config: tasks.TaskConfig
    task: Task
    optimizer: Any  # a hand-designed Optimizer, or a learned optimizer architecture
    learned: bool
    theta_path: Path | None
    baseline: comparison.Baseline | None


def build(cfg: Mapping[str, Any]) -> Components:
    """Validate the config and build the components; loads no data, compiles nothing."""
    s = settings(Settings, cfg)
    task_config = tasks.parse(cfg["task"])
    is_learned = cfg.get("lopt") is not None
    if is_learned:
        optimizer = learned.build(cfg["lopt"])
    else:
        optimizer = hand_designed.from_config(cfg["optimizer"]).build(s.num_steps)
    baseline = None if s.compare_to is None else comparison.load_baseline(s.compare_to, task_config.name, s.eval_steps)
    return Components(s, Shared.parse(cfg), task_config, tasks.build(task_config), optimizer, is_learned,
                      learned.theta_path(s.theta) if is_learned else None, baseline)


def _training_optimizer(c: Components) -> Optimizer:
    """What trains the task: a learned optimizer goes through its optax export (theta inside)."""
    if not c.learned:
        return c.optimizer
    if c.theta_path is None:
        theta = c.optimizer.init_theta(jax.random.PRNGKey(c.settings.seed))
    else:
        theta = learned.load_theta(c.optimizer, c.theta_path)
    return hand_designed.OptaxOptimizer(as_optax(c.optimizer, theta, c.settings.num_steps))


def _summarize(values: dict[str, np.ndarray], s: Settings) -> dict[str, Any]:
    stats = {name: {"mean": v.mean(0).tolist(), "std": v.std(0).tolist(), "per_seed": v.tolist()}
             for name, v in values.items()}
    final = {f"final/{k}": float(v[:, -1].mean()) for k, v in values.items() if k.startswith("eval/")}
    train = values["eval/train/loss"]
    return {"eval/xs": s.eval_steps, "train/xs": list(range(s.num_steps)), "curves": stats,
            "summary": {**final, "mean/eval/train/loss": float(train.mean()),
                        "diverged_seeds": int((~np.isfinite(train)).any(1).sum())}}


def _band(ax: Any, xs: np.ndarray, per_seed: np.ndarray, color: str, label: str) -> None:
    """Mean over seeds with a +-1 std band."""
    mean, std = np.nanmean(per_seed, axis=0), np.nanstd(per_seed, axis=0)
    ax.plot(xs, mean, color=color, label=label)
    ax.fill_between(xs, mean - std, mean + std, color=color, alpha=0.2)


def _plot(result: dict[str, Any], label: str, baseline: comparison.Baseline | None, title: str) -> Any:
    """One panel per eval curve; the baseline's band alongside when comparing."""
    plt = pyplot()
    metrics = [m for m in ("eval/train/loss", "eval/test/loss", "eval/test/accuracy") if m in result["curves"]]
    fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 4))
    xs = np.asarray(result["eval/xs"])
    for ax, name in zip(np.atleast_1d(axes), metrics):
        _band(ax, xs, np.asarray(result["curves"][name]["per_seed"], float), "tab:blue", label)
        if baseline is not None and name in baseline.curves:
            _band(ax, xs, baseline.curves[name], "k", f"tuned {baseline.optimizer}")
        ax.set_xlabel("training iteration")
        ax.set_ylabel(name)
        ax.legend(fontsize=7)
    fig.suptitle(title)
    return fig


def run(cfg: DictConfig, run_dir: Path, console: Console) -> dict[str, Any]:
    """Train `num_seeds` seeds and write curves.json, curves.png and W&B logs to `run_dir`."""
    job, c = prepare(build, cfg, run_dir, console)
    s = c.settings
    dataset = job.load(c.task_config)
    optimizer = _training_optimizer(c)
    job.write_config()
    name = cfg["lopt"]["name"] if c.learned else cfg["optimizer"]["name"]
    with console.status(f"training {s.num_seeds} seeds x {s.num_steps} steps of {c.task_config.name} with {name}"):
        values = jax.jit(curves.training_curves, static_argnums=(0, 1, 5, 6))(
            c.task, optimizer, None, dataset, jax.random.PRNGKey(s.seed), s, job.mesh)
        values = {k: np.asarray(v) for k, v in jax.device_get(values).items()}
    result = {"task": c.task_config.name, "optimizer": name, "learned": c.learned,
              "checkpoint": None if c.theta_path is None else str(c.theta_path), **_summarize(values, s)}
    if c.baseline is not None:
        result["comparison"] = comparison.compare(values, c.baseline)
        result["summary"].update(comparison.flat(result["comparison"]))
        console.print(comparison.table(result["comparison"], name))
    job.write_json("curves.json", result)
    job.save_figure(_plot(result, name, c.baseline, f"{c.task_config.name}: {name} ({s.num_seeds} seeds)"),
                    "curves.png")
    with job.tracker("evaluate") as tracker:
        for i, x in enumerate(result["eval/xs"]):
            tracker.log({"step": x, **{k: v["mean"][i] for k, v in result["curves"].items()
                                       if k.startswith("eval/")}}, step=x)
        tracker.summary(result["summary"])
    return {"task": c.task_config.name, "optimizer": name, "num_seeds": s.num_seeds, "num_steps": s.num_steps,
            **result["summary"], "run_dir": str(job.dir), "wrote": "config.yaml, curves.json, curves.png"}
