"""`lopt meta-train`: meta-train a learned optimizer, logging, checkpointing and resuming.

The outer step is `lopt.meta_trainer.MetaTrainer.step`, jitted once with its state donated and the
task axis sharded over the devices; this module is the loop around it that the CLI drives.
"""
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

import jax
from omegaconf import DictConfig
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from lopt import checkpoint, distributed, estimators, figures, learned, memory, resume, schedules, tasks
from lopt import data as data_lib
from lopt.base import GradientEstimator, LearnedOptimizer, TruncationSchedule
from lopt.commands.base import Job, Shared, prepare, settings
from lopt.config import check, from_config
from lopt.errors import ConfigError, UserError
from lopt.estimators.base import TruncatedEstimator
from lopt.evaluation import meta_figure, periodic
from lopt.evaluation.suite import parse_selected
from lopt.meta_trainer import MetaTrainer, MetaTrainState, metric_record
from lopt.optimizers import outer as outer_lib
from lopt.population.settings import SELF, PopulationSettings
from lopt.results import trim_records
from lopt.tasks import family
from lopt.tracking import NullTracker, Tracker
from lopt.unroll import TruncatedUnroll
from lopt.unroll import meta_loss as meta_losses
from lopt.unroll.augment import Augmentation


@dataclass(frozen=True)
class Settings:
    """Top-level meta-training settings (the config's keys that are not config groups)."""

    seed: int = 0
    num_tasks: int = 8
    outer_iterations: int = 1000
    random_initial_offset: bool = True
    log_every: int = 10
    checkpoint_every: int = 100
    max_nonfinite_iterations: int = 10  # stop after this many consecutive iterations with no finite task
    resume: str | None = None  # a run directory to continue (lopt.resume)
    theta: str | None = None  # a meta-train run (or its final_theta/) to start from instead of a fresh init
    suite_tasks: tuple[str, ...] = ()  # with suite=: the suite's tasks meta-training trains on (empty: all)
    eval: periodic.EvalSettings = field(default_factory=periodic.EvalSettings)  # evaluation during meta-training
    augment: Augmentation = field(default_factory=Augmentation)  # task augmentation of the inner problems

    def __post_init__(self):
        check(self.num_tasks > 0, "num_tasks", self.num_tasks, "a positive integer")
        check(self.outer_iterations > 0, "outer_iterations", self.outer_iterations, "a positive integer")
        check(self.log_every > 0, "log_every", self.log_every, "a positive integer")
        check(self.checkpoint_every >= 0, "checkpoint_every", self.checkpoint_every,
              "a non-negative integer (0 = only at the end)")
        check(self.max_nonfinite_iterations > 0, "max_nonfinite_iterations", self.max_nonfinite_iterations,
              "a positive integer")


@dataclass(frozen=True)
class Components:
    """Everything a meta-training run is made of, validated. The trainer (with its outer optimizer,
    which may load a checkpoint) is built on first use, not during validation."""

    settings: Settings
    shared: Shared
    task_configs: tuple[tasks.TaskConfig, ...]  # the task, or every task-family variant and suite task
    unrolls: tuple[TruncatedUnroll, ...]
    lopt: LearnedOptimizer
    estimator: GradientEstimator
    schedule: TruncationSchedule
    outer: Any  # an outer-optimizer config (lopt.optimizers.outer)
    theta_path: Path | None
    eval_plan: periodic.Plan | None  # evaluation during meta-training (eval.every > 0, or a population's)
    population: PopulationSettings | None = None  # population self-training (lopt.commands.population)

    @cached_property
    def trainer(self) -> MetaTrainer:
        return MetaTrainer(self.unrolls, tuple(t.name for t in self.task_configs), self.lopt, self.estimator,
                           self.outer.transform(), self.schedule, self.settings.num_tasks,
                           self.settings.random_initial_offset)


