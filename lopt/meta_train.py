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

from lopt import checkpoint, data as data_lib, distributed, estimators, learned, resume, schedules, tasks
from lopt.config import check, from_config
from lopt.estimators.multi_task import MultiTask
from lopt.tasks import family
from lopt.errors import UserError
from lopt.optimizers import outer as outer_lib
from lopt.results import trim_records
from lopt.settings import DataSettings, TrackingSettings, data_and_tracking, write_run_config
from lopt.unroll import TruncatedUnroll, meta_loss as meta_losses

GROUPS = ("task", "family", "lopt", "estimator", "meta_loss", "schedule", "outer_opt", "data", "tracking",
          "distributed")


class MetaTrainState(NamedTuple):
    theta: Any
    outer_opt_state: Any
    estimator_state: Any
    key: jax.Array
    iteration: jax.Array
    nonfinite_streak: jax.Array  # consecutive outer iterations in which no task was finite


@dataclass(frozen=True)
class Settings:
    """Top-level meta-training settings (the config's non-group keys)."""

    seed: int = 0
    num_tasks: int = 8
    outer_iterations: int = 1000
    random_initial_offset: bool = True
    log_every: int = 10
    checkpoint_every: int = 100
    max_nonfinite_iterations: int = 10  # stop after this many consecutive iterations with no finite task
    resume: str | None = None  # a run directory to continue (lopt.resume)

    def __post_init__(self):
        check(self.num_tasks > 0, "num_tasks", self.num_tasks, "a positive integer")
        check(self.outer_iterations > 0, "outer_iterations", self.outer_iterations, "a positive integer")
        check(self.log_every > 0, "log_every", self.log_every, "a positive integer")
        check(self.checkpoint_every >= 0, "checkpoint_every", self.checkpoint_every,
              "a non-negative integer (0 = only at the end)")
        check(self.max_nonfinite_iterations > 0, "max_nonfinite_iterations", self.max_nonfinite_iterations,
              "a positive integer")


def _select(cond: jax.Array, a: Any, b: Any) -> Any:
    """Tree `a` where the scalar `cond` holds, else `b`."""
    return jax.tree_util.tree_map(lambda x, y: jnp.where(cond, x, y), a, b)


@dataclass(frozen=True)
class MetaTrainer:
    """The components of one meta-training run and its pure outer step. With task families,
    `unroll` is a tuple (one per variant) and `estimator` a `MultiTask` over them."""

    unroll: TruncatedUnroll | tuple[TruncatedUnroll, ...]
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
        return MetaTrainState(theta, self.outer_opt.init(theta), est, k_next, jnp.zeros((), jnp.int32),
                              jnp.zeros((), jnp.int32))  # two buffers: the state is donated

    def step(self, state: MetaTrainState, data: data_lib.Dataset) -> tuple[MetaTrainState, dict]:
        """One outer iteration. The estimator drops non-finite tasks; when none is finite, theta and
        the outer-optimizer state stay as they are and `nonfinite_streak` counts the iteration."""
        key, k_est = jax.random.split(state.key)
        grad, est, metrics = self.estimator.estimate(
            self.unroll, state.theta, state.estimator_state, data, k_est, state.iteration)
        updates, opt_state = self.outer_opt.update(grad, state.outer_opt_state, state.theta)
        skip = metrics["outer/nonfinite_tasks"] >= self.num_tasks * self.num_variants
        theta = _select(skip, state.theta, optax.apply_updates(state.theta, updates))
        opt_state = _select(skip, state.outer_opt_state, opt_state)
        streak = jnp.where(skip, state.nonfinite_streak + 1, 0)
        metrics = {**metrics, "outer/grad_norm": optax.tree.norm(grad),
                   "outer/theta_norm": optax.tree.norm(theta), "outer/nonfinite_streak": streak}
        return MetaTrainState(theta, opt_state, est, key, state.iteration + 1, streak), metrics

    @property
    def inner_steps_per_iteration(self) -> int:
        """Inner steps one outer iteration computes, every branch (e.g. antithetic pair) counted
        (full_es: the schedule's max_length steps per problem, masked steps included)."""
        return self.estimator.inner_steps(self.num_tasks, self.unrolls[0].schedule)

    @property
    def unrolls(self) -> tuple[TruncatedUnroll, ...]:
        return self.unroll if isinstance(self.unroll, tuple) else (self.unroll,)

    @property
    def num_variants(self) -> int:
        """Task variants trained at once (1 without a task family), each with num_tasks problems."""
        return len(self.unrolls)


class Components(NamedTuple):
    settings: Settings
    data: DataSettings
    tracking: TrackingSettings
    task_configs: tuple[tasks.TaskConfig, ...]  # the task, or every task-family variant
    trainer: MetaTrainer
    theta_checkpoint: Path | None


def build(cfg: Mapping[str, Any]) -> Components:
    """Validate the whole config and build every component; loads no data, compiles nothing."""
    settings = from_config(Settings, {k: v for k, v in cfg.items() if k not in GROUPS}, "")
    distributed.parse(cfg.get("distributed"))  # checked before any run directory is written
    data_settings, tracking = data_and_tracking(cfg)
    task_configs = tuple(family.variants(cfg.get("family"))) or (tasks.parse(cfg["task"]),)
    schedule = schedules.build(cfg["schedule"])
    estimator = estimators.build(cfg["estimator"])
    meta_loss = meta_losses.build(cfg["meta_loss"])
    estimator.check_schedule(schedule)
    meta_loss.check_schedule(schedule)
    lopt = learned.build(cfg["lopt"])
    outer = outer_lib.build(cfg["outer_opt"]).transform()
    unrolls = tuple(TruncatedUnroll(tasks.build(t), lopt, schedule, meta_loss) for t in task_configs)
    if len(unrolls) > 1:  # a task family: one vectorized unroll per variant, estimates averaged
        unroll, estimator = unrolls, MultiTask(estimator, tuple(t.name for t in task_configs))
    else:
        unroll = unrolls[0]
    trainer = MetaTrainer(unroll, lopt, estimator, outer, settings.num_tasks, settings.random_initial_offset)
    return Components(settings, data_settings, tracking, task_configs, trainer,
                      learned.checkpoint_path(cfg["lopt"]))


