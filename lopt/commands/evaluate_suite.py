"""The suite mode of `lopt evaluate` (`suite=`): every task of the suite trained on its own
evaluation seeds and scored against its stored tuned baseline (`lopt.evaluation`), the suite
summarized with interquartile means and stratified bootstrap intervals; suite.json, suite.png,
the tables and W&B logs."""
import time
from collections.abc import Mapping
from typing import Any, NamedTuple

from rich.console import Console

from lopt.base import Optimizer
from lopt.commands.base import Job, Shared
from lopt.commands.evaluated import Evaluated, HandDesignedEvaluated, Settings
from lopt.errors import ConfigError
from lopt.evaluation import report, scoring, tuning
from lopt.evaluation.suite import Suite, SuiteTask
from lopt.evaluation.suite import parse as parse_suite
from lopt.figures import title
from lopt.figures.suite import figure as suite_figure


class SuitePlan(NamedTuple):
    """What a suite evaluation needs, checked before anything loads or compiles."""

    suite: Suite
    references: tuning.References  # the tuned reference's baselines (a missing one: run_missing makes it)
    tuned: dict[str, dict[str, float]]  # tuned=: task -> the best stored hyperparameters of the evaluated optimizer
    other: dict[str, Any] | None  # compare_to: another evaluation's suite.json


class Components(NamedTuple):
    """The suite mode's components: what is evaluated, and on what."""

    settings: Settings
    shared: Shared
    evaluated: Evaluated
    plan: SuitePlan


def plan(cfg: Mapping[str, Any], s: Settings, shared: Shared, evaluated: Evaluated) -> SuitePlan:
    """The suite, its stored reference baselines (a missing one is an error naming the command that
    makes it, unless `baselines.run_missing`), with `tuned=` each task's best configuration of the
    evaluated optimizer (when that optimizer is the reference and run_missing will sweep it, read
    once swept, in `run`), and the compared suite.json."""
    suite, b = parse_suite(cfg["suite"]).subset(s.suite_tasks, "suite_tasks"), s.baselines
    refs = tuning.references(suite, b, s.seed, s.smoothing, shared.data)
    tuned: dict[str, dict[str, float]] = {}
    if s.tuned is not None:
        if not isinstance(evaluated, HandDesignedEvaluated):
            raise ConfigError(f"tuned={s.tuned} evaluates a hand-designed optimizer at each task's best stored "
                              "configuration; a learned optimizer (lopt=) is evaluated with its theta instead.")
        name = evaluated.name
        own = tuning.suite_tuning(evaluated.config, name, s.tuned, suite, s.seed, s.smoothing, shared.data,
                                  b.horizon_mult)
        own_command = tuning.command(suite.name, name, s.tuned, b.dir, shared.data, b.horizon_mult)
        for entry in suite.tasks:
            if b.run_missing and entry.name not in refs.found and own.fields(entry) == refs.tuning.fields(entry):
                continue  # the reference's own missing sweep: `run` reads its best once run_missing made it
            doc = refs.store.load(own.fields(entry), own_command)
            tuned[entry.name] = doc["hyperparameters"][doc["best"]]
    other = None if s.compare_to is None else report.load_other(s.compare_to, suite.name)
    return SuitePlan(suite, refs, tuned, other)


def _optimizer(evaluated: Evaluated, p: SuitePlan, entry: SuiteTask) -> Optimizer:
    """What trains suite task `entry` for its number of steps (with `tuned=`, at its best
    stored configuration)."""
    return evaluated.optimizer(entry.num_steps, **p.tuned.get(entry.name, {}))


def _log(job: Job, result: dict[str, Any]) -> None:
    """Per-task and aggregate scores (`eval/<task>/<score>`, `eval/<stat>/<score>`) to metrics.jsonl
    and W&B, the per-task W&B table and the figure."""
    results = result["tasks"]
    record: dict[str, Any] = {}
    for name, r in results.items():
        record.update({f"eval/{name}/{k}": v for k, v in r["scores"].items()})
    record.update(scoring.aggregate_record("eval", result["aggregates"]))
    with job.tracker("evaluate") as tracker:
        tracker.log(record, step=0)
        columns = ["task", *next(iter(results.values()))["scores"]]
        tracker.table("suite", columns, [[name, *r["scores"].values()] for name, r in results.items()])
        if job.main:
            tracker.image("suite", job.dir / "suite.png")
        tracker.summary(record)


def run(job: Job, c: Components, console: Console) -> dict[str, Any]:
    """Make missing baselines (`baselines.run_missing`), train and score every task with the
    evaluated optimizer (with `tuned=`, at the task's best configuration); write suite.json and
    suite.png, print the tables, log the scores; return the command's summary."""
    p, s, evaluated = c.plan, c.settings, c.evaluated
    suite = p.suite
    start = time.perf_counter()
    baselines = tuning.complete(p.references, suite, job.mesh, console, write=job.main)
    if s.tuned is not None:  # tasks whose tuned configuration is the reference sweep just made
        p.tuned.update({name: doc["hyperparameters"][doc["best"]] for name, doc in baselines.items()
                        if name not in p.tuned})
    baselines_s = time.perf_counter() - start
    results = {entry.name: scoring.evaluate_task(entry, suite.eval_every, _optimizer(evaluated, p, entry),
                                                 baselines[entry.name], s, s.smoothing, p.references.tuning.data,
                                                 job.mesh, console)
               for entry in suite.tasks}
    label = evaluated.label
    result: dict[str, Any] = {
        "suite": suite.name, "label": label, "learned": evaluated.learned,
        "checkpoint": None if evaluated.checkpoint is None else str(evaluated.checkpoint),
        "baseline_optimizer": s.baselines.optimizer, "baseline_search": s.baselines.search,
        "seed": s.seed, "num_seeds": s.num_seeds, "smoothing": s.smoothing, "definitions": scoring.DEFINITIONS,
        "tasks": results,
        "aggregates": scoring.summarize(results, s.seed), "baselines_s": round(baselines_s, 1),
        "evaluation_s": round(time.perf_counter() - start - baselines_s, 1)}
    if p.other is not None:
        result["compared_to"] = {k: p.other[k] for k in ("path", "label", "aggregates")}
    job.write_config()  # only now: a task that fails (missing data) leaves no run directory behind
    job.write_json("suite.json", result)
    job.save_figure(suite_figure(result, p.other, title(suite.name, job.dir, f"{label} vs tuned "
                                                         f"{s.baselines.optimizer}")), "suite.png")
    console.print(report.table(result, p.other))
    console.print(report.aggregates_table(result, p.other))
    _log(job, result)
    agg = result["aggregates"]
    return {"suite": suite.name, "optimizer": label, "tasks": len(results), "num_seeds": s.num_seeds,
            "IQM speedup over Adam": report.interval_text(agg["speedup_over_adam"]["iqm"]),
            "IQM loss ratio": report.interval_text(agg["loss_ratio"]["iqm"]),
            "tasks beating tuned Adam": report.interval_text(agg["win_fraction"]),
            "baselines_s": result["baselines_s"], "evaluation_s": result["evaluation_s"], "run_dir": str(job.dir),
            **job.wrote("config.yaml, suite.json, suite.png")}
