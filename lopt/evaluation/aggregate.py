"""Suite-level summaries of per-task, per-seed scores, with stratified bootstrap intervals.

As rliable does (Agarwal et al. 2021, "Deep reinforcement learning at the edge of the statistical
precipice", NeurIPS), the point estimates pool every (task, seed) score, and the 95% interval comes
from a stratified bootstrap: each task's seeds are resampled independently (scipy's multi-sample
`scipy.stats.bootstrap`, percentile method), so every resample keeps every task.
"""
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from scipy import stats

RESAMPLES = 2000
CONFIDENCE = 0.95


def iqm(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """Interquartile mean: the mean of the middle 50% of the values."""
    return stats.trim_mean(x, 0.25, axis=axis)


def _pooled(fn: Callable[..., np.ndarray]) -> Callable[..., np.ndarray]:
    """A statistic of all tasks' scores pooled, in scipy.stats.bootstrap's vectorized form."""
    return lambda *per_task, axis=-1: fn(np.concatenate(per_task, axis=axis), axis=axis)


def _win_fraction(*per_task: np.ndarray, axis: int = -1) -> np.ndarray:
    """The fraction of tasks whose seed-mean loss ratio is below 1."""
    return np.mean([np.mean(r, axis=axis) < 1.0 for r in per_task], axis=0)


STATISTICS: dict[str, Callable[..., np.ndarray]] = {
    "iqm": _pooled(iqm), "median": _pooled(np.median), "mean": _pooled(np.mean),
}


def estimate(per_task: Sequence[np.ndarray], statistic: Callable[..., np.ndarray], seed: int) -> dict[str, Any]:
    """`statistic` of the per-task score arrays and its 95% stratified bootstrap interval (None
    when a task has fewer than two seeds or a score is not finite: there is nothing to resample)."""
    samples = [np.asarray(s, float) for s in per_task]
    value = float(statistic(*samples, axis=-1))
    if min(len(s) for s in samples) < 2 or not all(np.isfinite(s).all() for s in samples):
        return {"value": value, "ci": None}
    if all(np.ptp(s) == 0 for s in samples):
        return {"value": value, "ci": [value, value]}
    result = stats.bootstrap(samples, statistic, n_resamples=RESAMPLES, confidence_level=CONFIDENCE,
                             method="percentile", vectorized=True, rng=np.random.default_rng(seed))
    low, high = result.confidence_interval
    return {"value": value, "ci": [float(low), float(high)]}


def summarize(speedups: Sequence[np.ndarray], loss_ratios: Sequence[np.ndarray], seed: int = 0) -> dict[str, Any]:
    """The suite's aggregates: IQM, median and mean of the speedup over Adam and of the final-loss
    ratio, and the fraction of tasks that beat tuned Adam, each with its interval."""
    out: dict[str, Any] = {}
    for name, per_task in (("speedup_over_adam", speedups), ("loss_ratio", loss_ratios)):
        out[name] = {stat: estimate(per_task, fn, seed) for stat, fn in STATISTICS.items()}
    out["win_fraction"] = estimate(loss_ratios, _win_fraction, seed)
    out["num_tasks"] = len(speedups)
    return out
