"""Reproduce Figure 2 of Metz, Freeman, Maheswaranathan and Sohl-Dickstein (2021), "Training learned
optimizers with randomly initialized learned optimizers", arXiv:2101.07367, at CPU scale: a population
of randomly initialized learned optimizers that train each other (PBT), each member's evaluation
score (population.score) over outer-training time, beside Adam at fixed learning rates (dashed blue) and
per-task tuned Adam (black).

Drives the `lopt` commands a user would type, each writing its own run directory under --out:
  1. lopt meta-train +experiment=population_self_training                       -> population/
     (--quick: outer_iterations=400 eval.every=10 population.exploit_every=20 on top)
  2. with --control, the same with population.outer=adam_clip                   -> control/
     (the hand-designed control: the same machinery, every member trained by Adam with clipping)
  3. lopt evaluate suite=<the population's evaluation suite> suite_tasks=[...] optimizer=adam tuned=grid
     (per-task tuned Adam: each task at the best learning rate of its stored baseline)  -> adam_tuned/
  4. lopt evaluate ... optimizer=adam --multirun optimizer.lr=<the suite's half-decade lr_range grid>
     (Adam at fixed learning rates, one job per lr)                            -> adam_fixed/<job>/
Steps 3 and 4 use the population's in-run evaluation settings, so their numbers are the members'
points' numbers for Adam: the same evaluation tasks at their suite lengths, `seed`, `eval.num_seeds`
(drawn from the evaluation seed stream, never the baselines'), `eval.smoothing`, and the same stored
tuned baselines (`eval.baselines.*`, made by the population run itself with run_missing=true). Each
reference's score is, as the population's `eval/population/<population.score>` is, the mean over the
evaluation tasks of that per-task score from its suite.json (default log_relative_loss = log(final /
initial training loss), which needs no baseline, lopt.evaluation.baseline_free; with
population.score=normalized_loss, (final - best tuned Adam) / (initial - best), clipped to [0, 1]).

Then draws self_training.png (Figure 2: each member's score over outer-training time, in minutes of the
population run's time/wall_s, which starts before the first outer iteration compiles and includes any
recompilation; beside it the same over outer iterations), writes self_training.json and prints one
verdict line each:
  (a) the population's best member at the last evaluation vs the best fixed-learning-rate Adam (with
      when the population's best first reached it, and its best at any evaluation);
  (b) ... vs per-task tuned Adam;
  (c) whether the improvement rate rises: the population's best score (best member at each
      evaluation) over [t_first, t_last], the times of the first and last evaluations, split at the
      midpoint t_mid (score there linearly interpolated); the improvement per minute in the first half
      (score(t_first) - score(t_mid)) / (t_mid - t_first) vs the second half's
      (score(t_mid) - score(t_last)) / (t_last - t_mid). It rises when the second is larger. The time
      before the first evaluation (mostly compilation) is left out. When the best evaluation came
      before the last, the same up to it is added (improvement_rate.until_best);
  (d) with --control: self-training's best final score vs the adam_clip control's.
A population run that stops early (e.g. every member's losses non-finite for max_nonfinite_iterations)
is a result, not a failure: its evaluations up to then are used, and the verdicts say where it stopped.

    python scripts/reproduce_self_training.py                  # the preset: 1000 outer iterations, exploits every 50
    python scripts/reproduce_self_training.py --quick          # about 10 minutes on a 2-core CPU (cold caches)
    python scripts/reproduce_self_training.py --quick --control   # and the adam_clip control: about 4 minutes more
    python scripts/reproduce_self_training.py --quick lopt.step_mult=0.003   # overrides go to meta-train

Trailing key=value overrides go to the meta-train runs; the evaluation settings above reach the
evaluate runs through the composed meta-train config, and overrides of data.*, tracking.*,
distributed.* and (when the population evaluates its training suite) suite.* are passed to them too.
"""
import argparse
import json
import sys
import textwrap
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import OmegaConf

from lopt import figures
from lopt.evaluation.baseline_free import task_score
from lopt.evaluation.periodic import HIGHER_IS_BETTER
from lopt.io.results import pyplot, read_jsonl, save_figure, write_json
from lopt.training.sweep import half_decade_grid
from lopt_cli.reproduction import SHARED_NODES, compose_config, forwarded, override_key, run_lopt

