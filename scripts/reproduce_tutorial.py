"""Reproduce the learned_optimization tutorial (Metz 2022, "Training a learned optimizer with
learned_optimization", ODSC blog post / Colab): does a meta-trained learned optimizer beat the best tuned Adam?

Drives the `lopt` commands a user would type, each writing its own run directory under --out:
  1. lopt baseline-sweep optimizer=adam  (the tutorial's 9 learning rates x 5 seeds, 200 steps)
  2. lopt meta-train +experiment=tutorial_conv_cifar  (the tutorial's preset: small_fc_lopt, PES, 32 tasks,
     truncations of 20, 1000 outer iterations; --quick: +experiment=quick_offline), with only the
     size flags given here (--task, --num-tasks, --outer-iterations, --trunc-length, --num-steps) on top
  3. lopt evaluate theta=<2> (its architecture from the run) compare_to=<1>/best.json  (5 seeds)
then draws the tutorial's figures -- learning-rate curves and learning rate vs last/mean loss
(the sweep's sweep.png), the meta-training curve, learned vs Adam curves -- writes tutorial.json
and prints a one-line verdict with the numbers.

    python scripts/reproduce_tutorial.py                # conv_cifar on CIFAR-10 (TFDS data needed)
    python scripts/reproduce_tutorial.py --quick        # offline: the digits MLP task, 8 tasks
    python scripts/reproduce_tutorial.py --quick tracking.mode=disabled   # extra overrides go to every command
"""
import argparse
import json
from datetime import datetime
from pathlib import Path

import numpy as np

from lopt import figures
from lopt.io.results import pyplot, read_jsonl, save_figure, write_json
from lopt_cli.reproduction import compose_config, run_lopt

SCRIPT = "reproduce_tutorial"
PRESETS = {False: "tutorial_conv_cifar", True: "quick_offline"}  # meta-train's +experiment= (conf/experiment/)


def _lopt(command: str, run_dir: Path, overrides: list[str]) -> float:
    """Run one lopt command into `run_dir`; its wall time. Stops the script if it fails."""
    return run_lopt(SCRIPT, command, run_dir, overrides)[0]


def _mean_curve(per_seed: list) -> np.ndarray:
    return np.nanmean(np.asarray(per_seed, float), axis=0)


def _plot_meta_training(meta_dir: Path, path: Path, task: str, run: Path, name: str) -> None:
    """The outer loss at every logged outer iteration (a marker each; non-finite ones counted)."""
    records = read_jsonl(meta_dir / "metrics.jsonl")
    its = np.asarray([r["outer_iteration"] for r in records], float)
    loss = np.asarray([np.nan if r.get("outer/loss") is None else r["outer/loss"] for r in records], float)
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(9, 5))
    bad = int((~np.isfinite(loss)).sum())
    ok = np.isfinite(loss)
    ax.plot(its[ok], loss[ok], "o-", markersize=3, linewidth=1,
            label=f"outer loss at each of the {len(records)} logged iterations"
                  + (f" ({bad} non-finite, not drawn)" if bad else ""))
    figures.metric_axis(ax, "outer/loss", loss, x_label=figures.OUTER_STEP_LABEL)
    ax.set_ylabel("meta-training loss\n(mean inner training loss over the truncation, PES)")
    ax.legend(loc="best", fontsize=8)
    fig.suptitle(figures.title(task, run, f"meta-training of {name} ({meta_dir.name}/metrics.jsonl)"))
    save_figure(fig, path)


