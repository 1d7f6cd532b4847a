"""Evaluating an optimizer on one suite task: train its seeds in one compiled call, score the
training losses against the task's baseline, keep the curves a figure needs."""
import time
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh
from rich.console import Console

from lopt import tasks
from lopt.base import Optimizer
from lopt.data.settings import DataSettings
from lopt.evaluation import aggregate, scores
from lopt.evaluation.baselines import EVALUATION_SEEDS
from lopt.evaluation.suite import SuiteTask
from lopt.training import curves

DEFINITIONS = {  # written into suite.json so a reader knows what each number is
    "baseline_horizon": "the baselines run horizon_mult times the task's num_steps N (VeLO: 10x)",
    "envelope": "per step, the lowest seed-mean smoothed training loss over the baseline's learning rates, made "
                "non-increasing by isotonic regression drawn through its blocks' centres (VeLO, Metz et al. 2022, "
                "arXiv:2211.09760, takes a running minimum instead, which reads noise dips as progress)",
    "final_loss": "the smoothed (debiased EMA, decay `smoothing`) per-step training loss at the last step, "
                  "per seed; a diverged seed counts at the task's loss clip",
    "speedup_over_adam": "Adam's steps to the optimizer's loss / the optimizer's steps: the steps the envelope "
                         "needs to reach the final loss (interpolated between steps) / N, capped at horizon_mult "
                         "(capped=true: the envelope never gets there, the speedup is a lower bound)",
    "loss_ratio": "final loss / the envelope at step N, the best loss tuned Adam reaches in N steps (< 1: better)",
    "normalized_loss": "(final - best Adam at N) / (initial - best Adam at N), clipped to [0, 1]",
    "mean_loss": "the per-step training loss averaged over every step, per seed (the area under the training "
                 "curve, the tutorial's measure); a non-finite or larger loss counts at the task's loss clip",
    "aggregates": "IQM, median and mean over every (task, seed) score, and the fraction of tasks whose seed-mean "
                  "loss ratio is below 1, each with a 95% stratified (seeds within tasks) percentile bootstrap "
                  "interval (Agarwal et al. 2021, rliable) in which every resample also draws one of the task's "
                  "baseline_draws: the baseline's seeds are an estimate too",
    "baseline_draws": "per seed, the speedup and loss ratio against envelopes from the baseline's seeds resampled "
                      "with replacement (200 draws)",
}


def _curve(a: np.ndarray) -> list[float | None]:
    return [float(v) if np.isfinite(v) else None for v in a]


class SeedTraining:
    """One suite task's training of `s.num_seeds` seeds of the evaluation stream (never a baseline's
    seeds), its data on the device, compiled once with theta an argument. `theta` is an example of
    the meta-parameters it will be called with (None for an optimizer without any, e.g. a
    hand-designed one or a learned one exported with its theta inside)."""

    def __init__(self, entry: SuiteTask, eval_every: int, optimizer: Optimizer, s: curves.CurveSettings,
                 smoothing: float, data: DataSettings, mesh: Mesh, console: Console, theta: Any = None):
        self.entry, self.smoothing = entry, smoothing
        self.task = tasks.build(entry.config)
        self.dataset = tasks.load_data(entry.config, data, s.seed)
        self.settings = curves.CurveSettings(s.seed, s.num_seeds, entry.num_steps, eval_every, s.eval_batches,
                                             s.last_eval_batches)
        self.key = jax.random.fold_in(jax.random.PRNGKey(s.seed), EVALUATION_SEEDS)
        self.compiled, self.compile_s = curves.compile_curves(self.task, entry.name, optimizer, self.dataset,
                                                              self.key, self.settings, mesh, console, theta)

    def train(self, theta: Any = None) -> tuple[dict[str, np.ndarray], float]:
        """The seeds' curves with `theta` (`lopt.training.curves`: `train/loss` [seeds, steps], `eval/...`) and
        the seconds they took."""
        start = time.perf_counter()
        values = {k: np.asarray(v, float) for k, v in jax.device_get(self.compiled(theta, self.dataset,
                                                                                    self.key)).items()}
        return values, time.perf_counter() - start


