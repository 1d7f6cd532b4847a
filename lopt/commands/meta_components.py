"""What a meta-training run is made of: its top-level settings and its components (tasks, unrolls,
learned optimizer, estimator, schedule, outer optimizer, evaluation plan, population), validated and
built from the config without loading data or compiling; and the data its tasks train on. Both
meta-training modes (`lopt.commands.meta_train`, `lopt.commands.population`) run on these."""
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

from lopt import data as data_lib
from lopt import estimators, learned, schedules, tasks
from lopt.base import GradientEstimator, LearnedOptimizer, TruncationSchedule
from lopt.commands.base import Shared, settings
from lopt.commands.outer_loop import Timing
from lopt.config import check, from_config
from lopt.errors import ConfigError
from lopt.estimators.base import TruncatedEstimator
from lopt.evaluation import periodic
from lopt.evaluation.suite import parse_selected
from lopt.io import theta_files
from lopt.meta_trainer import MetaTrainer
from lopt.optimizers import outer as outer_lib
from lopt.population.settings import SELF, PopulationSettings
from lopt.tasks import family
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
    resume: str | None = None  # a run directory to continue (lopt.io.resume)
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

    @property
    def timing(self) -> Timing:
        """When the outer loop logs, checkpoints and stops."""
        return Timing(self.outer_iterations, self.log_every, self.checkpoint_every, self.max_nonfinite_iterations)


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
    outer: outer_lib.OuterOptimizer
    theta_path: Path | None
    eval_plan: periodic.Plan | None  # evaluation during meta-training (eval.every > 0, or a population's)
    population: PopulationSettings | None  # population self-training: set in `PopulationComponents` only
    lopt_name: str  # the config names of the learned optimizer and the estimator (the summary's)
    estimator_name: str

    def load_data(self) -> tuple[data_lib.Dataset | None, ...]:
        """Every variant's dataset on the device (each distinct dataset loaded once)."""
        return family.load_data(self.task_configs, lambda t: tasks.load_data(t, self.shared.data, self.settings.seed))

    @cached_property
    def trainer(self) -> MetaTrainer:
        return MetaTrainer(self.unrolls, tuple(t.name for t in self.task_configs), self.lopt, self.estimator,
                           self.outer.transform(), self.schedule, self.settings.num_tasks,
                           self.settings.random_initial_offset)


@dataclass(frozen=True)
class PopulationComponents(Components):
    """The components of a population run (`population=`): the same, with its population node."""

    population: PopulationSettings


def build(cfg: Mapping[str, Any]) -> Components:
    """Validate the whole config and build every component; loads no data, compiles nothing."""
    s = settings(Settings, cfg)
    shared = Shared.parse(cfg)
    training = parse_selected(cfg.get("suite"), s.suite_tasks)  # suite tasks meta-training trains on
    suite_configs = tuple(t.config for t in training.tasks) if training else ()
    variants = family.variants(cfg.get("family"), suite_tasks=periodic.suite_task_configs)
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
    parts = (s, shared, task_configs, unrolls, lopt, estimator, schedule, outer, theta_files.theta_path(s.theta),
             eval_plan)
    names = (str(cfg["lopt"]["name"]), str(cfg["estimator"]["name"]))
    if population is None:
        return Components(*parts, None, *names)
    return PopulationComponents(*parts, population, *names)  # population self-training's mode


def _task_schedules(variants: list[family.Variant], num_configs: int, schedule: TruncationSchedule,
                    estimator: GradientEstimator, meta_loss: meta_losses.MeanLoss) -> tuple[TruncationSchedule, ...]:
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
