"""Config sections shared by every command: where the data comes from and where runs are logged."""
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from lopt import data as data_lib
from lopt.config import check
from lopt.tasks import TaskConfig
from lopt.tracking import MODES, Tracker


@dataclass(frozen=True)
class DataSettings:
    """The `data` config node."""

    source: str = "real"
    dir: str | None = None
    download: bool = True
    synthetic_examples: int = 1024

    def __post_init__(self):
        check(self.source in data_lib.SOURCES, "source", self.source, f"one of {list(data_lib.SOURCES)}")
        check(self.synthetic_examples > 0, "synthetic_examples", self.synthetic_examples, "a positive integer")

    def load(self, task: TaskConfig, seed: int) -> data_lib.Dataset | None:
        """The task's dataset as device arrays; None for a dataset-free task."""
        if task.dataset is None:
            return None
        return data_lib.load(task.dataset, self.source, task.example_size, self.dir, self.download,
                             self.synthetic_examples, seed)


@dataclass(frozen=True)
class TrackingSettings:
    """The `tracking` config node."""

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
