"""Benchmark: the suite protocol end to end on one machine, from the command line.

Runs, each as the `lopt` command a user types (a fresh process, timed wall clock), into `--out`:
  1. `lopt baseline-sweep suite=S optimizer=adam`                      (tuned-Adam baselines)
  2. `lopt evaluate suite=S optimizer=adam tuned=grid`                 (tuned Adam itself: speedup ~1)
  3. `lopt evaluate suite=S optimizer=adam optimizer.lr=1e-3`          (Adam at a fixed 1e-3)
  4. `lopt baseline-sweep suite=S optimizer=nadamw sweep.num_samples=N` and
     `lopt evaluate suite=S optimizer=nadamw tuned=random`            (NAdamW tuned per task)
  5. `lopt meta-train` (the default recipe; or `--theta RUN` to reuse a run) and
     `lopt evaluate suite=S theta=<it>`                                (the learned optimizer)
then prints a table: each step's wall time, and each evaluation's IQM speedup over tuned Adam, IQM
final-loss ratio and fraction of tasks beating tuned Adam, with 95% stratified bootstrap intervals.
The last line printed is one JSON object.

    python scripts/bench_suite.py [--suite offline_small] [--nadamw-samples 20] [--theta RUN] [--out DIR]
"""
import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table


def lopt(*args: str, log: Path) -> float:
    """Run `lopt *args` (W&B off), its output to `log`; the wall seconds it took."""
    start = time.perf_counter()
    with open(log, "w", encoding="utf-8") as out:
        code = subprocess.call([sys.executable, "-m", "lopt_cli.main", *args, "tracking.mode=disabled"],
                               stdout=out, stderr=subprocess.STDOUT)
    if code:
        sys.exit(f"`lopt {' '.join(args)}` failed with exit status {code}; see {log}")
    return time.perf_counter() - start


def _interval(stat: dict[str, Any]) -> str:
    ci = stat["ci"]
    return f"{stat['value']:.3g}" + ("" if ci is None else f" [{ci[0]:.3g}, {ci[1]:.3g}]")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suite", default="offline_small")
    parser.add_argument("--nadamw-samples", type=int, default=20)
    parser.add_argument("--theta", default=None, help="a meta-train run to evaluate (default: run `lopt meta-train`)")
    parser.add_argument("--out", default="outputs/bench_suite")
    args = parser.parse_args()
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    store, suite = f"baselines.dir={out / 'baselines'}", f"suite={args.suite}"
    steps: list[dict[str, Any]] = []

    def step(name: str, *cmd: str, evaluation: bool = False) -> Path:
        run_dir = out / name
        seconds = lopt(*cmd, f"hydra.run.dir={run_dir}", log=out / f"{name}.log")
        row: dict[str, Any] = {"step": name, "command": "lopt " + " ".join(cmd), "seconds": round(seconds, 1)}
        if evaluation:
            doc = json.loads((run_dir / "suite.json").read_text())
            agg = doc["aggregates"]
            row.update(label=doc["label"], iqm_speedup=agg["speedup_over_adam"]["iqm"],
                       iqm_loss_ratio=agg["loss_ratio"]["iqm"], win_fraction=agg["win_fraction"])
        steps.append(row)
        Console().print(f"{name}: {seconds:.0f} s", highlight=False)
        return run_dir

    step("adam_baselines", "baseline-sweep", suite, "optimizer=adam", store)
    step("tuned_adam", "evaluate", suite, "optimizer=adam", "tuned=grid", store, evaluation=True)
    step("adam_1e-3", "evaluate", suite, "optimizer=adam", "optimizer.lr=1e-3", store, evaluation=True)
    step("nadamw_baselines", "baseline-sweep", suite, "optimizer=nadamw", f"sweep.num_samples={args.nadamw_samples}",
         store)
    step("tuned_nadamw", "evaluate", suite, "optimizer=nadamw", "tuned=random", store, evaluation=True)
    theta = args.theta or str(step("meta_train", "meta-train"))
    step("learned", "evaluate", suite, f"theta={theta}", store, evaluation=True)

    table = Table(title=f"suite {args.suite} on {os.cpu_count()} CPUs ({platform.machine()}): wall time and scores "
                        "against tuned Adam, value [95% interval]")
    for col in ("step", "seconds", "IQM speedup", "IQM loss ratio", "tasks beating tuned Adam"):
        table.add_column(col, justify="left" if col == "step" else "right")
    for r in steps:
        scores = [_interval(r[k]) for k in ("iqm_speedup", "iqm_loss_ratio", "win_fraction")] if "label" in r else []
        table.add_row(r.get("label", r["step"]), f"{r['seconds']:.0f}", *(scores or ["", "", ""]))
    Console().print(table)
    print(json.dumps({"suite": args.suite, "cpus": os.cpu_count(), "machine": platform.machine(), "steps": steps}))


if __name__ == "__main__":
    main()
