"""Reproduce the VeLOdrome-style summary of Metz et al. (2022), "VeLO: Training versatile learned
optimizers by scaling up" (arXiv:2211.09760), at small scale, with a verdict.

Drives the `lopt` commands a user would type, each writing its own run directory under --out:
  1. lopt meta-train +experiment=velo_families   (the hypernetwork learned optimizer, antithetic ES
     over full-length unrolls, per-task gradient normalization, VeLO's fraction-of-training
     features, on the MLP and quadratic task families; --quick: fewer, shorter iterations)
  2. per evaluation suite (--quick: offline_small; full: offline_small and offline_heldout), the
     trained theta, untuned:
       lopt evaluate suite=<suite> theta=<1>                       scored against learning-rate-tuned Adam
       lopt evaluate suite=<suite> theta=<1> baselines.optimizer=nadamw   ... and learning-rate-tuned NAdamW
     (the baselines are swept where missing: a half-decade learning-rate grid per task)
With --theta (a run directory or `pretrained:<name>`, e.g. the shipped
`pretrained:generalize_offline`), step 1 is skipped and that theta is scored instead.
Then draws velodrome.png (the paper's summary: per task, the speedup over each tuned baseline,
sorted, on a log axis), writes velo.json and prints the verdict: the fraction of tasks on which the
learned optimizer, without any tuning, ends below learning-rate-tuned Adam (the paper: VeLO beats
every learning-rate-tuned optimizer on every VeLOdrome problem).

    python scripts/reproduce_velo.py --quick          # the 2-core CPU, offline
    python scripts/reproduce_velo.py                  # the preset's 1000 outer iterations, two suites
    python scripts/reproduce_velo.py --quick outer_iterations=50 tracking.mode=disabled
    python scripts/reproduce_velo.py --quick --theta pretrained:generalize_offline   # a shipped optimizer

Trailing key=value overrides go to meta-train; those of data.*, tracking.* and distributed.* go to
the evaluations too.
"""
import argparse
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from lopt import figures
from lopt.io.results import pyplot, save_figure, write_json
from lopt_cli.reproduction import Verdict, compose_config, forwarded, run_lopt

SCRIPT = "reproduce_velo"
PRESET = "velo_families"
QUICK = ["outer_iterations=150", "num_tasks=4", "schedule.low=50", "schedule.high=200", "log_every=10",
         "checkpoint_every=0"]  # measured: 13 minutes on the 2-core CPU with both evaluations
SUITES = {True: ("offline_small",), False: ("offline_small", "offline_heldout")}
BASELINES = ("adam", "nadamw")
PAPER = "Metz et al. (2022), VeLO: Training versatile learned optimizers by scaling up (arXiv:2211.09760)"


def task_scores(suite_json: Path) -> dict[str, dict[str, Any]]:
    """Per task of an evaluated suite: its speedup over the tuned baseline, loss ratio, whether it
    ends below the baseline's best loss."""
    doc = json.loads(suite_json.read_text())
    return {name: {k: r["scores"][k] for k in ("speedup_over_adam", "loss_ratio", "beats_adam", "final_loss",
                                               "best_adam_loss")} | {"best_lr": r["baseline"]["best_lr"]}
            for name, r in doc["tasks"].items()}


def plot_velodrome(scores: dict[str, dict[str, dict[str, Any]]], path: Path, out: Path,
                   optimizer: str = "the meta-trained hypernetwork") -> None:
    """Per baseline, every task's speedup (sorted), 1 marked: VeLO's summary figure for `optimizer`."""
    plt = pyplot()
    fig, axes = plt.subplots(1, len(scores), figsize=(7 * len(scores), 5), squeeze=False)
    for ax, (baseline, per_task) in zip(axes[0], scores.items()):
        ordered = sorted(per_task.items(), key=lambda kv: kv[1]["speedup_over_adam"])
        values = [max(v["speedup_over_adam"], 1e-3) for _, v in ordered]
        colors = ["seagreen" if v["beats_adam"] else "indianred" for _, v in ordered]
        ax.bar(range(len(ordered)), values, color=colors)
        ax.axhline(1.0, color="k", linestyle="--", linewidth=1, label=f"learning-rate-tuned {baseline}")
        ax.set_yscale("log")
        ax.set_xticks(range(len(ordered)), [k for k, _ in ordered], rotation=40, ha="right", fontsize=8)
        ax.set_ylabel(f"speedup over tuned {baseline}\n({baseline}'s steps / the learned optimizer's, same loss)")
        ax.set_title(f"vs {baseline}: green ends below its best loss, red does not")
        ax.legend(loc="upper left")
    fig.suptitle(figures.title("velo_families", out, f"VeLO summary figure (Metz et al. 2022): {optimizer}, "
                                                     "untuned, per task"))
    fig.tight_layout(rect=(0, 0, 1, 0.9))  # room for the two-line title
    save_figure(fig, path)