SCRIPT = "reproduce_self_training"
PRESET = "population_self_training"  # meta-train's +experiment= (conf/experiment/)
QUICK = ["outer_iterations=400", "eval.every=10", "population.exploit_every=20"]  # measured: ~10 min in all
CONTROL = "adam_clip"  # population.outer of the hand-designed control
KEY_PREFIX = "eval/population/"  # a population member's evaluation record carries eval/population/<score>


def _lopt(command: str, run_dir: Path, overrides: list[str], multirun: bool = False,
          may_stop: bool = False) -> tuple[float, str | None]:
    """Run one lopt command into `run_dir`: its wall time and, for a population run (`may_stop`) that
    failed after logging evaluations (e.g. stopped because every member's losses went non-finite),
    its error: what it logged is the result. Any other failure stops the script."""
    def evaluated(run: Path) -> bool:
        return any(k.startswith(KEY_PREFIX) for r in read_jsonl(run / "members" / "0" / "metrics.jsonl") for k in r)

    return run_lopt(SCRIPT, command, run_dir, overrides, multirun, evaluated if may_stop else None)


def _evaluation_suite(cfg: Any) -> tuple[str, list[str], bool]:
    """The suite the population's members are evaluated on, its tasks (empty: all) and whether it is
    the meta-training suite. The references are evaluated by `lopt evaluate suite=...`, which
    evaluates one suite: the population must evaluate exactly one (eval.training_tasks or eval.suite)."""
    e = cfg.eval
    if e.training_tasks and e.suite is None and not e.tasks:
        return str(cfg.suite.name), list(cfg.suite_tasks), True
    if e.suite is not None and not e.training_tasks and not e.tasks:
        return str(e.suite), [], False
    sys.exit("reproduce_self_training: the Adam references are evaluated with `lopt evaluate suite=...`, one suite: "
             "evaluate the population on its training suite (eval.training_tasks=true) or on eval.suite alone, "
             "without eval.tasks.")


def _forwarded(overrides: list[str], training_suite: bool) -> list[str]:
    """The overrides that also apply to `lopt evaluate`: those of the nodes both commands have (and of
    the suite's settings, not its choice, when the evaluation suite is the meta-training suite)."""
    nodes = (*SHARED_NODES, "suite") if training_suite else SHARED_NODES
    return [o for o in forwarded(overrides, nodes) if override_key(o) != "suite"]


def _population(run_dir: Path, size: int, score: str, tasks: list[str], sign: float,
                stopped: str | None) -> dict[str, Any]:
    """Every member's evaluations (outer iteration, minutes, score) and, per evaluation, the best
    member's; checked to carry every evaluation task's score. `stopped`: the run's error when it
    stopped early."""
    key = f"eval/population/{score}"
    members: list[dict[str, Any]] = []
    for i in range(size):
        rows = [r for r in read_jsonl(run_dir / "members" / str(i) / "metrics.jsonl") if key in r]
        for r in rows:
            missing = [t for t in tasks if f"eval/{t}/{score}" not in r]
            if missing:
                sys.exit(f"reproduce_self_training: {run_dir}/members/{i} has no eval/<task>/{score} for "
                         f"{', '.join(missing)}: its evaluation tasks are not the references'.")
        members.append({"outer_iteration": [int(r["outer_iteration"]) for r in rows],
                        "minutes": [r["time/wall_s"] / 60 for r in rows], "score": [float(r[key]) for r in rows],
                        "per_task": {t: [float(r[f"eval/{t}/{score}"]) for r in rows] for t in tasks}})
    iterations = sorted(set.intersection(*(set(m["outer_iteration"]) for m in members)))
    best: dict[str, list[Any]] = {"outer_iteration": [], "minutes": [], "score": [], "member": []}
    for it in iterations:
        at = [(m["score"][m["outer_iteration"].index(it)], m["minutes"][m["outer_iteration"].index(it)], i)
              for i, m in enumerate(members)]
        finite = [a for a in at if np.isfinite(a[0])] or at
        value, _, who = min(finite, key=lambda a: sign * a[0])
        best["outer_iteration"].append(it)
        best["minutes"].append(max(a[1] for a in at))
        best["score"].append(value)
        best["member"].append(who)
    if not iterations:
        sys.exit(f"reproduce_self_training: {run_dir} has no evaluation records ({key}): is eval.every > 0?")
    final = {"outer_iteration": iterations[-1], "minutes": best["minutes"][-1], "best_member": best["member"][-1],
             "score": best["score"][-1], "per_member": [m["score"][-1] for m in members]}
    k = min(range(len(iterations)), key=lambda j: sign * best["score"][j])  # the first of the best
    best_ever = {"outer_iteration": iterations[k], "minutes": best["minutes"][k], "member": best["member"][k],
                 "score": best["score"][k]}
    logged = read_jsonl(run_dir / "metrics.jsonl")
    return {"run_dir": str(run_dir), "stopped_early": stopped,
            "last_outer_iteration": int(logged[-1]["outer_iteration"]) if logged else None,
            "members": members, "best": best, "final": final, "best_ever": best_ever,
            "events": read_jsonl(run_dir / "events.jsonl")}