def build(cfg: Mapping[str, Any]) -> Components:
    """Validate the whole config and build every component; loads no data, compiles nothing."""
    s = settings(Settings, cfg)
    shared = Shared.parse(cfg)
    training = parse_selected(cfg.get("suite"), s.suite_tasks)  # suite tasks meta-training trains on
    suite_configs = tuple(t.config for t in training.tasks) if training else ()
    variants = family.variants(cfg.get("family"))
    task_configs = (*(v.config for v in variants), *suite_configs) or (tasks.parse(cfg["task"]),)
    schedule = schedules.build(cfg["schedule"])
    estimator = estimators.build(cfg["estimator"])
    meta_loss = meta_losses.build(cfg["meta_loss"])
    estimator.check_schedule(schedule)
    meta_loss.check_schedule(schedule)
    task_schedules = _task_schedules(variants, len(task_configs), schedule, estimator, meta_loss)
    lopt = learned.build(cfg["lopt"])
    learned.check_architecture(lopt, s.theta, warm_start=True)  # the warm start's run: this architecture
    unrolls = tuple(TruncatedUnroll(tasks.build(t), lopt, sched, meta_loss, s.augment)
                    for t, sched in zip(task_configs, task_schedules))
    population = _population(cfg, s, estimator, schedule)
    eval_plan = (periodic.Plan(s.eval, s.seed, shared.data, training,
                               baselines=population is None or population.needs_baselines)
                 if s.eval.every or population else None)  # a population's baseline-free score reads none
    outer = outer_lib.build(cfg["outer_opt"])
    if population is not None and population.outer != SELF and cfg["outer_opt"]["name"] != population.outer:
        outer = outer_lib.build({"name": population.outer})  # the control's optimizer, at its defaults
    return Components(s, shared, task_configs, unrolls, lopt, estimator, schedule, outer,
                      learned.theta_path(s.theta), eval_plan, population)


def _task_schedules(variants: list[family.Variant], num_configs: int, schedule: TruncationSchedule,
                    estimator: GradientEstimator, meta_loss: Any) -> tuple[TruncationSchedule, ...]:
    """The schedule of each of the run's `num_configs` task configs (the variants first): a family
    variant with a horizon trains its problems for that many steps; every other task (the suite's,
    `task=`, a family without horizons) follows `schedule`."""
    out = []
    for variant in variants:
        if variant.horizon is None:
            out.append(schedule)
            continue
        own = schedules.ConstantSchedule(variant.horizon)
        try:
            estimator.check_schedule(own)
            meta_loss.check_schedule(own)
        except ConfigError as err:
            raise ConfigError(f"family variant {variant.config.name} trains {variant.horizon} steps (its horizon), "
                              f"too few for this run: {err} Raise the family's horizon range.") from None
        out.append(own)
    return (*out, *[schedule] * (num_configs - len(out)))


def _population(cfg: Mapping[str, Any], s: Settings, estimator: GradientEstimator,
                schedule: TruncationSchedule) -> PopulationSettings | None:
    """The `population` node, checked against the rest of the run (None: a single learned optimizer)."""
    if cfg.get("population") is None:
        return None
    p = from_config(PopulationSettings, cfg["population"], "population")
    if not isinstance(estimator, TruncatedEstimator):
        raise ConfigError(f"population needs a truncated estimator, whose truncation length each member "
                          f"re-samples; estimator={cfg['estimator']['name']} has none. Valid choices: pes, tbptt, es, "
                          f"merged.")
    for length in p.trunc_lengths:
        try:
            replace(estimator, trunc_length=length).check_schedule(schedule)
        except ConfigError as err:
            raise ConfigError(f"population.trunc_lengths={list(p.trunc_lengths)} is invalid for this schedule: "
                              f"{err}") from None
    if not (s.eval.suite or s.eval.tasks or s.eval.training_tasks):
        raise ConfigError("population needs evaluation tasks to compare its members on: set eval.suite, "
                          "eval.tasks or eval.training_tasks (e.g. eval.tasks=[digits_mlp]).")
    if s.theta is not None or s.eval.select is not None:
        key, value = ("theta", s.theta) if s.theta is not None else ("eval.select", s.eval.select)
        raise ConfigError(f"{key}={value!r} is invalid with population: its members start from random inits and "
                          f"final_theta/ holds the best member at the last evaluation; set {key}=null.")
    return p


def load_data(c: Components, job: Job | None = None) -> tuple[data_lib.Dataset | None, ...]:
    """Every variant's dataset (each distinct dataset loaded once)."""
    load = (lambda t: c.shared.data.load(t, c.settings.seed)) if job is None else job.load
    return family.load_data(c.task_configs, load)


