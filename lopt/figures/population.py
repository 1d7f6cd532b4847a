"""population.png of population self-training: each member's population score over
outer-training time (Metz et al. 2021, Training learned optimizers with randomly initialized
learned optimizers, arXiv:2101.07367, Figure 2, left)."""
from pathlib import Path
from typing import Any

from lopt.io.results import pyplot, read_jsonl


def figure(run_dir: Path, size: int, score: str, title: str) -> Any:
    """Each member's population score over outer-training time (the paper's Figure 2, left)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    key = f"eval/population/{score}"
    for i in range(size):
        path = run_dir / "members" / str(i) / "metrics.jsonl"
        rows = read_jsonl(path)
        points = [(r["time/wall_s"] / 60, r[key]) for r in rows if key in r]
        if points:
            ax.plot(*zip(*points), marker="o", ms=3, label=f"member {i}")
    ax.set_xlabel("outer-training time (min)")
    ax.set_ylabel(f"mean {score} over the evaluation tasks")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
