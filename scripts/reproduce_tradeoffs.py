"""Reproduce Metz, Freeman, Harrison, Maheswaranathan and Sohl-Dickstein (2022), "Practical tradeoffs
between memory, compute, and performance in learned optimizers" (arXiv:2203.11860): Table 1 and
Fig. 1b/d/e, Fig. 3 and Fig. 6, at CPU scale, with one verdict per claim.

Works on the two tasks of --suite: tradeoffs_offline (default: an MLP 128-128 on the 8x8 digits and a
1-D convnet on mnist1d, offline stand-ins for the paper's Fashion-MNIST MLP and CIFAR-10 ConvNet) or
tradeoffs (those two, 2k steps, once their TFDS data is prepared). Drives the lopt commands a user
would type, each writing its own run directory under --out:
  1. hand-designed optimizers, learning-rate tuned per task, then trained on evaluation seeds; Adam
     and NAdamW also at 2x and 3x each task's steps (tuned again at that length):
       lopt baseline-sweep --multirun suite=<suite> optimizer=sgd,sgdm,adam,nadamw
       lopt evaluate --multirun suite=<suite> optimizer=sgd,sgdm,adam,nadamw tuned=grid
  2. per task, every learned architecture meta-trained on it with the paper's recipe
     (+experiment=tradeoffs_fmnist_mlp: PES, truncations of 20, the mean training loss, Adam with
     per-value clipping at 3), theta evaluated on both tasks during meta-training:
       lopt meta-train +experiment=tradeoffs_fmnist_mlp suite=<suite> suite_tasks=[<task>] lopt=<arch>
           eval.suite=<suite> eval.every=<n>
  3. Fig. 3: small_fc_lopt's hidden size swept on the first task (lopt.hidden_size=<h>);
  4. every shipped pretrained optimizer (--pretrained; meta-trained on neither task), untuned:
       lopt evaluate suite=<suite> theta=pretrained:<name>
  5. in this process (lopt.training.step_cost): one training step of every optimizer on each task, timed in
     interleaved rounds, and its memory (the compiled step's footprint and the optimizer's state).
The meta-loss everywhere is the paper's meta-objective, the mean training loss over the task's steps
(clipped), on the evaluation seeds (`mean_loss`): a learned optimizer's at its last in-run
evaluation, a pretrained one's from its evaluation, a hand-designed optimizer's at its tuned
learning rate. The pretrained optimizers are points of Fig. 1 and of Fig. 6a/b (trained on neither
task); no verdict is about them, the script prints their loss against the best tuned hand-designed.

Writes tradeoffs.json (every number behind the figures and verdicts), fig1_tradeoffs.png,
fig3_hidden_size.png and fig6_meta_generalization.png, and prints Table 1 and the verdicts:
small_fc_lopt lies on the Pareto front (Fig. 1b/d/e); a learned optimizer's step overhead is larger
on the MLP than on the convnet (Table 1, Fig. 1b/d); even the narrowest small_fc_lopt beats the best
tuned hand-designed optimizer (Fig. 3a); meta-generalization degrades late in meta-training, the
C-shaped curves (Fig. 6c/d).

    python scripts/reproduce_tradeoffs.py --quick        # the 2-core CPU, offline
    python scripts/reproduce_tradeoffs.py                # every architecture, 10k outer iterations, 32 tasks
    python scripts/reproduce_tradeoffs.py --suite tradeoffs data.dir=<prepared TFDS dir>

Trailing key=value overrides go to every meta-train; those of data.*, tracking.* and distributed.*
go to every command.
"""
import argparse
import json
import textwrap
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import jax
import numpy as np
from omegaconf import OmegaConf

from lopt import figures, learned, pretrained, tasks
from lopt.commands.base import Shared
from lopt.config import config_groups
from lopt.evaluation.suite import Suite
from lopt.evaluation.suite import parse as parse_suite
from lopt.io.results import pyplot, read_jsonl, save_figure
from lopt.learned.export import as_optax, load_trained
from lopt.optimizers import hand_designed
from lopt.training import step_cost
from lopt_cli.reproduction import Verdict, compose_config, finish, forwarded, run_lopt

SCRIPT = "reproduce_tradeoffs"
PAPER = ("Metz, Freeman, Harrison, Maheswaranathan, Sohl-Dickstein (2022), Practical tradeoffs between memory, "
         "compute, and performance in learned optimizers (arXiv:2203.11860)")