class _RateColumn(ProgressColumn):
    def render(self, task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("-- it/s" if speed is None else f"{speed:.2f} it/s", style="progress.data.speed")


def _progress(console: Console) -> Progress:
    return Progress(TextColumn("[bold]meta-train"), BarColumn(), MofNCompleteColumn(), _RateColumn(),
                    TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
                    TextColumn("outer loss {task.fields[loss]}"), console=console)


def _restore(run_dir: Path, cfg: DictConfig, c: Components) -> MetaTrainState | None:
    """The latest checkpointed state of the run in `run_dir` (None if it has none), after checking
    that `cfg` is the run's config; reads and writes nothing else."""
    if not (run_dir / "checkpoints").is_dir():
        return None
    ckpt = checkpoint.Checkpointer(run_dir / "checkpoints")
    try:
        last = ckpt.latest_step()
        if last is None:
            return None
        resume.check_config(run_dir, cfg)
        if last > c.settings.outer_iterations:
            raise UserError(f"outer_iterations={c.settings.outer_iterations} is below the iteration of the run's "
                            f"latest checkpoint, {ckpt.directory / str(last)}: resume with outer_iterations >= {last}.")
        return ckpt.restore(last, jax.eval_shape(c.trainer.init, jax.random.PRNGKey(c.settings.seed)))
    finally:
        ckpt.close()


def nonfinite_error(it: int, streak: int, s: Settings, ckpt: checkpoint.Checkpointer,
                    whose: str = "of every task", lower: str = "outer_opt.lr") -> UserError:
    """The error that stops a run whose losses have stayed non-finite (its state checkpointed at `it`)."""
    return UserError(
        f"Meta-training stopped at outer iteration {it}: the loss {whose} or the outer update has been "
        f"non-finite for {streak} consecutive iterations (max_nonfinite_iterations={s.max_nonfinite_iterations}), "
        f"so theta has not changed since iteration {it - streak}. That state is checkpointed in "
        f"{ckpt.directory / str(it)}. Lower {lower} or estimator.std, or check the task, in a new run; "
        f"resuming this run with a larger max_nonfinite_iterations continues from the checkpoint.")


def _stop_nonfinite(it: int, streak: int, state: MetaTrainState, ckpt: checkpoint.Checkpointer,
                    tracker: Tracker | NullTracker, s: Settings) -> None:
    """Checkpoint the state of a run whose tasks all stay non-finite, summarize and stop it."""
    if ckpt.latest_step() != it:
        ckpt.save(it, state)
    tracker.summary({"stopped": "non-finite losses", "stopped_at_iteration": it, "nonfinite_streak": streak})
    raise nonfinite_error(it, streak, s, ckpt)


def _compile(c: Components, theta0: Any, data: Any, job: Job, console: Console) -> tuple[Any, float]:
    """The outer step compiled ahead of time for the state `c.trainer.init` will make (its shapes
    only: nothing is allocated) and `data` (placed replicated), after checking that state and step
    fit in the devices' memory (`lopt.memory`); and the seconds it took."""
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


def run(cfg: DictConfig, run_dir: Path, console: Console) -> dict[str, Any]:
    """Meta-train as `cfg` says, writing config, metrics, checkpoints and final theta to `run_dir`
    (the run named by `resume`, when given). A directory that already holds checkpoints (a killed
    run, or one extended by a larger outer_iterations) continues from the latest one, with the
    numbers of an uninterrupted run: every random draw flows from the checkpointed key."""
    t_command = time.perf_counter()  # the wait a user sees runs from here to the first iteration's end
    job, c = prepare(build, cfg, run_dir, console)
    if c.population is not None:
        from lopt.commands import population

        return population.run(cfg, job, c, console, t_command)
    s, trainer = c.settings, c.trainer
    distributed.check_divisible(s.num_tasks, job.mesh, "num_tasks")
    job.dir = resume.run_directory(s.resume, job.dir)
    restored = _restore(job.dir, cfg, c)  # a bad checkpoint or changed config writes nothing
    distributed.barrier("lopt: restored")  # every process has looked for checkpoints before any are made
    dataset = load_data(c, job)  # before writing anything: missing data leaves no half-made run
    theta0 = None
    if restored is None and c.theta_path is not None:
        theta0 = learned.load_theta(trainer.lopt, c.theta_path)
    start = 0 if restored is None else int(restored.iteration)
    dataset = distributed.put(dataset, distributed.replicated(job.mesh))
    step, compile_s = _compile(c, theta0, dataset, job, console)  # refuses what cannot fit, before writing
    evaluator = None if c.eval_plan is None else periodic.Evaluator(
        c.eval_plan, trainer.lopt, trainer.lopt.init_theta(jax.random.PRNGKey(0)), job.mesh, console, job.main)
    selection = None if s.eval.select is None else periodic.Selection(s.eval.select, job.dir)
    eval_s = 0.0
    job.write_config()
    last: dict[str, Any] = {}
    if job.main:
        last = trim_records(job.dir / "metrics.jsonl", "outer_iteration", start) or {}  # drop records past it
    ckpt = checkpoint.Checkpointer(job.dir / "checkpoints")  # collective: every process takes part
    try:
        with job.tracker("meta-train") as tracker:
            state = trainer.init(jax.random.PRNGKey(s.seed), theta0) if restored is None else restored
            # tasks sharded over the mesh's devices, the rest replicated, as `step` was compiled for
            state = distributed.put(state, distributed.task_shardings(trainer.task_axes(state), job.mesh))
            if start:
                console.print(f"Resuming {job.dir} from outer iteration {start}.", soft_wrap=True)
            t_start = time.perf_counter()
            before = float(last.get("time/wall_s", 0.0))  # a resumed run's logged wall time continues
            first_done = None
            with _progress(console) as progress:
                bar = progress.add_task("meta-train", total=s.outer_iterations, completed=start, loss="--")
                for it in range(start + 1, s.outer_iterations + 1):
                    state, report = step(state, dataset)
                    if first_done is None:  # rates below exclude the first iteration
                        jax.block_until_ready(state)
                        window_t = first_done = time.perf_counter()
                        window_it = it
                    if it % s.log_every == 0 or it == s.outer_iterations:
                        values = metric_record(report)
                        now = time.perf_counter()
                        per_s = (it - window_it) / (now - window_t) if it > window_it else float("nan")
                        last = {"outer_iteration": it, **values,
                                "perf/inner_steps_per_s": per_s * trainer.inner_steps_per_iteration,
                                "perf/outer_iterations_per_s": per_s, "time/wall_s": before + now - t_start}
                        tracker.log(last, step=it)
                        window_t, window_it = now, it
                        progress.update(bar, loss=f"{values['outer/loss']:.4f}")
                        streak = int(state.nonfinite_streak)
                        if streak >= s.max_nonfinite_iterations:
                            _stop_nonfinite(it, streak, state, ckpt, tracker, s)
                    if evaluator is not None and (it % s.eval.every == 0 or it == s.outer_iterations):
                        record, _ = evaluator(state.theta)
                        tracker.log({"outer_iteration": it, **record,
                                     "time/wall_s": before + time.perf_counter() - t_start},
                                    step=it)
                        eval_s += record["time/eval_s"]
                        window_t += record["time/eval_s"]  # evaluation time stays out of the training rates
                        if selection is not None and selection.offer(it, record):
                            checkpoint.save_tree(job.dir / "best_theta", state.theta)  # collective (orbax)
                            job.write_json("best.json", selection.record())
                    if s.checkpoint_every and it % s.checkpoint_every == 0:
                        ckpt.save(it, state)
                    progress.update(bar, advance=1)
            if ckpt.latest_step() != s.outer_iterations:
                ckpt.save(s.outer_iterations, state)
            checkpoint.save_tree(job.dir / "final_theta", state.theta)  # collective (orbax)
            end = time.perf_counter()
            done = s.outer_iterations - start  # iterations run by this process
            steady = ((done - 1) / (end - first_done - eval_s) if done > 1 and first_done is not None
                      else float("nan"))  # evaluation time excluded
            summary = {
                "task": ",".join(c.trainer.names), "lopt": cfg["lopt"]["name"],
                "estimator": cfg["estimator"]["name"], "num_tasks": s.num_tasks, "outer_iterations": s.outer_iterations,
                "resumed_from_iteration": start, "final_outer_loss": last.get("outer/loss"),
                "compile_s": compile_s, "first_iteration_s": None if first_done is None else first_done - t_command,
                "wall_s": end - t_start, "inner_steps_per_s": steady * trainer.inner_steps_per_iteration,
                "run_dir": str(job.dir), **job.wrote("config.yaml, metrics.jsonl, checkpoints/, final_theta/"
                                                     + (", meta_training.png" if evaluator is not None else "")
                                                     + (", best_theta/, best.json" if selection is not None else "")),
            }
            if evaluator is not None:
                summary.update({"eval_s": eval_s, "eval_compile_s": evaluator.compile_s})
                if job.main:  # metrics.jsonl holds every record of the run, resumed parts included
                    records = [json.loads(line) for line in (job.dir / "metrics.jsonl").read_text().splitlines()]
                    job.save_figure(meta_figure.figure(records, list(evaluator.plan.groups),
                                                       figures.title(",".join(trainer.names), job.dir,
                                                                     f"meta-training of {cfg['lopt']['name']}")),
                                    "meta_training.png")
            if selection is not None:
                summary.update({"best_iteration": selection.iteration, f"best {selection.metric}": selection.value})
            tracker.summary(summary)
            return summary
    finally:
        ckpt.close()
