"""`lopt meta-train`: meta-train a learned optimizer, logging, checkpointing and resuming.

The outer step is `lopt.meta_trainer.MetaTrainer.step`, jitted once with its state donated and the
task axis sharded over the devices; `Single` is the mode the outer loop
(`lopt.commands.outer_loop`) drives with it. A config with a `population` runs
`lopt.commands.population` instead.
"""
import time
from pathlib import Path
from typing import Any

import jax
from omegaconf import DictConfig
from rich.console import Console

from lopt import figures, learned
from lopt.commands import outer_loop, population
from lopt.commands.base import Job, prepare
from lopt.commands.meta_components import Components, PopulationComponents, Settings, build
from lopt.evaluation import periodic
from lopt.figures import meta_training
from lopt.io import checkpoint, resume
from lopt.io.results import read_jsonl
from lopt.io.tracking import NullTracker, Tracker
from lopt.meta_trainer import MetaTrainState, OuterStep, metric_record
from lopt.platform import distributed, memory

__all__ = ["Components", "Settings", "Single", "build", "run"]


def _compile(c: Components, theta0: Any, data: Any, job: Job, console: Console) -> tuple[Any, float]:
    """The outer step compiled ahead of time for the state `c.trainer.init` will make (its shapes
    only: nothing is allocated) and `data` (placed replicated), after checking that state and step
    fit in the devices' memory (`lopt.platform.memory`); and the seconds it took."""
    trainer, mesh = c.trainer, job.mesh
    shapes = jax.eval_shape(trainer.init, jax.random.PRNGKey(c.settings.seed), theta0)
    axes = trainer.task_axes(shapes)
    task_bytes = memory.tree_bytes([x for x, has_axis in zip(jax.tree_util.tree_leaves(shapes),
                                                             jax.tree_util.tree_leaves(axes)) if has_axis])
    sizing = memory.Sizing(
        "num_tasks", c.settings.num_tasks, "the meta-training state and the outer step",
        "lower num_tasks", "use a smaller task or learned optimizer", mesh.size)
    return memory.compile_checked(lambda: distributed.lower_step(trainer.step, shapes, data, mesh, axes), console,
                                  "the outer step", sizing, mesh,
                                  lambda fp: fp.arguments - task_bytes // mesh.size)


class Single:
    """One learned optimizer meta-trained by `MetaTrainer`: the outer loop's `Mode`. Evaluates
    theta every `eval.every` iterations (keeping the best as best_theta/ when `eval.select` says)."""

    name = "meta-train"
    nonfinite_whose, nonfinite_lower = "of every task", "outer_opt.lr"

    def __init__(self, c: Components, job: Job, step: Any, state: MetaTrainState, dataset: Any,
                 evaluator: periodic.Evaluator | None, tracker: Tracker | NullTracker, last: dict[str, Any]):
        self.c, self.job, self._step, self.state, self.dataset = c, job, step, state, dataset
        self.evaluator, self.tracker = evaluator, tracker
        self.last = last  # the last logged record (a resumed run's, until this run logs)
        s = c.settings
        self.selection = None if s.eval.select is None else periodic.Selection(s.eval.select, job.dir)

    def advance(self, it: int) -> OuterStep:
        self.state, report = self._step(self.state, self.dataset)
        return report

    def inner_steps(self) -> int:
        return self.c.trainer.inner_steps_per_iteration

    def log(self, it: int, report: OuterStep, rates: dict[str, float], wall_s: float) -> outer_loop.Logged:
        values = metric_record(report)
        self.last = {"outer_iteration": it, **values, "perf/inner_steps_per_s": rates["inner_steps_per_s"],
                     "perf/outer_iterations_per_s": rates["outer_iterations_per_s"], "time/wall_s": wall_s}
        self.tracker.log(self.last, step=it)
        return outer_loop.Logged(values["outer/loss"], int(self.state.nonfinite_streak))

    def between(self, it: int, wall_s: float) -> float:
        s = self.c.settings
        if self.evaluator is None or not (it % s.eval.every == 0 or it == s.outer_iterations):
            return 0.0
        record, _ = self.evaluator(self.state.theta)
        self.tracker.log({"outer_iteration": it, **record, "time/wall_s": wall_s}, step=it)
        if self.selection is not None and self.selection.offer(it, record):
            checkpoint.save_tree(self.job.dir / "best_theta", self.state.theta)  # collective (orbax)
            self.job.write_json("best.json", self.selection.record())
        return record["time/eval_s"]

    def snapshot(self, it: int) -> MetaTrainState:
        return self.state

    def final_theta(self) -> Any:
        return self.state.theta

    def stopped(self) -> None:
        pass

    def figure(self) -> None:
        """meta_training.png, from every record of the run (its resumed parts included)."""
        if self.evaluator is None or not self.job.main:
            return
        records = read_jsonl(self.job.dir / "metrics.jsonl")
        names = self.c.trainer.names
        self.job.save_figure(meta_training.figure(records, list(self.evaluator.plan.groups),
                                                figures.title(figures.tasks_label(names), self.job.dir,
                                                              f"meta-training of {self.c.lopt_name}")),
                             "meta_training.png")


def run(cfg: DictConfig, run_dir: Path, console: Console, components: Components | None = None) -> dict[str, Any]:
    """Meta-train as `cfg` says, writing config, metrics, checkpoints and final theta to `run_dir`
    (the run named by `resume`, when given). A directory that already holds checkpoints (a killed
    run, or one extended by a larger outer_iterations) continues from the latest one, with the
    numbers of an uninterrupted run: every random draw flows from the checkpointed key."""
    t_command = time.perf_counter()  # the wait a user sees runs from here to the first iteration's end
    job, c = prepare(build, cfg, run_dir, console, components)
    if isinstance(c, PopulationComponents):
        return population.run(job, c, console, t_command)
    s, trainer = c.settings, c.trainer
    distributed.check_divisible(s.num_tasks, job.mesh, "num_tasks")
    job.dir = resume.run_directory(s.resume, job.dir)
    like = jax.eval_shape(trainer.init, jax.random.PRNGKey(s.seed))
    restored = outer_loop.restore(job.dir, cfg, like, s.outer_iterations)  # a bad checkpoint writes nothing
    distributed.barrier("lopt: restored")  # every process has looked for checkpoints before any are made
    dataset = c.load_data()  # before writing anything: missing data leaves no half-made run
    theta0 = None
    if restored is None and c.theta_path is not None:
        theta0 = learned.load_theta(trainer.lopt, c.theta_path)
    start = 0 if restored is None else int(restored.iteration)
    dataset = distributed.put(dataset, distributed.replicated(job.mesh))
    step, compile_s = _compile(c, theta0, dataset, job, console)  # refuses what cannot fit, before writing
    evaluator = None if c.eval_plan is None else periodic.Evaluator(
        c.eval_plan, trainer.lopt, trainer.lopt.init_theta(jax.random.PRNGKey(0)), job.mesh, console, job.main)
    job.write_config()
    last = job.trim_records("metrics.jsonl", start)
    with job.tracker("meta-train") as tracker:
        state = trainer.init(jax.random.PRNGKey(s.seed), theta0) if restored is None else restored
        # tasks sharded over the mesh's devices, the rest replicated, as `step` was compiled for
        state = distributed.put(state, distributed.task_shardings(trainer.task_axes(state), job.mesh))
        mode = Single(c, job, step, state, dataset, evaluator, tracker, last)
        del state, restored  # the mode holds the state (donated at every step)
        summary = outer_loop.run(mode, s.timing, start, job.dir, tracker, console,
                                 float(last.get("time/wall_s", 0.0)), t_command)
        summary = {"task": ",".join(trainer.names), "lopt": c.lopt_name, "estimator": c.estimator_name,
                   "num_tasks": s.num_tasks, **summary, "final_outer_loss": mode.last.get("outer/loss"),
                   "compile_s": compile_s,
                   **job.wrote("config.yaml, metrics.jsonl, checkpoints/, final_theta/"
                               + (", meta_training.png" if evaluator is not None else "")
                               + (", best_theta/, best.json" if mode.selection is not None else ""))}
        if evaluator is not None:
            summary.update({"eval_compile_s": evaluator.compile_s})
            mode.figure()
        if mode.selection is not None:
            summary.update({"best_iteration": mode.selection.iteration,
                            f"best {mode.selection.metric}": mode.selection.value})
        tracker.summary(summary)
        return summary
