"""The null of lopt's suite scores: a tuned hand-designed optimizer, evaluated on fresh seeds against
its own tuned baselines, must read as equal to them (speedup 1, loss ratio 1, beating them on half
the tasks). A score that reads otherwise would be measuring its own bias, not an optimizer.

Drives the `lopt` commands a user would type, each writing its own run directory under --out:
  per reference optimizer R (--quick: adam; full: adam and nadamw, each tuned over the learning rate)
    1. lopt baseline-sweep suite=offline_small optimizer=R          R's baselines (5 seeds of their own stream)
    2. lopt evaluate suite=offline_small optimizer=R tuned=grid baselines.optimizer=R
                                                                   R at each task's tuned rate, on the
                                                                   evaluation stream's seeds, scored against 1
Then prints, per reference, the IQM speedup, the IQM loss ratio and the win fraction with their
95% intervals, and one line `calibration (R): ... within tolerance` or `... OUT OF tolerance`:
within when the IQM speedup lies in [0.95, 1.05] and its interval covers 1, the loss-ratio
interval covers 1, and the win-fraction interval covers 0.5. Writes calibration.json.

    python scripts/calibrate_scores.py --quick        # the 2-core CPU, offline
    python scripts/calibrate_scores.py                # adam and nadamw, 10 evaluation seeds
    python scripts/calibrate_scores.py --quick baselines.horizon_mult=3 tracking.mode=disabled
    python scripts/calibrate_scores.py --quick --baselines outputs/baselines   # reuse baselines made before

Trailing key=value overrides go to every command (e.g. baselines.horizon_mult, smoothing, data.*).
"""
import argparse
import json
from datetime import datetime
from pathlib import Path
from typing import Any

from lopt.io.results import write_json
from lopt_cli.reproduction import run_lopt

SCRIPT = "calibrate_scores"
SUITE = "offline_small"
REFERENCES = {True: ("adam",), False: ("adam", "nadamw")}
NUM_SEEDS = {True: 5, False: 10}  # evaluation seeds per task
SPEEDUP_BAND = (0.95, 1.05)


def covers(stat: dict[str, Any], value: float) -> bool:
    """Whether the 95% interval of an aggregate (`{"value", "ci"}`) contains `value`."""
    ci = stat["ci"]
    return ci is not None and ci[0] <= value <= ci[1]


def check(aggregates: dict[str, Any]) -> dict[str, bool]:
    """Each tolerance of the null on a suite.json's aggregates."""
    speedup = aggregates["speedup_over_adam"]["iqm"]
    return {"iqm_speedup_in_band": SPEEDUP_BAND[0] <= speedup["value"] <= SPEEDUP_BAND[1],
            "speedup_interval_covers_1": covers(speedup, 1.0),
            "loss_ratio_interval_covers_1": covers(aggregates["loss_ratio"]["iqm"], 1.0),
            "win_fraction_interval_covers_half": covers(aggregates["win_fraction"], 0.5)}


def _text(stat: dict[str, Any]) -> str:
    ci = stat["ci"]
    return f"{stat['value']:.3f}" + ("" if ci is None else f" [{ci[0]:.3f}, {ci[1]:.3f}]")


def line(reference: str, aggregates: dict[str, Any], checks: dict[str, bool]) -> str:
    """The line printed per reference optimizer."""
    failed = [k for k, ok in checks.items() if not ok]
    outcome = "within tolerance" if not failed else f"OUT OF tolerance ({', '.join(failed)})"
    return (f"calibration ({reference}, tuned, fresh seeds, vs its own baselines): IQM speedup "
            f"{_text(aggregates['speedup_over_adam']['iqm'])}, IQM loss ratio "
            f"{_text(aggregates['loss_ratio']['iqm'])}, win fraction {_text(aggregates['win_fraction'])}: {outcome}")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="adam only, 5 evaluation seeds (the 2-core CPU)")
    p.add_argument("--suite", default=SUITE, help=f"the suite to calibrate on (default {SUITE})")
    p.add_argument("--out", type=Path, default=None, help="directory for the runs and calibration.json")
    p.add_argument("--baselines", type=Path, default=None,
                   help="use the baselines stored there (e.g. outputs/baselines) instead of sweeping them again")
    p.add_argument("overrides", nargs="*", help="extra key=value overrides for every command")
    a = p.parse_args(argv)
    out = a.out or Path("outputs/calibration") / datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    out.mkdir(parents=True, exist_ok=True)
    store = f"baselines.dir={a.baselines or out / 'baselines'}"
    wall: dict[str, float] = {}
    results: dict[str, Any] = {}
    for reference in REFERENCES[a.quick]:
        sweep_dir, eval_dir = out / f"sweep_{reference}", out / f"evaluate_{reference}"
        if a.baselines is None:
            wall[sweep_dir.name] = run_lopt(SCRIPT, "baseline-sweep", sweep_dir,
                                            [f"suite={a.suite}", f"optimizer={reference}", store, *a.overrides])[0]
        wall[eval_dir.name] = run_lopt(SCRIPT, "evaluate", eval_dir,
                                       [f"suite={a.suite}", f"optimizer={reference}", "tuned=grid",
                                        f"baselines.optimizer={reference}", f"num_seeds={NUM_SEEDS[a.quick]}", store,
                                        *a.overrides])[0]
        doc = json.loads((eval_dir / "suite.json").read_text())
        checks = check(doc["aggregates"])
        horizons = {r["baseline"]["horizon_mult"] for r in doc["tasks"].values()}
        results[reference] = {"aggregates": {k: doc["aggregates"][k] for k in ("speedup_over_adam", "loss_ratio",
                                                                               "win_fraction")},
                              "checks": checks, "within": all(checks.values()), "horizon_mult": sorted(horizons),
                              "smoothing": doc["smoothing"], "num_seeds": doc["num_seeds"],
                              "per_task": {t: r["scores"] for t, r in doc["tasks"].items()},
                              "line": line(reference, doc["aggregates"], checks)}
    result = {"suite": a.suite, "quick": a.quick, "overrides": a.overrides, "references": results, "wall_s": wall,
              "within": all(r["within"] for r in results.values())}
    write_json(out / "calibration.json", result)
    print()
    for r in results.values():
        print(r["line"])
    print(f"Results in {out}.")
    return result


if __name__ == "__main__":
    main()
