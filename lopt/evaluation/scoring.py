"""Evaluating an optimizer on one suite task: train its seeds in one compiled call, score the
training losses against the task's baseline, keep the curves a figure needs."""
import time
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh
from rich.console import Console

from lopt import curves, tasks
from lopt.base import Optimizer
from lopt.evaluation import aggregate, scores
from lopt.evaluation.baselines import EVALUATION_SEEDS
from lopt.evaluation.suite import SuiteTask
from lopt.settings import DataSettings

DEFINITIONS = {  # written into suite.json so a reader knows what each number is
    "envelope": "per step, the lowest seed-mean smoothed training loss over the baseline's learning rates, "
                "then the running minimum (Metz et al. 2022, VeLO, arXiv:2211.09760)",
    "final_loss": "the smoothed (debiased EMA, decay `smoothing`) per-step training loss at the last step, "
                  "per seed; a diverged seed counts at the task's loss clip",
    "speedup_over_adam": "steps the envelope needs to reach the final loss / the optimizer's steps (> 1: faster); "
                         "where the envelope never reaches it (reached=false) it is the lower bound 1",
    "loss_ratio": "final loss / the envelope's last value, the best loss tuned Adam reaches (< 1: better)",
    "normalized_loss": "(final - best Adam) / (initial - best Adam), clipped to [0, 1]",
    "aggregates": "IQM, median and mean over every (task, seed) score, and the fraction of tasks whose seed-mean "
                  "loss ratio is below 1, each with a 95% stratified (seeds within tasks) percentile bootstrap "
                  "interval (Agarwal et al. 2021, rliable)",
}


def _curve(a: np.ndarray) -> list[float | None]:
    return [float(v) if np.isfinite(v) else None for v in a]


def evaluate_task(entry: SuiteTask, eval_every: int, optimizer: Optimizer, baseline: dict[str, Any],
                  s: curves.CurveSettings, smoothing: float, data: DataSettings, mesh: Mesh,
                  console: Console) -> dict[str, Any]:
    """Train `entry` with `optimizer` on `s.num_seeds` seeds of the evaluation stream (never a
    baseline's seeds) and score it against `baseline` (`BaselineStore.load`): the per-task point
    scores, per-seed scores, the 95% interval of the mean speedup over seeds, and the seed-mean
    smoothed training curve beside the tuned-Adam envelope."""
    console.print(f"[bold]{entry.name}[/]: evaluating ({entry.num_steps} steps)", highlight=False)
    task = tasks.build(entry.config)
    dataset = data.load(entry.config, s.seed)
    settings = curves.CurveSettings(s.seed, s.num_seeds, entry.num_steps, eval_every, s.eval_batches,
                                    s.last_eval_batches)
    key = jax.random.fold_in(jax.random.PRNGKey(s.seed), EVALUATION_SEEDS)
    compiled, compile_s = curves.compile_curves(task, entry.name, optimizer, dataset, key, settings, mesh, console)
    start = time.perf_counter()
    with console.status(f"{entry.name}: {s.num_seeds} seeds x {entry.num_steps} steps"):
        values = {k: np.asarray(v, float) for k, v in jax.device_get(compiled(None, dataset, key)).items()}
    train_s = time.perf_counter() - start
    sc = scores.score_task(values["train/loss"], baseline["train_loss"], smoothing, task.loss_clip)
    smoothed = scores.smooth(values["train/loss"], smoothing).mean(axis=0)
    best = baseline["hyperparameters"][baseline["best"]]
    return {
        "num_steps": entry.num_steps, "compile_s": round(compile_s, 2), "train_s": round(train_s, 2),
        "scores": sc.point(),
        "per_seed": {k: getattr(sc, k).tolist() for k in ("final_loss", "speedup", "reached", "loss_ratio",
                                                           "normalized_loss")},
        "speedup_ci": aggregate.estimate([sc.speedup], aggregate.STATISTICS["mean"], s.seed)["ci"],
        "baseline": {"file": baseline["path"], "key": baseline["key"], "best_lr": best["lr"],
                     "at_edge": baseline.get("at_edge")},
        "curves": {"train_loss": _curve(smoothed), "envelope": _curve(scores.envelope(baseline["train_loss"],
                                                                                       smoothing)),
                   **{k: _curve(np.nanmean(v, axis=0)) for k, v in values.items() if k.startswith("eval/")}},
    }


def summarize(results: dict[str, dict[str, Any]], seed: int) -> dict[str, Any]:
    """The suite's aggregates (`lopt.evaluation.aggregate`) over the tasks' per-seed scores."""
    return aggregate.summarize([np.asarray(r["per_seed"]["speedup"]) for r in results.values()],
                               [np.asarray(r["per_seed"]["loss_ratio"]) for r in results.values()], seed)