def _reference(run_dir: Path, score: str, tasks: list[str]) -> dict[str, Any]:
    """A suite evaluation's score as the population's: the mean over the tasks of the per-task score
    (the same tasks the members were scored on)."""
    doc = json.loads((run_dir / "suite.json").read_text())
    if sorted(doc["tasks"]) != sorted(tasks):
        sys.exit(f"reproduce_self_training: {run_dir}/suite.json evaluated {sorted(doc['tasks'])}, the population "
                 f"{sorted(tasks)}.")
    per_task = {t: task_score(doc["tasks"][t], score) for t in tasks}
    return {"label": doc["label"], "score": float(np.mean(list(per_task.values()))), "per_task": per_task,
            "best_lr_per_task": {t: doc["tasks"][t]["baseline"]["best_lr"] for t in tasks},
            "num_seeds": doc["num_seeds"], "run_dir": str(run_dir)}


def _fixed(sweep_dir: Path, score: str, tasks: list[str]) -> list[dict[str, Any]]:
    """Every job of the fixed-learning-rate sweep, by learning rate."""
    out = []
    for job in sorted(p for p in sweep_dir.iterdir() if (p / "suite.json").is_file()):
        ref = _reference(job, score, tasks)
        lr = float(OmegaConf.load(job / "config.yaml").optimizer.lr)
        out.append({"lr": lr, **{k: ref[k] for k in ("label", "score", "per_task", "run_dir")}})
    return sorted(out, key=lambda r: r["lr"])


def _until_best(rate: dict[str, Any], pop: dict[str, Any]) -> str:
    """The improvement rates up to the population's best evaluation, when that is before its last."""
    if pop["best_ever"]["outer_iteration"] == pop["final"]["outer_iteration"] or rate["rising"] is None:
        return ""
    return (f" (up to its best evaluation, {rate['t_first_min']:.1f}-{rate['t_last_min']:.1f} min: "
            f"{rate['first_half_per_min']:.4f}/min then {rate['second_half_per_min']:.4f}/min, "
            f"{'rising' if rate['rising'] else 'not rising'})")


def _stop_note(run: dict[str, Any], outer_iterations: int) -> str:
    """", the run stopped early at outer iteration N of M: <why>" when it did."""
    if run["stopped_early"] is None:
        return ""
    return (f"; the run stopped early at outer iteration {run['last_outer_iteration']} of {outer_iterations}: "
            f"{_why(run['stopped_early'])}")


def _why(error: str) -> str:
    """The reason in a lopt error ("Meta-training stopped at ...: <reason>, so ..."), else all of it."""
    return (error.partition(": ")[2] or error).split(", so ")[0].split(". ")[0]


def _crossing(best: dict[str, list[Any]], level: float, sign: float) -> float | None:
    """Minutes at the first evaluation where the population's best is at least as good as `level`."""
    for minutes, value in zip(best["minutes"], best["score"]):
        if sign * value <= sign * level:
            return minutes
    return None


