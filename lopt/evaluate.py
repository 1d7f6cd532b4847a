"""Training curves of any optimizer, hand-designed or learned, on any task, many seeds at once.

All seeds train in one compiled call: `vmap` over seeds, `lax.scan` over evaluation intervals, and
inside each interval a `lax.scan` over training steps. A learned optimizer is evaluated through its
optax export (`lopt.learned.export.as_optax`), the code path a user's own training loop takes.
"""
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh
from omegaconf import DictConfig
from rich.console import Console

from lopt import comparison, data as data_lib, distributed, learned, tasks
from lopt.config import check, from_config
from lopt.learned.export import as_optax
from lopt.optimizers import hand_designed
from lopt.optimizers.base import Optimizer
from lopt.results import pyplot, save_figure, write_json
from lopt.settings import DataSettings, TrackingSettings, data_and_tracking, write_run_config
from lopt.tasks import Task

GROUPS = ("task", "optimizer", "lopt", "data", "tracking", "compare_to", "distributed")


@dataclass(frozen=True)
class Settings:
    """Top-level evaluation settings (the tutorial's: 200 steps, eval every 5 on 10 batches, 30 at the end)."""

    seed: int = 0
    num_seeds: int = 5
    num_steps: int = 200
    eval_every: int = 5
    eval_batches: int = 10
    last_eval_batches: int = 30

    @property
    def eval_steps(self) -> list[int]:
        """The steps at which the `eval/...` curves are recorded."""
        return list(range(0, self.num_steps + 1, self.eval_every))

    def __post_init__(self):
        for name in ("num_seeds", "num_steps", "eval_every", "eval_batches", "last_eval_batches"):
            check(getattr(self, name) > 0, name, getattr(self, name), "a positive integer")
        check(self.num_steps % self.eval_every == 0, "num_steps", self.num_steps,
              f"a multiple of eval_every={self.eval_every}")


def _evaluate(task: Task, params: Any, data: data_lib.Dataset, key: jax.Array, num_batches: int) -> dict:
    """Mean metrics over `num_batches` random train and test batches."""
    def one(k):
        k_train, k_test = jax.random.split(k)
        train = task.metrics(params, task.sample_batch(data, k_train))
        test = task.metrics(params, task.sample_batch(data, k_test, "test"))
        return {**{f"eval/train/{k}": v for k, v in train.items()}, **{f"eval/test/{k}": v for k, v in test.items()}}

    return jax.tree_util.tree_map(jnp.mean, jax.vmap(one)(jax.random.split(key, num_batches)))


def seed_curves(task: Task, optimizer: Optimizer, theta: Any, data: data_lib.Dataset, key: jax.Array,
                s: Settings) -> dict[str, jax.Array]:
    """Curves of one seed: `train/loss` at every step (before it), `eval/...` at steps
    0, eval_every, ..., num_steps; the last evaluation averages `last_eval_batches` batches."""
    intervals = s.num_steps // s.eval_every
    k_init, k_train, k_eval = jax.random.split(key, 3)
    params = task.init(k_init)

    def train_step(carry, step_key):
        params, opt_state = carry
        loss, grads = jax.value_and_grad(task.loss)(params, task.sample_batch(data, step_key))
        return optimizer.update(theta, opt_state, params, grads, loss), loss

    def interval(carry, i):
        carry, losses = jax.lax.scan(train_step, carry, jax.random.split(jax.random.fold_in(k_train, i), s.eval_every))
        return carry, (losses, _evaluate(task, carry[0], data, jax.random.fold_in(k_eval, i + 1), s.eval_batches))

    start = _evaluate(task, params, data, jax.random.fold_in(k_eval, 0), s.eval_batches)
    (params, _), (losses, evals) = jax.lax.scan(interval, (params, optimizer.init(theta, params, s.num_steps)),
                                                jnp.arange(intervals))
    last = _evaluate(task, params, data, jax.random.fold_in(k_eval, intervals + 1), s.last_eval_batches)
    evals = jax.tree_util.tree_map(lambda a, e, z: jnp.concatenate([a[None], e[:-1], z[None]]),
                                   start, evals, last)
    return {"train/loss": losses.reshape(-1), **evals}


def seed_keys(key: jax.Array, s: Settings) -> jax.Array:
    return jax.random.split(key, s.num_seeds)


def training_curves(task: Task, optimizer: Optimizer, theta: Any, data: data_lib.Dataset, key: jax.Array,
                    s: Settings, mesh: Mesh | None = None) -> dict[str, jax.Array]:
    """`seed_curves` of `num_seeds` seeds, trained at once: leaves [num_seeds, ...]; the seeds are
    split over the devices of `mesh` (lopt.distributed)."""
    return distributed.map_sharded(lambda k: seed_curves(task, optimizer, theta, data, k, s), seed_keys(key, s), mesh)


class Components(NamedTuple):
    settings: Settings
    data: DataSettings
    tracking: TrackingSettings
    task_config: tasks.TaskConfig
    task: Task
    optimizer: Any  # a hand-designed Optimizer, or a learned optimizer architecture
    learned: bool
    theta_checkpoint: Path | None
    baseline: comparison.Baseline | None