PRESET = "tradeoffs_fmnist_mlp"  # the paper's meta-training recipe; the script's suite names the tasks
HAND = ("sgd", "sgdm", "adam", "nadamw")
LONGER = ("adam", "nadamw")  # also trained for 2x and 3x the steps (Fig. 1b/d)
MULTIPLES = (2, 3)
PAPER_LOPTS = ("small_fc_lopt", "fc_lopt", "nn_adam", "rnn_mlp_lopt")  # the architectures of the paper's Fig. 1
FOCUS = "small_fc_lopt"  # the paper's architecture, whose verdicts these are
DEFAULT_HIDDEN = 4  # small_fc_lopt's hidden size: its Fig. 1 run is Fig. 3's point at this width


@dataclass(frozen=True)
class Scale:
    """The sizes of one mode (--quick or full)."""

    lopts: tuple[str, ...]  # the learned architectures of Fig. 1 and 6
    outer_iterations: int
    num_tasks: int
    eval_every: int  # outer iterations between the in-run evaluations (Fig. 6's trajectories)
    hidden_sizes: tuple[int, ...]  # Fig. 3: small_fc_lopt's other widths
    step_mult: float | None  # the initial step scale of every architecture that has one (None: its default)
    seeds: int  # meta-training seeds per configuration (the lowest final outer loss is kept)
    sweep_seeds: int  # seeds per learning rate of the hand-designed sweeps
    cost_steps: int  # training steps per timed call
    cost_rounds: int  # timing rounds (each optimizer keeps its best)


QUICK = Scale(PAPER_LOPTS, outer_iterations=200, num_tasks=4, eval_every=25, hidden_sizes=(2, 8), step_mult=0.01,
              seeds=1, sweep_seeds=3, cost_steps=200, cost_rounds=7)
FULL = Scale(tuple(sorted(learned.REGISTRY.names())), outer_iterations=10000, num_tasks=32, eval_every=500,
             hidden_sizes=(2, 8, 16, 32, 64, 128, 256), step_mult=None, seeds=3, sweep_seeds=5, cost_steps=200,
             cost_rounds=10)


def suite_of(p: argparse.ArgumentParser, name: str, overrides: list[str]) -> Suite:
    """The suite the script works on: a shipped suite of two tasks (the paper's pair), else the
    parser's usage error."""
    valid = config_groups()["suite"]
    if name not in valid:
        p.error(f"--suite {name!r} is not a shipped suite; valid choices: {', '.join(valid)} (the paper's pair: "
                f"tradeoffs_offline or tradeoffs).")
    suite = parse_suite(compose_config(SCRIPT, "evaluate", [f"suite={name}", *forwarded(overrides)]).suite)
    if len(suite.tasks) != 2:
        p.error(f"--suite {name} has {len(suite.tasks)} tasks; the paper's figures compare two (an MLP and a "
                f"convnet): tradeoffs_offline or tradeoffs.")
    return suite


def label(arch: str, hidden: int | None = None) -> str:
    return arch if hidden is None else f"{arch} h={hidden}"


def meta_overrides(scale: Scale, suite: Suite, task: str, arch: str, out: Path, overrides: list[str],
                   hidden: int | None = None) -> list[str]:
    """The meta-train command line of `arch` (small_fc_lopt at width `hidden`) on `task`."""
    args = [f"+experiment={PRESET}", f"suite={suite.name}", f"suite_tasks=[{task}]", f"lopt={arch}",
            f"schedule.length={suite.task(task).num_steps}", f"num_tasks={scale.num_tasks}",
            f"outer_iterations={scale.outer_iterations}", f"log_every={max(1, scale.eval_every // 2)}",
            f"eval.every={scale.eval_every}", f"eval.suite={suite.name}", f"eval.baselines.dir={out / 'baselines'}",
            "eval.baselines.run_missing=true", *([] if hidden is None else [f"lopt.hidden_size={hidden}"])]
    if scale.step_mult is not None and "step_mult" in compose_config(SCRIPT, "meta-train", args).lopt:
        args.append(f"lopt.step_mult={scale.step_mult}")
    return [*args, *overrides]


def evaluated(run_dir: Path) -> bool:
    """A meta-training that stopped early (non-finite) still counts if it logged an evaluation."""
    return any("time/eval_s" in r for r in read_jsonl(run_dir / "metrics.jsonl"))


def trajectory(run_dir: Path, suite: Suite) -> dict[str, list[float]]:
    """The in-run evaluations: outer iteration and each task's mean training loss."""
    evals = [r for r in read_jsonl(run_dir / "metrics.jsonl") if "time/eval_s" in r]
    return {"iteration": [r["outer_iteration"] for r in evals],
            **{t.name: [r[f"eval/{t.name}/mean_loss"] for r in evals] for t in suite.tasks}}


