"""The skeleton every command runs on.

A command module has `build(cfg) -> Components` (validate the whole config and build every
component; loads no data, compiles nothing: the CLI calls it for every override before Hydra runs)
and `run(cfg, run_dir, console, components=None) -> summary` (`components`: what the CLI built when
it validated `cfg`). `run` starts with `prepare(build, cfg, run_dir, console, components)`, which
joins a multi-process launch, builds the components if none were given and makes the device mesh,
and returns a `Job`: the run directory, result files and the tracker, every write made by process 0
only (orbax checkpoints stay collective).
"""
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar, cast

from omegaconf import DictConfig, OmegaConf
from rich.console import Console

from lopt.config import config_groups, from_config
from lopt.data.settings import DataSettings
from lopt.io.results import pyplot, save_figure, trim_records, write_json, write_text
from lopt.io.tracking import NullTracker, Tracker, TrackingSettings, wrote_wandb
from lopt.platform import distributed

T = TypeVar("T")


def settings(cls: type[T], cfg: Mapping[str, Any]) -> T:
    """A command's top-level settings: the config's keys that are not config groups, validated as
    the fields of dataclass `cls` (an unknown key is an error naming the valid ones)."""
    groups = config_groups()
    return from_config(cls, {k: v for k, v in cfg.items() if k not in groups}, "")


@dataclass(frozen=True)
class Shared:
    """The config sections every command has."""

    data: DataSettings
    tracking: TrackingSettings
    distributed: distributed.Settings

    @classmethod
    def parse(cls, cfg: Mapping[str, Any]) -> "Shared":
        return cls(from_config(DataSettings, cfg["data"], "data"),
                   from_config(TrackingSettings, cfg["tracking"], "tracking"),
                   distributed.parse(cfg.get("distributed")))


class Components(Protocol):
    """What every command's `build` returns (a NamedTuple or dataclass with at least these)."""

    @property
    def settings(self) -> Any: ...  # the command's top-level settings, with a `seed`

    @property
    def shared(self) -> Shared: ...


C = TypeVar("C", bound=Components)


def config_key(cfg: DictConfig) -> str:
    """What identifies a composed config: its resolved YAML (the CLI builds each config it
    validates and hands the components to the job whose config has the same key)."""
    return OmegaConf.to_yaml(cfg, resolve=True)


def join(cfg: DictConfig) -> None:
    """Join the multi-process launch `cfg` describes (if any) before anything can touch a device:
    building a task may create arrays, and `jax.distributed.initialize` must come first."""
    distributed.initialize(distributed.parse(cfg.get("distributed")))


def multirun_group() -> str | None:
    """The W&B group of a Hydra multirun job: its sweep directory, unique per multirun (None
    outside a multirun)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
        return None
    return str(HydraConfig.get().sweep.dir)


class Job:
    """One run of a command in `run_dir`: the device mesh (multi-process launches joined first),
    data, result files and tracking. Only process 0 writes files and logs; every process computes."""

    def __init__(self, cfg: DictConfig, run_dir: Path, console: Console, shared: Shared):
        self.mesh = distributed.setup(shared.distributed)  # before anything touches a device
        self.main = distributed.is_main_process()
        self.cfg, self.dir, self.console, self.shared = cfg, Path(run_dir), console, shared
        self._tracker: Tracker | NullTracker | None = None  # the last one `tracker()` opened
        self.group: str | None = shared.tracking.group or multirun_group()  # the W&B group it logs under

    def recorded_config(self) -> DictConfig:
        """The config as the run directory and W&B record it: as composed, with the W&B group the
        job logs under."""
        return cast(DictConfig, OmegaConf.merge(self.cfg, {"tracking": {"group": self.group}}))

    def write_config(self) -> None:
        """Create the run directory and write the resolved config into it."""
        if self.main:
            self.dir.mkdir(parents=True, exist_ok=True)
            write_text(self.dir / "config.yaml", OmegaConf.to_yaml(self.recorded_config(), resolve=True))

    def write_json(self, name: str, obj: Any) -> None:
        """A result file in the run directory, written whole or not at all."""
        if self.main:
            write_json(self.dir / name, obj)

    def save_figure(self, fig: Any, name: str) -> None:
        """A matplotlib figure saved as `name` in the run directory (atomically), then closed."""
        if self.main:
            save_figure(fig, self.dir / name)
        else:
            pyplot().close(fig)

    def trim_records(self, name: str, start: int) -> dict[str, Any]:
        """Drop the records of `name` (a JSON-lines file in the run directory) logged after outer
        iteration `start`, which a resumed run logs again; the last one kept ({} if none, and on
        processes other than 0)."""
        return (trim_records(self.dir / name, "outer_iteration", start) or {}) if self.main else {}

    def wrote(self, files: str) -> dict[str, str]:
        """The summary's `wrote` row (`files`, and `wandb/` when W&B wrote into the run directory)
        and its `wandb` row: where the tracker logged (`Tracker.status`)."""
        rows = {"wrote": files + (", wandb/" if wrote_wandb(self.dir) else "")}
        if self._tracker is not None:
            rows["wandb"] = self._tracker.status
        return rows

    @contextmanager
    def tracker(self, job_type: str) -> Iterator[Tracker | NullTracker]:
        """The job's tracker (metrics.jsonl and W&B), finished with the job's exit status: 0, or
        1 (130 on Ctrl-C) when the block raises. Processes other than 0 get a `NullTracker`.
        Process 0 prints where W&B logs (online, offline with its `wandb sync` command, disabled)."""
        if not self.main:
            self._tracker = NullTracker()
            yield self._tracker
            return
        config = cast(dict[str, Any], OmegaConf.to_container(self.recorded_config(), resolve=True))
        tracker = self.shared.tracking.open(self.dir, config, job_type, self.console, self.group)
        self._tracker = tracker
        self.console.print(tracker.status, soft_wrap=True, markup=False, highlight=False)
        try:
            yield tracker
        except BaseException as err:
            tracker.finish(130 if isinstance(err, KeyboardInterrupt) else 1)
            raise
        tracker.finish(0)


def prepare(build: Callable[[DictConfig], C], cfg: DictConfig, run_dir: Path, console: Console,
            components: Any = None) -> tuple[Job, C]:
    """The components of `cfg` (`components` where the caller built them already, else
    `build(cfg)`) and its `Job`. The components must have the fields `shared` (a `Shared`) and
    `settings` (with a `seed`). The config is read-only from here: the job records it as composed."""
    OmegaConf.set_readonly(cfg, True)
    join(cfg)
    c = build(cfg) if components is None else components
    return Job(cfg, run_dir, console, c.shared), c

