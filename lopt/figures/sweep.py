"""sweep.png of `lopt baseline-sweep`: the best configurations' training curves, and the losses
against the learning rate with the best configuration marked."""
from pathlib import Path
from typing import Any

import numpy as np

from lopt.figures import LEARNING_RATE_LABEL, legend_outside, metric_axis, metric_label, title
from lopt.io.results import pyplot
from lopt.training import comparison
from lopt.training.sweep import CRITERIA, Configuration

PLOTTED_CURVES = 10  # the best configurations whose curves sweep.png shows


def _label(result: Configuration, swept: list[str]) -> str:
    return " ".join(f"{k}={result.hyperparameters[k]:.3g}" for k in swept[:2]) + (" …" if len(swept) > 2 else "")


def figure(results: list[Configuration], header: dict[str, Any], run_dir: Path) -> Any:
    """Mean training-loss curves of the best `PLOTTED_CURVES` configurations (the best one bold, with
    its ±1 std band over seeds), and final and mean training loss against the learning rate (a line
    over a grid, points for a random search) with the best configuration marked; losses on log axes;
    titled with the task and the run directory. `results` are ranked, best first."""
    plt = pyplot()
    swept, xs, best = header["swept"], np.asarray(header["eval/xs"]), results[0]
    metric, how = CRITERIA[header["criterion"]]
    fig, (curves_ax, lr_ax) = plt.subplots(1, 2, figsize=(14, 5))
    shown = sorted(results[:PLOTTED_CURVES], key=lambda r: r.hyperparameters["lr"])
    colors = plt.get_cmap("viridis")(np.linspace(0.0, 0.9, len(shown)))
    plotted = []
    for color, r in zip(colors, shown):
        per_seed = np.asarray(r.curves["eval/train/loss"], float)
        mean = comparison.finite_mean(per_seed)  # NaN, without numpy's warning, where every seed diverged
        plotted.append(mean)
        if r is best:
            std = np.nanstd(per_seed, axis=0)
            curves_ax.fill_between(xs, mean - std, mean + std, color="crimson", alpha=0.2, linewidth=0,
                                   label=f"best: ±1 std over {len(per_seed)} seeds")
            curves_ax.plot(xs, mean, color="crimson", linewidth=2.8, zorder=3, label=f"best: {_label(r, swept)}")
        else:
            curves_ax.plot(xs, mean, color=color, linewidth=1.2, label=_label(r, swept))
    metric_axis(curves_ax, "eval/train/loss", np.concatenate(plotted) if plotted else ())
    more = f"best {len(shown)} of {len(results)}, " if len(shown) < len(results) else ""
    legend_outside(curves_ax, title=f"configuration ({more}mean over {header['num_seeds']} seeds)")
    curves_ax.set_title("training curves", fontsize=10)

    by_lr = sorted(results, key=lambda r: r.hyperparameters["lr"])
    lrs = [r.hyperparameters["lr"] for r in by_lr]
    values = []
    series = [("final", "eval/train/loss"), ("mean", "eval/train/loss")]
    if (how, metric) not in series:
        series.append((how, metric))
    grid = header.get("search") == "grid" or swept == ["lr"]
    for when, key in series:
        ys = [r.metrics[f"{when}/{key}"].mean for r in by_lr]
        ys = [np.nan if v is None else v for v in ys]
        values += ys
        words = metric_label(key).replace(" (eval batches)", "")
        lr_ax.plot(lrs, ys, "o-" if grid else "o", markersize=5, alpha=1.0 if grid else 0.6,
                   label=f"{when} {words} over training" if when == "mean" else f"{when} {words}")
    best_value = best.metrics[f"{how}/{metric}"].mean
    if best_value is not None:
        lr_ax.plot([best.hyperparameters["lr"]], [best_value], marker="*", markersize=18, color="crimson",
                   markeredgecolor="k", linestyle="none", zorder=4,
                   label=f"best (lowest {how} {metric_label(metric).replace(' (eval batches)', '')}): "
                         f"{_label(best, swept)}")
    lr_ax.set_xscale("log")
    metric_axis(lr_ax, "loss", values, x_label=LEARNING_RATE_LABEL)
    lr_ax.set_ylabel(f"training loss (mean over {header['num_seeds']} seeds)")
    lr_ax.legend(loc="best", fontsize=8, framealpha=0.9)  # where it covers fewest points
    lr_ax.set_title("loss against learning rate", fontsize=10)
    fig.suptitle(title(header["task"], run_dir,
                               f"{header['optimizer']} {header['search']} search over {', '.join(swept)}: "
                               f"{len(results)} configurations x {header['num_seeds']} seeds"))
    return fig
