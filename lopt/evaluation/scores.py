"""Per-task scores of an optimizer against a tuned baseline, following VeLO's evaluation (Metz et
al. 2022, "VeLO: Training versatile learned optimizers by scaling up", arXiv:2211.09760, sec. 4).

Every score compares training losses measured the same way on both sides: the per-step training
loss, smoothed by a debiased exponential moving average. The baseline's *envelope* is, at every
step, the lowest seed-mean smoothed loss over its learning rates, made monotone by a running
minimum: the best loss tuned Adam has reached by that step. An optimizer's final loss on a seed
then reads as a speedup (the ratio of the steps Adam and the optimizer need to reach the same
loss: the optimizer's final loss when Adam gets there, else Adam's best loss), as a ratio to the best
tuned final loss, and as a position between the initial loss and that best loss.

A seed whose loss went non-finite scores at the task's loss clip (`Task.loss_clip`, the value the
meta-loss clips to): it counts as a bad result, never as a missing one.
"""
from typing import Any, NamedTuple

import numpy as np

from lopt.config import check


def check_smoothing(decay: float) -> None:
    """The `smoothing` setting: an EMA decay in [0, 1)."""
    check(0.0 <= decay < 1.0, "smoothing", decay, "in [0, 1) (an EMA decay; 0: no smoothing)")


def smooth(curves: np.ndarray, decay: float) -> np.ndarray:
    """Debiased exponential moving average along the last axis (steps); `decay` 0 leaves the curves
    as they are. Once a value is non-finite, the rest of that curve is non-finite too."""
    curves = np.asarray(curves, float)
    out, avg = np.empty_like(curves), np.zeros(curves.shape[:-1])
    with np.errstate(invalid="ignore", over="ignore"):  # inf and NaN carry on as non-finite
        for t in range(curves.shape[-1]):
            avg = decay * avg + (1.0 - decay) * curves[..., t]
            out[..., t] = avg / (1.0 - decay ** (t + 1))
    return out


def envelope(baseline: np.ndarray, decay: float) -> np.ndarray:
    """The baseline envelope [steps] of per-step training losses `baseline` [learning rates, seeds,
    steps]: per learning rate the seed mean of the smoothed curves (a learning rate with a diverged
    seed counts as diverged from that step on), the minimum over learning rates, then the running
    minimum over steps."""
    smoothed = smooth(baseline, decay)
    mean = np.where(np.isfinite(smoothed).all(axis=1), smoothed.mean(axis=1), np.inf)
    return np.minimum.accumulate(mean.min(axis=0))


def steps_to_reach(env: np.ndarray, target: float) -> int | None:
    """Steps the baseline needs to reach `target`: 1 + the first index at which the envelope is at or
    below it (index t holds the loss after t steps, so reaching it at the last index of an
    N-step curve counts N); None when it never does."""
    hits = np.nonzero(env <= target)[0]
    return int(hits[0]) + 1 if hits.size else None


class TaskScores(NamedTuple):
    """Per-seed scores of one task (arrays over the evaluated seeds) and the baseline figures they
    were measured against."""

    final_loss: np.ndarray  # smoothed training loss at the last step (non-finite -> the loss clip)
    speedup: np.ndarray  # Adam's steps / the optimizer's steps to the same loss (> 1: faster; see score_task)
    reached: np.ndarray  # False where the envelope never reaches final_loss: speedup measured at Adam's best loss
    loss_ratio: np.ndarray  # final_loss / best baseline loss (< 1: better)
    normalized_loss: np.ndarray  # (final - best) / (initial - best), clipped to [0, 1] (0: as good)
    mean_loss: np.ndarray  # the raw training loss averaged over every step (non-finite -> the loss clip)
    best_loss: float  # the envelope's last value: the best smoothed loss tuned Adam reaches
    initial_loss: float  # the seed-mean training loss before the first step
    envelope: np.ndarray  # the baseline's envelope [steps]
    smoothed: np.ndarray  # the optimizer's smoothed training losses [seeds, steps]

    def point(self) -> dict[str, Any]:
        """The task's scores for the seed-mean final loss (what its table row shows)."""
        final = float(self.final_loss.mean())
        return {"final_loss": final, "best_adam_loss": self.best_loss, "initial_loss": self.initial_loss,
                "loss_ratio": float(self.loss_ratio.mean()), "speedup_over_adam": float(self.speedup.mean()),
                "reached": bool(self.reached.all()), "normalized_loss": float(self.normalized_loss.mean()),
                "mean_loss": float(self.mean_loss.mean()), "beats_adam": final < self.best_loss}


def _clipped_last(smoothed: np.ndarray, loss_clip: float) -> np.ndarray:
    last = smoothed[:, -1]
    return np.where(np.isfinite(last), np.minimum(last, loss_clip), loss_clip)


def final_losses(train_loss: np.ndarray, decay: float, loss_clip: float) -> np.ndarray:
    """Per seed, the smoothed training loss at the last step of `train_loss` [seeds, steps]; a seed
    that went non-finite (or above the clip) gets `loss_clip`."""
    return _clipped_last(smooth(train_loss, decay), loss_clip)


def score_task(train_loss: np.ndarray, baseline: np.ndarray, decay: float, loss_clip: float) -> TaskScores:
    """Scores of an optimizer's per-step training losses `train_loss` [seeds, steps] against the
    baseline's `baseline` [learning rates, baseline seeds, steps] (the same number of steps N).

    The speedup compares the steps both need to reach one loss. When the envelope reaches the
    optimizer's final loss (after k steps), it is k / N (at most 1). When it never does (the
    optimizer ends below anything tuned Adam reaches), it is N / m, where m is the number of steps
    the optimizer's own smoothed curve needs to reach Adam's best loss. That is VeLO's "how much
    sooner does it get to where tuned Adam ends" (above 1), and the two meet at 1 when the final
    losses are equal."""
    if train_loss.shape[-1] != baseline.shape[-1]:
        raise ValueError(f"the evaluated curves have {train_loss.shape[-1]} steps, the baseline's "
                         f"{baseline.shape[-1]}")
    num_steps = train_loss.shape[-1]
    env = envelope(baseline, decay)
    best = float(env[-1])
    initial = float(np.nanmean(np.where(np.isfinite(baseline[..., 0]), baseline[..., 0], np.nan)))
    smoothed = smooth(train_loss, decay)
    final = _clipped_last(smoothed, loss_clip)
    steps = [steps_to_reach(env, f) for f in final]
    reached = np.array([s is not None for s in steps])
    own_best = np.minimum.accumulate(np.where(np.isfinite(smoothed), smoothed, np.inf), axis=1)
    speedup = np.empty(len(final))
    for i, k in enumerate(steps):
        if k is not None:
            speedup[i] = k / num_steps
        else:  # it ends below tuned Adam's best, so its own curve gets there: how much sooner
            speedup[i] = num_steps / (steps_to_reach(own_best[i], best) or num_steps)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = final / best if best > 0 else np.full_like(final, np.nan)
        normalized = np.clip((final - best) / (initial - best), 0.0, 1.0) if initial > best else np.zeros_like(final)
    clipped = np.where(np.isfinite(train_loss), np.minimum(train_loss, loss_clip), loss_clip)
    return TaskScores(final, speedup, reached, ratio, normalized, clipped.mean(axis=1), best, initial, env, smoothed)