def final_outer_loss(run_dir: Path, tail: float = 0.25) -> float:
    """A meta-training's own measure of how well it ended: its outer loss averaged over the last
    `tail` of the logged iterations (inf if none is finite). Selecting a seed by it uses no
    evaluation seed."""
    losses = [r["outer/loss"] for r in read_jsonl(run_dir / "metrics.jsonl") if r.get("outer/loss") is not None]
    kept = np.asarray(losses[-max(1, int(len(losses) * tail)):], float)
    kept = kept[np.isfinite(kept)]
    return float(kept.mean()) if kept.size else float("inf")


def meta_train(scale: Scale, suite: Suite, out: Path, overrides: list[str]) -> dict[str, Any]:
    """Fig. 1's learned optimizers on each task and Fig. 3's widths on the first, each at
    `scale.seeds` seeds: per configuration, every seed's run (its in-run trajectory on both tasks,
    command, wall time, final outer loss) and the seed selected by the lowest final outer loss
    (Practical tradeoffs, App. D.2, shows the best of several seeds), whose trajectory is the
    configuration's."""
    first = suite.tasks[0].name
    jobs: list[tuple[str, str, int | None]] = [(t.name, arch, None) for t in suite.tasks for arch in scale.lopts]
    jobs += [(first, FOCUS, h) for h in scale.hidden_sizes]
    runs: dict[str, dict[str, Any]] = {t.name: {} for t in suite.tasks}
    for task, arch, hidden in jobs:
        name = label(arch, hidden)
        args = meta_overrides(scale, suite, task, arch, out, overrides, hidden)
        base = int(compose_config(SCRIPT, "meta-train", args).seed)
        seeds: dict[str, dict[str, Any]] = {}
        for seed in range(base, base + scale.seeds):
            run_dir = out / "meta" / task / name.replace(" ", "_").replace("=", "") / f"seed{seed}"
            wall, error = run_lopt(SCRIPT, "meta-train", run_dir, [*args, f"seed={seed}"], tolerate=evaluated)
            seeds[str(seed)] = {"run_dir": str(run_dir), "wall_s": wall, "stopped": error,
                                "final_outer_loss": final_outer_loss(run_dir), "trajectory": trajectory(run_dir, suite)}
        selected = min(seeds, key=lambda k: seeds[k]["final_outer_loss"])
        runs[task][name] = {"arch": arch, "hidden_size": hidden, "overrides": args, "seeds": seeds,
                            "selected_seed": int(selected), "trajectory": seeds[selected]["trajectory"]}
    return runs


def pretrained_runs(suite: Suite, out: Path, overrides: list[str], names: Sequence[str]) -> dict[str, Any]:
    """Each shipped pretrained optimizer in `names` evaluated untuned on the suite: its label
    (pretrained:<name>) -> task -> mean loss, on the hand-designed optimizers' evaluation seeds."""
    results = {}
    for name in names:
        label_ = f"{pretrained.PREFIX}{name}"
        run_dir = out / "pretrained" / name
        args = [f"suite={suite.name}", f"theta={label_}", f"baselines.dir={out / 'baselines'}",
                "baselines.run_missing=true", *forwarded(overrides)]
        wall = run_lopt(SCRIPT, "evaluate", run_dir, args)[0]
        scores = json.loads((run_dir / "suite.json").read_text())["tasks"]
        results[label_] = {"run_dir": str(run_dir), "wall_s": wall,
                           **{t: {"mean_loss": r["scores"]["mean_loss"]} for t, r in scores.items()}}
    return results


def job_dirs(sweep_dir: Path) -> list[Path]:
    """The job directories of a `--multirun` sweep, in job order."""
    return sorted((d for d in sweep_dir.iterdir() if d.name.isdigit()), key=lambda d: int(d.name))


def hand_designed_runs(scale: Scale, suite: Suite, out: Path, overrides: list[str]) -> dict[str, Any]:
    """Each hand-designed optimizer tuned per task (learning-rate grid) and evaluated at its tuned
    rate on the evaluation seeds; Adam and NAdamW also at 2x and 3x the steps. Returns name (adam,
    adam_2x, ...) -> task -> mean loss and tuned learning rate."""
    shared = forwarded(overrides)
    results: dict[str, Any] = {}
    for multiple in (1, *MULTIPLES):
        names = HAND if multiple == 1 else LONGER
        lengths = [] if multiple == 1 else [f"suite.tasks.{t.name}.num_steps={multiple * t.num_steps}"
                                            for t in suite.tasks]
        common = [f"suite={suite.name}", f"optimizer={','.join(names)}", f"baselines.dir={out / 'baselines'}",
                  *lengths, *shared]
        sweep_dir, eval_dir = out / "hand" / f"sweep_x{multiple}", out / "hand" / f"evaluate_x{multiple}"
        sweep = [*common, f"num_seeds={scale.sweep_seeds}"]
        evaluate = [*common, "tuned=grid", "baselines.run_missing=true"]
        wall = {"sweep_s": run_lopt(SCRIPT, "baseline-sweep", sweep_dir, sweep, multirun=True)[0],
                "evaluate_s": run_lopt(SCRIPT, "evaluate", eval_dir, evaluate, multirun=True)[0]}
        for sweep_job, eval_job in zip(job_dirs(sweep_dir), job_dirs(eval_dir), strict=True):
            name = str(OmegaConf.load(eval_job / "config.yaml").optimizer.name)
            tuned = {t["task"]: t["best_lr"] for t in json.loads((sweep_job / "baselines.json").read_text())["tasks"]}
            scores = json.loads((eval_job / "suite.json").read_text())["tasks"]
            results[name if multiple == 1 else f"{name}_{multiple}x"] = {
                "multiple": multiple, "optimizer": name, "run_dir": str(eval_job), "multirun_wall": wall,
                **{t: {"mean_loss": r["scores"]["mean_loss"], "lr": tuned[t]} for t, r in scores.items()}}
    return results