def _improvement_rate(best: dict[str, list[Any]], sign: float) -> dict[str, Any]:
    """The best score's improvement per minute in the first and second half of [t_first, t_last]
    (module docstring, verdict (c))."""
    t, s = np.asarray(best["minutes"], float), np.asarray(best["score"], float)
    if len(t) < 3 or t[-1] <= t[0]:
        return {"evaluations": len(t), "rising": None}
    mid = (t[0] + t[-1]) / 2
    s_mid = float(np.interp(mid, t, s))
    first = sign * (s[0] - s_mid) / (mid - t[0])
    second = sign * (s_mid - s[-1]) / (t[-1] - mid)
    return {"evaluations": len(t), "t_first_min": float(t[0]), "t_mid_min": float(mid), "t_last_min": float(t[-1]),
            "score_first": float(s[0]), "score_mid": s_mid, "score_last": float(s[-1]),
            "first_half_per_min": float(first), "second_half_per_min": float(second),
            "rising": bool(second > first)}


def _plot(pop: dict[str, Any], fixed: list[dict[str, Any]], tuned: dict[str, Any], control: dict[str, Any] | None,
          score: str, reference: str, path: Path, run: Path, detail: str) -> None:
    """Figure 2: every member's score over outer-training time (left; the paper's axis) and over
    outer iterations (right; free of the compilation time in the wall clock), in colors; the
    fixed-learning-rate references (dashed blue, darker for larger learning rates), tuned per task
    (black), and the control's best member (dotted gray) when it ran."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(15, 5.8), sharey=True)
    colors = plt.get_cmap("tab10")
    blues = plt.get_cmap("Blues")(np.linspace(0.35, 1.0, max(len(fixed), 1)))
    shown = [v for m in pop["members"] for v in m["score"]] + [r["score"] for r in fixed] + [tuned["score"]]
    shown += [] if control is None else control["best"]["score"]
    for ax, x, label in [(axes[0], "minutes", "outer-training time (min, each run's own wall clock)"),
                         (axes[1], "outer_iteration", figures.OUTER_STEP_LABEL)]:
        for i, m in enumerate(pop["members"]):
            ax.plot(m[x], m["score"], "o-", ms=2.5, lw=1.2, color=colors(i % 10), label=f"member {i}")
        ends = [m[x][-1] for m in pop["members"] if m[x]]
        if control is not None:
            b = control["best"]
            ax.plot(b[x], b["score"], ":", color="0.35", lw=2,
                    label=f"control ({CONTROL} outer optimizer): best member")
            ends.append(b[x][-1])
        for color, r in zip(blues, fixed):
            ax.axhline(r["score"], ls="--", lw=1.1, color=color,
                       label=f"{reference} lr={r['lr']:.3g} ({r['score']:.3g})")
        ax.axhline(tuned["score"], color="k", lw=2, label=f"{reference} tuned per task ({tuned['score']:.3g})")
        ax.set_xlim(0, max(ends, default=1.0) * 1.02)
        ax.set_xlabel(label)
        ax.grid(True, which="major", alpha=0.3)
    figures.log_scale_if_positive(axes[0], shown)
    axes[0].set_ylabel(f"mean {score} over the evaluation tasks" +
                       ("\n(lower is better)" if score not in HIGHER_IS_BETTER else ""))
    figures.legend_outside(axes[1], title=f"{len(pop['members'])} self-trained members; {reference} references")
    title = figures.title("population self-training", run, detail)
    fig.suptitle("\n".join(textwrap.fill(line, 150) for line in title.splitlines()), fontsize=10)
    save_figure(fig, path)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help=f"CPU-sized: {' '.join(QUICK)} on top of the preset")
    p.add_argument("--control", action="store_true",
                   help=f"also run the hand-designed control, population.outer={CONTROL} (same settings otherwise)")
    p.add_argument("--lrs", type=lambda v: [float(x) for x in v.split(",")], default=None,
                   help="the fixed learning rates, comma-separated (default: the half-decade grid over the "
                        "evaluation suite's lr_range, 1e-4,3e-4,...,1 for offline_small)")
    p.add_argument("--out", type=Path, default=None, help="directory for the runs, the figure and the JSON")
    p.add_argument("overrides", nargs="*", help="extra key=value overrides for the meta-train runs")
    a = p.parse_args(argv)
    meta = [f"+experiment={PRESET}", *(QUICK if a.quick else []), *a.overrides]
    cfg = compose_config(SCRIPT, "meta-train", meta)
    if cfg.get("population") is None:
        sys.exit("reproduce_self_training: the overrides leave no population (population=null).")
    suite, suite_tasks, training_suite = _evaluation_suite(cfg)
    e, pop_cfg = cfg.eval, cfg.population
    score, sign = str(pop_cfg.score), (-1.0 if str(pop_cfg.score) in HIGHER_IS_BETTER else 1.0)
    reference = str(e.baselines.optimizer)
    suite_cfg = cfg.suite if training_suite else compose_config(SCRIPT, "evaluate", [f"suite={suite}"]).suite
    tasks = suite_tasks or list(suite_cfg.tasks)
    lrs = a.lrs or list(half_decade_grid(*suite_cfg.lr_range))
    out = a.out or Path("outputs/self_training") / datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    out.mkdir(parents=True, exist_ok=True)
    evaluate = [f"suite={suite}", *([f"suite_tasks=[{','.join(suite_tasks)}]"] if suite_tasks else []),
                f"seed={cfg.seed}", f"num_seeds={e.num_seeds}", f"smoothing={e.smoothing}",
                f"baselines.dir={e.baselines.dir}", f"baselines.optimizer={reference}",
                f"baselines.search={e.baselines.search}", f"baselines.horizon_mult={e.baselines.horizon_mult}",
                "baselines.run_missing=true",  # the population's score may need none: the references sweep them
                f"optimizer={reference}", *_forwarded(a.overrides, training_suite)]

    wall, stopped = {}, {}
    wall["population"], stopped["population"] = _lopt("meta-train", out / "population", meta, may_stop=True)
    if a.control:
        wall["control"], stopped["control"] = _lopt("meta-train", out / "control",
                                                    [*meta, f"population.outer={CONTROL}"], may_stop=True)
    wall["adam_tuned"], _ = _lopt("evaluate", out / "adam_tuned", [*evaluate, f"tuned={e.baselines.search}"])
    wall["adam_fixed"], _ = _lopt("evaluate", out / "adam_fixed",
                                  [*evaluate, f"optimizer.lr={','.join(f'{lr:.6g}' for lr in lrs)}"], multirun=True)

    size = int(pop_cfg.size)
    pop = _population(out / "population", size, score, tasks, sign, stopped["population"])
    control = _population(out / "control", size, score, tasks, sign, stopped["control"]) if a.control else None
    tuned = _reference(out / "adam_tuned", score, tasks)
    fixed = _fixed(out / "adam_fixed", score, tasks)
    if len(fixed) != len(lrs):
        sys.exit(f"reproduce_self_training: {out / 'adam_fixed'} holds {len(fixed)} evaluations, not {len(lrs)}.")
    best_fixed = min(fixed, key=lambda r: sign * r["score"])
    rate = _improvement_rate(pop["best"], sign)
    k = pop["best"]["outer_iteration"].index(pop["best_ever"]["outer_iteration"]) + 1
    rate["until_best"] = _improvement_rate({key: v[:k] for key, v in pop["best"].items()}, sign)
    final = pop["final"]

    def better(x: float, y: float) -> bool:
        return bool(sign * x < sign * y)

    verdicts = {"beats_best_fixed_lr": better(final["score"], best_fixed["score"]),
                "beats_tuned": better(final["score"], tuned["score"]), "rate_rises": rate["rising"]}
    if control is not None:
        verdicts["beats_control"] = better(final["score"], control["final"]["score"])
    detail = (f"{size} {cfg.lopt.name} members training each other, {cfg.outer_iterations} outer iterations; "
              f"evaluated on {', '.join(tasks)}\n"
              f"{reference} references on the same tasks and {e.num_seeds} evaluation seeds (seed={cfg.seed})"
              + ("" if pop["stopped_early"] is None else
                 f"\nthe run stopped at outer iteration {pop['last_outer_iteration']}: {_why(pop['stopped_early'])}"))
    _plot(pop, fixed, tuned, control, score, reference, out / "self_training.png", out, detail)

    word = "below" if sign > 0 else "above"
    where = (f"the population's best member at the end (member {final['best_member']}, outer iteration "
             f"{final['outer_iteration']}, {final['minutes']:.1f} min{_stop_note(pop, cfg.outer_iterations)})")
    ever = pop["best_ever"]
    peak = (f"; its best at any evaluation {ever['score']:.4f}, at outer iteration {ever['outer_iteration']}, "
            f"{ever['minutes']:.1f} min")
    crossed_fixed, crossed_tuned = (_crossing(pop["best"], best_fixed["score"], sign),
                                    _crossing(pop["best"], tuned["score"], sign))

    def when(minutes: float | None) -> str:
        return "never reached during the run" if minutes is None else f"first reached at {minutes:.1f} min"

    def answer(yes: bool) -> str:
        return f"YES, {word}" if yes else f"NO, not {word}"

    lines = [
        f"verdict (a): {where} scores {final['score']:.4f} {score}: {answer(verdicts['beats_best_fixed_lr'])} "
        f"the best fixed-learning-rate {reference} (lr={best_fixed['lr']:.3g}: {best_fixed['score']:.4f}; "
        f"{when(crossed_fixed)}{peak}).",
        f"verdict (b): {where} scores {final['score']:.4f}: {answer(verdicts['beats_tuned'])} per-task tuned "
        f"{reference} ({tuned['score']:.4f}; {when(crossed_tuned)}{peak}).",
    ]
    if rate["rising"] is None:
        lines.append(f"verdict (c): too few evaluations ({rate['evaluations']}) to compare improvement rates.")
    else:
        lines.append(
            f"verdict (c): the population's best improves {rate['first_half_per_min']:.4f}/min in the first half "
            f"({rate['t_first_min']:.1f}-{rate['t_mid_min']:.1f} min: {rate['score_first']:.4f} -> "
            f"{rate['score_mid']:.4f}) and {rate['second_half_per_min']:.4f}/min in the second "
            f"({rate['t_mid_min']:.1f}-{rate['t_last_min']:.1f} min: -> {rate['score_last']:.4f}): "
            f"{'YES, the rate rises' if rate['rising'] else 'NO, the rate does not rise'}"
            + _until_best(rate["until_best"], pop) + ".")
    if control is not None:
        c = control["final"]
        lines.append(
            f"verdict (d): self-training's best final {score} {final['score']:.4f} vs the {CONTROL} control's "
            f"{c['score']:.4f} (member {c['best_member']}, outer iteration {c['outer_iteration']}, {c['minutes']:.1f} "
            f"min{_stop_note(control, cfg.outer_iterations)}; best at any evaluation "
            f"{control['best_ever']['score']:.4f}): "
            f"{'YES, self-training is better' if verdicts['beats_control'] else 'NO, self-training is not better'}.")

    result = {
        "paper": "Metz, Freeman, Maheswaranathan, Sohl-Dickstein (2021), Training learned optimizers with randomly "
                 "initialized learned optimizers, arXiv:2101.07367, Figure 2",
        "preset": PRESET, "quick": a.quick, "meta_train_overrides": meta, "evaluate_overrides": evaluate,
        "lopt": cfg.lopt.name, "population_size": size, "outer_iterations": int(cfg.outer_iterations),
        "num_tasks": int(cfg.num_tasks), "eval_every": int(e.every), "exploit_every": int(pop_cfg.exploit_every),
        "trunc_lengths": list(pop_cfg.trunc_lengths), "suite": suite, "tasks": tasks, "seed": int(cfg.seed),
        "num_seeds": int(e.num_seeds), "score": score, "lower_is_better": sign > 0, "reference": reference,
        "config": OmegaConf.to_container(cfg.population, resolve=True),
        "population": pop, "control": control,
        "adam_tuned": tuned, "adam_fixed": fixed, "best_fixed": best_fixed,
        "crossed_best_fixed_min": crossed_fixed, "crossed_tuned_min": crossed_tuned,
        "improvement_rate": rate, "verdicts": verdicts, "verdict_lines": lines,
        "wall_s": wall, "figures": [f for f in ("self_training.png", "population/population.png",
                                                "control/population.png") if (out / f).is_file()],
    }
    write_json(out / "self_training.json", result)
    print(f"\nResults in {out} (self_training.json, self_training.png).")
    for line in lines:
        print(line)


if __name__ == "__main__":
    main()
