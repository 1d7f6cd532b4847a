"""What a suite evaluation shows: the console table, suite.png, and another evaluation's
suite.json read back for side-by-side comparison (`compare_to`)."""
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
from rich.table import Table

from lopt.errors import ConfigError
from lopt.results import pyplot

PANEL_COLUMNS = 4  # per-task curve panels per row of suite.png


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


def figure(result: dict[str, Any], other: dict[str, Any] | None, title: str) -> Any:
    """suite.png: per-task speedup over tuned Adam on a log axis (95% interval over seeds; a hollow
    marker where it is only a lower bound, the cap) with the line at 1, and a grid of per-task
    training curves (seed mean, smoothed) against the tuned-Adam envelope over the baseline's
    horizon, on a log step axis."""
    plt = pyplot()
    names = list(result["tasks"])
    rows = -(-len(names) // PANEL_COLUMNS)
    fig = plt.figure(figsize=(4.2 * PANEL_COLUMNS, 0.35 * len(names) + 2.5 + 3.2 * rows))
    grid = fig.add_gridspec(rows + 1, PANEL_COLUMNS, height_ratios=[0.35 * len(names) + 1.5] + [3.2] * rows)
    ax = fig.add_subplot(grid[0, :])
    ys = np.arange(len(names))
    sides = [(result, "tab:blue", 0.0)] + ([] if other is None else [(other, "tab:orange", 0.25)])
    for side, color, shift in sides:
        for y, name in zip(ys, names):
            task = side["tasks"].get(name)
            if task is None:
                continue
            p, ci = task["scores"], task["speedup_ci"]
            if ci is not None:
                ax.plot(ci, [y + shift] * 2, color=color, linewidth=2, alpha=0.6)
            ax.plot([p["speedup_over_adam"]], [y + shift], "o", color=color,
                    markerfacecolor="white" if p["capped"] else color, markersize=7)
        ax.plot([], [], "o", color=color, label=side["label"])
    ax.axvline(1.0, color="k", linestyle="--", linewidth=1, label="tuned Adam (speedup 1)")
    ax.set_xscale("log")
    ax.set_yticks(ys, names)
    ax.invert_yaxis()
    ax.set_xlabel("speedup over tuned Adam: Adam's steps / the optimizer's steps to the same loss "
                  "(hollow: the cap, tuned Adam never gets there; bars: 95% interval over seeds)")
    ax.legend(loc="lower right", fontsize=8)
    for i, name in enumerate(names):
        cax = fig.add_subplot(grid[1 + i // PANEL_COLUMNS, i % PANEL_COLUMNS])
        c = result["tasks"][name]["curves"]
        steps = np.arange(1, len(c["train_loss"]) + 1)
        cax.plot(np.arange(1, len(c["envelope"]) + 1), c["envelope"], color="k", label="tuned Adam envelope")
        cax.plot(steps, c["train_loss"], color="tab:blue", label=result["label"])
        if other is not None and name in other["tasks"]:
            cax.plot(steps, other["tasks"][name]["curves"]["train_loss"], color="tab:orange", label=other["label"])
        cax.axvline(len(steps), color="grey", linestyle=":", linewidth=1)
        cax.set_xscale("log")
        values = np.concatenate([c["envelope"], c["train_loss"]])
        values = values[np.isfinite(values)]
        if values.size and (values > 0).all():
            cax.set_yscale("log")
        cax.set_title(name, fontsize=9)
        cax.set_xlabel("step", fontsize=8)
        cax.tick_params(labelsize=7)
        if i == 0:
            cax.set_ylabel("training loss (smoothed, seed mean)", fontsize=8)
            cax.legend(fontsize=7)
    fig.suptitle(title)
    return fig
