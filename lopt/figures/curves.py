"""curves.png of `lopt evaluate`: one task's training curves over many seeds, beside a tuned
baseline's when comparing."""
from pathlib import Path
from typing import Any

import numpy as np

from lopt.figures import legend_outside, metric_axis, title
from lopt.io.results import pyplot
from lopt.training import comparison


def band(ax: Any, xs: np.ndarray, per_seed: np.ndarray, color: str, label: str) -> np.ndarray:
    """Mean over seeds with a +-1 std band (over the finite seeds; a gap where every seed diverged);
    the mean, for the axis scale."""
    mean = comparison.finite_mean(per_seed)
    with np.errstate(all="ignore"):
        std = np.sqrt(comparison.finite_mean(np.square(per_seed - mean)))
    ax.plot(xs, mean, color=color, label=f"{label} ({len(per_seed)} seeds)")
    ax.fill_between(xs, mean - std, mean + std, color=color, alpha=0.2, linewidth=0)
    return mean


def figure(result: dict[str, Any], label: str, baseline: comparison.Baseline | None, run_dir: Path) -> Any:
    """One panel per eval curve (losses on a log axis), each seed-averaged with a +-1 std band; the
    tuned baseline's alongside when comparing; titled with the task and the run directory."""
    plt = pyplot()
    metrics = [m for m in ("eval/train/loss", "eval/test/loss", "eval/test/accuracy") if m in result["curves"]]
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.8 * len(metrics), 4.8), squeeze=False)
    xs = np.asarray(result["eval/xs"])
    for ax, name in zip(axes[0], metrics):
        shown = [band(ax, xs, np.asarray(result["curves"][name]["per_seed"], float), "tab:blue", label)]
        if baseline is not None and name in baseline.curves:
            shown.append(band(ax, xs, baseline.curves[name], "k", f"tuned {baseline.label} (best of its sweep)"))
        metric_axis(ax, name, np.concatenate(shown))
    legend_outside(axes[0, len(metrics) // 2], title="lines: mean over seeds; shaded: ±1 std over seeds", below=True)
    detail = f"{label} vs the tuned {baseline.label}" if baseline is not None else label
    fig.suptitle(title(result["task"], run_dir, detail))
    return fig
