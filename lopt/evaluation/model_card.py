"""A trained optimizer's model card, written from measured files only: how its run was made (the
command from Hydra's record of it, the compute from its metrics), what the run's own evaluations
measured, and the calibrated scores of `lopt evaluate suite=...` runs with their intervals."""
import json
from pathlib import Path
from typing import Any

import yaml

from lopt.evaluation.report import interval_text
from lopt.io import resume
from lopt.io.results import read_jsonl


def suite_section(name: str, doc: dict[str, Any]) -> list[str]:
    """The card's lines for one suite.json: its aggregates with their 95% intervals and every task's scores."""
    agg = doc["aggregates"]
    wins = sum(bool(t["scores"]["beats_adam"]) for t in doc["tasks"].values())
    horizons = sorted({t["baseline"]["horizon_mult"] for t in doc["tasks"].values()})
    lines = [f"### `{name}` ({len(doc['tasks'])} tasks, {doc['num_seeds']} evaluation seeds, seed stream "
             f"{doc['seed']}, baselines at {horizons}x the task length)", "",
             f"- IQM speedup over tuned Adam: {interval_text(agg['speedup_over_adam']['iqm'])}",
             f"- IQM loss ratio: {interval_text(agg['loss_ratio']['iqm'])}",
             f"- tasks beating tuned Adam: {wins} of {len(doc['tasks'])} "
             f"(fraction {interval_text(agg['win_fraction'])})", "",
             "| task | speedup | loss ratio | beats tuned Adam |", "|---|---|---|---|"]
    for task, t in doc["tasks"].items():
        s = t["scores"]
        capped = ">=" if s.get("capped") else ""
        lines.append(f"| `{task}` | {capped}{s['speedup_over_adam']:.3g} | {s['loss_ratio']:.3g} | "
                     f"{'yes' if s['beats_adam'] else 'no'} |")
    return [*lines, ""]


def command(run: Path) -> str | None:
    """`lopt meta-train <overrides>` as Hydra recorded the run's command line (None without the record)."""
    overrides = resume.recorded_overrides(run)
    return None if overrides is None else resume.meta_train_command(overrides)


def compute(run: Path) -> str | None:
    """The run's outer iterations and wall time from its metrics.jsonl (None without them)."""
    path = run / "metrics.jsonl"
    records = read_jsonl(path) if path.is_file() else []
    timed = [r for r in records if "time/wall_s" in r and "outer_iteration" in r]
    if not timed:
        return None
    last = timed[-1]
    return f"{last['outer_iteration']} outer iterations in {last['time/wall_s'] / 60:.1f} min of wall time"


def in_run_scores(run: Path) -> list[str]:
    """The card's lines for the run's own evaluations (`eval.every`): the aggregates of its last one and
    the iteration `eval.select` kept. They have no intervals; `lopt evaluate suite=...` gives them."""
    path = run / "metrics.jsonl"
    evaluated = [r for r in read_jsonl(path) if any(k.startswith("eval/") for k in r)] if path.is_file() else []
    if not evaluated:
        return []
    last = evaluated[-1]
    aggregates = {k: v for k, v in last.items() if k.startswith("eval/") and k.count("/") == 2
                  and k.split("/")[1] in ("iqm", "mean", "median")}
    lines = [f"### The run's own evaluations ({len(evaluated)}, the last at outer iteration "
             f"{last.get('outer_iteration')}; no intervals)", ""]
    lines += [f"- `{k}`: {v:.4g}" for k, v in sorted(aggregates.items())]
    best = run / "best.json"
    if best.is_file():
        kept = json.loads(best.read_text())
        lines.append(f"- kept by `eval.select` (best_theta/): outer iteration {kept['iteration']}, "
                     f"`{kept['metric']}` {kept['value']:.4g}")
    return [*lines, ""]


def front_matter(fields: dict[str, Any]) -> str:
    """YAML front matter, as model hubs read a card's metadata."""
    return "---\n" + yaml.safe_dump(fields, sort_keys=False) + "---\n"
