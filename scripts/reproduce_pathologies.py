"""Reproduce figures of Metz, Maheswaranathan, Nixon, Freeman and Sohl-Dickstein (2019),
"Understanding and correcting pathologies in the training of learned optimizers" (ICML 2019,
arXiv:1810.10180), at CPU scale, with one verdict per claim.

  Fig. 3a-c  the two-minima toy (lopt's `two_minima` task, loss (w-4)(w-3)w^2 from w0 = -1.2) trained
             by SGD + momentum (optax) for every momentum on a grid: w(T) against T coloured by the
             momentum, and the final loss against the momentum for several T. Claim: longer unrolls
             roughen the outer landscape (measured: the total variation of the final loss over the
             momentum grid, and its jumps, grow with T).
  Fig. 4     truncation bias: Adam's learning rate meta-learned from 1e-3 on the digits MLP with
             truncated backprop at several truncation lengths over the same total inner steps
             (`lopt meta-train lopt=learnable_adam lopt.trainable=[lr] estimator=tbptt`), next to the
             grid-search optimum of the same objective (`lopt baseline-sweep`, mean training loss);
             4b/4c: the per-truncation and cumulative meta-gradients of the learning rate over one inner
             training at the grid optimum (lopt's meta-trainer, the same estimator; the paper's
             is at its initial 1e-3, a quarter of its optimum). Claim: short truncations
             pull the learning rate away from the optimum.
  Fig. 5a    the variances over tasks of the reparameterization and ES meta-gradient samples over
             outer training (`lopt meta-train estimator=merged`, fc_lopt, the linear curriculum; its
             estimator/rp_variance and estimator/es_variance). Claim: the RP variance grows past the
             ES variance.

Writes pathologies.json (every number behind the figures and the verdicts), fig3_two_minima.png,
fig4_truncation_bias.png, fig5a_estimator_variance.png and each lopt run's own directory under --out.

    python scripts/reproduce_pathologies.py --quick            # the 2-core CPU, offline
    python scripts/reproduce_pathologies.py                    # larger: the paper's 10k inner steps per run
    python scripts/reproduce_pathologies.py --quick --parts fig3,fig4 tracking.mode=disabled

Trailing key=value overrides go to every lopt command (e.g. data.*, tracking.*).
"""
import argparse
import json
import math
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from lopt import figures, learned, tasks
from lopt.commands import meta_train
from lopt.io.results import pyplot, read_jsonl, save_figure
from lopt.training.sweep import Configuration
from lopt_cli.reproduction import Verdict, compose_config, finish, run_lopt

SCRIPT = "reproduce_pathologies"
PARTS = ("fig3", "fig4", "fig5a", "fig7")
PAPER = ("Metz, Maheswaranathan, Nixon, Freeman, Sohl-Dickstein (2019), Understanding and correcting "
         "pathologies in the training of learned optimizers (arXiv:1810.10180)")


@dataclass(frozen=True)
class Scale:
    """The sizes of one mode (--quick or full)."""

    toy_lr: float = 0.02  # SGD's learning rate on the toy: low, middle and high momenta reach the three regimes
    toy_momenta: int = 991  # momentum grid in [0, 0.99], step 0.001
    toy_steps: tuple[int, ...] = (10, 30, 100, 300, 1000)  # the T of Fig. 3c
    task: str = "digits_mlp"
    length: int = 200  # inner training steps of one problem
    truncations: tuple[int, ...] = (5, 20, 50, 200)  # Fig. 4's truncation lengths (dividing `length`)
    problems: int = 200  # problems trained one after another per task: total inner steps = problems x length
    num_tasks: int = 8
    outer_lr: float = 0.01  # outer Adam on 0.1 log lr
    grid: tuple[float, ...] = tuple(float(x) for x in np.geomspace(1e-4, 1e-1, 13))
    sweep_seeds: int = 3
    gradient_trunc: int = 10  # Fig. 4b/c's truncation length
    variance_iterations: int = 300  # Fig. 5a: outer iterations, the curriculum's ramp
    variance_end: int = 2000  # Fig. 5a: the curriculum's final length
    ablation_iterations: int = 150  # Fig. 7: outer iterations of each run (the curriculum's ramp)
    ablation_tasks: int = 4
    ablation_end: int = 1000  # Fig. 7: the curriculum's final length
    ablation_fixed: tuple[int, ...] = (50, 1000)  # Fig. 7: fixed inner-problem lengths instead of the curriculum
    ablation_seeds: int = 2
    eval_steps: int = 500  # Fig. 7: training steps of the evaluation of each final theta


