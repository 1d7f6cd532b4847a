"""Ablations of the meta-generalization recipe (experiment generalize_offline) on held-out tasks:
each ingredient removed from (or, where the recipe lacks it, added to) the recipe, meta-trained
with everything else equal, and scored on a suite that no meta-training or choice here saw
(`offline_heldout`) against its tuned-Adam baselines with the calibrated scores.

Per ablation, the commands a user would type, each into its own directory under --out:
  1. lopt meta-train +experiment=generalize_offline <the ablation's overrides>   (resumed when the
     directory holds checkpoints: the same command continues an interrupted run; skipped when it
     has finished)
  2. lopt evaluate suite=<suite> theta=<1> seed=<seed>   (no_meta_training: the recipe's
     architecture at its initial theta, nothing meta-trained)
then prints the table (IQM speedup over tuned Adam with its 95% interval, tasks beating tuned Adam,
the change from the recipe) and the verdict of the outcome target on the recipe's row: IQM speedup
at least 1.0 and at least 5 of 8 tasks beating tuned Adam. Writes ablations.json.

    python scripts/ablate_generalization.py --baselines outputs/baselines          # every ablation
    python scripts/ablate_generalization.py --only recipe,no_fraction_features --outer-iterations 1500
    python scripts/ablate_generalization.py --meta family.offline_family.num_variants=4 tracking.mode=disabled

Nothing here is selected on the suite: each run's final_theta/ is what is scored.
"""
import argparse
import json
from datetime import datetime
from pathlib import Path
from typing import Any

from lopt.evaluation.report import interval_text
from lopt_cli.reproduction import Verdict, compose_config, finish, run_lopt

SCRIPT = "ablate_generalization"
PRESET = "generalize_offline"
SUITE = "offline_heldout"
NO_META_TRAINING = "no_meta_training"
# name: (what changes from the recipe, the meta-train overrides that change it)
ABLATIONS: dict[str, tuple[str, list[str]]] = {
    "recipe": ("the recipe itself", []),
    "no_fraction_features": ("the MLP without the fraction-of-training features", ["lopt.fraction_features=false"]),
    "initial_rms_step": ("steps relative to each tensor's RMS at the start of training, not its current RMS",
                         ["lopt.step_scale=initial_rms"]),
    "no_relative_step": ("steps in the parameters' units, not relative to each tensor's RMS (step_mult 1e-3: "
                         "the recipe's first step on a weight of RMS 0.1)",
                         ["lopt.step_scale=none", "lopt.step_mult=0.001"]),
    "with_augmentation": ("Celo's reparameterization augmentation added (one scale per problem in [1e-3, 1e3])",
                          ["augment.level=global"]),
    "short_horizons": ("meta-training horizons 50-300 instead of 50-3000",
                       ["family.offline_family.horizon=[50,300]"]),
    "mlp_tasks_only": ("a task mix of MLPs on the labeled and tabular sets only (no convnets, autoencoders, LSTMs)",
                       ["family.offline_family.models=[mlp]",
                        "family.offline_family.datasets=[digits,mnist1d,breast_cancer,wine,diabetes]"]),
    "width_scaling": ("muLO's width scaling added: steps of tensors with fan-in above 64 shrink as 1/fan-in "
                      "(Therien et al. 2024, arXiv:2406.00153)", ["lopt.width_scaling=true"]),
    NO_META_TRAINING: ("the recipe's architecture at its initial theta (no meta-training)", []),
}
TARGET_SPEEDUP, TARGET_WINS = 1.0, 5  # the outcome target on offline_heldout's 8 tasks


def _override(value: Any) -> str:
    """A config value (a number, a bool, a list of numbers) in Hydra's override grammar."""
    return f"[{','.join(map(str, value))}]" if not isinstance(value, (int, float, str)) else str(value)


def _row(name: str, doc: dict[str, Any]) -> dict[str, Any]:
    speedup = doc["aggregates"]["speedup_over_adam"]["iqm"]
    wins = sum(bool(t["scores"]["beats_adam"]) for t in doc["tasks"].values())
    return {"ablation": name, "what": ABLATIONS[name][0], "iqm_speedup": speedup, "wins": wins,
            "num_tasks": len(doc["tasks"]), "per_task_speedup": {k: t["scores"]["speedup_over_adam"]
                                                                 for k, t in doc["tasks"].items()}}