def _plot_learned_vs_adam(sweep: dict, curves: dict, path: Path, run: Path, name: str) -> None:
    """Every learning rate's mean curve, the best Adam bold, and the learned optimizer's in black with
    its ±1 std band over seeds (the tutorial's last plot)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(10, 5.5))
    xs = sweep["eval/xs"]
    best_lr = sweep["configurations"][0]["hyperparameters"]["lr"]  # ranked best first
    configs = sorted(sweep["configurations"], key=lambda c: c["hyperparameters"]["lr"])
    colors = plt.get_cmap("viridis")(np.linspace(0.0, 0.9, len(configs)))
    shown = []
    for color, c in zip(colors, configs):
        mean, lr = _mean_curve(c["curves"]["eval/train/loss"]), c["hyperparameters"]["lr"]
        shown.append(mean)
        if lr == best_lr:
            ax.plot(xs, mean, color="crimson", linewidth=2.5, label=f"adam lr={lr:g} (best tuned Adam)")
        else:
            ax.plot(xs, mean, color=color, linewidth=1.1, label=f"adam lr={lr:g}")
    learned = curves["curves"]["eval/train/loss"]
    mean, std = np.asarray(learned["mean"], float), np.asarray(learned["std"], float)
    shown.append(mean)
    ax.fill_between(curves["eval/xs"], mean - std, mean + std, color="k", alpha=0.15, linewidth=0,
                    label=f"{name} ±1 std over {len(learned['per_seed'])} seeds")
    ax.plot(curves["eval/xs"], mean, color="k", linewidth=2.5, label=f"{name} (meta-trained)")
    figures.metric_axis(ax, "eval/train/loss", np.concatenate(shown))
    figures.legend_outside(ax, title=f"mean over {sweep['num_seeds']} seeds")
    fig.suptitle(figures.title(sweep["task"], run, f"meta-trained {name} vs Adam at every learning rate"))
    save_figure(fig, path)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="offline: the quick_offline preset (digits_mlp, 8 tasks)")
    p.add_argument("--preset", default=None,
                   help="meta-train's conf/experiment/ preset (default: tutorial_conv_cifar; with --quick: "
                        "quick_offline)")
    p.add_argument("--theta", choices=("final_theta", "best_theta"), default="final_theta",
                   help="which trained theta to evaluate: the final one, or the best by meta-train's eval.select")
    p.add_argument("--task", default=None,
                   help="task option (default: the preset's, conv_cifar; digits_mlp with --quick)")
    p.add_argument("--num-tasks", type=int, default=None,
                   help="inner problems per outer iteration (default: the preset's, 32; 8 with --quick)")
    p.add_argument("--outer-iterations", type=int, default=None,
                   help="meta-training iterations (default: the preset's, the tutorial's 1000)")
    p.add_argument("--trunc-length", type=int, default=None, help="truncation length (default: the preset's, 20)")
    p.add_argument("--num-steps", type=int, default=None,
                   help="inner training length everywhere (default: the preset's inner problem length, 200)")
    p.add_argument("--num-seeds", type=int, default=5)
    p.add_argument("--eval-every", type=int, default=5, help="steps between evaluations of the curves")
    p.add_argument("--out", type=Path, default=None, help="directory for the three runs and the figures")
    p.add_argument("overrides", nargs="*", help="extra key=value overrides passed to every command")
    a = p.parse_args(argv)
    sizes = {"task": a.task, "num_tasks": a.num_tasks, "outer_iterations": a.outer_iterations,
             "estimator.trunc_length": a.trunc_length, "schedule.length": a.num_steps}
    preset = a.preset or PRESETS[a.quick]
    meta = [f"+experiment={preset}", *(f"{k}={v}" for k, v in sizes.items() if v is not None), *a.overrides]
    cfg = compose_config(SCRIPT, "meta-train", meta)  # what meta-train runs: the others take its task, sizes, length
    task, num_tasks, outer_iterations = cfg.task.name, cfg.num_tasks, cfg.outer_iterations
    trunc_length, num_steps = cfg.estimator.trunc_length, cfg.schedule.length
    out = a.out or Path("outputs/tutorial") / datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    out.mkdir(parents=True, exist_ok=True)
    training = [f"num_steps={num_steps}", f"num_seeds={a.num_seeds}", f"eval_every={a.eval_every}"]

    wall = {
        "baseline-sweep": _lopt("baseline-sweep", out / "sweep", [f"task={task}", "optimizer=adam", *training,
                                                                  *a.overrides]),
        "meta-train": _lopt("meta-train", out / "meta", meta),
    }
    wall["evaluate"] = _lopt("evaluate", out / "evaluate", [
        f"task={task}", f"theta={out / 'meta' / a.theta}",
        f"compare_to={out / 'sweep' / 'best.json'}", *training, *a.overrides])

    sweep = json.loads((out / "sweep" / "sweep.json").read_text())
    curves = json.loads((out / "evaluate" / "curves.json").read_text())
    _plot_meta_training(out / "meta", out / "meta_training.png", task, out, cfg.lopt.name)
    _plot_learned_vs_adam(sweep, curves, out / "learned_vs_adam.png", out, cfg.lopt.name)
    cmp = curves["comparison"]
    learned, adam = cmp["evaluated"], cmp["baseline"]
    wins = learned["mean_loss"] < adam["mean_loss"]
    result = {"task": task, "lopt": cfg.lopt.name, "num_tasks": num_tasks, "outer_iterations": outer_iterations,
              "preset": preset, "trunc_length": trunc_length, "num_steps": num_steps, "num_seeds": a.num_seeds,
              "best_adam": cmp["baseline_label"], "learned": learned, "adam": adam, "learned_wins": wins,
              "wall_s": wall, "figures": ["sweep/sweep.png", "meta_training.png", "learned_vs_adam.png",
                                          "evaluate/curves.png"]}
    write_json(out / "tutorial.json", result)
    verdict = "BEATS" if wins else "does NOT beat"
    print(f"\nverdict: on {task}, the meta-trained {cfg.lopt.name} ({outer_iterations} outer iterations x {num_tasks} "
          f"tasks) {verdict} the best tuned Adam ({cmp['baseline_label']}): mean training loss over "
          f"{num_steps} steps {learned['mean_loss']:.4f} vs {adam['mean_loss']:.4f}, final "
          f"{learned['final_loss']:.4f} vs {adam['final_loss']:.4f} ({a.num_seeds} seeds). Results in {out}.")


if __name__ == "__main__":
    main()
