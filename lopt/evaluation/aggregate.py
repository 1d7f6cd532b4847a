"""Suite-level summaries of per-task, per-seed scores, with stratified bootstrap intervals.

As rliable does (Agarwal et al. 2021, "Deep reinforcement learning at the edge of the statistical
precipice", NeurIPS), the point estimates pool every (task, seed) score, and the 95% interval comes
from a stratified bootstrap: each task's seeds are resampled independently (scipy's multi-sample
`scipy.stats.bootstrap`, percentile method), so every resample keeps every task.

A score against a tuned baseline also carries the baseline's error: its envelope comes from a few
seeds too. With `draws` (per task, the seeds' scores against envelopes of resampled baseline seeds,
`lopt.evaluation.scores.baseline_draws`), every resample of a task's seeds also takes one of its
baseline draws at random, so the interval holds both errors (a two-sample stratified bootstrap).
Without them, as rliable, only the evaluated seeds are resampled.
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


def _with_draws(statistic: Callable[..., np.ndarray], draws: Sequence[np.ndarray],
                rng: np.random.Generator) -> Callable[..., np.ndarray]:
    """`statistic` of resampled seed indices: each task's scores come from one of its baseline draws
    [draws, seeds], picked at random per resample."""
    def of_indices(*indices: np.ndarray, axis: int = -1) -> np.ndarray:
        values = []
        for table, idx in zip(draws, indices):
            idx = np.asarray(idx, int)
            picked = rng.integers(len(table), size=idx.shape[:-1])
            values.append(table[picked[..., None], idx])
        return statistic(*values, axis=axis)

    return of_indices


def estimate(per_task: Sequence[np.ndarray], statistic: Callable[..., np.ndarray], seed: int,
             draws: Sequence[np.ndarray] | None = None) -> dict[str, Any]:
    """`statistic` of the per-task score arrays and its 95% stratified bootstrap interval (None
    when a task has fewer than two seeds or a score is not finite: there is nothing to resample),
    with `draws` resampling each task's baseline too (module docstring)."""
    samples = [np.asarray(s, float) for s in per_task]
    value = float(statistic(*samples, axis=-1))
    tables = None if draws is None else [np.asarray(d, float) for d in draws]
    if (min(len(s) for s in samples) < 2 or not all(np.isfinite(s).all() for s in samples)
            or (tables is not None and not all(np.isfinite(t).all() for t in tables))):
        return {"value": value, "ci": None}
    if all(np.ptp(s) == 0 for s in (tables if tables is not None else samples)):
        return {"value": value, "ci": [value, value]}
    rng = np.random.default_rng(seed)
    if tables is not None:
        samples, statistic = [np.arange(len(s), dtype=float) for s in samples], _with_draws(statistic, tables, rng)
    result = stats.bootstrap(samples, statistic, n_resamples=RESAMPLES, confidence_level=CONFIDENCE,
                             method="percentile", vectorized=True, rng=rng)
    low, high = result.confidence_interval
    return {"value": value, "ci": [float(low), float(high)]}


def summarize(speedups: Sequence[np.ndarray], loss_ratios: Sequence[np.ndarray], seed: int = 0,
              draws: tuple[Sequence[np.ndarray], Sequence[np.ndarray]] | None = None) -> dict[str, Any]:
    """The suite's aggregates: IQM, median and mean of the speedup over Adam and of the final-loss
    ratio, and the fraction of tasks that beat tuned Adam, each with its interval (`draws`: per
    task, the speedups' and the loss ratios' baseline draws)."""
    speedup_draws, ratio_draws = (None, None) if draws is None else draws
    out: dict[str, Any] = {}
    for name, per_task, tables in (("speedup_over_adam", speedups, speedup_draws),
                                   ("loss_ratio", loss_ratios, ratio_draws)):
        out[name] = {stat: estimate(per_task, fn, seed, tables) for stat, fn in STATISTICS.items()}
    out["win_fraction"] = estimate(loss_ratios, _win_fraction, seed, ratio_draws)
    out["num_tasks"] = len(speedups)
    return out
