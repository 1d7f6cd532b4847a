"""suite.png of a suite evaluation (`lopt evaluate suite=`): per-task speedups over tuned Adam
with their intervals, and per-task training curves against the tuned-Adam envelope."""
from typing import Any

import numpy as np

from lopt.figures import log_scale_if_positive
from lopt.io.results import pyplot

PANEL_COLUMNS = 4  # per-task curve panels per row of suite.png


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
        log_scale_if_positive(cax, np.concatenate([c["envelope"], c["train_loss"]]))
        cax.set_title(name, fontsize=9)
        cax.set_xlabel("step", fontsize=8)
        cax.tick_params(labelsize=7)
        if i == 0:
            cax.set_ylabel("training loss (smoothed, seed mean)", fontsize=8)
            cax.legend(fontsize=7)
    fig.suptitle(title)
    return fig
