"""Every figure lopt draws, one module each, and what they share (here): metric keys in words,
losses on a log axis, a title naming the task and the run, legends outside the data, and one label
per optimizer (its hyperparameters included).

`curves` (evaluate's curves.png), `sweep` (baseline-sweep's sweep.png), `suite` (a suite
evaluation's suite.png), `meta_training` (meta-train's meta_training.png), `population`
(population.png); the paper scripts draw theirs from these helpers too.
"""
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lopt.io.tracking import run_name

# metric key -> what the axis says
METRIC_LABELS = {
    "eval/train/loss": "training loss (eval batches)",
    "eval/test/loss": "test loss",
    "eval/test/accuracy": "test accuracy",
    "train/loss": "training loss (minibatch)",
    "outer/loss": "meta-training loss (mean inner training loss)",
    "inner/loss": "inner-problem training loss",
    "outer/grad_norm": "meta-gradient norm",
    "outer/theta_norm": "meta-parameter norm",
}
STEP_LABEL = "training step"
OUTER_STEP_LABEL = "outer iteration (meta-training step)"
LEARNING_RATE_LABEL = "learning rate"
STD_BAND = "band: ±1 std over {n} seeds"


def metric_label(key: str) -> str:
    """A metric key in words: `eval/test/loss` -> "test loss"; unknown keys lose their slashes."""
    return METRIC_LABELS.get(key, key.replace("/", " ").replace("_", " "))


def is_loss(key: str) -> bool:
    return "loss" in key.rsplit("/", 1)[-1]


def _number(value: float, _pos: Any = None) -> str:
    return f"{value:.3g}"


def log_scale_if_positive(ax: Any, values: Iterable[Any]) -> bool:
    """A log y axis when every finite value is positive (losses spanning decades stay readable),
    ticks written as plain numbers (0.3, not 3x10^-1); a linear axis otherwise (e.g. a loss that can
    go negative). True if log."""
    from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter, ScalarFormatter

    v = np.asarray(list(values), float).ravel()
    v = v[np.isfinite(v)]
    if not v.size or (v <= 0).any():
        return False
    ax.set_yscale("log")
    decades = float(np.log10(v.max() / v.min()))
    ax.yaxis.set_minor_formatter(NullFormatter())
    if decades < 0.5:  # the powers of ten (and their multiples) miss so narrow a range: evenly spaced ticks
        ax.yaxis.set_major_locator(MaxNLocator(nbins=6))
        plain = ScalarFormatter(useOffset=False)
        plain.set_scientific(False)
        ax.yaxis.set_major_formatter(plain)
        return True
    if decades < 3:
        ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 3.0, 5.0) if decades < 1.5 else (1.0, 3.0)))
    ax.yaxis.set_major_formatter(FuncFormatter(_number))
    return True


def metric_axis(ax: Any, key: str, values: Iterable[Any] = (), x_label: str = STEP_LABEL) -> None:
    """Label `ax` for metric `key` in words; log y axis for losses."""
    ax.set_xlabel(x_label)
    ax.set_ylabel(metric_label(key))
    if is_loss(key):
        log_scale_if_positive(ax, values)
    ax.grid(True, which="major", alpha=0.3)


def tasks_label(names: Sequence[str]) -> str:
    """Tasks for a title: all of up to three, else how many, the first and the last (a family's 12
    variants would run off the figure)."""
    return ",".join(names) if len(names) <= 3 else f"{len(names)} tasks ({names[0]} … {names[-1]})"


def title(task: str, run_dir: str | Path, detail: str = "") -> str:
    """"<task> — <run>", and what the figure shows on a second line."""
    head = f"{task} — {run_name(Path(run_dir))}"
    return f"{head}\n{detail}" if detail else head


def legend_outside(ax: Any, title: str | None = None, below: bool = False, **kwargs: Any) -> Any:
    """The legend clear of the data: right of `ax`, or centred below it (`below`, for wide figures);
    tight_layout makes room for it either way."""
    where = (dict(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2) if below
             else dict(loc="upper left", bbox_to_anchor=(1.02, 1.0)))
    return ax.legend(**{**where, **kwargs}, borderaxespad=0.0, fontsize=8, title=title, title_fontsize=8)


def hyperparameters_label(hyperparameters: Mapping[str, Any], keys: Iterable[str] | None = None) -> str:
    """`lr=0.03 b1=0.9`: the hyperparameters named by `keys` (default: all numeric ones)."""
    keys = list(hyperparameters) if keys is None else list(keys)
    parts = []
    for k in keys:
        v = hyperparameters.get(k)
        if isinstance(v, bool) or v is None:
            continue
        if isinstance(v, (int, float)):
            parts.append(f"{k}={v:.3g}")
    return " ".join(parts)


def optimizer_label(name: str, learned: bool, hyperparameters: Mapping[str, Any] | None = None,
                    trained: bool = True) -> str:
    """The evaluated optimizer as a legend entry: a hand-designed one with its learning rate
    (`adam lr=0.001`), a learned one as meta-trained or at its random initialization."""
    if learned:
        return f"{name} ({'meta-trained' if trained else 'untrained init'})"
    hp = hyperparameters_label({k: v for k, v in (hyperparameters or {}).items() if k == "lr"})
    return f"{name} {hp}".strip()
