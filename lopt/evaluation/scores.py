"""Per-task scores of an optimizer against a tuned baseline, following VeLO's evaluation (Metz et
al. 2022, "VeLO: Training versatile learned optimizers by scaling up", arXiv:2211.09760, sec. 4 and
`learned_optimization.baselines.normalizers`).

The optimizer trains N steps; the baseline (every learning rate of a tuned sweep, several seeds)
trains `horizon_mult` times longer, H = horizon_mult * N steps (VeLO: 10). Both sides are measured
the same way: the per-step training loss, smoothed by a debiased exponential moving average.

- The baseline's *envelope* is, at every step, the lowest seed-mean smoothed loss over its learning
  rates, made non-increasing: the best loss tuned Adam has reached by that step.
- The *speedup* of a seed is the number of steps the envelope needs to reach the seed's final loss,
  divided by N, capped at horizon_mult (VeLO's definition; the cap is where the baseline's run
  ends). Steps are fractional: the envelope is interpolated linearly between steps.
- The *loss ratio* divides the final loss by the envelope at step N: tuned Adam at the same length.

Calibration: an optimizer identical to tuned Adam, run on other seeds, must score 1. Two choices
here serve that and depart from VeLO's code (`scripts/calibrate_scores.py` measures the null):
- VeLO makes the envelope monotone by a running minimum only. On noisy curves that level off, a
  running minimum keeps the luckiest dip of the noise, so the baseline reads better than it is and
  an equal optimizer scores below 1 (simulated: IQM speedup 0.85-0.89 at per-step noise 0.1). Here
  each learning rate's seed-mean curve is first replaced by its least-squares non-increasing fit
  (isotonic regression, `scipy.optimize`), drawn through the centres of its constant blocks, which
  does not follow the noise where the curve is flat; the minimum over learning rates and the
  running minimum come after, as in VeLO (a rate that diverges drops out, the best stays).
- VeLO smooths evaluation-batch losses recorded every few hundred steps (EMA 0.95 per record); lopt
  smooths the training loss of every step (EMA `smoothing`, default 0.95), which costs nothing
  extra and keeps a step resolution on tasks of 50 steps. On curves that level off, a seed's final
  loss a little below the envelope maps to many more steps than one a little above it maps to
  fewer, so noise in the final loss pushes the IQM speedup above 1; the stronger smoothing damps
  that noise (tuned Adam's null on `offline_small`, 10 fresh seeds: 1.058 [1.004, 1.110] at 0.9,
  1.026 [0.988, 1.078] at 0.95).

A seed whose loss went non-finite scores at the task's loss clip (`Task.loss_clip`, the value the
meta-loss clips to): it counts as a bad result, never as a missing one.
"""
from typing import Any, NamedTuple

import numpy as np
from scipy.optimize import isotonic_regression

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


def monotone(curve: np.ndarray) -> np.ndarray:
    """The least-squares non-increasing fit of `curve` (isotonic regression), drawn as straight
    lines through the centres of its constant blocks (flat before the first centre and after the
    last). Non-finite values (from a divergence on) stay as they are."""
    curve = np.asarray(curve, float)
    finite = int(np.argmin(np.isfinite(curve))) if not np.isfinite(curve).all() else len(curve)
    out = curve.copy()
    if finite:
        fit = isotonic_regression(curve[:finite], increasing=False)
        starts, ends = fit.blocks[:-1], fit.blocks[1:]
        out[:finite] = np.interp(np.arange(finite), (starts + ends - 1) / 2.0, fit.x[starts])
    return out


def _envelope(smoothed: np.ndarray) -> np.ndarray:
    """`envelope` of already smoothed curves [rates, seeds, steps]."""
    mean = np.where(np.isfinite(smoothed).all(axis=1), smoothed.mean(axis=1), np.inf)
    return np.minimum.accumulate(np.min([monotone(m) for m in mean], axis=0))


def envelope(baseline: np.ndarray, decay: float) -> np.ndarray:
    """The baseline envelope [steps] of per-step training losses `baseline` [learning rates, seeds,
    steps]: per learning rate the seed mean of the smoothed curves (a learning rate with a diverged
    seed counts as diverged from that step on) made `monotone`, the minimum over learning rates,
    then the running minimum (a rate that diverges drops out; the best loss reached so far stays)."""
    env = _envelope(smooth(baseline, decay))
    if not np.isfinite(env[0]):
        raise ValueError("the baseline's loss is not finite at step 0 for any learning rate")
    return env


def steps_to_reach(env: np.ndarray, target: float) -> float | None:
    """Steps a non-increasing envelope needs to reach `target`, interpolated linearly between steps.
    Index t holds the loss after t steps, counted as t + 1 steps (so reaching it at the last index of
    an N-step curve counts N); None when the envelope never gets there."""
    hits = np.nonzero(env <= target)[0]
    if not hits.size:
        return None
    i = int(hits[0])
    if i == 0:
        return 1.0
    return i + float((env[i - 1] - target) / (env[i - 1] - env[i]))


