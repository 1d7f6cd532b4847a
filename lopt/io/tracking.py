"""Experiment tracking: a local metrics file, W&B and the console behind one small interface.

`metrics.jsonl` in the run directory always gets every logged record, so nothing depends on W&B.
W&B runs offline unless an API key is configured (mode 'auto'); any W&B failure is reported once
and training goes on without it.
"""
import json
import math
import netrc
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from lopt.config import check
from lopt.io import disk
from lopt.io.results import write_text

MODES = ("auto", "offline", "online", "disabled")


def wandb_key_configured() -> bool:
    """An API key in $WANDB_API_KEY or ~/.netrc (where `wandb login` puts it)."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc().authenticators("api.wandb.ai") is not None
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False


def resolve_mode(mode: str) -> Literal["online", "offline", "disabled"]:
    """The W&B mode of a `tracking.mode` (one of MODES): `auto` is online with an API key, else offline."""
    if mode == "auto":
        return "online" if wandb_key_configured() else "offline"
    return cast(Literal["online", "offline", "disabled"], mode)


def run_name(run_dir: Path) -> str:
    """The W&B name of a run: its directory name, or `<sweep dir name>/<job number>` for a multirun job."""
    return "/".join(run_dir.parts[-2:]) if run_dir.name.isdigit() else run_dir.name


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # JSON has no NaN/inf
    return value


def _run_id(run_dir: Path) -> str:
    """The W&B run id of `run_dir`, stored there so that a resumed run logs to the same W&B run."""
    path = run_dir / "wandb_run_id"
    if not path.exists():
        write_text(path, secrets.token_hex(8))
    return path.read_text().strip()


def _wandb_status(run: Any, mode: str, requested: str, project: str) -> str:
    """The status line of a started W&B run (`mode` as resolved from `tracking.mode=requested`)."""
    settings = getattr(run, "settings", None)
    if getattr(run, "disabled", False) or getattr(settings, "mode", None) == "disabled":
        return "W&B: disabled (by the wandb settings, e.g. WANDB_MODE=disabled)"
    if mode == "offline":
        why = "no API key configured" if requested == "auto" else "tracking.mode=offline"
        sync_dir = getattr(settings, "sync_dir", None)
        where = "<run_dir>/wandb/offline-run-*" if sync_dir is None else str(Path(sync_dir).absolute())
        return f"W&B: offline ({why}); upload later with: wandb sync {where}"
    try:
        url = run.url
    except Exception:  # W&B must never stop training
        url = None
    return f"W&B: online, project {getattr(run, 'project', None) or project}" + (f", run {url}" if url else "")


def wrote_wandb(run_dir: Path) -> bool:
    """Whether W&B wrote anything into `run_dir` (its `wandb/` directory)."""
    path = run_dir / "wandb"
    return path.is_dir() and any(path.iterdir())


class Tracker:
    """Logs records to `run_dir/metrics.jsonl` and to a W&B run."""

    def __init__(self, run_dir: Path, config: dict, *, mode: str, project: str, entity: str | None,
                 group: str | None, job_type: str, tags: list[str], console: Console):
        self.console = console
        self.mode = resolve_mode(mode)
        self._metrics = open(run_dir / "metrics.jsonl", "a", encoding="utf-8")
        self._wandb = None
        self._failure: str | None = None  # why W&B stopped, if it failed
        self._started = "W&B: disabled (tracking.mode=disabled)"
        if self.mode == "disabled":
            return
        try:
            import wandb

            self._wandb = wandb.init(
                mode=self.mode, dir=str(run_dir), project=project, entity=entity, group=group,
                job_type=job_type, tags=tags, config=config, name=run_name(run_dir), id=_run_id(run_dir),
                resume="allow",  # a resumed run continues its W&B run
                reinit="create_new",  # one W&B run per population member, open together in this process
                settings=wandb.Settings(console="off", silent=True),
            )
            self._started = _wandb_status(self._wandb, self.mode, mode, project)
        except Exception as err:  # W&B must never stop training
            self._warn(err)

    @property
    def status(self) -> str:
        """One line saying where W&B logs this run: online (with the run's URL), offline (with the
        `wandb sync` command that uploads it), disabled, or off after a failure."""
        if self._failure is not None:
            return f"W&B: off for this run after an error ({self._failure}); metrics.jsonl has every record"
        return self._started

    def _warn(self, err: Exception) -> None:
        self.console.print(f"[yellow]W&B disabled for this run: {type(err).__name__}: {escape(str(err))}[/]")
        self._failure = self._failure or f"{type(err).__name__}: {err}"
        self._wandb = None

    def _to_wandb(self, action: Callable[[Any], Any]) -> None:
        """`action(wandb_run)`, if W&B is on; a failure disables W&B for the rest of the run."""
        if self._wandb is not None:
            try:
                action(self._wandb)
            except Exception as err:
                self._warn(err)

    def log(self, record: dict[str, Any], step: int) -> None:
        line = json.dumps({k: _jsonable(v) for k, v in record.items()}) + "\n"
        try:
            self._metrics.write(line)
            self._metrics.flush()
        except OSError as err:  # a line cut short is dropped when the run resumes
            if disk.is_out_of_space(err):
                raise disk.out_of_space(err, "a metrics record", Path(self._metrics.name), len(line)) from None
            raise
        self._to_wandb(lambda run: run.log(record, step=step))

    def table(self, name: str, columns: list[str], rows: list[list[Any]]) -> None:
        """A W&B table (the run's JSON results hold the same rows locally)."""
        def log_table(run):
            import wandb

            run.log({name: wandb.Table(columns=list[str | int](columns), data=rows)})

        self._to_wandb(log_table)

    def image(self, name: str, path: Path) -> None:
        """A figure the run directory already holds, logged to W&B as an image."""
        def log_image(run):
            import wandb

            run.log({name: wandb.Image(str(path))})

        self._to_wandb(log_image)

    def summary(self, values: dict[str, Any]) -> None:
        self._to_wandb(lambda run: run.summary.update(values))

    def finish(self, exit_code: int = 0) -> None:
        self._metrics.close()
        self._to_wandb(lambda run: run.finish(exit_code=exit_code))


class NullTracker:
    """The tracker of a process other than process 0 in a multi-process run: it logs nothing (one
    process writes the metrics file and the W&B run)."""

    status = "W&B: logged by process 0"

    def log(self, record: dict[str, Any], step: int) -> None:
        pass

    def table(self, name: str, columns: list[str], rows: list[list[Any]]) -> None:
        pass

    def image(self, name: str, path: Path) -> None:
        pass

    def summary(self, values: dict[str, Any]) -> None:
        pass

    def finish(self, exit_code: int = 0) -> None:
        pass


def summary_table(title: str, summary: dict[str, Any]) -> Table:
    """The closing table of a command: its summary values, run directory and files written."""
    table = Table(title=title, show_header=False)
    table.add_column(no_wrap=True)
    table.add_column(overflow="fold")  # long paths (run_dir, W&B sync) fold, never cut with an ellipsis
    for key, value in summary.items():
        table.add_row(key, f"{value:.4g}" if isinstance(value, float) else str(value))
    return table


@dataclass(frozen=True)
class TrackingSettings:
    """The `tracking` config node that every command has: where runs are logged."""

    mode: str = "auto"
    project: str = "lopt"
    entity: str | None = None
    group: str | None = None
    tags: tuple[str, ...] = ()

    def __post_init__(self):
        check(self.mode in MODES, "mode", self.mode, f"one of {list(MODES)}")

    def open(self, run_dir: Path, config: dict[str, Any], job_type: str, console: Console,
             group: str | None = None) -> Tracker:
        """A tracker for one job of `job_type` with the resolved `config` attached, in W&B group
        `group` when this node sets none."""
        return Tracker(run_dir, config, mode=self.mode, project=self.project, entity=self.entity,
                       group=self.group or group, job_type=job_type, tags=list(self.tags), console=console)
