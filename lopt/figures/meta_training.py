"""meta_training.png: a meta-training run's outer loss and its evaluations (`eval.every`) against
outer iterations and wall time, the training and held-out groups side by side, so meta-overfitting
("C curves", Metz et al. 2022, Practical tradeoffs between memory, compute, and performance in
learned optimizers, arXiv:2203.11860, Fig. 6) shows."""
from typing import Any

import numpy as np

from lopt import figures
from lopt.io.results import pyplot

SCORES = (("iqm/speedup_over_adam", "IQM speedup over tuned Adam"),
          ("iqm/loss_ratio", "IQM final-loss ratio to tuned Adam"))


def _series(records: list[dict[str, Any]], key: str, x: str) -> tuple[np.ndarray, np.ndarray]:
    rows = [(r[x], r[key]) for r in records if r.get(key) is not None and r.get(x) is not None]
    return np.asarray([a for a, _ in rows], float).reshape(-1), np.asarray([b for _, b in rows], float).reshape(-1)


def figure(records: list[dict[str, Any]], groups: list[str], title: str) -> Any:
    """Rows: against outer iterations, against wall time. Columns: the outer loss, then each score
    of every evaluated group (`eval/<group>/...`; all tasks together as "all") with the line at 1."""
    plt = pyplot()
    fig, axes = plt.subplots(2, 1 + len(SCORES), figsize=(5.2 * (1 + len(SCORES)), 8.5), squeeze=False)
    logged = [r for r in records if "outer/loss" in r]
    evals = [r for r in records if "time/eval_s" in r]
    prefixes = [("eval", "all evaluated tasks")] + [(f"eval/{g}", g) for g in groups]
    for row, (x, x_label) in enumerate((("outer_iteration", figures.OUTER_STEP_LABEL),
                                        ("time/wall_s", "wall time (s)"))):
        xs, loss = _series(logged, "outer/loss", x)
        axes[row, 0].plot(xs, loss, linewidth=1)
        figures.metric_axis(axes[row, 0], "outer/loss", loss, x_label=x_label)
        for col, (score, label) in enumerate(SCORES, start=1):
            ax, shown = axes[row, col], []
            for prefix, name in prefixes:
                ex, ey = _series(evals, f"{prefix}/{score}", x)
                if ey.size:
                    ax.plot(ex, ey, "o-", markersize=4, label=name)
                    shown.append(ey)
            ax.axhline(1.0, color="k", linestyle="--", linewidth=1, label="tuned Adam")
            figures.log_scale_if_positive(ax, np.concatenate(shown) if shown else [1.0])
            ax.set_xlabel(x_label)
            ax.set_ylabel(label)
            ax.legend(fontsize=8, loc="best")
    fig.suptitle(title)
    return fig
