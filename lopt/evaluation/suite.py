"""Task suites: named lists of tasks, each with its training length.

A `suite/` config composes shipped task configs under `tasks.<name>` (Hydra defaults such as
`/task@tasks.digits_mlp_deep: digits_mlp`), overrides what makes each one a variant, and adds the
task's `num_steps`. The key under `tasks` is the task's name everywhere (baseline files, tables,
metrics), so two variants of one shipped task stay apart.
"""
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lopt import tasks
from lopt.config import to_plain
from lopt.errors import ConfigError, unknown_choice


@dataclass(frozen=True)
class SuiteTask:
    """One task of a suite: its validated config (named by its key) and how many steps it trains."""

    config: tasks.TaskConfig
    num_steps: int

    @property
    def name(self) -> str:
        return self.config.name


@dataclass(frozen=True)
class Suite:
    """A named list of tasks; every task records its curves every `eval_every` steps, and its
    baselines tune the learning rate over the half-decade grid of `lr_range` (widened where the
    best value lands on an edge, `lopt.evaluation.tuning`)."""

    name: str
    tasks: tuple[SuiteTask, ...]
    eval_every: int
    lr_range: tuple[float, float]

    def task(self, name: str) -> SuiteTask:
        return next(t for t in self.tasks if t.name == name)

    def subset(self, names: Sequence[str], key: str) -> "Suite":
        """The suite restricted to the tasks `names` (config key `key`), in the suite's order;
        the whole suite when `names` is empty."""
        valid = [t.name for t in self.tasks]
        for name in names:
            if name not in valid:
                raise unknown_choice(f"{key} entry", name, valid)
        if len(set(names)) != len(names):
            raise ConfigError(f"{key}={list(names)} names a task twice.")
        kept = tuple(t for t in self.tasks if not names or t.name in names)
        return Suite(self.name, kept, self.eval_every, self.lr_range)


def _positive_int(value: Any, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(f"{path}={value!r} is invalid: it must be a positive integer.")
    return value


def parse(node: Mapping[str, Any] | None, path: str = "suite") -> Suite:
    """The validated suite of a `suite` config node. Every error names the task it is about
    (`suite.tasks.<name>.<key>`), and is raised before anything loads or compiles."""
    values = to_plain(node) or {}
    if not isinstance(values, dict) or not values:
        raise ConfigError(f"{path} is empty: pick a suite (suite=<name>) or give suite.name and suite.tasks.")
    unknown = sorted(set(values) - {"name", "tasks", "eval_every", "lr_range"})
    if unknown:
        raise ConfigError(f"Unknown key {path}.{unknown[0]}. Valid keys: eval_every, lr_range, name, tasks.")
    name = values.get("name")
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{path}.name={name!r} is invalid: it must be a non-empty string.")
    eval_every = _positive_int(values.get("eval_every", 25), f"{path}.eval_every")
    lr_range = values.get("lr_range", [1e-4, 1.0])
    if (not isinstance(lr_range, list | tuple) or len(lr_range) != 2
            or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in lr_range)
            or not 0 < lr_range[0] <= lr_range[1]):
        raise ConfigError(f"{path}.lr_range={lr_range!r} is invalid: it must be [low, high] with 0 < low <= high.")
    entries = values.get("tasks")
    if not isinstance(entries, dict) or not entries:
        raise ConfigError(f"{path}.tasks of suite {name!r} is empty: a suite needs at least one task "
                          f"({path}.tasks.<name>: a task config with num_steps).")
    parsed = []
    for key, entry in entries.items():
        task_path = f"{path}.tasks.{key}"
        if not isinstance(entry, dict):
            raise ConfigError(f"{task_path}={entry!r} is not a task config with num_steps.")
        entry = dict(entry)
        if "num_steps" not in entry:
            raise ConfigError(f"{task_path}.num_steps is missing: every task of a suite says how many steps it trains.")
        num_steps = _positive_int(entry.pop("num_steps"), f"{task_path}.num_steps")
        if num_steps % eval_every:
            raise ConfigError(f"{task_path}.num_steps={num_steps} is invalid: it must be a multiple of "
                              f"{path}.eval_every={eval_every}.")
        parsed.append(SuiteTask(tasks.parse({**entry, "name": str(key)}, task_path), num_steps))
    return Suite(name, tuple(parsed), eval_every, (float(lr_range[0]), float(lr_range[1])))


def parse_selected(node: Mapping[str, Any] | None, names: Sequence[str]) -> Suite | None:
    """The suite of the `suite` config node restricted to the tasks `names` (config key
    `suite_tasks`; empty: every task), or None when no suite is given (then `names` must be empty)."""
    if not node:
        if names:
            raise ConfigError(f"suite_tasks={list(names)} needs suite=<name>: the suite whose tasks they are.")
        return None
    return parse(node, "suite").subset(names, "suite_tasks")
