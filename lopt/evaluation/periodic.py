"""Evaluation during meta-training, as the papers' evaluation workers do it: every `eval.every`
outer iterations the current theta trains a suite's tasks (and/or named tasks) and is scored
against their stored tuned baselines exactly as `lopt evaluate suite=...` scores it (a population
whose score needs no baseline: on its own curves only, `baseline_free`). Each task's
seeds train in one program compiled once per run (theta is its argument); the evaluation seeds are
never the baselines' (`lopt.evaluation.baselines.EVALUATION_SEEDS`)."""
import functools
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh
from rich.console import Console

from lopt import tasks
from lopt.base import LearnedOptimizer
from lopt.config import check, compose, config_file, config_groups, to_plain
from lopt.data.settings import DataSettings
from lopt.errors import ConfigError, unknown_choice
from lopt.evaluation import baseline_free, scoring, tuning
from lopt.evaluation.baselines import BaselineSettings
from lopt.evaluation.scores import check_smoothing
from lopt.evaluation.scoring import TaskEvaluation
from lopt.evaluation.suite import Suite, SuiteTask
from lopt.evaluation.suite import parse as parse_suite
from lopt.training import curves

SCORES = ("final_loss", "speedup_over_adam", "loss_ratio", "normalized_loss", "mean_loss",
          baseline_free.LOG_RELATIVE_LOSS)
HIGHER_IS_BETTER = ("speedup_over_adam", "win_fraction")  # a selected metric ending so is maximized


@dataclass(frozen=True)
class EvalSettings:
    """The `eval` node of `lopt meta-train`. `every` outer iterations (0: never; the last iteration
    is always evaluated when on), theta trains the tasks of `suite` (a `suite/` config) and the task
    configs named in `tasks` (each for `num_steps` steps) on `num_seeds` seeds; with
    `training_tasks`, the suite tasks meta-training trains on (meta-train's `suite=` and
    `suite_tasks`) too, each at its suite length. `select` names a logged metric (e.g.
    `eval/iqm/speedup_over_adam`) whose best value keeps `best_theta/`."""

    every: int = 0
    suite: str | None = None
    tasks: tuple[str, ...] = ()
    training_tasks: bool = False
    num_steps: int = 200
    num_seeds: int = 3
    select: str | None = None
    smoothing: float = 0.95
    baselines: BaselineSettings = field(default_factory=BaselineSettings)

    def __post_init__(self):
        check(self.every >= 0, "every", self.every, "a non-negative integer (0: no evaluation)")
        check(self.every == 0 or self.suite is not None or len(self.tasks) > 0 or self.training_tasks, "every",
              self.every, "0 unless eval.suite, eval.tasks or eval.training_tasks names what to evaluate")
        check(self.num_steps > 0, "num_steps", self.num_steps, "a positive integer")
        check(self.num_seeds > 0, "num_seeds", self.num_seeds, "a positive integer")
        check(self.select is None or self.every > 0, "select", self.select, "null unless eval.every > 0")
        check_smoothing(self.smoothing)


def compose_suite(name: str) -> Any:
    """The `suite/<name>` config, composed by Hydra (its task defaults filled in)."""
    if name not in config_groups().get("suite", []):
        raise unknown_choice("eval.suite", name, config_groups().get("suite", []))
    return compose("evaluate", [f"suite={name}"]).suite


@functools.cache
def suite_task_configs(name: str) -> tuple:
    """The task configs of the shipped suite `name`: what a task family with `exclude_suite=name`
    never samples (`lopt.tasks.family.sample`'s `suite_tasks`)."""
    return tuple(t.config for t in parse_suite(compose_suite(name), f"suite {name}").tasks)


TRAINING = "training"  # the group of the meta-training tasks (eval.training_tasks)


def groups(s: EvalSettings, training: Suite | None = None) -> tuple[Suite, dict[str, list[str]]]:
    """The tasks to evaluate as one suite, and the groups whose aggregates are logged apart: the
    meta-training tasks under "training" (with `eval.training_tasks`; `training` is the suite
    meta-training draws them from), the suite's tasks under its name, the `eval.tasks` under
    "tasks" (when one of the others is given)."""
    entries: list[SuiteTask] = []
    named: dict[str, list[str]] = {}
    eval_every, lr_range = s.num_steps, (1e-4, 1.0)
    if s.training_tasks:
        if training is None:
            raise ConfigError("eval.training_tasks=true needs meta-training on suite tasks (suite=<name>, "
                              "optionally suite_tasks=[...]); with task= or family=, name the tasks to evaluate "
                              "in eval.tasks instead.")
        entries += training.tasks
        named[TRAINING] = [t.name for t in training.tasks]
        eval_every, lr_range = training.eval_every, training.lr_range
    if s.suite is not None:
        suite = parse_suite(compose_suite(s.suite), "eval.suite")
        if entries and suite.eval_every != eval_every:
            raise ConfigError(f"eval.suite={s.suite} records curves every {suite.eval_every} steps but the "
                              f"meta-training suite {training.name if training else ''} every {eval_every}: "
                              f"evaluate suites with the same eval_every together.")
        entries += suite.tasks
        named[suite.name] = [t.name for t in suite.tasks]
        eval_every, lr_range = suite.eval_every, suite.lr_range
    for name in s.tasks:
        try:
            node = to_plain(config_file("task", f"{name}.yaml"))
        except FileNotFoundError:
            raise unknown_choice("eval.tasks entry", name, config_groups()["task"]) from None
        if s.num_steps % eval_every:
            raise ConfigError(f"eval.num_steps={s.num_steps} is invalid: it must be a multiple of the suite's "
                              f"eval_every={eval_every}.")
        entries.append(SuiteTask(tasks.parse(node, f"eval.tasks.{name}"), s.num_steps))
    names = [e.name for e in entries]
    if len(set(names)) != len(names):
        raise ConfigError(f"eval.tasks names a task twice or one of eval.suite's ({', '.join(names)}).")
    if s.tasks and named:
        named["tasks"] = list(s.tasks)
    return Suite(s.suite or (TRAINING if s.training_tasks else "tasks"), tuple(entries), eval_every, lr_range), named