def table(rows: list[dict[str, Any]]) -> str:
    """The ablation table of docs/generalization.md: one line per ablation, its change from the recipe's IQM."""
    base = next((r["iqm_speedup"]["value"] for r in rows if r["ablation"] == "recipe"), None)
    lines = ["| ablation | what changes | IQM speedup over tuned Adam [95% CI] | tasks beating tuned Adam | "
             "change from the recipe |", "|---|---|---|---|---|"]
    for r in rows:
        change = "" if base is None or r["ablation"] == "recipe" else f"{r['iqm_speedup']['value'] - base:+.3g}"
        lines.append(f"| `{r['ablation']}` | {r['what']} | {interval_text(r['iqm_speedup'])} | "
                     f"{r['wins']} of {r['num_tasks']} | {change} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", default=None, help=f"comma-separated ablations (default: all of {list(ABLATIONS)})")
    p.add_argument("--suite", default=SUITE, help=f"the held-out suite scored (default {SUITE})")
    p.add_argument("--seed", type=int, default=1, help="evaluation seed stream (default 1)")
    p.add_argument("--outer-iterations", type=int, default=None, help="meta-training length (default: the preset's)")
    p.add_argument("--baselines", type=Path, default=Path("outputs/baselines"),
                   help="the suite's tuned-Adam baselines (default outputs/baselines; missing ones are swept)")
    p.add_argument("--horizon-mult", type=int, default=None,
                   help="the baselines' horizon multiple (default: evaluate's, 10)")
    p.add_argument("--meta", action="append", default=[], help="an extra override of every meta-train run")
    p.add_argument("--eval", action="append", default=[], help="an extra override of every evaluation")
    p.add_argument("--out", type=Path, default=None, help="directory for the runs and ablations.json")
    p.add_argument("overrides", nargs="*", help="extra key=value overrides for every command (data, tracking)")
    a = p.parse_args(argv)
    names = list(ABLATIONS) if a.only is None else a.only.split(",")
    unknown = [n for n in names if n not in ABLATIONS]
    if unknown:
        p.error(f"--only {','.join(unknown)}: valid ablations are {', '.join(ABLATIONS)}")
    out = a.out or Path("outputs/ablations") / datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    out.mkdir(parents=True, exist_ok=True)
    sizes = [] if a.outer_iterations is None else [f"outer_iterations={a.outer_iterations}"]
    scoring = [f"suite={a.suite}", f"seed={a.seed}", f"baselines.dir={a.baselines}", "baselines.run_missing=true",
               *([] if a.horizon_mult is None else [f"baselines.horizon_mult={a.horizon_mult}"]), *a.eval]
    rows, wall = [], {}
    for name in names:
        meta_dir, eval_dir = out / name / "meta-train", out / name / "evaluate"
        if name == NO_META_TRAINING:  # the architecture as the recipe configures it, no theta: its init
            lopt = compose_config(SCRIPT, "meta-train", [f"+experiment={PRESET}", *a.meta, *a.overrides]).lopt
            learned = [f"lopt={lopt.name}", *(f"lopt.{k}={_override(v)}" for k, v in lopt.items() if k != "name")]
        else:
            if not (meta_dir / "final_theta").is_dir():
                wall[f"{name}/meta-train"] = run_lopt(SCRIPT, "meta-train", meta_dir, [
                    f"+experiment={PRESET}", *ABLATIONS[name][1], *sizes, *a.meta, *a.overrides])[0]
            learned = [f"theta={meta_dir}"]
        wall[f"{name}/evaluate"] = run_lopt(SCRIPT, "evaluate", eval_dir, [*learned, *scoring, *a.overrides])[0]
        rows.append(_row(name, json.loads((eval_dir / "suite.json").read_text())))
    print("\n" + table(rows))
    verdicts = [Verdict("outcome target", f"the recipe beats tuned Adam on {a.suite}: IQM speedup >= {TARGET_SPEEDUP} "
                        f"and >= {TARGET_WINS} tasks beating it",
                        f"IQM speedup {interval_text(r['iqm_speedup'])}, {r['wins']} of {r['num_tasks']} tasks",
                        r["iqm_speedup"]["value"] >= TARGET_SPEEDUP and r["wins"] >= TARGET_WINS)
                for r in rows if r["ablation"] == "recipe"]
    result = {"suite": a.suite, "seed": a.seed, "preset": PRESET, "rows": rows, "table": table(rows),
              "overrides": {"meta": a.meta, "eval": a.eval, "all": a.overrides, "sizes": sizes}, "wall_s": wall}
    return finish(out / "ablations.json", result, verdicts)


if __name__ == "__main__":
    main()