def verdict(adam: dict[str, dict[str, Any]]) -> Verdict:
    wins = sorted(n for n, s in adam.items() if s["beats_adam"])
    fraction = len(wins) / len(adam)
    measured = (f"beats learning-rate-tuned Adam on {len(wins)} of {len(adam)} tasks ({fraction:.0%}: "
                f"{', '.join(wins) or 'none'}); median speedup "
                f"{float(np.median([s['speedup_over_adam'] for s in adam.values()])):.3g}")
    return Verdict("VeLO §5 / VeLOdrome", "the learned optimizer, without tuning, beats learning-rate-tuned Adam on "
                   "every task", measured, fraction == 1.0)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="the 2-core CPU sizes (offline)")
    p.add_argument("--out", type=Path, default=None, help="directory for the runs, velodrome.png and velo.json")
    p.add_argument("--theta", default=None,
                   help="score this theta (a run directory or pretrained:<name>) instead of meta-training one")
    p.add_argument("--baselines", type=Path, default=None,
                   help="the tuned baselines' directory (default <out>/baselines; missing ones are swept)")
    p.add_argument("--horizon-mult", type=int, default=None,
                   help="the baselines' horizon multiple (default: evaluate's, 10)")
    p.add_argument("overrides", nargs="*", help="extra key=value overrides (meta-train; data/tracking to all)")
    a = p.parse_args(argv)
    meta = [f"+experiment={PRESET}", *(QUICK if a.quick else []), *a.overrides]
    cfg = compose_config(SCRIPT, "meta-train", meta)
    out = a.out or Path("outputs/velo") / datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    out.mkdir(parents=True, exist_ok=True)
    if a.theta is None:
        wall = {"meta-train": run_lopt(SCRIPT, "meta-train", out / "meta", meta)[0]}
        theta, name, iterations = str(out / "meta"), str(cfg.lopt.name), int(cfg.outer_iterations)
    else:  # the architecture comes with the theta; the preset's meta-training is not run
        wall, theta, name, iterations = {}, a.theta, a.theta, None
    horizon = [] if a.horizon_mult is None else [f"baselines.horizon_mult={a.horizon_mult}"]
    evaluate = [f"theta={theta}", f"seed={cfg.seed}", f"baselines.dir={a.baselines or out / 'baselines'}",
                "baselines.run_missing=true", *horizon, *forwarded(a.overrides)]
    scores: dict[str, dict[str, dict[str, Any]]] = {b: {} for b in BASELINES}
    for suite in SUITES[a.quick]:
        for baseline in BASELINES:
            run_dir = out / f"{suite}_vs_{baseline}"
            args = [f"suite={suite}", f"baselines.optimizer={baseline}", *evaluate]
            wall[run_dir.name] = run_lopt(SCRIPT, "evaluate", run_dir, args)[0]
            scores[baseline].update({f"{suite}/{k}": v for k, v in task_scores(run_dir / "suite.json").items()})
    plot_velodrome(scores, out / "velodrome.png", out, *([] if a.theta is None else [a.theta]))
    v = verdict(scores["adam"])
    result = {"paper": PAPER, "preset": None if a.theta else PRESET, "quick": a.quick,
              "meta_train_overrides": None if a.theta else meta, "theta": theta, "lopt": name,
              "outer_iterations": iterations, "suites": list(SUITES[a.quick]),
              "scores": scores, "fraction_beating": {b: float(np.mean([s["beats_adam"] for s in scores[b].values()]))
                                                     for b in BASELINES},
              "verdicts": [v.to_json()], "wall_s": wall, "figures": ["velodrome.png"]}
    write_json(out / "velo.json", result)
    print("\n" + v.line())
    print(f"(vs learning-rate-tuned NAdamW: {result['fraction_beating']['nadamw']:.0%} of tasks.) Results in {out}.")
    return result


if __name__ == "__main__":
    main()
