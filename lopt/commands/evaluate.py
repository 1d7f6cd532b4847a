"""`lopt evaluate`: training curves of one optimizer, hand-designed or learned, on one task, many
seeds at once (`lopt.curves`), optionally side by side with a tuned baseline (`compare_to`). With
`suite=`, every task of the suite is trained and scored against its stored tuned baseline, the
suite summarized with interquartile means and bootstrap intervals (`lopt.evaluation`)."""
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import jax
import numpy as np
from omegaconf import DictConfig, open_dict
from rich.console import Console

from lopt import comparison, curves, learned, tasks
from lopt.base import Optimizer, Task
from lopt.commands import evaluate_suite
from lopt.commands.base import Shared, prepare, settings
from lopt.config import check
from lopt.errors import UserError
from lopt.evaluation.baselines import BaselineSettings
from lopt.evaluation.scores import check_smoothing
from lopt.evaluation.suite import SuiteTask, parse_selected
from lopt.learned.export import as_optax
from lopt.optimizers import hand_designed
from lopt.optimizers.hand_designed import HandDesigned
from lopt.results import pyplot


@dataclass(frozen=True)
class Settings(curves.CurveSettings):
    """Top-level evaluation settings: how the curves are recorded, the trained meta-parameters of a
    learned optimizer (`theta`), and the baseline to compare with."""

    theta: str | None = None  # a meta-train run (or its final_theta/) whose theta `lopt` is evaluated with
    compare_to: str | None = None  # best.json or sweep.json of a baseline-sweep on this task (suite: a suite.json)
    baselines: BaselineSettings = field(default_factory=BaselineSettings)  # suite mode: the tuned reference
    smoothing: float = 0.95  # suite mode: EMA decay of the training losses the scores compare
    tuned: str | None = None  # suite mode, grid | random: `optimizer` at each task's best stored configuration
    suite_tasks: tuple[str, ...] = ()  # suite mode: the suite's tasks to evaluate (empty: all)

    def __post_init__(self):
        super().__post_init__()
        check_smoothing(self.smoothing)
        check(self.tuned in (None, "grid", "random"), "tuned", self.tuned, "null, grid or random")


class Components(NamedTuple):
    settings: Settings
    shared: Shared
    task_config: tasks.TaskConfig
    task: Task
    optimizer: Any  # a hand-designed Optimizer, or a learned optimizer architecture
    learned: bool
    theta_path: Path | None
    baseline: comparison.Baseline | None
    hand_designed: HandDesigned | None  # the hand-designed optimizer's config (None: a learned one)
    plan: evaluate_suite.SuitePlan | None  # with suite=: what the suite evaluation needs


def build(cfg: Mapping[str, Any]) -> Components:
    """Validate the config and build the components; loads no data, compiles nothing."""
    s = settings(Settings, cfg)
    task_config = tasks.parse(cfg["task"])
    lopt_node = cfg.get("lopt")
    if lopt_node is None and s.theta is not None:  # theta alone: the architecture its run was trained with
        learned.theta_path(s.theta)  # the run must exist
        lopt_node = learned.stored_architecture(s.theta)
        if lopt_node is None:
            raise UserError(f"theta={s.theta!r} has no config.yaml naming its learned optimizer: give its "
                            f"architecture with lopt=<{'|'.join(learned.REGISTRY.names())}> (and its options).")
        if isinstance(cfg, DictConfig):
            with open_dict(cfg):  # recorded in the run's config.yaml
                cfg["lopt"] = lopt_node
    is_learned = lopt_node is not None
    hand = None
    if lopt_node is not None:
        optimizer = learned.build(lopt_node)
        learned.check_architecture(optimizer, s.theta)
    else:
        hand = hand_designed.from_config(cfg["optimizer"])
        optimizer = hand.build(s.num_steps)
    shared = Shared.parse(cfg)
    plan, baseline = None, None
    if cfg.get("suite") is not None:
        plan = evaluate_suite.plan(cfg, s, shared, hand)
    elif s.suite_tasks:
        parse_selected(None, s.suite_tasks)  # refuses suite_tasks without a suite
    elif s.compare_to is not None:
        baseline = comparison.load_baseline(s.compare_to, task_config.name, s.eval_steps)
    return Components(s, shared, task_config, tasks.build(task_config), optimizer, is_learned,
                      learned.theta_path(s.theta) if is_learned else None, baseline, hand, plan)


def _training_optimizer(c: Components, entry: SuiteTask | None = None) -> Optimizer:
    """What trains the task (or the suite task `entry`) for its number of steps: a learned optimizer
    goes through its optax export (theta inside); with `tuned=`, a hand-designed one takes the
    task's best stored configuration."""
    num_steps = c.settings.num_steps if entry is None else entry.num_steps
    if c.hand_designed is not None:
        tuned = {} if c.plan is None or entry is None else c.plan.tuned.get(entry.name, {})
        return c.hand_designed.build(num_steps, **tuned)
    if c.theta_path is None:
        theta = c.optimizer.init_theta(jax.random.PRNGKey(c.settings.seed))
    else:
        theta = learned.load_theta(c.optimizer, c.theta_path)
    return hand_designed.OptaxOptimizer(as_optax(c.optimizer, theta, num_steps))


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