def load_data(c: Components) -> data_lib.Dataset | tuple:
    """The task's dataset, or a tuple of every family variant's (each distinct dataset loaded once)."""
    datasets = family.load_data(c.task_configs, lambda t: c.data.load(t, c.settings.seed))
    return datasets if isinstance(c.trainer.unroll, tuple) else datasets[0]


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


def _stop_nonfinite(it: int, streak: int, state: MetaTrainState, ckpt: checkpoint.Checkpointer,
                    tracker: Any, s: Settings) -> None:
    """Checkpoint the state of a run whose tasks all stay non-finite, summarize and stop it."""
    if ckpt.latest_step() != it:
        ckpt.save(it, state)
    tracker.summary({"stopped": "non-finite losses", "stopped_at_iteration": it, "nonfinite_streak": streak})
    raise UserError(
        f"Meta-training stopped at outer iteration {it}: the loss of every task has been non-finite for "
        f"{streak} consecutive iterations (max_nonfinite_iterations={s.max_nonfinite_iterations}), so theta "
        f"has not changed since iteration {it - streak}. That state is checkpointed in "
        f"{ckpt.directory / str(it)}. Lower outer_opt.lr or estimator.std, or check the task, in a new run; "
        f"resuming this run with a larger max_nonfinite_iterations continues from the checkpoint.")


def run(cfg: DictConfig, run_dir: Path, console: Console) -> dict[str, Any]:
    """Meta-train as `cfg` says, writing config, metrics, checkpoints and final theta to `run_dir`
    (the run named by `resume`, when given). A directory that already holds checkpoints (a killed
    run, or one extended by a larger outer_iterations) continues from the latest one, with the
    numbers of an uninterrupted run: every random draw flows from the checkpointed key."""
    c = build(cfg)
    s, trainer = c.settings, c.trainer
    mesh = distributed.setup(cfg.get("distributed"))  # multi-host start-up precedes any device use
    distributed.check_divisible(s.num_tasks, mesh, "num_tasks")
    run_dir = resume.run_directory(s.resume, run_dir)
    restored = _restore(run_dir, cfg, c)  # a bad checkpoint or changed config writes nothing
    dataset = load_data(c)  # before writing anything: missing data leaves no half-made run
    theta0 = None
    if restored is None and c.theta_checkpoint is not None:
        theta0 = learned.load_theta(trainer.lopt, c.theta_checkpoint)
    start = 0 if restored is None else int(restored.iteration)
    write_run_config(run_dir, cfg)
    last = trim_records(run_dir / "metrics.jsonl", "outer_iteration", start) or {}  # drop records past it
    tracker = c.tracking.open(run_dir, cfg, "meta-train", console)
    ckpt = checkpoint.Checkpointer(run_dir / "checkpoints")
    exit_code = 1
    try:
        state = trainer.init(jax.random.PRNGKey(s.seed), theta0) if restored is None else restored
        # tasks sharded over the mesh's devices, the rest replicated; compiled once (lopt.distributed)
        state, dataset, step = distributed.jit_step(trainer.step, state, dataset, mesh, ("estimator_state",))
        if start:
            console.print(f"Resuming {run_dir} from outer iteration {start}.", soft_wrap=True)
        t_start = time.perf_counter()
        first_done = None
        with _progress(console) as progress:
            bar = progress.add_task("meta-train", total=s.outer_iterations, completed=start, loss="--")
            for it in range(start + 1, s.outer_iterations + 1):
                state, metrics = step(state, dataset)
                if first_done is None:  # rates below exclude compilation
                    jax.block_until_ready(state)
                    window_t = first_done = time.perf_counter()
                    window_it = it
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
                    if values["outer/nonfinite_streak"] >= s.max_nonfinite_iterations:
                        _stop_nonfinite(it, int(values["outer/nonfinite_streak"]), state, ckpt, tracker, s)
                if s.checkpoint_every and it % s.checkpoint_every == 0:
                    ckpt.save(it, state)
                progress.update(bar, advance=1)
        if ckpt.latest_step() != s.outer_iterations:
            ckpt.save(s.outer_iterations, state)
        checkpoint.save_tree(run_dir / "final_theta", state.theta)
        end = time.perf_counter()
        done = s.outer_iterations - start  # iterations run by this process
        steady = (done - 1) / (end - first_done) if done > 1 else float("nan")
        summary = {
            "task": ",".join(t.name for t in c.task_configs), "lopt": cfg["lopt"]["name"], "estimator": cfg["estimator"]["name"],
            "num_tasks": s.num_tasks, "outer_iterations": s.outer_iterations, "resumed_from_iteration": start,
            "final_outer_loss": last.get("outer/loss"),
            "first_iteration_s": None if first_done is None else first_done - t_start,
            "wall_s": end - t_start, "inner_steps_per_s": steady * trainer.inner_steps_per_iteration,
            "run_dir": str(run_dir), "wrote": "config.yaml, metrics.jsonl, checkpoints/, final_theta/",
        }
        tracker.summary(summary)
        exit_code = 0
        return summary
    finally:
        ckpt.close()
        tracker.finish(exit_code)
