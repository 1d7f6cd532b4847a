"""One Hydra job of a `lopt` command, as every launcher runs it (in this process, or pickled into a
joblib worker, a SLURM job or a Ray task).

A job that fails with a user error prints it as one paragraph, removes its run directory if the
command had not started writing results into it (nothing half-written) and ends with exit status
2: a single run exits right away; a multirun job raises `JobFailed`, which Hydra records while
the other jobs finish, and `lopt` then exits with that status.
"""
import importlib
import os
import secrets
import shutil
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from omegaconf import OmegaConf
from rich.console import Console
from rich.markup import escape

from lopt.errors import UserError
from lopt.io import run_lock
from lopt.platform.preemption import Preempted

RUN_UID_ENV = "LOPT_RUN_UID"  # the `${lopt_uid:}` of the current `lopt` invocation


def _run_uid() -> str:
    return os.environ.get(RUN_UID_ENV) or secrets.token_hex(3)


def register_resolvers() -> None:
    """`${lopt_uid:}`: a random suffix per `lopt` invocation that keeps run directories of runs
    started in the same second apart. Cached in the config, so a multirun's jobs in other
    processes resolve the sweep directory exactly as the launching process did. And
    `${lopt_config_groups:}`, the config groups of a command's --help, and `${lopt_pretrained:}`, its
    shipped pretrained optimizers."""
    if not OmegaConf.has_resolver("lopt_uid"):
        OmegaConf.register_new_resolver("lopt_uid", _run_uid, use_cache=True)
    if not OmegaConf.has_resolver("lopt_config_groups"):
        OmegaConf.register_new_resolver("lopt_config_groups", _help_config_groups)
    if not OmegaConf.has_resolver("lopt_pretrained"):
        OmegaConf.register_new_resolver("lopt_pretrained", _help_pretrained)


def _help_pretrained(*, _root_: Any) -> str:
    """`${lopt_pretrained:}` in the --help template: the shipped pretrained optimizers, for the
    commands that take a theta (empty for the others)."""
    from lopt import pretrained

    if "theta" not in _root_:
        return ""
    lines = [f"theta={pretrained.PREFIX}{n}: {pretrained.summary(n)}" for n in pretrained.names()] or ["(none shipped)"]
    return "== Pretrained learned optimizers (theta=pretrained:<name>) ==\n" + "\n".join(lines) + "\n"


def _help_config_groups(*, _root_: Any) -> str:
    """`${lopt_config_groups:}` in the --help template: the config groups this command accepts
    (Hydra's $APP_CONFIG_GROUPS lists every group of the config package)."""
    from lopt_cli.validate import help_config_groups

    return help_config_groups(_root_.hydra.runtime.choices, [k for k in _root_ if k != "hydra"])


register_resolvers()  # also in launcher workers, which import this module to unpickle a Job
# conf/hydra/launcher/ presets share their names with the plugins' schemas, which validate them
# (a feature Hydra 1.1+ still applies but warns about; the presets also work without it).
warnings.filterwarnings("ignore", message=r"(?s).*is validated against ConfigStore schema with the same name")


class JobFailed(Exception):
    """A multirun job that ended with a non-zero exit status; its message was already printed."""

    def __init__(self, exit_code: int, message: str, sweep_dir: str):
        super().__init__(exit_code, message, sweep_dir)
        self.exit_code, self.message, self.sweep_dir = exit_code, message, sweep_dir

    def __str__(self) -> str:
        return self.message


def print_error(message: str) -> None:
    """A user error as one paragraph on stderr."""
    Console(stderr=True, soft_wrap=True).print(f"[bold red]lopt: error:[/] {escape(message)}", highlight=False)


def prune_empty(directory: Path, stop: Path) -> None:
    """Remove `directory` and its parents below `stop` while they are empty."""
    directory, stop = directory.absolute(), stop.absolute()
    while directory != stop and stop in directory.parents:
        try:
            directory.rmdir()
        except OSError:  # not empty (or already gone)
            if directory.exists():
                return
        directory = directory.parent


def discard_unstarted(run_dir: Path, job_name: str) -> bool:
    """Remove `run_dir` if it holds only Hydra's bookkeeping (.hydra/, the job log) and the run
    lock: the command failed before writing anything of its own. True if removed."""
    kept = (".hydra", f"{job_name}.log", run_lock.LOCK_FILE)
    if not run_dir.is_dir() or any(p.name not in kept for p in run_dir.iterdir()):
        return False
    shutil.rmtree(run_dir)
    prune_empty(run_dir.parent, Path.cwd())
    return True


def where_line(run_dir: Path, job_num: int, overrides: list[str] | None) -> str:
    """The line naming a job's run directory in full: `run directory: <dir>`, or for a multirun
    job (`overrides` given) `job <num> (<overrides>): <dir>`."""
    path = Path(run_dir).absolute()
    if overrides is None:
        return f"run directory: {path}"
    return f"job {job_num} ({' '.join(overrides)}): {path}"