def costs(scale: Scale, suite: Suite, runs: dict[str, Any], overrides: list[str],
          shipped: Sequence[str] = ()) -> dict[str, dict[str, Any]]:
    """Per task, every optimizer's `StepCost` (hand-designed, each learned configuration and each
    shipped pretrained one, all in the same interleaved rounds); a learned optimizer runs through its
    optax export, at its initial theta (the cost does not depend on theta's values)."""
    shared = Shared.parse(compose_config(SCRIPT, "evaluate", forwarded(overrides)))
    hand = {name: hand_designed.from_config(compose_config(SCRIPT, "evaluate", [f"optimizer={name}"]).optimizer)
            for name in HAND}
    lopts = {name: learned.build(compose_config(SCRIPT, "meta-train", run["overrides"]).lopt)
             for per_task in runs.values() for name, run in per_task.items()}
    thetas = {name: lopt.init_theta(jax.random.PRNGKey(0)) for name, lopt in lopts.items()}
    for name in shipped:
        key = f"{pretrained.PREFIX}{name}"
        lopts[key], thetas[key] = load_trained(key)
    result = {}
    for entry in suite.tasks:
        optimizers: dict[str, Any] = {name: h.build(entry.num_steps) for name, h in hand.items()}
        optimizers |= {name: hand_designed.OptaxOptimizer(as_optax(lopt, thetas[name], entry.num_steps))
                       for name, lopt in lopts.items()}
        print(f"\ntiming one training step of {len(optimizers)} optimizers on {entry.name}...", flush=True)
        data = tasks.load_data(entry.config, shared.data, 0)
        measured = step_cost.measure(tasks.build(entry.config), optimizers, data, scale.cost_steps, scale.cost_rounds)
        overhead = step_cost.overhead(measured, "sgd")
        result[entry.name] = {name: {**c.to_json(), "over_sgd": overhead[name]} for name, c in measured.items()}
    return result