def baseline_sources(s: EvalSettings, training: Suite | None) -> list[str]:
    """The shipped suites whose `lopt baseline-sweep` makes every baseline the evaluation needs:
    the meta-training suite (eval.training_tasks) and eval.suite; none when eval.tasks names tasks
    outside them (only eval.baselines.run_missing=true makes those)."""
    if s.tasks:
        return []
    return [*([training.name] if s.training_tasks and training else []), *([s.suite] if s.suite else [])]


class Plan:
    """What evaluation during a meta-training run needs, checked when the run's config is. Without
    `baselines` (a population whose score needs none) no baseline is loaded or swept and only the
    scores of `baseline_free.SCORES` are logged."""

    def __init__(self, s: EvalSettings, seed: int, data: DataSettings, training: Suite | None = None,
                 baselines: bool = True):
        self.settings, self.seed, self.data = s, seed, data
        self.suite, self.groups = groups(s, training)
        self.scores = SCORES if baselines else baseline_free.SCORES
        self.references = (tuning.references(self.suite, s.baselines, seed, s.smoothing, data, "eval.baselines",
                                             baseline_sources(s, training)) if baselines else None)
        valid = self.metric_names()
        if s.select is not None and s.select not in valid:
            raise ConfigError(f"eval.select={s.select!r} is not a metric this evaluation logs. Valid choices: "
                              f"{', '.join(sorted(valid))}.")

    def metric_names(self) -> list[str]:
        names = [f"eval/{t.name}/{k}" for t in self.suite.tasks for k in self.scores]
        return names + [f"{prefix}/{k}" for prefix in ["eval", *(f"eval/{g}" for g in self.groups)]
                        for k in (scoring.AGGREGATE_KEYS if self.references is not None else ())]


def better(metric: str, value: float, best: float | None) -> bool:
    """Whether `value` of `metric` improves on `best` (higher for speedups and win fractions,
    lower for losses and ratios)."""
    if not np.isfinite(value):
        return False
    if best is None:
        return True
    return value > best if metric.endswith(HIGHER_IS_BETTER) else value < best


class Evaluator:
    """Scores a theta of `lopt` on the plan's tasks; every task's program compiled here, once."""

    def __init__(self, plan: Plan, lopt: LearnedOptimizer, theta: Any, mesh: Mesh, console: Console, write: bool):
        s = plan.settings
        self.plan, self.seed = plan, plan.seed
        refs = plan.references
        baselines = None if refs is None else tuning.complete(refs, plan.suite, mesh, console, write)
        curve = curves.CurveSettings(seed=plan.seed, num_seeds=s.num_seeds, num_steps=plan.suite.eval_every,
                                     eval_every=plan.suite.eval_every)
        example = jax.device_get(theta)
        self.tasks = {}
        for entry in plan.suite.tasks:
            console.print(f"eval: compiling {entry.name} ({s.num_seeds} seeds x {entry.num_steps} steps)",
                          highlight=False)
            rest = (s.smoothing, plan.data, mesh, console, example)
            self.tasks[entry.name] = (
                TaskEvaluation(entry, plan.suite.eval_every, lopt, baselines[entry.name], curve, *rest)
                if baselines is not None else baseline_free.OwnCurvesEvaluation(entry, plan.suite.eval_every, lopt,
                                                                               curve, *rest))
        self.compile_s = sum(t.compile_s for t in self.tasks.values())

    def __call__(self, theta: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        """The flat record of scores (`eval/<task>/<score>`, `eval/<stat>/<score>`,
        `eval/<group>/<stat>/<score>`, `time/eval_s`) and the full per-task results."""
        start = time.perf_counter()
        host = jax.device_get(theta)
        results = {name: t(host) for name, t in self.tasks.items()}
        record: dict[str, Any] = {}
        for name, r in results.items():
            record.update({f"eval/{name}/{k}": baseline_free.task_score(r, k) for k in self.plan.scores})
        for prefix, names in ([("eval", list(results)), *((f"eval/{g}", ns) for g, ns in self.plan.groups.items())]
                              if self.plan.references is not None else []):  # Adam's aggregates need baselines
            record.update(scoring.aggregate_record(prefix, scoring.summarize({n: results[n] for n in names},
                                                                             self.seed)))
        record["time/eval_s"] = time.perf_counter() - start
        return record, results


class Selection:
    """`eval.select`: the best value of the selected metric so far and its iteration. They are kept
    in `best.json` beside `best_theta/` (written after it), so a resumed run continues from them."""

    def __init__(self, metric: str, run_dir: Path):
        self.metric, self.path = metric, Path(run_dir) / "best.json"
        doc = json.loads(self.path.read_text(encoding="utf-8")) if self.path.is_file() else {}
        kept = doc.get("metric") == metric
        self.value: float | None = doc.get("value") if kept else None
        self.iteration: int | None = doc.get("iteration") if kept else None

    def offer(self, iteration: int, record: dict[str, Any]) -> bool:
        """Take the record of an evaluation at `iteration`; True if it is the new best."""
        value = float(record[self.metric])
        if not better(self.metric, value, self.value):
            return False
        self.value, self.iteration = value, iteration
        return True

    def record(self) -> dict[str, Any]:
        return {"metric": self.metric, "value": self.value, "iteration": self.iteration}