QUICK = Scale()
FULL = Scale(length=1000, truncations=(10, 50, 100, 500, 1000), problems=10, num_tasks=16, sweep_seeds=5,
             gradient_trunc=50, variance_iterations=2000, variance_end=10000, ablation_iterations=2000,
             ablation_tasks=16, ablation_end=10000, ablation_fixed=(10, 100, 1000), ablation_seeds=5, eval_steps=2000)


def ablations(scale: Scale) -> dict[str, tuple[str, list[str]]]:
    """Fig. 7's configurations: name -> (what is ablated, meta-train overrides: the schedule and the
    change from the full recipe, merged + curriculum + every feature)."""
    curriculum = ["schedule=linear", "schedule.start=50", f"schedule.end={scale.ablation_end}",
                  f"schedule.iterations={scale.ablation_iterations}"]
    fixed = {f"fixed length {n}": ("curriculum", ["schedule=constant", f"schedule.length={n}"])
             for n in scale.ablation_fixed}
    return {"merged (full)": ("estimator", curriculum),
            "backprop only": ("estimator", [*curriculum, "estimator=tbptt"]),
            "ES only": ("estimator", [*curriculum, "estimator=es"]), **fixed,
            "no momentum": ("features", [*curriculum, "lopt.momentum=false"]),
            "no RMS": ("features", [*curriculum, "lopt.rms=false"]),
            "only grads": ("features", [*curriculum, "lopt.momentum=false", "lopt.rms=false"]),
            "no time": ("features", [*curriculum, "lopt.time=false"])}


def two_minima_sweep(scale: Scale, overrides: list[str]) -> dict[str, Any]:
    """Fig. 3: w(t) for t <= max(T) under SGD + momentum at every momentum of the grid, one
    compiled scan vmapped over momenta; the final loss at each T; per T the landscape's
    near-discontinuities (neighbouring momenta whose final losses differ by more than half the gap
    between the two minima's losses) and its total variation over the grid."""
    cfg = compose_config(SCRIPT, "meta-train", ["task=two_minima", *overrides])
    task = tasks.build(cfg.task)
    w0 = task.init(jax.random.PRNGKey(0))
    momenta = np.linspace(0.0, 0.99, scale.toy_momenta)

    def trajectory(momentum: jax.Array) -> jax.Array:
        opt = optax.sgd(scale.toy_lr, momentum=momentum)

        def step(carry: Any, _: Any) -> tuple[Any, jax.Array]:
            w, state = carry
            updates, state = opt.update(jax.grad(task.loss)(w, None), state, w)
            w = optax.apply_updates(w, updates)
            return (w, state), w

        return jax.lax.scan(step, (w0, opt.init(w0)), None, length=max(scale.toy_steps))[1]

    ws = np.asarray(jax.jit(jax.vmap(trajectory))(jnp.asarray(momenta, jnp.float32)), float)  # [momenta, T]
    losses = np.asarray(jax.vmap(lambda w: task.loss(w, None))(jnp.asarray(ws[:, [t - 1 for t in scale.toy_steps]])))
    w_global = (21 + math.sqrt(57)) / 8  # the global minimum: the larger root of l'(w) = w (4w^2 - 21w + 24)
    gap = abs(float(task.loss(jnp.float32(w_global), None)))  # loss(0) = 0
    per_t = {}
    for j, t in enumerate(scale.toy_steps):
        diffs = np.abs(np.diff(losses[:, j]))
        per_t[str(t)] = {"jumps": int((diffs > gap / 2).sum()), "largest_step": float(diffs.max()),
                         "total_variation": float(diffs.sum()),
                         "settled_at_0": int((np.abs(ws[:, t - 1]) < 0.1).sum()),
                         "settled_at_global": int((np.abs(ws[:, t - 1] - w_global) < 0.1).sum())}
    return {"lr": scale.toy_lr, "w0": float(w0), "momenta": momenta.tolist(), "steps": list(scale.toy_steps),
            "w": ws.tolist(), "final_loss": losses.T.tolist(), "minima_gap": gap, "landscape": per_t}