def _band(ax: Any, xs: np.ndarray, per_seed: np.ndarray, color: str, label: str) -> np.ndarray:
    """Mean over seeds with a +-1 std band (over the finite seeds; a gap where every seed diverged);
    the mean, for the axis scale."""
    mean = comparison.finite_mean(per_seed)
    with np.errstate(all="ignore"):
        std = np.sqrt(comparison.finite_mean(np.square(per_seed - mean)))
    ax.plot(xs, mean, color=color, label=f"{label} ({len(per_seed)} seeds)")
    ax.fill_between(xs, mean - std, mean + std, color=color, alpha=0.2, linewidth=0)
    return mean


def _plot(result: dict[str, Any], optimizer_cfg: Mapping[str, Any] | None, baseline: comparison.Baseline | None,
          run_dir: Path) -> Any:
    """One panel per eval curve (losses on a log axis), each seed-averaged with a +-1 std band; the
    tuned baseline's alongside when comparing; titled with the task and the run directory."""
    from lopt import figures

    plt = pyplot()
    label = figures.optimizer_label(result["optimizer"], result["learned"], optimizer_cfg,
                                    trained=result.get("checkpoint") is not None)
    metrics = [m for m in ("eval/train/loss", "eval/test/loss", "eval/test/accuracy") if m in result["curves"]]
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.8 * len(metrics), 4.8), squeeze=False)
    xs = np.asarray(result["eval/xs"])
    for ax, name in zip(axes[0], metrics):
        shown = [_band(ax, xs, np.asarray(result["curves"][name]["per_seed"], float), "tab:blue", label)]
        if baseline is not None and name in baseline.curves:
            shown.append(_band(ax, xs, baseline.curves[name], "k", f"tuned {baseline.label} (best of its sweep)"))
        figures.metric_axis(ax, name, np.concatenate(shown))
    figures.legend_outside(axes[0, len(metrics) // 2], title="lines: mean over seeds; shaded: ±1 std over seeds",
                           below=True)
    detail = f"{label} vs the tuned {baseline.label}" if baseline is not None else label
    fig.suptitle(figures.title(result["task"], run_dir, detail))
    return fig


def run(cfg: DictConfig, run_dir: Path, console: Console) -> dict[str, Any]:
    """Train `num_seeds` seeds and write curves.json, curves.png and W&B logs to `run_dir`."""
    job, c = prepare(build, cfg, run_dir, console)
    if c.plan is not None:
        return evaluate_suite.run(job, c.plan, c.settings, _label(cfg, c), c.learned, c.theta_path,
                                  lambda entry: _training_optimizer(c, entry), console)
    s = c.settings
    dataset = job.load(c.task_config)
    optimizer = _training_optimizer(c)
    key = jax.random.PRNGKey(s.seed)
    compiled, compile_s = curves.compile_curves(c.task, c.task_config.name, optimizer, dataset, key, s, job.mesh,
                                               console)  # refuses what cannot fit
    job.write_config()
    name = cfg["lopt"]["name"] if c.learned else cfg["optimizer"]["name"]
    with console.status(f"training {s.num_seeds} seeds x {s.num_steps} steps of {c.task_config.name} with {name}"):
        values = compiled(None, dataset, key)  # the arguments that are not static
        values = {k: np.asarray(v) for k, v in jax.device_get(values).items()}
    result = {"task": c.task_config.name, "optimizer": name, "learned": c.learned,
              "checkpoint": None if c.theta_path is None else str(c.theta_path), **_summarize(values, s)}
    if c.baseline is not None:
        result["comparison"] = comparison.compare(values, c.baseline)
        result["summary"].update(comparison.flat(result["comparison"]))
        console.print(comparison.table(result["comparison"], name))
    job.write_json("curves.json", result)
    job.save_figure(_plot(result, cfg.get("optimizer"), c.baseline, job.dir), "curves.png")
    with job.tracker("evaluate") as tracker:
        for i, x in enumerate(result["eval/xs"]):
            tracker.log({"step": x, **{k: v["mean"][i] for k, v in result["curves"].items()
                                       if k.startswith("eval/")}}, step=x)
        tracker.summary(result["summary"])
    return {"task": c.task_config.name, "optimizer": name, "num_seeds": s.num_seeds, "num_steps": s.num_steps,
            "compile_s": compile_s, **result["summary"], "run_dir": str(job.dir),
            **job.wrote("config.yaml, curves.json, curves.png")}


def _label(cfg: DictConfig, c: Components) -> str:
    """The evaluated optimizer in words (`adam lr=0.001`, `small_fc_lopt (meta-trained)`, `nadamw
    (tuned per task: random search)`)."""
    from lopt import figures

    name = cfg["lopt"]["name"] if c.learned else cfg["optimizer"]["name"]
    if c.settings.tuned is not None and not c.learned:
        return f"{name} (tuned per task: {c.settings.tuned} search)"
    return figures.optimizer_label(name, c.learned, cfg.get("optimizer"), trained=c.theta_path is not None)