class TaskEvaluation(SeedTraining):
    """`SeedTraining` scored against the task's tuned `baseline` (as `BaselineStore.load` reads it);
    its resampled envelopes (`scores.draw_envelopes`) are made here, once."""

    def __init__(self, entry: SuiteTask, eval_every: int, optimizer: Optimizer, baseline: dict[str, Any],
                 s: curves.CurveSettings, smoothing: float, data: DataSettings, mesh: Mesh, console: Console,
                 theta: Any = None):
        super().__init__(entry, eval_every, optimizer, s, smoothing, data, mesh, console, theta)
        self.baseline = baseline
        self.draw_envelopes = scores.draw_envelopes(baseline["train_loss"], smoothing, s.seed)

    def __call__(self, theta: Any = None) -> dict[str, Any]:
        """Train the seeds with `theta` and score them against the baseline: the point scores, the
        per-seed scores, the 95% interval of the mean speedup over seeds, and the seed-mean smoothed
        training curve beside the tuned-Adam envelope."""
        values, train_s = self.train(theta)
        sc = scores.score_task(values["train/loss"], self.baseline["train_loss"], self.smoothing, self.task.loss_clip)
        draws = scores.baseline_draws(sc.final_loss, self.draw_envelopes, self.entry.num_steps)
        best = self.baseline["hyperparameters"][self.baseline["best"]]
        return {
            "num_steps": self.entry.num_steps, "compile_s": round(self.compile_s, 2), "train_s": round(train_s, 2),
            "scores": sc.point(),
            "per_seed": {**{k: getattr(sc, k).tolist() for k in ("final_loss", "speedup", "capped", "loss_ratio",
                                                                  "normalized_loss", "mean_loss")},
                         "train_loss": [_curve(c) for c in values["train/loss"]]},  # raw: scores can be recomputed
            "baseline_draws": {"speedup": draws[0].tolist(), "loss_ratio": draws[1].tolist()},
            "speedup_ci": aggregate.estimate([sc.speedup], aggregate.STATISTICS["mean"], self.settings.seed,
                                             [draws[0]])["ci"],
            "baseline": {"file": self.baseline["path"], "key": self.baseline["key"], "best_lr": best["lr"],
                         "at_edge": self.baseline.get("at_edge"), "horizon_mult": sc.horizon_mult},
            "curves": {"train_loss": _curve(sc.smoothed.mean(axis=0)), "envelope": _curve(sc.envelope),
                       **{k: _curve(np.nanmean(v, axis=0)) for k, v in values.items() if k.startswith("eval/")}},
        }


def evaluate_task(entry: SuiteTask, eval_every: int, optimizer: Optimizer, baseline: dict[str, Any],
                  s: curves.CurveSettings, smoothing: float, data: DataSettings, mesh: Mesh,
                  console: Console) -> dict[str, Any]:
    """`TaskEvaluation` of `entry` for an optimizer without meta-parameters, run once."""
    console.print(f"[bold]{entry.name}[/]: evaluating ({entry.num_steps} steps)", highlight=False)
    evaluation = TaskEvaluation(entry, eval_every, optimizer, baseline, s, smoothing, data, mesh, console)
    with console.status(f"{entry.name}: {s.num_seeds} seeds x {entry.num_steps} steps"):
        return evaluation()


def summarize(results: dict[str, dict[str, Any]], seed: int) -> dict[str, Any]:
    """The suite's aggregates (`lopt.evaluation.aggregate`) over the tasks' per-seed scores, their
    intervals resampling each task's baseline seeds too (its `baseline_draws`)."""
    return aggregate.summarize([np.asarray(r["per_seed"]["speedup"]) for r in results.values()],
                               [np.asarray(r["per_seed"]["loss_ratio"]) for r in results.values()], seed,
                               ([np.asarray(r["baseline_draws"]["speedup"]) for r in results.values()],
                                [np.asarray(r["baseline_draws"]["loss_ratio"]) for r in results.values()]))


AGGREGATE_KEYS = (*(f"{stat}/{metric}" for stat in aggregate.STATISTICS for metric in ("speedup_over_adam",
                                                                                       "loss_ratio")),
                  "win_fraction")  # the aggregates as flat metric names (under a prefix, e.g. `eval/`)


def aggregate_record(prefix: str, agg: dict[str, Any]) -> dict[str, float]:
    """The aggregates of `summarize` as flat metrics: `<prefix>/<stat>/<score>` for every statistic
    of the speedup and the loss ratio, and `<prefix>/win_fraction`."""
    def value(name: str) -> float:
        if name == "win_fraction":
            return agg["win_fraction"]["value"]
        stat, metric = name.split("/")
        return agg[metric][stat]["value"]

    return {f"{prefix}/{name}": value(name) for name in AGGREGATE_KEYS}