def plot_two_minima(toy: dict[str, Any], path: Path, out: Path) -> None:
    plt = pyplot()
    fig, (a, b, c) = plt.subplots(1, 3, figsize=(17, 5))
    grid = np.linspace(-1.6, 4.3, 400)
    a.plot(grid, (grid - 4) * (grid - 3) * grid**2, color="k")
    a.plot([toy["w0"]], [(toy["w0"] - 4) * (toy["w0"] - 3) * toy["w0"] ** 2], "*", color="crimson", markersize=14,
           label=f"w0 = {toy['w0']:.3g}")
    a.set(xlabel="w", ylabel="loss (w-4)(w-3)w²", title="(a) the inner loss: two minima")
    a.legend()
    ws, momenta = np.asarray(toy["w"]), np.asarray(toy["momenta"])
    cmap = plt.get_cmap("viridis_r")
    t = np.arange(1, ws.shape[1] + 1)
    for i in range(0, len(momenta), max(1, len(momenta) // 60)):
        b.plot(t, ws[i], color=cmap(momenta[i] / momenta.max()), linewidth=0.8)
    b.set(xscale="log", xlabel="inner step T", ylabel="w(T)", title=f"(b) SGD + momentum, lr {toy['lr']}")
    fig.colorbar(plt.cm.ScalarMappable(norm=plt.Normalize(0, momenta.max()), cmap=cmap), ax=b, label="momentum")
    for steps, losses in zip(toy["steps"], toy["final_loss"]):
        jumps = toy["landscape"][str(steps)]["jumps"]
        c.plot(momenta, losses, linewidth=1, label=f"T = {steps} ({jumps} near-discontinuities)")
    c.set(xlabel="momentum (the outer parameter)", ylabel="loss after T steps", title="(c) the outer landscape")
    c.legend(fontsize=8)
    fig.suptitle(figures.title("two_minima", out, "Fig. 3a-c (Metz et al. 2019): longer unrolls roughen the "
                                                  "outer landscape"))
    save_figure(fig, path)


def landscape_verdict(toy: dict[str, Any]) -> Verdict:
    jumps = [toy["landscape"][str(t)]["jumps"] for t in toy["steps"]]
    measured = ", ".join(f"T={t}: {j}" for t, j in zip(toy["steps"], jumps))
    step = float(np.diff(toy["momenta"])[0])
    return Verdict("Fig. 3c", "longer unrolls roughen the outer landscape (near-discontinuities: neighbouring "
                   f"momenta, {step:.3g} apart, whose final losses differ by more than half the minima's gap "
                   f"{toy['minima_gap']:.3g}; more at the longest T than at the shortest)", measured,
                   jumps[-1] > jumps[0])


def truncation_bias(scale: Scale, out: Path, overrides: list[str]) -> dict[str, Any]:
    """Fig. 4a: the grid-search optimum (baseline-sweep), then one meta-training per truncation
    length over the same total inner steps; the learned learning rate of each."""
    wall = {"sweep": run_lopt(SCRIPT, "baseline-sweep", out / "fig4" / "sweep", [
        f"task={scale.task}", "optimizer=adam", f"num_steps={scale.length}", f"num_seeds={scale.sweep_seeds}",
        f"sweep.lrs=[{','.join(f'{x:.6g}' for x in scale.grid)}]", "sweep.criterion=mean_train_loss",
        f"eval_every={max(1, scale.length // 20)}", *overrides])[0]}
    sweep = json.loads((out / "fig4" / "sweep" / "sweep.json").read_text())
    configurations = [Configuration.from_json(c) for c in sweep["configurations"]]
    grid = sorted((c.hyperparameters["lr"], c.value("mean_train_loss")) for c in configurations)
    best_lr = min(grid, key=lambda x: x[1])[0]
    runs = {}
    for n in scale.truncations:
        run_dir = out / "fig4" / f"trunc_{n}"
        its = scale.problems * scale.length // n
        args = bias_overrides(scale, n, overrides) + [f"outer_iterations={its}", f"log_every={max(1, its // 100)}",
                                                     "checkpoint_every=0"]
        wall[f"trunc_{n}"] = run_lopt(SCRIPT, "meta-train", run_dir, args)[0]
        lopt = learned.build(compose_config(SCRIPT, "meta-train", args)["lopt"])  # the architecture the run trained
        theta = learned.load_theta(lopt, run_dir / "final_theta")
        records = read_jsonl(run_dir / "metrics.jsonl")
        runs[str(n)] = {"outer_iterations": its, "learned_lr": float(np.exp(10.0 * float(theta["lr"]))),
                        "outer_loss": [[r["outer_iteration"], r.get("outer/loss")] for r in records],
                        "run_dir": str(run_dir)}
    return {"task": scale.task, "length": scale.length, "total_inner_steps_per_task": scale.problems * scale.length,
            "num_tasks": scale.num_tasks, "initial_lr": 1e-3, "outer_lr": scale.outer_lr,
            "grid": [{"lr": lr, "mean_train_loss": v} for lr, v in grid], "grid_best_lr": best_lr,
            "runs": runs, "wall_s": wall}


def bias_overrides(scale: Scale, trunc: int, overrides: list[str]) -> list[str]:
    """meta-train's overrides for Fig. 4: Adam's learning rate alone, from 1e-3, by truncated backprop,
    every task's problems starting together so that the truncations split each inner training into
    consecutive pieces (the full-length truncation is the exact gradient of the mean loss)."""
    return [f"task={scale.task}", "lopt=learnable_adam", "lopt.trainable=[lr]", "lopt.lr=0.001", "estimator=tbptt",
            f"estimator.trunc_length={trunc}", "schedule=constant", f"schedule.length={scale.length}",
            "meta_loss=mean", "outer_opt=adam", f"outer_opt.lr={scale.outer_lr}", "outer_opt.max_norm=null",
            f"num_tasks={scale.num_tasks}", "random_initial_offset=false", *overrides]


def truncation_gradients(scale: Scale, lr: float, overrides: list[str]) -> dict[str, Any]:
    """Fig. 4b/c: the meta-gradient of the learning rate (d meta-loss / d 0.1 log lr) of each
    truncation of one inner training at `lr` (theta fixed), the mean over tasks."""
    n = scale.gradient_trunc
    c = meta_train.build(compose_config(SCRIPT, "meta-train", [*bias_overrides(scale, n, overrides),
                                                               f"lopt.lr={lr}"]))
    data = c.load_data()
    state = c.trainer.init(jax.random.PRNGKey(0))
    estimate = jax.jit(c.trainer.estimate)
    states, key, grads = state.estimator_state, jax.random.PRNGKey(1), []
    for i in range(scale.length // n):
        key, k = jax.random.split(key)
        est = estimate(state.theta, states, data, k, jnp.asarray(i, jnp.int32))
        states = est.state
        grads.append(float(est.grad["lr"]))
    return {"trunc_length": n, "lr": lr, "steps": [(i + 1) * n for i in range(len(grads))],
            "per_truncation": grads, "cumulative": np.cumsum(grads).tolist()}


def plot_truncation_bias(bias: dict[str, Any], grads: dict[str, Any], path: Path, out: Path) -> None:
    plt = pyplot()
    fig, (a, b, c) = plt.subplots(1, 3, figsize=(18, 5))
    grid = bias["grid"]
    a.plot([g["lr"] for g in grid], [g["mean_train_loss"] for g in grid], "o-", color="k",
           label=f"Adam grid search ({bias['length']} steps)")
    a.axvline(bias["grid_best_lr"], color="k", linestyle=":", label=f"grid optimum {bias['grid_best_lr']:.3g}")
    a.axvline(bias["initial_lr"], color="gray", linestyle="--", label="initial learning rate 1e-3")
    cmap = plt.get_cmap("plasma")
    for i, (n, run) in enumerate(bias["runs"].items()):
        a.axvline(run["learned_lr"], color=cmap(i / max(1, len(bias["runs"]) - 1)), linewidth=2,
                  label=f"meta-learned, truncations of {n}: {run['learned_lr']:.3g}")
    a.set(xscale="log", xlabel=figures.LEARNING_RATE_LABEL, ylabel="mean training loss (the outer loss)",
          title="(a) learned learning rate per truncation length")
    a.legend(fontsize=7)
    steps = grads["steps"]
    b.bar(steps, grads["per_truncation"], width=grads["trunc_length"] * 0.8, color="steelblue")
    b.axhline(0, color="k", linewidth=0.8)
    b.set(xlabel="inner step (end of the truncation)", ylabel="d outer loss / d (0.1 log lr)",
          title=f"(b) per-truncation meta-gradient, truncations of {grads['trunc_length']}, "
                f"at the optimum lr {grads['lr']:.3g}")
    c.plot(steps, grads["cumulative"], "o-", color="steelblue")
    c.axhline(0, color="k", linewidth=0.8)
    c.set(xlabel="inner step", ylabel="cumulative meta-gradient", title="(c) cumulative meta-gradient")
    fig.suptitle(figures.title(bias["task"], out, "Fig. 4 (Metz et al. 2019): truncation bias"))
    save_figure(fig, path)


def bias_verdict(bias: dict[str, Any]) -> Verdict:
    best = bias["grid_best_lr"]
    decades = {n: abs(math.log10(r["learned_lr"] / best)) for n, r in bias["runs"].items()}
    shortest, longest = list(decades)[0], list(decades)[-1]
    measured = (f"grid optimum {best:.3g}; learned " + ", ".join(
        f"{bias['runs'][n]['learned_lr']:.3g} (truncations of {n}, {d:.2f} decades off)" for n, d in decades.items()))
    return Verdict("Fig. 4a", "short truncations pull the learning rate away from the optimum (the shortest ends "
                   "farther from the grid optimum than the longest)", measured, decades[shortest] > decades[longest])


def estimator_variance(scale: Scale, out: Path, overrides: list[str]) -> dict[str, Any]:
    """Fig. 5a: a merged-estimator meta-training of fc_lopt on the curriculum, its logged variances."""
    run_dir = out / "fig5a"
    its = scale.variance_iterations
    wall = run_lopt(SCRIPT, "meta-train", run_dir, [
        f"task={scale.task}", "lopt=fc_lopt", "estimator=merged", "schedule=linear", "schedule.start=50",
        f"schedule.end={scale.variance_end}", f"schedule.iterations={its}", "meta_loss=mean", "outer_opt=adam",
        "outer_opt.lr=0.003", "outer_opt.b1=0.5", "outer_opt.max_norm=null", f"num_tasks={scale.num_tasks}",
        f"outer_iterations={its}", f"log_every={max(1, its // 100)}", "checkpoint_every=0", *overrides])[0]
    rows = [r for r in read_jsonl(run_dir / "metrics.jsonl") if "estimator/rp_variance" in r]
    return {"outer_iteration": [r["outer_iteration"] for r in rows],
            "rp_variance": [r["estimator/rp_variance"] for r in rows],
            "es_variance": [r["estimator/es_variance"] for r in rows],
            "rp_weight": [r.get("estimator/rp_weight") for r in rows], "outer_iterations": its,
            "curriculum": [50, scale.variance_end], "task": scale.task, "run_dir": str(run_dir), "wall_s": wall}


def plot_variance(var: dict[str, Any], path: Path, out: Path) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(9, 5))
    its = var["outer_iteration"]
    for key, label, color in (("rp_variance", "reparameterization (backprop)", "crimson"),
                              ("es_variance", "evolution strategies", "steelblue")):
        values = np.asarray([np.nan if v is None else v for v in var[key]], float)
        ax.plot(its, np.where(values > 0, values, np.nan), label=label, color=color)
    ax.set(yscale="log", xlabel=figures.OUTER_STEP_LABEL,
           ylabel="variance over tasks of the meta-gradient samples\n(mean over meta-parameters)")
    ax.legend()
    fig.suptitle(figures.title(var["task"], out, "Fig. 5a (Metz et al. 2019): meta-gradient variances over outer "
                                                 f"training (curriculum {var['curriculum'][0]} -> "
                                                 f"{var['curriculum'][1]} steps)"))
    save_figure(fig, path)


def variance_verdict(var: dict[str, Any]) -> Verdict:
    ratios = [rp / es if rp is not None and es else math.nan for rp, es in zip(var["rp_variance"], var["es_variance"])]
    k = max(1, len(ratios) // 10)  # the first and last tenth of the logged iterations
    first, last = float(np.nanmedian(ratios[:k])), float(np.nanmedian(ratios[-k:]))
    measured = f"RP/ES variance ratio {first:.3g} in the first tenth of outer training, {last:.3g} in the last"
    return Verdict("Fig. 5a", "the reparameterization variance grows past the ES variance", measured,
                   bool(last > first and last > 1))


def ablation(scale: Scale, out: Path, overrides: list[str]) -> dict[str, Any]:
    """Fig. 7: every configuration of `ablations` meta-trained on `ablation_seeds` seeds (one lopt
    multirun each), each final theta evaluated in the run on the task (eval/<task>/mean_loss: the
    mean training loss over `eval_steps` steps, 3 evaluation seeds)."""
    its = scale.ablation_iterations
    base = [f"task={scale.task}", "lopt=fc_lopt", "estimator=merged", "meta_loss=mean", "outer_opt=adam",
            "outer_opt.lr=0.003", "outer_opt.b1=0.5", "outer_opt.max_norm=null", f"num_tasks={scale.ablation_tasks}",
            f"outer_iterations={its}", f"log_every={its}", "checkpoint_every=0", f"eval.every={its}",
            f"eval.tasks=[{scale.task}]", f"eval.num_steps={scale.eval_steps}", "eval.baselines.run_missing=true",
            f"eval.baselines.dir={out / 'baselines'}", *overrides]
    key = f"eval/{scale.task}/mean_loss"
    configs, wall = {}, {}
    for i, (name, (group, extra)) in enumerate(ablations(scale).items()):
        sweep_dir = out / "fig7" / str(i)
        seeds = ",".join(str(k) for k in range(scale.ablation_seeds))
        wall[name] = run_lopt(SCRIPT, "meta-train", sweep_dir, [*base, *extra, f"seed={seeds}"], multirun=True)[0]
        finals = []
        for k in range(scale.ablation_seeds):
            rows = [r for r in read_jsonl(sweep_dir / str(k) / "metrics.jsonl") if key in r]
            finals.append(rows[-1][key] if rows and rows[-1][key] is not None else math.nan)
        configs[name] = {"group": group, "overrides": extra, "final_eval_mean_loss": finals, "run_dir": str(sweep_dir)}
    return {"task": scale.task, "metric": key, "outer_iterations": its, "seeds": scale.ablation_seeds,
            "configurations": configs, "wall_s": wall}


def plot_ablation(abl: dict[str, Any], path: Path, out: Path) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(12, 5))
    names = list(abl["configurations"])
    colors = {"estimator": "steelblue", "curriculum": "darkorange", "features": "seagreen"}
    for x, name in enumerate(names):
        c = abl["configurations"][name]
        values = np.asarray(c["final_eval_mean_loss"], float)
        ax.plot(np.full(len(values), x), values, "o", color=colors[c["group"]], alpha=0.8)
        ax.plot([x - 0.25, x + 0.25], [np.nanmedian(values)] * 2, color="k", linewidth=2)
    ax.set_xticks(range(len(names)), names, rotation=30, ha="right")
    ax.set_ylabel(f"{figures.metric_label(abl['metric'])}\nof the final theta (one dot per seed, bar: median)")
    figures.log_scale_if_positive(ax, [v for c in abl["configurations"].values() for v in c["final_eval_mean_loss"]])
    for group, color in colors.items():
        ax.plot([], [], "o", color=color, label=group)
    ax.legend(title="ablated")
    fig.suptitle(figures.title(abl["task"], out, f"Fig. 7 (Metz et al. 2019): ablations, {abl['seeds']} seeds x "
                                                 f"{abl['outer_iterations']} outer iterations each"))
    fig.tight_layout(rect=(0, 0, 1, 0.9))  # room for the two-line title
    save_figure(fig, path)


def ablation_verdicts(abl: dict[str, Any]) -> list[Verdict]:
    """Fig. 7's claims, each from the medians over seeds of the configurations it compares (a claim
    whose configurations were not run is left out)."""
    med = {n: float(np.nanmedian(c["final_eval_mean_loss"])) for n, c in abl["configurations"].items()}
    full, estimators = "merged (full)", ["backprop only", "ES only"]
    fixed = [n for n in med if n.startswith("fixed length")]
    features = [n for n in ("no momentum", "no RMS", "only grads", "no time") if n in med]

    def numbers(names: list[str]) -> str:
        return ", ".join(f"{n} {med[n]:.4g}" for n in names)

    verdicts = []
    if full in med and all(n in med for n in estimators):
        verdicts.append(Verdict("Fig. 7", "the merged estimator is at least as good as backprop alone and ES alone "
                                "(median final evaluation loss)", numbers([full, *estimators]),
                                med[full] <= min(med[n] for n in estimators)))
    if full in med and fixed:
        verdicts.append(Verdict("Fig. 7", "the curriculum beats every fixed inner-problem length",
                                numbers([full, *fixed]), all(med[full] < med[n] for n in fixed)))
    if len(features) > 1:
        worst = max(features, key=lambda n: med[n])
        verdicts.append(Verdict("Fig. 7", "removing the momentum features hurts most among the feature ablations",
                                numbers(features) + f"; worst: {worst}", worst in ("no momentum", "only grads")))
    return verdicts


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="the 2-core CPU sizes (offline, about 15 minutes)")
    p.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated subset of {', '.join(PARTS)}")
    p.add_argument("--out", type=Path, default=None, help="directory for the runs, figures and pathologies.json")
    p.add_argument("overrides", nargs="*", help="extra key=value overrides passed to every lopt command")
    a = p.parse_args(argv)
    parts = [x.strip() for x in a.parts.split(",") if x.strip()]
    unknown = sorted(set(parts) - set(PARTS))
    if unknown or not parts:
        p.error(f"--parts {a.parts!r}: unknown {unknown or 'empty'}; valid parts: {', '.join(PARTS)}")
    scale = QUICK if a.quick else FULL
    out = a.out or Path("outputs/pathologies") / datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    out.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {"paper": PAPER, "quick": a.quick, "scale": scale.__dict__ | {"grid": list(scale.grid)},
                              "overrides": a.overrides, "figures": [], "verdicts": []}
    verdicts = []
    if "fig3" in parts:
        result["fig3"] = two_minima_sweep(scale, a.overrides)
        plot_two_minima(result["fig3"], out / "fig3_two_minima.png", out)
        result["figures"].append("fig3_two_minima.png")
        verdicts.append(landscape_verdict(result["fig3"]))
    if "fig4" in parts:
        result["fig4"] = truncation_bias(scale, out, a.overrides)
        result["fig4"]["gradients"] = truncation_gradients(scale, result["fig4"]["grid_best_lr"], a.overrides)
        plot_truncation_bias(result["fig4"], result["fig4"]["gradients"], out / "fig4_truncation_bias.png", out)
        result["figures"].append("fig4_truncation_bias.png")
        verdicts.append(bias_verdict(result["fig4"]))
    if "fig5a" in parts:
        result["fig5a"] = estimator_variance(scale, out, a.overrides)
        plot_variance(result["fig5a"], out / "fig5a_estimator_variance.png", out)
        result["figures"].append("fig5a_estimator_variance.png")
        verdicts.append(variance_verdict(result["fig5a"]))
    if "fig7" in parts:
        result["fig7"] = ablation(scale, out, a.overrides)
        plot_ablation(result["fig7"], out / "fig7_ablation.png", out)
        result["figures"].append("fig7_ablation.png")
        verdicts.extend(ablation_verdicts(result["fig7"]))
    return finish(out / "pathologies.json", result, verdicts)


if __name__ == "__main__":
    main()
