"""Meta-training: estimate a meta-gradient, apply the outer optimizer, log, checkpoint.

`MetaTrainer.step` is one outer iteration as a pure function; jitted with the state donated, it is
the single compiled call per truncation (all tasks, both antithetic branches, every inner step,
the estimator and the outer update). `run` is the loop around it that the CLI drives.
"""
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, NamedTuple

import jax
import jax.numpy as jnp
import optax
from omegaconf import DictConfig
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.text import Text

from lopt import checkpoint, data as data_lib, estimators, learned, schedules, tasks
from lopt.config import check, from_config
from lopt.errors import ConfigError
from lopt.optimizers import outer as outer_lib
from lopt.settings import DataSettings, TrackingSettings, data_and_tracking, write_run_config
from lopt.unroll import TruncatedUnroll

GROUPS = ("task", "lopt", "estimator", "schedule", "outer_opt", "data", "tracking")


class MetaTrainState(NamedTuple):
    theta: Any
    outer_opt_state: Any
    estimator_state: Any
    key: jax.Array
    iteration: jax.Array


@dataclass(frozen=True)
class Settings:
    """Top-level meta-training settings (the config's non-group keys)."""

    seed: int = 0
    num_tasks: int = 8
    outer_iterations: int = 1000
    random_initial_offset: bool = True
    log_every: int = 10
    checkpoint_every: int = 100

    def __post_init__(self):
        check(self.num_tasks > 0, "num_tasks", self.num_tasks, "a positive integer")
        check(self.outer_iterations > 0, "outer_iterations", self.outer_iterations, "a positive integer")
        check(self.log_every > 0, "log_every", self.log_every, "a positive integer")
        check(self.checkpoint_every >= 0, "checkpoint_every", self.checkpoint_every,
              "a non-negative integer (0 = only at the end)")


@dataclass(frozen=True)
class MetaTrainer:
    """The components of one meta-training run and its pure outer step."""

    unroll: TruncatedUnroll
    lopt: Any
    estimator: Any
    outer_opt: optax.GradientTransformation
    num_tasks: int
    random_initial_offset: bool = True

    def init(self, key: jax.Array, theta: Any = None) -> MetaTrainState:
        """A fresh meta-training state; `theta` (e.g. from a checkpoint) replaces a random init."""
        k_theta, k_est, k_next = jax.random.split(key, 3)
        theta = self.lopt.init_theta(k_theta) if theta is None else theta
        est = self.estimator.init(self.unroll, theta, k_est, self.num_tasks, self.random_initial_offset)
        return MetaTrainState(theta, self.outer_opt.init(theta), est, k_next, jnp.zeros((), jnp.int32))

    def step(self, state: MetaTrainState, data: data_lib.Dataset) -> tuple[MetaTrainState, dict]:
        key, k_est = jax.random.split(state.key)
        grad, est, metrics = self.estimator.estimate(
            self.unroll, state.theta, state.estimator_state, data, k_est, state.iteration)
        updates, opt_state = self.outer_opt.update(grad, state.outer_opt_state, state.theta)
        theta = optax.apply_updates(state.theta, updates)
        metrics = {**metrics, "outer/grad_norm": optax.tree.norm(grad),
                   "outer/theta_norm": optax.tree.norm(theta)}
        return MetaTrainState(theta, opt_state, est, key, state.iteration + 1), metrics

    @property
    def inner_steps_per_iteration(self) -> int:
        """Inner steps in one truncation, every branch (e.g. antithetic pair) counted."""
        return self.estimator.inner_steps(self.num_tasks)


class Components(NamedTuple):
    settings: Settings
    data: DataSettings
    tracking: TrackingSettings
    task_config: tasks.TaskConfig
    trainer: MetaTrainer
    theta_checkpoint: Path | None


