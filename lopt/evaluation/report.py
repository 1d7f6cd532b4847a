"""What a suite evaluation shows in the console: the per-task and aggregate tables, and another
evaluation's suite.json read back for side-by-side comparison (`compare_to`); its figure is
`lopt.figures.suite`."""
import json
import math
from pathlib import Path
from typing import Any

from rich.table import Table

from lopt.errors import ConfigError


def load_other(path: str, suite: str) -> dict[str, Any]:
    """The suite.json of another `lopt evaluate suite=...` run on the same suite."""
    p = Path(path).expanduser()
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
        label, tasks, aggregates = doc["label"], doc["tasks"], doc["aggregates"]
    except FileNotFoundError:
        raise ConfigError(f"compare_to={path!r} does not exist: pass the suite.json of another "
                          f"`lopt evaluate suite={suite}` run.") from None
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ConfigError(f"compare_to={path!r} is not the suite.json of a `lopt evaluate suite=...` run "
                          f"({type(err).__name__}: {err}).") from None
    if doc.get("suite") != suite:
        raise ConfigError(f"compare_to={path!r} evaluated suite {doc.get('suite')!r}, this run evaluates "
                          f"{suite!r}: compare evaluations of the same suite.")
    return {"path": str(p), "label": label, "tasks": tasks, "aggregates": aggregates}


def _num(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{value:.{digits}g}"


def _speedup(point: dict[str, Any]) -> str:
    return (">=" if point["capped"] else "") + _num(point["speedup_over_adam"])


def interval_text(stat: dict[str, Any]) -> str:
    ci = stat["ci"]
    return _num(stat["value"]) + ("" if ci is None else f" [{_num(ci[0])}, {_num(ci[1])}]")


def table(result: dict[str, Any], other: dict[str, Any] | None) -> Table:
    """Per task: final loss, tuned-Adam loss, loss ratio, speedup and win (the compared
    evaluation's ratio and speedup beside them). A speedup marked >= is the cap: tuned Adam's
    envelope never reaches the optimizer's loss within the baseline's horizon."""
    t = Table(title=f"{result['label']} on suite {result['suite']} vs tuned {result['baseline_optimizer']}",
              caption="speedup: tuned Adam's steps to the same loss / the optimizer's; >=: the cap (horizon_mult), "
                      "tuned Adam never gets there within its horizon")
    columns = ["task", "final loss", "tuned Adam loss", "loss ratio", "speedup", "beats Adam"]
    if other is not None:
        columns += [f"{other['label']}: ratio", "speedup"]
    for col in columns:
        t.add_column(col, justify="left" if col == "task" else "right")
    for name, task in result["tasks"].items():
        p = task["scores"]
        row = [name, _num(p["final_loss"], 4), _num(p["best_adam_loss"], 4), _num(p["loss_ratio"]), _speedup(p),
               "yes" if p["beats_adam"] else "no"]
        if other is not None:
            q = other["tasks"].get(name, {}).get("scores")
            row += ["-", "-"] if q is None else [_num(q["loss_ratio"]), _speedup(q)]
        t.add_row(*row)
    return t


AGGREGATE_ROWS = (("IQM speedup over Adam", "speedup_over_adam", "iqm"),
                  ("median speedup over Adam", "speedup_over_adam", "median"),
                  ("IQM loss ratio", "loss_ratio", "iqm"), ("median loss ratio", "loss_ratio", "median"))


def aggregates_table(result: dict[str, Any], other: dict[str, Any] | None) -> Table:
    """The suite's aggregates, each with its 95% stratified bootstrap interval."""
    t = Table(title=f"suite {result['suite']}: {result['aggregates']['num_tasks']} tasks x {result['num_seeds']} "
                    "seeds, value [95% interval]")
    t.add_column("aggregate")
    sides = [result] + ([] if other is None else [other])
    for side in sides:
        t.add_column(side["label"], justify="right")
    for label, metric, stat in AGGREGATE_ROWS:
        t.add_row(label, *[interval_text(side["aggregates"][metric][stat]) for side in sides])
    t.add_row("fraction of tasks beating tuned Adam",
              *[interval_text(side["aggregates"]["win_fraction"]) for side in sides])
    return t
