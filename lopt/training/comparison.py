"""An evaluated optimizer against the best tuned baseline of a `lopt baseline-sweep` run.

The baseline is read from the sweep's `best.json` (or its `sweep.json`, whose first configuration
is the best). Both sides are compared on the same evaluation grid: final and mean
`eval/train/loss`, and the first step at which each side's mean curve reaches the baseline's
final loss.
"""
import json
import math
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from rich.table import Table

from lopt.errors import ConfigError

METRIC = "eval/train/loss"


class Baseline(NamedTuple):
    path: Path
    optimizer: str
    label: str  # the optimizer and its swept hyperparameters, e.g. "adam lr=0.002"
    task: str
    xs: list[int]
    curves: dict[str, np.ndarray]  # name -> [seeds, len(xs)], NaN where a seed diverged


def _configuration(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"compare_to={str(path)!r} does not exist. Pass the best.json or sweep.json "
                          "of a `lopt baseline-sweep` run.") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ConfigError(f"compare_to={str(path)!r} is not a readable JSON file ({err}). Pass the "
                          "best.json or sweep.json of a `lopt baseline-sweep` run.") from None
    if isinstance(doc, dict) and isinstance(doc.get("configuration"), dict):
        return doc, doc["configuration"]
    if isinstance(doc, dict) and doc.get("configurations"):
        return doc, doc["configurations"][0]
    raise ConfigError(f"compare_to={str(path)!r} is not the best.json or sweep.json of a `lopt baseline-sweep` "
                      "run: it has neither a 'configuration' nor a 'configurations' entry.")


def _steps(xs: list[int]) -> str:
    return f"0..{xs[-1]} every {xs[1] - xs[0]}" if len(xs) > 1 else str(xs)


def load_baseline(path: str | Path, task: str, xs: list[int]) -> Baseline:
    """The best configuration of a sweep, checked to be on `task` and evaluated at steps `xs`."""
    if not str(path).strip():
        raise ConfigError(f"compare_to={str(path)!r} is empty: pass the best.json or sweep.json of a `lopt "
                          "baseline-sweep` run, or leave compare_to unset.")
    path = Path(path).expanduser()
    if path.is_dir():
        raise ConfigError(f"compare_to={str(path)!r} is a directory: pass the best.json or sweep.json of a `lopt "
                          "baseline-sweep` run (in its run directory).")
    doc, best = _configuration(path)
    try:
        hp = best["hyperparameters"]
        swept = doc.get("swept", list(hp))
        label = f"{doc['optimizer']} " + " ".join(f"{k}={hp[k]:.3g}" for k in swept)
        curves = {k: np.asarray(v, float) for k, v in best["curves"].items() if k.startswith("eval/")}
        baseline = Baseline(path, doc["optimizer"], label, doc["task"], list(doc["eval/xs"]), curves)
    except (KeyError, TypeError, ValueError) as err:
        raise ConfigError(f"compare_to={str(path)!r} is missing the sweep result entry {err}; pass a best.json "
                          "or sweep.json written by `lopt baseline-sweep`.") from None
    if baseline.task != task:
        raise ConfigError(f"compare_to={str(path)!r} is a sweep on task {baseline.task!r}, but this evaluation "
                          f"trains {task!r}. Compare on the same task.")
    if baseline.xs != xs or METRIC not in curves:
        raise ConfigError(f"compare_to={str(path)!r} was evaluated at steps {_steps(baseline.xs)} but this "
                          f"evaluation records steps {_steps(xs)}; set num_steps and eval_every to the sweep's "
                          "values to compare the curves step by step.")
    return baseline


def steps_to_reach(mean_curve: np.ndarray, xs: list[int], target: float) -> int | None:
    """The first evaluation step at which `mean_curve` is at or below `target` (None: never)."""
    hits = np.nonzero(np.asarray(mean_curve) <= target)[0]
    return int(xs[hits[0]]) if hits.size else None


def finite_mean(a: np.ndarray, axis: int = 0) -> np.ndarray:
    """The mean over `axis` of the finite values of `a`; NaN where there are none (without numpy's
    'Mean of empty slice' warning, e.g. when every seed diverged)."""
    a = np.asarray(a, float)
    finite = np.isfinite(a)
    count = finite.sum(axis)
    total = np.where(finite, a, 0.0).sum(axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def compare(curves: dict[str, np.ndarray], baseline: Baseline) -> dict[str, Any]:
    """Final loss, mean loss and steps to reach the baseline's final loss, for both sides (NaN
    losses and steps None where a side's every seed diverged)."""
    target = float(finite_mean(baseline.curves[METRIC][:, -1]))
    out = {"baseline_label": baseline.label, "baseline_path": str(baseline.path), "target_loss": target}
    for side, c in (("evaluated", curves), ("baseline", baseline.curves)):
        mean_curve = finite_mean(c[METRIC])
        out[side] = {"final_loss": float(mean_curve[-1]), "mean_loss": float(mean_curve.mean()),
                     "steps_to_target": steps_to_reach(mean_curve, baseline.xs, target)}
    return out


def shown(value: Any) -> Any:
    """A comparison value as the user reads it: steps never reached say "never", a loss every seed
    diverged on says "diverged" (the JSON keeps null and NaN)."""
    if value is None:
        return "never"
    if isinstance(value, float) and not math.isfinite(value):
        return "diverged"
    return value


def flat(comparison: dict[str, Any]) -> dict[str, Any]:
    """The comparison as flat summary values (`compare/...`), as the summary table shows them."""
    return {f"compare/{side}/{k}": shown(v) for side in ("evaluated", "baseline") for k, v in comparison[side].items()}


def table(comparison: dict[str, Any], evaluated_label: str) -> Table:
    t = Table(title=f"{evaluated_label} vs the tuned baseline {comparison['baseline_label']}")
    t.add_column(METRIC)
    t.add_column(evaluated_label, justify="right")
    t.add_column("baseline", justify="right")
    e, b = comparison["evaluated"], comparison["baseline"]

    def fmt(v):
        v = shown(v)
        return f"{v:.4f}" if isinstance(v, float) else str(v)

    t.add_row("final loss", fmt(e["final_loss"]), fmt(b["final_loss"]))
    t.add_row("mean loss", fmt(e["mean_loss"]), fmt(b["mean_loss"]))
    t.add_row(f"steps to {comparison['target_loss']:.4f}", fmt(e["steps_to_target"]), fmt(b["steps_to_target"]))
    return t