def build(cfg: Mapping[str, Any]) -> Components:
    """Validate the whole config and build every component; loads no data, compiles nothing."""
    settings = from_config(Settings, {k: v for k, v in cfg.items() if k not in GROUPS}, "")
    data_settings, tracking = data_and_tracking(cfg)
    task_config = tasks.parse(cfg["task"])
    schedule = schedules.build(cfg["schedule"])
    estimator = estimators.build(cfg["estimator"])
    if estimator.trunc_length > schedule.min_length:  # a problem resets at most once per truncation
        raise ConfigError(
            f"estimator.trunc_length={estimator.trunc_length} is longer than the shortest inner problems "
            f"(schedule min length {schedule.min_length}): it must be at most {schedule.min_length}."
        )
    lopt = learned.build(cfg["lopt"])
    outer = outer_lib.build(cfg["outer_opt"]).transform()
    unroll = TruncatedUnroll(tasks.build(task_config), lopt, schedule)
    trainer = MetaTrainer(unroll, lopt, estimator, outer, settings.num_tasks, settings.random_initial_offset)
    return Components(settings, data_settings, tracking, task_config, trainer,
                      learned.checkpoint_path(cfg["lopt"]))


def load_data(c: Components) -> data_lib.Dataset:
    return c.data.load(c.task_config, c.settings.seed)


class _RateColumn(ProgressColumn):
    def render(self, task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("-- it/s" if speed is None else f"{speed:.2f} it/s", style="progress.data.speed")


def _progress(console: Console) -> Progress:
    return Progress(TextColumn("[bold]meta-train"), BarColumn(), MofNCompleteColumn(), _RateColumn(),
                    TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
                    TextColumn("outer loss {task.fields[loss]}"), console=console)


def run(cfg: DictConfig, run_dir: Path, console: Console) -> dict[str, Any]:
    """Meta-train as `cfg` says, writing config, metrics, checkpoints and final theta to `run_dir`."""
    c = build(cfg)
    s, trainer = c.settings, c.trainer
    dataset = load_data(c)  # before writing anything: missing data leaves no half-made run
    theta0 = None if c.theta_checkpoint is None else learned.load_theta(trainer.lopt, c.theta_checkpoint)
    write_run_config(run_dir, cfg)
    tracker = c.tracking.open(run_dir, cfg, "meta-train", console)
    ckpt = checkpoint.Checkpointer(run_dir / "checkpoints")
    step = jax.jit(trainer.step, donate_argnums=0)
    exit_code = 1
    try:
        state = trainer.init(jax.random.PRNGKey(s.seed), theta0)
        t_start = time.perf_counter()
        last: dict[str, Any] = {}
        with _progress(console) as progress:
            bar = progress.add_task("meta-train", total=s.outer_iterations, loss="--")
            for it in range(1, s.outer_iterations + 1):
                state, metrics = step(state, dataset)
                if it == 1:  # rates below exclude compilation
                    jax.block_until_ready(state)
                    window_t = first_done = time.perf_counter()
                    window_it = 1
                if it % s.log_every == 0 or it == s.outer_iterations:
                    values = {k: float(v) for k, v in jax.device_get(metrics).items()}
                    now = time.perf_counter()
                    per_s = (it - window_it) / (now - window_t) if it > window_it else float("nan")
                    last = {"outer_iteration": it, **values,
                            "perf/inner_steps_per_s": per_s * trainer.inner_steps_per_iteration,
                            "perf/outer_iterations_per_s": per_s, "time/wall_s": now - t_start}
                    tracker.log(last, step=it)
                    window_t, window_it = now, it
                    progress.update(bar, loss=f"{values['outer/loss']:.4f}")
                if s.checkpoint_every and it % s.checkpoint_every == 0:
                    ckpt.save(it, state)
                progress.update(bar, advance=1)
        if ckpt.latest_step() != s.outer_iterations:
            ckpt.save(s.outer_iterations, state)
        checkpoint.save_tree(run_dir / "final_theta", state.theta)
        end = time.perf_counter()
        steady = (s.outer_iterations - 1) / (end - first_done) if s.outer_iterations > 1 else float("nan")
        summary = {
            "task": c.task_config.name, "lopt": cfg["lopt"]["name"], "estimator": cfg["estimator"]["name"],
            "num_tasks": s.num_tasks, "outer_iterations": s.outer_iterations,
            "final_outer_loss": last.get("outer/loss"), "first_iteration_s": first_done - t_start,
            "wall_s": end - t_start, "inner_steps_per_s": steady * trainer.inner_steps_per_iteration,
            "run_dir": str(run_dir), "wrote": "config.yaml, metrics.jsonl, checkpoints/, final_theta/",
        }
        tracker.summary(summary)
        exit_code = 0
        return summary
    finally:
        ckpt.close()
        tracker.finish(exit_code)