def build(cfg: Mapping[str, Any]) -> Components:
    """Validate the config and build the components; loads no data, compiles nothing."""
    settings = from_config(Settings, {k: v for k, v in cfg.items() if k not in GROUPS}, "")
    distributed.parse(cfg.get("distributed"))  # checked before any run directory is written
    task_config = tasks.parse(cfg["task"])
    is_learned = cfg.get("lopt") is not None
    if is_learned:
        optimizer, ckpt = learned.build(cfg["lopt"]), learned.checkpoint_path(cfg["lopt"])
    else:
        optimizer, ckpt = hand_designed.from_config(cfg["optimizer"]).build(settings.num_steps), None
    baseline = None
    if cfg.get("compare_to") is not None:
        baseline = comparison.load_baseline(cfg["compare_to"], task_config.name, settings.eval_steps)
    return Components(settings, *data_and_tracking(cfg), task_config, tasks.build(task_config), optimizer,
                      is_learned, ckpt, baseline)


def _training_optimizer(c: Components) -> Optimizer:
    """What trains the task: a learned optimizer goes through its optax export (theta inside)."""
    if not c.learned:
        return c.optimizer
    if c.theta_checkpoint is None:
        theta = c.optimizer.init_theta(jax.random.PRNGKey(c.settings.seed))
    else:
        theta = learned.load_theta(c.optimizer, c.theta_checkpoint)
    return hand_designed.OptaxOptimizer(as_optax(c.optimizer, theta, c.settings.num_steps))


def _summarize(curves: dict[str, np.ndarray], s: Settings) -> dict[str, Any]:
    stats = {name: {"mean": v.mean(0).tolist(), "std": v.std(0).tolist(), "per_seed": v.tolist()}
             for name, v in curves.items()}
    final = {f"final/{k}": float(v[:, -1].mean()) for k, v in curves.items() if k.startswith("eval/")}
    train = curves["eval/train/loss"]
    return {"eval/xs": s.eval_steps, "train/xs": list(range(s.num_steps)), "curves": stats,
            "summary": {**final, "mean/eval/train/loss": float(train.mean()),
                        "diverged_seeds": int((~np.isfinite(train)).any(1).sum())}}


def _band(ax: Any, xs: np.ndarray, per_seed: np.ndarray, color: str, label: str) -> None:
    """Mean over seeds with a +-1 std band."""
    mean, std = np.nanmean(per_seed, axis=0), np.nanstd(per_seed, axis=0)
    ax.plot(xs, mean, color=color, label=label)
    ax.fill_between(xs, mean - std, mean + std, color=color, alpha=0.2)


def _plot(result: dict[str, Any], label: str, baseline: comparison.Baseline | None, title: str, path: Path) -> None:
    """One panel per eval curve; the baseline's band alongside when comparing."""
    plt = pyplot()
    metrics = [m for m in ("eval/train/loss", "eval/test/loss", "eval/test/accuracy") if m in result["curves"]]
    fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 4))
    xs = np.asarray(result["eval/xs"])
    for ax, name in zip(np.atleast_1d(axes), metrics):
        _band(ax, xs, np.asarray(result["curves"][name]["per_seed"], float), "tab:blue", label)
        if baseline is not None and name in baseline.curves:
            _band(ax, xs, baseline.curves[name], "k", f"tuned {baseline.optimizer}")
        ax.set_xlabel("training iteration")
        ax.set_ylabel(name)
        ax.legend(fontsize=7)
    fig.suptitle(title)
    save_figure(fig, path)


def run(cfg: DictConfig, run_dir: Path, console: Console) -> dict[str, Any]:
    """Train `num_seeds` seeds and write curves.json, curves.png and W&B logs to `run_dir`."""
    c = build(cfg)
    s = c.settings
    mesh = distributed.setup(cfg.get("distributed"))  # multi-host start-up precedes any device use
    dataset = c.data.load(c.task_config, s.seed)
    optimizer = _training_optimizer(c)
    write_run_config(run_dir, cfg)
    name = cfg["lopt"]["name"] if c.learned else cfg["optimizer"]["name"]
    with console.status(f"training {s.num_seeds} seeds x {s.num_steps} steps of {c.task_config.name} with {name}"):
        curves = jax.jit(training_curves, static_argnums=(0, 1, 5, 6))(
            c.task, optimizer, None, dataset, jax.random.PRNGKey(s.seed), s, mesh)
        curves = {k: np.asarray(v) for k, v in jax.device_get(curves).items()}
    result = {"task": c.task_config.name, "optimizer": name, "learned": c.learned,
              "checkpoint": None if c.theta_checkpoint is None else str(c.theta_checkpoint),
              **_summarize(curves, s)}
    if c.baseline is not None:
        result["comparison"] = comparison.compare(curves, c.baseline)
        result["summary"].update(comparison.flat(result["comparison"]))
        console.print(comparison.table(result["comparison"], name))
    write_json(run_dir / "curves.json", result)
    _plot(result, name, c.baseline, f"{c.task_config.name}: {name} ({s.num_seeds} seeds)", run_dir / "curves.png")
    tracker = c.tracking.open(run_dir, cfg, "evaluate", console)
    for i, x in enumerate(result["eval/xs"]):
        tracker.log({"step": x, **{k: v["mean"][i] for k, v in result["curves"].items() if k.startswith("eval/")}},
                    step=x)
    tracker.summary(result["summary"])
    tracker.finish(0)
    return {"task": c.task_config.name, "optimizer": name, "num_seeds": s.num_seeds, "num_steps": s.num_steps,
            **result["summary"], "run_dir": str(run_dir),
            "wrote": "config.yaml, curves.json, curves.png"}
