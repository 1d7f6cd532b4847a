"""The outer loop every meta-training mode runs: when to log, evaluate and checkpoint, the training
rates (the first iteration and evaluation time left out), resume, the non-finite stop, and the
final checkpoint and theta.

A mode (one learned optimizer, `lopt.commands.meta_train`; a population,
`lopt.commands.population`) implements `Mode`: it advances its own state one outer iteration at a
time and says what to log; this module owns the clock and the run directory's checkpoints.
"""
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

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

from lopt.errors import UserError
from lopt.io import checkpoint, resume
from lopt.io.tracking import NullTracker, Tracker
from lopt.platform import distributed, preemption


@dataclass(frozen=True)
class Timing:
    """When the loop logs, checkpoints and stops (a meta-train run's top-level settings)."""

    outer_iterations: int
    log_every: int
    checkpoint_every: int  # 0: only at the end
    max_nonfinite_iterations: int


@dataclass(frozen=True)
class Logged:
    """What a mode logged at an iteration: its outer loss (the progress bar's) and the number of
    consecutive iterations its state has been non-finite for (the stop's)."""

    loss: float
    nonfinite_streak: int


class Mode(Protocol):
    """One way of meta-training, as the loop drives it. Its state lives on the devices, placed
    as its compiled program expects, before the loop starts."""

    name: str  # the progress bar's label
    nonfinite_whose: str  # "of every task": whose losses stayed non-finite, in the stop's message
    nonfinite_lower: str  # the setting the stop's message suggests lowering

    def advance(self, it: int) -> Any:
        """Run outer iteration `it`; its report (on the device: nothing is transferred)."""

    def inner_steps(self) -> int:
        """The inner steps the last `advance` ran (the rates' numerator)."""

    def log(self, it: int, report: Any, rates: dict[str, float], wall_s: float) -> Logged:
        """Log iteration `it` (its `report`, the loop's `rates` since the last log, the run's wall
        time) to the mode's trackers."""

    def between(self, it: int, wall_s: float) -> float:
        """What the mode does after iteration `it` has been logged (evaluations, exploitation); the
        seconds of it the rates leave out."""

    def snapshot(self, it: int) -> Any:
        """The state to checkpoint at iteration `it`."""

    def final_theta(self) -> Any:
        """The meta-parameters to write as final_theta/ (after the last iteration)."""

    def stopped(self) -> None:
        """Called before a non-finite stop raises (the mode's figures)."""


CORRUPT_DIR = "corrupt_checkpoints"  # where a resume sets aside checkpoints that do not verify


def restore(run_dir: Path, cfg: DictConfig, like: Any, outer_iterations: int) -> Any | None:
    """The latest checkpointed state of the run in `run_dir` that verifies, in the layout of `like`
    (shapes suffice), after checking that `cfg` is the run's config; None if it has none. A later
    checkpoint that does not verify (truncated, a flipped byte) is moved to `corrupt_checkpoints/`
    with a warning naming it, so the run continues from the one before; when none verifies, a
    UserError names each. Writes nothing else."""
    if not (run_dir / "checkpoints").is_dir():
        return None
    ckpt = checkpoint.Checkpointer(run_dir / "checkpoints")
    bad: list[tuple[int, checkpoint.CorruptCheckpoint]] = []
    try:
        steps = ckpt.all_steps()
        if not steps:
            return None
        resume.check_config(run_dir, cfg)
        if steps[0] > outer_iterations:
            raise UserError(f"outer_iterations={outer_iterations} is below the iteration of the run's latest "
                            f"checkpoint, {ckpt.directory / str(steps[0])}: resume with outer_iterations >= "
                            f"{steps[0]}.")
        for good in steps:
            try:
                state = ckpt.restore(good, like)
                break
            except checkpoint.CorruptCheckpoint as err:
                bad.append((good, err))
        else:
            raise UserError(f"No checkpoint of {run_dir} verifies, so the run cannot resume: "
                            f"{' '.join(str(e) for _, e in bad)} Start a new run directory.")
    finally:
        ckpt.close()
    distributed.barrier("lopt: checkpoints verified")  # every process has read before any is moved
    for step, why in bad:
        aside = run_dir / CORRUPT_DIR / str(step)
        Console(stderr=True, soft_wrap=True).print(
            f"lopt: warning: {why} Resuming from the checkpoint of iteration {good}; the bad one is moved to {aside}.",
            style="yellow", markup=False, highlight=False)
        if distributed.is_main_process():
            aside.parent.mkdir(exist_ok=True)
            shutil.move(str(run_dir / "checkpoints" / str(step)), aside)
    return state


