"""Scores of an optimizer's training that need no baseline: they read only the optimizer's own
training curves, so nothing hand-designed is trained or loaded to compute them. Population
self-training (Metz, Freeman, Maheswaranathan, Sohl-Dickstein 2021, Training learned optimizers
with randomly initialized learned optimizers, arXiv:2101.07367) ranks its members by default with
`log_relative_loss`, keeping its loop free of hand-designed optimizers.

`log_relative_loss` of a task is log(final / initial): the seed-mean smoothed final training loss
(a diverged seed at the task's loss clip, as `final_loss`) over the seed-mean training loss before
the first step, on the same evaluation seeds. Averaged over tasks it is the log of the geometric
mean of the per-task loss reductions:
- comparable across tasks: dividing by the task's own initial loss removes its loss scale, and the
  log makes a tenfold reduction count the same on every task (-2.30), where a difference of losses,
  or of plain ratios, would let the tasks that barely move hide a tenfold gain on one that is near
  zero;
- unclipped: two members that both train well still differ by how far they went (tuned Adam's
  normalized loss clips both at 0), and one that makes things worse scores above 0, up to
  log(loss clip / initial);
- the ratio of seed means, not the mean of per-seed logs, so one seed that reaches a tiny loss
  does not dominate its task.
"""
from typing import Any

import numpy as np

from lopt.evaluation import scores
from lopt.evaluation.scoring import SeedTraining

LOG_RELATIVE_LOSS = "log_relative_loss"
SCORES = ("final_loss", "mean_loss", LOG_RELATIVE_LOSS)  # the per-task scores that need no baseline
TINY = float(np.finfo(float).tiny)  # a final loss of exactly 0 counts as this (log 0 is -inf)


def log_relative_loss(final_loss: float, initial_loss: float | None) -> float:
    """log(final_loss / initial_loss); NaN when the initial loss is missing, non-finite or not
    positive (the ratio would say nothing), so such a member loses a comparison."""
    if initial_loss is None or not np.isfinite(initial_loss) or initial_loss <= 0 or not np.isfinite(final_loss):
        return float("nan")
    return float(np.log(max(final_loss, TINY) / initial_loss))


def task_score(result: dict[str, Any], name: str) -> float:
    """Score `name` of one task's evaluation: a `TaskEvaluation` or `OwnCurvesEvaluation` result,
    or a task of an evaluation's suite.json. `log_relative_loss` is computed from its seed-mean final
    loss and the first point of its seed-mean training curve (the loss before the first step: the
    smoothing's first value is the raw loss); any other score is read from `scores`."""
    if name == LOG_RELATIVE_LOSS:
        return log_relative_loss(float(result["scores"]["final_loss"]), result["curves"]["train_loss"][0])
    return float(result["scores"][name])


class OwnCurvesEvaluation(SeedTraining):
    """A suite task ready to score any theta with the scores that need no baseline (`SCORES`):
    `SeedTraining`'s compiled training of the evaluation seeds, scored without a baseline (none is
    loaded or swept)."""

    def __call__(self, theta: Any = None) -> dict[str, Any]:
        """Train the seeds with `theta`: the point and per-seed final and mean losses, and the
        seed-mean smoothed training curve (non-finite points None, as in suite.json)."""
        values, train_s = self.train(theta)
        loss = values["train/loss"]
        clip = self.task.loss_clip
        final = scores.final_losses(loss, self.smoothing, clip)
        mean = np.where(np.isfinite(loss), np.minimum(loss, clip), clip).mean(axis=1)
        curve = scores.smooth(loss, self.smoothing).mean(axis=0)
        return {"num_steps": self.entry.num_steps, "compile_s": round(self.compile_s, 2), "train_s": round(train_s, 2),
                "scores": {"final_loss": float(final.mean()), "mean_loss": float(mean.mean())},
                "per_seed": {"final_loss": final.tolist(), "mean_loss": mean.tolist()},
                "curves": {"train_loss": [float(v) if np.isfinite(v) else None for v in curve]}}