def points(task: str, hand: dict[str, Any], runs: dict[str, Any], cost: dict[str, Any],
           shipped: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Fig. 1's optimizers on `task`: name -> meta-loss, step time (ms) and memory (bytes). Adam and
    NAdamW at k times the steps cost k of their steps per step of the others; the shipped pretrained
    optimizers are learned points."""
    result = {}
    for name, h in hand.items():
        base = cost[h["optimizer"]]
        result[name] = {"meta_loss": h[task]["mean_loss"], "step_ms": base["step_ms"] * h["multiple"],
                        "memory_bytes": base["program_bytes"], "learned": False}
    for name, run in runs[task].items():
        if run["hidden_size"] is None and run["trajectory"]["iteration"]:
            result[name] = {"meta_loss": run["trajectory"][task][-1], "step_ms": cost[name]["step_ms"],
                            "memory_bytes": cost[name]["program_bytes"], "learned": True}
    for name, run in shipped.items():
        result[name] = {"meta_loss": run[task]["mean_loss"], "step_ms": cost[name]["step_ms"],
                        "memory_bytes": cost[name]["program_bytes"], "learned": True}
    return result


def tradeoffs(task: str, hand: dict[str, Any], runs: dict[str, Any], cost: dict[str, Any],
              shipped: dict[str, Any]) -> dict[str, Any]:
    """Fig. 1b/d/e on `task`: every optimizer's point and the Pareto front along each cost axis."""
    pts = points(task, hand, runs, cost, shipped)
    return {"points": pts, "front": {axis: pareto_front(pts, axis) for axis, *_ in AXES}}


def hidden_sizes(task: str, runs: dict[str, Any], cost: dict[str, Any], best: dict[str, Any]) -> dict[str, Any]:
    """Fig. 3 on `task`: each small_fc_lopt width's meta-loss and step time, and the best tuned
    hand-designed optimizer."""
    widths = {str(run["hidden_size"] or DEFAULT_HIDDEN): {"meta_loss": run["trajectory"][task][-1],
                                                          "step_ms": cost[task][name]["step_ms"]}
              for name, run in runs[task].items() if run["arch"] == FOCUS and run["trajectory"]["iteration"]}
    return {"task": task, "widths": widths, "best_hand_designed": best[task]}


def generalization(suite: Suite, runs: dict[str, Any], shipped: dict[str, Any]) -> dict[str, Any]:
    """Fig. 6, per task meta-trained on: every learned optimizer's final meta-loss on both tasks (the
    shipped pretrained ones, trained on neither, beside them) and whether its trajectory is
    C-shaped; small_fc_lopt's trajectory."""
    result = {}
    for trained, held in (tuple(t.name for t in suite.tasks), tuple(t.name for t in reversed(suite.tasks))):
        final = {n: {k: r["trajectory"][k][-1] for k in (trained, held)} for n, r in runs[trained].items()
                 if r["hidden_size"] is None and r["trajectory"]["iteration"]}
        final |= {n: {k: r[k]["mean_loss"] for k in (trained, held)} for n, r in shipped.items()}
        shapes = {n: c_shape(r["trajectory"][trained], r["trajectory"][held], r["trajectory"]["iteration"])
                  for n, r in runs[trained].items() if r["hidden_size"] is None}
        result[trained] = {"held_out": held, "trajectory": runs[trained][FOCUS]["trajectory"], "final": final,
                           "c_shape": shapes[FOCUS], "c_shape_every_architecture": shapes}
    return result


def pareto_front(pts: Mapping[str, Mapping[str, Any]], axis: str) -> list[str]:
    """The optimizers no other one beats on both `axis` (a cost) and the meta-loss: none has a cost
    and a meta-loss at most its own with one of them lower. Sorted by cost."""
    valid = {n: p for n, p in pts.items() if p[axis] is not None and np.isfinite(p["meta_loss"])}

    def dominated(n: str) -> bool:
        c, loss = valid[n][axis], valid[n]["meta_loss"]
        return any(o[axis] <= c and o["meta_loss"] <= loss and (o[axis] < c or o["meta_loss"] < loss)
                   for m, o in valid.items() if m != n)

    return sorted((n for n in valid if not dominated(n)), key=lambda n: valid[n][axis])


AXES = (("step_ms", "time per training step (ms)", 1.0),
        ("memory_bytes", "memory of a training step (kB)", 1e-3))  # (key, axis label, scale to the label's unit)


def log_axes(ax: Any, ys: Sequence[float]) -> None:
    """Log x and y axes with ticks written as plain numbers (0.3, not 3x10^-1); x ticked at 1, 2
    and 5 times the powers of ten."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}" if v >= 100 else f"{v:.3g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.tick_params(axis="x", labelrotation=30)
    figures.log_scale_if_positive(ax, ys)


def plot_tradeoffs(fig1: dict[str, Any], path: Path, out: Path) -> None:
    """Fig. 1b/d/e: per task (rows), meta-loss against step time and against memory (columns);
    hand-designed optimizers black squares, learned coloured circles, each named; the Pareto front
    dashed."""
    plt = pyplot()
    fig, axes = plt.subplots(len(fig1), len(AXES), figsize=(7 * len(AXES), 5 * len(fig1)), squeeze=False)
    for row, (task, per_task) in enumerate(fig1.items()):
        pts = per_task["points"]
        colors = dict(zip([n for n, p in pts.items() if p["learned"]], plt.get_cmap("tab10").colors))
        for col, (axis, axis_label, unit) in enumerate(AXES):
            ax = axes[row, col]
            for name, p in pts.items():
                if p[axis] is None:
                    continue
                x = p[axis] * unit
                ax.plot(x, p["meta_loss"], "o" if p["learned"] else "s", color=colors.get(name, "k"), markersize=7)
                ax.annotate(name, (x, p["meta_loss"]), fontsize=7, xytext=(4, 3), textcoords="offset points")
            front = per_task["front"][axis]
            ax.step([pts[n][axis] * unit for n in front], [pts[n]["meta_loss"] for n in front], "--", where="post",
                    color="gray", linewidth=1)
            log_axes(ax, [p["meta_loss"] for p in pts.values()])
            ax.set(xlabel=axis_label, ylabel="meta-loss (mean training loss)",
                   title=f"{task}: meta-loss vs {axis_label.split(' (')[0]}")
        axes[row, 0].legend(handles=[
            plt.Line2D([], [], marker="s", color="k", linestyle="", label="hand-designed, tuned"),
            plt.Line2D([], [], marker="o", color="C0", linestyle="", label="learned"),
            plt.Line2D([], [], color="gray", linestyle="--", label="Pareto front")], fontsize=8, loc="best")
    fig.suptitle(figures.title("tradeoffs", out, "Fig. 1b/d/e (Metz et al. 2022): performance against compute and "
                                                 "memory"))
    fig.tight_layout(rect=(0, 0, 1, 0.94))
    save_figure(fig, path)


def plot_hidden_size(fig3: dict[str, Any], path: Path, out: Path) -> None:
    """Fig. 3: small_fc_lopt's meta-loss against its hidden size and against its step time, the
    best tuned hand-designed optimizer dashed."""
    plt = pyplot()
    fig, (a, b) = plt.subplots(1, 2, figsize=(13, 5))
    rows = sorted(fig3["widths"].items(), key=lambda kv: int(kv[0]))
    sizes, losses = [int(h) for h, _ in rows], [r["meta_loss"] for _, r in rows]
    a.plot(sizes, losses, "x-", color="C0", markersize=9, label=FOCUS)
    b.plot([r["step_ms"] for _, r in rows], losses, "x-", color="C0", markersize=9, label=FOCUS)
    for (h, r) in rows:
        b.annotate(f"h={h}", (r["step_ms"], r["meta_loss"]), fontsize=8, xytext=(4, 3), textcoords="offset points")
    best = fig3["best_hand_designed"]
    for ax in (a, b):
        ax.axhline(best["meta_loss"], color="k", linestyle="--", linewidth=1, label=f"best tuned hand-designed "
                                                                                   f"({best['name']})")
        log_axes(ax, [*losses, best["meta_loss"]])
        ax.set(ylabel="meta-loss (mean training loss)")
        ax.legend(fontsize=8)
    a.set_xticks(sizes, [str(s) for s in sizes])
    a.set(xlabel="hidden size", title=f"(a) performance vs width on {fig3['task']}")
    b.set(xlabel="time per training step (ms)", title="(b) performance vs compute")
    fig.suptitle(figures.title(fig3["task"], out, "Fig. 3 (Metz et al. 2022): small_fc_lopt's hidden size swept"))
    fig.tight_layout(rect=(0, 0, 1, 0.9))
    save_figure(fig, path)


def bounds(values: Sequence[float]) -> tuple[float, float]:
    """Log-axis limits a little outside the finite positive `values`."""
    v = np.asarray([x for x in values if x is not None and np.isfinite(x) and x > 0], float)
    return (float(v.min()) / 1.15, float(v.max()) * 1.15) if v.size else (0.1, 10.0)


def plot_generalization(fig6: dict[str, Any], best: dict[str, float], path: Path, out: Path) -> None:
    """Fig. 6: (a, b) each learned optimizer meta-trained on one task, its final meta-loss on both;
    (c, d) small_fc_lopt's trajectory over meta-training, coloured by outer iteration; dashed the
    best tuned hand-designed optimizer on each task."""
    plt = pyplot()
    directions = list(fig6.items())
    fig, axes = plt.subplots(2, len(directions), figsize=(7 * len(directions), 11), squeeze=False)
    for col, (trained, d) in enumerate(directions):
        held = d["held_out"]
        a, c = axes[0, col], axes[1, col]
        for i, (name, p) in enumerate(d["final"].items()):
            a.plot(p[held], p[trained], "o", color=plt.get_cmap("tab10")(i), markersize=8, label=name)
        t = d["trajectory"]
        if t["iteration"]:
            c.plot(t[held], t[trained], color="lightgray", linewidth=1, zorder=1)
            s = c.scatter(t[held], t[trained], c=t["iteration"], cmap="viridis", zorder=2)
            fig.colorbar(s, ax=c, label="outer iteration")
        for ax, xs, ys in ((a, [p[held] for p in d["final"].values()], [p[trained] for p in d["final"].values()]),
                           (c, t[held], t[trained])):
            ax.axvline(best[held], color="k", linestyle="--", linewidth=1)
            ax.axhline(best[trained], color="k", linestyle="--", linewidth=1, label="best tuned hand-designed")
            ax.set(xlabel=f"meta-loss on {held} (held out)", ylabel=f"meta-loss on {trained} (meta-trained on)")
            ax.set_xlim(*bounds([*xs, best[held]]))
            ax.set_ylim(*bounds([*ys, best[trained]]))
            log_axes(ax, [*ys, best[trained]])
        a.set_title(f"({'ab'[col]}) meta-trained on {trained}, tested on {held}")
        a.legend(fontsize=7)
        c.set_title(f"({'cd'[col]}) {FOCUS} over meta-training on {trained}\n"
                    + "\n".join(textwrap.wrap(d["c_shape"]["shape"], 80)), fontsize=9)
    fig.suptitle(figures.title("tradeoffs", out, "Fig. 6 (Metz et al. 2022): meta-generalization and "
                                                 "meta-overfitting"))
    fig.tight_layout(rect=(0, 0, 1, 0.94))
    save_figure(fig, path)


def c_shape(trained: Sequence[float], held: Sequence[float], iterations: Sequence[int],
            given_back: float = 0.25) -> dict[str, Any]:
    """Is a meta-training trajectory C-shaped (Fig. 6c/d)? The held-out meta-loss reaches its best
    before the last evaluation and gives back at least `given_back` of its improvement by the end
    (its improvement: from the worst evaluation to the best), while the meta-training task's loss
    ends below where it was at that best."""
    if len(held) < 3:
        return {"shape": "too few evaluations", "c_shaped": False}
    held_arr, trained_arr = np.asarray(held, float), np.asarray(trained, float)
    best = int(np.nanargmin(held_arr))
    improvement = float(np.nanmax(held_arr) - held_arr[best])
    back = float((held_arr[-1] - held_arr[best]) / improvement) if improvement > 0 else 0.0
    kept = bool(trained_arr[-1] < trained_arr[best])
    at = f"the held-out meta-loss is best at iteration {iterations[best]}"
    shaped = best < len(held_arr) - 1 and back >= given_back and kept
    if best == len(held_arr) - 1:
        shape = f"not C-shaped: {at}, the last evaluation"
    elif back < given_back:
        shape = f"not C-shaped: {at} and only {back:.0%} of its improvement is given back by the end"
    elif not kept:
        shape = f"not C-shaped: {at}, {back:.0%} is given back, but the meta-training task got worse too"
    else:
        shape = f"C-shaped: {at}, then {back:.0%} of its improvement is given back as the meta-training task improves"
    return {"shape": shape, "c_shaped": shaped, "held_out_best_iteration": iterations[best], "given_back": back,
            "training_improved_after": kept}


def pareto_verdict(fig1: dict[str, Any]) -> Verdict:
    on = {(task, axis): FOCUS in d["front"][axis] for task, d in fig1.items() for axis, *_ in AXES}
    measured = "; ".join(f"{task} {axis.split('_')[0]}: {'on' if v else 'off'} the front "
                         f"({', '.join(fig1[task]['front'][axis])})" for (task, axis), v in on.items())
    return Verdict("Fig. 1b/d/e", f"{FOCUS} lies on the Pareto front of meta-loss against step time and against "
                   "memory, on both tasks", measured, all(on.values()))


def overhead_verdict(cost: dict[str, Any], suite: Suite) -> Verdict:
    mlp, conv = (t.name for t in suite.tasks)
    a, b = cost[mlp][FOCUS]["over_sgd"], cost[conv][FOCUS]["over_sgd"]
    return Verdict("Table 1, Fig. 1b/d", f"a learned optimizer's per-step overhead is larger on the MLP than on the "
                   f"convnet, whose gradients cost more per parameter ({FOCUS}'s step time over SGD's)",
                   f"{mlp}: {a:.2f}x, {conv}: {b:.2f}x", a > b)


def width_verdict(fig3: dict[str, Any]) -> Verdict:
    narrow = min(fig3["widths"], key=int)
    loss, best = fig3["widths"][narrow]["meta_loss"], fig3["best_hand_designed"]
    return Verdict("Fig. 3a", f"even the narrowest {FOCUS} beats the best tuned hand-designed optimizer",
                   f"hidden size {narrow}: {loss:.4g} vs {best['name']} {best['meta_loss']:.4g} on {fig3['task']}",
                   loss < best["meta_loss"])


def generalization_verdict(fig6: dict[str, Any]) -> Verdict:
    shapes = {trained: d["c_shape"] for trained, d in fig6.items()}
    measured = "; ".join(f"meta-trained on {t}: {s['shape']}" for t, s in shapes.items())
    return Verdict("Fig. 6c/d", f"meta-generalization degrades late in meta-training: {FOCUS}'s held-out meta-loss "
                   "gets worse after its best while the meta-training task keeps improving (C-shaped curves)",
                   measured, all(s["c_shaped"] for s in shapes.values()))


def best_hand_designed(hand: dict[str, Any], task: str) -> dict[str, Any]:
    """The best tuned hand-designed optimizer at the task's own length (Fig. 3 and 6's dashed line)."""
    name = min((n for n, h in hand.items() if h["multiple"] == 1), key=lambda n: hand[n][task]["mean_loss"])
    return {"name": name, "meta_loss": hand[name][task]["mean_loss"]}


def pretrained_lines(shipped: dict[str, Any], best: dict[str, dict[str, Any]]) -> str:
    """Each shipped pretrained optimizer's meta-loss on each task against the best tuned
    hand-designed optimizer's."""
    lines = []
    for name, run in shipped.items():
        for task, b in best.items():
            loss = run[task]["mean_loss"]
            lines.append(f"{name} on {task} (meta-trained on neither task): {loss:.4g} vs {b['name']} "
                         f"{b['meta_loss']:.4g}, {'below' if loss < b['meta_loss'] else 'not below'} the best tuned "
                         "hand-designed optimizer")
    return "\n".join(lines)