def nonfinite_error(it: int, streak: int, max_nonfinite_iterations: int, directory: Path,
                    whose: str = "of every task", lower: str = "outer_opt.lr") -> UserError:
    """The error that stops a run whose losses have stayed non-finite (its state checkpointed at
    `it` in `directory`)."""
    return UserError(
        f"Meta-training stopped at outer iteration {it}: the loss {whose} or the outer update has been "
        f"non-finite for {streak} consecutive iterations (max_nonfinite_iterations={max_nonfinite_iterations}), "
        f"so theta has not changed since iteration {it - streak}. That state is checkpointed in "
        f"{directory / str(it)}. Lower {lower} or estimator.std, or check the task, in a new run; "
        f"resuming this run with a larger max_nonfinite_iterations continues from the checkpoint.")


class _RateColumn(ProgressColumn):
    def render(self, task: Any) -> Text:
        speed = task.finished_speed or task.speed
        return Text("-- it/s" if speed is None else f"{speed:.2f} it/s", style="progress.data.speed")


def _progress(console: Console, name: str) -> Progress:
    return Progress(TextColumn(f"[bold]{name}"), BarColumn(), MofNCompleteColumn(), _RateColumn(),
                    TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
                    TextColumn("outer loss {task.fields[loss]}"), console=console)


def run(mode: Mode, timing: Timing, start: int, run_dir: Path, tracker: Tracker | NullTracker, console: Console,
        wall_before: float, t_command: float) -> dict[str, Any]:
    """Run iterations `start + 1` to `timing.outer_iterations` of `mode`, checkpointing into
    `run_dir`/checkpoints and writing `run_dir`/final_theta at the end. `wall_before` is the wall
    time a resumed run had logged; `t_command` when the command started (the first iteration's
    wait is measured from it). Returns the summary fields every mode shares."""
    if start:
        console.print(f"Resuming {run_dir} from outer iteration {start}.", soft_wrap=True)
    ckpt = checkpoint.Checkpointer(run_dir / "checkpoints")  # collective: every process takes part
    try:
        t_start = time.perf_counter()

        def wall() -> float:
            return wall_before + time.perf_counter() - t_start

        first_done: float | None = None
        window_t, window_it, window_steps = 0.0, start, 0
        steady_steps, between_s = 0, 0.0  # after the first iteration; time spent between iterations
        with _progress(console, mode.name) as progress, preemption.Catcher() as preempt:
            bar = progress.add_task(mode.name, total=timing.outer_iterations, completed=start, loss="--")
            for it in range(start + 1, timing.outer_iterations + 1):
                report = mode.advance(it)
                if first_done is None:  # the rates leave the first iteration out
                    jax.block_until_ready(report)
                    window_t = first_done = time.perf_counter()
                    window_it = it
                else:
                    steps_run = mode.inner_steps()
                    window_steps += steps_run
                    steady_steps += steps_run
                if it % timing.log_every == 0 or it == timing.outer_iterations:
                    now = time.perf_counter()
                    spent = now - window_t
                    its = (it - window_it) / spent if it > window_it else float("nan")
                    steps = window_steps / spent if it > window_it else float("nan")
                    logged = mode.log(it, report, {"outer_iterations_per_s": its, "inner_steps_per_s": steps},
                                      wall())
                    window_t, window_it, window_steps = now, it, 0
                    progress.update(bar, loss=f"{logged.loss:.4f}")
                    if logged.nonfinite_streak >= timing.max_nonfinite_iterations:
                        if ckpt.latest_step() != it:
                            ckpt.save(it, mode.snapshot(it))
                        mode.stopped()
                        tracker.summary({"stopped": "non-finite losses", "stopped_at_iteration": it,
                                         "nonfinite_streak": logged.nonfinite_streak})
                        raise nonfinite_error(it, logged.nonfinite_streak, timing.max_nonfinite_iterations,
                                              ckpt.directory, mode.nonfinite_whose, mode.nonfinite_lower)
                seconds = mode.between(it, wall())
                window_t += seconds  # evaluation time stays out of the training rates
                between_s += seconds
                if timing.checkpoint_every and it % timing.checkpoint_every == 0:
                    ckpt.save(it, mode.snapshot(it))
                progress.update(bar, advance=1)
                if distributed.main_says(preempt.signum is not None) and it < timing.outer_iterations:
                    if ckpt.latest_step() != it:  # the iteration in flight is done: keep it
                        ckpt.save(it, mode.snapshot(it))
                    preempt.stop(it)
        if ckpt.latest_step() != timing.outer_iterations:
            ckpt.save(timing.outer_iterations, mode.snapshot(timing.outer_iterations))
        checkpoint.save_tree(run_dir / "final_theta", mode.final_theta())  # collective (orbax)
        end = time.perf_counter()
        steady = (steady_steps / (end - first_done - between_s) if steady_steps and first_done is not None
                  else float("nan"))
        return {"outer_iterations": timing.outer_iterations, "resumed_from_iteration": start,
                "first_iteration_s": None if first_done is None else first_done - t_command,
                "wall_s": end - t_start, "inner_steps_per_s": steady, "eval_s": between_s, "run_dir": str(run_dir)}
    finally:
        ckpt.close()