class TaskScores(NamedTuple):
    """Per-seed scores of one task (arrays over the evaluated seeds) and the baseline figures they
    were measured against."""

    final_loss: np.ndarray  # smoothed training loss at the last step (non-finite -> the loss clip)
    speedup: np.ndarray  # the envelope's steps to final_loss / N, capped at horizon_mult (> 1: faster)
    capped: np.ndarray  # True where the envelope never reaches final_loss: the speedup is the cap, a lower bound
    loss_ratio: np.ndarray  # final_loss / the envelope at step N (< 1: better)
    normalized_loss: np.ndarray  # (final - best) / (initial - best), clipped to [0, 1] (0: as good)
    mean_loss: np.ndarray  # the raw training loss averaged over every step (non-finite -> the loss clip)
    best_loss: float  # the envelope at step N: the best smoothed loss tuned Adam reaches in N steps
    initial_loss: float  # the seed-mean training loss before the first step
    horizon_mult: int  # the baseline ran horizon_mult * N steps: the speedup's cap
    envelope: np.ndarray  # the baseline's envelope [horizon_mult * N steps]
    smoothed: np.ndarray  # the optimizer's smoothed training losses [seeds, N steps]

    def point(self) -> dict[str, Any]:
        """The task's scores for the seed-mean final loss (what its table row shows)."""
        final = float(self.final_loss.mean())
        return {"final_loss": final, "best_adam_loss": self.best_loss, "initial_loss": self.initial_loss,
                "loss_ratio": float(self.loss_ratio.mean()), "speedup_over_adam": float(self.speedup.mean()),
                "capped": bool(self.capped.all()), "normalized_loss": float(self.normalized_loss.mean()),
                "mean_loss": float(self.mean_loss.mean()), "beats_adam": final < self.best_loss}


def _clipped_last(smoothed: np.ndarray, loss_clip: float) -> np.ndarray:
    last = smoothed[:, -1]
    return np.where(np.isfinite(last), np.minimum(last, loss_clip), loss_clip)


def final_losses(train_loss: np.ndarray, decay: float, loss_clip: float) -> np.ndarray:
    """Per seed, the smoothed training loss at the last step of `train_loss` [seeds, steps]; a seed
    that went non-finite (or above the clip) gets `loss_clip`."""
    return _clipped_last(smooth(train_loss, decay), loss_clip)


def horizon(num_steps: int, baseline_steps: int) -> int:
    """horizon_mult: how many times the evaluated length N the baseline ran (a whole number >= 1)."""
    if baseline_steps < num_steps or baseline_steps % num_steps:
        raise ValueError(f"the evaluated curves have {num_steps} steps, the baseline's {baseline_steps}: "
                         f"a baseline runs a whole multiple (horizon_mult) of the evaluated length")
    return baseline_steps // num_steps


def _speedups(final: np.ndarray, env: np.ndarray, num_steps: int, mult: int) -> tuple[np.ndarray, np.ndarray]:
    steps = [steps_to_reach(env, f) for f in final]
    capped = np.array([s is None for s in steps])
    return np.array([mult if s is None else min(s / num_steps, mult) for s in steps], float), capped


BASELINE_DRAWS = 200  # envelopes from resampled baseline seeds behind the intervals (`baseline_draws`)


def draw_envelopes(baseline: np.ndarray, decay: float, seed: int, count: int = BASELINE_DRAWS) -> np.ndarray:
    """`count` envelopes [count, steps] of the baseline [learning rates, seeds, steps], each from its
    seeds resampled with replacement (the same seeds for every learning rate). A tuned baseline is
    an estimate from a few seeds; the suite's intervals draw from these so that they hold its error
    as well as the evaluated seeds'. They depend on the baseline alone: made once per task."""
    smoothed = smooth(baseline, decay)
    rng = np.random.default_rng(seed)
    seeds = smoothed.shape[1]
    return np.array([_envelope(smoothed[:, rng.integers(seeds, size=seeds)]) for _ in range(count)])


def baseline_draws(final: np.ndarray, envelopes: np.ndarray, num_steps: int) -> tuple[np.ndarray, np.ndarray]:
    """The speedups and loss ratios [draws, seeds] of the final losses `final` (of `num_steps`-step
    curves) against each of `draw_envelopes`."""
    mult = horizon(num_steps, envelopes.shape[-1])
    speedups = np.array([_speedups(final, env, num_steps, mult)[0] for env in envelopes])
    best = envelopes[:, num_steps - 1, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = np.where(best > 0, final[None] / best, np.nan)
    return speedups, ratios


def score_task(train_loss: np.ndarray, baseline: np.ndarray, decay: float, loss_clip: float) -> TaskScores:
    """Scores of an optimizer's per-step training losses `train_loss` [seeds, N steps] against the
    baseline's `baseline` [learning rates, baseline seeds, horizon_mult * N steps] (see the module
    docstring for each definition)."""
    num_steps = train_loss.shape[-1]
    mult = horizon(num_steps, baseline.shape[-1])
    env = envelope(baseline, decay)
    best = float(env[num_steps - 1])
    initial = float(np.nanmean(np.where(np.isfinite(baseline[..., 0]), baseline[..., 0], np.nan)))
    smoothed = smooth(train_loss, decay)
    final = _clipped_last(smoothed, loss_clip)
    speedup, capped = _speedups(final, env, num_steps, mult)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = final / best if best > 0 else np.full_like(final, np.nan)
        normalized = np.clip((final - best) / (initial - best), 0.0, 1.0) if initial > best else np.zeros_like(final)
    clipped = np.where(np.isfinite(train_loss), np.minimum(train_loss, loss_clip), loss_clip)
    return TaskScores(final, speedup, capped, ratio, normalized, clipped.mean(axis=1), best, initial, mult, env,
                      smoothed)