def _fail(err: UserError, hydra_cfg: Any, multirun: bool, discard: Path | None = None) -> NoReturn:
    """End a job for a user error: its paragraph (a multirun job's number and overrides first), the
    run directory `discard` removed if nothing was written there, exit status 2 (a multirun job:
    `JobFailed`, so the other jobs run on)."""
    where = f"job {hydra_cfg.job.num} ({' '.join(hydra_cfg.overrides.task)}): " if multirun else ""
    print_error(where + str(err))
    if discard is not None:
        discard_unstarted(discard, hydra_cfg.job.name)
    if not multirun:
        raise SystemExit(2) from None
    raise JobFailed(2, str(err), str(hydra_cfg.sweep.dir)) from None


def _hold(run_dir: Path, command: str) -> run_lock.RunLock | None:
    """The run directory's lock, taken by process 0 for every process of the run (the others hold
    None); a UserError naming the holder on every process when a live process holds it."""
    from lopt.platform import distributed

    lock, error = None, None
    if distributed.is_main_process():
        try:
            lock = run_lock.acquire(run_dir, command)
        except UserError as err:
            error = err
    if distributed.main_says(error is not None):
        if lock is not None:
            lock.release()
        raise error or run_lock.refusal(run_dir, {})
    return lock


@dataclass(frozen=True)
class Job:
    """The task function Hydra runs: `name` is the command, `module` has run(cfg, run_dir, console,
    components); `built` maps a config's key (`lopt.commands.base.config_key`) to the components
    the CLI built for it while validating, which a job in this process takes instead of building
    them again (a launcher worker, which unpickles the job, builds its own)."""

    name: str
    module: str
    built: dict[str, Any] = field(default_factory=dict, compare=False)

    def __reduce__(self) -> tuple[Any, ...]:
        return Job, (self.name, self.module)  # components stay in the process that built them

    def __call__(self, cfg: Any) -> None:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        from lopt_cli import enable_compilation_cache

        hydra_cfg = HydraConfig.get()
        run_dir = Path(hydra_cfg.runtime.output_dir)
        multirun = hydra_cfg.mode == RunMode.MULTIRUN
        console = Console()
        job_num = hydra_cfg.job.num if multirun else 0  # `num` is unset in a single run
        overrides = list(hydra_cfg.overrides.task) if multirun else None
        console.print(where_line(run_dir, job_num, overrides), soft_wrap=True, markup=False, highlight=False)
        # launcher workers (joblib, submitit, Ray) are fresh processes: `lopt`'s main() set the cache only in
        # the launching one, so without this they compile every program again (96 s instead of 8 s)
        enable_compilation_cache()
        try:
            lock = _hold(run_dir, " ".join(["lopt", self.name, *hydra_cfg.overrides.task]))
        except UserError as err:  # another process writes there: leave everything as it is
            _fail(err, hydra_cfg, multirun)
        try:
            self._run(cfg, hydra_cfg, run_dir, multirun, job_num, overrides, console)
        finally:
            if lock is not None:
                lock.release()

    def _run(self, cfg: Any, hydra_cfg: Any, run_dir: Path, multirun: bool, job_num: int,
             overrides: list[str] | None, console: Console) -> None:
        from lopt.io.tracking import summary_table
        from lopt_cli.launchers import pin_to_share

        share = pin_to_share(hydra_cfg)
        if share is not None:
            console.print(f"job {hydra_cfg.job.num}: cores {share['cores']}, "
                          f"GPU memory fraction {share['gpu_memory_fraction']}")
        try:
            from lopt.commands.base import config_key

            components = self.built.pop(config_key(cfg), None)  # taken once: a later job builds anew
            summary = importlib.import_module(self.module).run(cfg, run_dir, console, components)
        except UserError as err:
            _fail(err, hydra_cfg, multirun, discard=run_dir)
        except Preempted as stop:  # checkpointed: the requeued job (or the same command) resumes bitwise
            console.print(f"Preempted ({stop}); the run is checkpointed in {run_dir}. The same command resumes "
                          f"it.", style="yellow", markup=False, highlight=False, soft_wrap=True)
            raise SystemExit(stop.exit_status) from None  # stops the whole multirun
        except KeyboardInterrupt:
            if self.name != "meta-train":
                console.print(f"Interrupted; the run directory is {run_dir}.", style="yellow", markup=False,
                              highlight=False, soft_wrap=True)
                raise SystemExit(130) from None  # stops the whole multirun
            import shlex

            from lopt.io import resume

            # a resumed run must be given its overrides again (docs/runs.md, resuming); resume= names the directory
            again = [o for o in hydra_cfg.overrides.task if not o.startswith("resume=")]
            hint = resume.meta_train_command([*again, f"resume={run_dir}"])
            if multirun:
                hint += (f" (this job), or every job of the sweep by launching it again with "
                         f"{shlex.quote(f'hydra.sweep.dir={hydra_cfg.sweep.dir}')}")
            console.print(f"Interrupted; checkpoints written so far are in {run_dir}. Resume with: {hint}",
                          style="yellow", markup=False, highlight=False, soft_wrap=True)
            raise SystemExit(130) from None  # stops the whole multirun
        console.print(summary_table(f"lopt {self.name}", summary))
        # in full, one line each (the table folds long values): what a log file or a narrow terminal keeps
        if "wandb" in summary:
            console.print(str(summary["wandb"]), soft_wrap=True, markup=False, highlight=False)
        final_dir = Path(summary.get("run_dir") or run_dir)  # meta-train's resume= may name another directory
        console.print(where_line(final_dir, job_num, overrides), soft_wrap=True, markup=False, highlight=False)