def table(cost: dict[str, Any]) -> str:
    """Table 1's columns for every optimizer on each task: step time, its multiple of SGD's, memory."""
    lines = []
    for task, per in cost.items():
        width = max(22, *(len(name) + 2 for name in per))
        lines.append(f"\nTable 1 ({task}; parameters: {per['sgd']['param_bytes'] // 4:,}):")
        lines.append(f"  {'optimizer':<{width}}{'step (ms)':>10}{'x SGD':>8}{'state (kB)':>12}{'memory (kB)':>13}")
        for name, c in sorted(per.items(), key=lambda kv: kv[1]["step_ms"]):
            memory = "-" if c["program_bytes"] is None else f"{c['program_bytes'] / 1e3:,.0f}"
            lines.append(f"  {name:<{width}}{c['step_ms']:>10.3f}{c['over_sgd']:>8.2f}"
                         f"{c['state_bytes'] / 1e3:>12,.1f}{memory:>13}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="the 2-core CPU sizes (offline)")
    p.add_argument("--suite", default="tradeoffs_offline", help="the two tasks: tradeoffs_offline or tradeoffs")
    p.add_argument("--out", type=Path, default=None, help="directory for the runs, figures and tradeoffs.json")
    p.add_argument("--pretrained", default=",".join(pretrained.names()),
                   help="comma-separated shipped optimizers to place beside the others (default: all, "
                        f"{','.join(pretrained.names())}; '' for none)")
    p.add_argument("overrides", nargs="*", help="extra key=value overrides (meta-train; data/tracking to all)")
    a = p.parse_args(argv)
    names = [n for n in a.pretrained.split(",") if n]
    unknown = [n for n in names if n not in pretrained.names()]
    if unknown:
        p.error(f"--pretrained {','.join(unknown)}: the shipped optimizers are {', '.join(pretrained.names())}")
    start = time.perf_counter()
    scale = QUICK if a.quick else FULL
    suite = suite_of(p, a.suite, a.overrides)
    out = a.out or Path("outputs/tradeoffs") / datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    out.mkdir(parents=True, exist_ok=True)
    hand = hand_designed_runs(scale, suite, out, a.overrides)
    runs = meta_train(scale, suite, out, a.overrides)
    shipped = pretrained_runs(suite, out, a.overrides, names)
    cost = costs(scale, suite, runs, a.overrides, names)
    print(table(cost))
    fig1 = {t.name: tradeoffs(t.name, hand, runs, cost[t.name], shipped) for t in suite.tasks}
    best = {t.name: best_hand_designed(hand, t.name) for t in suite.tasks}
    fig3 = hidden_sizes(suite.tasks[0].name, runs, cost, best)
    fig6 = generalization(suite, runs, shipped)
    if shipped:
        print("\n" + pretrained_lines(shipped, best))
    plot_tradeoffs(fig1, out / "fig1_tradeoffs.png", out)
    plot_hidden_size(fig3, out / "fig3_hidden_size.png", out)
    plot_generalization(fig6, {k: v["meta_loss"] for k, v in best.items()}, out / "fig6_meta_generalization.png", out)
    verdicts = [pareto_verdict(fig1), overhead_verdict(cost, suite), width_verdict(fig3),
                generalization_verdict(fig6)]
    result = {"paper": PAPER, "quick": a.quick, "suite": suite.name, "scale": asdict(scale),
              "tasks": {t.name: {"num_steps": t.num_steps} for t in suite.tasks}, "overrides": a.overrides,
              "hand_designed": hand, "meta_train": runs, "pretrained": shipped, "cost": cost, "fig1": fig1,
              "fig3": fig3, "fig6": fig6,
              "figures": ["fig1_tradeoffs.png", "fig3_hidden_size.png", "fig6_meta_generalization.png"],
              "wall_s": time.perf_counter() - start}
    return finish(out / "tradeoffs.json", result, verdicts)


if __name__ == "__main__":
    main()
